//! The webhook dispatcher: claims due deliveries, POSTs each signed message to its endpoint and records
//! the attempt.
//!
//! - Any number of dispatchers share the outbox; a delivery is leased to one at a time
//!   (`WEBHOOK_LEASE_SECONDS`, longer than the request timeout). A dispatcher that dies mid-request leaves its
//!   lease to run out and the delivery is attempted again, with the same `webhook-id`: receivers deduplicate.
//! - At most `WEBHOOK_CONCURRENCY` requests are in flight per dispatcher, and at most
//!   `WEBHOOK_ENDPOINT_CONCURRENCY` to any one endpoint: a slow endpoint fills its own slots, not everyone's.
//! - A 2xx answer is success. Anything else, a timeout or a refused connection is a failure, retried after
//!   `WEBHOOK_RETRY_DELAYS_SECONDS` (Resend's schedule by default, ±10 %), or later when the endpoint sends
//!   `Retry-After`. `410 Gone` disables the endpoint at once; an endpoint whose attempts have all failed for
//!   `WEBHOOK_DISABLE_AFTER_HOURS` is disabled and the organization's event log says so.
//! - Redirects are not followed (a 3xx is a failure) and at most 1 KiB of each answer is kept.
//! - Outcomes are written in batches by one recorder task, so the database sees one transaction per batch
//!   rather than per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use opensend_core::webhook::{message_id, signature_header};
use opensend_store::Store;
use opensend_store::repos::webhook_outbox::{AttemptOutcome, ClaimedDelivery};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::config::WebhookSettings;
use crate::delivery::{jittered, worker_name};
use crate::state::AppState;
use crate::webhooks::signing_secrets;

/// Most of an endpoint's answer kept with the attempt.
pub const RESPONSE_EXCERPT_BYTES: usize = 1024;
/// Longest `Retry-After` honoured; a longer one waits this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Outcomes written per transaction, at most.
const RECORD_BATCH: usize = 512;
/// A job run (`run_once`) starts no new round after this long.
pub const JOB_ROUNDS_FOR: Duration = Duration::from_secs(5);
/// While busy, how long to wait for more free slots before claiming again.
const CLAIM_GATHER: Duration = Duration::from_millis(5);

pub struct Dispatcher {
    state: AppState,
    store: Store,
    client: reqwest::Client,
    settings: WebhookSettings,
    poll_interval: Duration,
    owner: String,
    wakeup: Arc<Notify>,
    /// Requests in flight per endpoint.
    per_endpoint: Mutex<HashMap<Uuid, usize>>,
}

impl Dispatcher {
    pub fn new(state: AppState, client: reqwest::Client) -> Self {
        Self {
            store: state.store.clone(),
            settings: state.config.webhooks.clone(),
            poll_interval: state.config.delivery.worker.poll_interval,
            wakeup: state.webhook_wakeup.clone(),
            state,
            client,
            owner: format!("webhooks-{}", worker_name()),
            per_endpoint: Mutex::new(HashMap::new()),
        }
    }

    /// Runs until `stop` turns true, then lets requests in flight finish and records them.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let dispatcher = Arc::new(self);
        let (outcomes, received) = mpsc::channel(RECORD_BATCH * 4);
        let recorder = tokio::spawn(record_outcomes(
            dispatcher.store.clone(),
            dispatcher.owner.clone(),
            TimeDelta::from_std(dispatcher.settings.disable_after).unwrap_or(TimeDelta::days(5)),
            received,
        ));
        let slots = Arc::new(Semaphore::new(dispatcher.settings.concurrency.max(1)));
        let mut in_flight = JoinSet::new();
        tracing::info!(
            dispatcher = %dispatcher.owner,
            concurrency = dispatcher.settings.concurrency,
            "webhook dispatcher started"
        );
        while !*stop.borrow() {
            while in_flight.try_join_next().is_some() {}
            let free = slots.available_permits();
            let claimed = if free == 0 {
                Vec::new()
            } else {
                dispatcher.claim(free).await
            };
            let filled = !claimed.is_empty() && claimed.len() == free;
            for claim in claimed {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let dispatcher = dispatcher.clone();
                let outcomes = outcomes.clone();
                in_flight.spawn(async move {
                    let endpoint = claim.webhook.id;
                    let outcome = dispatcher.attempt(claim).await;
                    dispatcher.release(endpoint);
                    drop(permit);
                    // The recorder only stops after every sender is gone, so this cannot fail while we run.
                    let _ = outcomes.send(outcome).await;
                });
            }
            if filled {
                // More is due: claim again once a quarter of the slots are free (or soon after the first
                // frees up), so claims stay batched instead of one transaction per finished request.
                let batch = (dispatcher.settings.concurrency / 4).max(1);
                let deadline = tokio::time::Instant::now() + CLAIM_GATHER;
                while slots.available_permits() < batch && !in_flight.is_empty() {
                    tokio::select! {
                        _ = in_flight.join_next() => {}
                        _ = tokio::time::sleep_until(deadline), if slots.available_permits() > 0 => break,
                        _ = stop.changed() => break,
                    }
                }
                continue;
            }
            let sleep = dispatcher.idle_sleep().await;
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = dispatcher.wakeup.notified() => {}
                _ = in_flight.join_next(), if !in_flight.is_empty() => {}
                _ = stop.changed() => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
        drop(outcomes);
        let _ = recorder.await;
        tracing::info!(dispatcher = %dispatcher.owner, "webhook dispatcher stopped");
    }

    /// One pass, for the `retry-webhooks` job: attempts up to `limit` due deliveries and records them before
    /// returning how many it attempted. It works in rounds of at most `WEBHOOK_CONCURRENCY` deliveries, each
    /// claimed, sent at once and recorded, so no claimed delivery waits in line while its lease runs out; no
    /// round starts after [`JOB_ROUNDS_FOR`].
    pub async fn run_once(&self, limit: usize) -> Result<usize, opensend_store::StoreError> {
        let started = Instant::now();
        let disable_after =
            TimeDelta::from_std(self.settings.disable_after).unwrap_or(TimeDelta::days(5));
        let mut done = 0;
        while done < limit && started.elapsed() < JOB_ROUNDS_FOR {
            let claimed = self
                .claim(self.settings.concurrency.max(1).min(limit - done))
                .await;
            if claimed.is_empty() {
                break;
            }
            done += claimed.len();
            let attempts = claimed.into_iter().map(|claim| async move {
                let endpoint = claim.webhook.id;
                let outcome = self.attempt(claim).await;
                self.release(endpoint);
                outcome
            });
            let outcomes = futures::future::join_all(attempts).await;
            self.store
                .webhook_queue()
                .record(&self.owner, outcomes, disable_after)
                .await?;
        }
        Ok(done)
    }

    async fn claim(&self, free: usize) -> Vec<ClaimedDelivery> {
        let cap = self.settings.endpoint_concurrency;
        let (full, counts) = {
            let counts = self
                .per_endpoint
                .lock()
                .map(|m| m.clone())
                .unwrap_or_default();
            let full: Vec<Uuid> = counts
                .iter()
                .filter(|(_, n)| **n >= cap)
                .map(|(id, _)| *id)
                .collect();
            (full, counts)
        };
        let room = |id: Uuid| cap.saturating_sub(counts.get(&id).copied().unwrap_or(0));
        match self
            .store
            .webhook_queue()
            .claim(&self.owner, self.settings.lease, free, room, &full)
            .await
        {
            Ok(claimed) => {
                if let Ok(mut counts) = self.per_endpoint.lock() {
                    for c in &claimed {
                        *counts.entry(c.webhook.id).or_default() += 1;
                    }
                }
                claimed
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not claim webhook deliveries; retrying");
                Vec::new()
            }
        }
    }

    fn release(&self, endpoint: Uuid) {
        if let Ok(mut counts) = self.per_endpoint.lock()
            && let Some(n) = counts.get_mut(&endpoint)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&endpoint);
            }
        }
    }

    /// Until the next delivery is due, but never longer than the poll interval.
    async fn idle_sleep(&self) -> Duration {
        let poll = self.poll_interval;
        match self.store.webhook_queue().next_due_at().await {
            Ok(Some(at)) => (at - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(5), poll),
            _ => poll,
        }
    }

    /// One signed POST, and what to do next.
    async fn attempt(&self, claim: ClaimedDelivery) -> AttemptOutcome {
        let attempted_at = Utc::now();
        let started = Instant::now();
        let ClaimedDelivery {
            delivery,
            webhook,
            message,
        } = claim;
        let mut outcome = AttemptOutcome {
            delivery,
            succeeded: false,
            status_code: None,
            response: None,
            error: None,
            duration_ms: 0,
            attempted_at,
            next_attempt_at: None,
            disable_endpoint: None,
        };
        let secrets = match signing_secrets(&self.state.secrets, &webhook, attempted_at) {
            Ok(secrets) => secrets,
            Err(e) => {
                tracing::error!(webhook_id = %webhook.id, error = %e, "cannot open the endpoint's signing secret");
                outcome.error = Some("the signing secret could not be read".to_owned());
                outcome.next_attempt_at = self.next_attempt(&outcome, None);
                return outcome;
            }
        };
        let id = message_id(message.id);
        let timestamp = attempted_at.timestamp().to_string();
        let body = message.payload.into_bytes();
        let signature = signature_header(
            &secrets.iter().collect::<Vec<_>>(),
            &id,
            attempted_at.timestamp(),
            &body,
        );
        let request = self
            .client
            .post(&webhook.endpoint)
            .timeout(self.settings.timeout)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("svix-id", &id)
            .header("svix-timestamp", &timestamp)
            .header("svix-signature", &signature)
            .header("webhook-id", &id)
            .header("webhook-timestamp", &timestamp)
            .header("webhook-signature", &signature)
            .body(body);
        let mut retry_after = None;
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                outcome.status_code = Some(status.as_u16());
                retry_after = parse_retry_after(response.headers(), attempted_at);
                outcome.response = Some(excerpt(response).await);
                outcome.succeeded = status.is_success();
                if status == http::StatusCode::GONE {
                    outcome.disable_endpoint = Some("the endpoint answered 410 Gone".to_owned());
                }
            }
            Err(e) => {
                outcome.error = Some(printable(describe(&e, self.settings.timeout)));
            }
        }
        outcome.duration_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
        if !outcome.succeeded && outcome.disable_endpoint.is_none() {
            outcome.next_attempt_at = self.next_attempt(&outcome, retry_after);
        }
        outcome
    }

    /// When to try a failed delivery again, or `None` once its attempts are used up.
    fn next_attempt(
        &self,
        outcome: &AttemptOutcome,
        retry_after: Option<Duration>,
    ) -> Option<DateTime<Utc>> {
        let attempts = usize::try_from(outcome.delivery.attempts.max(1)).unwrap_or(1);
        let delay = *self.settings.retry_delays.get(attempts - 1)?;
        let wait = match retry_after {
            Some(asked) if asked > delay => asked.min(MAX_RETRY_AFTER),
            _ => jittered(delay),
        };
        Some(outcome.attempted_at + TimeDelta::from_std(wait).unwrap_or(TimeDelta::hours(1)))
    }
}

/// Reads at most [`RESPONSE_EXCERPT_BYTES`] of the body, however large or slow the rest is.
async fn excerpt(response: reqwest::Response) -> String {
    let mut kept = Vec::with_capacity(256);
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = RESPONSE_EXCERPT_BYTES - kept.len();
        kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if kept.len() >= RESPONSE_EXCERPT_BYTES {
            break;
        }
    }
    // Cut on a character boundary, so a multi-byte character split at the limit does not garble the text.
    let text = match std::str::from_utf8(&kept) {
        Ok(text) => text.to_owned(),
        Err(e) if e.error_len().is_none() => {
            String::from_utf8_lossy(&kept[..e.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(&kept).into_owned(),
    };
    printable(text)
}

/// Text an endpoint sent, made safe to store and show: NUL (which PostgreSQL text columns refuse) and the
/// other control characters but tab and line breaks become U+FFFD.
fn printable(text: String) -> String {
    if !text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return text;
    }
    text.chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\n' | '\r' | '\t') {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(headers: &http::HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&Utc) - now).to_std().ok()
}

/// Why a request got no answer, without the URL (which the user knows, and which may carry a token).
fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        format!("no answer within {} s", timeout.as_secs())
    } else if error.is_connect() {
        let mut cause: Option<&dyn std::error::Error> = Some(error);
        let mut deepest = String::new();
        while let Some(e) = cause {
            deepest = e.to_string();
            cause = e.source();
        }
        format!("could not connect: {deepest}")
    } else {
        format!("request failed: {}", error.without_url_ref())
    }
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut text = self.to_string();
        if let Some(url) = self.url() {
            text = text.replace(url.as_str(), "the endpoint");
        }
        text
    }
}

/// Writes outcomes as they arrive, batching whatever has queued up meanwhile.
async fn record_outcomes(
    store: Store,
    owner: String,
    disable_after: TimeDelta,
    mut received: mpsc::Receiver<AttemptOutcome>,
) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while received.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let mut tries = 0;
        loop {
            match store
                .webhook_queue()
                .record(&owner, batch.clone(), disable_after)
                .await
            {
                Ok(applied) => {
                    let lost = applied.iter().filter(|held| !**held).count();
                    if lost > 0 {
                        tracing::debug!(
                            lost,
                            "attempt outcomes not recorded: the lease had moved on"
                        );
                    }
                    break;
                }
                Err(e) if tries < 5 => {
                    tries += 1;
                    tracing::warn!(error = %e, tries, "could not record webhook attempts; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                Err(e) => {
                    // One bad row must not sink the others: record them one by one. Whatever still fails is
                    // attempted again once its lease runs out, so nothing is lost.
                    tracing::error!(error = %e, count = batch.len(), "recording a batch of webhook attempts failed; recording them one by one");
                    for outcome in batch.iter().cloned() {
                        let id = outcome.delivery.id;
                        if let Err(e) = store
                            .webhook_queue()
                            .record(&owner, vec![outcome], disable_after)
                            .await
                        {
                            tracing::error!(delivery_id = %id, error = %e, "cannot record a webhook attempt");
                        }
                    }
                    break;
                }
            }
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = Utc::now();
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("120"),
        );
        assert_eq!(
            parse_retry_after(&headers, now),
            Some(Duration::from_secs(120))
        );
        let later = (now + TimeDelta::seconds(300)).to_rfc2822();
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_str(&later).unwrap_or_else(|e| panic!("{e}")),
        );
        let parsed = parse_retry_after(&headers, now).unwrap_or_default();
        assert!(parsed > Duration::from_secs(295) && parsed <= Duration::from_secs(300));
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("soon"),
        );
        assert_eq!(parse_retry_after(&headers, now), None);
    }
}
