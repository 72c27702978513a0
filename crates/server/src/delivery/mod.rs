//! The delivery worker: claims due jobs from the queue, builds and hands each message to the transport,
//! and records the outcome.
//!
//! Any number of workers, in any number of processes on any number of machines, share one queue: a job is
//! leased to one worker at a time (see `opensend_store::repos::delivery_queue`). A worker that dies
//! mid-delivery leaves its lease to run out (`WORKER_LEASE_SECONDS`), and the job is delivered again by
//! another. That is the one case in which a message can go out twice: when the transport accepted it but the
//! worker died before recording that. Nothing accepted is ever lost.
//!
//! Temporary failures are retried with growing delays ([`RETRY_DELAYS`], ±10 % jitter) up to
//! `DELIVERY_MAX_ATTEMPTS` attempts in all; permanent failures end the email as `failed` at once.

mod message;

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use opensend_mail::transport::{
    CaptureTransport, Envelope, SesTransport, SmtpTransport, Transport, TransportError,
};
use opensend_store::Store;
use opensend_store::entities::delivery_job;
use opensend_store::repos::delivery_queue::{RecipientResult, SentRecord};
use opensend_store::repos::emails::status;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use crate::api::emails::limits;
use crate::config::{Config, Delivery, TransportSettings};
use crate::domains::{self, SendAsError};
use crate::state::AppState;

/// Delay before retry number n (1-based); the last value repeats.
pub const RETRY_DELAYS: [Duration; 7] = [
    Duration::from_secs(30),
    Duration::from_secs(2 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(2 * 60 * 60),
    Duration::from_secs(4 * 60 * 60),
];

#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Deliveries in flight at once in this worker.
    pub concurrency: usize,
    /// How long a claimed job stays ours without being finished.
    pub lease: Duration,
    /// Longest sleep while idle: the bound on how late a job queued by another process is noticed.
    pub poll_interval: Duration,
    /// Attempts in all before a temporarily failing email is given up as `failed`.
    pub max_attempts: u32,
    /// Keep the sent bytes on the email (capture delivery), so they can be read back through the API.
    pub keep_raw: bool,
}

impl WorkerSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            concurrency: config.worker_concurrency,
            lease: config.worker_lease,
            poll_interval: config.worker_poll_interval,
            max_attempts: config.delivery_max_attempts,
            keep_raw: config.delivery == Delivery::Capture,
        }
    }
}

/// The transport `DELIVERY` names, with the settings read at start.
pub fn transport_for(config: &Config) -> Result<Arc<dyn Transport>, String> {
    Ok(match &config.transport {
        TransportSettings::Capture => Arc::new(CaptureTransport),
        TransportSettings::Smtp(settings) => {
            Arc::new(SmtpTransport::new(settings.clone()).map_err(|e| e.to_string())?)
        }
        TransportSettings::Ses(settings) => {
            Arc::new(SesTransport::new(settings.clone()).map_err(|e| e.to_string())?)
        }
    })
}

pub struct DeliveryWorker {
    state: AppState,
    store: Store,
    transport: Arc<dyn Transport>,
    settings: WorkerSettings,
    owner: String,
    wakeup: Arc<Notify>,
}

impl DeliveryWorker {
    pub fn new(state: AppState, transport: Arc<dyn Transport>, settings: WorkerSettings) -> Self {
        Self {
            store: state.store.clone(),
            wakeup: state.delivery_wakeup.clone(),
            state,
            transport,
            settings,
            owner: worker_name(),
        }
    }

    /// Runs until `stop` turns true, then lets deliveries in flight finish.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let worker = Arc::new(self);
        let slots = Arc::new(Semaphore::new(worker.settings.concurrency.max(1)));
        let mut in_flight = JoinSet::new();
        tracing::info!(
            worker = %worker.owner,
            transport = worker.transport.name(),
            concurrency = worker.settings.concurrency,
            "delivery worker started"
        );
        while !*stop.borrow() {
            while in_flight.try_join_next().is_some() {}
            let free = slots.available_permits();
            let claimed = if free == 0 {
                Vec::new()
            } else {
                match worker
                    .store
                    .delivery_queue()
                    .claim(&worker.owner, worker.settings.lease, free as u64)
                    .await
                {
                    Ok(jobs) => jobs,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not claim delivery jobs; retrying");
                        Vec::new()
                    }
                }
            };
            let filled = !claimed.is_empty() && claimed.len() == free;
            for job in claimed {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let worker = worker.clone();
                in_flight.spawn(async move {
                    worker.deliver(job).await;
                    drop(permit);
                });
            }
            if filled {
                // More may be due right now: claim again as soon as a slot frees up.
                tokio::select! {
                    _ = in_flight.join_next(), if !in_flight.is_empty() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let sleep = worker.idle_sleep().await;
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = worker.wakeup.notified() => {}
                _ = in_flight.join_next(), if slots.available_permits() == 0 => {}
                _ = stop.changed() => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
        tracing::info!(worker = %worker.owner, "delivery worker stopped");
    }

    /// One pass, for the `dispatch-scheduled` job: delivers up to `limit` due jobs (scheduled emails that
    /// fell due, retries whose time came) and returns how many it took. Rounds of at most
    /// `WORKER_CONCURRENCY` jobs, each claimed and delivered at once, so no claimed job waits in line while
    /// its lease runs out; no round starts after [`crate::webhooks::dispatcher::JOB_ROUNDS_FOR`].
    pub async fn run_once(&self, limit: usize) -> Result<usize, opensend_store::StoreError> {
        let started = std::time::Instant::now();
        let mut done = 0;
        while done < limit && started.elapsed() < crate::webhooks::dispatcher::JOB_ROUNDS_FOR {
            let round = self.settings.concurrency.max(1).min(limit - done);
            let jobs = self
                .store
                .delivery_queue()
                .claim(&self.owner, self.settings.lease, round as u64)
                .await?;
            if jobs.is_empty() {
                break;
            }
            done += jobs.len();
            futures::future::join_all(jobs.into_iter().map(|job| self.deliver(job))).await;
        }
        Ok(done)
    }

    /// Until the next job is due, but never longer than the poll interval.
    async fn idle_sleep(&self) -> Duration {
        let poll = self.settings.poll_interval;
        match self.store.delivery_queue().next_due_at().await {
            Ok(Some(at)) => (at - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(5), poll),
            _ => poll,
        }
    }

    async fn deliver(&self, job: delivery_job::Model) {
        let email_id = job.email_id;
        if let Err(e) = self.try_deliver(&job).await {
            // Store errors: the lease runs out and another attempt follows.
            tracing::error!(email_id = %email_id, error = %e, "delivery bookkeeping failed");
        }
        // The outcome may have queued webhook deliveries (`email.sent`, `email.failed`…).
        self.state.webhook_wakeup.notify_one();
    }

    async fn try_deliver(
        &self,
        job: &delivery_job::Model,
    ) -> Result<(), opensend_store::StoreError> {
        let queue = self.store.delivery_queue();
        let emails = self.store.emails();
        let Some(email) = emails.get_for_delivery(job.email_id).await? else {
            queue.discard(job, &self.owner).await?;
            return Ok(());
        };
        if email.status != status::QUEUED && email.status != status::SCHEDULED {
            tracing::warn!(email_id = %email.id, status = %email.status, "job for an email that is not waiting; dropped");
            queue.discard(job, &self.owner).await?;
            return Ok(());
        }
        let attachments = emails.attachments(email.id).await?;
        let recipients = emails.recipients(email.id).await?;
        let prepared = match message::prepare(&email, &attachments, &recipients) {
            Ok(prepared) => prepared,
            Err(reason) => {
                tracing::error!(email_id = %email.id, %reason, "message cannot be built");
                queue.record_failure(job, &self.owner, &reason, &[]).await?;
                return Ok(());
            }
        };
        let prepared = match self.sign(&email, prepared).await {
            Ok(signed) => signed,
            Err(Signing::Refused(reason)) => {
                queue.record_failure(job, &self.owner, &reason, &[]).await?;
                return Ok(());
            }
            Err(Signing::Unavailable(reason))
                if (job.attempts as u32) < self.settings.max_attempts =>
            {
                let retry_at = Utc::now()
                    + TimeDelta::from_std(retry_delay(job.attempts as u32))
                        .unwrap_or(TimeDelta::minutes(5));
                queue
                    .record_retry(job, &self.owner, &reason, retry_at)
                    .await?;
                return Ok(());
            }
            Err(Signing::Unavailable(reason)) => {
                queue.record_failure(job, &self.owner, &reason, &[]).await?;
                return Ok(());
            }
        };
        if prepared.bytes.len() > limits::MESSAGE_BYTES {
            let reason = format!(
                "the message is {} bytes, over the {} byte limit",
                prepared.bytes.len(),
                limits::MESSAGE_BYTES
            );
            queue.record_failure(job, &self.owner, &reason, &[]).await?;
            return Ok(());
        }
        let envelope = Envelope {
            mail_from: prepared.mail_from,
            recipients: prepared.recipients,
        };
        // A send must end well inside the lease, or another worker could take the job while it is still
        // going out.
        let deadline = self.settings.lease.mul_f64(0.8);
        let sent =
            match tokio::time::timeout(deadline, self.transport.send(&envelope, &prepared.bytes))
                .await
            {
                Ok(result) => result,
                Err(_) => Err(TransportError::Temporary(format!(
                    "the transport did not finish within {} s (80 % of WORKER_LEASE_SECONDS)",
                    deadline.as_secs()
                ))),
            };
        match sent {
            Ok(outcome) => {
                let recorded = queue
                    .record_sent(
                        job,
                        &self.owner,
                        SentRecord {
                            transport: self.transport.name().to_owned(),
                            provider_message_id: outcome.provider_message_id,
                            raw_mime: self.settings.keep_raw.then_some(prepared.bytes),
                            recipients: outcome
                                .recipients
                                .into_iter()
                                .map(|r| RecipientResult {
                                    address: r.address.as_str().to_owned(),
                                    accepted: r.accepted,
                                    response: r.response,
                                    // The transports report one id per send for now (SES: its first call's);
                                    // once `RecipientOutcome` carries the id of each recipient's own call,
                                    // map it here so every call's id is kept.
                                    provider_message_id: None,
                                })
                                .collect(),
                        },
                    )
                    .await?;
                if recorded {
                    tracing::info!(email_id = %email.id, "sent");
                } else {
                    tracing::warn!(email_id = %email.id, "sent, but the lease had passed to another worker");
                }
            }
            Err(TransportError::Temporary(reason))
                if (job.attempts as u32) < self.settings.max_attempts =>
            {
                let delay = retry_delay(job.attempts as u32);
                let retry_at =
                    Utc::now() + TimeDelta::from_std(delay).unwrap_or(TimeDelta::minutes(5));
                tracing::warn!(email_id = %email.id, attempt = job.attempts, %reason, retry_in_s = delay.as_secs(), "temporary failure");
                queue
                    .record_retry(job, &self.owner, &reason, retry_at)
                    .await?;
            }
            Err(error) => {
                tracing::warn!(email_id = %email.id, attempt = job.attempts, %error, "delivery failed");
                queue
                    .record_failure(job, &self.owner, &error.to_string(), &[])
                    .await?;
            }
        }
        Ok(())
    }
}

/// Why a message could not be signed.
enum Signing {
    /// The domain may no longer send (unverified or removed since the email was accepted): the email fails.
    Refused(String),
    /// The keys could not be read right now: try again later.
    Unavailable(String),
}

impl DeliveryWorker {
    /// DKIM-signs the message with the sending domain's active keys, checking again that the organization
    /// may still send as its From address. Capture-mode mail from an unverified domain goes unsigned.
    async fn sign(
        &self,
        email: &opensend_store::entities::email::Model,
        mut prepared: message::Prepared,
    ) -> Result<message::Prepared, Signing> {
        if email.sending_domain_id.is_none() {
            return Ok(prepared);
        }
        let identity = match domains::may_send_as(
            &self.state,
            email.organization_id,
            prepared.mail_from.as_str(),
            None,
        )
        .await
        {
            Ok(identity) => identity,
            Err(SendAsError::Refused(refusal)) => {
                return Err(Signing::Refused(refusal.to_string()));
            }
            Err(SendAsError::Domain(e)) => return Err(Signing::Unavailable(e.to_string())),
        };
        let Some(domain) = identity.domain.filter(|_| !identity.keys.is_empty()) else {
            return Ok(prepared);
        };
        prepared.bytes =
            opensend_mail::dkim::sign_message(&prepared.bytes, &domain, &identity.keys)
                .map_err(|e| Signing::Refused(e.to_string()))?;
        Ok(prepared)
    }
}

/// The delay after attempt `attempt` (1-based) failed, with ±10 % jitter so retries of many emails that
/// failed together do not return together.
pub fn retry_delay(attempt: u32) -> Duration {
    let index = (attempt.max(1) as usize - 1).min(RETRY_DELAYS.len() - 1);
    jittered(RETRY_DELAYS[index])
}

/// `base` ±10 %, so retries of many items that failed together do not arrive together.
pub(crate) fn jittered(base: Duration) -> Duration {
    let jitter = opensend_core::random::os_random::<2>()
        .map(|b| f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX))
        .unwrap_or(0.5);
    base.mul_f64(0.9 + 0.2 * jitter)
}

/// A name unique to this worker, for leases and logs: host, process and a random suffix.
pub(crate) fn worker_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "worker".to_owned());
    let suffix = opensend_core::random::os_random::<4>()
        .map(hex::encode)
        .unwrap_or_default();
    format!("{host}-{}-{suffix}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_and_stay_within_jitter() {
        for attempt in 1..=10 {
            let base = RETRY_DELAYS[(attempt as usize - 1).min(RETRY_DELAYS.len() - 1)];
            let delay = retry_delay(attempt);
            assert!(
                delay >= base.mul_f64(0.9) && delay <= base.mul_f64(1.1),
                "{attempt}: {delay:?}"
            );
        }
    }
}
