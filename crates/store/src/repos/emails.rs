//! Accepted emails: the accept transaction, reads, rescheduling and cancellation.

use chrono::{DateTime, Utc};
use opensend_core::EmailStatus;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use crate::entities::{delivery_job, email, email_attachment, email_event, email_recipient};
use crate::pagination::{paginate, paginate_in_order};
use crate::records::columns::Row;
use crate::records::{
    EmailEventRecord, EmailRecord, EmailSummary, EmailSummaryRow, RecipientRecord,
    SentAttachmentSummary, read_all,
};
use crate::repos::accept_writer::{AcceptRequest, AcceptWriter};
pub use crate::repos::new_email::{Accepted, IdempotentResponse, NewAttachment, NewEmail};
use crate::repos::now;
use crate::{Page, PageRequest, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeOutcome {
    Done,
    NotFound,
    /// The email is past the point where it can be changed (sent, failed, canceled…).
    TooLate,
    /// A worker is delivering it right now.
    InProgress,
}

/// What the dashboard narrows its email list by.
#[derive(Clone, Debug, Default)]
pub struct EmailFilter {
    pub status: Option<EmailStatus>,
    /// Part of the subject, a recipient or the sender.
    pub text: Option<String>,
}

pub struct Emails<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
    accept_writer: &'a AcceptWriter,
}

impl<'a> Emails<'a> {
    pub(crate) fn new(
        read: &'a DatabaseConnection,
        write: &'a DatabaseConnection,
        accept_writer: &'a AcceptWriter,
    ) -> Self {
        Self {
            read,
            write,
            accept_writer,
        }
    }

    /// Writes the emails, their recipients and attachments, their first event, their delivery jobs and the
    /// idempotent response, all in one transaction: after a crash either all of it exists or none.
    /// Recipients on the organization's suppression list are marked `suppressed`; an email whose every
    /// recipient is suppressed is not queued at all. Concurrent calls share transactions (group commit, see
    /// [`crate::repos::accept_writer`]); each returns once the transaction holding its emails committed.
    pub async fn accept(
        &self,
        emails: Vec<NewEmail>,
        idempotent: Option<IdempotentResponse>,
    ) -> Result<Vec<Accepted>, StoreError> {
        self.accept_writer
            .accept(AcceptRequest { emails, idempotent })
            .await
    }

    pub async fn get(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<Option<EmailRecord>, StoreError> {
        email::Entity::find_by_id(id)
            .filter(email::Column::OrganizationId.eq(organization_id))
            .one(self.read)
            .await?
            .map(EmailRecord::try_from)
            .transpose()
    }

    /// One page of the organization's emails, newest first, read from their summary columns only.
    pub async fn list(
        &self,
        organization_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<EmailSummary>, StoreError> {
        let select =
            email::Entity::find().filter(email::Column::OrganizationId.eq(organization_id));
        paginate::<_, EmailSummaryRow, _>(self.read, select, email::Column::Id, page)
            .await?
            .into_records()
    }

    /// Like [`Emails::list`], narrowed by `filter` (the dashboard's email list).
    pub async fn search(
        &self,
        organization_id: Uuid,
        filter: &EmailFilter,
        page: PageRequest,
    ) -> Result<Page<EmailSummary>, StoreError> {
        let mut select =
            email::Entity::find().filter(email::Column::OrganizationId.eq(organization_id));
        if let Some(status) = filter.status {
            select = select.filter(email::Column::Status.eq(status.as_str()));
        }
        if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
            select = select.filter(
                sea_orm::Condition::any()
                    .add(email::Column::Subject.contains(text))
                    .add(email::Column::ToAddresses.contains(text))
                    .add(email::Column::FromAddress.contains(text)),
            );
        }
        paginate::<_, EmailSummaryRow, _>(self.read, select, email::Column::Id, page)
            .await?
            .into_records()
    }

    /// How many `email.sent`, `email.delivered`, `email.bounced` and `email.complained` events the
    /// organization had per UTC day since `since`: `(day as YYYY-MM-DD, event type, count)`.
    pub async fn daily_event_counts(
        &self,
        organization_id: Uuid,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        use sea_orm::{DbBackend, FromQueryResult, Statement};

        #[derive(FromQueryResult)]
        struct Count {
            day: String,
            event_type: String,
            n: i64,
        }
        let backend = self.read.get_database_backend();
        let day = match backend {
            DbBackend::Postgres => "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
            _ => "substr(created_at, 1, 10)",
        };
        let (org, at) = match backend {
            DbBackend::Postgres => ("$1", "$2"),
            _ => ("?", "?"),
        };
        let sql = format!(
            "SELECT {day} AS day, event_type, COUNT(*) AS n FROM email_events \
             WHERE organization_id = {org} AND created_at >= {at} \
             AND event_type IN ('email.sent', 'email.delivered', 'email.bounced', 'email.complained') \
             GROUP BY 1, 2 ORDER BY 1"
        );
        let rows = Count::find_by_statement(Statement::from_sql_and_values(
            backend,
            sql,
            [organization_id.into(), since.into()],
        ))
        .all(self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.day, r.event_type, r.n))
            .collect())
    }

    /// For the delivery worker: the email whatever its organization (the job names it).
    pub async fn get_for_delivery(&self, id: Uuid) -> Result<Option<EmailRecord>, StoreError> {
        email::Entity::find_by_id(id)
            .one(self.read)
            .await?
            .map(EmailRecord::try_from)
            .transpose()
    }

    pub async fn attachments(
        &self,
        email_id: Uuid,
    ) -> Result<Vec<email_attachment::Model>, StoreError> {
        Ok(email_attachment::Entity::find()
            .filter(email_attachment::Column::EmailId.eq(email_id))
            .order_by_asc(email_attachment::Column::Position)
            .all(self.read)
            .await?)
    }

    /// One page of the organization's email `email_id`'s attachment metadata, in message order (see
    /// [`crate::pagination::paginate_in_order`]).
    pub async fn attachments_page(
        &self,
        organization_id: Uuid,
        email_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<SentAttachmentSummary>, StoreError> {
        use email_attachment::Column as C;
        let select = email_attachment::Entity::find()
            .select_only()
            .columns([
                C::Id,
                C::EmailId,
                C::Position,
                C::Filename,
                C::ContentType,
                C::ContentId,
            ])
            // `length` of a blob (SQLite) or of a bytea (PostgreSQL) is its size in bytes.
            .expr_as(Expr::cust("CAST(length(content) AS BIGINT)"), "size")
            .filter(C::OrganizationId.eq(organization_id))
            .filter(C::EmailId.eq(email_id));
        // Attachment ids are created in message order, so id order is position order.
        paginate_in_order(self.read, select, C::Id, page).await
    }

    /// One attachment of the organization's email `email_id`, with its content.
    pub async fn attachment(
        &self,
        organization_id: Uuid,
        email_id: Uuid,
        id: Uuid,
    ) -> Result<Option<email_attachment::Model>, StoreError> {
        Ok(email_attachment::Entity::find_by_id(id)
            .filter(email_attachment::Column::OrganizationId.eq(organization_id))
            .filter(email_attachment::Column::EmailId.eq(email_id))
            .one(self.read)
            .await?)
    }

    pub async fn recipients(&self, email_id: Uuid) -> Result<Vec<RecipientRecord>, StoreError> {
        read_all(
            email_recipient::Entity::find()
                .filter(email_recipient::Column::EmailId.eq(email_id))
                .order_by_asc(email_recipient::Column::Id)
                .all(self.read)
                .await?,
        )
    }

    pub async fn events(
        &self,
        organization_id: Uuid,
        email_id: Uuid,
    ) -> Result<Vec<EmailEventRecord>, StoreError> {
        read_all(
            email_event::Entity::find()
                .filter(email_event::Column::OrganizationId.eq(organization_id))
                .filter(email_event::Column::EmailId.eq(email_id))
                .order_by_asc(email_event::Column::Id)
                .all(self.read)
                .await?,
        )
    }

    /// Moves a scheduled or queued email to `at`, unless a worker already holds it.
    pub async fn reschedule(
        &self,
        organization_id: Uuid,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<ChangeOutcome, StoreError> {
        let txn = self.write.begin().await?;
        let current = now();
        let outcome = match changeable(&txn, organization_id, id, current).await? {
            Err(outcome) => outcome,
            Ok(job_id) => {
                let moved = delivery_job::Entity::update_many()
                    .col_expr(delivery_job::Column::RunAt, Expr::value(at))
                    .filter(delivery_job::Column::Id.eq(job_id))
                    .filter(not_leased(current))
                    .exec(&txn)
                    .await?;
                if moved.rows_affected != 1 {
                    txn.rollback().await?;
                    return Ok(ChangeOutcome::InProgress);
                }
                email::Entity::update_many()
                    .col_expr(email::Column::ScheduledAt, Expr::value(Some(at)))
                    .col_expr(
                        email::Column::Status,
                        Expr::value(EmailStatus::Scheduled.as_str()),
                    )
                    .col_expr(email::Column::UpdatedAt, Expr::value(current))
                    .filter(email::Column::Id.eq(id))
                    .exec(&txn)
                    .await?;
                insert_event(
                    &txn,
                    organization_id,
                    id,
                    "email.scheduled",
                    json!({"scheduled_at": at}),
                    current,
                )
                .await?;
                ChangeOutcome::Done
            }
        };
        txn.commit().await?;
        Ok(outcome)
    }

    /// Cancels a scheduled or queued email, unless a worker already holds it.
    pub async fn cancel(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<ChangeOutcome, StoreError> {
        let txn = self.write.begin().await?;
        let current = now();
        let outcome = match changeable(&txn, organization_id, id, current).await? {
            Err(outcome) => outcome,
            Ok(job_id) => {
                // Conditional on the lease: a worker may have claimed the job since it was read.
                let removed = delivery_job::Entity::delete_many()
                    .filter(delivery_job::Column::Id.eq(job_id))
                    .filter(not_leased(current))
                    .exec(&txn)
                    .await?;
                if removed.rows_affected != 1 {
                    txn.rollback().await?;
                    return Ok(ChangeOutcome::InProgress);
                }
                email::Entity::update_many()
                    .col_expr(
                        email::Column::Status,
                        Expr::value(EmailStatus::Canceled.as_str()),
                    )
                    .col_expr(email::Column::UpdatedAt, Expr::value(current))
                    .filter(email::Column::Id.eq(id))
                    .exec(&txn)
                    .await?;
                insert_event(
                    &txn,
                    organization_id,
                    id,
                    "email.canceled",
                    json!({}),
                    current,
                )
                .await?;
                ChangeOutcome::Done
            }
        };
        txn.commit().await?;
        Ok(outcome)
    }
}

/// Jobs no worker holds right now.
fn not_leased(at: DateTime<Utc>) -> sea_orm::Condition {
    sea_orm::Condition::any()
        .add(delivery_job::Column::LeaseExpiresAt.is_null())
        .add(delivery_job::Column::LeaseExpiresAt.lte(at))
}

/// The job of an email that may still be changed, or why it may not.
async fn changeable(
    txn: &DatabaseTransaction,
    organization_id: Uuid,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<Result<Uuid, ChangeOutcome>, StoreError> {
    let Some(status) = email::Entity::find_by_id(id)
        .select_only()
        .column(email::Column::Status)
        .filter(email::Column::OrganizationId.eq(organization_id))
        .into_tuple::<String>()
        .one(txn)
        .await?
    else {
        return Ok(Err(ChangeOutcome::NotFound));
    };
    let status: EmailStatus = Row::new("emails", id).value("status", &status)?;
    if !status.is_waiting() {
        return Ok(Err(ChangeOutcome::TooLate));
    }
    let Some(job) = delivery_job::Entity::find()
        .filter(delivery_job::Column::EmailId.eq(id))
        .one(txn)
        .await?
    else {
        return Ok(Err(ChangeOutcome::TooLate));
    };
    if job.lease_expires_at.is_some_and(|until| until > at) {
        return Ok(Err(ChangeOutcome::InProgress));
    }
    Ok(Ok(job.id))
}

/// Records an event in the email's history and, in the same transaction, announces it to the
/// organization's webhook endpoints that subscribe to it.
pub(crate) async fn insert_event<C: sea_orm::ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    email_id: Uuid,
    event_type: &str,
    data: serde_json::Value,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    crate::repos::webhook_outbox::enqueue_email_event(
        db,
        organization_id,
        email_id,
        event_type,
        &data,
        at,
    )
    .await?;
    email_event::ActiveModel {
        id: Set(opensend_core::new_id()),
        organization_id: Set(organization_id),
        email_id: Set(email_id),
        event_type: Set(event_type.to_owned()),
        data: Set(data.to_string()),
        created_at: Set(at),
    }
    .insert(db)
    .await?;
    Ok(())
}
