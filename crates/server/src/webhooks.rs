//! Webhook signing secrets at rest: sealing and opening them, and the secrets a delivery is signed with.
//!
//! Events are written to the outbox by the store, in the transaction of the change they report
//! (`opensend_store::repos::webhook_outbox`); the dispatcher (`crate::jobs::webhook_dispatch`) claims due
//! deliveries, signs each request the Standard Webhooks way (`opensend_core::webhook`) and records every
//! attempt.

use chrono::{DateTime, Utc};
use opensend_core::SecretBox;
use opensend_core::secret_box::{SecretBoxError, expose};
use opensend_core::webhook::{WebhookSecret, WebhookSecretError};
use opensend_store::records::WebhookRecord;

/// What sealed webhook secrets are for (bound into the ciphertext, so no other sealed value opens here).
pub const SECRET_PURPOSE: &str = "opensend.webhook-signing-secret.v1";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot seal or open a webhook signing secret: {0}")]
    Box(#[from] SecretBoxError),
    #[error("a stored webhook signing secret is not valid: {0}")]
    Secret(#[from] WebhookSecretError),
}

pub fn seal(secrets: &SecretBox, secret: &WebhookSecret) -> Result<Vec<u8>, SecretError> {
    Ok(secrets.seal(SECRET_PURPOSE, secret.expose_bytes())?)
}

pub fn open(secrets: &SecretBox, sealed: &[u8]) -> Result<WebhookSecret, SecretError> {
    let opened = secrets.open(SECRET_PURPOSE, sealed)?;
    Ok(WebhookSecret::from_bytes(expose(&opened))?)
}

/// The secrets a delivery is signed with at `at`: the current one, and the previous one while a rotation's
/// overlap lasts.
pub fn signing_secrets(
    secrets: &SecretBox,
    endpoint: &WebhookRecord,
    at: DateTime<Utc>,
) -> Result<Vec<WebhookSecret>, SecretError> {
    let mut keys = vec![open(secrets, &endpoint.secret_sealed)?];
    if let (Some(previous), Some(until)) = (
        &endpoint.previous_secret_sealed,
        endpoint.previous_secret_expires_at,
    ) && until > at
    {
        keys.push(open(secrets, previous)?);
    }
    Ok(keys)
}
