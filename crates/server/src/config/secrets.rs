//! The secrets every role may need. Each is wrapped so it cannot reach a log by accident; the startup checks
//! (`startup_checks.rs`) decide whether they are good enough to run with.

use std::fmt;

use secrecy::SecretString;

use super::{Reader, names};

/// The secrets every role may need. Each is wrapped so it cannot reach a log by accident.
#[derive(Clone, Default)]
pub struct Secrets {
    pub auth_secret: Option<SecretString>,
    pub webhook_secret_encryption_key: Option<SecretString>,
    pub ingester_job_token: Option<SecretString>,
    pub ingester_inbound_token: Option<SecretString>,
    /// `WEBHOOK_SECRET_ENCRYPTION_KEY_PREVIOUS`: the key being rotated away from. Secrets sealed under it
    /// still open until `opensend admin rotate-encryption-key` has re-sealed them. Optional, so not a slot.
    pub webhook_secret_encryption_key_previous: Option<SecretString>,
}

/// One secret setting: its primary name and where it lives in [`Secrets`].
pub struct SecretSlot {
    pub name: &'static str,
    pub get: fn(&Secrets) -> Option<&SecretString>,
    pub set: fn(&mut Secrets, SecretString),
}

/// Every secret setting, in the order problems are reported.
pub const SECRET_SLOTS: [SecretSlot; 4] = [
    SecretSlot {
        name: "AUTH_SECRET",
        get: |s| s.auth_secret.as_ref(),
        set: |s, v| s.auth_secret = Some(v),
    },
    SecretSlot {
        name: "WEBHOOK_SECRET_ENCRYPTION_KEY",
        get: |s| s.webhook_secret_encryption_key.as_ref(),
        set: |s, v| s.webhook_secret_encryption_key = Some(v),
    },
    SecretSlot {
        name: "INGESTER_JOB_TOKEN",
        get: |s| s.ingester_job_token.as_ref(),
        set: |s, v| s.ingester_job_token = Some(v),
    },
    SecretSlot {
        name: "INGESTER_INBOUND_TOKEN",
        get: |s| s.ingester_inbound_token.as_ref(),
        set: |s, v| s.ingester_inbound_token = Some(v),
    },
];

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Secrets");
        for slot in &SECRET_SLOTS {
            d.field(slot.name, &(slot.get)(self).map(|_| "[REDACTED]"));
        }
        d.field(
            "WEBHOOK_SECRET_ENCRYPTION_KEY_PREVIOUS",
            &self
                .webhook_secret_encryption_key_previous
                .as_ref()
                .map(|_| "[REDACTED]"),
        );
        d.finish()
    }
}

impl Secrets {
    pub(super) fn read(r: &mut Reader) -> Self {
        let secret = |names: &[&str]| r.raw(names).map(SecretString::from);
        Self {
            auth_secret: secret(names::AUTH_SECRET),
            webhook_secret_encryption_key: secret(names::WEBHOOK_SECRET_ENCRYPTION_KEY),
            ingester_job_token: secret(names::INGESTER_JOB_TOKEN),
            ingester_inbound_token: secret(names::INGESTER_INBOUND_TOKEN),
            webhook_secret_encryption_key_previous: secret(
                names::WEBHOOK_SECRET_ENCRYPTION_KEY_PREVIOUS,
            ),
        }
    }
}
