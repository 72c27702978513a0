//! The background jobs' schedule: how often `opensend scheduler` triggers them, where it finds the ingester,
//! and how long data is kept.

use std::time::Duration;

use url::Url;

use super::{Reader, names, parse_bool, parse_http_url, whole_number};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSettings {
    /// `RETENTION_DAYS`: emails, webhook messages, event logs and received emails older than this are
    /// deleted by the `cleanup` job; `None` keeps everything.
    pub retention_days: Option<u32>,
    /// `INGESTER_SCHEDULER_INTERVAL_SECONDS`: how often `opensend scheduler` triggers the jobs.
    pub scheduler_interval: Duration,
    /// `INGESTER_URL`: where `opensend scheduler` reaches the ingester; by default this host's
    /// `INGESTER_PORT`.
    pub ingester_url: Option<Url>,
    /// `REQUEST_LOG`: whether API requests made with a key are recorded for `GET /logs` (on by default). Off
    /// saves what recording costs each request (see docs/benchmarks.md); `GET /logs` then lists only what
    /// was recorded before.
    pub request_log: bool,
}

impl JobSettings {
    pub(super) fn read(r: &mut Reader) -> Self {
        Self {
            retention_days: r.setting(names::RETENTION_DAYS, None, |v| {
                whole_number(v, 1, 36_500).map(|n| Some(n as u32))
            }),
            scheduler_interval: r.setting(
                names::INGESTER_SCHEDULER_INTERVAL_SECONDS,
                Duration::from_secs(60),
                |v| whole_number(v, 10, 86_400).map(Duration::from_secs),
            ),
            ingester_url: r.setting(names::INGESTER_URL, None, |v| {
                parse_http_url(v, "http://10.0.0.5:3016").map(Some)
            }),
            request_log: r.setting(names::REQUEST_LOG, true, parse_bool),
        }
    }
}
