//! Secrets sealed in the database (webhook signing secrets, DKIM private keys) against the configured
//! encryption keys: a check at start, so a wrong `WEBHOOK_SECRET_ENCRYPTION_KEY` stops the process with a
//! clear message instead of failing every signature later, and the re-sealing behind
//! `opensend admin rotate-encryption-key`.
//!
//! Rotating the key: set the new key as `WEBHOOK_SECRET_ENCRYPTION_KEY` and the old one as
//! `WEBHOOK_SECRET_ENCRYPTION_KEY_PREVIOUS`, run `opensend admin rotate-encryption-key` (safe to run while
//! the servers run, and to run again), then remove `WEBHOOK_SECRET_ENCRYPTION_KEY_PREVIOUS`.

use opensend_core::SecretBox;
use opensend_core::secret_box::SecretBoxError;
use opensend_store::{Store, StoreError};

use crate::domains::DKIM_SEAL_PURPOSE;
use crate::webhooks::SECRET_PURPOSE as WEBHOOK_PURPOSE;

#[derive(Debug, thiserror::Error)]
pub enum SealedSecretsError {
    #[error(
        "the configured encryption keys cannot open the {what} stored in the database ({cause}). Set \
         WEBHOOK_SECRET_ENCRYPTION_KEY to the key they were sealed with; to move to a new key, set the old one \
         as WEBHOOK_SECRET_ENCRYPTION_KEY_PREVIOUS and run `opensend admin rotate-encryption-key`"
    )]
    CannotOpen {
        what: &'static str,
        cause: SecretBoxError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a re-sealing changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResealReport {
    pub webhook_secrets: usize,
    pub dkim_keys: usize,
    pub already_current: usize,
}

/// Opens one sealed value of each kind, if any exist.
pub async fn check(store: &Store, secrets: &SecretBox) -> Result<(), SealedSecretsError> {
    if let Some(endpoint) = store.webhooks().first_sealed().await? {
        secrets.open(WEBHOOK_PURPOSE, &endpoint).map_err(|cause| {
            SealedSecretsError::CannotOpen {
                what: "webhook signing secrets",
                cause,
            }
        })?;
    }
    if let Some((_, key)) = store.domains().all_sealed_keys().await?.first() {
        secrets
            .open(DKIM_SEAL_PURPOSE, key)
            .map_err(|cause| SealedSecretsError::CannotOpen {
                what: "DKIM private keys",
                cause,
            })?;
    }
    Ok(())
}

/// Re-seals every stored secret not yet sealed under the current key. Each secret is opened (with the
/// current or previous key) before anything is written, per row, so an interrupted run leaves every row
/// readable and a second run finishes the job.
pub async fn reseal_all(
    store: &Store,
    secrets: &SecretBox,
) -> Result<ResealReport, SealedSecretsError> {
    let mut report = ResealReport::default();
    let reseal = |purpose: &str, what: &'static str, sealed: &[u8]| {
        let opened = secrets
            .open(purpose, sealed)
            .map_err(|cause| SealedSecretsError::CannotOpen { what, cause })?;
        secrets
            .seal(purpose, opensend_core::secret_box::expose(&opened))
            .map_err(|cause| SealedSecretsError::CannotOpen { what, cause })
    };
    for listed in store.webhooks().all_sealed().await? {
        let mut endpoint = Some(listed);
        // A rotation may land between the read and the write; the write is conditional, so read again.
        for _ in 0..5 {
            let Some(current) = endpoint.take() else {
                break;
            };
            let up_to_date = secrets.is_current(&current.secret_sealed)
                && current
                    .previous_secret_sealed
                    .as_deref()
                    .is_none_or(|p| secrets.is_current(p));
            if up_to_date {
                report.already_current += 1;
                break;
            }
            let what = "webhook signing secrets";
            let secret = reseal(WEBHOOK_PURPOSE, what, &current.secret_sealed)?;
            let previous = current
                .previous_secret_sealed
                .as_deref()
                .map(|p| reseal(WEBHOOK_PURPOSE, what, p))
                .transpose()?;
            let seen = (
                current.secret_sealed.as_slice(),
                current.previous_secret_sealed.as_deref(),
            );
            if store
                .webhooks()
                .reseal(current.id, seen, secret, previous)
                .await?
            {
                report.webhook_secrets += 1;
                break;
            }
            endpoint = store.webhooks().get_any(current.id).await?;
        }
    }
    for (id, sealed) in store.domains().all_sealed_keys().await? {
        if secrets.is_current(&sealed) {
            report.already_current += 1;
            continue;
        }
        let resealed = reseal(DKIM_SEAL_PURPOSE, "DKIM private keys", &sealed)?;
        store.domains().reseal_key(id, resealed).await?;
        report.dkim_keys += 1;
    }
    Ok(report)
}
