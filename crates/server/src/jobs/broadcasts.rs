//! The broadcast fan-out: a sent broadcast becomes one personalised email per contact of its segment.
//!
//! Each claimed broadcast gets ONE chunk per claim: the next contacts of its segment after its cursor (in id
//! order), each either skipped (unsubscribed, suppressed, opted out of the broadcast's topic) or given its
//! email (subject, HTML and text rendered for the contact, `List-Unsubscribe` and
//! `List-Unsubscribe-Post` headers), written with the recipient rows and the new cursor in one transaction
//! (`repos::broadcasts::Broadcasts::write_chunk`). The broadcast is then due again once the organization's
//! rate allows its next chunk, and any worker may take it; a worker killed mid-chunk leaves nothing of it,
//! and the next owner redoes it from the last committed cursor.
//!
//! Pacing: `BROADCAST_RATE_PER_SECOND` emails per second per organization. A chunk is at most that many
//! contacts (and at most [`MAX_CHUNK`]) and holds the organization's rate for `chunk / rate` seconds.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use opensend_core::{Header, Mailbox, RecipientKind};
use opensend_store::StoreError;
use opensend_store::entities::broadcast;
use opensend_store::repos::broadcasts::{
    Chunk, ChunkOutcome, RecipientOutcome, SKIP_OPTED_OUT, SKIP_SUPPRESSED, SKIP_UNSUBSCRIBED,
};
use opensend_store::repos::new_email::NewEmail;
use serde_json::Value;

use crate::api::emails::limits;
use crate::broadcast::{Template, Values};
use crate::jobs::claim_loop::{ClaimLoop, LeasedWork, Pace};
use crate::state::AppState;
use crate::unsubscribe::{self, LinkClaims, UnsubscribeLinks};

/// Most contacts one chunk (one transaction) takes.
pub const MAX_CHUNK: u32 = 500;
/// Longest a claimed broadcast is left to its worker: `WORKER_LEASE_SECONDS`, at most this (a chunk takes
/// well under a second; a dead worker's broadcast should not wait long).
pub const MAX_LEASE: Duration = Duration::from_secs(60);
/// Broadcasts fanned out at once by one process.
const CONCURRENCY: usize = 4;
/// How long a broadcast waits after a failed chunk (the database went away…).
const RETRY_AFTER: TimeDelta = TimeDelta::seconds(5);
/// Why a contact got no email because its stored address no longer parses, or its content could not be
/// rendered within the message size limit.
pub const SKIP_INVALID_ADDRESS: &str = "invalid_address";
pub const SKIP_TOO_LARGE: &str = "too_large";

pub struct BroadcastWork {
    state: AppState,
}

impl BroadcastWork {
    pub fn new(state: AppState) -> ClaimLoop<Self> {
        ClaimLoop::new(Self { state })
    }

    fn lease(&self) -> TimeDelta {
        let lease = self.state.config.delivery.worker.lease.min(MAX_LEASE);
        TimeDelta::from_std(lease).unwrap_or(TimeDelta::seconds(60))
    }
}

/// Runs one pass over every due broadcast (`POST /jobs/send-broadcasts`, and tests): one chunk each.
pub async fn run_due(state: &AppState, limit: usize) -> Result<usize, StoreError> {
    ClaimLoop::new(BroadcastWork {
        state: state.clone(),
    })
    .run_rounds(limit)
    .await
}

impl LeasedWork for BroadcastWork {
    type Item = broadcast::Model;

    fn kind(&self) -> &'static str {
        "broadcasts"
    }

    fn pace(&self) -> Pace {
        Pace::new(
            CONCURRENCY,
            self.state
                .config
                .delivery
                .worker
                .poll_interval
                .max(Duration::from_millis(50)),
        )
    }

    async fn claim(&self, owner: &str, limit: usize) -> Result<Vec<broadcast::Model>, StoreError> {
        self.state
            .store
            .broadcasts()
            .claim(owner, limit as u64, self.lease())
            .await
    }

    async fn process(&self, owner: &str, item: broadcast::Model) {
        let id = item.id;
        if let Err(e) = fan_out_chunk(&self.state, owner, &item).await {
            tracing::warn!(broadcast_id = %id, error = %e, "a broadcast chunk failed; it will be retried");
            let _ = self
                .state
                .store
                .broadcasts()
                .release(id, owner, Utc::now() + RETRY_AFTER)
                .await;
        }
    }

    async fn next_due(&self) -> Option<DateTime<Utc>> {
        self.state
            .store
            .broadcasts()
            .next_due()
            .await
            .ok()
            .flatten()
    }
}

/// The chunk size and how long it holds the organization's rate.
pub fn chunk_plan(rate_per_second: u32) -> (u32, TimeDelta) {
    let rate = rate_per_second.max(1);
    let size = rate.min(MAX_CHUNK);
    let millis = (i64::from(size) * 1000) / i64::from(rate);
    (size, TimeDelta::milliseconds(millis.max(1)))
}

/// Hides the preview text at the top of the HTML, where mail clients read their inbox preview from.
fn with_preview(html: String, preview: Option<&str>) -> String {
    match preview {
        None => html,
        Some(preview) => {
            let escaped = preview
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            format!(
                "<div style=\"display:none;max-height:0;overflow:hidden;\">{escaped}</div>{html}"
            )
        }
    }
}

async fn fan_out_chunk(
    state: &AppState,
    owner: &str,
    b: &broadcast::Model,
) -> Result<(), StoreError> {
    let store = state.store.broadcasts();
    let org = b.organization_id;
    if let Some(until) = store.paced_until(org).await?
        && until > Utc::now()
    {
        return store.release(b.id, owner, until).await;
    }
    let (size, pace) = chunk_plan(state.config.broadcasts.rate_per_second);
    let topic = match b.topic_id {
        Some(topic_id) => state
            .store
            .topics()
            .get(org, topic_id)
            .await?
            .map(|t| (t.id, t.default_subscription)),
        None => None,
    };
    let contacts = match b.segment_id {
        Some(segment) => {
            store
                .contacts_after(org, segment, topic, b.cursor, u64::from(size))
                .await?
        }
        None => Vec::new(),
    };
    let done = contacts.len() < size as usize;
    let fallbacks: BTreeMap<String, Value> = state
        .store
        .contact_properties()
        .all(org)
        .await?
        .into_iter()
        .filter_map(|p| p.fallback_value.map(|v| (p.key, v)))
        .collect();
    let signer = UnsubscribeLinks::from_state(state).ok_or_else(|| {
        StoreError::Corrupt("AUTH_SECRET is not set: unsubscribe links cannot be signed".to_owned())
    })?;
    let from = Mailbox::parse(&b.from_address)
        .map_err(|e| StoreError::Corrupt(format!("broadcast {}: `from`: {e}", b.id)))?;
    let reply_to: Vec<Mailbox> = opensend_store::repos::broadcasts::reply_to_of(b)?
        .iter()
        .filter_map(|r| Mailbox::parse(r).ok())
        .collect();
    let template = Template::parse(&b.subject, b.html.as_deref(), b.text_body.as_deref());
    let mailto = state
        .config
        .broadcasts
        .unsubscribe_mailto
        .as_ref()
        .map(|a| format!(", <mailto:{a}?subject=unsubscribe>"));

    let mut emails = Vec::new();
    let mut recipients = Vec::with_capacity(contacts.len());
    for contact in &contacts {
        let skip = if contact.unsubscribed {
            Some(SKIP_UNSUBSCRIBED)
        } else if contact.suppressed {
            Some(SKIP_SUPPRESSED)
        } else if contact.opted_out {
            Some(SKIP_OPTED_OUT)
        } else {
            None
        };
        let outcome = match skip {
            Some(reason) => Err(reason),
            None => match Mailbox::parse(&contact.email) {
                Err(_) => Err(SKIP_INVALID_ADDRESS),
                Ok(to) => {
                    let token = signer.sign(&LinkClaims {
                        organization_id: org,
                        contact_id: contact.id,
                        broadcast_id: b.id,
                        topic_id: topic.map(|(id, _)| id),
                    });
                    let url = unsubscribe::link(state, &token);
                    let values = Values {
                        email: &contact.email,
                        first_name: contact.first_name.as_deref(),
                        last_name: contact.last_name.as_deref(),
                        properties: &contact.properties,
                        fallbacks: &fallbacks,
                        unsubscribe_url: &url,
                    };
                    match template.render(&values, limits::MESSAGE_BYTES) {
                        Err(_) => Err(SKIP_TOO_LARGE),
                        Ok(rendered) => {
                            let id = opensend_core::new_id();
                            let address = to.address.clone();
                            emails.push(NewEmail {
                                id,
                                organization_id: org,
                                api_key_id: b.api_key_id,
                                message_id: format!("{id}@{}", from.address.domain()),
                                from: from.clone(),
                                to: vec![to],
                                cc: Vec::new(),
                                bcc: Vec::new(),
                                reply_to: reply_to.clone(),
                                subject: rendered.subject,
                                html: rendered
                                    .html
                                    .map(|h| with_preview(h, b.preview_text.as_deref())),
                                text: rendered.text,
                                headers: vec![
                                    Header::new(
                                        "List-Unsubscribe",
                                        format!("<{url}>{}", mailto.as_deref().unwrap_or("")),
                                    ),
                                    Header::new(
                                        "List-Unsubscribe-Post",
                                        "List-Unsubscribe=One-Click",
                                    ),
                                ],
                                tags: Vec::new(),
                                attachments: Vec::new(),
                                scheduled_at: None,
                                sending_domain_id: b.sending_domain_id,
                                unverified_sender: b.unverified_sender,
                                recipients: vec![(address, RecipientKind::To)],
                            });
                            Ok(id)
                        }
                    }
                }
            },
        };
        recipients.push(RecipientOutcome {
            contact_id: contact.id,
            email: contact.email.clone(),
            outcome,
        });
    }
    let chunk = Chunk {
        after: b.cursor,
        last: contacts.last().map(|c| c.id),
        emails,
        recipients,
        done,
        pace,
    };
    let wrote_emails = !chunk.emails.is_empty();
    match store.write_chunk(b, owner, chunk).await? {
        ChunkOutcome::Written => {
            if wrote_emails {
                state.delivery_wakeup.notify_one();
            }
            Ok(())
        }
        ChunkOutcome::Postponed(until) => store.release(b.id, owner, until).await,
        // Canceled or taken over: nothing was written, nothing to do.
        ChunkOutcome::Lost => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_the_rate() {
        assert_eq!(chunk_plan(50), (50, TimeDelta::seconds(1)));
        assert_eq!(chunk_plan(1), (1, TimeDelta::seconds(1)));
        assert_eq!(chunk_plan(2000), (500, TimeDelta::milliseconds(250)));
        assert_eq!(chunk_plan(0), (1, TimeDelta::seconds(1)));
    }
}
