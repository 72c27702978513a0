//! Who may send as whom: the From check made when an email is accepted.
//!
//! The rule: the From domain must be a verified sending domain of the calling organization (and, for a
//! key restricted to one domain, that domain). In `DELIVERY=capture` nothing leaves the machine, so any
//! From is accepted and the email is marked as sent from an unverified domain.

use opensend_core::{EmailAddress, ErrorCode};
use uuid::Uuid;

use crate::auth::ApiKeyContext;
use crate::config::Delivery;
use crate::error::ApiError;
use crate::state::AppState;

/// The outcome of the From check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendingIdentity {
    /// The verified domain the message is signed for.
    pub domain_id: Option<Uuid>,
    /// Accepted only because delivery is `capture`.
    pub unverified: bool,
}

pub async fn identity_for(
    state: &AppState,
    caller: &ApiKeyContext,
    from: &EmailAddress,
) -> Result<SendingIdentity, ApiError> {
    let _ = caller;
    if state.config.delivery == Delivery::Capture {
        return Ok(SendingIdentity {
            domain_id: None,
            unverified: true,
        });
    }
    Err(ApiError::new(
        ErrorCode::InvalidFromAddress,
        format!(
            "The domain `{}` is not a verified sending domain of your organization.",
            from.domain()
        ),
    ))
}
