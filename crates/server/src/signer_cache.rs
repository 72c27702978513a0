//! DKIM keys opened for signing, kept by the delivery worker for the life of the process.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use opensend_mail::dkim::PreparedSigner;
use uuid::Uuid;

/// Most opened keys a process keeps; past it, the cache starts again empty.
const MAX_CACHED_SIGNERS: usize = 10_000;

/// DKIM keys opened for signing, by key id. Which keys are active is decided on every message from the
/// store (whose cache follows every rotation through the cache epoch); this only saves opening a key again,
/// which costs a large share of signing with it. A key's private half never changes under its id, so an
/// entry cannot go stale; entries of retired keys stay until the cache fills up (their private halves stay
/// in memory that long).
#[derive(Default)]
pub struct SignerCache {
    opened: RwLock<HashMap<Uuid, Arc<PreparedSigner>>>,
}

impl SignerCache {
    /// The signer of key `id`, opened with `open` the first time it is asked for. `open` gives `None` for a
    /// key that cannot sign (nothing is kept then, so a later call tries again).
    pub fn get_or_open<E>(
        &self,
        id: Uuid,
        open: impl FnOnce() -> Result<Option<PreparedSigner>, E>,
    ) -> Result<Option<Arc<PreparedSigner>>, E> {
        if let Some(found) = self
            .opened
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(Some(found.clone()));
        }
        let Some(opened) = open()? else {
            return Ok(None);
        };
        let signer = Arc::new(opened);
        let mut cache = self.opened.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED_SIGNERS {
            cache.clear();
        }
        cache.insert(id, signer.clone());
        Ok(Some(signer))
    }
}
