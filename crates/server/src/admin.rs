//! Operator tasks behind `opensend admin`: the same operations the dashboard will offer, without it.

use opensend_core::{ApiKeyToken, Permission};
use opensend_store::entities::{api_key, organization};
use opensend_store::repos::NewApiKey;
use opensend_store::{Store, StoreError};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("organization name must be 1 to 100 characters")]
    InvalidOrganizationName,
    #[error("key name must be 1 to 50 characters")]
    InvalidKeyName,
    #[error("no organization has the id {0}")]
    NoSuchOrganization(Uuid),
    #[error("no live API key has the id {0}")]
    NoSuchKey(Uuid),
    #[error("--domain-id applies only to sending_access keys")]
    DomainOnFullAccess,
    #[error("organization {organization} has no domain with the id {domain}")]
    NoSuchDomain { organization: Uuid, domain: Uuid },
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn create_organization(
    store: &Store,
    name: &str,
) -> Result<organization::Model, AdminError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AdminError::InvalidOrganizationName);
    }
    Ok(store.organizations().create(name).await?)
}

pub async fn create_api_key(
    store: &Store,
    organization_id: Uuid,
    name: &str,
    permission: Permission,
    domain_id: Option<Uuid>,
) -> Result<(api_key::Model, ApiKeyToken), AdminError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 50 || name.chars().any(char::is_control) {
        return Err(AdminError::InvalidKeyName);
    }
    if domain_id.is_some() && permission == Permission::FullAccess {
        return Err(AdminError::DomainOnFullAccess);
    }
    if let Some(domain) = domain_id
        && store
            .domains()
            .get(organization_id, domain)
            .await?
            .is_none()
    {
        return Err(AdminError::NoSuchDomain {
            organization: organization_id,
            domain,
        });
    }
    let token = ApiKeyToken::generate().map_err(|e| AdminError::Random(e.to_string()))?;
    let key = store
        .api_keys()
        .create(NewApiKey {
            organization_id,
            name: name.to_owned(),
            permission,
            domain_id,
            token: &token,
        })
        .await
        .map_err(|e| match e {
            StoreError::MissingReference(_) => AdminError::NoSuchOrganization(organization_id),
            other => AdminError::Store(other),
        })?;
    Ok((key, token))
}

pub async fn revoke_api_key(store: &Store, id: Uuid) -> Result<(), AdminError> {
    if store.api_keys().revoke_any(id).await? {
        Ok(())
    } else {
        Err(AdminError::NoSuchKey(id))
    }
}
