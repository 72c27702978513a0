//! How webhook deliveries are dispatched.

use std::time::Duration;

use super::{Reader, names, whole_number};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookSettings {
    /// `WEBHOOK_CONCURRENCY`: requests in flight at once in one dispatcher.
    pub concurrency: usize,
    /// `WEBHOOK_ENDPOINT_CONCURRENCY`: requests in flight at once to any one endpoint, per dispatcher.
    pub endpoint_concurrency: usize,
    /// `WEBHOOK_TIMEOUT_SECONDS`: how long an endpoint has to answer.
    pub timeout: Duration,
    /// `WEBHOOK_LEASE_SECONDS`: how long a claimed delivery stays with its dispatcher.
    pub lease: Duration,
    /// `WEBHOOK_DISABLE_AFTER_HOURS`: an endpoint whose every attempt failed for this long is disabled.
    pub disable_after: Duration,
    /// `WEBHOOK_RETRY_DELAYS_SECONDS`: the wait before each retry; one attempt more than delays in all.
    pub retry_delays: Vec<Duration>,
    /// `WEBHOOK_MAX_ENDPOINTS_PER_ORG`: endpoints one organization may register (enabled or not).
    pub max_endpoints_per_org: u64,
}

/// Resend's schedule: the first attempt at once, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h.
pub const DEFAULT_WEBHOOK_RETRY_DELAYS: [u64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];

fn parse_retry_delays(v: &str) -> Result<Vec<Duration>, String> {
    let delays: Result<Vec<Duration>, _> = v
        .split(',')
        .map(|d| d.trim().parse::<u64>().ok().filter(|s| *s <= 7 * 24 * 3600))
        .map(|d| d.map(Duration::from_secs).ok_or(()))
        .collect();
    match delays {
        Ok(delays) if !delays.is_empty() && delays.len() <= 20 => Ok(delays),
        _ => Err(format!(
            "must be 1 to 20 comma-separated whole numbers of seconds (each at most a week), such as `5,300,1800`, not `{v}`"
        )),
    }
}

impl WebhookSettings {
    pub(super) fn read(r: &mut Reader) -> Self {
        let settings = Self {
            concurrency: r.setting(names::WEBHOOK_CONCURRENCY, 128, |v| {
                whole_number(v, 1, 10_000).map(|n| n as usize)
            }),
            endpoint_concurrency: r.setting(names::WEBHOOK_ENDPOINT_CONCURRENCY, 16, |v| {
                whole_number(v, 1, 1_000).map(|n| n as usize)
            }),
            timeout: r.setting(
                names::WEBHOOK_TIMEOUT_SECONDS,
                Duration::from_secs(15),
                |v| whole_number(v, 1, 60).map(Duration::from_secs),
            ),
            lease: r.setting(names::WEBHOOK_LEASE_SECONDS, Duration::from_secs(60), |v| {
                whole_number(v, 2, 3_600).map(Duration::from_secs)
            }),
            disable_after: r.setting(
                names::WEBHOOK_DISABLE_AFTER_HOURS,
                Duration::from_secs(5 * 24 * 3600),
                |v| whole_number(v, 1, 24 * 365).map(|h| Duration::from_secs(h * 3600)),
            ),
            retry_delays: r.setting(
                names::WEBHOOK_RETRY_DELAYS_SECONDS,
                DEFAULT_WEBHOOK_RETRY_DELAYS
                    .map(Duration::from_secs)
                    .to_vec(),
                parse_retry_delays,
            ),
            max_endpoints_per_org: r.setting(names::WEBHOOK_MAX_ENDPOINTS_PER_ORG, 50, |v| {
                whole_number(v, 1, 10_000)
            }),
        };
        if settings.lease <= settings.timeout {
            r.problem(format!(
                "WEBHOOK_LEASE_SECONDS: must be longer than WEBHOOK_TIMEOUT_SECONDS ({} s), so a delivery is not claimed twice while its request is still running",
                settings.timeout.as_secs()
            ));
        }
        settings
    }
}
