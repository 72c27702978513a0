use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, SqlErr, TransactionTrait,
};
use uuid::Uuid;

use opensend_core::dns_record::{DnsRecordView, RecordCheck};
use opensend_core::webhook::EventType;
use opensend_core::webhook::payload::{DomainEventData, timestamp};
use opensend_core::{DkimKeyState, DomainStatus};

use std::sync::Arc;

use crate::caches::{self, Caches};
use crate::entities::{dkim_key, domain, organization};
use crate::pagination::paginate;
use crate::records::columns::checks_text;
use crate::records::{DkimKeyRecord, DomainRecord, SendingDomains, read_all};
use crate::repos::audit_log::{AuditContext, AuditEvent, maybe_record_in};
use crate::repos::now;
use crate::repos::webhook_outbox;
use crate::{Page, PageRequest, StoreError};

/// The DNS records of a domain with its keys, as `domain.*` webhook events carry them (which records a domain
/// needs depends on configuration the store does not know). Called inside the transaction of the change,
/// only when an endpoint subscribes.
pub type DomainRecordsOf<'a> =
    &'a (dyn Fn(&DomainRecord, &[DkimKeyRecord]) -> Vec<DnsRecordView> + Send + Sync);

/// Announces a domain event in the caller's transaction.
async fn announce<C: sea_orm::ConnectionTrait>(
    db: &C,
    event: EventType,
    domain: &domain::Model,
    records_of: DomainRecordsOf<'_>,
) -> Result<(), StoreError> {
    let subscribers = webhook_outbox::subscribers(db, domain.organization_id, event).await?;
    if subscribers.is_empty() {
        return Ok(());
    }
    let domain = DomainRecord::try_from(domain.clone())?;
    let keys: Vec<DkimKeyRecord> = read_all(
        dkim_key::Entity::find()
            .filter(dkim_key::Column::DomainId.eq(domain.id))
            .filter(dkim_key::Column::State.ne(DkimKeyState::Retired.as_str()))
            .order_by_asc(dkim_key::Column::Id)
            .all(db)
            .await?,
    )?;
    let records = records_of(&domain, &keys);
    let data = DomainEventData {
        id: domain.id,
        name: domain.name,
        status: domain.status,
        created_at: timestamp(domain.created_at),
        region: domain.region,
        records,
    };
    webhook_outbox::insert_message(db, domain.organization_id, event, &subscribers, data, now())
        .await?;
    Ok(())
}

pub struct Domains<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
    caches: &'a Caches,
    /// Who makes the changes, when they are to be recorded in the audit log.
    audit: Option<&'a AuditContext>,
}

/// Most domains of one organization kept in the sending cache; an organization with more is read by name
/// on every send instead.
const MAX_CACHED_DOMAINS: u64 = 500;

/// A new domain; every value is already parsed by the caller.
pub struct NewDomain {
    pub organization_id: Uuid,
    pub name: String,
    pub region: String,
    pub custom_return_path: String,
    pub open_tracking: bool,
    pub click_tracking: bool,
    pub tracking_subdomain: Option<String>,
    pub tls: String,
    pub sending_enabled: bool,
    pub receiving_enabled: bool,
    pub allow_subdomains: bool,
}

/// A key to store: the private key arrives sealed.
pub struct NewDkimKey {
    pub selector: String,
    pub algorithm: String,
    pub public_key: Vec<u8>,
    pub private_key_sealed: Vec<u8>,
}

/// Changes from `PATCH /domains/{id}`; `None` leaves a field as it is.
#[derive(Default)]
pub struct DomainChanges {
    pub open_tracking: Option<bool>,
    pub click_tracking: Option<bool>,
    pub tracking_subdomain: Option<Option<String>>,
    pub tls: Option<String>,
    pub sending_enabled: Option<bool>,
    pub receiving_enabled: Option<bool>,
    pub allow_subdomains: Option<bool>,
}

/// The outcome of one verification, written at once.
pub struct CheckOutcome {
    pub status: DomainStatus,
    pub record_checks: Vec<RecordCheck>,
    pub checked_at: DateTime<Utc>,
    pub next_check_at: Option<DateTime<Utc>>,
    pub check_attempts: i32,
    /// Selectors of `next` keys whose records verified: they become active and the active ones retire.
    pub promote: Vec<String>,
}

impl<'a> Domains<'a> {
    pub(crate) fn new(
        read: &'a DatabaseConnection,
        write: &'a DatabaseConnection,
        caches: &'a Caches,
    ) -> Self {
        Self {
            read,
            write,
            caches,
            audit: None,
        }
    }

    /// The same repository, recording the changes it makes (add, change, delete, DKIM rotation) as made by
    /// `audit`'s actor, in their transactions.
    pub fn by(mut self, audit: &'a AuditContext) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Inserts the domain and its keys in one transaction. [`StoreError::Duplicate`] when the organization
    /// already has a domain of that name.
    pub async fn create(
        &self,
        new: NewDomain,
        keys: Vec<NewDkimKey>,
        records_of: DomainRecordsOf<'_>,
    ) -> Result<(DomainRecord, Vec<DkimKeyRecord>), StoreError> {
        let transaction = self.write.begin().await?;
        if organization::Entity::find_by_id(new.organization_id)
            .one(&transaction)
            .await?
            .is_none()
        {
            return Err(StoreError::MissingReference("organization"));
        }
        let exists = domain::Entity::find()
            .filter(domain::Column::OrganizationId.eq(new.organization_id))
            .filter(domain::Column::Name.eq(new.name.as_str()))
            .one(&transaction)
            .await?
            .is_some();
        if exists {
            return Err(StoreError::Duplicate("domain"));
        }
        let at = now();
        let id = opensend_core::new_id();
        let model = domain::ActiveModel {
            id: Set(id),
            organization_id: Set(new.organization_id),
            name: Set(new.name),
            status: Set(DomainStatus::NotStarted.as_str().to_owned()),
            region: Set(new.region),
            custom_return_path: Set(new.custom_return_path),
            open_tracking: Set(new.open_tracking),
            click_tracking: Set(new.click_tracking),
            tracking_subdomain: Set(new.tracking_subdomain),
            tls: Set(new.tls),
            sending_enabled: Set(new.sending_enabled),
            receiving_enabled: Set(new.receiving_enabled),
            allow_subdomains: Set(new.allow_subdomains),
            record_checks: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
            last_checked_at: Set(None),
            next_check_at: Set(None),
            check_attempts: Set(0),
        };
        let domain = model.insert(&transaction).await.map_err(duplicate)?;
        let mut stored = Vec::with_capacity(keys.len());
        for key in keys {
            stored.push(
                insert_key(
                    &transaction,
                    new.organization_id,
                    id,
                    key,
                    DkimKeyState::Active,
                    at,
                )
                .await?,
            );
        }
        announce(&transaction, EventType::DomainCreated, &domain, records_of).await?;
        maybe_record_in(&transaction, self.audit, || {
            AuditEvent::new(
                domain.organization_id,
                "domain.created",
                ("domain", domain.id),
            )
            .with_detail(serde_json::json!({"name": domain.name}))
        })
        .await?;
        caches::bump(&transaction).await?;
        transaction.commit().await.map_err(duplicate)?;
        self.caches.forget_epoch();
        Ok((domain.try_into()?, read_all(stored)?))
    }

    pub async fn list(
        &self,
        organization_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<DomainRecord>, StoreError> {
        let select =
            domain::Entity::find().filter(domain::Column::OrganizationId.eq(organization_id));
        paginate::<_, domain::Model, _>(self.read, select, domain::Column::Id, page)
            .await?
            .into_records()
    }

    pub async fn get(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<Option<DomainRecord>, StoreError> {
        domain::Entity::find_by_id(id)
            .filter(domain::Column::OrganizationId.eq(organization_id))
            .one(self.read)
            .await?
            .map(DomainRecord::try_from)
            .transpose()
    }

    /// The domain's keys that are not retired, oldest first.
    pub async fn keys(
        &self,
        organization_id: Uuid,
        domain_id: Uuid,
    ) -> Result<Vec<DkimKeyRecord>, StoreError> {
        read_all(
            dkim_key::Entity::find()
                .filter(dkim_key::Column::OrganizationId.eq(organization_id))
                .filter(dkim_key::Column::DomainId.eq(domain_id))
                .filter(dkim_key::Column::State.ne(DkimKeyState::Retired.as_str()))
                .order_by_asc(dkim_key::Column::Id)
                .all(self.read)
                .await?,
        )
    }

    /// The organization's domains named `names` (used to find the domain an address belongs to).
    pub async fn find_by_names(
        &self,
        organization_id: Uuid,
        names: &[&str],
    ) -> Result<Vec<DomainRecord>, StoreError> {
        read_all(
            domain::Entity::find()
                .filter(domain::Column::OrganizationId.eq(organization_id))
                .filter(domain::Column::Name.is_in(names.iter().copied()))
                .all(self.read)
                .await?,
        )
    }

    /// The organization's domains that an address at `names` (a host and its ancestors) could belong to,
    /// with their active DKIM keys: what deciding whether the organization may send as an address, and
    /// signing as it, needs. Served from the process's cache (see [`crate::caches`]): a change made through
    /// this process is seen by its next call, one made elsewhere within the epoch check interval. The
    /// returned domains may include others of the organization; callers pick by name.
    pub async fn sending_domains(
        &self,
        organization_id: Uuid,
        names: &[&str],
    ) -> Result<Arc<SendingDomains>, StoreError> {
        // The epoch is taken before the read, so a change committed after it makes this entry stale.
        let epoch = self.caches.epoch(self.read).await?;
        if let Some(epoch) = epoch
            && let Some(hit) = self.caches.sending_domains(organization_id, epoch)
        {
            return Ok(hit);
        }
        let all = domain::Entity::find()
            .filter(domain::Column::OrganizationId.eq(organization_id))
            .order_by_asc(domain::Column::Id)
            .limit(MAX_CACHED_DOMAINS + 1)
            .all(self.read)
            .await?;
        let complete = (all.len() as u64) <= MAX_CACHED_DOMAINS;
        let domains: Vec<DomainRecord> = if complete {
            read_all(all)?
        } else {
            self.find_by_names(organization_id, names).await?
        };
        let domain_ids: Vec<Uuid> = domains.iter().map(|d| d.id).collect();
        let active_keys = if domain_ids.is_empty() {
            Vec::new()
        } else {
            read_all(
                dkim_key::Entity::find()
                    .filter(dkim_key::Column::OrganizationId.eq(organization_id))
                    .filter(dkim_key::Column::DomainId.is_in(domain_ids))
                    .filter(dkim_key::Column::State.eq(DkimKeyState::Active.as_str()))
                    .order_by_asc(dkim_key::Column::Id)
                    .all(self.read)
                    .await?,
            )?
        };
        let found = Arc::new(SendingDomains {
            domains,
            active_keys,
        });
        if let Some(epoch) = epoch
            && complete
        {
            self.caches
                .put_sending_domains(organization_id, epoch, found.clone());
        }
        Ok(found)
    }

    /// Applies `changes`; `None` when the organization has no such domain.
    pub async fn update(
        &self,
        organization_id: Uuid,
        id: Uuid,
        changes: DomainChanges,
        records_of: DomainRecordsOf<'_>,
    ) -> Result<Option<DomainRecord>, StoreError> {
        let transaction = self.write.begin().await?;
        let Some(existing) = domain::Entity::find_by_id(id)
            .filter(domain::Column::OrganizationId.eq(organization_id))
            .one(&transaction)
            .await?
        else {
            return Ok(None);
        };
        let mut model: domain::ActiveModel = existing.into();
        if let Some(v) = changes.open_tracking {
            model.open_tracking = Set(v);
        }
        if let Some(v) = changes.click_tracking {
            model.click_tracking = Set(v);
        }
        if let Some(v) = changes.tracking_subdomain {
            model.tracking_subdomain = Set(v);
        }
        if let Some(v) = changes.tls {
            model.tls = Set(v);
        }
        if let Some(v) = changes.sending_enabled {
            model.sending_enabled = Set(v);
        }
        if let Some(v) = changes.receiving_enabled {
            model.receiving_enabled = Set(v);
        }
        if let Some(v) = changes.allow_subdomains {
            model.allow_subdomains = Set(v);
        }
        model.updated_at = Set(now());
        let updated = model.update(&transaction).await?;
        announce(&transaction, EventType::DomainUpdated, &updated, records_of).await?;
        maybe_record_in(&transaction, self.audit, || {
            AuditEvent::new(
                updated.organization_id,
                "domain.updated",
                ("domain", updated.id),
            )
            .with_detail(serde_json::json!({"name": updated.name}))
        })
        .await?;
        self.caches.commit_change(transaction, true).await?;
        Ok(Some(updated.try_into()?))
    }

    /// Deletes the domain and its keys; `false` when the organization has no such domain.
    pub async fn delete(
        &self,
        organization_id: Uuid,
        id: Uuid,
        records_of: DomainRecordsOf<'_>,
    ) -> Result<bool, StoreError> {
        let transaction = self.write.begin().await?;
        let Some(existing) = domain::Entity::find_by_id(id)
            .filter(domain::Column::OrganizationId.eq(organization_id))
            .one(&transaction)
            .await?
        else {
            return Ok(false);
        };
        // Announced before the rows go, so the payload can describe what was deleted.
        announce(
            &transaction,
            EventType::DomainDeleted,
            &existing,
            records_of,
        )
        .await?;
        dkim_key::Entity::delete_many()
            .filter(dkim_key::Column::OrganizationId.eq(organization_id))
            .filter(dkim_key::Column::DomainId.eq(id))
            .exec(&transaction)
            .await?;
        let deleted = domain::Entity::delete_many()
            .filter(domain::Column::OrganizationId.eq(organization_id))
            .filter(domain::Column::Id.eq(id))
            .exec(&transaction)
            .await?
            .rows_affected
            == 1;
        maybe_record_in(&transaction, self.audit, || {
            AuditEvent::new(organization_id, "domain.deleted", ("domain", id))
                .with_detail(serde_json::json!({"name": existing.name}))
        })
        .await?;
        self.caches.commit_change(transaction, deleted).await?;
        Ok(deleted)
    }

    /// Adds a rotation's keys in state `next`. [`StoreError::Duplicate`] when a rotation is already waiting.
    pub async fn add_next_keys(
        &self,
        organization_id: Uuid,
        domain_id: Uuid,
        keys: Vec<NewDkimKey>,
    ) -> Result<Vec<DkimKeyRecord>, StoreError> {
        let transaction = self.write.begin().await?;
        let waiting = dkim_key::Entity::find()
            .filter(dkim_key::Column::OrganizationId.eq(organization_id))
            .filter(dkim_key::Column::DomainId.eq(domain_id))
            .filter(dkim_key::Column::State.eq(DkimKeyState::Next.as_str()))
            .one(&transaction)
            .await?;
        if waiting.is_some() {
            return Err(StoreError::Duplicate("DKIM rotation"));
        }
        let at = now();
        let mut stored = Vec::with_capacity(keys.len());
        for key in keys {
            stored.push(
                insert_key(
                    &transaction,
                    organization_id,
                    domain_id,
                    key,
                    DkimKeyState::Next,
                    at,
                )
                .await?,
            );
        }
        domain::Entity::update_many()
            .col_expr(domain::Column::UpdatedAt, Expr::value(at))
            .filter(domain::Column::Id.eq(domain_id))
            .filter(domain::Column::OrganizationId.eq(organization_id))
            .exec(&transaction)
            .await?;
        maybe_record_in(&transaction, self.audit, || {
            AuditEvent::new(
                organization_id,
                "domain.dkim_rotated",
                ("domain", domain_id),
            )
        })
        .await?;
        transaction.commit().await.map_err(duplicate)?;
        read_all(stored)
    }

    /// Records a check and promotes verified `next` keys, in one transaction. A change of status is
    /// announced as `domain.updated`.
    pub async fn record_check(
        &self,
        organization_id: Uuid,
        id: Uuid,
        outcome: CheckOutcome,
        records_of: DomainRecordsOf<'_>,
    ) -> Result<Option<DomainRecord>, StoreError> {
        let transaction = self.write.begin().await?;
        let previous_status = domain::Entity::find_by_id(id)
            .filter(domain::Column::OrganizationId.eq(organization_id))
            .one(&transaction)
            .await?
            .map(|d| d.status);
        let record_checks = checks_text(&outcome.record_checks);
        let result = domain::Entity::update_many()
            .col_expr(domain::Column::Status, Expr::value(outcome.status.as_str()))
            .col_expr(domain::Column::RecordChecks, Expr::value(record_checks))
            .col_expr(
                domain::Column::LastCheckedAt,
                Expr::value(outcome.checked_at),
            )
            .col_expr(
                domain::Column::NextCheckAt,
                Expr::value(outcome.next_check_at),
            )
            .col_expr(
                domain::Column::CheckAttempts,
                Expr::value(outcome.check_attempts),
            )
            .col_expr(domain::Column::UpdatedAt, Expr::value(now()))
            .filter(domain::Column::Id.eq(id))
            .filter(domain::Column::OrganizationId.eq(organization_id))
            .exec(&transaction)
            .await?;
        if result.rows_affected != 1 {
            return Ok(None);
        }
        let promoted = !outcome.promote.is_empty();
        if promoted {
            let at = now();
            dkim_key::Entity::update_many()
                .col_expr(
                    dkim_key::Column::State,
                    Expr::value(DkimKeyState::Retired.as_str()),
                )
                .filter(dkim_key::Column::DomainId.eq(id))
                .filter(dkim_key::Column::State.eq(DkimKeyState::Active.as_str()))
                .exec(&transaction)
                .await?;
            dkim_key::Entity::update_many()
                .col_expr(
                    dkim_key::Column::State,
                    Expr::value(DkimKeyState::Active.as_str()),
                )
                .col_expr(dkim_key::Column::ActivatedAt, Expr::value(at))
                .filter(dkim_key::Column::DomainId.eq(id))
                .filter(dkim_key::Column::State.eq(DkimKeyState::Next.as_str()))
                .filter(dkim_key::Column::Selector.is_in(outcome.promote))
                .exec(&transaction)
                .await?;
        }
        let domain = domain::Entity::find_by_id(id).one(&transaction).await?;
        let status_changed = domain
            .as_ref()
            .is_some_and(|d| previous_status.as_deref() != Some(d.status.as_str()));
        if let Some(domain) = &domain
            && status_changed
        {
            announce(&transaction, EventType::DomainUpdated, domain, records_of).await?;
        }
        self.caches
            .commit_change(transaction, status_changed || promoted)
            .await?;
        domain.map(DomainRecord::try_from).transpose()
    }

    /// Every DKIM key's id and sealed private key (retired ones too), for re-sealing under a new
    /// encryption key.
    pub async fn all_sealed_keys(&self) -> Result<Vec<(Uuid, Vec<u8>)>, StoreError> {
        Ok(dkim_key::Entity::find()
            .select_only()
            .column(dkim_key::Column::Id)
            .column(dkim_key::Column::PrivateKeySealed)
            .order_by_asc(dkim_key::Column::Id)
            .into_tuple()
            .all(self.read)
            .await?)
    }

    /// Replaces a key's sealed private key with a re-sealed copy of the same key.
    pub async fn reseal_key(&self, id: Uuid, sealed: Vec<u8>) -> Result<(), StoreError> {
        dkim_key::Entity::update_many()
            .col_expr(dkim_key::Column::PrivateKeySealed, Expr::value(sealed))
            .filter(dkim_key::Column::Id.eq(id))
            .exec(self.write)
            .await?;
        Ok(())
    }

    /// Claims up to `limit` domains whose next check is due, for `lease`: each row is taken with a conditional
    /// update on the `next_check_at` it was read with, so two processes never check the same domain at once and
    /// a process that dies mid-check only delays it by the lease. Works the same on SQLite and PostgreSQL.
    pub async fn claim_due(
        &self,
        at: DateTime<Utc>,
        limit: u64,
        lease: chrono::TimeDelta,
    ) -> Result<Vec<DomainRecord>, StoreError> {
        let candidates = domain::Entity::find()
            .filter(domain::Column::NextCheckAt.lte(at))
            .order_by_asc(domain::Column::NextCheckAt)
            .limit(limit)
            .all(self.read)
            .await?;
        let mut claimed = Vec::with_capacity(candidates.len());
        for candidate in candidates {
            let Some(seen) = candidate.next_check_at else {
                continue;
            };
            let until = at + lease;
            let result = domain::Entity::update_many()
                .col_expr(domain::Column::NextCheckAt, Expr::value(until))
                .filter(domain::Column::Id.eq(candidate.id))
                .filter(domain::Column::NextCheckAt.eq(seen))
                .exec(self.write)
                .await?;
            if result.rows_affected == 1 {
                claimed.push(domain::Model {
                    next_check_at: Some(until),
                    ..candidate
                });
            }
        }
        read_all(claimed)
    }
}

async fn insert_key<C: sea_orm::ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    domain_id: Uuid,
    key: NewDkimKey,
    state: DkimKeyState,
    at: DateTime<Utc>,
) -> Result<dkim_key::Model, StoreError> {
    let model = dkim_key::ActiveModel {
        id: Set(opensend_core::new_id()),
        organization_id: Set(organization_id),
        domain_id: Set(domain_id),
        selector: Set(key.selector),
        algorithm: Set(key.algorithm),
        public_key: Set(key.public_key),
        private_key_sealed: Set(key.private_key_sealed),
        state: Set(state.as_str().to_owned()),
        created_at: Set(at),
        activated_at: Set((state == DkimKeyState::Active).then_some(at)),
    };
    model.insert(db).await.map_err(duplicate)
}

/// A unique-index violation (two requests adding the same name at once) is a duplicate, not a 500.
fn duplicate(error: sea_orm::DbErr) -> StoreError {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::Duplicate("domain"),
        _ => StoreError::Database(error),
    }
}
