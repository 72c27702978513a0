//! How accepted email leaves: the transport (`DELIVERY`, with `SMTP_URL` or the `AWS_*` settings it needs),
//! and how the delivery worker paces itself.

use std::time::Duration;

use opensend_mail::transport::{SesSettings, SmtpSettings};

use super::{Reader, keyword_setting, names, whole_number};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Messages are stored and viewable, never sent.
    Capture,
    Smtp,
    Ses,
}

keyword_setting!(Delivery, {
    "capture" => Delivery::Capture,
    "smtp" => Delivery::Smtp,
    "ses" => Delivery::Ses,
});

/// Settings of the chosen transport.
#[derive(Clone, Debug)]
pub enum TransportSettings {
    Capture,
    Smtp(SmtpSettings),
    Ses(SesSettings),
}

/// How one delivery worker claims and paces its work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerSettings {
    /// `WORKER_CONCURRENCY`: deliveries in flight at once in this worker.
    pub concurrency: usize,
    /// `WORKER_LEASE_SECONDS`: how long a claimed job stays with its worker without being finished.
    pub lease: Duration,
    /// `WORKER_POLL_INTERVAL_MS`: longest sleep while idle, the bound on how late work queued by another
    /// process is noticed.
    pub poll_interval: Duration,
    /// `DELIVERY_MAX_ATTEMPTS`: attempts in all before a temporarily failing email is given up as `failed`.
    pub max_attempts: u32,
}

#[derive(Clone, Debug)]
pub struct DeliverySettings {
    /// `DELIVERY`.
    pub mode: Delivery,
    /// The settings `mode` needs, parsed at start so a mistake stops the process instead of failing every
    /// email.
    pub transport: TransportSettings,
    pub worker: WorkerSettings,
}

impl DeliverySettings {
    pub(super) fn read(r: &mut Reader) -> Self {
        let mode = r.setting(names::DELIVERY, Delivery::Capture, str::parse);
        let worker = WorkerSettings {
            concurrency: r.setting(names::WORKER_CONCURRENCY, 8, |v| {
                whole_number(v, 1, 1000).map(|n| n as usize)
            }),
            lease: r.setting(names::WORKER_LEASE_SECONDS, Duration::from_secs(600), |v| {
                whole_number(v, 1, 86_400).map(Duration::from_secs)
            }),
            poll_interval: r.setting(
                names::WORKER_POLL_INTERVAL_MS,
                Duration::from_millis(1000),
                |v| whole_number(v, 10, 60_000).map(Duration::from_millis),
            ),
            max_attempts: r.setting(names::DELIVERY_MAX_ATTEMPTS, 8, |v| {
                whole_number(v, 1, 100).map(|n| n as u32)
            }),
        };
        let transport = match mode {
            Delivery::Capture => Some(TransportSettings::Capture),
            Delivery::Smtp => match r.raw(names::SMTP_URL) {
                None => {
                    r.problem("SMTP_URL: must be set when DELIVERY=smtp");
                    None
                }
                Some(url) => match SmtpSettings::from_url(&url) {
                    Ok(settings) => Some(TransportSettings::Smtp(settings)),
                    Err(e) => {
                        r.problem(format!("SMTP_URL: {e}"));
                        None
                    }
                },
            },
            Delivery::Ses => match read_ses(r) {
                Ok(settings) => Some(TransportSettings::Ses(settings)),
                Err(e) => {
                    r.problem(format!("DELIVERY=ses: {e}"));
                    None
                }
            },
        };
        Self {
            mode,
            transport: transport.unwrap_or(TransportSettings::Capture),
            worker,
        }
    }
}

/// The standard AWS variables (`AWS_REGION` or `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN` and `AWS_ENDPOINT_URL_SESV2` or
/// `AWS_ENDPOINT_URL`), read here and nowhere else.
fn read_ses(r: &Reader) -> Result<SesSettings, opensend_mail::transport::SesConfigError> {
    let values: Vec<(&str, String)> = [
        ("AWS_REGION", names::AWS_REGION),
        ("AWS_ACCESS_KEY_ID", names::AWS_ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", names::AWS_SECRET_ACCESS_KEY),
        ("AWS_SESSION_TOKEN", names::AWS_SESSION_TOKEN),
        ("AWS_ENDPOINT_URL_SESV2", names::AWS_ENDPOINT_URL_SESV2),
    ]
    .into_iter()
    .filter_map(|(name, aliases)| r.raw(aliases).map(|v| (name, v)))
    .collect();
    SesSettings::from_lookup(|name| {
        values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    })
}
