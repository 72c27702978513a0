//! The public listener's tracking routes, answered without a key or a cookie:
//!
//! - `GET /t/o/{token}`: the open pixel, a 1×1 transparent GIF that is never cached;
//! - `GET /t/c/{token}`: a tracked link, `302` to the destination its signed token carries.
//!
//! A token this deployment did not sign (altered, made up, of the other kind) is a `404` and nothing is
//! recorded; no URL from the request itself is ever redirected to. A valid token is always answered (the pixel,
//! the redirect), even if the email was deleted since or the recording fails, since the reader did nothing
//! wrong. What is recorded as an open or a click (`email.opened`, `email.clicked`):
//!
//! - not a `HEAD` request, nor one that says it is a prefetch (`Purpose: prefetch`, `Sec-Purpose: prefetch`,
//!   `X-Moz: prefetch`), nor one from a known link scanner or preview fetcher (a `User-Agent` naming a bot,
//!   crawler, spider or link preview, or Microsoft Office's link checker, Barracuda, Proofpoint, Mimecast);
//! - image proxies that fetch on the reader's behalf when the email is opened (Gmail's, Apple Mail's privacy
//!   protection, which may fetch at delivery) are counted as opens, as every tracking pixel counts them;
//! - repeats within a short window are recorded once (`opensend_store::repos::engagement`).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use opensend_store::repos::engagement::{Engagement, Reader};

use super::TrackedEmail;
use crate::rate_limit::client_ip::request_ip;
use crate::state::AppState;

/// A 1×1 transparent GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// `User-Agent` fragments (lower case) of link scanners and preview fetchers, whose requests are not a reader.
const NOT_A_READER: &[&str] = &[
    "bot",
    "crawler",
    "spider",
    "preview",
    "facebookexternalhit",
    "whatsapp",
    "microsoft office",
    "ms-office",
    "barracuda",
    "proofpoint",
    "mimecast",
];

/// Longest `User-Agent` kept with an open or click.
const MAX_USER_AGENT: usize = 512;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/t/o/{token}", get(open))
        .route("/t/c/{token}", get(click))
        .with_state(state)
}

async fn open(State(state): State<AppState>, Path(token): Path<String>, parts: Parts) -> Response {
    let Some(email) = state
        .tracker
        .as_ref()
        .and_then(|tracker| tracker.read_open(&token))
    else {
        return not_found();
    };
    if counts(&parts) {
        record(&state, email, Engagement::Open, &parts).await;
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/gif")),
            (header::CACHE_CONTROL, no_store()),
        ],
        PIXEL,
    )
        .into_response()
}

async fn click(State(state): State<AppState>, Path(token): Path<String>, parts: Parts) -> Response {
    let Some((email, url)) = state
        .tracker
        .as_ref()
        .and_then(|tracker| tracker.read_click(&token))
    else {
        return not_found();
    };
    let Ok(location) = HeaderValue::from_str(url.as_str()) else {
        return not_found();
    };
    if counts(&parts) {
        let engagement = Engagement::Click {
            url: url.to_string(),
        };
        record(&state, email, engagement, &parts).await;
    }
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, no_store()),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
    )
        .into_response()
}

/// Whether the request is a reader's (see the module documentation).
fn counts(parts: &Parts) -> bool {
    if parts.method != Method::GET {
        return false;
    }
    let headers = &parts.headers;
    let says = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("prefetch"))
    };
    if says("purpose") || says("sec-purpose") || says("x-moz") {
        return false;
    }
    let agent = user_agent(headers).to_ascii_lowercase();
    !NOT_A_READER.iter().any(|fragment| agent.contains(fragment))
}

fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .take(MAX_USER_AGENT)
        .collect()
}

async fn record(state: &AppState, email: TrackedEmail, engagement: Engagement, parts: &Parts) {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
        .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
    let reader = Reader {
        ip_address: request_ip(
            peer,
            &parts.headers,
            state.config.rate_limits.trusted_proxy_hops,
        )
        .to_string(),
        user_agent: user_agent(&parts.headers),
    };
    match state
        .store
        .engagements()
        .record(
            email.organization_id,
            email.email_id,
            engagement,
            &reader,
            Utc::now(),
        )
        .await
    {
        Ok(_) => state.webhook_wakeup.notify_one(),
        // The reader still gets the pixel or the redirect.
        Err(e) => {
            tracing::warn!(email_id = %email.email_id, error = %e, "recording an open or click failed")
        }
    }
}

fn no_store() -> HeaderValue {
    HeaderValue::from_static("no-store, no-cache, must-revalidate, private")
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, no_store())],
        "This link is not valid.",
    )
        .into_response()
}
