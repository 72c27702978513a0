//! The delivery queue: workers claim due jobs with a lease and report the outcome.
//!
//! A claim sets `lease_owner` and `lease_expires_at` on up to N due rows in one statement (PostgreSQL:
//! `FOR UPDATE SKIP LOCKED`, so concurrent workers on any number of machines never claim the same row;
//! SQLite: the single writer connection serialises claims). A worker that dies leaves its lease to run out,
//! after which the job is claimable again. Every outcome is recorded only while the reporting worker still
//! owns the lease, so a worker that lost its lease cannot overwrite what its successor did.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use opensend_core::{EmailStatus, RecipientStatus};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, Statement, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use crate::StoreError;
use crate::entities::{delivery_job, email, email_provider_message, email_recipient};
use crate::repos::emails::insert_event;
use crate::repos::now;

pub struct DeliveryQueue<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
}

/// What one recipient's delivery came to.
#[derive(Clone, Debug)]
pub struct RecipientResult {
    pub address: String,
    pub accepted: bool,
    pub response: String,
    /// The provider's id of the message this recipient was sent in, when the transport split the email into
    /// several (Amazon SES: one call per 50 recipients, one id per call).
    pub provider_message_id: Option<String>,
}

/// A delivery that at least one recipient accepted.
#[derive(Clone, Debug)]
pub struct SentRecord {
    pub transport: String,
    /// The provider's id for the message (the first one, when there are several).
    pub provider_message_id: Option<String>,
    /// Kept only by the capture transport, so the message can be read back.
    pub raw_mime: Option<Vec<u8>>,
    pub recipients: Vec<RecipientResult>,
}

impl<'a> DeliveryQueue<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self { read, write }
    }

    /// Leases up to `limit` due jobs to `owner` for `lease`.
    pub async fn claim(
        &self,
        owner: &str,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<delivery_job::Model>, StoreError> {
        let at = now();
        let until = at + TimeDelta::from_std(lease).unwrap_or(TimeDelta::minutes(10));
        let backend = self.write.get_database_backend();
        let lock = match backend {
            DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
            _ => "",
        };
        let sql = format!(
            "UPDATE delivery_jobs SET lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM delivery_jobs \
                          WHERE run_at <= $3 AND (lease_expires_at IS NULL OR lease_expires_at < $3) \
                          ORDER BY run_at LIMIT $4{lock}) \
             RETURNING *"
        );
        let statement = Statement::from_sql_and_values(
            backend,
            sql,
            [
                owner.into(),
                until.into(),
                at.into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
            ],
        );
        Ok(delivery_job::Entity::find()
            .from_raw_sql(statement)
            .all(self.write)
            .await?)
    }

    /// When the next job becomes claimable (due, or its lease runs out), if any job is waiting.
    pub async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next = delivery_job::Entity::find()
            .order_by_asc(delivery_job::Column::RunAt)
            .limit(16)
            .all(self.read)
            .await?;
        Ok(next
            .into_iter()
            .map(|job| match job.lease_expires_at {
                Some(until) if until > job.run_at => until,
                _ => job.run_at,
            })
            .min())
    }

    /// Number of jobs waiting or in flight.
    pub async fn depth(&self) -> Result<u64, StoreError> {
        use sea_orm::PaginatorTrait;
        Ok(delivery_job::Entity::find().count(self.read).await?)
    }

    /// The message went out: the email becomes `sent`, recipients get their replies, every distinct
    /// provider message id (the record's and the recipients') is kept in `email_provider_messages`,
    /// `email.sent` is recorded and the job is removed. `false` when `owner` no longer holds the lease.
    pub async fn record_sent(
        &self,
        job: &delivery_job::Model,
        owner: &str,
        sent: SentRecord,
    ) -> Result<bool, StoreError> {
        let txn = self.write.begin().await?;
        if !release(&txn, job, owner).await? {
            return Ok(false);
        }
        let at = now();
        let provider_ids = provider_message_ids(&sent);
        email::Entity::update_many()
            .col_expr(
                email::Column::Status,
                Expr::value(EmailStatus::Sent.as_str()),
            )
            .col_expr(
                email::Column::Transport,
                Expr::value(Some(sent.transport.clone())),
            )
            .col_expr(
                email::Column::ProviderMessageId,
                Expr::value(provider_ids.first().cloned()),
            )
            .col_expr(email::Column::RawMime, Expr::value(sent.raw_mime))
            .col_expr(
                email::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .col_expr(email::Column::SentAt, Expr::value(Some(at)))
            .col_expr(email::Column::UpdatedAt, Expr::value(at))
            .filter(email::Column::Id.eq(job.email_id))
            .exec(&txn)
            .await?;
        insert_provider_messages(&txn, job, &sent.transport, &provider_ids, at).await?;
        update_recipients(&txn, job.email_id, &sent.recipients, at).await?;
        let rejected: Vec<&str> = sent
            .recipients
            .iter()
            .filter(|r| !r.accepted)
            .map(|r| r.address.as_str())
            .collect();
        insert_event(
            &txn,
            job.organization_id,
            job.email_id,
            "email.sent",
            json!({
                "transport": sent.transport,
                "provider_message_id": provider_ids.first(),
                "rejected_recipients": rejected,
            }),
            at,
        )
        .await?;
        txn.commit().await?;
        Ok(true)
    }

    /// A temporary failure: the job waits until `retry_at`, the email stays queued with the error noted, and
    /// `email.delivery_delayed` is recorded.
    pub async fn record_retry(
        &self,
        job: &delivery_job::Model,
        owner: &str,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let txn = self.write.begin().await?;
        let updated = delivery_job::Entity::update_many()
            .col_expr(delivery_job::Column::RunAt, Expr::value(retry_at))
            .col_expr(
                delivery_job::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                delivery_job::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                delivery_job::Column::LastError,
                Expr::value(Some(error.to_owned())),
            )
            .filter(delivery_job::Column::Id.eq(job.id))
            .filter(delivery_job::Column::LeaseOwner.eq(owner))
            .filter(delivery_job::Column::LeaseExpiresAt.eq(job.lease_expires_at))
            .exec(&txn)
            .await?;
        if updated.rows_affected != 1 {
            return Ok(false);
        }
        email::Entity::update_many()
            .col_expr(
                email::Column::LastError,
                Expr::value(Some(error.to_owned())),
            )
            .col_expr(email::Column::UpdatedAt, Expr::value(now()))
            .filter(email::Column::Id.eq(job.email_id))
            .exec(&txn)
            .await?;
        insert_event(
            &txn,
            job.organization_id,
            job.email_id,
            "email.delivery_delayed",
            json!({"delivery_delayed": {"reason": error, "next_attempt_at": retry_at}}),
            now(),
        )
        .await?;
        txn.commit().await?;
        Ok(true)
    }

    /// A permanent failure (or retries exhausted): the email becomes `failed` and `email.failed` is
    /// recorded.
    pub async fn record_failure(
        &self,
        job: &delivery_job::Model,
        owner: &str,
        error: &str,
        recipients: &[RecipientResult],
    ) -> Result<bool, StoreError> {
        let txn = self.write.begin().await?;
        if !release(&txn, job, owner).await? {
            return Ok(false);
        }
        let at = now();
        email::Entity::update_many()
            .col_expr(
                email::Column::Status,
                Expr::value(EmailStatus::Failed.as_str()),
            )
            .col_expr(
                email::Column::LastError,
                Expr::value(Some(error.to_owned())),
            )
            .col_expr(email::Column::UpdatedAt, Expr::value(at))
            .filter(email::Column::Id.eq(job.email_id))
            .exec(&txn)
            .await?;
        update_recipients(&txn, job.email_id, recipients, at).await?;
        insert_event(
            &txn,
            job.organization_id,
            job.email_id,
            "email.failed",
            json!({"error": error}),
            at,
        )
        .await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Drops a job whose email no longer needs delivering (removed, canceled or already sent).
    pub async fn discard(
        &self,
        job: &delivery_job::Model,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let txn = self.write.begin().await?;
        let released = release(&txn, job, owner).await?;
        txn.commit().await?;
        Ok(released)
    }

    /// The job of an email, if it has one (tests and diagnostics).
    pub async fn job_for(&self, email_id: Uuid) -> Result<Option<delivery_job::Model>, StoreError> {
        Ok(delivery_job::Entity::find()
            .filter(delivery_job::Column::EmailId.eq(email_id))
            .one(self.read)
            .await?)
    }
}

/// The provider's ids for a sent email, each once: the record's own first, then the recipients' in order.
fn provider_message_ids(sent: &SentRecord) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let given = sent.provider_message_id.iter().chain(
        sent.recipients
            .iter()
            .filter_map(|r| r.provider_message_id.as_ref()),
    );
    for id in given {
        if !id.is_empty() && !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids
}

/// One `email_provider_messages` row per id. An id already recorded (the same email recorded again after
/// its lease was retaken) is left as it is.
async fn insert_provider_messages(
    txn: &DatabaseTransaction,
    job: &delivery_job::Model,
    transport: &str,
    ids: &[String],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let rows = ids.iter().map(|id| email_provider_message::ActiveModel {
        id: Set(opensend_core::new_id()),
        organization_id: Set(job.organization_id),
        email_id: Set(job.email_id),
        transport: Set(transport.to_owned()),
        provider_message_id: Set(id.clone()),
        created_at: Set(at),
    });
    email_provider_message::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([
                email_provider_message::Column::Transport,
                email_provider_message::Column::ProviderMessageId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// Removes the job if `owner` still holds it.
async fn release(
    txn: &DatabaseTransaction,
    job: &delivery_job::Model,
    owner: &str,
) -> Result<bool, StoreError> {
    // The owner and the lease's expiry together identify this claim: a worker that re-claimed its own
    // expired job holds a new expiry, so the older attempt cannot complete it.
    let deleted = delivery_job::Entity::delete_many()
        .filter(delivery_job::Column::Id.eq(job.id))
        .filter(delivery_job::Column::LeaseOwner.eq(owner))
        .filter(delivery_job::Column::LeaseExpiresAt.eq(job.lease_expires_at))
        .exec(txn)
        .await?;
    Ok(deleted.rows_affected == 1)
}

async fn update_recipients(
    txn: &DatabaseTransaction,
    email_id: Uuid,
    results: &[RecipientResult],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    for result in results {
        email_recipient::Entity::update_many()
            .col_expr(
                email_recipient::Column::Status,
                Expr::value(
                    if result.accepted {
                        RecipientStatus::Accepted
                    } else {
                        RecipientStatus::Rejected
                    }
                    .as_str(),
                ),
            )
            .col_expr(
                email_recipient::Column::Response,
                Expr::value(Some(result.response.clone())),
            )
            .col_expr(email_recipient::Column::UpdatedAt, Expr::value(at))
            .filter(email_recipient::Column::EmailId.eq(email_id))
            .filter(email_recipient::Column::Address.eq(result.address.as_str()))
            .filter(email_recipient::Column::Status.ne(RecipientStatus::Suppressed.as_str()))
            .exec(txn)
            .await?;
    }
    Ok(())
}
