//! The error vocabulary every response speaks: Resend's error names and their HTTP status codes.
//!
//! The wire shape is `{"statusCode": 422, "name": "validation_error", "message": "…"}`; the SDKs read
//! `name` to decide what went wrong, so names are only ever taken from this list.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Body is not JSON at all.
    InvalidJson,
    /// Well-formed request whose values are wrong.
    ValidationError,
    /// A required field is absent.
    MissingRequiredField,
    /// A query or path parameter is malformed.
    InvalidParameter,
    /// The From address may not be used by this organization or key.
    InvalidFromAddress,
    /// An attachment cannot be used (bad base64, too large, a `path` that cannot be fetched).
    InvalidAttachment,
    InvalidIdempotencyKey,
    MissingApiKey,
    /// A machine route (`/jobs/*`, `/events/inbound`) without its bearer token, or with a wrong one.
    Unauthorized,
    RestrictedApiKey,
    InvalidApiKey,
    NotFound,
    MethodNotAllowed,
    InvalidIdempotentRequest,
    ConcurrentIdempotentRequests,
    /// The request (or its body) took longer than the listener allows.
    RequestTimeout,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimitExceeded,
    DailyQuotaExceeded,
    MonthlyQuotaExceeded,
    InternalServerError,
    ServiceUnavailable,
    /// The shared rate-limit store (Redis) cannot be reached and the deployment fails closed.
    RateLimitUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::ValidationError => "validation_error",
            ErrorCode::MissingRequiredField => "missing_required_field",
            ErrorCode::InvalidParameter => "invalid_parameter",
            ErrorCode::InvalidFromAddress => "invalid_from_address",
            ErrorCode::InvalidAttachment => "invalid_attachment",
            ErrorCode::InvalidIdempotencyKey => "invalid_idempotency_key",
            ErrorCode::MissingApiKey => "missing_api_key",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::RestrictedApiKey => "restricted_api_key",
            ErrorCode::InvalidApiKey => "invalid_api_key",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::InvalidIdempotentRequest => "invalid_idempotent_request",
            ErrorCode::ConcurrentIdempotentRequests => "concurrent_idempotent_requests",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::RateLimitExceeded => "rate_limit_exceeded",
            ErrorCode::DailyQuotaExceeded => "daily_quota_exceeded",
            ErrorCode::MonthlyQuotaExceeded => "monthly_quota_exceeded",
            ErrorCode::InternalServerError => "internal_server_error",
            ErrorCode::ServiceUnavailable => "service_unavailable",
            ErrorCode::RateLimitUnavailable => "rate_limit_unavailable",
        }
    }

    /// The HTTP status that goes with the name (Resend's mapping where Resend defines one).
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidJson | ErrorCode::InvalidIdempotencyKey => 400,
            ErrorCode::MissingApiKey | ErrorCode::RestrictedApiKey | ErrorCode::Unauthorized => 401,
            ErrorCode::InvalidApiKey => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::InvalidIdempotentRequest | ErrorCode::ConcurrentIdempotentRequests => 409,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::ValidationError
            | ErrorCode::MissingRequiredField
            | ErrorCode::InvalidParameter
            | ErrorCode::InvalidFromAddress
            | ErrorCode::InvalidAttachment => 422,
            ErrorCode::RateLimitExceeded
            | ErrorCode::DailyQuotaExceeded
            | ErrorCode::MonthlyQuotaExceeded => 429,
            ErrorCode::InternalServerError => 500,
            ErrorCode::ServiceUnavailable | ErrorCode::RateLimitUnavailable => 503,
        }
    }
}
