//! How accepted email leaves: the transport (`DELIVERY`, with `SMTP_URL` or the `AWS_*` settings it needs),
//! and how the delivery worker paces itself.

use std::time::Duration;

use opensend_mail::transport::ses::parse_endpoint;
use opensend_mail::transport::{SesConfigError, SesSettings, SmtpSettings};
use secrecy::SecretString;

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

/// The standard AWS variables — `AWS_REGION` (or `AWS_DEFAULT_REGION`), `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`, optional `AWS_ENDPOINT_URL_SESV2` (or
/// `AWS_ENDPOINT_URL`) — and `SES_CONFIGURATION_SET`, read here and nowhere else.
fn read_ses(r: &Reader) -> Result<SesSettings, SesConfigError> {
    let required =
        |names: &'static [&'static str]| r.raw(names).ok_or(SesConfigError::Missing(names[0]));
    let endpoint = match r.raw(names::AWS_ENDPOINT_URL_SESV2) {
        Some(url) => {
            let name = match r.raw(&names::AWS_ENDPOINT_URL_SESV2[..1]) {
                Some(_) => names::AWS_ENDPOINT_URL_SESV2[0],
                None => names::AWS_ENDPOINT_URL_SESV2[1],
            };
            Some(parse_endpoint(&url, name)?)
        }
        None => None,
    };
    SesSettings::new(
        required(names::AWS_REGION)?,
        required(names::AWS_ACCESS_KEY_ID)?,
        SecretString::from(required(names::AWS_SECRET_ACCESS_KEY)?),
        r.raw(names::AWS_SESSION_TOKEN).map(SecretString::from),
        endpoint,
        r.raw(names::SES_CONFIGURATION_SET),
    )
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::super::{Config, ConfigError, Vars};
    use super::*;

    const SES: &[(&str, &str)] = &[
        ("DELIVERY", "ses"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "very-secret-key"),
    ];

    fn ses(extra: &[(&'static str, &'static str)]) -> Result<SesSettings, Vec<String>> {
        let mut pairs = SES.to_vec();
        pairs.extend_from_slice(extra);
        match Config::from_vars(&Vars::from_pairs(pairs)) {
            Ok(config) => match config.delivery.transport {
                TransportSettings::Ses(settings) => Ok(settings),
                other => panic!("not SES: {other:?}"),
            },
            Err(ConfigError(problems)) => Err(problems),
        }
    }

    #[test]
    fn aws_settings_are_read_with_their_aliases() {
        let settings = ses(&[]).unwrap();
        assert_eq!(settings.region, "eu-west-1");
        assert_eq!(
            settings.secret_access_key.expose_secret(),
            "very-secret-key"
        );
        assert!(settings.session_token.is_none() && settings.endpoint.is_none());
        assert!(settings.configuration_set.is_none());

        let settings = ses(&[
            ("AWS_REGION", ""),
            ("AWS_DEFAULT_REGION", "us-east-2"),
            ("AWS_SESSION_TOKEN", "token"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/ses/"),
            ("SES_CONFIGURATION_SET", "opensend-events"),
        ])
        .unwrap();
        assert_eq!(settings.region, "us-east-2");
        assert!(settings.session_token.is_some());
        assert_eq!(
            settings.endpoint.as_ref().map(|u| u.as_str()),
            Some("http://127.0.0.1:4566/ses/")
        );
        assert_eq!(
            settings.configuration_set.as_deref(),
            Some("opensend-events")
        );
        let settings = ses(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/"),
            ("AWS_ENDPOINT_URL_SESV2", "https://ses.internal.example/"),
            ("SES_CONFIGURATION_SET", " "),
        ])
        .unwrap();
        assert_eq!(
            settings.endpoint.as_ref().map(|u| u.as_str()),
            Some("https://ses.internal.example/")
        );
        assert!(settings.configuration_set.is_none(), "blank is unset");
    }

    #[test]
    fn missing_or_bad_aws_settings_stop_the_start() {
        let problems = ses(&[("AWS_SECRET_ACCESS_KEY", "")]).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("AWS_SECRET_ACCESS_KEY"),
            "{problems:?}"
        );
        let problems = ses(&[("AWS_REGION", "evil.com/x")]).unwrap_err();
        assert!(problems[0].contains("AWS_REGION"), "{problems:?}");
        let problems = ses(&[("AWS_ENDPOINT_URL", "ftp://x")]).unwrap_err();
        assert!(problems[0].contains("AWS_ENDPOINT_URL"), "{problems:?}");
        let problems = ses(&[("SES_CONFIGURATION_SET", "no spaces")]).unwrap_err();
        assert!(
            problems[0].contains("SES_CONFIGURATION_SET"),
            "{problems:?}"
        );
        assert!(
            problems.iter().all(|p| !p.contains("very-secret-key")),
            "{problems:?}"
        );
    }
}
