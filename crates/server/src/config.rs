//! Configuration from the environment (and an optional `.env` file, loaded by the binary before this runs).
//!
//! Every setting, its default and its aliases are listed in `docs/configuration.md`; keep the two in step.
//! Values are trimmed and an empty value counts as unset. Aliases exist so an existing OpenSend `.env` works
//! unchanged; when several names are set, the first one in the list wins.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use opensend_mail::transport::{SesSettings, SmtpSettings};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::rate_limit::{FailureMode, Limits, MAX_RATE, Rate};

/// A snapshot of environment variables. Tests build one from a map instead of touching the process env.
#[derive(Clone, Debug, Default)]
pub struct Vars(HashMap<String, String>);

impl Vars {
    /// The process environment.
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The first of `names` that is set to a non-blank value.
    fn first(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|name| {
            self.0
                .get(*name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        })
    }
}

/// The names (primary first, then aliases) of each setting.
pub mod names {
    pub const DATABASE_URL: &[&str] = &["DATABASE_URL"];
    pub const DATABASE_MAX_CONNECTIONS: &[&str] = &["DATABASE_MAX_CONNECTIONS"];
    pub const BIND_ADDRESS: &[&str] = &["BIND_ADDRESS"];
    pub const PORT: &[&str] = &["PORT"];
    pub const INGESTER_PORT: &[&str] = &["INGESTER_PORT"];
    pub const APP_URL: &[&str] = &["APP_URL", "BETTER_AUTH_URL", "NEXT_PUBLIC_APP_URL"];
    pub const DATA_DIR: &[&str] = &["DATA_DIR"];
    pub const AUTH_SECRET: &[&str] = &["AUTH_SECRET", "BETTER_AUTH_SECRET"];
    pub const WEBHOOK_SECRET_ENCRYPTION_KEY: &[&str] = &["WEBHOOK_SECRET_ENCRYPTION_KEY"];
    pub const WEBHOOK_SECRET_ENCRYPTION_KEY_PREVIOUS: &[&str] =
        &["WEBHOOK_SECRET_ENCRYPTION_KEY_PREVIOUS"];
    pub const WEBHOOK_CONCURRENCY: &[&str] = &["WEBHOOK_CONCURRENCY"];
    pub const WEBHOOK_ENDPOINT_CONCURRENCY: &[&str] = &["WEBHOOK_ENDPOINT_CONCURRENCY"];
    pub const WEBHOOK_TIMEOUT_SECONDS: &[&str] = &["WEBHOOK_TIMEOUT_SECONDS"];
    pub const WEBHOOK_LEASE_SECONDS: &[&str] = &["WEBHOOK_LEASE_SECONDS"];
    pub const WEBHOOK_DISABLE_AFTER_HOURS: &[&str] = &["WEBHOOK_DISABLE_AFTER_HOURS"];
    pub const WEBHOOK_RETRY_DELAYS_SECONDS: &[&str] = &["WEBHOOK_RETRY_DELAYS_SECONDS"];
    pub const WEBHOOK_MAX_ENDPOINTS_PER_ORG: &[&str] = &["WEBHOOK_MAX_ENDPOINTS_PER_ORG"];
    pub const RETENTION_DAYS: &[&str] = &["RETENTION_DAYS"];
    pub const INGESTER_SCHEDULER_INTERVAL_SECONDS: &[&str] =
        &["INGESTER_SCHEDULER_INTERVAL_SECONDS"];
    pub const INGESTER_URL: &[&str] = &["INGESTER_URL"];
    pub const INGESTER_JOB_TOKEN: &[&str] = &["INGESTER_JOB_TOKEN"];
    pub const INGESTER_INBOUND_TOKEN: &[&str] = &["INGESTER_INBOUND_TOKEN"];
    pub const RATE_LIMIT_BACKEND: &[&str] = &["RATE_LIMIT_BACKEND"];
    pub const REDIS_URL: &[&str] = &["REDIS_URL"];
    pub const RATE_LIMIT_REDIS_PREFIX: &[&str] = &["RATE_LIMIT_REDIS_PREFIX"];
    pub const RATE_LIMIT_REDIS_TIMEOUT_MS: &[&str] = &["RATE_LIMIT_REDIS_TIMEOUT_MS"];
    pub const RATE_LIMIT_FAILURE_MODE: &[&str] = &["RATE_LIMIT_FAILURE_MODE"];
    pub const RATE_LIMIT_ORG_PER_SECOND: &[&str] = &["RATE_LIMIT_ORG_PER_SECOND"];
    pub const RATE_LIMIT_ORG_BURST: &[&str] = &["RATE_LIMIT_ORG_BURST"];
    pub const RATE_LIMIT_IP_PER_SECOND: &[&str] = &["RATE_LIMIT_IP_PER_SECOND"];
    pub const RATE_LIMIT_IP_BURST: &[&str] = &["RATE_LIMIT_IP_BURST"];
    pub const RATE_LIMIT_INGESTER_PER_SECOND: &[&str] = &["RATE_LIMIT_INGESTER_PER_SECOND"];
    pub const RATE_LIMIT_INGESTER_BURST: &[&str] = &["RATE_LIMIT_INGESTER_BURST"];
    pub const TRUSTED_PROXY_HOPS: &[&str] = &["TRUSTED_PROXY_HOPS"];
    pub const QUOTA_DAILY_EMAILS: &[&str] = &["QUOTA_DAILY_EMAILS"];
    pub const QUOTA_MONTHLY_EMAILS: &[&str] = &["QUOTA_MONTHLY_EMAILS"];
    pub const DELIVERY: &[&str] = &["DELIVERY"];
    pub const LOG_FORMAT: &[&str] = &["LOG_FORMAT"];
    pub const WORKER_CONCURRENCY: &[&str] = &["WORKER_CONCURRENCY"];
    pub const WORKER_LEASE_SECONDS: &[&str] = &["WORKER_LEASE_SECONDS"];
    pub const WORKER_POLL_INTERVAL_MS: &[&str] = &["WORKER_POLL_INTERVAL_MS"];
    pub const DELIVERY_MAX_ATTEMPTS: &[&str] = &["DELIVERY_MAX_ATTEMPTS"];
    pub const SMTP_URL: &[&str] = &["SMTP_URL"];
    pub const DNS_RESOLVER: &[&str] = &["DNS_RESOLVER"];
    pub const DNS_TIMEOUT_SECONDS: &[&str] = &["DNS_TIMEOUT_SECONDS"];
    pub const SPF_INCLUDE: &[&str] = &["SPF_INCLUDE"];
    pub const RETURN_PATH_MX: &[&str] = &["RETURN_PATH_MX"];
    pub const DMARC_RUA: &[&str] = &["DMARC_RUA"];
    pub const TRACKING_CNAME_TARGET: &[&str] = &["TRACKING_CNAME_TARGET"];
    pub const ALLOW_PRIVATE_WEBHOOK_URLS: &[&str] = &["ALLOW_PRIVATE_WEBHOOK_URLS"];
    pub const SES_EVENTS_SNS_TOPIC_ARN: &[&str] = &["SES_EVENTS_SNS_TOPIC_ARN"];
    pub const SNS_TEST_CERT_URL_PREFIX: &[&str] = &["SNS_TEST_CERT_URL_PREFIX"];
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/opensend.db";
pub const DEFAULT_PORT: u16 = 3015;
pub const DEFAULT_INGESTER_PORT: u16 = 3016;
pub const DEFAULT_APP_URL: &str = "http://localhost:3015";
pub const DEFAULT_DATA_DIR: &str = "./data";
pub const DEFAULT_DATABASE_MAX_CONNECTIONS: u32 = 16;
pub const DEFAULT_RATE_LIMIT_REDIS_PREFIX: &str = "opensend:ratelimit";
pub const DEFAULT_RATE_LIMIT_REDIS_TIMEOUT: Duration = Duration::from_millis(200);
/// Default limits: requests per second and burst.
pub const DEFAULT_ORG_RATE: Rate = Rate::constant(10, 20);
pub const DEFAULT_IP_RATE: Rate = Rate::constant(2, 10);
pub const DEFAULT_INGESTER_RATE: Rate = Rate::constant(50, 100);
/// Most proxies a deployment may declare in front of it.
pub const MAX_TRUSTED_PROXY_HOPS: usize = 10;

/// The secrets every role may need. Each is wrapped so it cannot reach a log by accident.
#[derive(Clone, Default)]
pub struct Secrets {
    pub auth_secret: Option<SecretString>,
    pub webhook_secret_encryption_key: Option<SecretString>,
    pub ingester_job_token: Option<SecretString>,
    pub ingester_inbound_token: Option<SecretString>,
    /// `WEBHOOK_SECRET_ENCRYPTION_KEY_PREVIOUS`: the key being rotated away from. Secrets sealed under it
    /// still open until `opensend admin rotate-encryption-key` has re-sealed them. Optional, so not a slot.
    pub webhook_secret_encryption_key_previous: Option<SecretString>,
}

/// One secret setting: its primary name and where it lives in [`Secrets`].
pub struct SecretSlot {
    pub name: &'static str,
    pub get: fn(&Secrets) -> Option<&SecretString>,
    pub set: fn(&mut Secrets, SecretString),
}

/// Every secret setting, in the order problems are reported.
pub const SECRET_SLOTS: [SecretSlot; 4] = [
    SecretSlot {
        name: "AUTH_SECRET",
        get: |s| s.auth_secret.as_ref(),
        set: |s, v| s.auth_secret = Some(v),
    },
    SecretSlot {
        name: "WEBHOOK_SECRET_ENCRYPTION_KEY",
        get: |s| s.webhook_secret_encryption_key.as_ref(),
        set: |s, v| s.webhook_secret_encryption_key = Some(v),
    },
    SecretSlot {
        name: "INGESTER_JOB_TOKEN",
        get: |s| s.ingester_job_token.as_ref(),
        set: |s, v| s.ingester_job_token = Some(v),
    },
    SecretSlot {
        name: "INGESTER_INBOUND_TOKEN",
        get: |s| s.ingester_inbound_token.as_ref(),
        set: |s, v| s.ingester_inbound_token = Some(v),
    },
];

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Secrets");
        for slot in &SECRET_SLOTS {
            d.field(slot.name, &(slot.get)(self).map(|_| "[REDACTED]"));
        }
        d.field(
            "WEBHOOK_SECRET_ENCRYPTION_KEY_PREVIOUS",
            &self
                .webhook_secret_encryption_key_previous
                .as_ref()
                .map(|_| "[REDACTED]"),
        );
        d.finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimitBackend {
    Memory,
    Redis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Messages are stored and viewable, never sent.
    Capture,
    Smtp,
    Ses,
}

/// Settings of the chosen transport.
#[derive(Clone, Debug)]
pub enum TransportSettings {
    Capture,
    Smtp(SmtpSettings),
    Ses(SesSettings),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

macro_rules! keyword_setting {
    ($ty:ty, { $($text:literal => $value:expr),+ $(,)? }) => {
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s.to_ascii_lowercase().as_str() {
                    $($text => Ok($value),)+
                    _ => Err(format!(
                        "must be one of {}, not `{}`",
                        [$(concat!("`", $text, "`")),+].join(", "),
                        s
                    )),
                }
            }
        }
    };
}

keyword_setting!(RateLimitBackend, {
    "memory" => RateLimitBackend::Memory,
    "redis" => RateLimitBackend::Redis,
});
keyword_setting!(Delivery, {
    "capture" => Delivery::Capture,
    "smtp" => Delivery::Smtp,
    "ses" => Delivery::Ses,
});
keyword_setting!(LogFormat, {
    "text" => LogFormat::Text,
    "json" => LogFormat::Json,
});

/// The whole configuration of a process.
#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub database_max_connections: u32,
    pub bind_address: IpAddr,
    pub port: u16,
    pub ingester_port: u16,
    pub app_url: Url,
    pub data_dir: PathBuf,
    pub secrets: Secrets,
    pub rate_limit_backend: RateLimitBackend,
    pub redis_url: Option<SecretString>,
    /// Start of every Redis key, so deployments (or test runs) sharing one Redis keep apart.
    pub rate_limit_redis_prefix: String,
    pub rate_limit_redis_timeout: Duration,
    pub rate_limit_failure_mode: FailureMode,
    pub rate_limits: Limits,
    pub trusted_proxy_hops: usize,
    /// Emails an organization may send per UTC day / month unless it has its own quota; `None`: no quota.
    pub quota_daily_emails: Option<i64>,
    pub quota_monthly_emails: Option<i64>,
    pub delivery: Delivery,
    /// The transport settings `DELIVERY` needs (`SMTP_URL`, or the `AWS_*` variables), parsed at start so a
    /// mistake stops the process instead of failing every email.
    pub transport: TransportSettings,
    pub log_format: LogFormat,
    pub worker_concurrency: usize,
    pub worker_lease: Duration,
    pub worker_poll_interval: Duration,
    pub delivery_max_attempts: u32,
    pub domains: DomainSettings,
    pub webhooks: WebhookSettings,
    /// `RETENTION_DAYS`: emails, webhook messages, event logs and received emails older than this are
    /// deleted by the `cleanup` job; `None` keeps everything.
    pub retention_days: Option<u32>,
    /// `INGESTER_SCHEDULER_INTERVAL_SECONDS`: how often `opensend scheduler` (and `serve`, in process)
    /// runs the background jobs.
    pub scheduler_interval: Duration,
    /// `INGESTER_URL`: where `opensend scheduler` reaches the ingester; by default this host's
    /// `INGESTER_PORT`.
    pub ingester_url: Option<Url>,
    /// `ALLOW_PRIVATE_WEBHOOK_URLS`: let URLs fetched on a user's behalf (webhooks, attachments by `path`)
    /// reach loopback and private addresses. Local development and tests only; production refuses it.
    pub allow_private_webhook_urls: bool,
    /// `POST /events/ses` on the ingester (see [`SesEventSettings`]).
    pub ses_events: SesEventSettings,
}

/// What the SES event route accepts (see `docs/configuration.md`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SesEventSettings {
    /// `SES_EVENTS_SNS_TOPIC_ARN`: the SNS topics whose messages are accepted. Empty: the route refuses
    /// everything.
    pub topic_arns: Vec<String>,
    /// `SNS_TEST_CERT_URL_PREFIX`: tests only, refused in production. Certificate and subscribe URLs under
    /// this prefix are fetched as if they were Amazon SNS's.
    pub sns_test_cert_url_prefix: Option<String>,
}

/// `arn:<partition>:sns:<region>:<12-digit account>:<topic name>`, comma-separated; at most 20.
fn parse_topic_arns(v: &str) -> Result<Vec<String>, String> {
    let valid = |arn: &str| {
        let parts: Vec<&str> = arn.split(':').collect();
        parts.len() == 6
            && parts[0] == "arn"
            && parts[1].starts_with("aws")
            && parts[1]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-')
            && parts[2] == "sns"
            && !parts[3].is_empty()
            && parts[3]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && parts[4].len() == 12
            && parts[4].bytes().all(|b| b.is_ascii_digit())
            && (1..=256).contains(&parts[5].len())
            && parts[5]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    let arns: Vec<String> = v
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    match arns.iter().find(|a| !valid(a)) {
        Some(bad) => Err(format!(
            "must be SNS topic ARNs such as arn:aws:sns:eu-west-1:123456789012:opensend-events, comma-separated; `{}` is not one",
            bad.chars().take(300).collect::<String>()
        )),
        None if arns.is_empty() || arns.len() > 20 => {
            Err("must name 1 to 20 SNS topic ARNs, comma-separated".to_owned())
        }
        None => Ok(arns),
    }
}

fn parse_test_prefix(v: &str) -> Result<Option<String>, String> {
    match Url::parse(v) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.username().is_empty()
                && u.password().is_none() =>
        {
            Ok(Some(u.to_string()))
        }
        _ => Err(format!(
            "must be an http(s) URL without credentials such as http://127.0.0.1:8089/, not `{v}`"
        )),
    }
}

/// How webhook deliveries are dispatched (see `docs/configuration.md`).
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

/// What sending domains need from the deployment: where DNS questions go, and the values that depend on the
/// transport (see `docs/configuration.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainSettings {
    /// `DNS_RESOLVER`: one nameserver instead of the system's.
    pub dns_resolver: Option<SocketAddr>,
    pub dns_timeout: Duration,
    /// `SPF_INCLUDE`: SPF mechanisms for the return path, e.g. `include:_spf.relay.example ip4:203.0.113.7`.
    pub spf_include: Option<String>,
    /// `RETURN_PATH_MX`: host of the bounce MX record.
    pub return_path_mx: Option<String>,
    /// `DMARC_RUA`: address for aggregate reports in the recommended DMARC record.
    pub dmarc_rua: Option<String>,
    /// `TRACKING_CNAME_TARGET`: host tracking subdomains point at.
    pub tracking_cname_target: Option<String>,
}

pub const DEFAULT_DNS_TIMEOUT_SECONDS: u64 = 5;

/// SPF mechanisms an operator may configure: the ones that name senders (no `all`, no modifiers).
fn parse_spf_include(v: &str) -> Result<String, String> {
    let valid = |term: &str| {
        let term = term.trim_start_matches(['+', '?', '~', '-']);
        let (name, arg) = term.split_once(':').unwrap_or((term, ""));
        let name = name.split('/').next().unwrap_or_default();
        matches!(name.to_ascii_lowercase().as_str(), "include" | "ip4" | "ip6" | "exists" if !arg.is_empty())
            || matches!(name.to_ascii_lowercase().as_str(), "a" | "mx")
    };
    let terms: Vec<&str> = v.split_whitespace().collect();
    if terms.is_empty()
        || !terms
            .iter()
            .all(|t| valid(t) && t.is_ascii() && !t.contains(['"', ';']))
    {
        return Err(format!(
            "must be SPF mechanisms such as `include:_spf.relay.example ip4:203.0.113.7` (include, ip4, ip6, a, mx, exists), not `{v}`"
        ));
    }
    Ok(terms.join(" "))
}

fn parse_host(v: &str) -> Result<String, String> {
    opensend_core::DomainName::parse(v)
        .map(|d| d.to_string())
        .map_err(|e| format!("must be a host name such as mail.example.com: it {e}"))
}

/// Settings that could not be read, all of them at once.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let p = &mut problems;
        let database_url = setting(
            p,
            vars,
            names::DATABASE_URL,
            DEFAULT_DATABASE_URL.to_owned(),
            |v| match v.split(':').next() {
                Some("sqlite" | "postgres" | "postgresql") => Ok(v.to_owned()),
                _ => Err("must start with `sqlite:` or `postgres://`".to_owned()),
            },
        );
        let database_max_connections = setting(
            p,
            vars,
            names::DATABASE_MAX_CONNECTIONS,
            DEFAULT_DATABASE_MAX_CONNECTIONS,
            |v| match v.parse::<u32>() {
                Ok(n) if (1..=1000).contains(&n) => Ok(n),
                _ => Err(format!("must be a whole number from 1 to 1000, not `{v}`")),
            },
        );
        let bind_address = setting(
            p,
            vars,
            names::BIND_ADDRESS,
            IpAddr::from([0, 0, 0, 0]),
            |v| {
                v.parse::<IpAddr>()
                    .map_err(|_| format!("must be an IP address such as 0.0.0.0 or ::, not `{v}`"))
            },
        );
        let port = setting(p, vars, names::PORT, DEFAULT_PORT, parse_port);
        let ingester_port = setting(
            p,
            vars,
            names::INGESTER_PORT,
            DEFAULT_INGESTER_PORT,
            parse_port,
        );
        let app_url = setting(p, vars, names::APP_URL, None, |v| match Url::parse(v) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(Some(u)),
            _ => Err(format!(
                "must be an http(s) URL such as https://mail.example.com, not `{v}`"
            )),
        });
        let data_dir = setting(
            p,
            vars,
            names::DATA_DIR,
            PathBuf::from(DEFAULT_DATA_DIR),
            |v| Ok(PathBuf::from(v)),
        );
        let rate_limit_backend = setting(
            p,
            vars,
            names::RATE_LIMIT_BACKEND,
            RateLimitBackend::Memory,
            str::parse,
        );
        let redis_url = setting(p, vars, names::REDIS_URL, None, |v| {
            match v.split_once("://").map(|(scheme, _)| scheme) {
                Some("redis" | "rediss") => {
                    redis::Client::open(v).map(|_| Some(v.to_owned())).map_err(
                        // The URL is never repeated back: it may carry a password.
                        |e| format!("is not a usable Redis URL ({:?})", e.kind()),
                    )
                }
                _ => Err("must start with `redis://` or `rediss://` (TLS)".to_owned()),
            }
        });
        if rate_limit_backend == RateLimitBackend::Redis && redis_url.is_none() {
            p.push("REDIS_URL: must be set when RATE_LIMIT_BACKEND=redis".to_owned());
        }
        let rate_limit_redis_prefix = setting(
            p,
            vars,
            names::RATE_LIMIT_REDIS_PREFIX,
            DEFAULT_RATE_LIMIT_REDIS_PREFIX.to_owned(),
            |v| match v.len() <= 100 && v.chars().all(|c| c.is_ascii_graphic()) {
                true => Ok(v.to_owned()),
                false => Err("must be up to 100 visible ASCII characters".to_owned()),
            },
        );
        let rate_limit_redis_timeout = setting(
            p,
            vars,
            names::RATE_LIMIT_REDIS_TIMEOUT_MS,
            DEFAULT_RATE_LIMIT_REDIS_TIMEOUT,
            |v| match v.parse::<u64>() {
                Ok(ms) if (1..=10_000).contains(&ms) => Ok(Duration::from_millis(ms)),
                _ => Err(format!(
                    "must be a whole number of milliseconds from 1 to 10000, not `{v}`"
                )),
            },
        );
        let rate_limit_failure_mode = setting(
            p,
            vars,
            names::RATE_LIMIT_FAILURE_MODE,
            FailureMode::Closed,
            str::parse,
        );
        let mut rate = |per_second: &[&str], burst: &[&str], default: Rate| {
            let per_second = setting(
                p,
                vars,
                per_second,
                default.per_second.get(),
                parse_rate_number,
            );
            let burst = setting(p, vars, burst, default.burst.get(), parse_rate_number);
            Rate::new(per_second, burst).unwrap_or(default)
        };
        let rate_limits = Limits {
            organization: rate(
                names::RATE_LIMIT_ORG_PER_SECOND,
                names::RATE_LIMIT_ORG_BURST,
                DEFAULT_ORG_RATE,
            ),
            client_ip: rate(
                names::RATE_LIMIT_IP_PER_SECOND,
                names::RATE_LIMIT_IP_BURST,
                DEFAULT_IP_RATE,
            ),
            ingester_ip: rate(
                names::RATE_LIMIT_INGESTER_PER_SECOND,
                names::RATE_LIMIT_INGESTER_BURST,
                DEFAULT_INGESTER_RATE,
            ),
        };
        let trusted_proxy_hops = setting(p, vars, names::TRUSTED_PROXY_HOPS, 0, |v| {
            match v.parse::<usize>() {
                Ok(n) if n <= MAX_TRUSTED_PROXY_HOPS => Ok(n),
                _ => Err(format!(
                    "must be a whole number from 0 to {MAX_TRUSTED_PROXY_HOPS}, not `{v}`"
                )),
            }
        });
        let quota_daily_emails = setting(p, vars, names::QUOTA_DAILY_EMAILS, None, parse_quota);
        let quota_monthly_emails = setting(p, vars, names::QUOTA_MONTHLY_EMAILS, None, parse_quota);
        let delivery = setting(p, vars, names::DELIVERY, Delivery::Capture, str::parse);
        let log_format = setting(p, vars, names::LOG_FORMAT, LogFormat::Text, str::parse);
        let worker_concurrency = setting(p, vars, names::WORKER_CONCURRENCY, 8, |v| {
            whole_number(v, 1, 1000).map(|n| n as usize)
        });
        let worker_lease = setting(
            p,
            vars,
            names::WORKER_LEASE_SECONDS,
            Duration::from_secs(600),
            |v| whole_number(v, 1, 86_400).map(Duration::from_secs),
        );
        let worker_poll_interval = setting(
            p,
            vars,
            names::WORKER_POLL_INTERVAL_MS,
            Duration::from_millis(1000),
            |v| whole_number(v, 10, 60_000).map(Duration::from_millis),
        );
        let delivery_max_attempts = setting(p, vars, names::DELIVERY_MAX_ATTEMPTS, 8, |v| {
            whole_number(v, 1, 100).map(|n| n as u32)
        });
        let transport = match delivery {
            Delivery::Capture => Some(TransportSettings::Capture),
            Delivery::Smtp => match vars.first(names::SMTP_URL) {
                None => {
                    p.push("SMTP_URL: must be set when DELIVERY=smtp".to_owned());
                    None
                }
                Some(url) => SmtpSettings::from_url(&url)
                    .map(TransportSettings::Smtp)
                    .map_err(|e| p.push(format!("SMTP_URL: {e}")))
                    .ok(),
            },
            Delivery::Ses => SesSettings::from_lookup(|name| vars.first(&[name]))
                .map(TransportSettings::Ses)
                .map_err(|e| p.push(format!("DELIVERY=ses: {e}")))
                .ok(),
        };
        let dns_resolver = setting(p, vars, names::DNS_RESOLVER, None, |v| {
            v.parse::<SocketAddr>().map(Some).map_err(|_| {
                format!("must be an IP address and port such as 127.0.0.1:53, not `{v}`")
            })
        });
        let dns_timeout = setting(
            p,
            vars,
            names::DNS_TIMEOUT_SECONDS,
            Duration::from_secs(DEFAULT_DNS_TIMEOUT_SECONDS),
            |v| match v.parse::<u64>() {
                Ok(n) if (1..=60).contains(&n) => Ok(Duration::from_secs(n)),
                _ => Err(format!(
                    "must be a whole number of seconds from 1 to 60, not `{v}`"
                )),
            },
        );
        let spf_include = setting(p, vars, names::SPF_INCLUDE, None, |v| {
            parse_spf_include(v).map(Some)
        });
        let return_path_mx = setting(p, vars, names::RETURN_PATH_MX, None, |v| {
            parse_host(v).map(Some)
        });
        let tracking_cname_target = setting(p, vars, names::TRACKING_CNAME_TARGET, None, |v| {
            parse_host(v).map(Some)
        });
        let dmarc_rua = setting(p, vars, names::DMARC_RUA, None, |v| {
            let address = v.strip_prefix("mailto:").unwrap_or(v);
            match address.rsplit_once('@') {
                Some((local, domain))
                    if !local.is_empty()
                        && !local.contains([' ', ';', ',', '!', '"'])
                        && opensend_core::DomainName::parse(domain).is_ok() =>
                {
                    Ok(Some(address.to_owned()))
                }
                _ => Err(format!(
                    "must be an email address such as dmarc@example.com, not `{v}`"
                )),
            }
        });
        let webhooks = WebhookSettings {
            concurrency: setting(p, vars, names::WEBHOOK_CONCURRENCY, 128, |v| {
                whole_number(v, 1, 10_000).map(|n| n as usize)
            }),
            endpoint_concurrency: setting(p, vars, names::WEBHOOK_ENDPOINT_CONCURRENCY, 16, |v| {
                whole_number(v, 1, 1_000).map(|n| n as usize)
            }),
            timeout: setting(
                p,
                vars,
                names::WEBHOOK_TIMEOUT_SECONDS,
                Duration::from_secs(15),
                |v| whole_number(v, 1, 60).map(Duration::from_secs),
            ),
            lease: setting(
                p,
                vars,
                names::WEBHOOK_LEASE_SECONDS,
                Duration::from_secs(60),
                |v| whole_number(v, 2, 3_600).map(Duration::from_secs),
            ),
            disable_after: setting(
                p,
                vars,
                names::WEBHOOK_DISABLE_AFTER_HOURS,
                Duration::from_secs(5 * 24 * 3600),
                |v| whole_number(v, 1, 24 * 365).map(|h| Duration::from_secs(h * 3600)),
            ),
            retry_delays: setting(
                p,
                vars,
                names::WEBHOOK_RETRY_DELAYS_SECONDS,
                DEFAULT_WEBHOOK_RETRY_DELAYS
                    .map(Duration::from_secs)
                    .to_vec(),
                parse_retry_delays,
            ),
            max_endpoints_per_org: setting(
                p,
                vars,
                names::WEBHOOK_MAX_ENDPOINTS_PER_ORG,
                50,
                |v| whole_number(v, 1, 10_000),
            ),
        };
        let retention_days = setting(p, vars, names::RETENTION_DAYS, None, |v| {
            whole_number(v, 1, 36_500).map(|n| Some(n as u32))
        });
        let scheduler_interval = setting(
            p,
            vars,
            names::INGESTER_SCHEDULER_INTERVAL_SECONDS,
            Duration::from_secs(60),
            |v| whole_number(v, 10, 86_400).map(Duration::from_secs),
        );
        let ingester_url = setting(p, vars, names::INGESTER_URL, None, |v| {
            Url::parse(v)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .map(Some)
                .ok_or_else(|| {
                    format!("must be an http(s) URL such as http://10.0.0.5:3016, not `{v}`")
                })
        });
        if webhooks.lease <= webhooks.timeout {
            p.push(format!(
                "WEBHOOK_LEASE_SECONDS: must be longer than WEBHOOK_TIMEOUT_SECONDS ({} s), so a delivery is not claimed twice while its request is still running",
                webhooks.timeout.as_secs()
            ));
        }
        let allow_private_webhook_urls = setting(
            p,
            vars,
            names::ALLOW_PRIVATE_WEBHOOK_URLS,
            false,
            parse_bool,
        );
        let ses_events = SesEventSettings {
            topic_arns: setting(
                p,
                vars,
                names::SES_EVENTS_SNS_TOPIC_ARN,
                Vec::new(),
                parse_topic_arns,
            ),
            sns_test_cert_url_prefix: setting(
                p,
                vars,
                names::SNS_TEST_CERT_URL_PREFIX,
                None,
                parse_test_prefix,
            ),
        };
        if !problems.is_empty() {
            return Err(ConfigError(problems));
        }
        let transport = transport.unwrap_or(TransportSettings::Capture);
        let app_url = match app_url {
            Some(url) => url,
            None => Url::parse(DEFAULT_APP_URL).map_err(|e| ConfigError(vec![e.to_string()]))?,
        };
        let secret = |names: &[&str]| vars.first(names).map(SecretString::from);
        Ok(Self {
            database_url: DatabaseUrl(SecretString::from(database_url)),
            database_max_connections,
            bind_address,
            port,
            ingester_port,
            app_url,
            data_dir,
            secrets: Secrets {
                auth_secret: secret(names::AUTH_SECRET),
                webhook_secret_encryption_key: secret(names::WEBHOOK_SECRET_ENCRYPTION_KEY),
                ingester_job_token: secret(names::INGESTER_JOB_TOKEN),
                ingester_inbound_token: secret(names::INGESTER_INBOUND_TOKEN),
                webhook_secret_encryption_key_previous: secret(
                    names::WEBHOOK_SECRET_ENCRYPTION_KEY_PREVIOUS,
                ),
            },
            rate_limit_backend,
            redis_url: redis_url.map(SecretString::from),
            rate_limit_redis_prefix,
            rate_limit_redis_timeout,
            rate_limit_failure_mode,
            rate_limits,
            trusted_proxy_hops,
            quota_daily_emails,
            quota_monthly_emails,
            delivery,
            transport,
            log_format,
            worker_concurrency,
            worker_lease,
            worker_poll_interval,
            delivery_max_attempts,
            domains: DomainSettings {
                dns_resolver,
                dns_timeout,
                spf_include,
                return_path_mx,
                dmarc_rua,
                tracking_cname_target,
            },
            webhooks,
            retention_days,
            scheduler_interval,
            ingester_url,
            allow_private_webhook_urls,
            ses_events,
        })
    }

    /// Whether this deployment is reachable by others: `APP_URL`'s host is not a loopback name or address.
    pub fn is_production(&self) -> bool {
        !is_local_host(&self.app_url)
    }
}

/// Reads one setting: its default when unset, its parsed value when valid; otherwise the problem is recorded
/// (under the setting's primary name) and the default stands in so every problem can be collected.
fn setting<T>(
    problems: &mut Vec<String>,
    vars: &Vars,
    names: &[&str],
    default: T,
    parse: impl Fn(&str) -> Result<T, String>,
) -> T {
    match vars.first(names) {
        None => default,
        Some(raw) => parse(&raw).unwrap_or_else(|e| {
            problems.push(format!("{}: {e}", names[0]));
            default
        }),
    }
}

fn whole_number(v: &str, min: u64, max: u64) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "must be a whole number from {min} to {max}, not `{v}`"
        )),
    }
}

/// Largest email quota: a billion emails a day or month is beyond any single deployment.
pub const MAX_EMAIL_QUOTA: i64 = 1_000_000_000;

fn parse_quota(v: &str) -> Result<Option<i64>, String> {
    match v.parse::<i64>() {
        Ok(n) if (1..=MAX_EMAIL_QUOTA).contains(&n) => Ok(Some(n)),
        _ => Err(format!(
            "must be a whole number from 1 to {MAX_EMAIL_QUOTA}, not `{v}`"
        )),
    }
}

fn parse_rate_number(v: &str) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(n) if (1..=MAX_RATE).contains(&n) => Ok(n),
        _ => Err(format!(
            "must be a whole number from 1 to {MAX_RATE}, not `{v}`"
        )),
    }
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("must be `true` or `false`, not `{v}`")),
    }
}

fn parse_port(v: &str) -> Result<u16, String> {
    v.parse::<u16>()
        .map_err(|_| format!("must be a port number from 0 to 65535, not `{v}`"))
}

fn is_local_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(url::Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        None => false,
    }
}

/// `DATABASE_URL`, which may carry a password: `Debug` and [`DatabaseUrl::redacted`] never show it.
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Scheme, host and database only: safe for logs.
    pub fn redacted(&self) -> String {
        let raw = self.expose();
        if raw.starts_with("sqlite") {
            return raw.split('?').next().unwrap_or_default().to_owned();
        }
        match Url::parse(raw) {
            Ok(url) => format!(
                "{}://{}{}{}",
                url.scheme(),
                url.host_str().unwrap_or_default(),
                url.port().map(|p| format!(":{p}")).unwrap_or_default(),
                url.path()
            ),
            Err(_) => "[unparseable]".to_owned(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_configuration() {
        let config = Config::from_vars(&Vars::default()).unwrap();
        assert_eq!(config.database_url.expose(), DEFAULT_DATABASE_URL);
        assert_eq!(config.port, 3015);
        assert_eq!(config.ingester_port, 3016);
        assert_eq!(config.app_url.as_str(), "http://localhost:3015/");
        assert_eq!(config.delivery, Delivery::Capture);
        assert_eq!(config.rate_limit_backend, RateLimitBackend::Memory);
        assert_eq!(config.log_format, LogFormat::Text);
        assert!(!config.is_production());
        assert!(!config.allow_private_webhook_urls);
        for (value, expected) in [("true", true), ("1", true), ("FALSE", false), ("no", false)] {
            let vars = Vars::from_pairs([("ALLOW_PRIVATE_WEBHOOK_URLS", value)]);
            let config = Config::from_vars(&vars).unwrap();
            assert_eq!(config.allow_private_webhook_urls, expected, "{value}");
        }
    }

    #[test]
    fn aliases_of_the_original_are_read_and_primary_names_win() {
        let vars = Vars::from_pairs([
            ("BETTER_AUTH_URL", "https://alias.example.com"),
            ("BETTER_AUTH_SECRET", "from-alias"),
        ]);
        let config = Config::from_vars(&vars).unwrap();
        assert_eq!(config.app_url.host_str(), Some("alias.example.com"));
        assert!(config.is_production());
        let s = config.secrets.auth_secret.unwrap();
        assert_eq!(s.expose_secret(), "from-alias");

        let vars = Vars::from_pairs([
            ("APP_URL", "http://127.0.0.1:9000"),
            ("NEXT_PUBLIC_APP_URL", "https://ignored.example.com"),
        ]);
        let config = Config::from_vars(&vars).unwrap();
        assert!(!config.is_production());
    }

    #[test]
    fn blank_values_count_as_unset() {
        let vars = Vars::from_pairs([("PORT", "  "), ("AUTH_SECRET", "")]);
        let config = Config::from_vars(&vars).unwrap();
        assert_eq!(config.port, 3015);
        assert!(config.secrets.auth_secret.is_none());
    }

    #[test]
    fn every_bad_value_is_reported_at_once() {
        let vars = Vars::from_pairs([
            ("PORT", "eighty"),
            ("APP_URL", "ftp://x"),
            ("DELIVERY", "pigeon"),
            ("LOG_FORMAT", "xml"),
            ("RATE_LIMIT_BACKEND", "memcached"),
            ("DATABASE_URL", "mysql://x"),
            ("DNS_RESOLVER", "dns.example.com"),
            ("DNS_TIMEOUT_SECONDS", "0"),
            ("SPF_INCLUDE", "v=spf1 -all"),
            ("RETURN_PATH_MX", "http://x"),
            ("DMARC_RUA", "nobody"),
            ("ALLOW_PRIVATE_WEBHOOK_URLS", "maybe"),
        ]);
        let ConfigError(problems) = Config::from_vars(&vars).unwrap_err();
        assert_eq!(problems.len(), 12, "{problems:#?}");
    }

    #[test]
    fn rate_limit_settings_are_read_and_checked() {
        let config = Config::from_vars(&Vars::default()).unwrap();
        assert_eq!(config.rate_limits.organization, DEFAULT_ORG_RATE);
        assert_eq!(config.rate_limits.client_ip, DEFAULT_IP_RATE);
        assert_eq!(config.rate_limit_failure_mode, FailureMode::Closed);
        assert_eq!(config.trusted_proxy_hops, 0);
        assert_eq!(config.quota_daily_emails, None);
        assert_eq!(config.quota_monthly_emails, None);

        let config = Config::from_vars(&Vars::from_pairs([
            ("RATE_LIMIT_BACKEND", "redis"),
            ("REDIS_URL", "rediss://:pw@cache.example.com:6380/2"),
            ("RATE_LIMIT_FAILURE_MODE", "OPEN"),
            ("RATE_LIMIT_ORG_PER_SECOND", "100"),
            ("RATE_LIMIT_IP_BURST", "3"),
            ("RATE_LIMIT_REDIS_TIMEOUT_MS", "50"),
            ("TRUSTED_PROXY_HOPS", "2"),
            ("QUOTA_DAILY_EMAILS", "100"),
        ]))
        .unwrap();
        assert_eq!(config.quota_daily_emails, Some(100));
        assert_eq!(config.rate_limit_failure_mode, FailureMode::Open);
        assert_eq!(config.rate_limits.organization, Rate::new(100, 20).unwrap());
        assert_eq!(config.rate_limits.client_ip, Rate::new(2, 3).unwrap());
        assert_eq!(config.rate_limit_redis_timeout, Duration::from_millis(50));
        assert_eq!(config.trusted_proxy_hops, 2);
        assert!(!format!("{config:?}").contains(":pw@"));

        let ConfigError(problems) = Config::from_vars(&Vars::from_pairs([
            ("RATE_LIMIT_BACKEND", "redis"),
            ("RATE_LIMIT_FAILURE_MODE", "sometimes"),
            ("RATE_LIMIT_ORG_PER_SECOND", "0"),
            ("RATE_LIMIT_ORG_BURST", "ten"),
            ("RATE_LIMIT_IP_PER_SECOND", "1000001"),
            ("RATE_LIMIT_REDIS_TIMEOUT_MS", "0"),
            ("TRUSTED_PROXY_HOPS", "11"),
            ("QUOTA_MONTHLY_EMAILS", "0"),
        ]))
        .unwrap_err();
        assert_eq!(problems.len(), 8, "{problems:#?}");
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("REDIS_URL: must be set"))
        );

        let ConfigError(problems) = Config::from_vars(&Vars::from_pairs([(
            "REDIS_URL",
            "http://:secret@cache:6379",
        )]))
        .unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(!problems[0].contains("secret"), "{problems:?}");
    }

    #[test]
    fn loopback_hosts_are_local() {
        for url in [
            "http://localhost:3015",
            "http://127.0.0.1",
            "http://[::1]:8080",
        ] {
            let config = Config::from_vars(&Vars::from_pairs([("APP_URL", url)])).unwrap();
            assert!(!config.is_production(), "{url}");
        }
        for url in [
            "https://mail.example.com",
            "http://10.0.0.5",
            "http://127.0.0.2",
        ] {
            let config = Config::from_vars(&Vars::from_pairs([("APP_URL", url)])).unwrap();
            assert!(config.is_production(), "{url}");
        }
    }

    #[test]
    fn domain_settings_are_parsed() {
        let vars = Vars::from_pairs([
            ("DNS_RESOLVER", "127.0.0.1:5353"),
            (
                "SPF_INCLUDE",
                " include:_spf.relay.example   ip4:203.0.113.7 ",
            ),
            ("RETURN_PATH_MX", "Bounces.Example.com"),
            ("DMARC_RUA", "mailto:dmarc@example.com"),
        ]);
        let d = Config::from_vars(&vars).unwrap().domains;
        assert_eq!(d.dns_resolver, Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(d.dns_timeout, Duration::from_secs(5));
        assert_eq!(
            d.spf_include.as_deref(),
            Some("include:_spf.relay.example ip4:203.0.113.7")
        );
        assert_eq!(d.return_path_mx.as_deref(), Some("bounces.example.com"));
        assert_eq!(d.dmarc_rua.as_deref(), Some("dmarc@example.com"));
        assert_eq!(d.tracking_cname_target, None);
    }

    #[test]
    fn ses_event_settings_are_parsed() {
        let config = Config::from_vars(&Vars::default()).unwrap();
        assert_eq!(config.ses_events, SesEventSettings::default());
        let vars = Vars::from_pairs([
            (
                "SES_EVENTS_SNS_TOPIC_ARN",
                " arn:aws:sns:eu-west-1:123456789012:opensend-events , arn:aws-cn:sns:cn-north-1:123456789012:b.fifo",
            ),
            ("SNS_TEST_CERT_URL_PREFIX", "http://127.0.0.1:8089"),
        ]);
        let s = Config::from_vars(&vars).unwrap().ses_events;
        assert_eq!(
            s.topic_arns,
            vec![
                "arn:aws:sns:eu-west-1:123456789012:opensend-events",
                "arn:aws-cn:sns:cn-north-1:123456789012:b.fifo"
            ]
        );
        assert_eq!(
            s.sns_test_cert_url_prefix.as_deref(),
            Some("http://127.0.0.1:8089/")
        );
        for bad in [
            "opensend-events",
            "arn:aws:sqs:eu-west-1:123456789012:q",
            "arn:aws:sns:eu-west-1:1234:t",
            "arn:aws:sns:eu-west-1:123456789012:",
            "arn:aws:sns:eu-west-1:123456789012:a b",
            "arn:aws:sns:eu-west-1:123456789012:t:extra",
            ",",
        ] {
            let vars = Vars::from_pairs([("SES_EVENTS_SNS_TOPIC_ARN", bad)]);
            let ConfigError(problems) = Config::from_vars(&vars).unwrap_err();
            assert!(
                problems[0].starts_with("SES_EVENTS_SNS_TOPIC_ARN:"),
                "{bad}"
            );
        }
        for bad in ["ftp://x", "127.0.0.1:8089", "http://u:p@127.0.0.1/"] {
            let vars = Vars::from_pairs([("SNS_TEST_CERT_URL_PREFIX", bad)]);
            assert!(Config::from_vars(&vars).is_err(), "{bad}");
        }
    }

    #[test]
    fn database_password_never_shows() {
        let vars = Vars::from_pairs([("DATABASE_URL", "postgres://user:hunter2@db:5432/opensend")]);
        let config = Config::from_vars(&vars).unwrap();
        assert_eq!(
            config.database_url.redacted(),
            "postgres://db:5432/opensend"
        );
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
