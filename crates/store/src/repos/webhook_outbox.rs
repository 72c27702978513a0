//! The webhook outbox: events written in the same transaction as the change that caused them, and the
//! queue dispatchers claim deliveries from.
//!
//! [`enqueue`] runs inside the caller's transaction: if any enabled endpoint of the organization subscribes
//! to the event, it writes one message (the exact body to send) and one pending delivery per endpoint. A
//! rolled-back change therefore never announces anything, and a committed one is never lost.
//!
//! Dispatchers claim due deliveries with a lease ([`WebhookQueue::claim`]), the way delivery workers claim
//! emails: `FOR UPDATE SKIP LOCKED` on PostgreSQL, the single writer on SQLite. Each claim is shared among
//! the organizations with due deliveries, in turns, so one tenant's backlog never holds up the others'. The claim counts as an
//! attempt, so a dispatcher that crashes mid-request still moves the delivery towards its attempt limit; the
//! delivery itself is retried once the lease runs out. Outcomes are recorded in batches, each only while the
//! reporting dispatcher still holds the lease.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use opensend_core::webhook::EventType;
use opensend_core::webhook::payload::{EmailEventData, EmailFields, Envelope, recipients_of};
use opensend_core::{DeliveryStatus, WebhookStatus};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend,
    DerivePartialModel, EntityTrait, QueryFilter, QuerySelect, Set, Statement, TransactionTrait,
    Value as DbValue,
};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::StoreError;
use crate::entities::{
    email, organization_event, suppression, webhook, webhook_attempt, webhook_delivery,
    webhook_message,
};
use crate::records::columns::Row;
use crate::records::{DeliveryRecord, WebhookRecord};
use crate::repos::now;
use crate::repos::suppressions::address_key;

/// The enabled endpoints of `organization_id` that subscribe to `event`. An endpoint whose subscriptions
/// cannot be read subscribes to nothing, rather than stopping every change of the organization.
pub(crate) async fn subscribers<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    event: EventType,
) -> Result<Vec<Uuid>, StoreError> {
    let endpoints: Vec<(Uuid, String)> = webhook::Entity::find()
        .select_only()
        .column(webhook::Column::Id)
        .column(webhook::Column::EventTypes)
        .filter(webhook::Column::OrganizationId.eq(organization_id))
        .filter(webhook::Column::Status.eq(WebhookStatus::Enabled.as_str()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(endpoints
        .into_iter()
        .filter(
            |(id, types)| match Row::new("webhooks", *id).strings("event_types", types) {
                Ok(types) => types.iter().any(|t| t == event.as_str()),
                Err(e) => {
                    tracing::warn!(webhook_id = %id, error = %e, "endpoint skipped");
                    false
                }
            },
        )
        .map(|(id, _)| id)
        .collect())
}

/// Writes `data` in its [`Envelope`] as one message and a pending delivery to each of `endpoints`.
pub(crate) async fn insert_message<C: ConnectionTrait, D: Serialize>(
    db: &C,
    organization_id: Uuid,
    event: EventType,
    endpoints: &[Uuid],
    data: D,
    at: DateTime<Utc>,
) -> Result<Uuid, StoreError> {
    let id = opensend_core::new_id();
    let payload = Envelope::new(event, at, data)
        .to_body()
        .map_err(StoreError::Payload)?;
    webhook_message::ActiveModel {
        id: Set(id),
        organization_id: Set(organization_id),
        event_type: Set(event.as_str().to_owned()),
        payload: Set(payload),
        created_at: Set(at),
    }
    .insert(db)
    .await?;
    let deliveries = endpoints
        .iter()
        .map(|webhook_id| webhook_delivery::ActiveModel {
            id: Set(opensend_core::new_id()),
            organization_id: Set(organization_id),
            webhook_id: Set(*webhook_id),
            message_id: Set(id),
            status: Set(DeliveryStatus::Pending.as_str().to_owned()),
            attempts: Set(0),
            next_attempt_at: Set(Some(at)),
            lease_owner: Set(None),
            lease_expires_at: Set(None),
            last_status_code: Set(None),
            last_error: Set(None),
            last_attempt_at: Set(None),
            replay_of: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
        });
    webhook_delivery::Entity::insert_many(deliveries)
        .exec(db)
        .await?;
    Ok(id)
}

/// Announces `event` with `data` to the organization's subscribed endpoints, inside the caller's
/// transaction. Nothing is written when no endpoint subscribes. `data` is only built when needed.
pub async fn enqueue<C: ConnectionTrait, D: Serialize>(
    db: &C,
    organization_id: Uuid,
    event: EventType,
    data: impl FnOnce() -> D,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let endpoints = subscribers(db, organization_id, event).await?;
    if endpoints.is_empty() {
        return Ok(());
    }
    insert_message(db, organization_id, event, &endpoints, data(), at).await?;
    Ok(())
}

/// The columns of an email its event payloads carry.
#[derive(DerivePartialModel)]
#[sea_orm(entity = "email::Entity")]
struct PayloadColumns {
    id: Uuid,
    created_at: DateTime<Utc>,
    from_address: String,
    to_addresses: String,
    subject: String,
    tags: String,
    headers: String,
}

/// The webhook side of an email event recorded in `email_events`: `event_type` and the recorded `data`
/// become Resend's payload ([`EmailEventData::describe`]) when the type is one endpoints can subscribe to
/// (`email.queued` and `email.canceled` are not).
pub(crate) async fn enqueue_email_event<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    email_id: Uuid,
    event_type: &str,
    data: &Value,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Ok(event) = event_type.parse::<EventType>() else {
        return Ok(());
    };
    let endpoints = subscribers(db, organization_id, event).await?;
    if endpoints.is_empty() {
        return Ok(());
    }
    let Some(email) = email::Entity::find_by_id(email_id)
        .into_partial_model::<PayloadColumns>()
        .one(db)
        .await?
    else {
        return Ok(());
    };
    let read = Row::new("emails", email.id);
    let from = read.mailbox("from_address", &email.from_address)?;
    let to = read.mailboxes("to_addresses", &email.to_addresses)?;
    let tags = read.tags("tags", &email.tags)?;
    let headers = read.headers("headers", &email.headers)?;
    let listed_for = match event {
        EventType::EmailSuppressed => suppression::Entity::find()
            .filter(suppression::Column::OrganizationId.eq(organization_id))
            .filter(
                suppression::Column::AddressKey.is_in(
                    recipients_of(data)
                        .unwrap_or_default()
                        .iter()
                        .map(|address| address_key(address)),
                ),
            )
            .one(db)
            .await?
            .map(|s| s.reason),
        _ => None,
    };
    let payload = EmailEventData::new(EmailFields {
        id: email.id,
        created_at: email.created_at,
        from: &from,
        to: &to,
        subject: &email.subject,
        tags: &tags,
        headers: &headers,
    })
    .describe(event, data, listed_for.as_deref());
    insert_message(db, organization_id, event, &endpoints, payload, at).await?;
    Ok(())
}

/// Attempt rows per insert statement (12 columns each, well under every backend's parameter limit).
const ATTEMPT_INSERT_CHUNK: usize = 256;

/// A claimed delivery with everything needed to send it.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    pub delivery: DeliveryRecord,
    pub webhook: WebhookRecord,
    /// Its `payload` is the exact body to sign and send.
    pub message: webhook_message::Model,
}

/// What one attempt came to.
#[derive(Clone, Debug)]
pub struct AttemptOutcome {
    pub delivery: DeliveryRecord,
    pub succeeded: bool,
    pub status_code: Option<u16>,
    /// At most 1 KiB of the response body.
    pub response: Option<String>,
    pub error: Option<String>,
    pub duration_ms: u32,
    pub attempted_at: DateTime<Utc>,
    /// When to try again; `None` ends the delivery (succeeded, or failed for good).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Disable the endpoint now, for this reason (`410 Gone`).
    pub disable_endpoint: Option<String>,
}

/// Most organizations one claim shares its batch among. With more due, the rest come first in the next
/// claims (and SQLite allows at most 500 terms in a compound `SELECT`).
pub const ORGANIZATIONS_PER_CLAIM: usize = 100;

/// Where the last claim's turn of organizations ended, so the next claim starts with the organization after
/// it. Shared by everything in this process that claims through one [`crate::Store`] (dispatchers, job
/// runs); each process keeps its own, which is fair enough: every one of them goes round every organization.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClaimCursor(Arc<Mutex<Option<Uuid>>>);

impl ClaimCursor {
    fn get(&self) -> Option<Uuid> {
        self.0.lock().map(|c| *c).unwrap_or(None)
    }

    fn set(&self, organization_id: Uuid) {
        if let Ok(mut cursor) = self.0.lock() {
            *cursor = Some(organization_id);
        }
    }
}

pub struct WebhookQueue<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
    cursor: &'a ClaimCursor,
}

impl<'a> WebhookQueue<'a> {
    pub(crate) fn new(
        read: &'a DatabaseConnection,
        write: &'a DatabaseConnection,
        cursor: &'a ClaimCursor,
    ) -> Self {
        Self {
            read,
            write,
            cursor,
        }
    }

    /// Leases up to `limit` due deliveries to `owner`, shared fairly among the organizations that have due
    /// deliveries, and returns them in the order they were taken.
    ///
    /// Organizations take turns, one delivery each per turn, starting after the organization the previous
    /// claim ended with: a tenant with a backlog of 100,000 deliveries gets its share of every claim, and
    /// so does a tenant with one. (Up to [`ORGANIZATIONS_PER_CLAIM`] organizations per claim.) Within an
    /// organization deliveries go oldest due first. At most `room(webhook_id)` deliveries of any one endpoint
    /// are taken, and endpoints in `full` are not even scanned, so a slow endpoint's backlog cannot crowd
    /// out the others.
    ///
    /// Finding the organizations with due work costs a few index probes per organization with pending
    /// deliveries (a skip scan of `webhook_deliveries_pending_organization_id_next_attempt_at_idx`), not a
    /// pass over the backlog.
    pub async fn claim(
        &self,
        owner: &str,
        lease: std::time::Duration,
        limit: usize,
        room: impl Fn(Uuid) -> usize,
        full: &[Uuid],
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let at = now();
        let until = at + TimeDelta::from_std(lease).unwrap_or(TimeDelta::minutes(1));
        let backend = self.write.get_database_backend();
        let txn = self.write.begin().await?;

        let due = DueFilter::new(at, full);
        let organizations = due_organizations(
            &txn,
            backend,
            &due,
            self.cursor.get(),
            limit.min(ORGANIZATIONS_PER_CLAIM),
        )
        .await?;
        if organizations.is_empty() {
            txn.commit().await?;
            return Ok(Vec::new());
        }
        // Scan more than a fair share of each, so the per-endpoint cap can skip rows and organizations with
        // much due can fill what those with little leave.
        let scan = limit.div_ceil(organizations.len()).saturating_mul(4).max(1);
        let candidates = oldest_due_of(&txn, backend, &due, &organizations, scan).await?;
        let chosen = take_in_turns(&organizations, candidates, limit, room);
        let Some(&(_, last_organization)) = chosen.last() else {
            txn.commit().await?;
            return Ok(Vec::new());
        };
        let chosen_ids: Vec<Uuid> = chosen.iter().map(|(id, _)| *id).collect();

        webhook_delivery::Entity::update_many()
            .col_expr(
                webhook_delivery::Column::LeaseOwner,
                Expr::value(Some(owner.to_owned())),
            )
            .col_expr(
                webhook_delivery::Column::LeaseExpiresAt,
                Expr::value(Some(until)),
            )
            .col_expr(
                webhook_delivery::Column::Attempts,
                Expr::col(webhook_delivery::Column::Attempts).add(1),
            )
            .filter(webhook_delivery::Column::Id.is_in(chosen_ids.clone()))
            .exec(&txn)
            .await?;
        let mut deliveries: HashMap<Uuid, webhook_delivery::Model> =
            webhook_delivery::Entity::find()
                .filter(webhook_delivery::Column::Id.is_in(chosen_ids.clone()))
                .all(&txn)
                .await?
                .into_iter()
                .map(|d| (d.id, d))
                .collect();
        let webhook_ids: HashSet<Uuid> = deliveries.values().map(|d| d.webhook_id).collect();
        let message_ids: HashSet<Uuid> = deliveries.values().map(|d| d.message_id).collect();
        let webhooks: HashMap<Uuid, WebhookRecord> = webhook::Entity::find()
            .filter(webhook::Column::Id.is_in(webhook_ids))
            .all(&txn)
            .await?
            .into_iter()
            .map(|w| WebhookRecord::try_from(w).map(|w| (w.id, w)))
            .collect::<Result<_, _>>()?;
        let messages: HashMap<Uuid, webhook_message::Model> = webhook_message::Entity::find()
            .filter(webhook_message::Column::Id.is_in(message_ids))
            .all(&txn)
            .await?
            .into_iter()
            .map(|m| (m.id, m))
            .collect();
        txn.commit().await?;
        self.cursor.set(last_organization);

        let mut claimed = Vec::with_capacity(chosen_ids.len());
        for id in chosen_ids {
            let Some(delivery) = deliveries.remove(&id) else {
                continue;
            };
            let (Some(webhook), Some(message)) = (
                webhooks.get(&delivery.webhook_id),
                messages.get(&delivery.message_id),
            ) else {
                continue;
            };
            claimed.push(ClaimedDelivery {
                delivery: delivery.try_into()?,
                webhook: webhook.clone(),
                message: message.clone(),
            });
        }
        Ok(claimed)
    }

    /// Records `outcomes` in one transaction. Each is applied only if its dispatcher (`owner`) still holds
    /// the lease it claimed with; the result says which were. An endpoint whose failures have run for
    /// `disable_after` without a success is disabled, its pending deliveries fail, and the organization's
    /// event log says so.
    pub async fn record(
        &self,
        owner: &str,
        outcomes: Vec<AttemptOutcome>,
        disable_after: TimeDelta,
    ) -> Result<Vec<bool>, StoreError> {
        let txn = self.write.begin().await?;
        let mut applied = Vec::with_capacity(outcomes.len());
        let mut succeeded_endpoints = HashSet::new();
        let mut failed_endpoints: HashMap<Uuid, (Uuid, DateTime<Utc>)> = HashMap::new();
        let mut disable_now: HashMap<Uuid, (Uuid, String)> = HashMap::new();
        let mut attempts = Vec::with_capacity(outcomes.len());
        // Every delivery's row in a few statements (one per chunk), each row only while `owner` still holds
        // the lease it claimed with: what comes back is what was applied.
        let held = finish_deliveries(&txn, owner, &outcomes).await?;
        for (index, outcome) in outcomes.into_iter().enumerate() {
            let d = &outcome.delivery;
            let held = held.contains(&index);
            applied.push(held);
            if !held {
                continue;
            }
            attempts.push(webhook_attempt::ActiveModel {
                id: Set(opensend_core::new_id()),
                organization_id: Set(d.organization_id),
                delivery_id: Set(d.id),
                attempt: Set(d.attempts),
                succeeded: Set(outcome.succeeded),
                status_code: Set(outcome.status_code.map(i32::from)),
                response: Set(outcome.response),
                error: Set(outcome.error),
                duration_ms: Set(i32::try_from(outcome.duration_ms).unwrap_or(i32::MAX)),
                next_attempt_at: Set(outcome.next_attempt_at),
                created_at: Set(outcome.attempted_at),
            });
            if outcome.succeeded {
                succeeded_endpoints.insert(d.webhook_id);
                failed_endpoints.remove(&d.webhook_id);
            } else if !succeeded_endpoints.contains(&d.webhook_id) {
                failed_endpoints
                    .entry(d.webhook_id)
                    .or_insert((d.organization_id, outcome.attempted_at));
            }
            if let Some(reason) = outcome.disable_endpoint {
                disable_now.insert(d.webhook_id, (d.organization_id, reason));
            }
        }

        // One multi-row insert per chunk rather than a statement per attempt.
        while !attempts.is_empty() {
            let rest = attempts.split_off(attempts.len().min(ATTEMPT_INSERT_CHUNK));
            webhook_attempt::Entity::insert_many(std::mem::replace(&mut attempts, rest))
                .exec(&txn)
                .await?;
        }
        if !succeeded_endpoints.is_empty() {
            webhook::Entity::update_many()
                .col_expr(
                    webhook::Column::FailingSince,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .filter(webhook::Column::Id.is_in(succeeded_endpoints))
                .filter(webhook::Column::FailingSince.is_not_null())
                .exec(&txn)
                .await?;
        }
        for (webhook_id, (organization_id, at)) in failed_endpoints {
            webhook::Entity::update_many()
                .col_expr(webhook::Column::FailingSince, Expr::value(Some(at)))
                .filter(webhook::Column::Id.eq(webhook_id))
                .filter(webhook::Column::FailingSince.is_null())
                .exec(&txn)
                .await?;
            let failing_for_too_long = webhook::Entity::find_by_id(webhook_id)
                .one(&txn)
                .await?
                .and_then(|w| w.failing_since)
                .is_some_and(|since| at - since >= disable_after);
            if failing_for_too_long && !disable_now.contains_key(&webhook_id) {
                let days = disable_after.num_hours() as f64 / 24.0;
                disable_now.insert(
                    webhook_id,
                    (
                        organization_id,
                        format!("every delivery attempt failed for {days} days"),
                    ),
                );
            }
        }
        for (webhook_id, (organization_id, reason)) in disable_now {
            disable_endpoint(&txn, organization_id, webhook_id, &reason).await?;
        }
        txn.commit().await?;
        Ok(applied)
    }

    /// Announces `event` with each of `data` to the organization's subscribed endpoints, in one transaction
    /// of its own (for events no other change carries, and for load tests). Returns the messages written.
    pub async fn publish(
        &self,
        organization_id: Uuid,
        event: EventType,
        data: Vec<Value>,
    ) -> Result<usize, StoreError> {
        let txn = self.write.begin().await?;
        let endpoints = subscribers(&txn, organization_id, event).await?;
        if endpoints.is_empty() {
            return Ok(0);
        }
        let count = data.len();
        let at = now();
        for data in data {
            insert_message(&txn, organization_id, event, &endpoints, data, at).await?;
        }
        txn.commit().await?;
        Ok(count)
    }

    /// Deliveries not finished yet (waiting, or in flight).
    pub async fn pending(&self) -> Result<u64, StoreError> {
        use sea_orm::PaginatorTrait;
        Ok(webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
            .count(self.read)
            .await?)
    }

    /// When the next delivery becomes due, if any is waiting.
    pub async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        use sea_orm::QueryOrder;
        let next = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::NextAttemptAt.is_not_null())
            .order_by_asc(webhook_delivery::Column::NextAttemptAt)
            .limit(16)
            .all(self.read)
            .await?;
        Ok(next
            .into_iter()
            .filter_map(|d| match (d.next_attempt_at, d.lease_expires_at) {
                (Some(due), Some(until)) if until > due => Some(until),
                (due, _) => due,
            })
            .min())
    }
}

/// Delivery rows finished per statement (8 values each, well under every backend's parameter limit).
const FINISH_CHUNK: usize = 256;

/// Writes each outcome's delivery row (status, next attempt, last answer; lease dropped) only where `owner`
/// still holds the lease the delivery was claimed with, a chunk of rows per statement. Returns the indices
/// (in `outcomes`) of the outcomes written. A delivery reported twice (claimed again after its lease ran
/// out) is written at most once, from the report of its latest lease, as one statement per report would.
async fn finish_deliveries<C: ConnectionTrait>(
    db: &C,
    owner: &str,
    outcomes: &[AttemptOutcome],
) -> Result<HashSet<usize>, StoreError> {
    let backend = db.get_database_backend();
    // PostgreSQL types the VALUES list from its first row: every value is cast. SQLite takes the values as
    // bound, which is how the columns store them (a cast there would change a blob's affinity).
    let casts: [&str; 7] = match backend {
        DbBackend::Postgres => [
            "::uuid",
            "::text",
            "::timestamptz",
            "::integer",
            "::text",
            "::timestamptz",
            "::timestamptz",
        ],
        _ => [""; 7],
    };
    let mut latest: HashMap<Uuid, usize> = HashMap::with_capacity(outcomes.len());
    for (index, outcome) in outcomes.iter().enumerate() {
        let d = &outcome.delivery;
        latest
            .entry(d.id)
            .and_modify(|kept| {
                if outcomes[*kept].delivery.lease_expires_at < d.lease_expires_at {
                    *kept = index;
                }
            })
            .or_insert(index);
    }
    let mut reported: Vec<usize> = latest.values().copied().collect();
    reported.sort_unstable();
    let mut held = HashSet::with_capacity(outcomes.len());
    for chunk in reported.chunks(FINISH_CHUNK) {
        let mut values: Vec<DbValue> = Vec::with_capacity(1 + chunk.len() * 7);
        values.push(owner.into());
        let mut rows = Vec::with_capacity(chunk.len());
        for outcome in chunk.iter().map(|i| &outcomes[*i]) {
            let status = match (outcome.succeeded, outcome.next_attempt_at) {
                (true, _) => DeliveryStatus::Succeeded,
                (false, Some(_)) => DeliveryStatus::Pending,
                (false, None) => DeliveryStatus::Failed,
            };
            let first = values.len() + 1;
            values.extend([
                DbValue::from(outcome.delivery.id),
                DbValue::from(status.as_str()),
                DbValue::from(outcome.next_attempt_at),
                DbValue::from(outcome.status_code.map(i32::from)),
                DbValue::from(outcome.error.clone()),
                DbValue::from(outcome.attempted_at),
                DbValue::from(outcome.delivery.lease_expires_at),
            ]);
            let row: Vec<String> = casts
                .iter()
                .enumerate()
                .map(|(i, cast)| format!("${}{cast}", first + i))
                .collect();
            rows.push(format!("({})", row.join(", ")));
        }
        let sql = format!(
            "WITH outcome(id, status, next_attempt_at, last_status_code, last_error, attempted_at, lease_expires_at) \
             AS (VALUES {}) \
             UPDATE webhook_deliveries SET status = outcome.status, \
               next_attempt_at = outcome.next_attempt_at, lease_owner = NULL, lease_expires_at = NULL, \
               last_status_code = outcome.last_status_code, last_error = outcome.last_error, \
               last_attempt_at = outcome.attempted_at, updated_at = outcome.attempted_at \
             FROM outcome \
             WHERE webhook_deliveries.id = outcome.id AND webhook_deliveries.lease_owner = $1 \
               AND webhook_deliveries.lease_expires_at = outcome.lease_expires_at \
             RETURNING webhook_deliveries.id",
            rows.join(", ")
        );
        for row in db
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
        {
            if let Some(index) = latest.get(&row.try_get::<Uuid>("", "id")?) {
                held.insert(*index);
            }
        }
    }
    Ok(held)
}

/// Which deliveries a claim may take: due at `at`, not leased (or the lease ran out), and not to an endpoint
/// in `full`. As SQL over `$1` (the time) and `$2…` (the endpoints), with every other parameter after them.
struct DueFilter {
    values: Vec<DbValue>,
    /// The placeholders of the endpoints in `full`.
    full: Vec<String>,
}

impl DueFilter {
    fn new(at: DateTime<Utc>, full: &[Uuid]) -> Self {
        let mut values: Vec<DbValue> = vec![at.into()];
        values.extend(full.iter().map(|id| DbValue::from(*id)));
        Self {
            values,
            full: (0..full.len()).map(|i| format!("${}", i + 2)).collect(),
        }
    }

    /// The condition on the columns of `table` (`"d."`, or `""` for the unqualified table).
    fn condition(&self, table: &str) -> String {
        let mut condition = format!(
            "{table}next_attempt_at <= $1 AND ({table}lease_expires_at IS NULL OR {table}lease_expires_at < $1)"
        );
        if !self.full.is_empty() {
            condition.push_str(&format!(
                " AND {table}webhook_id NOT IN ({})",
                self.full.join(", ")
            ));
        }
        condition
    }

    /// The filter's values followed by `more`, and the placeholder of each of `more`.
    fn values_with(&self, more: Vec<DbValue>) -> (Vec<DbValue>, Vec<String>) {
        let first = self.values.len() + 1;
        let placeholders = (first..first + more.len())
            .map(|n| format!("${n}"))
            .collect();
        let mut values = self.values.clone();
        values.extend(more);
        (values, placeholders)
    }
}

/// Up to `limit` organizations with due deliveries, those after `after` first (in id order), then from the
/// start.
///
/// The recursive part walks the organizations that have pending deliveries at all, jumping from one to the
/// next through the partial index on pending deliveries by organization (a skip scan: one probe each);
/// the `EXISTS` looks for one due delivery of each, the first entry of its range in the same index.
async fn due_organizations<C: ConnectionTrait>(
    db: &C,
    backend: DbBackend,
    due: &DueFilter,
    after: Option<Uuid>,
    limit: usize,
) -> Result<Vec<Uuid>, StoreError> {
    let (values, placeholders) = due.values_with(vec![
        DbValue::from(after.unwrap_or_else(Uuid::nil)),
        DbValue::from(i64::try_from(limit).unwrap_or(i64::MAX)),
    ]);
    let sql = format!(
        "WITH RECURSIVE pending(organization_id) AS ( \
           SELECT (SELECT organization_id FROM webhook_deliveries \
                   WHERE next_attempt_at IS NOT NULL ORDER BY organization_id LIMIT 1) \
           UNION ALL \
           SELECT (SELECT d.organization_id FROM webhook_deliveries d \
                   WHERE d.next_attempt_at IS NOT NULL AND d.organization_id > p.organization_id \
                   ORDER BY d.organization_id LIMIT 1) \
           FROM pending p WHERE p.organization_id IS NOT NULL \
         ) \
         SELECT p.organization_id FROM pending p \
         WHERE p.organization_id IS NOT NULL AND EXISTS ( \
           SELECT 1 FROM webhook_deliveries d WHERE d.organization_id = p.organization_id AND {} \
         ) \
         ORDER BY (p.organization_id <= {}), p.organization_id LIMIT {}",
        due.condition("d."),
        placeholders[0],
        placeholders[1],
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    rows.iter()
        .map(|row| Ok(row.try_get::<Uuid>("", "organization_id")?))
        .collect()
}

/// The `scan` oldest due deliveries of each of `organizations`, in one statement (locked, skipping rows
/// other dispatchers hold, on PostgreSQL).
async fn oldest_due_of<C: ConnectionTrait>(
    db: &C,
    backend: DbBackend,
    due: &DueFilter,
    organizations: &[Uuid],
    scan: usize,
) -> Result<Vec<webhook_delivery::Model>, StoreError> {
    let mut more: Vec<DbValue> = vec![DbValue::from(i64::try_from(scan).unwrap_or(i64::MAX))];
    more.extend(organizations.iter().map(|id| DbValue::from(*id)));
    let (values, placeholders) = due.values_with(more);
    let lock = match backend {
        DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
        _ => "",
    };
    let condition = due.condition("");
    let sql = placeholders[1..]
        .iter()
        .enumerate()
        .map(|(turn, organization)| {
            format!(
                "SELECT * FROM (SELECT * FROM webhook_deliveries \
                 WHERE organization_id = {organization} AND {condition} \
                 ORDER BY next_attempt_at LIMIT {}{lock}) AS organization_{turn}",
                placeholders[0]
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    Ok(webhook_delivery::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(backend, sql, values))
        .all(db)
        .await?)
}

/// Picks up to `limit` of `candidates`: the organizations in turn, in the order given, each taking its
/// oldest delivery whose endpoint still has room, until the limit is reached or nothing is left. Returns
/// each pick's delivery and organization id, in the order taken.
fn take_in_turns(
    organizations: &[Uuid],
    candidates: Vec<webhook_delivery::Model>,
    limit: usize,
    room: impl Fn(Uuid) -> usize,
) -> Vec<(Uuid, Uuid)> {
    let mut queues: HashMap<Uuid, VecDeque<webhook_delivery::Model>> = HashMap::new();
    for candidate in candidates {
        queues
            .entry(candidate.organization_id)
            .or_default()
            .push_back(candidate);
    }
    for queue in queues.values_mut() {
        queue
            .make_contiguous()
            .sort_by_key(|d| (d.next_attempt_at, d.id));
    }
    let mut taken: HashMap<Uuid, usize> = HashMap::new();
    let mut chosen = Vec::new();
    loop {
        let before = chosen.len();
        for organization in organizations {
            if chosen.len() >= limit {
                return chosen;
            }
            let Some(queue) = queues.get_mut(organization) else {
                continue;
            };
            while let Some(candidate) = queue.pop_front() {
                let count = taken.entry(candidate.webhook_id).or_default();
                if *count < room(candidate.webhook_id) {
                    *count += 1;
                    chosen.push((candidate.id, candidate.organization_id));
                    break;
                }
            }
        }
        if chosen.len() == before {
            return chosen;
        }
    }
}

/// Disables an endpoint, fails its pending deliveries and tells the organization why.
pub(crate) async fn disable_endpoint<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    webhook_id: Uuid,
    reason: &str,
) -> Result<(), StoreError> {
    let at = now();
    let changed = webhook::Entity::update_many()
        .col_expr(
            webhook::Column::Status,
            Expr::value(WebhookStatus::Disabled.as_str()),
        )
        .col_expr(
            webhook::Column::DisabledReason,
            Expr::value(Some(reason.to_owned())),
        )
        .col_expr(webhook::Column::UpdatedAt, Expr::value(at))
        .filter(webhook::Column::Id.eq(webhook_id))
        .filter(webhook::Column::Status.eq(WebhookStatus::Enabled.as_str()))
        .exec(db)
        .await?;
    if changed.rows_affected != 1 {
        return Ok(());
    }
    fail_pending(db, webhook_id, "the endpoint is disabled").await?;
    organization_event::ActiveModel {
        id: Set(opensend_core::new_id()),
        organization_id: Set(organization_id),
        kind: Set("webhook.disabled".to_owned()),
        message: Set(format!(
            "Webhook endpoint {webhook_id} was disabled: {reason}."
        )),
        data: Set(json!({"webhook_id": webhook_id, "reason": reason}).to_string()),
        created_at: Set(at),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Ends every pending delivery of an endpoint that was disabled. Leases are dropped too: a request in
/// flight to the endpoint finishes, but its outcome is not recorded and nothing is retried.
pub(crate) async fn fail_pending<C: ConnectionTrait>(
    db: &C,
    webhook_id: Uuid,
    why: &str,
) -> Result<(), StoreError> {
    webhook_delivery::Entity::update_many()
        .col_expr(
            webhook_delivery::Column::Status,
            Expr::value(DeliveryStatus::Failed.as_str()),
        )
        .col_expr(
            webhook_delivery::Column::NextAttemptAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            webhook_delivery::Column::LastError,
            Expr::value(Some(why.to_owned())),
        )
        .col_expr(
            webhook_delivery::Column::LeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            webhook_delivery::Column::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(now()))
        .filter(webhook_delivery::Column::WebhookId.eq(webhook_id))
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .exec(db)
        .await?;
    Ok(())
}
