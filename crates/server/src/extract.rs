//! Request extractors whose failures speak our error format instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use opensend_core::ErrorCode;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;

/// A JSON body. The `Content-Type` is not insisted on (clients differ); an empty body reads as `{}`.
/// Syntax errors are 400 `invalid_json`; well-formed JSON of the wrong shape is a 422 naming the field.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        parse_json(or_empty_object(&bytes)).map(ApiJson)
    }
}

/// A blank body reads as `{}`, so a missing required field is named in the error rather than reported as
/// invalid JSON.
pub fn or_empty_object(body: &[u8]) -> &[u8] {
    if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    }
}

/// Parses a JSON document into `T`, with our error vocabulary.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(json_error)
}

/// A JSON parse failure in our error vocabulary: syntax is 400 `invalid_json`, a wrong shape a 422.
pub fn json_error(e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            ErrorCode::InvalidJson,
            format!("Request body must be valid JSON: {e}"),
        ),
        Category::Data => {
            let text = e.to_string();
            let code = if text.starts_with("missing field") {
                ErrorCode::MissingRequiredField
            } else {
                ErrorCode::ValidationError
            };
            ApiError::new(code, text)
        }
    }
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            "Request body is larger than this route accepts.",
        )
    } else {
        unreadable_body(rejection.body_text())
    }
}

/// The 400 for a body that broke off or could not be decoded while it was read.
pub fn unreadable_body(reason: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidJson,
        format!("Request body could not be read: {reason}"),
    )
}

/// Query parameters; a malformed one is a 422.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e: QueryRejection| ApiError::new(ErrorCode::InvalidParameter, e.body_text()))
    }
}

/// The one id in a route's path, e.g. `/api-keys/{id}`. Anything that is not a UUID is a 422.
pub struct PathId(pub Uuid);

impl<S> FromRequestParts<S> for PathId
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e: PathRejection| {
                ApiError::new(ErrorCode::InvalidParameter, e.body_text())
            })?;
        Uuid::try_parse(&raw).map(PathId).map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidParameter,
                "The id in the path must be a valid UUID.",
            )
        })
    }
}

/// The two ids of a nested route, e.g. `/webhooks/{id}/deliveries/{delivery_id}`.
pub struct PathIds(pub Uuid, pub Uuid);

impl<S> FromRequestParts<S> for PathIds
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((first, second)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e: PathRejection| {
                ApiError::new(ErrorCode::InvalidParameter, e.body_text())
            })?;
        match (Uuid::try_parse(&first), Uuid::try_parse(&second)) {
            (Ok(a), Ok(b)) => Ok(PathIds(a, b)),
            _ => Err(ApiError::new(
                ErrorCode::InvalidParameter,
                "The ids in the path must be valid UUIDs.",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
    }

    #[test]
    fn json_errors_are_classified() {
        let e = parse_json::<Body>(b"{nope").unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidJson);
        let e = parse_json::<Body>(b"{}").unwrap_err();
        assert_eq!(e.code(), ErrorCode::MissingRequiredField);
        assert!(e.message().contains("name"));
        let e = parse_json::<Body>(br#"{"name": 5}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::ValidationError);
    }
}
