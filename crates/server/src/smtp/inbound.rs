//! Inbound mail over SMTP (`MX_PORT`): a recipient is taken only when some organization receives mail for
//! its domain, so the port is never an open relay; the message goes into the receiving pipeline of
//! `POST /events/inbound` (stored once per receiving organization, `email.received` announced).

use axum::body::Bytes;
use opensend_core::EmailAddress;

use super::reply::Reply;
use crate::error::ApiError;
use crate::ingester::inbound::{receives_for, store_received};
use crate::state::AppState;

/// Whether `RCPT TO` may name `address`.
pub async fn accepts(state: &AppState, address: &EmailAddress) -> Result<bool, ApiError> {
    receives_for(state, address.as_str()).await
}

/// Stores the message for its recipients; the reply to the `DATA`.
pub async fn deliver(state: &AppState, recipients: &[EmailAddress], raw: &[u8]) -> Reply {
    let recipients: Vec<String> = recipients.iter().map(|r| r.as_str().to_owned()).collect();
    match store_received(state, Bytes::copy_from_slice(raw), &recipients).await {
        Ok(answer) => {
            let ids: Vec<&str> = answer
                .get("emails")
                .and_then(|e| e.as_array())
                .map(|emails| {
                    emails
                        .iter()
                        .filter_map(|e| e.get("id").and_then(|id| id.as_str()))
                        .collect()
                })
                .unwrap_or_default();
            Reply::new(250, "2.0.0", format!("OK id={}", ids.join(",")))
        }
        Err(e) if e.code().status() >= 500 => Reply::new(
            451,
            "4.3.0",
            "The message could not be stored now; try again.",
        ),
        Err(e) => Reply::new(554, "5.6.0", e.message()),
    }
}
