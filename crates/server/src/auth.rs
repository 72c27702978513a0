//! API key authentication: `Authorization: Bearer os_…`.
//!
//! The key is looked up by the SHA-256 of the token, through the process's key cache (keyed by that hash,
//! never the token; `AUTH_CACHE_TTL_MS`). A key revoked through this process stops working on its very next
//! request; one revoked through another process, within `CACHE_EPOCH_CHECK_INTERVAL_MS` (the revocation
//! bumps the cache epoch, which every process re-reads that often; see `opensend_store::CacheSettings`). Outcomes, with Resend's codes:
//! no or non-Bearer header → 401 `missing_api_key`; unknown, malformed or revoked key → 403
//! `invalid_api_key`; a `sending_access` key on a route that needs full access → 401 `restricted_api_key`.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use opensend_core::{ApiKeyToken, ErrorCode, Permission};
use opensend_store::repos::{Actor, ApiKeys, AuditContext, RateLimitOverride};
use uuid::Uuid;

use crate::error::ApiError;
use crate::rate_limit::Rate;
use crate::state::AppState;

/// Who is calling: the key and the organization it belongs to.
#[derive(Clone, Debug)]
pub struct ApiKeyContext {
    pub key_id: Uuid,
    pub organization_id: Uuid,
    pub permission: Permission,
    /// For `sending_access` keys restricted to one sending domain.
    pub domain_id: Option<Uuid>,
    /// The key's own rate limit, if the operator gave it one (`opensend admin set-rate-limit --key`).
    pub key_rate_limit: Option<Rate>,
    /// The organization's rate limit override, if any; otherwise the deployment default applies.
    pub organization_rate_limit: Option<Rate>,
    /// The organization's email quotas per UTC day and month, if it has its own; otherwise the deployment
    /// defaults apply.
    pub organization_daily_email_quota: Option<i64>,
    pub organization_monthly_email_quota: Option<i64>,
    /// The key as the audit log names it: its name and token prefix.
    pub key_label: String,
}

/// Who is calling and from where, for the audit log: the API key (see [`authenticate`]) and the client
/// address as the rate limiter works it out.
pub struct Audited(pub AuditContext);

impl FromRequestParts<AppState> for Audited {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let context = authenticate(parts, state).await?;
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|axum::extract::ConnectInfo(addr)| *addr)
            .unwrap_or(std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
        let ip = crate::rate_limit::client_ip::client_ip(
            peer,
            &parts.headers,
            state.config.rate_limits.trusted_proxy_hops,
        );
        Ok(Audited(AuditContext {
            actor: Actor::ApiKey {
                id: context.key_id,
                label: context.key_label,
            },
            client_ip: Some(ip.to_string()),
        }))
    }
}

/// A caller whose key has `full_access`: every route except the send routes requires it.
pub struct FullAccess(pub ApiKeyContext);

impl FromRequestParts<AppState> for FullAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let context = authenticate(parts, state).await?;
        if context.permission != Permission::FullAccess {
            return Err(ApiError::new(
                ErrorCode::RestrictedApiKey,
                "This API key is restricted to only send emails.",
            ));
        }
        Ok(FullAccess(context))
    }
}

/// Any valid key: the send routes accept `sending_access` keys as well.
pub struct SendAccess(pub ApiKeyContext);

impl FromRequestParts<AppState> for SendAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state).await.map(SendAccess)
    }
}

/// Resolves the caller's key (once per request: the result is kept in the request's extensions, where the
/// rate-limit middleware leaves it for the handlers' extractors).
pub(crate) async fn authenticate(
    parts: &mut Parts,
    state: &AppState,
) -> Result<ApiKeyContext, ApiError> {
    if let Some(context) = parts.extensions.get::<ApiKeyContext>() {
        return Ok(context.clone());
    }
    let context = authenticate_key(parts, state).await?;
    if let Some(caller) = parts.extensions.get::<crate::request_log::CallerSlot>() {
        caller.set(context.organization_id, context.key_id);
    }
    Ok(context)
}

async fn authenticate_key(parts: &mut Parts, state: &AppState) -> Result<ApiKeyContext, ApiError> {
    let token = bearer_token(parts)?;
    let context = context_for_token(state, token).await?;
    parts.extensions.insert(context.clone());
    Ok(context)
}

/// The key behind `token` (an `os_…` API key), whatever carried it: the `Authorization` header of the API,
/// or the password of an SMTP `AUTH` (`crate::smtp::auth`). Unknown, malformed or revoked → 403
/// `invalid_api_key`.
pub(crate) async fn context_for_token(
    state: &AppState,
    token: &str,
) -> Result<ApiKeyContext, ApiError> {
    let invalid = || ApiError::new(ErrorCode::InvalidApiKey, "API key is invalid.");
    let token = ApiKeyToken::parse(token).map_err(|_| invalid())?;
    let (key, organization) = state
        .store
        .api_keys()
        .find_active_with_organization_by_hash_cached(&token.hash())
        .await?
        .ok_or_else(invalid)?;
    let permission: Permission = key.permission.parse().map_err(ApiError::internal)?;
    let context = ApiKeyContext {
        key_id: key.id,
        organization_id: key.organization_id,
        permission,
        domain_id: key.domain_id,
        key_rate_limit: stored_rate(key.rate_limit_per_second, key.rate_limit_burst),
        organization_rate_limit: stored_rate(
            organization.rate_limit_per_second,
            organization.rate_limit_burst,
        ),
        organization_daily_email_quota: organization.daily_email_quota,
        organization_monthly_email_quota: organization.monthly_email_quota,
        key_label: format!("{} ({})", key.name, key.token_prefix),
    };
    if ApiKeys::use_is_stale(&key) {
        // Recording the use must not slow the request down or fail it.
        let store = state.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.api_keys().record_use(&key).await {
                tracing::warn!(error = %e, "could not record API key use");
            }
        });
    }
    Ok(context)
}

/// A stored override; one that is out of range (written around `opensend admin`) is ignored with a warning
/// rather than failing every request of the organization.
fn stored_rate(per_second: Option<i32>, burst: Option<i32>) -> Option<Rate> {
    let stored = RateLimitOverride::from_columns(per_second, burst)?;
    let rate = Rate::from_stored(stored.per_second, stored.burst);
    if rate.is_none() {
        tracing::warn!(?stored, "ignoring an out-of-range stored rate limit");
    }
    rate
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let missing = || {
        ApiError::new(
            ErrorCode::MissingApiKey,
            "Missing API key in the authorization header. Include the following header: \
             Authorization: Bearer YOUR_API_KEY",
        )
    };
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(missing)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim())
}
