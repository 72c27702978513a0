//! Cost of one rate-limit check: in memory, and in Redis on loopback.
//!
//!     cargo bench -p opensend-server --bench rate_limit
//!
//! Criterion reports the mean and median of each; the loop at the end times 20,000 single checks one by
//! one and prints the median, p99 and p99.9 (criterion's samples are batches, so they hide the tail). Redis
//! is `OPENSEND_BENCH_REDIS_URL`, else `redis://127.0.0.1:6379`; without one only memory is measured.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use criterion::Criterion;
use opensend_server::rate_limit::{
    Bucket, FailureMode, MemoryLimiter, Rate, RateLimiter, RedisLimiter, Subject,
};
use secrecy::SecretString;
use tokio::runtime::Runtime;

const ONE: NonZeroU32 = NonZeroU32::MIN;
const LOOP_CHECKS: usize = 20_000;

/// A bucket that never refuses, so every check does the full allowed path.
fn roomy(subject: Subject) -> Bucket {
    Bucket {
        subject,
        rate: Rate::new(1_000_000, 1_000_000).expect("valid rate"),
    }
}

fn organization() -> Bucket {
    roomy(Subject::Organization(uuid::Uuid::now_v7()))
}

fn redis_limiter(runtime: &Runtime) -> Option<RateLimiter> {
    let url = std::env::var("OPENSEND_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("opensend-bench:{}", uuid::Uuid::now_v7().simple());
    let redis = RedisLimiter::new(
        &SecretString::from(url.clone()),
        &prefix,
        Duration::from_millis(250),
    )
    .ok()?;
    let limiter = RateLimiter::redis(redis, FailureMode::Closed);
    let bucket = organization();
    match runtime.block_on(limiter.check(std::slice::from_ref(&bucket), ONE)) {
        Ok(_) => Some(limiter),
        Err(e) => {
            eprintln!("Redis at {url} is not usable ({e}): measuring memory only");
            None
        }
    }
}

fn bench_checks(c: &mut Criterion, runtime: &Runtime, redis: Option<&RateLimiter>) {
    let memory = RateLimiter::memory();
    let mut group = c.benchmark_group("rate_limit_check");
    let bucket = organization();
    // The check itself, without the async wrapper the middleware goes through.
    let bare = MemoryLimiter::new();
    group.bench_function("memory, one organization, bare", |b| {
        b.iter(|| bare.check(black_box(std::slice::from_ref(&bucket)), ONE))
    });
    group.bench_function("memory, one organization", |b| {
        b.iter(|| {
            runtime
                .block_on(memory.check(black_box(std::slice::from_ref(&bucket)), ONE))
                .expect("memory never fails")
        })
    });
    // Many distinct addresses: the map of buckets grows, as it does under a flood of invented keys.
    let mut n: u32 = 0;
    group.bench_function("memory, a new client address each time", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            let bucket = roomy(Subject::ClientIp(IpAddr::V4(Ipv4Addr::from(n))));
            runtime
                .block_on(memory.check(black_box(std::slice::from_ref(&bucket)), ONE))
                .expect("memory never fails")
        })
    });
    if let Some(redis) = redis {
        let bucket = organization();
        group.bench_function("redis on loopback, one organization", |b| {
            b.to_async(runtime).iter(|| async {
                redis
                    .check(black_box(std::slice::from_ref(&bucket)), ONE)
                    .await
                    .expect("Redis answers")
            })
        });
        let buckets = [roomy(Subject::ApiKey(uuid::Uuid::now_v7())), organization()];
        group.bench_function("redis on loopback, key and organization", |b| {
            b.to_async(runtime).iter(|| async {
                redis
                    .check(black_box(&buckets), ONE)
                    .await
                    .expect("Redis answers")
            })
        });
    }
    group.finish();
}

/// Times `LOOP_CHECKS` checks one at a time and prints percentiles.
fn percentiles(name: &str, runtime: &Runtime, limiter: &RateLimiter) {
    let bucket = organization();
    let mut times = Vec::with_capacity(LOOP_CHECKS);
    runtime.block_on(async {
        for _ in 0..LOOP_CHECKS {
            let started = Instant::now();
            let decision = limiter.check(std::slice::from_ref(&bucket), ONE).await;
            times.push(started.elapsed());
            assert!(decision.is_ok_and(|d| d.allowed));
        }
    });
    times.sort_unstable();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{name}: {LOOP_CHECKS} checks, median {:?}, p99 {:?}, p99.9 {:?}, max {:?}",
        at(0.5),
        at(0.99),
        at(0.999),
        times[times.len() - 1]
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let redis = redis_limiter(&runtime);
    let mut criterion = Criterion::default().configure_from_args();
    bench_checks(&mut criterion, &runtime, redis.as_ref());
    criterion.final_summary();
    percentiles("memory", &runtime, &RateLimiter::memory());
    if let Some(redis) = &redis {
        percentiles("redis on loopback", &runtime, redis);
    }
}
