//! Operator tasks behind `opensend admin`: the same operations the dashboard will offer, without it.

use opensend_core::{ApiKeyToken, Permission};
use opensend_store::entities::{api_key, organization};
use opensend_store::repos::{NewApiKey, RateLimitOverride};
use opensend_store::{Store, StoreError};
use uuid::Uuid;

use crate::rate_limit::Rate;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("organization name must be 1 to 100 characters")]
    InvalidOrganizationName,
    #[error("key name must be 1 to 50 characters")]
    InvalidKeyName,
    #[error("no organization has the id {0}")]
    NoSuchOrganization(Uuid),
    #[error("no dashboard user has the address {0}")]
    NoSuchUser(String),
    #[error("no live API key has the id {0}")]
    NoSuchKey(Uuid),
    #[error("rate and burst must each be a whole number from 1 to {max}", max = crate::rate_limit::MAX_RATE)]
    InvalidRateLimit,
    #[error("a quota must be a whole number of emails from 1 to {max}", max = crate::config::quotas::MAX_EMAIL_QUOTA)]
    InvalidQuota,
    #[error("--domain-id applies only to sending_access keys")]
    DomainOnFullAccess,
    #[error("organization {organization} has no domain with the id {domain}")]
    NoSuchDomain { organization: Uuid, domain: Uuid },
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    #[error("{0}")]
    Account(crate::accounts::AccountError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn create_organization(
    store: &Store,
    name: &str,
) -> Result<organization::Model, AdminError> {
    let name = organization_name(name)?;
    Ok(store.organizations().create(name).await?)
}

/// An organization's name: 1 to 100 characters, no control characters (trimmed).
pub fn organization_name(name: &str) -> Result<&str, AdminError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AdminError::InvalidOrganizationName);
    }
    Ok(name)
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
    let audit = opensend_store::repos::AuditContext::operator();
    let key = store
        .api_keys()
        .by(&audit)
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

/// Creates a dashboard user (`opensend admin create-user`); with `organization`, as its owner. An address
/// that already has an account is made owner of the organization instead (so `admin create-org`
/// organizations get owners), and `None` comes back as the user: their password is unchanged.
pub async fn create_user(
    store: &Store,
    email: &str,
    password: secrecy::SecretString,
    organization: Option<Uuid>,
) -> Result<(opensend_store::entities::user::Model, bool), AdminError> {
    use crate::accounts::{self, AccountError};
    let audit = opensend_store::repos::AuditContext::operator();
    let membership = organization.map(|id| (id, opensend_core::Role::Owner));
    match accounts::create_user(store, email, password, membership, &audit).await {
        Ok(user) => Ok((user, true)),
        Err(AccountError::Exists) => {
            let address = accounts::parse_address(email).map_err(AdminError::Account)?;
            let user = store
                .users()
                .find_by_email_key(&address.key)
                .await?
                .ok_or(AdminError::Account(AccountError::Exists))?;
            let Some(organization) = organization else {
                return Err(AdminError::Account(AccountError::Exists));
            };
            store
                .members()
                .add(organization, user.id, opensend_core::Role::Owner, &audit)
                .await
                .map_err(|e| match e {
                    StoreError::MissingReference(_) => AdminError::NoSuchOrganization(organization),
                    other => AdminError::Store(other),
                })?;
            Ok((user, false))
        }
        Err(AccountError::NoSuchOrganization) => Err(AdminError::NoSuchOrganization(
            organization.unwrap_or_default(),
        )),
        Err(e) => Err(AdminError::Account(e)),
    }
}

/// Sets a dashboard user's password (the operator's reset: there is no reset by email) and signs every
/// session of theirs out. The password gets the same checks as at sign-up.
pub async fn set_password(
    store: &Store,
    email: &str,
    password: secrecy::SecretString,
) -> Result<opensend_store::entities::user::Model, AdminError> {
    use crate::accounts;
    let address = accounts::parse_address(email).map_err(AdminError::Account)?;
    accounts::check_password(&password).map_err(AdminError::Account)?;
    let user = store
        .users()
        .find_by_email_key(&address.key)
        .await?
        .ok_or_else(|| AdminError::NoSuchUser(address.email.clone()))?;
    let hash = accounts::hash_password(password)
        .await
        .map_err(AdminError::Account)?;
    let audit = opensend_store::repos::AuditContext::operator();
    if store.users().set_password(user.id, hash, &audit).await? {
        Ok(user)
    } else {
        Err(AdminError::NoSuchUser(address.email))
    }
}

pub async fn revoke_api_key(store: &Store, id: Uuid) -> Result<(), AdminError> {
    if store
        .api_keys()
        .by(&opensend_store::repos::AuditContext::operator())
        .revoke_any(id)
        .await?
    {
        Ok(())
    } else {
        Err(AdminError::NoSuchKey(id))
    }
}

/// Whose rate limit `set_rate_limit` changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimitTarget {
    Organization(Uuid),
    ApiKey(Uuid),
}

/// Gives an organization (or one API key) its own rate limit, or with `None` returns it to the default
/// (for a key: no limit of its own, only its organization's). Takes effect on the next request on every
/// node, since the limit is read with the key on each request.
pub async fn set_rate_limit(
    store: &Store,
    target: RateLimitTarget,
    limit: Option<(u32, u32)>,
) -> Result<Option<Rate>, AdminError> {
    let rate = match limit {
        None => None,
        Some((per_second, burst)) => {
            Some(Rate::new(per_second, burst).ok_or(AdminError::InvalidRateLimit)?)
        }
    };
    // Rates are at most MAX_RATE (a million), so they fit the signed columns.
    let stored = rate.map(|r| RateLimitOverride {
        per_second: r.per_second.get() as i32,
        burst: r.burst.get() as i32,
    });
    match target {
        RateLimitTarget::Organization(id) => {
            if !store.organizations().set_rate_limit(id, stored).await? {
                return Err(AdminError::NoSuchOrganization(id));
            }
        }
        RateLimitTarget::ApiKey(id) => {
            if !store.api_keys().set_rate_limit_any(id, stored).await? {
                return Err(AdminError::NoSuchKey(id));
            }
        }
    }
    Ok(rate)
}

/// Sets an organization's own daily and monthly email quotas; `None` returns that one to the deployment
/// default (`QUOTA_DAILY_EMAILS`, `QUOTA_MONTHLY_EMAILS`).
pub async fn set_email_quotas(
    store: &Store,
    organization_id: Uuid,
    daily: Option<i64>,
    monthly: Option<i64>,
) -> Result<(), AdminError> {
    let valid = |q: Option<i64>| {
        q.is_none_or(|n| (1..=crate::config::quotas::MAX_EMAIL_QUOTA).contains(&n))
    };
    if !valid(daily) || !valid(monthly) {
        return Err(AdminError::InvalidQuota);
    }
    if store
        .organizations()
        .set_email_quotas(organization_id, daily, monthly)
        .await?
    {
        Ok(())
    } else {
        Err(AdminError::NoSuchOrganization(organization_id))
    }
}
