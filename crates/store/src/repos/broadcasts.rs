//! Broadcasts: drafts, their sending, and the durable fan-out that turns one broadcast into one email per
//! contact of its segment.
//!
//! The fan-out is a leased queue like the others: a worker claims a due broadcast, reads the next chunk of the
//! segment's contacts after `cursor` (contacts in id order), and writes in ONE transaction the chunk's emails
//! (through the accept path's writer, [`accept_writer::write_emails`]), one `broadcast_recipients` row per
//! contact (unique per broadcast and contact) and the new cursor, only while it still holds the lease and
//! the cursor is the one it read from. A worker that dies mid-chunk wrote nothing of it; the next owner starts
//! again from the last committed cursor, so no contact is lost or mailed twice.
//!
//! Pacing is per organization (`broadcast_pacing.next_at`): a chunk is written only once the organization's
//! previous chunk's time has passed, and moves that time on by the chunk's share of the rate.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::Value;
use uuid::Uuid;

use crate::entities::{
    broadcast, broadcast_pacing, broadcast_recipient, contact, contact_property,
    contact_property_value, contact_segment, contact_topic, email,
};
use crate::pagination::paginate;
use crate::records::Subscription;
use crate::repos::contacts::suppressed_keys;
use crate::repos::new_email::NewEmail;
use crate::repos::{accept_writer, now};
use crate::{Page, PageRequest, StoreError};

pub const DRAFT: &str = "draft";
pub const SCHEDULED: &str = "scheduled";
pub const QUEUED: &str = "queued";
pub const SENDING: &str = "sending";
pub const SENT: &str = "sent";
pub const CANCELED: &str = "canceled";

/// Why a contact of the segment got no email.
pub const SKIP_UNSUBSCRIBED: &str = "unsubscribed";
pub const SKIP_SUPPRESSED: &str = "suppressed";
pub const SKIP_OPTED_OUT: &str = "opted_out";

/// A broadcast's content and audience, already checked by the caller.
#[derive(Clone, Debug, Default)]
pub struct BroadcastContent {
    pub name: Option<String>,
    pub segment_id: Option<Uuid>,
    pub topic_id: Option<Uuid>,
    pub from: String,
    pub subject: String,
    pub reply_to: Vec<String>,
    pub preview_text: Option<String>,
    pub html: Option<String>,
    pub text: Option<String>,
}

/// Changes to a draft; `None` leaves a field as it is (`Some(None)` clears a nullable one).
#[derive(Clone, Debug, Default)]
pub struct BroadcastChanges {
    pub name: Option<Option<String>>,
    pub segment_id: Option<Uuid>,
    pub topic_id: Option<Option<Uuid>>,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub reply_to: Option<Vec<String>>,
    pub preview_text: Option<Option<String>>,
    pub html: Option<Option<String>>,
    pub text: Option<Option<String>>,
}

/// An order to send: now, or at `scheduled_at`; with the sender identity checked at the time of the order.
#[derive(Clone, Debug)]
pub struct SendOrder {
    pub scheduled_at: Option<DateTime<Utc>>,
    pub api_key_id: Option<Uuid>,
    pub sending_domain_id: Option<Uuid>,
    pub unverified_sender: bool,
}

/// What a change to a broadcast found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Done,
    NotFound,
    /// The broadcast is not in a status that allows it (its status).
    Refused(String),
}

/// A contact as the fan-out needs it.
#[derive(Clone, Debug)]
pub struct FanOutContact {
    pub id: Uuid,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub unsubscribed: bool,
    /// The address is on the organization's suppression list.
    pub suppressed: bool,
    /// The broadcast has a topic and the contact is not subscribed to it.
    pub opted_out: bool,
    /// Custom property values by key.
    pub properties: BTreeMap<String, Value>,
}

/// One contact's outcome in a chunk.
#[derive(Clone, Debug)]
pub struct RecipientOutcome {
    pub contact_id: Uuid,
    pub email: String,
    /// The email written for it (in [`Chunk::emails`]), or why it was skipped.
    pub outcome: Result<Uuid, &'static str>,
}

/// One chunk of a fan-out, to write in one transaction.
#[derive(Debug)]
pub struct Chunk {
    /// The cursor the chunk was read after (checked: another owner may have moved on).
    pub after: Option<Uuid>,
    /// The last contact of the chunk (the new cursor); `None` for an empty chunk.
    pub last: Option<Uuid>,
    pub emails: Vec<NewEmail>,
    pub recipients: Vec<RecipientOutcome>,
    /// No contact is left after this chunk: the broadcast is sent.
    pub done: bool,
    /// How long this chunk holds the organization's rate.
    pub pace: TimeDelta,
}

/// What writing a chunk did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkOutcome {
    Written,
    /// The organization's rate allows the next chunk only at this time; nothing was written.
    Postponed(DateTime<Utc>),
    /// The lease, the status or the cursor changed under the worker (canceled, taken over): nothing written.
    Lost,
}

/// A recipient row with the state of its email.
#[derive(Clone, Debug)]
pub struct RecipientRecord {
    pub id: Uuid,
    pub contact_id: Uuid,
    pub email: String,
    pub email_id: Option<Uuid>,
    /// The email's status (`queued`, `sent`, `delivered`, `bounced`…), or `skipped`.
    pub status: String,
    pub skipped_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Which recipients to list.
#[derive(Clone, Debug, Default)]
pub struct RecipientFilter {
    /// Only those whose email has one of these statuses.
    pub email_statuses: Option<Vec<String>>,
    /// Only those skipped for one of these reasons.
    pub skipped_reasons: Option<Vec<String>>,
    /// Only addresses containing this text (any case).
    pub email: Option<String>,
}

pub struct Broadcasts<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
}

fn reply_to_text(reply_to: &[String]) -> String {
    serde_json::to_string(reply_to).unwrap_or_else(|_| "[]".to_owned())
}

/// The reply-to addresses stored on a broadcast.
pub fn reply_to_of(model: &broadcast::Model) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(&model.reply_to).map_err(|_| {
        StoreError::Corrupt(format!("broadcasts {}: `reply_to` is not JSON", model.id))
    })
}

impl<'a> Broadcasts<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self { read, write }
    }

    /// A new draft, or one sent at once when `send` is given.
    pub async fn create(
        &self,
        organization_id: Uuid,
        content: &BroadcastContent,
        send: Option<&SendOrder>,
    ) -> Result<broadcast::Model, StoreError> {
        let at = now();
        let (status, next) = match send {
            None => (DRAFT, None),
            Some(order) => match order.scheduled_at {
                Some(when) => (SCHEDULED, Some(when)),
                None => (QUEUED, Some(at)),
            },
        };
        Ok(broadcast::ActiveModel {
            id: Set(opensend_core::new_id()),
            organization_id: Set(organization_id),
            name: Set(content.name.clone()),
            segment_id: Set(content.segment_id),
            topic_id: Set(content.topic_id),
            from_address: Set(content.from.clone()),
            subject: Set(content.subject.clone()),
            reply_to: Set(reply_to_text(&content.reply_to)),
            preview_text: Set(content.preview_text.clone()),
            html: Set(content.html.clone()),
            text_body: Set(content.text.clone()),
            status: Set(status.to_owned()),
            scheduled_at: Set(send.and_then(|o| o.scheduled_at)),
            sent_at: Set(None),
            api_key_id: Set(send.and_then(|o| o.api_key_id)),
            sending_domain_id: Set(send.and_then(|o| o.sending_domain_id)),
            unverified_sender: Set(send.is_some_and(|o| o.unverified_sender)),
            cursor: Set(None),
            queued: Set(0),
            skipped: Set(0),
            next_attempt_at: Set(next),
            lease_owner: Set(None),
            lease_expires_at: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(self.write)
        .await?)
    }

    pub async fn get(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<Option<broadcast::Model>, StoreError> {
        Ok(broadcast::Entity::find_by_id(id)
            .filter(broadcast::Column::OrganizationId.eq(organization_id))
            .one(self.read)
            .await?)
    }

    pub async fn list(
        &self,
        organization_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<broadcast::Model>, StoreError> {
        let select =
            broadcast::Entity::find().filter(broadcast::Column::OrganizationId.eq(organization_id));
        paginate(self.read, select, broadcast::Column::Id, page).await
    }

    /// What a conditional change that touched no row found: no such broadcast, or one in another status.
    async fn why_not(&self, organization_id: Uuid, id: Uuid) -> Result<Change, StoreError> {
        Ok(match self.get(organization_id, id).await? {
            None => Change::NotFound,
            Some(b) => Change::Refused(b.status),
        })
    }

    /// Changes a draft (only a draft).
    pub async fn update(
        &self,
        organization_id: Uuid,
        id: Uuid,
        changes: &BroadcastChanges,
    ) -> Result<Change, StoreError> {
        let mut update = broadcast::Entity::update_many()
            .col_expr(broadcast::Column::UpdatedAt, Expr::value(now()))
            .filter(broadcast::Column::Id.eq(id))
            .filter(broadcast::Column::OrganizationId.eq(organization_id))
            .filter(broadcast::Column::Status.eq(DRAFT));
        if let Some(name) = &changes.name {
            update = update.col_expr(broadcast::Column::Name, Expr::value(name.clone()));
        }
        if let Some(segment_id) = changes.segment_id {
            update = update.col_expr(broadcast::Column::SegmentId, Expr::value(segment_id));
        }
        if let Some(topic_id) = changes.topic_id {
            update = update.col_expr(broadcast::Column::TopicId, Expr::value(topic_id));
        }
        if let Some(from) = &changes.from {
            update = update.col_expr(broadcast::Column::FromAddress, Expr::value(from.clone()));
        }
        if let Some(subject) = &changes.subject {
            update = update.col_expr(broadcast::Column::Subject, Expr::value(subject.clone()));
        }
        if let Some(reply_to) = &changes.reply_to {
            update = update.col_expr(
                broadcast::Column::ReplyTo,
                Expr::value(reply_to_text(reply_to)),
            );
        }
        if let Some(preview_text) = &changes.preview_text {
            update = update.col_expr(
                broadcast::Column::PreviewText,
                Expr::value(preview_text.clone()),
            );
        }
        if let Some(html) = &changes.html {
            update = update.col_expr(broadcast::Column::Html, Expr::value(html.clone()));
        }
        if let Some(text) = &changes.text {
            update = update.col_expr(broadcast::Column::TextBody, Expr::value(text.clone()));
        }
        if update.exec(self.write).await?.rows_affected == 1 {
            return Ok(Change::Done);
        }
        self.why_not(organization_id, id).await
    }

    /// Deletes a draft, or a scheduled broadcast (which cancels its sending).
    pub async fn delete(&self, organization_id: Uuid, id: Uuid) -> Result<Change, StoreError> {
        let deleted = broadcast::Entity::delete_many()
            .filter(broadcast::Column::Id.eq(id))
            .filter(broadcast::Column::OrganizationId.eq(organization_id))
            .filter(broadcast::Column::Status.is_in([DRAFT, SCHEDULED]))
            // A scheduled one a worker already took is being sent.
            .filter(broadcast::Column::LeaseOwner.is_null())
            .exec(self.write)
            .await?;
        if deleted.rows_affected == 1 {
            return Ok(Change::Done);
        }
        self.why_not(organization_id, id).await
    }

    /// Sends a draft now or at `order.scheduled_at`.
    pub async fn send(
        &self,
        organization_id: Uuid,
        id: Uuid,
        order: &SendOrder,
    ) -> Result<Change, StoreError> {
        let at = now();
        let (status, next) = match order.scheduled_at {
            Some(when) => (SCHEDULED, when),
            None => (QUEUED, at),
        };
        let sent = broadcast::Entity::update_many()
            .col_expr(broadcast::Column::Status, Expr::value(status))
            .col_expr(
                broadcast::Column::ScheduledAt,
                Expr::value(order.scheduled_at),
            )
            .col_expr(broadcast::Column::NextAttemptAt, Expr::value(next))
            .col_expr(broadcast::Column::ApiKeyId, Expr::value(order.api_key_id))
            .col_expr(
                broadcast::Column::SendingDomainId,
                Expr::value(order.sending_domain_id),
            )
            .col_expr(
                broadcast::Column::UnverifiedSender,
                Expr::value(order.unverified_sender),
            )
            .col_expr(broadcast::Column::UpdatedAt, Expr::value(at))
            .filter(broadcast::Column::Id.eq(id))
            .filter(broadcast::Column::OrganizationId.eq(organization_id))
            .filter(broadcast::Column::Status.eq(DRAFT))
            .exec(self.write)
            .await?;
        if sent.rows_affected == 1 {
            return Ok(Change::Done);
        }
        self.why_not(organization_id, id).await
    }

    /// Cancels a broadcast: a scheduled one goes back to `draft` (nothing was sent), a queued or sending one
    /// becomes `canceled` (emails already written stay; no further chunk is written).
    pub async fn cancel(&self, organization_id: Uuid, id: Uuid) -> Result<Change, StoreError> {
        let at = now();
        let back_to_draft = broadcast::Entity::update_many()
            .col_expr(broadcast::Column::Status, Expr::value(DRAFT))
            .col_expr(
                broadcast::Column::ScheduledAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                broadcast::Column::NextAttemptAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(broadcast::Column::UpdatedAt, Expr::value(at))
            .filter(broadcast::Column::Id.eq(id))
            .filter(broadcast::Column::OrganizationId.eq(organization_id))
            .filter(broadcast::Column::Status.eq(SCHEDULED))
            .filter(broadcast::Column::LeaseOwner.is_null())
            .exec(self.write)
            .await?;
        if back_to_draft.rows_affected == 1 {
            return Ok(Change::Done);
        }
        let stopped = broadcast::Entity::update_many()
            .col_expr(broadcast::Column::Status, Expr::value(CANCELED))
            .col_expr(
                broadcast::Column::NextAttemptAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(broadcast::Column::UpdatedAt, Expr::value(at))
            .filter(broadcast::Column::Id.eq(id))
            .filter(broadcast::Column::OrganizationId.eq(organization_id))
            .filter(broadcast::Column::Status.is_in([SCHEDULED, QUEUED, SENDING]))
            .exec(self.write)
            .await?;
        if stopped.rows_affected == 1 {
            return Ok(Change::Done);
        }
        self.why_not(organization_id, id).await
    }

    /// A new draft with the content and audience of broadcast `id`.
    pub async fn duplicate(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<Option<broadcast::Model>, StoreError> {
        let Some(original) = self.get(organization_id, id).await? else {
            return Ok(None);
        };
        let content = BroadcastContent {
            name: original.name.clone(),
            segment_id: original.segment_id,
            topic_id: original.topic_id,
            from: original.from_address.clone(),
            subject: original.subject.clone(),
            reply_to: reply_to_of(&original)?,
            preview_text: original.preview_text.clone(),
            html: original.html.clone(),
            text: original.text_body.clone(),
        };
        self.create(organization_id, &content, None).await.map(Some)
    }

    /// Leases up to `limit` due broadcasts to `owner`; a scheduled or queued one becomes `sending`.
    pub async fn claim(
        &self,
        owner: &str,
        limit: u64,
        lease: TimeDelta,
    ) -> Result<Vec<broadcast::Model>, StoreError> {
        let at = now();
        let due = || {
            Condition::all()
                .add(broadcast::Column::NextAttemptAt.lte(at))
                .add(broadcast::Column::Status.is_in([SCHEDULED, QUEUED, SENDING]))
                .add(
                    Condition::any()
                        .add(broadcast::Column::LeaseExpiresAt.is_null())
                        .add(broadcast::Column::LeaseExpiresAt.lt(at)),
                )
        };
        let candidates = broadcast::Entity::find()
            .filter(due())
            .order_by_asc(broadcast::Column::NextAttemptAt)
            .limit(limit)
            .all(self.read)
            .await?;
        let mut claimed = Vec::new();
        for mut row in candidates {
            let taken = broadcast::Entity::update_many()
                .col_expr(broadcast::Column::Status, Expr::value(SENDING))
                .col_expr(broadcast::Column::LeaseOwner, Expr::value(owner.to_owned()))
                .col_expr(broadcast::Column::LeaseExpiresAt, Expr::value(at + lease))
                .filter(broadcast::Column::Id.eq(row.id))
                .filter(due())
                .exec(self.write)
                .await?
                .rows_affected
                == 1;
            if taken {
                // Read again: the cursor may have moved since the candidates were read.
                if let Some(fresh) = broadcast::Entity::find_by_id(row.id)
                    .one(self.write)
                    .await?
                {
                    row = fresh;
                }
                claimed.push(row);
            }
        }
        Ok(claimed)
    }

    /// When the next broadcast falls due.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(broadcast::Entity::find()
            .select_only()
            .column(broadcast::Column::NextAttemptAt)
            .filter(broadcast::Column::NextAttemptAt.is_not_null())
            .filter(broadcast::Column::Status.is_in([SCHEDULED, QUEUED, SENDING]))
            .order_by_asc(broadcast::Column::NextAttemptAt)
            .into_tuple::<Option<DateTime<Utc>>>()
            .one(self.read)
            .await?
            .flatten())
    }

    /// Gives a claimed broadcast back, due again at `at` (the organization's rate, or a failure).
    pub async fn release(
        &self,
        id: Uuid,
        owner: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        broadcast::Entity::update_many()
            .col_expr(broadcast::Column::NextAttemptAt, Expr::value(at))
            .col_expr(
                broadcast::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                broadcast::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(broadcast::Column::Id.eq(id))
            .filter(broadcast::Column::LeaseOwner.eq(owner))
            .filter(broadcast::Column::Status.eq(SENDING))
            .exec(self.write)
            .await?;
        Ok(())
    }

    /// When the organization may write its next chunk (`None`: now).
    pub async fn paced_until(
        &self,
        organization_id: Uuid,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(broadcast_pacing::Entity::find_by_id(organization_id)
            .one(self.read)
            .await?
            .map(|p| p.next_at))
    }

    /// Up to `limit` contacts of the segment after `after` (in id order), with what the fan-out needs:
    /// suppression, the topic subscription (`topic`: its id and default), custom property values.
    pub async fn contacts_after(
        &self,
        organization_id: Uuid,
        segment_id: Uuid,
        topic: Option<(Uuid, Subscription)>,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<FanOutContact>, StoreError> {
        let mut select = contact::Entity::find()
            .filter(contact::Column::OrganizationId.eq(organization_id))
            .filter(
                contact::Column::Id.in_subquery(
                    Query::select()
                        .column(contact_segment::Column::ContactId)
                        .from(contact_segment::Entity)
                        .and_where(contact_segment::Column::SegmentId.eq(segment_id))
                        .and_where(contact_segment::Column::OrganizationId.eq(organization_id))
                        .to_owned(),
                ),
            );
        if let Some(after) = after {
            select = select.filter(contact::Column::Id.gt(after));
        }
        let rows = select
            .order_by_asc(contact::Column::Id)
            .limit(limit)
            .all(self.read)
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let keys: Vec<String> = rows.iter().map(|r| r.email_key.clone()).collect();
        let suppressed = suppressed_keys(self.read, organization_id, &keys).await?;

        let mut opted_out: HashSet<Uuid> = HashSet::new();
        if let Some((topic_id, default)) = topic {
            let chosen: HashMap<Uuid, String> = contact_topic::Entity::find()
                .filter(contact_topic::Column::OrganizationId.eq(organization_id))
                .filter(contact_topic::Column::TopicId.eq(topic_id))
                .filter(contact_topic::Column::ContactId.is_in(ids.iter().copied()))
                .all(self.read)
                .await?
                .into_iter()
                .map(|row| (row.contact_id, row.subscription))
                .collect();
            for id in &ids {
                let subscription = match chosen.get(id) {
                    None => default,
                    Some(text) => text.parse().unwrap_or(Subscription::OptOut),
                };
                if subscription == Subscription::OptOut {
                    opted_out.insert(*id);
                }
            }
        }

        let keys_by_property: HashMap<Uuid, String> = contact_property::Entity::find()
            .filter(contact_property::Column::OrganizationId.eq(organization_id))
            .all(self.read)
            .await?
            .into_iter()
            .map(|p| (p.id, p.key))
            .collect();
        let mut properties: HashMap<Uuid, BTreeMap<String, Value>> = HashMap::new();
        if !keys_by_property.is_empty() {
            let values = contact_property_value::Entity::find()
                .filter(contact_property_value::Column::OrganizationId.eq(organization_id))
                .filter(contact_property_value::Column::ContactId.is_in(ids.iter().copied()))
                .all(self.read)
                .await?;
            for value in values {
                let (Some(key), Ok(parsed)) = (
                    keys_by_property.get(&value.property_id),
                    serde_json::from_str::<Value>(&value.value),
                ) else {
                    continue;
                };
                properties
                    .entry(value.contact_id)
                    .or_default()
                    .insert(key.clone(), parsed);
            }
        }

        Ok(rows
            .into_iter()
            .map(|row| FanOutContact {
                suppressed: suppressed.contains(&row.email_key),
                opted_out: opted_out.contains(&row.id),
                properties: properties.remove(&row.id).unwrap_or_default(),
                id: row.id,
                email: row.email,
                first_name: row.first_name,
                last_name: row.last_name,
                unsubscribed: row.unsubscribed,
            })
            .collect())
    }

    /// Writes one chunk in one transaction while `owner` holds the broadcast, it is still sending and its
    /// cursor is still `chunk.after`, and the organization's rate allows it now.
    pub async fn write_chunk(
        &self,
        broadcast: &broadcast::Model,
        owner: &str,
        chunk: Chunk,
    ) -> Result<ChunkOutcome, StoreError> {
        let org = broadcast.organization_id;
        let txn = self.write.begin().await?;
        let at = now();

        // The organization's rate first: the upsert moves its time on only when that time has come (a
        // conditional `DO UPDATE`, atomic on both backends), so two workers cannot both take the same slot.
        let paced = broadcast_pacing::Entity::insert(broadcast_pacing::ActiveModel {
            organization_id: Set(org),
            next_at: Set(at + chunk.pace),
        })
        .on_conflict(
            OnConflict::column(broadcast_pacing::Column::OrganizationId)
                .update_column(broadcast_pacing::Column::NextAt)
                .action_and_where(
                    Expr::col((broadcast_pacing::Entity, broadcast_pacing::Column::NextAt)).lte(at),
                )
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if paced == 0 {
            let until = broadcast_pacing::Entity::find_by_id(org)
                .one(&txn)
                .await?
                .map_or(at, |p| p.next_at);
            txn.rollback().await?;
            return Ok(ChunkOutcome::Postponed(until));
        }

        let queued = chunk.emails.len() as i64;
        let skipped = chunk.recipients.len() as i64 - queued;
        let cursor = chunk.last.or(chunk.after);
        let mut update = broadcast::Entity::update_many()
            .col_expr(broadcast::Column::Cursor, Expr::value(cursor))
            .col_expr(
                broadcast::Column::Queued,
                Expr::col(broadcast::Column::Queued).add(queued),
            )
            .col_expr(
                broadcast::Column::Skipped,
                Expr::col(broadcast::Column::Skipped).add(skipped),
            )
            .col_expr(
                broadcast::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                broadcast::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(broadcast::Column::UpdatedAt, Expr::value(at))
            .filter(broadcast::Column::Id.eq(broadcast.id))
            .filter(broadcast::Column::OrganizationId.eq(org))
            .filter(broadcast::Column::LeaseOwner.eq(owner))
            .filter(broadcast::Column::Status.eq(SENDING));
        update = match chunk.after {
            Some(after) => update.filter(broadcast::Column::Cursor.eq(after)),
            None => update.filter(broadcast::Column::Cursor.is_null()),
        };
        update = if chunk.done {
            update
                .col_expr(broadcast::Column::Status, Expr::value(SENT))
                .col_expr(broadcast::Column::SentAt, Expr::value(at))
                .col_expr(
                    broadcast::Column::NextAttemptAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
        } else {
            update.col_expr(
                broadcast::Column::NextAttemptAt,
                Expr::value(at + chunk.pace),
            )
        };
        if update.exec(&txn).await?.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(ChunkOutcome::Lost);
        }

        accept_writer::write_emails(&txn, chunk.emails, at).await?;
        let rows: Vec<broadcast_recipient::ActiveModel> = chunk
            .recipients
            .into_iter()
            .map(|r| {
                let (email_id, reason) = match r.outcome {
                    Ok(id) => (Some(id), None),
                    Err(reason) => (None, Some(reason.to_owned())),
                };
                broadcast_recipient::ActiveModel {
                    id: Set(opensend_core::new_id()),
                    broadcast_id: Set(broadcast.id),
                    organization_id: Set(org),
                    contact_id: Set(r.contact_id),
                    email: Set(r.email),
                    email_id: Set(email_id),
                    skipped_reason: Set(reason),
                    created_at: Set(at),
                }
            })
            .collect();
        for part in rows.chunks(500) {
            broadcast_recipient::Entity::insert_many(part.to_vec())
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(ChunkOutcome::Written)
    }

    /// One page of the broadcast's recipients with the state of their emails; `None` when the organization
    /// has no such broadcast.
    pub async fn recipients(
        &self,
        organization_id: Uuid,
        broadcast_id: Uuid,
        filter: &RecipientFilter,
        page: PageRequest,
    ) -> Result<Option<Page<RecipientRecord>>, StoreError> {
        if self.get(organization_id, broadcast_id).await?.is_none() {
            return Ok(None);
        }
        let mut select = broadcast_recipient::Entity::find()
            .filter(broadcast_recipient::Column::OrganizationId.eq(organization_id))
            .filter(broadcast_recipient::Column::BroadcastId.eq(broadcast_id));
        if let Some(part) = &filter.email {
            let escaped: String = part
                .to_lowercase()
                .chars()
                .flat_map(|c| match c {
                    '%' | '_' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            select = select.filter(
                Expr::expr(Func::lower(Expr::col(broadcast_recipient::Column::Email)))
                    .like(LikeExpr::new(format!("%{escaped}%")).escape('\\')),
            );
        }
        let by_status = filter.email_statuses.as_ref().map(|statuses| {
            broadcast_recipient::Column::EmailId.in_subquery(
                Query::select()
                    .column(email::Column::Id)
                    .from(email::Entity)
                    .and_where(email::Column::OrganizationId.eq(organization_id))
                    .and_where(email::Column::Status.is_in(statuses.iter().cloned()))
                    .to_owned(),
            )
        });
        let by_reason = filter.skipped_reasons.as_ref().map(|reasons| {
            broadcast_recipient::Column::SkippedReason.is_in(reasons.iter().cloned())
        });
        select = match (by_status, by_reason) {
            (None, None) => select,
            (Some(s), None) => select.filter(s),
            (None, Some(r)) => select.filter(r),
            (Some(s), Some(r)) => select.filter(Condition::any().add(s).add(r)),
        };
        let found: Page<broadcast_recipient::Model> =
            paginate(self.read, select, broadcast_recipient::Column::Id, page).await?;
        let email_ids: Vec<Uuid> = found.items.iter().filter_map(|r| r.email_id).collect();
        let statuses: HashMap<Uuid, String> = if email_ids.is_empty() {
            HashMap::new()
        } else {
            email::Entity::find()
                .select_only()
                .column(email::Column::Id)
                .column(email::Column::Status)
                .filter(email::Column::OrganizationId.eq(organization_id))
                .filter(email::Column::Id.is_in(email_ids))
                .into_tuple::<(Uuid, String)>()
                .all(self.read)
                .await?
                .into_iter()
                .collect()
        };
        let items = found
            .items
            .into_iter()
            .map(|r| RecipientRecord {
                status: match r.email_id {
                    // An email removed by retention keeps the recipient row.
                    Some(id) => statuses
                        .get(&id)
                        .cloned()
                        .unwrap_or_else(|| "unknown".to_owned()),
                    None => "skipped".to_owned(),
                },
                id: r.id,
                contact_id: r.contact_id,
                email: r.email,
                email_id: r.email_id,
                skipped_reason: r.skipped_reason,
                created_at: r.created_at,
            })
            .collect();
        Ok(Some(Page {
            items,
            has_more: found.has_more,
        }))
    }
}
