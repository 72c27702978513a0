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
//! - Deliveries are claimed ahead (up to half of `WEBHOOK_CONCURRENCY` beyond the free slots, when
//!   `WEBHOOK_LEASE_SECONDS` is at least twice `WEBHOOK_TIMEOUT_SECONDS`), so the next claim transaction runs
//!   while requests are out and a slot that frees up is taken at once.
//! - Outcomes are written in batches by one recorder task, so the database sees one transaction per batch
//!   rather than per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use opensend_core::webhook::{message_id, signature_header};
use opensend_store::repos::webhook_outbox::{AttemptOutcome, ClaimedDelivery};
use opensend_store::{Store, StoreError};
use tokio::sync::{Notify, mpsc, watch};
use uuid::Uuid;

use crate::config::WebhookSettings;
use crate::jobs::claim_loop::{ClaimLoop, LeasedWork, Pace, jittered};
use crate::outbound::describe_request_error;
use crate::state::AppState;
use crate::webhooks::signing_secrets;

/// Most of an endpoint's answer kept with the attempt.
pub const RESPONSE_EXCERPT_BYTES: usize = 1024;
/// Longest `Retry-After` honoured; a longer one waits this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Outcomes written per transaction, at most.
const RECORD_BATCH: usize = 512;
/// While busy, how long to wait for more free slots before claiming again.
const CLAIM_GATHER: Duration = Duration::from_millis(5);

/// The dispatcher: due webhook deliveries, each signed and POSTed, its outcome handed to the recorder.
pub struct Dispatch {
    state: AppState,
    store: Store,
    client: reqwest::Client,
    settings: WebhookSettings,
    poll_interval: Duration,
    /// Requests in flight per endpoint.
    per_endpoint: Mutex<HashMap<Uuid, usize>>,
    /// To the task that writes outcomes in batches ([`record_outcomes`]).
    outcomes: mpsc::Sender<AttemptOutcome>,
}

/// Runs the webhook dispatcher: continuously ([`Dispatcher::run`]) or one batch ([`Dispatcher::run_once`]).
/// Either way, every outcome is recorded before it returns.
pub struct Dispatcher {
    state: AppState,
    client: reqwest::Client,
}

impl Dispatcher {
    pub fn new(state: AppState, client: reqwest::Client) -> Self {
        Self { state, client }
    }

    /// Runs until `stop` turns true, then lets requests in flight finish and records them.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let (work, recorder) = self.start();
        work.run(stop).await;
        let _ = recorder.await;
    }

    /// One pass, for the `retry-webhooks` job: attempts up to `limit` due deliveries and records them before
    /// returning how many it attempted.
    pub async fn run_once(self, limit: usize) -> Result<usize, StoreError> {
        let (work, recorder) = self.start();
        let attempted = work.run_rounds(limit).await;
        // The recorder ends once the last sender (inside the work) is gone.
        drop(work);
        let _ = recorder.await;
        attempted
    }

    fn start(self) -> (ClaimLoop<Dispatch>, tokio::task::JoinHandle<()>) {
        let settings = self.state.config.webhooks.clone();
        let (outcomes, received) = mpsc::channel(RECORD_BATCH * 4);
        let work = ClaimLoop::new(Dispatch {
            store: self.state.store.clone(),
            poll_interval: self.state.config.delivery.worker.poll_interval,
            settings: settings.clone(),
            state: self.state,
            client: self.client,
            per_endpoint: Mutex::new(HashMap::new()),
            outcomes,
        });
        let recorder = tokio::spawn(record_outcomes(
            work.work().store.clone(),
            work.owner().to_owned(),
            TimeDelta::from_std(settings.disable_after).unwrap_or(TimeDelta::days(5)),
            received,
        ));
        (work, recorder)
    }
}

impl LeasedWork for Dispatch {
    type Item = ClaimedDelivery;

    fn kind(&self) -> &'static str {
        "webhooks"
    }

    fn pace(&self) -> Pace {
        let concurrency = self.settings.concurrency.max(1);
        Pace {
            concurrency,
            // Claim again once a quarter of the slots are free (or soon after the first frees up), so
            // claims stay batched instead of one transaction per finished request.
            refill_at: (concurrency / 4).max(1),
            gather: CLAIM_GATHER,
            poll_interval: self.poll_interval,
            // A finished request frees room at its endpoint, which may let held-back deliveries through.
            reclaim_on_completion: true,
            // Half a round of deliveries claimed ahead: the next claim transaction runs while the current
            // requests are out, and a finished request's slot is taken at once. Claimed-ahead deliveries count
            // against their endpoint's cap like those in flight. One waits at most until half the requests
            // in flight have ended (one request timeout), so it is only done while the lease covers that
            // wait and its own request: at least twice the timeout (the defaults: 60 s and 15 s).
            ahead: if self.settings.lease >= self.settings.timeout * 2 {
                concurrency / 2
            } else {
                0
            },
        }
    }

    async fn claim(&self, owner: &str, limit: usize) -> Result<Vec<ClaimedDelivery>, StoreError> {
        Ok(self.claim_within_room(owner, limit).await)
    }

    async fn process(&self, _owner: &str, claim: ClaimedDelivery) {
        let endpoint = claim.webhook.id;
        let outcome = self.attempt(claim).await;
        self.release(endpoint);
        // The recorder only stops after every sender is gone, so this cannot fail while we run.
        let _ = self.outcomes.send(outcome).await;
    }

    async fn next_due(&self) -> Option<DateTime<Utc>> {
        self.store
            .webhook_queue()
            .next_due_at()
            .await
            .ok()
            .flatten()
    }

    fn wakeup(&self) -> Option<Arc<Notify>> {
        Some(self.state.webhook_wakeup.clone())
    }
}

impl Dispatch {
    /// Claims up to `free` deliveries, at most `WEBHOOK_ENDPOINT_CONCURRENCY` in flight per endpoint.
    async fn claim_within_room(&self, owner: &str, free: usize) -> Vec<ClaimedDelivery> {
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
            .claim(owner, self.settings.lease, free, room, &full)
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
                outcome.error = Some(printable(describe_request_error(&e, self.settings.timeout)));
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
