//! Rate limits: where buckets live (memory or Redis), what happens when Redis is away, the default rates,
//! and how many proxies stand in front of the API.

use std::time::Duration;

use opensend_core::Rate;
use opensend_core::rate::MAX_RATE;
use secrecy::SecretString;

use super::{Reader, keyword_setting, names};

pub const DEFAULT_RATE_LIMIT_REDIS_PREFIX: &str = "opensend:ratelimit";
pub const DEFAULT_RATE_LIMIT_REDIS_TIMEOUT: Duration = Duration::from_millis(200);
/// Default limits: requests per second and burst.
pub const DEFAULT_ORG_RATE: Rate = Rate::constant(10, 20);
pub const DEFAULT_IP_RATE: Rate = Rate::constant(2, 10);
pub const DEFAULT_INGESTER_RATE: Rate = Rate::constant(50, 100);
/// Most proxies a deployment may declare in front of it.
pub const MAX_TRUSTED_PROXY_HOPS: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimitBackend {
    Memory,
    Redis,
}

keyword_setting!(RateLimitBackend, {
    "memory" => RateLimitBackend::Memory,
    "redis" => RateLimitBackend::Redis,
});

/// What happens when Redis cannot be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureMode {
    /// Refuse the request with 503 `rate_limit_unavailable`.
    Closed,
    /// Limit with this process's in-memory buckets until Redis is back.
    Open,
}

keyword_setting!(FailureMode, {
    "closed" => FailureMode::Closed,
    "open" => FailureMode::Open,
});

/// The limits a deployment applies by default (each organization or key may override its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub organization: Rate,
    pub client_ip: Rate,
    pub ingester_ip: Rate,
}

#[derive(Clone, Debug)]
pub struct RateLimitSettings {
    /// `RATE_LIMIT_BACKEND`.
    pub backend: RateLimitBackend,
    /// `REDIS_URL` (may carry a password).
    pub redis_url: Option<SecretString>,
    /// `RATE_LIMIT_REDIS_PREFIX`: start of every Redis key, so deployments (or test runs) sharing one Redis
    /// keep apart.
    pub redis_prefix: String,
    /// `RATE_LIMIT_REDIS_TIMEOUT_MS`.
    pub redis_timeout: Duration,
    /// `RATE_LIMIT_FAILURE_MODE`.
    pub failure_mode: FailureMode,
    /// `RATE_LIMIT_{ORG,IP,INGESTER}_{PER_SECOND,BURST}`.
    pub limits: Limits,
    /// `TRUSTED_PROXY_HOPS`: proxies in front of the API whose `X-Forwarded-For` entries are believed.
    pub trusted_proxy_hops: usize,
}

impl RateLimitSettings {
    pub(super) fn read(r: &mut Reader) -> Self {
        let backend = r.setting(
            names::RATE_LIMIT_BACKEND,
            RateLimitBackend::Memory,
            str::parse,
        );
        let redis_url = r.setting(names::REDIS_URL, None, |v| {
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
        if backend == RateLimitBackend::Redis && redis_url.is_none() {
            r.problem("REDIS_URL: must be set when RATE_LIMIT_BACKEND=redis");
        }
        let redis_prefix = r.setting(
            names::RATE_LIMIT_REDIS_PREFIX,
            DEFAULT_RATE_LIMIT_REDIS_PREFIX.to_owned(),
            |v| match v.len() <= 100 && v.chars().all(|c| c.is_ascii_graphic()) {
                true => Ok(v.to_owned()),
                false => Err("must be up to 100 visible ASCII characters".to_owned()),
            },
        );
        let redis_timeout = r.setting(
            names::RATE_LIMIT_REDIS_TIMEOUT_MS,
            DEFAULT_RATE_LIMIT_REDIS_TIMEOUT,
            |v| match v.parse::<u64>() {
                Ok(ms) if (1..=10_000).contains(&ms) => Ok(Duration::from_millis(ms)),
                _ => Err(format!(
                    "must be a whole number of milliseconds from 1 to 10000, not `{v}`"
                )),
            },
        );
        let failure_mode = r.setting(
            names::RATE_LIMIT_FAILURE_MODE,
            FailureMode::Closed,
            str::parse,
        );
        let mut rate = |per_second: &[&str], burst: &[&str], default: Rate| {
            let per_second = r.setting(per_second, default.per_second.get(), parse_rate_number);
            let burst = r.setting(burst, default.burst.get(), parse_rate_number);
            Rate::new(per_second, burst).unwrap_or(default)
        };
        let limits = Limits {
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
        let trusted_proxy_hops =
            r.setting(names::TRUSTED_PROXY_HOPS, 0, |v| match v.parse::<usize>() {
                Ok(n) if n <= MAX_TRUSTED_PROXY_HOPS => Ok(n),
                _ => Err(format!(
                    "must be a whole number from 0 to {MAX_TRUSTED_PROXY_HOPS}, not `{v}`"
                )),
            });
        Self {
            backend,
            redis_url: redis_url.map(SecretString::from),
            redis_prefix,
            redis_timeout,
            failure_mode,
            limits,
            trusted_proxy_hops,
        }
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

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError, Vars};
    use super::*;

    #[test]
    fn rate_limit_settings_are_read_and_checked() {
        let config = Config::from_vars(&Vars::default()).unwrap();
        assert_eq!(config.rate_limits.limits.organization, DEFAULT_ORG_RATE);
        assert_eq!(config.rate_limits.limits.client_ip, DEFAULT_IP_RATE);
        assert_eq!(config.rate_limits.failure_mode, FailureMode::Closed);
        assert_eq!(config.rate_limits.trusted_proxy_hops, 0);
        assert_eq!(config.quotas.daily_emails, None);
        assert_eq!(config.quotas.monthly_emails, None);

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
        assert_eq!(config.quotas.daily_emails, Some(100));
        assert_eq!(config.rate_limits.failure_mode, FailureMode::Open);
        assert_eq!(
            config.rate_limits.limits.organization,
            Rate::new(100, 20).unwrap()
        );
        assert_eq!(
            config.rate_limits.limits.client_ip,
            Rate::new(2, 3).unwrap()
        );
        assert_eq!(config.rate_limits.redis_timeout, Duration::from_millis(50));
        assert_eq!(config.rate_limits.trusted_proxy_hops, 2);
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
}
