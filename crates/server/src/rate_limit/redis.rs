//! Buckets in Redis, shared by every process that uses the same Redis and key prefix.
//!
//! Each check is one `EVALSHA` of [`GCRA_SCRIPT`]: it reads the clock of the Redis server (so the nodes'
//! clocks do not matter), decides for every bucket of the request, and writes all of them or none. The
//! connection is one multiplexed connection per process (`ConnectionManager`: requests are pipelined on it
//! and it reconnects by itself), opened on first use so a Redis that is down at start does not stop the
//! process. Every call is bounded by a timeout, and after a failure Redis is left alone for
//! [`PAUSE_AFTER_FAILURE`] so an outage costs requests no waiting at all.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OnceCell;

use super::{Bucket, Decision, StoreUnavailable};

/// How long requests skip Redis after it failed, before it is tried again.
pub const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// GCRA over one or more buckets, all or nothing.
///
/// `KEYS[i]`: the bucket keys. `ARGV[1]`: the cost; `ARGV[2]`: `1` to record an allowed request, `0` only to
/// look; then for each key its emission interval in microseconds and its burst. A key holds the bucket's
/// theoretical arrival time (TAT) in microseconds of the Redis clock and expires when the bucket is full.
/// Returns `{allowed, limit, remaining, reset_us, retry_us}` for the bucket with the least capacity left.
pub const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local record = ARGV[2] == '1'
local allowed = 1
local limit, remaining, reset, retry = 0, -1, 0, 0
local writes = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[1 + 2 * i])
  local burst = tonumber(ARGV[2 + 2 * i])
  local tolerance = interval * burst
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new_tat = tat + interval * cost
  local allow_at = new_tat - tolerance
  local left, until_full
  if allow_at > now then
    allowed = 0
    if allow_at - now > retry then retry = allow_at - now end
    left = math.floor((now + tolerance - tat) / interval)
    until_full = tat - now
  else
    left = math.floor((now + tolerance - new_tat) / interval)
    until_full = new_tat - now
    writes[#writes + 1] = {key, new_tat}
  end
  if remaining < 0 or left < remaining then
    remaining, limit, reset = left, burst, until_full
  end
end
if allowed == 1 and record then
  for _, w in ipairs(writes) do
    local ttl_ms = math.ceil((w[2] - now) / 1000) + 1
    redis.call('SET', w[1], string.format('%.0f', w[2]), 'PX', ttl_ms)
  end
end
return {allowed, limit, remaining, math.ceil(reset), math.ceil(retry)}
";

pub struct RedisLimiter {
    client: Client,
    prefix: String,
    timeout: Duration,
    script: Script,
    connection: OnceCell<ConnectionManager>,
    /// Milliseconds since `started` before which Redis is not tried again.
    paused_until_ms: AtomicU64,
    started: Instant,
}

impl RedisLimiter {
    /// Prepares the client; nothing is connected until the first check. Errors never contain the URL (it
    /// may carry a password).
    pub fn new(
        url: &SecretString,
        prefix: &str,
        timeout: Duration,
    ) -> Result<Self, StoreUnavailable> {
        let client = Client::open(url.expose_secret()).map_err(|e| {
            StoreUnavailable(format!(
                "REDIS_URL is not a usable Redis URL ({:?})",
                e.kind()
            ))
        })?;
        Ok(Self {
            client,
            prefix: prefix.to_owned(),
            timeout,
            script: Script::new(GCRA_SCRIPT),
            connection: OnceCell::new(),
            paused_until_ms: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    pub async fn check(
        &self,
        buckets: &[Bucket],
        cost: NonZeroU32,
        record: bool,
    ) -> Result<Decision, StoreUnavailable> {
        let now_ms = self.started.elapsed().as_millis() as u64;
        if now_ms < self.paused_until_ms.load(Ordering::Relaxed) {
            return Err(StoreUnavailable(
                "Redis failed moments ago; waiting before the next try".to_owned(),
            ));
        }
        match tokio::time::timeout(self.timeout, self.invoke(buckets, cost, record)).await {
            Ok(Ok(decision)) => Ok(decision),
            Ok(Err(e)) => Err(self.pause(e)),
            Err(_) => Err(self.pause(format!(
                "Redis did not answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }

    fn pause(&self, cause: String) -> StoreUnavailable {
        let until = self.started.elapsed() + PAUSE_AFTER_FAILURE;
        self.paused_until_ms
            .store(until.as_millis() as u64, Ordering::Relaxed);
        StoreUnavailable(cause)
    }

    async fn invoke(
        &self,
        buckets: &[Bucket],
        cost: NonZeroU32,
        record: bool,
    ) -> Result<Decision, String> {
        let connection = self
            .connection
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(self.timeout);
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            })
            .await
            .map_err(describe)?;
        let mut invocation = self.script.prepare_invoke();
        invocation
            .arg(cost.get())
            .arg(if record { "1" } else { "0" });
        for bucket in buckets {
            let interval_us = 1_000_000.0 / f64::from(bucket.rate.per_second.get());
            invocation
                .key(format!("{}:{}", self.prefix, bucket.subject.redis_suffix()))
                .arg(interval_us)
                .arg(bucket.rate.burst.get());
        }
        let (allowed, limit, remaining, reset_us, retry_us): (i64, i64, i64, i64, i64) = invocation
            .invoke_async(&mut connection.clone())
            .await
            .map_err(describe)?;
        let micros = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
        let exceeds_burst = buckets.iter().any(|b| cost > b.rate.burst);
        Ok(Decision {
            allowed: allowed == 1,
            limit: u32::try_from(limit).unwrap_or(0),
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset: micros(reset_us),
            retry_after: micros(retry_us),
            exceeds_burst,
        })
    }
}

/// A Redis error without anything from the URL.
fn describe(error: redis::RedisError) -> String {
    format!("Redis error: {error}")
}
