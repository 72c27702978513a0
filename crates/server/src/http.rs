//! What every router of ours shares: request ids and request logs, JSON errors for anything that goes wrong
//! outside a handler (unknown route, wrong method, oversize body, panic), body size limits, and the limits
//! every listener puts on each request: how long it may take (`REQUEST_TIMEOUT_SECONDS`, 408), how long a
//! client may pause while sending its body (`BODY_READ_TIMEOUT_SECONDS`), and how many requests are handled
//! at once (`MAX_CONCURRENT_REQUESTS`; beyond it, 503 at once rather than an ever longer queue).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use opensend_core::ErrorCode;
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tracing::Instrument;

use crate::error::ApiError;
use crate::rate_limit;
use crate::state::AppState;

/// Body limit of every route that does not set its own.
pub const BODY_LIMIT_DEFAULT: usize = 1024 * 1024;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Which rate limits a router applies (see `rate_limit::middleware`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limiting {
    /// Per organization and key for valid keys, per client address otherwise.
    PublicApi,
    /// Per source address.
    Ingester,
}

/// Applies the shared fallbacks and layers to `routes` and binds the state. The rate limit wraps the
/// fallbacks too (unknown routes cost like any other request) and sits inside the request id, logging and
/// JSON-error layers, so a 429 is logged and carries its request id like every other response.
pub fn finish(routes: Router<AppState>, state: AppState, limiting: Limiting) -> Router {
    let routes = limited(routes, state.clone(), limiting);
    listener(routes, &state)
}

/// The routes of one API with their fallbacks, state, rate limit and JSON errors: everything of
/// [`finish`] but the layers that belong to the listener ([`listener`]), so they can share a listener with
/// other routes (the dashboard).
pub fn limited(routes: Router<AppState>, state: AppState, limiting: Limiting) -> Router {
    let routes = routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    let routes = match limiting {
        Limiting::PublicApi => routes.layer(middleware::from_fn_with_state(
            state,
            rate_limit::middleware::api,
        )),
        Limiting::Ingester => routes.layer(middleware::from_fn_with_state(
            state,
            rate_limit::middleware::ingester,
        )),
    };
    routes.layer(middleware::from_fn(json_errors))
}

/// What every listener puts around all its routes: the body-read timeout, the concurrency limit, panics
/// answered as 500, and the request id and log line.
pub fn listener(routes: Router, state: &AppState) -> Router {
    let listen = &state.config.listen;
    let in_flight = Arc::new(Semaphore::new(listen.max_concurrent_requests));
    let body_read_timeout = listen.body_read_timeout;
    routes
        .layer(RequestBodyTimeoutLayer::new(body_read_timeout))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            concurrency_limit(in_flight.clone(), request, next)
        }))
        .layer(middleware::from_fn(json_errors))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("a request handler panicked").into_response()
        }))
        .layer(middleware::from_fn(request_context))
}

/// Answers 408 for a request that is not done within `timeout` (body read, handler and answer). Applied per
/// router, so a route that legitimately takes longer (the ingester's job runs) can have its own.
pub fn with_request_timeout(routes: Router<AppState>, timeout: Duration) -> Router<AppState> {
    routes.layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        timeout,
    ))
}

/// At most as many requests at once as `in_flight` has permits; the next is answered 503 at once.
async fn concurrency_limit(in_flight: Arc<Semaphore>, request: Request, next: Next) -> Response {
    match in_flight.try_acquire_owned() {
        Ok(permit) => {
            let response = next.run(request).await;
            drop(permit);
            response
        }
        Err(_) => {
            tracing::warn!("refusing a request: MAX_CONCURRENT_REQUESTS are being handled already");
            ApiError::new(
                ErrorCode::ServiceUnavailable,
                "The server is handling as many requests as it can; try again shortly.",
            )
            .into_response()
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "The requested endpoint does not exist.",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "Method is not allowed for the requested path.",
    )
}

/// Gives the request an id (answered in `x-request-id`; an id sent by the client is not trusted) and logs
/// one line per request: method, path (never the query or headers, which can carry secrets), status and
/// duration.
async fn request_context(request: Request, next: Next) -> Response {
    let request_id = uuid::Uuid::now_v7().to_string();
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            duration_us = started.elapsed().as_micros() as u64,
            "request finished"
        );
    });
    response
}

/// Every error leaves as our JSON envelope, including the ones produced by layers and axum itself.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || is_json(&response)
        || is_html(&response)
    {
        return response;
    }
    let (name, message) = match status {
        StatusCode::NOT_FOUND => (
            ErrorCode::NotFound,
            "The requested endpoint does not exist.",
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            ErrorCode::MethodNotAllowed,
            "Method is not allowed for the requested path.",
        ),
        StatusCode::REQUEST_TIMEOUT => (
            ErrorCode::RequestTimeout,
            "The request took longer than this server allows; try again.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            ErrorCode::PayloadTooLarge,
            "Request body is larger than this route accepts.",
        ),
        StatusCode::TOO_MANY_REQUESTS => (
            ErrorCode::RateLimitExceeded,
            "Too many requests; retry later.",
        ),
        StatusCode::SERVICE_UNAVAILABLE => (
            ErrorCode::ServiceUnavailable,
            "The service is temporarily unavailable; try again shortly.",
        ),
        s if s.is_server_error() => (
            ErrorCode::InternalServerError,
            "An unexpected error occurred; it has been logged.",
        ),
        _ => (
            ErrorCode::ValidationError,
            "The request could not be processed.",
        ),
    };
    let body = serde_json::json!({
        "statusCode": status.as_u16(),
        "name": name.as_str(),
        "message": message,
    });
    let mut replaced = Response::new(Body::from(body.to_string()));
    *replaced.status_mut() = status;
    let headers = replaced.headers_mut();
    for (key, value) in response.headers() {
        if key != CONTENT_TYPE && key != axum::http::header::CONTENT_LENGTH {
            headers.insert(key.clone(), value.clone());
        }
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    replaced
}

/// The dashboard answers its errors as pages.
fn is_html(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}
