//! Who may send as whom: the From check made when an email is accepted, and the signing identity looked up
//! again when it is delivered.
//!
//! The rule (see `domains::may_send_as`): the From domain must be a verified sending domain of the calling
//! organization (and, for a key restricted to one domain, that domain). In `DELIVERY=capture` nothing leaves
//! the machine, so any From is accepted and the email is marked as sent from an unverified domain.

use opensend_core::{EmailAddress, ErrorCode};
use uuid::Uuid;

use crate::auth::ApiKeyContext;
use crate::domains::{self, Refusal, SendAsError, Unverified};
use crate::error::ApiError;
use crate::state::AppState;

/// The outcome of the From check at accept time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendingIdentity {
    /// The verified domain the message is signed for.
    pub domain_id: Option<Uuid>,
    /// Accepted only because delivery is `capture`.
    pub unverified: bool,
}

/// The From check at accept time: [`domains::sending_domain`] under this deployment's rule. Only the
/// domain is read; its DKIM keys are read and opened when the email is delivered, not on every accept.
pub async fn identity_for(
    state: &AppState,
    caller: &ApiKeyContext,
    from: &EmailAddress,
) -> Result<SendingIdentity, ApiError> {
    match domains::sending_domain(
        state,
        caller.organization_id,
        from.as_str(),
        caller.domain_id,
        Unverified::for_delivery(&state.config),
    )
    .await
    {
        Ok(domain) => Ok(SendingIdentity {
            unverified: domain.is_none(),
            domain_id: domain.map(|d| d.id),
        }),
        Err(SendAsError::Refused(refusal)) => Err(refused(refusal)),
        Err(SendAsError::Domain(e)) => Err(ApiError::internal(e)),
    }
}

fn refused(refusal: Refusal) -> ApiError {
    ApiError::new(ErrorCode::InvalidFromAddress, refusal.to_string())
}
