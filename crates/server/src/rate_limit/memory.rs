//! Buckets in this process's memory, through `governor` (GCRA, lock-free per key).
//!
//! `governor` gives each limiter one quota, while our buckets differ in shape (an organization may have its
//! own limit), so there is one keyed limiter per distinct [`Rate`]; deployments have a handful.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::{Bucket, Decision, Rate, Subject};

type Keyed =
    RateLimiter<Subject, DefaultKeyedStateStore<Subject>, DefaultClock, StateInformationMiddleware>;

#[derive(Default)]
pub struct MemoryLimiter {
    by_rate: RwLock<HashMap<Rate, Arc<Keyed>>>,
    /// Until when each bucket refused a request. `governor` cannot look at a bucket without drawing from it,
    /// so this is how [`MemoryLimiter::refuses`] answers; only refusals write here.
    refused_until: Mutex<HashMap<Subject, Refusal>>,
}

#[derive(Clone, Copy)]
struct Refusal {
    until: Instant,
    full_at: Instant,
    limit: u32,
}

impl MemoryLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn check(&self, buckets: &[Bucket], cost: NonZeroU32) -> Decision {
        let mut decisions = Vec::with_capacity(buckets.len());
        for bucket in buckets {
            let decision = self.check_one(bucket, cost);
            decisions.push(decision);
            if !decision.allowed {
                break;
            }
        }
        Decision::merge(decisions).unwrap_or(Decision {
            allowed: true,
            limit: 0,
            remaining: 0,
            reset: Duration::ZERO,
            retry_after: Duration::ZERO,
            exceeds_burst: false,
        })
    }

    pub fn refuses(&self, bucket: &Bucket) -> Option<Decision> {
        let refusal = *self.refused_until.lock().ok()?.get(&bucket.subject)?;
        let now = Instant::now();
        let left = refusal.until.checked_duration_since(now)?;
        Some(Decision {
            allowed: false,
            limit: refusal.limit,
            remaining: 0,
            reset: refusal.full_at.saturating_duration_since(now),
            retry_after: left,
            exceeds_burst: false,
        })
    }

    fn check_one(&self, bucket: &Bucket, cost: NonZeroU32) -> Decision {
        let limiter = self.limiter(bucket.rate);
        let rate = bucket.rate;
        let burst = rate.burst.get();
        let interval = rate.interval();
        let decision = match limiter.check_key_n(&bucket.subject, cost) {
            Ok(Ok(snapshot)) => {
                let remaining = snapshot.remaining_burst_capacity();
                Decision {
                    allowed: true,
                    limit: burst,
                    remaining,
                    // Every used cell comes back one interval after the previous one.
                    reset: interval * (burst - remaining.min(burst)),
                    retry_after: Duration::ZERO,
                    exceeds_burst: false,
                }
            }
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(limiter.clock().now());
                Decision {
                    allowed: false,
                    limit: burst,
                    remaining: 0,
                    reset: wait + interval * (burst.saturating_sub(cost.get())),
                    retry_after: wait,
                    exceeds_burst: false,
                }
            }
            Err(_insufficient_capacity) => Decision {
                allowed: false,
                limit: burst,
                remaining: 0,
                reset: interval * burst,
                retry_after: interval * burst,
                exceeds_burst: true,
            },
        };
        // A request too large for the bucket says nothing about the bucket being empty.
        if !decision.allowed
            && !decision.exceeds_burst
            && let Ok(mut refused) = self.refused_until.lock()
        {
            let now = Instant::now();
            refused.insert(
                bucket.subject.clone(),
                Refusal {
                    until: now + decision.retry_after,
                    full_at: now + decision.reset,
                    limit: decision.limit,
                },
            );
        }
        decision
    }

    fn limiter(&self, rate: Rate) -> Arc<Keyed> {
        if let Ok(map) = self.by_rate.read()
            && let Some(limiter) = map.get(&rate)
        {
            return limiter.clone();
        }
        let quota = Quota::with_period(rate.interval())
            .unwrap_or_else(|| Quota::per_second(rate.per_second))
            .allow_burst(rate.burst);
        let fresh = || Arc::new(RateLimiter::keyed(quota).with_middleware());
        match self.by_rate.write() {
            Ok(mut map) => map.entry(rate).or_insert_with(fresh).clone(),
            // A poisoned lock means a panic elsewhere mid-insert; the map itself is still usable.
            Err(poisoned) => poisoned
                .into_inner()
                .entry(rate)
                .or_insert_with(fresh)
                .clone(),
        }
    }

    pub fn forget_idle(&self) {
        if let Ok(map) = self.by_rate.read() {
            for limiter in map.values() {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
        if let Ok(mut refused) = self.refused_until.lock() {
            let now = Instant::now();
            refused.retain(|_, refusal| refusal.until > now);
            refused.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn bucket(per_second: u32, burst: u32) -> Bucket {
        Bucket {
            subject: Subject::ClientIp(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            rate: Rate::new(per_second, burst).unwrap(),
        }
    }

    #[test]
    fn burst_then_refusal_with_a_wait() {
        let limiter = MemoryLimiter::new();
        let b = bucket(1, 3);
        for expected in [2, 1, 0] {
            let d = limiter.check(std::slice::from_ref(&b), NonZeroU32::MIN);
            assert!(d.allowed);
            assert_eq!((d.limit, d.remaining), (3, expected));
        }
        assert!(limiter.refuses(&b).is_none(), "nothing refused yet");
        let d = limiter.check(std::slice::from_ref(&b), NonZeroU32::MIN);
        assert!(!d.allowed);
        assert!(
            d.retry_after > Duration::from_millis(900) && d.retry_after <= Duration::from_secs(1)
        );
        assert!(limiter.refuses(&b).is_some());
    }

    #[test]
    fn a_cost_above_the_burst_never_fits() {
        let limiter = MemoryLimiter::new();
        let d = limiter.check(&[bucket(10, 5)], NonZeroU32::new(6).unwrap());
        assert!(!d.allowed && d.exceeds_burst);
        let d = limiter.check(&[bucket(10, 5)], NonZeroU32::new(5).unwrap());
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
    }

    #[test]
    fn a_refusing_bucket_stops_the_later_ones() {
        let limiter = MemoryLimiter::new();
        let tight = Bucket {
            subject: Subject::ApiKey(uuid::Uuid::nil()),
            rate: Rate::new(1, 1).unwrap(),
        };
        let org = Bucket {
            subject: Subject::Organization(uuid::Uuid::nil()),
            rate: Rate::new(1, 10).unwrap(),
        };
        let buckets = [tight, org.clone()];
        assert!(limiter.check(&buckets, NonZeroU32::MIN).allowed);
        let d = limiter.check(&buckets, NonZeroU32::MIN);
        assert!(!d.allowed);
        assert_eq!(d.limit, 1);
        // The organization bucket lost only the one allowed request.
        let d = limiter.check(std::slice::from_ref(&org), NonZeroU32::MIN);
        assert_eq!(d.remaining, 8);
    }
}
