//! The one error type handlers return, rendered as Resend's error JSON.

use std::borrow::Cow;
use std::panic::Location;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use opensend_core::ErrorCode;
use opensend_store::StoreError;
use sea_orm_compat::is_unavailable;
use serde::Serialize;

/// An error on its way to the client. Server-side failures log their cause and the place they were raised
/// (`#[track_caller]`, so a `?` names its own line); the client sees a generic message.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: Cow<'static, str>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "statusCode")]
    status_code: u16,
    name: &'static str,
    message: &'a str,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::ValidationError, message)
    }

    /// The answer for a resource that does not exist *for this organization*.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// A failure that is ours, not the client's: logged with its cause and location, reported as a 500.
    #[track_caller]
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let at = Location::caller();
        tracing::error!(error = %cause, at = %at, "internal error");
        Self {
            code: ErrorCode::InternalServerError,
            message: Cow::Borrowed("An unexpected error occurred; it has been logged."),
        }
    }

    /// The database is unreachable or saturated: retrying later may work.
    #[track_caller]
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        let at = Location::caller();
        tracing::warn!(error = %cause, at = %at, "database unavailable");
        Self {
            code: ErrorCode::ServiceUnavailable,
            message: Cow::Borrowed("The service is temporarily unavailable; try again shortly."),
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<StoreError> for ApiError {
    #[track_caller]
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::IdempotencyConflict => ApiError::new(
                ErrorCode::ConcurrentIdempotentRequests,
                "Another request with this Idempotency-Key finished first; retry to get its response.",
            ),
            StoreError::Database(db) if is_unavailable(db) => ApiError::unavailable(error),
            _ => ApiError::internal(error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            status_code: status.as_u16(),
            name: self.code.as_str(),
            message: &self.message,
        };
        (status, Json(body)).into_response()
    }
}

/// Telling "the database is down or busy" apart from "the query is wrong".
mod sea_orm_compat {
    use opensend_store::DbErr;

    pub fn is_unavailable(error: &DbErr) -> bool {
        matches!(error, DbErr::ConnectionAcquire(_) | DbErr::Conn(_))
    }
}
