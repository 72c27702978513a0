//! Sending domains beyond HTTP: the records a domain must publish here, verifying them (the re-check job
//! is `jobs::domain_checks`), and the send-time rule "may this organization send as this address?".

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use opensend_core::dns_record::{DnsRecordView, RECORD_TTL, RecordCheck};
use opensend_core::{DkimKeyState, DnsLabel, DomainName, SecretBox};
use opensend_mail::dkim::{self, DkimAlgorithm};
use opensend_mail::records::{self, BounceMx, DomainRecordsInput, PublishedKey, RecordSettings};
use opensend_mail::{DomainStatus, ExpectedRecord, RecordStatus};
use opensend_store::StoreError;
use opensend_store::records::{DkimKeyRecord, DomainRecord, SendingDomains};
use opensend_store::repos::{CheckOutcome, NewDkimKey};
use uuid::Uuid;

use crate::config::{Config, Delivery};
use crate::state::AppState;

/// What the sealed private keys are for (bound into the ciphertext).
pub const DKIM_SEAL_PURPOSE: &str = "dkim-private-key";

/// When a domain in `status` after `attempts` checks in that status is looked at again.
pub fn next_check(status: DomainStatus, attempts: i32, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let delay = match status {
        DomainStatus::NotStarted => return None,
        DomainStatus::Verified => TimeDelta::hours(24),
        DomainStatus::Failed => TimeDelta::hours(6),
        DomainStatus::TemporaryFailure => TimeDelta::minutes(5),
        // 1, 2, 4 … minutes, at most 6 hours: quick while someone is publishing records, cheap when forgotten.
        DomainStatus::Pending => {
            TimeDelta::minutes(1i64 << attempts.clamp(0, 9)).min(TimeDelta::hours(6))
        }
    };
    Some(at + delay)
}

/// The record values that depend on the deployment, per transport (documented in `docs/configuration.md`).
pub fn record_settings(config: &Config) -> RecordSettings {
    let app_host = config.app_url.host_str().unwrap_or("localhost").to_owned();
    let domains = &config.domains;
    let spf_default = match config.delivery.mode {
        Delivery::Ses => "include:amazonses.com",
        // The bounce MX host is the relay that sends for us unless the operator says otherwise.
        Delivery::Smtp | Delivery::Capture => "mx",
    };
    let bounce_mx = match (&domains.return_path_mx, config.delivery.mode) {
        (Some(host), _) => BounceMx::Host(host.clone()),
        (None, Delivery::Ses) => BounceMx::SesRegion,
        (None, _) => BounceMx::Host(app_host.clone()),
    };
    RecordSettings {
        spf_mechanisms: domains
            .spf_include
            .clone()
            .unwrap_or_else(|| spf_default.to_owned()),
        bounce_mx,
        dmarc_rua: domains.dmarc_rua.clone(),
        tracking_target: domains.tracking_cname_target.clone().unwrap_or(app_host),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("stored domain `{0}` no longer parses")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dkim(#[from] dkim::DkimError),
    #[error("cannot seal a DKIM key: {0}")]
    Seal(opensend_core::secret_box::SecretBoxError),
    #[error("key generation was interrupted: {0}")]
    Join(String),
}

/// The records of `domain` with its non-retired `keys`. Keys of a rotation in progress are listed but optional.
pub fn expected_records(
    domain: &DomainRecord,
    keys: &[DkimKeyRecord],
    settings: &RecordSettings,
) -> Result<Vec<ExpectedRecord>, DomainError> {
    let corrupt = || DomainError::Corrupt(domain.name.clone());
    let name = DomainName::parse(&domain.name).map_err(|_| corrupt())?;
    let return_path = DnsLabel::parse(&domain.custom_return_path).map_err(|_| corrupt())?;
    let tracking = domain
        .tracking_subdomain
        .as_deref()
        .map(DnsLabel::parse)
        .transpose()
        .map_err(|_| corrupt())?;
    let published = keys
        .iter()
        .filter_map(|key| {
            Some(PublishedKey {
                algorithm: DkimAlgorithm::parse(&key.algorithm)?,
                selector: &key.selector,
                public_key: &key.public_key,
                required: key.state == DkimKeyState::Active,
            })
        })
        .collect();
    Ok(records::expected_records(
        &DomainRecordsInput {
            name: &name,
            return_path: &return_path,
            tracking_subdomain: tracking.as_ref(),
            region: &domain.region,
            keys: published,
        },
        settings,
    ))
}

/// The records of `domain` as the API and `domain.*` webhooks show them: each expected record with what its
/// last check found (`not_started` before the first check).
pub fn record_views(
    domain: &DomainRecord,
    keys: &[DkimKeyRecord],
    settings: &RecordSettings,
) -> Result<Vec<DnsRecordView>, DomainError> {
    Ok(expected_records(domain, keys, settings)?
        .into_iter()
        .map(|e| {
            let check = domain
                .record_checks
                .iter()
                .find(|c| c.record_type == e.record_type && c.name == e.name && c.value == e.value);
            DnsRecordView {
                record: e.purpose,
                name: e.name,
                record_type: e.record_type,
                ttl: RECORD_TTL,
                status: check.map_or(RecordStatus::NotStarted, |c| c.status),
                value: e.value,
                priority: e.priority,
                found: check.and_then(|c| c.detail.clone()),
                required: e.required,
            }
        })
        .collect())
}

/// What `domain.*` webhook events list as a domain's records ([`record_views`] under this configuration).
/// A domain whose records cannot be derived (a stored key that no longer parses) is announced without them.
pub fn records_for_events(
    config: &Config,
) -> impl Fn(&DomainRecord, &[DkimKeyRecord]) -> Vec<DnsRecordView> + Send + Sync + use<> {
    let settings = record_settings(config);
    move |domain, keys| record_views(domain, keys, &settings).unwrap_or_default()
}

/// Looks up every record of `domain` now and stores the outcome. Returns the updated domain.
pub async fn verify(
    state: &AppState,
    domain: &DomainRecord,
    at: DateTime<Utc>,
) -> Result<Option<DomainRecord>, DomainError> {
    let keys = state
        .store
        .domains()
        .keys(domain.organization_id, domain.id)
        .await?;
    let expected = expected_records(domain, &keys, &record_settings(&state.config))?;
    let results = state.dns.check_all(&expected).await;
    let previous = domain.status;
    let status = records::domain_status(
        previous,
        &expected
            .iter()
            .zip(&results)
            .map(|(e, r)| (e.required, r.status))
            .collect::<Vec<_>>(),
    );
    // A rotation's keys take over once all of their records are published.
    let next_selectors: Vec<String> = keys
        .iter()
        .filter(|k| k.state == DkimKeyState::Next)
        .map(|k| k.selector.clone())
        .collect();
    let next_statuses: Vec<RecordStatus> = expected
        .iter()
        .zip(&results)
        .filter(|(e, _)| {
            e.selector
                .as_ref()
                .is_some_and(|s| next_selectors.contains(s))
        })
        .map(|(_, r)| r.status)
        .collect();
    let promote = if !next_statuses.is_empty()
        && next_statuses.iter().all(|s| *s == RecordStatus::Verified)
    {
        next_selectors
    } else {
        Vec::new()
    };
    let checks: Vec<RecordCheck> = expected
        .iter()
        .zip(results)
        .map(|(e, r)| RecordCheck {
            record_type: e.record_type,
            name: e.name.clone(),
            value: e.value.clone(),
            status: r.status,
            detail: r.detail,
        })
        .collect();
    let attempts = if status == previous {
        domain.check_attempts.saturating_add(1)
    } else {
        0
    };
    if status != previous {
        tracing::info!(domain_id = %domain.id, from = previous.as_str(), to = status.as_str(), "domain status changed");
    }
    Ok(state
        .store
        .domains()
        .record_check(
            domain.organization_id,
            domain.id,
            CheckOutcome {
                status,
                record_checks: checks,
                checked_at: at,
                next_check_at: next_check(status, attempts, at),
                check_attempts: attempts,
                promote,
            },
            &records_for_events(&state.config),
        )
        .await?)
}

/// Generates a fresh RSA + Ed25519 pair under a new selector and seals the private keys.
pub async fn new_keys(secrets: &SecretBox) -> Result<Vec<NewDkimKey>, DomainError> {
    let base = dkim::new_selector_base()?;
    // RSA generation is CPU-bound for a noticeable fraction of a second: keep it off the async workers.
    let generated = tokio::task::spawn_blocking(move || dkim::generate_keys(&base))
        .await
        .map_err(|e| DomainError::Join(e.to_string()))??;
    generated
        .into_iter()
        .map(|key| {
            let sealed = secrets
                .seal(
                    DKIM_SEAL_PURPOSE,
                    secrecy::ExposeSecret::expose_secret(&key.private_key),
                )
                .map_err(DomainError::Seal)?;
            Ok(NewDkimKey {
                selector: key.selector,
                algorithm: key.algorithm.as_str().to_owned(),
                public_key: key.public_key,
                private_key_sealed: sealed,
            })
        })
        .collect()
}

pub use opensend_mail::dkim::SigningKey;

/// Who a message is sent as.
#[derive(Debug)]
pub struct SendingIdentity {
    /// The verified domain the address belongs to; `None` for a capture-mode message from an unknown domain.
    pub domain_id: Option<Uuid>,
    /// The domain to sign as (`d=`).
    pub domain: Option<String>,
    /// `false` only in capture delivery, for an address outside the organization's verified domains: the
    /// message is kept, marked as sent from an unverified domain.
    pub verified_domain: bool,
    /// Active keys (RSA, then Ed25519), to sign with.
    pub keys: Vec<SigningKey>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("`{0}` is not a valid email address")]
    InvalidAddress(String),
    #[error("The {0} domain is not verified. Add and verify it at /domains.")]
    UnknownDomain(String),
    #[error("The {domain} domain is not verified (status: {status}).")]
    NotVerified {
        domain: String,
        status: DomainStatus,
    },
    #[error(
        "{address} is at a subdomain of {domain}, which does not allow sending from subdomains"
    )]
    SubdomainNotAllowed { address: String, domain: String },
    #[error("Sending is disabled for the {0} domain.")]
    SendingDisabled(String),
    #[error("This API key may only send from its own domain.")]
    RestrictedKey,
    #[error("The {0} domain has no active DKIM key to sign with.")]
    NoSigningKey(String),
}

#[derive(Debug, thiserror::Error)]
pub enum SendAsError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// What happens to mail from an address outside the organization's verified domains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unverified {
    /// Refused: the mail would leave the machine.
    Refused,
    /// Accepted as from an unverified domain: the mail stays on this machine (capture delivery).
    Kept,
}

impl Unverified {
    /// The accept-time rule of this deployment: kept when `DELIVERY=capture`.
    pub fn for_delivery(config: &Config) -> Self {
        match config.delivery.mode {
            Delivery::Capture => Unverified::Kept,
            Delivery::Smtp | Delivery::Ses => Unverified::Refused,
        }
    }
}

/// May `organization_id` send as `address` (the bare address of From), and with which keys?
///
/// The address's domain, or its closest ancestor the organization has added, must be verified; a subdomain
/// address is allowed only when that domain's `allow_subdomains` is on. A key restricted to a domain
/// (`restricted_to`) may only send from that domain. When `unverified` is [`Unverified::Kept`] (mail that
/// never leaves the machine), any From is accepted: with the domain's keys when it is verified, otherwise
/// as `None`, an unverified domain.
pub async fn sending_domain(
    state: &AppState,
    organization_id: Uuid,
    address: &str,
    restricted_to: Option<Uuid>,
    unverified: Unverified,
) -> Result<Option<DomainRecord>, SendAsError> {
    Ok(
        resolve(state, organization_id, address, restricted_to, unverified)
            .await?
            .map(|(domain, _)| domain),
    )
}

/// [`sending_domain`], with the organization's sending domains it was chosen from (their active keys).
async fn resolve(
    state: &AppState,
    organization_id: Uuid,
    address: &str,
    restricted_to: Option<Uuid>,
    unverified: Unverified,
) -> Result<Option<(DomainRecord, Arc<SendingDomains>)>, SendAsError> {
    let invalid = || Refusal::InvalidAddress(address.chars().take(320).collect());
    let (local, host) = address.rsplit_once('@').ok_or_else(invalid)?;
    if local.is_empty() {
        return Err(invalid().into());
    }
    let host = DomainName::parse(host).map_err(|_| invalid())?;
    let ancestors: Vec<&str> = host.ancestors().collect();
    let sending = state
        .store
        .domains()
        .sending_domains(organization_id, &ancestors)
        .await
        .map_err(DomainError::from)?;
    // The most specific domain the organization has added wins (`mail.example.com` over `example.com`).
    let closest = ancestors
        .iter()
        .find_map(|name| sending.domains.iter().find(|d| d.name == *name));
    let capture = unverified == Unverified::Kept;
    let verdict = match closest {
        None => Err(Refusal::UnknownDomain(host.to_string())),
        Some(d) if d.status != DomainStatus::Verified => Err(Refusal::NotVerified {
            domain: d.name.clone(),
            status: d.status,
        }),
        Some(d) if d.name != host.as_str() && !d.allow_subdomains => {
            Err(Refusal::SubdomainNotAllowed {
                address: address.to_owned(),
                domain: d.name.clone(),
            })
        }
        Some(d) if !d.sending_enabled => Err(Refusal::SendingDisabled(d.name.clone())),
        Some(d) if restricted_to.is_some_and(|id| id != d.id) => Err(Refusal::RestrictedKey),
        Some(d) => Ok(d),
    };
    let domain = match verdict {
        Ok(domain) => domain.clone(),
        Err(Refusal::RestrictedKey) => return Err(Refusal::RestrictedKey.into()),
        Err(_) if capture && restricted_to.is_none() => {
            return Ok(None);
        }
        Err(refusal) => return Err(refusal.into()),
    };
    Ok(Some((domain, sending)))
}

/// [`sending_domain`] under this deployment's accept-time rule ([`Unverified::for_delivery`]), with the
/// domain's active DKIM keys opened for signing.
pub async fn may_send_as(
    state: &AppState,
    organization_id: Uuid,
    address: &str,
    restricted_to: Option<Uuid>,
) -> Result<SendingIdentity, SendAsError> {
    let unverified = Unverified::for_delivery(&state.config);
    signing_identity(state, organization_id, address, restricted_to, unverified).await
}

/// [`sending_domain`] with the domain's active DKIM keys opened for signing. The delivery worker asks with
/// the rule of the transport that will carry the message, whatever the deployment accepted it under.
pub async fn signing_identity(
    state: &AppState,
    organization_id: Uuid,
    address: &str,
    restricted_to: Option<Uuid>,
    unverified: Unverified,
) -> Result<SendingIdentity, SendAsError> {
    let Some((domain, sending)) =
        resolve(state, organization_id, address, restricted_to, unverified).await?
    else {
        return Ok(SendingIdentity {
            domain_id: None,
            domain: None,
            verified_domain: false,
            keys: Vec::new(),
        });
    };
    let mut keys = Vec::new();
    for key in sending.keys_of(domain.id) {
        if let Some(key) = open_key(&state.secrets, key)? {
            keys.push(key);
        }
    }
    keys.sort_by_key(|k| k.algorithm != DkimAlgorithm::RsaSha256);
    Ok(SendingIdentity {
        domain_id: Some(domain.id),
        domain: Some(domain.name),
        verified_domain: true,
        keys,
    })
}

/// A stored key opened for signing; `None` for an algorithm this version does not sign with.
fn open_key(secrets: &SecretBox, key: &DkimKeyRecord) -> Result<Option<SigningKey>, DomainError> {
    let Some(algorithm) = DkimAlgorithm::parse(&key.algorithm) else {
        return Ok(None);
    };
    let private_key = secrets
        .open(DKIM_SEAL_PURPOSE, &key.private_key_sealed)
        .map_err(DomainError::Seal)?;
    Ok(Some(SigningKey {
        selector: key.selector.clone(),
        algorithm,
        private_key,
    }))
}

/// Who a message is signed as by the delivery worker: the domain (`d=`) and its active keys, opened.
pub struct Signers {
    pub domain: String,
    /// What the domain tracks (opens, clicks) and under which host.
    pub tracking: crate::tracking::DomainTracking,
    /// RSA first, then Ed25519.
    pub signers: Vec<Arc<dkim::PreparedSigner>>,
}

/// Like [`signing_identity`], with each key opened once per process and kept ([`crate::signer_cache::SignerCache`]): the
/// delivery worker's way, since opening an RSA key costs a large share of signing with it. `None`: the
/// address is outside the organization's verified domains and `unverified` keeps such mail unsigned.
pub async fn signers_for(
    state: &AppState,
    organization_id: Uuid,
    address: &str,
    unverified: Unverified,
) -> Result<Option<Signers>, SendAsError> {
    let Some((domain, sending)) =
        resolve(state, organization_id, address, None, unverified).await?
    else {
        return Ok(None);
    };
    let mut signers = Vec::new();
    for key in sending.keys_of(domain.id) {
        let signer = state.signers.get_or_open(key.id, || {
            open_key(&state.secrets, key)?
                .map(|opened| dkim::PreparedSigner::new(&domain.name, &opened))
                .transpose()
                .map_err(DomainError::from)
        })?;
        signers.extend(signer);
    }
    signers.sort_by_key(|s| s.algorithm() != DkimAlgorithm::RsaSha256);
    Ok(Some(Signers {
        tracking: crate::tracking::DomainTracking::of(&domain),
        domain: domain.name,
        signers,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_back_off_while_pending_and_settle_daily_when_verified() {
        let at = Utc::now();
        let delay = |s, n| next_check(s, n, at).map(|t| t - at);
        assert_eq!(delay(DomainStatus::NotStarted, 0), None);
        assert_eq!(delay(DomainStatus::Pending, 0), Some(TimeDelta::minutes(1)));
        assert_eq!(delay(DomainStatus::Pending, 3), Some(TimeDelta::minutes(8)));
        assert_eq!(delay(DomainStatus::Pending, 50), Some(TimeDelta::hours(6)));
        assert_eq!(delay(DomainStatus::Verified, 7), Some(TimeDelta::hours(24)));
        assert_eq!(
            delay(DomainStatus::TemporaryFailure, 1),
            Some(TimeDelta::minutes(5))
        );
    }
}
