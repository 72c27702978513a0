//! Sending domains and their DKIM keys, as the domains repository returns them.

use chrono::{DateTime, Utc};
use opensend_core::dns_record::RecordCheck;
use opensend_core::{DkimKeyState, DomainStatus};
use uuid::Uuid;

use super::columns::Row;
use crate::StoreError;
use crate::entities::{dkim_key, domain};

/// A sending domain of one organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainRecord {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub status: DomainStatus,
    pub region: String,
    pub custom_return_path: String,
    pub open_tracking: bool,
    pub click_tracking: bool,
    pub tracking_subdomain: Option<String>,
    pub tls: String,
    pub sending_enabled: bool,
    pub receiving_enabled: bool,
    /// Whether addresses at subdomains of this domain may be used as From once it is verified.
    pub allow_subdomains: bool,
    /// What the last check found, record by record (empty before the first check).
    pub record_checks: Vec<RecordCheck>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub next_check_at: Option<DateTime<Utc>>,
    pub check_attempts: i32,
}

impl TryFrom<domain::Model> for DomainRecord {
    type Error = StoreError;

    fn try_from(model: domain::Model) -> Result<Self, StoreError> {
        let read = Row::new("domains", model.id);
        Ok(Self {
            status: read.value("status", &model.status)?,
            record_checks: match &model.record_checks {
                Some(text) => read.document("record_checks", text)?,
                None => Vec::new(),
            },
            id: model.id,
            organization_id: model.organization_id,
            name: model.name,
            region: model.region,
            custom_return_path: model.custom_return_path,
            open_tracking: model.open_tracking,
            click_tracking: model.click_tracking,
            tracking_subdomain: model.tracking_subdomain,
            tls: model.tls,
            sending_enabled: model.sending_enabled,
            receiving_enabled: model.receiving_enabled,
            allow_subdomains: model.allow_subdomains,
            created_at: model.created_at,
            updated_at: model.updated_at,
            last_checked_at: model.last_checked_at,
            next_check_at: model.next_check_at,
            check_attempts: model.check_attempts,
        })
    }
}

/// What sending as an organization needs to know: its domains and the active DKIM keys of each, read
/// together and cached per organization ([`crate::repos::Domains::sending_domains`]).
#[derive(Debug, Default)]
pub struct SendingDomains {
    pub domains: Vec<DomainRecord>,
    /// The `active` keys of those domains, oldest first.
    pub active_keys: Vec<DkimKeyRecord>,
}

impl SendingDomains {
    /// The active keys of one of the domains.
    pub fn keys_of(&self, domain_id: Uuid) -> impl Iterator<Item = &DkimKeyRecord> {
        self.active_keys
            .iter()
            .filter(move |key| key.domain_id == domain_id)
    }
}

/// A DKIM key of a domain. The private key is sealed (`opensend_core::SecretBox`); `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKeyRecord {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub domain_id: Uuid,
    pub selector: String,
    /// `rsa-sha256` or `ed25519-sha256`.
    pub algorithm: String,
    pub public_key: Vec<u8>,
    pub private_key_sealed: Vec<u8>,
    pub state: DkimKeyState,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for DkimKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimKeyRecord")
            .field("id", &self.id)
            .field("domain_id", &self.domain_id)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl TryFrom<dkim_key::Model> for DkimKeyRecord {
    type Error = StoreError;

    fn try_from(model: dkim_key::Model) -> Result<Self, StoreError> {
        Ok(Self {
            state: Row::new("domain_dkim_keys", model.id).value("state", &model.state)?,
            id: model.id,
            organization_id: model.organization_id,
            domain_id: model.domain_id,
            selector: model.selector,
            algorithm: model.algorithm,
            public_key: model.public_key,
            private_key_sealed: model.private_key_sealed,
            created_at: model.created_at,
            activated_at: model.activated_at,
        })
    }
}
