//! Daily and monthly sending quotas per organization (off unless `QUOTA_DAILY_EMAILS`,
//! `QUOTA_MONTHLY_EMAILS` or an organization's own quota is set).
//!
//! Unlike rate limits, quotas are counted in the database: they must survive restarts and hold across
//! nodes whatever the rate-limit backend. Send routes call [`reserve_emails`] once per request with the
//! number of emails, after the rate limit and validation and before queueing anything; the emails then count
//! whether or not delivery later succeeds.

use axum::http::HeaderValue;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Days, NaiveTime, TimeZone, Utc};
use opensend_core::ErrorCode;
use opensend_store::repos::{QuotaWindow, Reservation};

use crate::auth::ApiKeyContext;
use crate::error::ApiError;
use crate::state::AppState;

/// Counts `emails` against the caller's organization's quotas; the error is the response to return
/// (429 `daily_quota_exceeded` / `monthly_quota_exceeded` with `retry-after` until the window turns).
pub async fn reserve_emails(
    state: &AppState,
    context: &ApiKeyContext,
    emails: u32,
) -> Result<(), Response> {
    let daily = context
        .organization_daily_email_quota
        .or(state.config.quotas.daily_emails);
    let monthly = context
        .organization_monthly_email_quota
        .or(state.config.quotas.monthly_emails);
    let limits: Vec<(QuotaWindow, i64)> =
        [(QuotaWindow::Daily, daily), (QuotaWindow::Monthly, monthly)]
            .into_iter()
            .filter_map(|(window, limit)| limit.map(|l| (window, l)))
            .collect();
    if limits.is_empty() || emails == 0 {
        return Ok(());
    }
    let now = Utc::now();
    let outcome = state
        .store
        .email_quotas()
        .reserve(context.organization_id, i64::from(emails), &limits, now)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    let window = match outcome {
        Reservation::Reserved => return Ok(()),
        Reservation::Exceeded(window) => window,
    };
    let (code, what, limit) = match window {
        QuotaWindow::Daily => (ErrorCode::DailyQuotaExceeded, "daily", daily),
        QuotaWindow::Monthly => (ErrorCode::MonthlyQuotaExceeded, "monthly", monthly),
    };
    let message = format!(
        "This would exceed your organization's {what} quota of {} emails (UTC).",
        limit.unwrap_or_default()
    );
    let mut response = ApiError::new(code, message).into_response();
    response.headers_mut().insert(
        RETRY_AFTER,
        HeaderValue::from(seconds_until_next(window, now).max(1)),
    );
    Err(response)
}

/// Seconds from `now` until the window after the current one starts (UTC midnight or the 1st).
pub fn seconds_until_next(window: QuotaWindow, now: DateTime<Utc>) -> u64 {
    let today = now.date_naive();
    let next = match window {
        QuotaWindow::Daily => today.checked_add_days(Days::new(1)),
        QuotaWindow::Monthly => {
            let (year, month) = match today.month() {
                12 => (today.year() + 1, 1),
                m => (today.year(), m + 1),
            };
            chrono::NaiveDate::from_ymd_opt(year, month, 1)
        }
    };
    next.map(|d| Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN)))
        .map(|start| (start - now).num_seconds().max(0) as u64)
        .unwrap_or(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_turn_at_utc_midnight_and_on_the_first() {
        let now = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 0).unwrap();
        assert_eq!(seconds_until_next(QuotaWindow::Daily, now), 60);
        assert_eq!(seconds_until_next(QuotaWindow::Monthly, now), 60);
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap();
        assert_eq!(seconds_until_next(QuotaWindow::Daily, now), 86_400);
        assert_eq!(seconds_until_next(QuotaWindow::Monthly, now), 4 * 86_400);
    }
}
