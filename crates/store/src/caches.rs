//! In-process caches of rows read on every request, kept correct across processes by the cache epoch.
//!
//! The epoch is a counter in the one-row table `cache_epoch`, bumped ([`bump`]) in the same transaction as
//! every change a cached row must not outlive. A cached row remembers the epoch current when it was read
//! (taken *before* the read) and is used only while
//!
//! - the epoch is still that one, as seen by a read of `cache_epoch` that started at most
//!   [`CacheSettings::epoch_check_interval`] before the request (one read per interval per process, shared by
//!   every request in it), and
//! - it is younger than [`CacheSettings::ttl`], a backstop for changes made around OpenSend (plain SQL).
//!
//! So a change committed through any process is seen by every process for requests that start more than
//! `epoch_check_interval` after the commit; the process that made it forgets its view of the epoch when it
//! commits, so its own next request already sees it. Only rows that were found are cached (an unknown token
//! always reaches the database), and API keys are cached by the SHA-256 of their token, never the token.
//!
//! What is cached: API keys with their organization (every authenticated request), and an organization's
//! sending domains with their active DKIM keys, sealed as stored (every send and every delivery). Changes
//! that bump the epoch: key revocation and limit changes, organization limit changes, and every change to a
//! domain that can change who may send as what or with which key (create, update, delete, a check that
//! changes its status or promotes keys).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, FromQueryResult, Statement,
};

use crate::StoreError;
use crate::entities::{api_key, organization};
use crate::records::SendingDomains;
use uuid::Uuid;

/// Entries kept per cache at most; a full cache first drops what has expired, then everything.
const MAX_ENTRIES: usize = 10_000;

/// How long cached rows live and how often the epoch is read (`AUTH_CACHE_TTL_MS`,
/// `CACHE_EPOCH_CHECK_INTERVAL_MS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSettings {
    /// Longest life of a cached row; zero turns the caches off (every request reads the database).
    pub ttl: Duration,
    /// Longest time between a change committed by another process and this process noticing it.
    pub epoch_check_interval: Duration,
}

impl CacheSettings {
    pub const DEFAULT_TTL: Duration = Duration::from_secs(5);
    pub const DEFAULT_EPOCH_CHECK_INTERVAL: Duration = Duration::from_millis(250);

    /// No caching at all.
    pub const OFF: Self = Self {
        ttl: Duration::ZERO,
        epoch_check_interval: Duration::ZERO,
    };

    fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            ttl: Self::DEFAULT_TTL,
            epoch_check_interval: Self::DEFAULT_EPOCH_CHECK_INTERVAL,
        }
    }
}

/// Bumps the cache epoch; call inside the transaction of the change, so the two commit together.
pub(crate) async fn bump<C: ConnectionTrait>(db: &C) -> Result<(), StoreError> {
    db.execute_unprepared("UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 1")
        .await?;
    Ok(())
}

#[derive(Clone, Copy)]
struct Observed {
    epoch: i64,
    /// When the read that returned `epoch` started: it reflects every commit before that instant.
    read_started: Instant,
}

#[derive(Default)]
struct EpochView {
    observed: Option<Observed>,
    /// Incremented by [`Caches::forget_epoch`], so a read that started before a local change cannot store
    /// its (older) result after it.
    forgets: u64,
}

#[derive(Clone)]
pub(crate) struct CachedKey {
    pub key: api_key::Model,
    pub organization: organization::Model,
    epoch: i64,
    loaded: Instant,
}

/// The caches of one [`crate::Store`] (shared by its clones).
pub(crate) struct Caches {
    settings: CacheSettings,
    view: Mutex<EpochView>,
    /// Held while reading the epoch, so one read serves every request waiting for it.
    refresh: tokio::sync::Mutex<()>,
    api_keys: RwLock<HashMap<[u8; 32], CachedKey>>,
    /// Organizations' sending domains and their active keys, read on every send and every delivery.
    sending_domains: RwLock<HashMap<Uuid, CachedDomains>>,
}

struct CachedDomains {
    domains: Arc<SendingDomains>,
    epoch: i64,
    loaded: Instant,
}

#[derive(FromQueryResult)]
struct EpochRow {
    epoch: i64,
}

impl Caches {
    pub(crate) fn new(settings: CacheSettings) -> Self {
        Self {
            settings,
            view: Mutex::new(EpochView::default()),
            refresh: tokio::sync::Mutex::new(()),
            api_keys: RwLock::new(HashMap::new()),
            sending_domains: RwLock::new(HashMap::new()),
        }
    }

    pub(crate) fn settings(&self) -> CacheSettings {
        self.settings
    }

    /// The epoch for a request starting now, or `None` when caching is off.
    pub(crate) async fn epoch(&self, db: &DatabaseConnection) -> Result<Option<i64>, StoreError> {
        if !self.settings.enabled() {
            return Ok(None);
        }
        let arrived = Instant::now();
        let fresh = |view: &EpochView| {
            view.observed
                .filter(|o| {
                    arrived.saturating_duration_since(o.read_started)
                        < self.settings.epoch_check_interval
                })
                .map(|o| o.epoch)
        };
        if let Some(epoch) = fresh(&self.lock_view()) {
            return Ok(Some(epoch));
        }
        let _refreshing = self.refresh.lock().await;
        // Someone else may have read it while this request waited.
        let forgets = {
            let view = self.lock_view();
            if let Some(epoch) = fresh(&view) {
                return Ok(Some(epoch));
            }
            view.forgets
        };
        let read_started = Instant::now();
        let row = EpochRow::find_by_statement(Statement::from_string(
            db.get_database_backend(),
            "SELECT epoch FROM cache_epoch WHERE id = 1",
        ))
        .one(db)
        .await?;
        let Some(EpochRow { epoch }) = row else {
            // No epoch row (a schema written around the migrations): nothing can be cached safely.
            return Ok(None);
        };
        let mut view = self.lock_view();
        if view.forgets == forgets {
            view.observed = Some(Observed {
                epoch,
                read_started,
            });
        }
        Ok(Some(epoch))
    }

    /// Commits a change cached rows must not outlive, with the epoch bumped in it when `changed`, then
    /// makes this process's next request read the epoch again.
    pub(crate) async fn commit_change(
        &self,
        transaction: DatabaseTransaction,
        changed: bool,
    ) -> Result<(), StoreError> {
        if changed {
            bump(&transaction).await?;
        }
        transaction.commit().await?;
        if changed {
            self.forget_epoch();
        }
        Ok(())
    }

    /// After a local change that bumped the epoch: the next request reads it again.
    pub(crate) fn forget_epoch(&self) {
        let mut view = self.lock_view();
        view.observed = None;
        view.forgets = view.forgets.wrapping_add(1);
    }

    fn lock_view(&self) -> std::sync::MutexGuard<'_, EpochView> {
        // The view is a plain value, consistent whatever a panicking holder was doing.
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn live(&self, epoch: i64, entry_epoch: i64, loaded: Instant) -> bool {
        entry_epoch == epoch && loaded.elapsed() < self.settings.ttl
    }

    /// The cached key for `hash` under `epoch`. When its last use is stale by `use_is_stale`, the entry is
    /// marked used at `now` and the returned copy keeps the old time, so exactly one request records the use.
    pub(crate) fn key(
        &self,
        hash: &[u8; 32],
        epoch: i64,
        use_is_stale: impl Fn(&api_key::Model) -> bool,
        now: DateTime<Utc>,
    ) -> Option<CachedKey> {
        let found = {
            let keys = self.api_keys.read().unwrap_or_else(|e| e.into_inner());
            let entry = keys.get(hash)?;
            if !self.live(epoch, entry.epoch, entry.loaded) {
                return None;
            }
            entry.clone()
        };
        if !use_is_stale(&found.key) {
            return Some(found);
        }
        let mut keys = self.api_keys.write().unwrap_or_else(|e| e.into_inner());
        match keys.get_mut(hash) {
            Some(entry) if use_is_stale(&entry.key) => {
                entry.key.last_used_at = Some(now);
                Some(found)
            }
            // Another request marked it in between and records the use.
            Some(entry) => {
                let mut found = found;
                found.key.last_used_at = entry.key.last_used_at;
                Some(found)
            }
            None => Some(found),
        }
    }

    pub(crate) fn put_key(
        &self,
        hash: [u8; 32],
        epoch: i64,
        key: api_key::Model,
        organization: organization::Model,
    ) {
        let mut keys = self.api_keys.write().unwrap_or_else(|e| e.into_inner());
        make_room(&mut keys, |e| self.live(epoch, e.epoch, e.loaded));
        keys.insert(
            hash,
            CachedKey {
                key,
                organization,
                epoch,
                loaded: Instant::now(),
            },
        );
    }
}

impl Caches {
    /// The cached sending domains of `organization_id` under `epoch`.
    pub(crate) fn sending_domains(
        &self,
        organization_id: Uuid,
        epoch: i64,
    ) -> Option<Arc<SendingDomains>> {
        let cached = self
            .sending_domains
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let entry = cached.get(&organization_id)?;
        self.live(epoch, entry.epoch, entry.loaded)
            .then(|| entry.domains.clone())
    }

    pub(crate) fn put_sending_domains(
        &self,
        organization_id: Uuid,
        epoch: i64,
        domains: Arc<SendingDomains>,
    ) {
        let mut cached = self
            .sending_domains
            .write()
            .unwrap_or_else(|e| e.into_inner());
        make_room(&mut cached, |e| self.live(epoch, e.epoch, e.loaded));
        cached.insert(
            organization_id,
            CachedDomains {
                domains,
                epoch,
                loaded: Instant::now(),
            },
        );
    }
}

fn make_room<K, V>(map: &mut HashMap<K, V>, live: impl Fn(&V) -> bool) {
    if map.len() < MAX_ENTRIES {
        return;
    }
    map.retain(|_, v| live(v));
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
}
