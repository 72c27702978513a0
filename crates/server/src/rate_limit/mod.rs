//! Rate limiting: GCRA buckets per organization, per API key (when it has its own limit), per client address
//! for requests without a valid key, and per source address on the ingester.
//!
//! Two stores hold the buckets: [`memory`] (the `governor` crate, one process) and [`redis`] (one atomic Lua
//! script per check, shared by every process that uses the same Redis and key prefix). When Redis cannot be
//! reached, [`FailureMode`] decides: `closed` answers 503 `rate_limit_unavailable`, `open` falls back to an
//! in-memory limiter of this process. Nothing here touches the database.
//!
//! GCRA (the generic cell rate algorithm) is a token bucket kept as one timestamp per key: a bucket of
//! `burst` cells refilled at `per_second` cells a second. Unlike a fixed window it never lets twice the limit
//! through around a window boundary.

pub mod client_ip;
pub mod memory;
pub mod middleware;
pub mod redis;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::config::{Config, RateLimitBackend};
pub use crate::config::{FailureMode, Limits};

pub use memory::MemoryLimiter;
pub use redis::RedisLimiter;

pub use opensend_core::Rate;
pub use opensend_core::rate::MAX_RATE;

/// Whose bucket a request draws from. IPv6 clients are grouped by /64 (see [`client_ip`]) before they get here.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    Organization(Uuid),
    ApiKey(Uuid),
    /// A client of the public API that did not present a valid key.
    ClientIp(IpAddr),
    /// A source address on the ingester port.
    IngesterIp(IpAddr),
    /// Failed dashboard sign-ins to one account address, kept under the address's SHA-256 (hex) so neither
    /// memory dumps nor Redis keys hold addresses.
    SignInAddress(String),
    /// Failed dashboard sign-ins from one client address.
    SignInIp(IpAddr),
    /// Failed SMTP `AUTH` attempts from one client address.
    SmtpAuthIp(IpAddr),
}

impl Subject {
    /// The part of the Redis key after the prefix. Ids and addresses only: never a token or an email address.
    fn redis_suffix(&self) -> String {
        match self {
            Subject::Organization(id) => format!("org:{id}"),
            Subject::ApiKey(id) => format!("key:{id}"),
            Subject::ClientIp(ip) => format!("ip:{ip}"),
            Subject::IngesterIp(ip) => format!("ingester:{ip}"),
            Subject::SignInAddress(hash) => format!("signin:{hash}"),
            Subject::SignInIp(ip) => format!("signin-ip:{ip}"),
            Subject::SmtpAuthIp(ip) => format!("smtp-auth-ip:{ip}"),
        }
    }
}

/// One bucket to draw from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub subject: Subject,
    pub rate: Rate,
}

/// The answer for one request; for several buckets, the one with the least capacity left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The burst of the deciding bucket (`ratelimit-limit`).
    pub limit: u32,
    /// Requests that could still be made right now (`ratelimit-remaining`).
    pub remaining: u32,
    /// Until the deciding bucket is full again (`ratelimit-reset`).
    pub reset: Duration,
    /// Until a request of the same cost could pass (`retry-after`); zero when allowed.
    pub retry_after: Duration,
    /// The request costs more than the burst of a bucket, so waiting never helps.
    pub exceeds_burst: bool,
}

impl Decision {
    /// Keeps whichever of the two leaves the caller less: a refusal beats an allowance, then the lower
    /// remaining capacity.
    fn tighter(self, other: Decision) -> Decision {
        match (self.allowed, other.allowed) {
            (true, false) => other,
            (false, true) => self,
            (false, false) => Decision {
                retry_after: self.retry_after.max(other.retry_after),
                exceeds_burst: self.exceeds_burst || other.exceeds_burst,
                ..if self.remaining <= other.remaining {
                    self
                } else {
                    other
                }
            },
            (true, true) if other.remaining < self.remaining => other,
            (true, true) => self,
        }
    }

    fn merge(decisions: impl IntoIterator<Item = Decision>) -> Option<Decision> {
        decisions.into_iter().reduce(Decision::tighter)
    }
}

/// The shared store could not answer in time (or at all).
#[derive(Debug, thiserror::Error)]
#[error("the rate-limit store is unavailable: {0}")]
pub struct StoreUnavailable(pub String);

/// The limiter every router shares. Cheap to clone.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    failure_mode: FailureMode,
    /// Buckets used while Redis is unreachable in `open` mode (and never otherwise).
    fallback: MemoryLimiter,
    /// When a Redis failure was last logged, in seconds since `started`, so a long outage logs once a minute
    /// rather than once a request.
    last_failure_log: AtomicU64,
    started: Instant,
}

enum Store {
    Memory(MemoryLimiter),
    Redis(Box<RedisLimiter>),
}

/// How often a continuing Redis failure is logged.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(60);

impl RateLimiter {
    pub fn memory() -> Self {
        Self::with_store(Store::Memory(MemoryLimiter::new()), FailureMode::Closed)
    }

    pub fn redis(redis: RedisLimiter, failure_mode: FailureMode) -> Self {
        Self::with_store(Store::Redis(Box::new(redis)), failure_mode)
    }

    /// The limiter `config` asks for. Redis is connected lazily, so a Redis that is down at start does not
    /// stop the process: requests get the configured failure mode until it is back.
    pub fn from_config(config: &Config) -> Result<Self, StoreUnavailable> {
        match config.rate_limits.backend {
            RateLimitBackend::Memory => Ok(Self::memory()),
            RateLimitBackend::Redis => {
                let url = config.rate_limits.redis_url.as_ref().ok_or_else(|| {
                    StoreUnavailable("RATE_LIMIT_BACKEND=redis needs REDIS_URL".to_owned())
                })?;
                let redis = RedisLimiter::new(
                    url,
                    &config.rate_limits.redis_prefix,
                    config.rate_limits.redis_timeout,
                )?;
                Ok(Self::redis(redis, config.rate_limits.failure_mode))
            }
        }
    }

    fn with_store(store: Store, failure_mode: FailureMode) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                failure_mode,
                fallback: MemoryLimiter::new(),
                last_failure_log: AtomicU64::new(u64::MAX),
                started: Instant::now(),
            }),
        }
    }

    /// Draws `cost` requests from every bucket, all or nothing in Redis; in memory the buckets are drawn
    /// in order and a refusal stops before the later ones (list the most specific bucket first).
    /// A request that stands for several units (a batch of emails) costs more than one: see
    /// [`middleware::charge_additional`].
    pub async fn check(
        &self,
        buckets: &[Bucket],
        cost: NonZeroU32,
    ) -> Result<Decision, StoreUnavailable> {
        let result = match &self.inner.store {
            Store::Memory(memory) => return Ok(memory.check(buckets, cost)),
            Store::Redis(redis) => redis.check(buckets, cost, true).await,
        };
        self.or_fallback(result, |fallback| fallback.check(buckets, cost))
    }

    /// Whether `bucket` would refuse one more request, without drawing from it: the address check that runs
    /// before an API key is looked up. `Some` carries the refusal.
    pub async fn refuses(&self, bucket: &Bucket) -> Result<Option<Decision>, StoreUnavailable> {
        let one = NonZeroU32::MIN;
        let result = match &self.inner.store {
            Store::Memory(memory) => return Ok(memory.refuses(bucket)),
            Store::Redis(redis) => redis
                .check(std::slice::from_ref(bucket), one, false)
                .await
                .map(|d| (!d.allowed).then_some(d)),
        };
        self.or_fallback(result, |fallback| fallback.refuses(bucket))
    }

    /// Whether a request costing `cost` would be refused by `bucket` now, without drawing from it: the
    /// dashboard's sign-in check, made before a password is looked at, for attempts that cost more than one
    /// when they fail. In memory this is the refusal the last refused draw recorded (its wait accounts for
    /// the cost); in Redis the bucket is asked directly.
    pub async fn would_refuse(
        &self,
        bucket: &Bucket,
        cost: NonZeroU32,
    ) -> Result<Option<Decision>, StoreUnavailable> {
        let result = match &self.inner.store {
            Store::Memory(memory) => return Ok(memory.refuses(bucket)),
            Store::Redis(redis) => redis
                .check(std::slice::from_ref(bucket), cost, false)
                .await
                .map(|d| (!d.allowed).then_some(d)),
        };
        self.or_fallback(result, |fallback| fallback.refuses(bucket))
    }

    /// Drops in-memory buckets that are full again (they are indistinguishable from new ones), so a stream
    /// of distinct addresses cannot grow memory without bound. Redis expires its keys by itself.
    pub fn forget_idle(&self) {
        if let Store::Memory(memory) = &self.inner.store {
            memory.forget_idle();
        }
        self.inner.fallback.forget_idle();
    }

    fn or_fallback<T>(
        &self,
        result: Result<T, StoreUnavailable>,
        fallback: impl FnOnce(&MemoryLimiter) -> T,
    ) -> Result<T, StoreUnavailable> {
        match result {
            Ok(value) => Ok(value),
            Err(e) => {
                let open = self.inner.failure_mode == FailureMode::Open;
                if self.should_log_failure() {
                    if open {
                        tracing::warn!(error = %e, "rate limiting falls back to this process's memory (RATE_LIMIT_FAILURE_MODE=open); logged at most once a minute");
                    } else {
                        tracing::error!(error = %e, "rate limiting unavailable: requests are refused with 503 (RATE_LIMIT_FAILURE_MODE=closed); logged at most once a minute");
                    }
                }
                if open {
                    Ok(fallback(&self.inner.fallback))
                } else {
                    Err(e)
                }
            }
        }
    }

    fn should_log_failure(&self) -> bool {
        let now = self.inner.started.elapsed().as_secs();
        let last = self.inner.last_failure_log.load(Ordering::Relaxed);
        let due = last == u64::MAX || now.saturating_sub(last) >= FAILURE_LOG_INTERVAL.as_secs();
        due && self
            .inner
            .last_failure_log
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Keeps memory bounded: forgets idle buckets once a minute for as long as the limiter is in use.
    pub fn spawn_housekeeping(&self) {
        let weak = Arc::downgrade(&self.inner);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    match weak.upgrade() {
                        Some(inner) => RateLimiter { inner }.forget_idle(),
                        None => break,
                    }
                }
            });
        }
    }
}

/// Whole seconds for a header, rounded up so a client that waits that long is never early.
pub fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(allowed: bool, remaining: u32, retry: u64) -> Decision {
        Decision {
            allowed,
            limit: 10,
            remaining,
            reset: Duration::from_secs(1),
            retry_after: Duration::from_secs(retry),
            exceeds_burst: false,
        }
    }

    #[test]
    fn the_tighter_decision_wins() {
        let merged = Decision::merge([decision(true, 5, 0), decision(true, 2, 0)]).unwrap();
        assert_eq!(merged.remaining, 2);
        let merged = Decision::merge([decision(true, 5, 0), decision(false, 3, 4)]).unwrap();
        assert!(!merged.allowed);
        assert_eq!(merged.retry_after, Duration::from_secs(4));
        let merged = Decision::merge([decision(false, 0, 2), decision(false, 1, 7)]).unwrap();
        assert_eq!((merged.remaining, merged.retry_after.as_secs()), (0, 7));
    }

    #[test]
    fn rates_are_bounded() {
        assert!(Rate::new(0, 1).is_none());
        assert!(Rate::new(1, 0).is_none());
        assert!(Rate::new(MAX_RATE + 1, 1).is_none());
        assert!(Rate::from_stored(-1, 5).is_none());
        let rate = Rate::new(4, 8).unwrap();
        assert_eq!(rate.interval(), Duration::from_millis(250));
    }

    #[test]
    fn header_seconds_round_up() {
        assert_eq!(ceil_secs(Duration::ZERO), 0);
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(2)), 2);
        assert_eq!(ceil_secs(Duration::from_millis(2001)), 3);
    }
}
