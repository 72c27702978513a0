//! Bearer tokens of the machine routes: `INGESTER_JOB_TOKEN` for `/jobs/*`, `INGESTER_INBOUND_TOKEN` for
//! `/events/inbound`.
//!
//! Both sides are hashed with SHA-256 and the digests compared in constant time, so neither the content nor
//! the length of the configured token leaks through timing. A route whose token is not configured refuses
//! every request.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use opensend_core::ErrorCode;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// Whether the request's `Authorization: Bearer …` equals `expected`.
pub fn bearer_matches(parts: &Parts, expected: Option<&SecretString>) -> Result<(), ApiError> {
    let Some(expected) = expected else {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "This route is disabled: its token is not configured.",
        ));
    };
    let presented = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "Missing bearer token: send `Authorization: Bearer <token>`.",
            )
        })?;
    let equal = Sha256::digest(presented.as_bytes())
        .ct_eq(&Sha256::digest(expected.expose_secret().as_bytes()));
    if bool::from(equal) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Unauthorized,
            "Invalid bearer token.",
        ))
    }
}

/// Proof that the request carried `INGESTER_JOB_TOKEN`.
pub struct JobToken;

impl FromRequestParts<AppState> for JobToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        bearer_matches(parts, state.config.secrets.ingester_job_token.as_ref())?;
        Ok(JobToken)
    }
}

/// Proof that the request carried `INGESTER_INBOUND_TOKEN`. A deployment without one (production may leave
/// it unset) refuses every inbound request; a local one always has one (generated at start).
pub struct InboundToken;

impl FromRequestParts<AppState> for InboundToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        bearer_matches(parts, state.config.secrets.ingester_inbound_token.as_ref())?;
        Ok(InboundToken)
    }
}
