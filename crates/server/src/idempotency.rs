//! `Idempotency-Key` on the send routes: the same key with the same body replays the first response for
//! 24 hours; the same key with another body is a 409 `invalid_idempotent_request`; while the first request
//! is still running, a 409 `concurrent_idempotent_requests`. Keys are per organization.

use std::future::Future;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::TimeDelta;
use opensend_core::ErrorCode;
use opensend_store::repos::emails::IdempotentResponse;
use opensend_store::repos::idempotency::Claim;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

pub const HEADER: &str = "idempotency-key";
/// Longest key accepted, as Resend.
pub const MAX_KEY_CHARS: usize = 256;

/// The key of a request, if it sent one: 1 to 256 printable ASCII characters, else a 400.
pub fn key_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| {
            !k.is_empty()
                && k.len() <= MAX_KEY_CHARS
                && k.bytes().all(|b| (0x20..0x7f).contains(&b))
        })
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidIdempotencyKey,
                "The Idempotency-Key header must be 1 to 256 printable ASCII characters.",
            )
        })?;
    Ok(Some(key.to_owned()))
}

/// Fingerprint of a request: the route and its exact body.
pub fn fingerprint(route: &str, body: &[u8]) -> [u8; 32] {
    let mut fingerprint = Fingerprint::new(route);
    fingerprint.update(body);
    fingerprint.finish()
}

/// The same fingerprint computed piece by piece, for a body read as it streams in.
pub struct Fingerprint(Sha256);

impl Fingerprint {
    pub fn new(route: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(route.as_bytes());
        hasher.update([0]);
        Self(hasher)
    }

    /// Adds the next bytes of the body.
    pub fn update(&mut self, body: &[u8]) {
        self.0.update(body);
    }

    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// Runs `work` once per key. `work` receives the record to complete inside its own transaction (so the
/// response is stored atomically with what it describes) and returns the status and JSON body, or the
/// response that refuses the request (which does not use the key up).
pub async fn run<F, Fut>(
    state: &AppState,
    organization_id: Uuid,
    key: Option<String>,
    fingerprint: [u8; 32],
    work: F,
) -> Response
where
    F: FnOnce(Option<IdempotentRecord>) -> Fut,
    Fut: Future<Output = Result<(StatusCode, String), Response>>,
{
    let Some(key) = key else {
        return match work(None).await {
            Ok((status, body)) => json_response(status, body, false),
            Err(refusal) => refusal,
        };
    };
    let store = &state.store;
    let abandoned_after =
        TimeDelta::from_std(state.config.listen.idempotency_in_flight).unwrap_or(TimeDelta::MAX);
    let claim = match store
        .idempotency()
        .claim(organization_id, &key, fingerprint, abandoned_after)
        .await
    {
        Ok(claim) => claim,
        Err(e) => return ApiError::from(e).into_response(),
    };
    match claim {
        Claim::Proceed(record_id) => match work(Some(IdempotentRecord { record_id })).await {
            Ok((status, body)) => json_response(status, body, false),
            Err(refusal) => {
                // A refused or failed request does not use the key up: the client may fix it and retry.
                if let Err(e) = store.idempotency().release(record_id).await {
                    tracing::warn!(error = %e, "could not release an idempotency key");
                }
                refusal
            }
        },
        Claim::Replay { status, body } => json_response(
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            body,
            true,
        ),
        Claim::Mismatch => ApiError::new(
            ErrorCode::InvalidIdempotentRequest,
            "This Idempotency-Key was already used with a different request body.",
        )
        .into_response(),
        Claim::InFlight => ApiError::new(
            ErrorCode::ConcurrentIdempotentRequests,
            "A request with this Idempotency-Key is still being processed; retry shortly.",
        )
        .into_response(),
    }
}

/// The record a first request completes.
#[derive(Clone, Copy, Debug)]
pub struct IdempotentRecord {
    record_id: Uuid,
}

impl IdempotentRecord {
    pub fn response(self, status: StatusCode, body: &str) -> IdempotentResponse {
        IdempotentResponse {
            record_id: self.record_id,
            status: status.as_u16(),
            body: body.to_owned(),
        }
    }
}

fn json_response(status: StatusCode, body: String, replayed: bool) -> Response {
    let mut response = (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}
