//! The organization's suppression list: addresses that are never sent to.
//!
//! Matching ignores case on the whole address: `Alice@Example.COM` on the list suppresses
//! `alice@example.com` and the other way round. Each row keeps the address as it was first given
//! ([`EmailAddress`]'s normal form: domain lower-cased, local part as written) and, in `address_key`, the
//! whole address lower-cased ([`address_key`]); every lookup, here and wherever sending or a provider event
//! consults the list, goes through the key and its unique index. Local parts are case-sensitive in
//! principle, but no mailbox provider in use treats them so, and suppressing one address too many is the
//! safe side of the mistake. The methods take `&EmailAddress` rather than text.
//!
//! An address is listed at most once per organization. Adding one that is already listed, in whatever case,
//! keeps the existing row as it is (its address, reason, source and creation time: the first cause is the
//! one worth knowing) and reports `created: false`.
//!
//! Inserts use `ON CONFLICT DO NOTHING` instead of catching a unique violation, so [`add_in`] can run inside
//! a caller's PostgreSQL transaction (say, the one recording a bounce) without aborting it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use opensend_core::EmailAddress;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::entities::suppression;
use crate::pagination::paginate;
use crate::repos::now;
use crate::{Page, PageRequest, StoreError};

/// Rows per `INSERT` and values per `IN (…)` list, well below SQLite's and PostgreSQL's parameter limits.
const CHUNK: usize = 500;

/// The key an address is listed under: the whole address lower-cased. Addresses are ASCII (`EmailAddress`
/// accepts nothing else), so this is SQL's `lower()` too, which the migration that introduced the key used.
pub fn address_key(address: &str) -> String {
    address.to_ascii_lowercase()
}

/// Why an address is on the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The address bounced permanently.
    Bounce,
    /// The recipient marked a message as spam.
    Complaint,
    /// Added by the organization (API, dashboard, import).
    Manual,
    /// The recipient unsubscribed.
    Unsubscribe,
}

impl Reason {
    pub const ALL: [Reason; 4] = [
        Reason::Bounce,
        Reason::Complaint,
        Reason::Manual,
        Reason::Unsubscribe,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Bounce => "bounce",
            Reason::Complaint => "complaint",
            Reason::Manual => "manual",
            Reason::Unsubscribe => "unsubscribe",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown suppression reason `{0}` (expected bounce, complaint, manual or unsubscribe)")]
pub struct UnknownReason(pub String);

impl FromStr for Reason {
    type Err = UnknownReason;

    /// Exact, lower-case names only.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownReason(s.chars().take(40).collect()))
    }
}

/// One address to put on the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSuppression {
    pub address: EmailAddress,
    pub reason: Reason,
    /// The email whose bounce or complaint caused it, if any.
    pub source_id: Option<Uuid>,
}

impl NewSuppression {
    pub fn new(address: EmailAddress, reason: Reason) -> Self {
        Self {
            address,
            reason,
            source_id: None,
        }
    }
}

/// The row an address is listed under, and whether this call put it there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Added {
    pub suppression: suppression::Model,
    /// `false` when the address was already listed (the row is the existing one, unchanged).
    pub created: bool,
}

/// What an import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportOutcome {
    /// Addresses listed by this import.
    pub added: u64,
    /// Distinct addresses that were already listed (left as they were).
    pub existing: u64,
}

/// Adds one address through `db`, which may be a connection or a transaction of the caller's: the insert
/// never raises a unique violation, so it does not abort a surrounding PostgreSQL transaction.
pub async fn add_in<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    address: &EmailAddress,
    reason: Reason,
    source_id: Option<Uuid>,
) -> Result<Added, StoreError> {
    let new = NewSuppression {
        address: address.clone(),
        reason,
        source_id,
    };
    // A concurrent removal between the insert and the read can leave nothing to read; trying again then
    // inserts it. Twice more is plenty: each retry needs another removal racing it.
    for _ in 0..3 {
        let id = opensend_core::new_id();
        suppression::Entity::insert(active_model(organization_id, id, &new, now()))
            .on_conflict(on_address_conflict())
            .exec_without_returning(db)
            .await?;
        if let Some(row) = find_by_address(db, organization_id, address.as_str()).await? {
            return Ok(Added {
                created: row.id == id,
                suppression: row,
            });
        }
    }
    Err(StoreError::Database(sea_orm::DbErr::RecordNotFound(
        "suppression removed while being added".to_owned(),
    )))
}

pub struct Suppressions<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
}

impl<'a> Suppressions<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self { read, write }
    }

    /// Adds `address`, or finds it already listed (then unchanged, `created: false`).
    pub async fn add(
        &self,
        organization_id: Uuid,
        address: &EmailAddress,
        reason: Reason,
        source_id: Option<Uuid>,
    ) -> Result<Added, StoreError> {
        add_in(self.write, organization_id, address, reason, source_id).await
    }

    /// Adds every entry in one transaction. Returns one [`Added`] per entry, in order; an address given twice
    /// (in any case) is listed once, as the first entry gives it (the repeat reports `created: false`).
    pub async fn add_many(
        &self,
        organization_id: Uuid,
        entries: &[NewSuppression],
    ) -> Result<Vec<Added>, StoreError> {
        let txn = self.write.begin().await?;
        let generated = insert_distinct(&txn, organization_id, entries).await?.ids;
        let keys: Vec<String> = generated.keys().cloned().collect();
        let mut rows: HashMap<String, suppression::Model> = HashMap::new();
        for chunk in keys.chunks(CHUNK) {
            for row in suppression::Entity::find()
                .filter(suppression::Column::OrganizationId.eq(organization_id))
                .filter(suppression::Column::AddressKey.is_in(chunk.iter().cloned()))
                .all(&txn)
                .await?
            {
                rows.insert(row.address_key.clone(), row);
            }
        }
        txn.commit().await?;

        let mut seen = HashSet::new();
        entries
            .iter()
            .map(|entry| {
                let key = address_key(entry.address.as_str());
                let row = rows.get(&key).cloned().ok_or_else(|| {
                    StoreError::Database(sea_orm::DbErr::RecordNotFound(
                        "suppression removed while being added".to_owned(),
                    ))
                })?;
                let created = Some(&row.id) == generated.get(&key);
                let first = seen.insert(key);
                Ok(Added {
                    created: first && created,
                    suppression: row,
                })
            })
            .collect()
    }

    /// Adds every entry in one transaction (all or nothing) and counts what happened, without reading the
    /// rows back. An address given twice (in any case) counts once.
    pub async fn import(
        &self,
        organization_id: Uuid,
        entries: &[NewSuppression],
    ) -> Result<ImportOutcome, StoreError> {
        let txn = self.write.begin().await?;
        let inserted = insert_distinct(&txn, organization_id, entries).await?;
        txn.commit().await?;
        let distinct = inserted.ids.len() as u64;
        Ok(ImportOutcome {
            added: inserted.rows,
            existing: distinct.saturating_sub(inserted.rows),
        })
    }

    /// Whether `address` is listed, in any case.
    pub async fn contains(&self, organization_id: Uuid, address: &str) -> Result<bool, StoreError> {
        Ok(find_by_address(self.read, organization_id, address)
            .await?
            .is_some())
    }

    pub async fn get(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<Option<suppression::Model>, StoreError> {
        Ok(suppression::Entity::find_by_id(id)
            .filter(suppression::Column::OrganizationId.eq(organization_id))
            .one(self.read)
            .await?)
    }

    pub async fn get_by_address(
        &self,
        organization_id: Uuid,
        address: &EmailAddress,
    ) -> Result<Option<suppression::Model>, StoreError> {
        find_by_address(self.read, organization_id, address.as_str()).await
    }

    /// One page, newest first. `reasons`: `None` for every reason; `Some(list)` for those in `list` only (an
    /// empty list matches nothing).
    pub async fn list(
        &self,
        organization_id: Uuid,
        reasons: Option<&[Reason]>,
        page: PageRequest,
    ) -> Result<Page<suppression::Model>, StoreError> {
        let mut select = suppression::Entity::find()
            .filter(suppression::Column::OrganizationId.eq(organization_id));
        if let Some(reasons) = reasons {
            if reasons.is_empty() {
                return Ok(Page {
                    items: Vec::new(),
                    has_more: false,
                });
            }
            select = select
                .filter(suppression::Column::Reason.is_in(reasons.iter().map(|r| r.as_str())));
        }
        paginate(self.read, select, suppression::Column::Id, page).await
    }

    /// For exports: up to `limit` rows oldest first, starting after the row `after` (from the start when
    /// `None`). Call again with the last id until fewer than `limit` come back.
    pub async fn export_chunk(
        &self,
        organization_id: Uuid,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<suppression::Model>, StoreError> {
        let mut select = suppression::Entity::find()
            .filter(suppression::Column::OrganizationId.eq(organization_id));
        if let Some(after) = after {
            select = select.filter(suppression::Column::Id.gt(after));
        }
        Ok(select
            .order_by_asc(suppression::Column::Id)
            .limit(limit)
            .all(self.read)
            .await?)
    }

    /// Removes the suppression `id`; `false` when the organization has none by that id.
    pub async fn remove(&self, organization_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let result = suppression::Entity::delete_many()
            .filter(suppression::Column::Id.eq(id))
            .filter(suppression::Column::OrganizationId.eq(organization_id))
            .exec(self.write)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Removes `address` (in any case) from the list; the removed row, or `None` when it was not listed.
    pub async fn remove_by_address(
        &self,
        organization_id: Uuid,
        address: &EmailAddress,
    ) -> Result<Option<suppression::Model>, StoreError> {
        let Some(row) = find_by_address(self.write, organization_id, address.as_str()).await?
        else {
            return Ok(None);
        };
        Ok(self.remove(organization_id, row.id).await?.then_some(row))
    }

    /// Removes the suppressions with these ids, in one transaction. Returns the removed rows in the order
    /// their ids were given; ids the organization has no suppression for are skipped.
    pub async fn remove_many_by_id(
        &self,
        organization_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<suppression::Model>, StoreError> {
        let txn = self.write.begin().await?;
        let mut found = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            found.extend(
                suppression::Entity::find()
                    .filter(suppression::Column::OrganizationId.eq(organization_id))
                    .filter(suppression::Column::Id.is_in(chunk.iter().copied()))
                    .all(&txn)
                    .await?,
            );
        }
        delete_rows(&txn, organization_id, &found).await?;
        txn.commit().await?;
        Ok(in_given_order(found, ids.iter().copied(), |row| row.id))
    }

    /// Removes these addresses (in any case) from the list, in one transaction. Returns the removed rows in
    /// the order the addresses were given; addresses that were not listed are skipped.
    pub async fn remove_many_by_address(
        &self,
        organization_id: Uuid,
        addresses: &[EmailAddress],
    ) -> Result<Vec<suppression::Model>, StoreError> {
        let txn = self.write.begin().await?;
        let mut found = Vec::new();
        for chunk in addresses.chunks(CHUNK) {
            found.extend(
                suppression::Entity::find()
                    .filter(suppression::Column::OrganizationId.eq(organization_id))
                    .filter(
                        suppression::Column::AddressKey
                            .is_in(chunk.iter().map(|a| address_key(a.as_str()))),
                    )
                    .all(&txn)
                    .await?,
            );
        }
        delete_rows(&txn, organization_id, &found).await?;
        txn.commit().await?;
        Ok(in_given_order(
            found,
            addresses.iter().map(|a| address_key(a.as_str())),
            |row| row.address_key.clone(),
        ))
    }
}

/// The row `address` is listed under, in any case.
async fn find_by_address<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    address: &str,
) -> Result<Option<suppression::Model>, StoreError> {
    Ok(suppression::Entity::find()
        .filter(suppression::Column::OrganizationId.eq(organization_id))
        .filter(suppression::Column::AddressKey.eq(address_key(address)))
        .one(db)
        .await?)
}

fn active_model(
    organization_id: Uuid,
    id: Uuid,
    new: &NewSuppression,
    at: DateTime<Utc>,
) -> suppression::ActiveModel {
    suppression::ActiveModel {
        id: Set(id),
        organization_id: Set(organization_id),
        address: Set(new.address.as_str().to_owned()),
        address_key: Set(address_key(new.address.as_str())),
        reason: Set(new.reason.as_str().to_owned()),
        created_at: Set(at),
        source_id: Set(new.source_id),
    }
}

/// `ON CONFLICT (organization_id, address_key) DO NOTHING`.
fn on_address_conflict() -> OnConflict {
    OnConflict::columns([
        suppression::Column::OrganizationId,
        suppression::Column::AddressKey,
    ])
    .do_nothing()
    .to_owned()
}

struct Inserted {
    /// The id generated for each distinct address key (the row's id only where the insert took).
    ids: HashMap<String, Uuid>,
    /// Rows actually inserted.
    rows: u64,
}

/// Inserts each distinct address once, whatever its case (the first entry wins), skipping those already
/// listed.
async fn insert_distinct<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    entries: &[NewSuppression],
) -> Result<Inserted, StoreError> {
    let at = now();
    let mut ids = HashMap::with_capacity(entries.len());
    let mut models = Vec::with_capacity(entries.len());
    for entry in entries {
        let key = address_key(entry.address.as_str());
        if ids.contains_key(&key) {
            continue;
        }
        // Ids are UUIDv7 drawn in entry order, so a list shows an import in the order of its rows.
        let id = opensend_core::new_id();
        ids.insert(key, id);
        models.push(active_model(organization_id, id, entry, at));
    }
    let mut rows = 0;
    for chunk in models.chunks(CHUNK) {
        rows += suppression::Entity::insert_many(chunk.iter().cloned())
            .on_conflict(on_address_conflict())
            .exec_without_returning(db)
            .await?;
    }
    Ok(Inserted { ids, rows })
}

async fn delete_rows<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    rows: &[suppression::Model],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(CHUNK) {
        suppression::Entity::delete_many()
            .filter(suppression::Column::OrganizationId.eq(organization_id))
            .filter(suppression::Column::Id.is_in(chunk.iter().map(|r| r.id)))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// `rows` ordered as their keys appear in `given` (each row once).
fn in_given_order<K: std::hash::Hash + Eq>(
    rows: Vec<suppression::Model>,
    given: impl Iterator<Item = K>,
    key: impl Fn(&suppression::Model) -> K,
) -> Vec<suppression::Model> {
    let mut by_key: HashMap<K, suppression::Model> =
        rows.into_iter().map(|row| (key(&row), row)).collect();
    given.filter_map(|k| by_key.remove(&k)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_and_refuse_anything_else() {
        for reason in Reason::ALL {
            assert_eq!(reason.as_str().parse::<Reason>(), Ok(reason));
        }
        for bad in ["", "Bounce", "spam", " manual"] {
            assert!(bad.parse::<Reason>().is_err(), "{bad:?}");
        }
    }
}
