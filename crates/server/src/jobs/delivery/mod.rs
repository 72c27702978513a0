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

use chrono::{DateTime, TimeDelta, Utc};
use opensend_mail::transport::{
    CaptureTransport, Envelope, SesTransport, SmtpTransport, Transport, TransportError,
};
use opensend_store::entities::delivery_job;
use opensend_store::records::EmailRecord;
use opensend_store::repos::delivery_queue::{RecipientResult, SentRecord};
use opensend_store::{Store, StoreError};
use tokio::sync::Notify;

use crate::api::emails::limits;
use crate::config::{Config, TransportSettings};
use crate::domains::{self, DomainError, SendAsError, Unverified};
use crate::jobs::claim_loop::{ClaimLoop, LeasedWork, Pace, jittered};
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

/// The transport `DELIVERY` names, with the settings read at start.
pub fn transport_for(config: &Config) -> Result<Arc<dyn Transport>, String> {
    Ok(match &config.delivery.transport {
        TransportSettings::Capture => Arc::new(CaptureTransport),
        TransportSettings::Smtp(settings) => {
            Arc::new(SmtpTransport::new(settings.clone()).map_err(|e| e.to_string())?)
        }
        TransportSettings::Ses(settings) => {
            Arc::new(SesTransport::new(settings.clone()).map_err(|e| e.to_string())?)
        }
    })
}

/// The delivery worker's work: due delivery jobs, each built, signed and handed to the transport.
pub struct DeliveryWork {
    state: AppState,
    store: Store,
    transport: Arc<dyn Transport>,
    settings: crate::config::WorkerSettings,
}

/// The delivery worker, ready to run ([`ClaimLoop::run`]) or to take one batch ([`ClaimLoop::run_rounds`]).
pub type DeliveryWorker = ClaimLoop<DeliveryWork>;

impl DeliveryWork {
    pub fn new(state: AppState, transport: Arc<dyn Transport>) -> Self {
        Self {
            store: state.store.clone(),
            settings: state.config.delivery.worker.clone(),
            state,
            transport,
        }
    }

    /// The worker for this deployment's transport (`DELIVERY`).
    pub fn from_config(state: AppState) -> Result<DeliveryWorker, String> {
        let transport = transport_for(&state.config)?;
        Ok(ClaimLoop::new(Self::new(state, transport)))
    }
}

impl LeasedWork for DeliveryWork {
    type Item = delivery_job::Model;

    fn kind(&self) -> &'static str {
        "delivery"
    }

    fn pace(&self) -> Pace {
        Pace::new(self.settings.concurrency, self.settings.poll_interval)
    }

    async fn claim(
        &self,
        owner: &str,
        limit: usize,
    ) -> Result<Vec<delivery_job::Model>, StoreError> {
        self.store
            .delivery_queue()
            .claim(owner, self.settings.lease, limit as u64)
            .await
    }

    async fn process(&self, owner: &str, job: delivery_job::Model) {
        self.deliver(owner, job).await
    }

    async fn next_due(&self) -> Option<DateTime<Utc>> {
        self.store
            .delivery_queue()
            .next_due_at()
            .await
            .ok()
            .flatten()
    }

    fn wakeup(&self) -> Option<Arc<Notify>> {
        Some(self.state.delivery_wakeup.clone())
    }
}

impl DeliveryWork {
    async fn deliver(&self, owner: &str, job: delivery_job::Model) {
        let email_id = job.email_id;
        if let Err(e) = self.try_deliver(owner, &job).await {
            // Store errors: the lease runs out and another attempt follows.
            tracing::error!(email_id = %email_id, error = %e, "delivery bookkeeping failed");
        }
        // The outcome may have queued webhook deliveries (`email.sent`, `email.failed`…).
        self.state.webhook_wakeup.notify_one();
    }

    async fn try_deliver(&self, owner: &str, job: &delivery_job::Model) -> Result<(), StoreError> {
        let queue = self.store.delivery_queue();
        let emails = self.store.emails();
        let email = match damaged(emails.get_for_delivery(job.email_id).await)? {
            Ok(Some(email)) => email,
            Ok(None) => {
                queue.discard(job, owner).await?;
                return Ok(());
            }
            Err(reason) => {
                tracing::error!(email_id = %job.email_id, %reason, "stored email cannot be read");
                queue.record_failure(job, owner, &reason, &[]).await?;
                return Ok(());
            }
        };
        let status = email.summary.status;
        if !status.is_waiting() {
            tracing::warn!(email_id = %job.email_id, %status, "job for an email that is not waiting; dropped");
            queue.discard(job, owner).await?;
            return Ok(());
        }
        let identity = match self.identity(&email).await {
            Ok(identity) => identity,
            Err(Signing::Refused(reason)) => {
                queue.record_failure(job, owner, &reason, &[]).await?;
                return Ok(());
            }
            Err(Signing::Unavailable(reason))
                if (job.attempts as u32) < self.settings.max_attempts =>
            {
                let retry_at = Utc::now()
                    + TimeDelta::from_std(retry_delay(job.attempts as u32))
                        .unwrap_or(TimeDelta::minutes(5));
                queue.record_retry(job, owner, &reason, retry_at).await?;
                return Ok(());
            }
            Err(Signing::Unavailable(reason)) => {
                queue.record_failure(job, owner, &reason, &[]).await?;
                return Ok(());
            }
        };
        let html = self.tracked_html(&email, identity.as_ref());
        let attachments = emails.attachments(job.email_id).await?;
        let prepared = damaged(emails.recipients(job.email_id).await)?
            .and_then(|recipients| message::prepare(&email, html, &attachments, &recipients));
        let mut prepared = match prepared {
            Ok(prepared) => prepared,
            Err(reason) => {
                tracing::error!(email_id = %job.email_id, %reason, "message cannot be built");
                queue.record_failure(job, owner, &reason, &[]).await?;
                return Ok(());
            }
        };
        if let Some(signers) = identity.filter(|i| !i.signers.is_empty()) {
            match opensend_mail::dkim::sign_with(&prepared.bytes, &signers.signers) {
                Ok(signed) => prepared.bytes = signed,
                Err(e) => {
                    queue
                        .record_failure(job, owner, &e.to_string(), &[])
                        .await?;
                    return Ok(());
                }
            }
        }
        if prepared.bytes.len() > limits::MESSAGE_BYTES {
            let reason = format!(
                "the message is {} bytes, over the {} byte limit",
                prepared.bytes.len(),
                limits::MESSAGE_BYTES
            );
            queue.record_failure(job, owner, &reason, &[]).await?;
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
                        owner,
                        SentRecord {
                            transport: self.transport.name().to_owned(),
                            provider_message_id: outcome.provider_message_id,
                            raw_mime: self.transport.keeps_mail_local().then_some(prepared.bytes),
                            recipients: outcome
                                .recipients
                                .into_iter()
                                .map(|r| RecipientResult {
                                    address: r.address.as_str().to_owned(),
                                    accepted: r.accepted,
                                    response: r.response,
                                    // SES: the id of the call that carried this recipient (sends of more
                                    // than 50 recipients are several calls), so its events are matched.
                                    provider_message_id: r.provider_message_id,
                                })
                                .collect(),
                        },
                    )
                    .await?;
                if recorded {
                    tracing::info!(email_id = %job.email_id, "sent");
                } else {
                    tracing::warn!(email_id = %job.email_id, "sent, but the lease had passed to another worker");
                }
            }
            Err(TransportError::Temporary(reason))
                if (job.attempts as u32) < self.settings.max_attempts =>
            {
                let delay = retry_delay(job.attempts as u32);
                let retry_at =
                    Utc::now() + TimeDelta::from_std(delay).unwrap_or(TimeDelta::minutes(5));
                tracing::warn!(email_id = %job.email_id, attempt = job.attempts, %reason, retry_in_s = delay.as_secs(), "temporary failure");
                queue.record_retry(job, owner, &reason, retry_at).await?;
            }
            Err(error) => {
                tracing::warn!(email_id = %job.email_id, attempt = job.attempts, %error, "delivery failed");
                queue
                    .record_failure(job, owner, &error.to_string(), &[])
                    .await?;
            }
        }
        Ok(())
    }
}

/// Tells damaged stored data (`Err` inside: the reason), which never gets better, from the store's other
/// errors, after which the lease runs out and the job is tried again.
fn damaged<T>(result: Result<T, StoreError>) -> Result<Result<T, String>, StoreError> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(StoreError::Corrupt(reason)) => Ok(Err(reason)),
        Err(error) => Err(error),
    }
}

/// Why a message could not be signed.
enum Signing {
    /// The domain may no longer send (unverified or removed since the email was accepted): the email fails.
    Refused(String),
    /// The keys could not be read right now: try again later.
    Unavailable(String),
}

impl DeliveryWork {
    /// The sending domain and its DKIM keys, checking again that the organization may still send as its From
    /// address, under the rule of the transport that will carry it: only a transport that keeps mail on this
    /// machine (capture) takes mail from an unverified domain, unsigned (`None`: sent as it is). Any other
    /// refuses it with the reason, whatever the deployment accepted it under (an email accepted while
    /// `DELIVERY=capture`, or by an `api` process configured for capture in front of a real worker), and never
    /// sends anything unsigned.
    async fn identity(&self, email: &EmailRecord) -> Result<Option<domains::Signers>, Signing> {
        let local = self.transport.keeps_mail_local();
        if local && email.sending_domain_id.is_none() {
            return Ok(None);
        }
        let unverified = match local {
            true => Unverified::Kept,
            false => Unverified::Refused,
        };
        let signers = match domains::signers_for(
            &self.state,
            email.summary.organization_id,
            email.summary.from.address.as_str(),
            unverified,
        )
        .await
        {
            Ok(signers) => signers,
            Err(SendAsError::Refused(refusal)) => {
                return Err(Signing::Refused(refusal.to_string()));
            }
            // A stored key that opens but is not a usable key never gets better.
            Err(SendAsError::Domain(DomainError::Dkim(e))) => {
                return Err(Signing::Refused(e.to_string()));
            }
            Err(SendAsError::Domain(e)) => return Err(Signing::Unavailable(e.to_string())),
        };
        match signers {
            Some(signers) if signers.signers.is_empty() && !local => Err(Signing::Refused(
                domains::Refusal::NoSigningKey(signers.domain).to_string(),
            )),
            signers => Ok(signers),
        }
    }

    /// The HTML body to send: with its links and open pixel tracked when the sending domain tracks them.
    fn tracked_html(
        &self,
        email: &EmailRecord,
        identity: Option<&domains::Signers>,
    ) -> Option<String> {
        let html = email.html.as_deref()?;
        match (&self.state.tracker, identity) {
            (Some(tracker), Some(identity)) => Some(tracker.track_html(
                html,
                crate::tracking::TrackedEmail {
                    organization_id: email.summary.organization_id,
                    email_id: email.summary.id,
                },
                &identity.tracking,
            )),
            _ => Some(html.to_owned()),
        }
    }
}

/// The delay after attempt `attempt` (1-based) failed, with ±10 % jitter so retries of many emails that
/// failed together do not return together.
pub fn retry_delay(attempt: u32) -> Duration {
    let index = (attempt.max(1) as usize - 1).min(RETRY_DELAYS.len() - 1);
    jittered(RETRY_DELAYS[index])
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
