//! How many emails an organization may send per UTC day and month, unless it has quotas of its own.

use super::{Reader, names};

/// Largest email quota: a billion emails a day or month is beyond any single deployment.
pub const MAX_EMAIL_QUOTA: i64 = 1_000_000_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaSettings {
    /// `QUOTA_DAILY_EMAILS`; `None`: no daily quota.
    pub daily_emails: Option<i64>,
    /// `QUOTA_MONTHLY_EMAILS`; `None`: no monthly quota.
    pub monthly_emails: Option<i64>,
}

impl QuotaSettings {
    pub(super) fn read(r: &mut Reader) -> Self {
        Self {
            daily_emails: r.setting(names::QUOTA_DAILY_EMAILS, None, parse_quota),
            monthly_emails: r.setting(names::QUOTA_MONTHLY_EMAILS, None, parse_quota),
        }
    }
}

fn parse_quota(v: &str) -> Result<Option<i64>, String> {
    match v.parse::<i64>() {
        Ok(n) if (1..=MAX_EMAIL_QUOTA).contains(&n) => Ok(Some(n)),
        _ => Err(format!(
            "must be a whole number from 1 to {MAX_EMAIL_QUOTA}, not `{v}`"
        )),
    }
}
