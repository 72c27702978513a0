//! Configuration from the environment (and an optional `.env` file, loaded by the binary before this runs).
//!
//! Every setting, its default and its aliases are listed in `docs/configuration.md`; keep the two in step.
//! Values are trimmed and an empty value counts as unset. Aliases exist so an existing OpenSend `.env` works
//! unchanged; when several names are set, the first one in the list wins.
//!
//! Each section of [`Config`] is read by the module of the same name (`listen`, `database`, `rate_limits`,
//! `delivery`…), through one [`Reader`] that collects every problem, so a process refuses to start with the
//! whole list rather than the first mistake.

pub mod broadcasts;
pub mod dashboard;
pub mod database;
pub mod delivery;
pub mod domains;
pub mod jobs;
pub mod listen;
pub mod names;
pub mod quotas;
pub mod rate_limits;
pub mod secrets;
pub mod ses_events;
pub mod webhooks;

use std::collections::HashMap;
use std::path::PathBuf;

use url::Url;

pub use broadcasts::BroadcastSettings;
pub use dashboard::{DashboardSettings, Signup};
pub use database::{DatabaseSettings, DatabaseUrl};
pub use delivery::{Delivery, DeliverySettings, TransportSettings, WorkerSettings};
pub use domains::DomainSettings;
pub use jobs::JobSettings;
pub use listen::ListenSettings;
pub use quotas::QuotaSettings;
pub use rate_limits::{FailureMode, Limits, RateLimitBackend, RateLimitSettings};
pub use secrets::{SECRET_SLOTS, SecretSlot, Secrets};
pub use ses_events::SesEventSettings;
pub use webhooks::WebhookSettings;

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
    pub fn first(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|name| {
            self.0
                .get(*name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        })
    }
}

pub const DEFAULT_APP_URL: &str = "http://localhost:3015";
pub const DEFAULT_DATA_DIR: &str = "./data";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `FromStr` for a setting that takes one of a few keywords (case-insensitive).
macro_rules! keyword_setting {
    ($ty:ty, { $($text:literal => $value:expr),+ $(,)? }) => {
        impl ::std::str::FromStr for $ty {
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
pub(crate) use keyword_setting;

keyword_setting!(LogFormat, {
    "text" => LogFormat::Text,
    "json" => LogFormat::Json,
});

/// The whole configuration of a process, one section per concern.
#[derive(Clone, Debug)]
pub struct Config {
    /// `APP_URL`: the public URL. Any host but a loopback one makes the deployment a production one.
    pub app_url: Url,
    /// `DATA_DIR`: the SQLite database (by default) and generated local secrets.
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    pub listen: ListenSettings,
    pub database: DatabaseSettings,
    pub secrets: Secrets,
    pub rate_limits: RateLimitSettings,
    pub quotas: QuotaSettings,
    pub delivery: DeliverySettings,
    pub domains: DomainSettings,
    pub webhooks: WebhookSettings,
    pub jobs: JobSettings,
    /// `ALLOW_PRIVATE_WEBHOOK_URLS`: let URLs fetched on a user's behalf (webhooks, attachments by `path`)
    /// reach loopback and private addresses. Local development and tests only; production refuses it.
    pub allow_private_webhook_urls: bool,
    /// `POST /events/ses` on the ingester (see [`SesEventSettings`]).
    pub ses_events: SesEventSettings,
    /// Whether `APP_URL` was set at all (an unset one defaults to `http://localhost:3015`).
    pub app_url_configured: bool,
    pub dashboard: DashboardSettings,
    pub broadcasts: BroadcastSettings,
}

/// Settings that could not be read, all of them at once.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let mut r = Reader::new(vars);
        let app_url = r.setting(names::APP_URL, None, |v| match Url::parse(v) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(Some(u)),
            _ => Err(format!(
                "must be an http(s) URL such as https://mail.example.com, not `{v}`"
            )),
        });
        let data_dir = r.setting(names::DATA_DIR, PathBuf::from(DEFAULT_DATA_DIR), |v| {
            Ok(PathBuf::from(v))
        });
        let log_format = r.setting(names::LOG_FORMAT, LogFormat::Text, str::parse);
        let allow_private_webhook_urls =
            r.setting(names::ALLOW_PRIVATE_WEBHOOK_URLS, false, parse_bool);
        let listen = ListenSettings::read(&mut r);
        let database = DatabaseSettings::read(&mut r);
        let secrets = Secrets::read(&mut r);
        let rate_limits = RateLimitSettings::read(&mut r);
        let quotas = QuotaSettings::read(&mut r);
        let delivery = DeliverySettings::read(&mut r);
        let domains = DomainSettings::read(&mut r);
        let webhooks = WebhookSettings::read(&mut r);
        let jobs = JobSettings::read(&mut r);
        let ses_events = SesEventSettings::read(&mut r);
        let dashboard = DashboardSettings::read(&mut r);
        let broadcasts = BroadcastSettings::read(&mut r);
        r.finish()?;
        let app_url_configured = app_url.is_some();
        let app_url = match app_url {
            Some(url) => url,
            None => Url::parse(DEFAULT_APP_URL).map_err(|e| ConfigError(vec![e.to_string()]))?,
        };
        Ok(Self {
            app_url,
            data_dir,
            log_format,
            listen,
            database,
            secrets,
            rate_limits,
            quotas,
            delivery,
            domains,
            webhooks,
            jobs,
            allow_private_webhook_urls,
            ses_events,
            app_url_configured,
            dashboard,
            broadcasts,
        })
    }

    /// Who may sign up: `SIGNUP`, or by default `open` on a local deployment (the person at the laptop) and
    /// `invite` in production (a public sign-up page would let anyone in).
    pub fn signup(&self) -> Signup {
        self.dashboard.signup.unwrap_or(if self.is_production() {
            Signup::Invite
        } else {
            Signup::Open
        })
    }

    /// The From of the dashboard's own mail: `DASHBOARD_EMAIL_FROM`, or `OpenSend <no-reply@APP_URL's host>`.
    pub fn dashboard_email_from(&self) -> Option<opensend_core::Mailbox> {
        self.dashboard.email_from.clone().or_else(|| {
            let host = self.app_url.host_str()?;
            // `localhost` or an address is no mail domain; `.test` is reserved for exactly this (RFC 2606).
            let domain = if host.contains('.') && host.parse::<std::net::IpAddr>().is_err() {
                host.to_owned()
            } else {
                "opensend.test".to_owned()
            };
            opensend_core::Mailbox::parse(&format!("OpenSend <no-reply@{domain}>")).ok()
        })
    }

    /// Whether cookies must be `Secure`: `APP_URL` is https.
    pub fn https(&self) -> bool {
        self.app_url.scheme() == "https"
    }

    /// Whether this deployment is reachable by others: `APP_URL`'s host is not a loopback name or address.
    pub fn is_production(&self) -> bool {
        !is_local_host(&self.app_url)
    }
}

/// Reads settings from [`Vars`], recording every problem (under the setting's primary name) instead of
/// stopping at the first, so a process can list them all at once.
pub struct Reader<'a> {
    vars: &'a Vars,
    problems: Vec<String>,
}

impl<'a> Reader<'a> {
    pub fn new(vars: &'a Vars) -> Self {
        Self {
            vars,
            problems: Vec::new(),
        }
    }

    /// One setting: its default when unset, its parsed value when valid; otherwise the problem is recorded
    /// and the default stands in so the other settings can still be read.
    pub fn setting<T>(
        &mut self,
        names: &[&str],
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        match self.vars.first(names) {
            None => default,
            Some(raw) => parse(&raw).unwrap_or_else(|e| {
                self.problems.push(format!("{}: {e}", names[0]));
                default
            }),
        }
    }

    /// The raw value of the first of `names` that is set.
    pub fn raw(&self, names: &[&str]) -> Option<String> {
        self.vars.first(names)
    }

    /// A problem that is not about one value (two settings that contradict each other, say).
    pub fn problem(&mut self, problem: impl Into<String>) {
        self.problems.push(problem.into());
    }

    fn finish(self) -> Result<(), ConfigError> {
        match self.problems.is_empty() {
            true => Ok(()),
            false => Err(ConfigError(self.problems)),
        }
    }
}

pub(crate) fn whole_number(v: &str, min: u64, max: u64) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "must be a whole number from {min} to {max}, not `{v}`"
        )),
    }
}

pub(crate) fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("must be `true` or `false`, not `{v}`")),
    }
}

pub(crate) fn parse_host(v: &str) -> Result<String, String> {
    opensend_core::DomainName::parse(v)
        .map(|d| d.to_string())
        .map_err(|e| format!("must be a host name such as mail.example.com: it {e}"))
}

pub(crate) fn parse_http_url(v: &str, example: &str) -> Result<Url, String> {
    Url::parse(v)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| format!("must be an http(s) URL such as {example}, not `{v}`"))
}

fn is_local_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(url::Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn defaults_need_no_configuration() {
        let config = Config::from_vars(&Vars::default()).unwrap();
        assert_eq!(config.database.url.expose(), database::DEFAULT_DATABASE_URL);
        assert_eq!(config.listen.port, 3015);
        assert_eq!(config.listen.ingester_port, 3016);
        assert_eq!(config.app_url.as_str(), "http://localhost:3015/");
        assert!(!config.app_url_configured);
        assert_eq!(config.delivery.mode, Delivery::Capture);
        assert_eq!(config.rate_limits.backend, RateLimitBackend::Memory);
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
        assert!(config.app_url_configured);
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
        assert_eq!(config.listen.port, 3015);
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
}
