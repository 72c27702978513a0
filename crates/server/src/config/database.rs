//! Which database, and how many connections to it.

use std::fmt;
use std::time::Duration;

use opensend_store::CacheSettings;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::{Reader, names};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/opensend.db";
pub const DEFAULT_DATABASE_MAX_CONNECTIONS: u32 = 16;

#[derive(Clone, Debug)]
pub struct DatabaseSettings {
    /// `DATABASE_URL`: `sqlite:…` (the embedded default) or `postgres://…`.
    pub url: DatabaseUrl,
    /// `DATABASE_MAX_CONNECTIONS`: the pool size (on SQLite, of the readers; writes have one connection).
    pub max_connections: u32,
    /// `AUTH_CACHE_TTL_MS` and `CACHE_EPOCH_CHECK_INTERVAL_MS`: the in-process caches of API keys and webhook
    /// endpoints (see `docs/configuration.md`).
    pub caches: CacheSettings,
}

impl DatabaseSettings {
    pub(super) fn read(r: &mut Reader) -> Self {
        let url = r.setting(
            names::DATABASE_URL,
            DEFAULT_DATABASE_URL.to_owned(),
            |v| match v.split(':').next() {
                Some("sqlite" | "postgres" | "postgresql") => Ok(v.to_owned()),
                _ => Err("must start with `sqlite:` or `postgres://`".to_owned()),
            },
        );
        let max_connections = r.setting(
            names::DATABASE_MAX_CONNECTIONS,
            DEFAULT_DATABASE_MAX_CONNECTIONS,
            |v| match v.parse::<u32>() {
                Ok(n) if (1..=1000).contains(&n) => Ok(n),
                _ => Err(format!("must be a whole number from 1 to 1000, not `{v}`")),
            },
        );
        let millis = |most: u64| {
            move |v: &str| match v.parse::<u64>() {
                Ok(n) if n <= most => Ok(Duration::from_millis(n)),
                _ => Err(format!(
                    "must be a whole number of milliseconds from 0 to {most}, not `{v}`"
                )),
            }
        };
        let ttl = r.setting(
            names::AUTH_CACHE_TTL_MS,
            CacheSettings::DEFAULT_TTL,
            millis(3_600_000),
        );
        let epoch_check_interval = r.setting(
            names::CACHE_EPOCH_CHECK_INTERVAL_MS,
            CacheSettings::DEFAULT_EPOCH_CHECK_INTERVAL,
            millis(60_000),
        );
        Self {
            url: DatabaseUrl(SecretString::from(url)),
            max_connections,
            caches: CacheSettings {
                ttl,
                epoch_check_interval,
            },
        }
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
    use super::super::{Config, Vars};

    #[test]
    fn database_password_never_shows() {
        let vars = Vars::from_pairs([("DATABASE_URL", "postgres://user:hunter2@db:5432/opensend")]);
        let config = Config::from_vars(&vars).unwrap();
        assert_eq!(
            config.database.url.redacted(),
            "postgres://db:5432/opensend"
        );
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
