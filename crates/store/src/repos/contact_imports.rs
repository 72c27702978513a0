//! Contact imports: the uploaded CSV kept in chunks, a queue workers claim imports from under a lease, and
//! the batches that write contacts.
//!
//! Each batch is one transaction: its contacts (created, updated or skipped), their `contact.*` webhook
//! events, its bad rows, the counts and `rows_done` move together, and only while the worker still holds
//! the lease. A worker that dies leaves the import to the next one once the lease runs out, which goes on
//! after the last committed batch.

use chrono::{DateTime, TimeDelta, Utc};
use opensend_core::webhook::EventType;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::entities::{contact_import, contact_import_chunk, contact_import_error};
use crate::pagination::paginate;
use crate::records::Subscription;
use crate::repos::contacts::{self, ContactChanges, ContactKey, NewContact};
use crate::repos::{now, webhook_outbox};
use crate::{Page, PageRequest, StoreError};

/// An import's state.
pub const UPLOADING: &str = "uploading";
pub const QUEUED: &str = "queued";
pub const IN_PROGRESS: &str = "in_progress";
pub const COMPLETED: &str = "completed";
pub const FAILED: &str = "failed";

/// A claimed import.
#[derive(Clone, Debug)]
pub struct ClaimedImport {
    pub id: Uuid,
    pub organization_id: Uuid,
    /// As queued (JSON).
    pub options: String,
    pub rows_done: i64,
}

/// One good row: the contact to create, or the changes for an existing one (`on_conflict: upsert`).
#[derive(Clone, Debug)]
pub struct ImportRow {
    pub contact: NewContact,
    pub changes: ContactChanges,
}

/// What every row of an import gets.
#[derive(Clone, Debug, Default)]
pub struct ImportRules {
    /// Update existing contacts (else skip them).
    pub upsert: bool,
    pub segments: Vec<Uuid>,
    pub topics: Vec<(Uuid, Subscription)>,
}

/// One batch: its good rows, its bad rows (line, why) and the count of data rows read so far.
#[derive(Clone, Debug, Default)]
pub struct ImportBatch {
    pub rows: Vec<ImportRow>,
    pub errors: Vec<(i64, String)>,
    pub rows_done: i64,
}

pub struct ContactImports<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
}

impl<'a> ContactImports<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self { read, write }
    }

    /// A new import, `uploading` (no worker takes it yet).
    pub async fn begin(&self, organization_id: Uuid) -> Result<Uuid, StoreError> {
        let id = opensend_core::new_id();
        contact_import::ActiveModel {
            id: Set(id),
            organization_id: Set(organization_id),
            status: Set(UPLOADING.to_owned()),
            options: Set("{}".to_owned()),
            rows_done: Set(0),
            created: Set(0),
            updated: Set(0),
            skipped: Set(0),
            failed: Set(0),
            error: Set(None),
            next_attempt_at: Set(None),
            lease_owner: Set(None),
            lease_expires_at: Set(None),
            created_at: Set(now()),
            completed_at: Set(None),
        }
        .insert(self.write)
        .await?;
        Ok(id)
    }

    pub async fn add_chunk(
        &self,
        import_id: Uuid,
        seq: i32,
        data: Vec<u8>,
    ) -> Result<(), StoreError> {
        contact_import_chunk::Entity::insert(contact_import_chunk::ActiveModel {
            import_id: Set(import_id),
            seq: Set(seq),
            data: Set(data),
        })
        .exec_without_returning(self.write)
        .await?;
        Ok(())
    }

    /// Queues an uploaded import with its options (checked by the caller).
    pub async fn queue(
        &self,
        organization_id: Uuid,
        id: Uuid,
        options: &str,
    ) -> Result<(), StoreError> {
        contact_import::Entity::update_many()
            .col_expr(contact_import::Column::Status, Expr::value(QUEUED))
            .col_expr(
                contact_import::Column::Options,
                Expr::value(options.to_owned()),
            )
            .col_expr(contact_import::Column::NextAttemptAt, Expr::value(now()))
            .filter(contact_import::Column::Id.eq(id))
            .filter(contact_import::Column::OrganizationId.eq(organization_id))
            .exec(self.write)
            .await?;
        Ok(())
    }

    /// Forgets an upload that was refused (its chunks go with it).
    pub async fn discard(&self, organization_id: Uuid, id: Uuid) -> Result<(), StoreError> {
        contact_import::Entity::delete_many()
            .filter(contact_import::Column::Id.eq(id))
            .filter(contact_import::Column::OrganizationId.eq(organization_id))
            .exec(self.write)
            .await?;
        Ok(())
    }

    /// Deletes uploads begun before `before` that never reached the queue, with their chunks: a request
    /// cut off mid-upload (client gone, process killed) cannot run its own [`Self::discard`]. The cleanup
    /// job calls this with a cutoff well past the longest an upload can take.
    pub async fn discard_abandoned_uploads(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let deleted = contact_import::Entity::delete_many()
            .filter(contact_import::Column::Status.eq(UPLOADING))
            .filter(contact_import::Column::CreatedAt.lt(before))
            .exec(self.write)
            .await?;
        Ok(deleted.rows_affected)
    }

    /// Leases up to `limit` due imports to `owner`.
    pub async fn claim(
        &self,
        owner: &str,
        limit: u64,
        lease: TimeDelta,
    ) -> Result<Vec<ClaimedImport>, StoreError> {
        let at = now();
        let due = || {
            Condition::all()
                .add(contact_import::Column::NextAttemptAt.lte(at))
                .add(contact_import::Column::Status.is_in([QUEUED, IN_PROGRESS]))
                .add(
                    Condition::any()
                        .add(contact_import::Column::LeaseExpiresAt.is_null())
                        .add(contact_import::Column::LeaseExpiresAt.lt(at)),
                )
        };
        let candidates = contact_import::Entity::find()
            .filter(due())
            .order_by_asc(contact_import::Column::NextAttemptAt)
            .limit(limit)
            .all(self.read)
            .await?;
        let mut claimed = Vec::new();
        for row in candidates {
            let taken = contact_import::Entity::update_many()
                .col_expr(contact_import::Column::Status, Expr::value(IN_PROGRESS))
                .col_expr(
                    contact_import::Column::LeaseOwner,
                    Expr::value(owner.to_owned()),
                )
                .col_expr(
                    contact_import::Column::LeaseExpiresAt,
                    Expr::value(at + lease),
                )
                .filter(contact_import::Column::Id.eq(row.id))
                .filter(due())
                .exec(self.write)
                .await?
                .rows_affected
                == 1;
            if taken {
                claimed.push(ClaimedImport {
                    id: row.id,
                    organization_id: row.organization_id,
                    options: row.options,
                    rows_done: row.rows_done,
                });
            }
        }
        Ok(claimed)
    }

    /// When the next queued import falls due.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(contact_import::Entity::find()
            .select_only()
            .column(contact_import::Column::NextAttemptAt)
            .filter(contact_import::Column::NextAttemptAt.is_not_null())
            .order_by_asc(contact_import::Column::NextAttemptAt)
            .into_tuple::<Option<DateTime<Utc>>>()
            .one(self.read)
            .await?
            .flatten())
    }

    /// The piece `seq` of the import's file, if there is one.
    pub async fn chunk(&self, import_id: Uuid, seq: i32) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(contact_import_chunk::Entity::find_by_id((import_id, seq))
            .one(self.read)
            .await?
            .map(|c| c.data))
    }

    /// Writes one batch while `owner` holds the lease (extending it by `lease`); `false` when another
    /// worker holds it now (nothing is written).
    pub async fn apply_batch(
        &self,
        import: &ClaimedImport,
        owner: &str,
        lease: TimeDelta,
        rules: &ImportRules,
        batch: &ImportBatch,
    ) -> Result<bool, StoreError> {
        let txn = self.write.begin().await?;
        let at = now();
        let held = contact_import::Entity::update_many()
            .col_expr(
                contact_import::Column::LeaseExpiresAt,
                Expr::value(at + lease),
            )
            .filter(contact_import::Column::Id.eq(import.id))
            .filter(contact_import::Column::LeaseOwner.eq(owner))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if !held {
            return Ok(false);
        }
        let org = import.organization_id;
        let on_created = webhook_outbox::subscribers(&txn, org, EventType::ContactCreated).await?;
        let on_updated = webhook_outbox::subscribers(&txn, org, EventType::ContactUpdated).await?;
        let (mut created, mut updated, mut skipped) = (0i64, 0i64, 0i64);
        for row in &batch.rows {
            let mut new = row.contact.clone();
            new.segments.extend(rules.segments.iter().copied());
            new.topics.extend(rules.topics.iter().copied());
            if let Some(id) = contacts::insert(&txn, org, &new, at).await? {
                contacts::announce_to(&txn, org, EventType::ContactCreated, id, &on_created)
                    .await?;
                created += 1;
                continue;
            }
            if !rules.upsert {
                skipped += 1;
                continue;
            }
            let key = ContactKey::Email(new.email.clone());
            let Some(id) = contacts::find_id(&txn, org, &key).await? else {
                skipped += 1;
                continue;
            };
            contacts::apply_changes(&txn, org, id, &row.changes, at).await?;
            contacts::join_segments(&txn, org, id, &rules.segments, at).await?;
            contacts::set_topics(&txn, org, id, &rules.topics, at).await?;
            contacts::announce_to(&txn, org, EventType::ContactUpdated, id, &on_updated).await?;
            updated += 1;
        }
        for chunk in batch.errors.chunks(500) {
            contact_import_error::Entity::insert_many(chunk.iter().map(|(line, message)| {
                contact_import_error::ActiveModel {
                    import_id: Set(import.id),
                    line: Set(*line),
                    message: Set(message.clone()),
                }
            }))
            .on_conflict(
                OnConflict::columns([
                    contact_import_error::Column::ImportId,
                    contact_import_error::Column::Line,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        }
        let add = |column: contact_import::Column, n: i64| Expr::col(column).add(n);
        contact_import::Entity::update_many()
            .col_expr(
                contact_import::Column::Created,
                add(contact_import::Column::Created, created),
            )
            .col_expr(
                contact_import::Column::Updated,
                add(contact_import::Column::Updated, updated),
            )
            .col_expr(
                contact_import::Column::Skipped,
                add(contact_import::Column::Skipped, skipped),
            )
            .col_expr(
                contact_import::Column::Failed,
                add(contact_import::Column::Failed, batch.errors.len() as i64),
            )
            .col_expr(
                contact_import::Column::RowsDone,
                Expr::value(batch.rows_done),
            )
            .filter(contact_import::Column::Id.eq(import.id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Ends the import (`completed`, or `failed` with why) while `owner` holds it, and drops its file.
    pub async fn finish(
        &self,
        import_id: Uuid,
        owner: &str,
        failure: Option<&str>,
    ) -> Result<(), StoreError> {
        let txn = self.write.begin().await?;
        let done = contact_import::Entity::update_many()
            .col_expr(
                contact_import::Column::Status,
                Expr::value(if failure.is_some() { FAILED } else { COMPLETED }),
            )
            .col_expr(
                contact_import::Column::Error,
                Expr::value(failure.map(str::to_owned)),
            )
            .col_expr(contact_import::Column::CompletedAt, Expr::value(now()))
            .col_expr(
                contact_import::Column::NextAttemptAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                contact_import::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                contact_import::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(contact_import::Column::Id.eq(import_id))
            .filter(contact_import::Column::LeaseOwner.eq(owner))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if done {
            contact_import_chunk::Entity::delete_many()
                .filter(contact_import_chunk::Column::ImportId.eq(import_id))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    pub async fn get(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<Option<contact_import::Model>, StoreError> {
        Ok(contact_import::Entity::find_by_id(id)
            .filter(contact_import::Column::OrganizationId.eq(organization_id))
            .filter(contact_import::Column::Status.ne(UPLOADING))
            .one(self.read)
            .await?)
    }

    /// Every bad row of the import, by line.
    pub async fn errors(&self, import_id: Uuid) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(contact_import_error::Entity::find()
            .filter(contact_import_error::Column::ImportId.eq(import_id))
            .order_by_asc(contact_import_error::Column::Line)
            .all(self.read)
            .await?
            .into_iter()
            .map(|e| (e.line, e.message))
            .collect())
    }

    pub async fn list(
        &self,
        organization_id: Uuid,
        status: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<contact_import::Model>, StoreError> {
        let mut select = contact_import::Entity::find()
            .filter(contact_import::Column::OrganizationId.eq(organization_id))
            .filter(contact_import::Column::Status.ne(UPLOADING));
        if let Some(status) = status {
            select = select.filter(contact_import::Column::Status.eq(status));
        }
        paginate(self.read, select, contact_import::Column::Id, page).await
    }
}
