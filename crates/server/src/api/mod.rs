//! The public API: one module per resource, each served at the root (`/api-keys`, as Resend's SDKs call it)
//! and under `/api` (`/api/api-keys`, as OpenSend's own clients do).

pub(crate) mod api_keys;
mod attachments;
pub(crate) mod audience;
mod audiences;
mod broadcasts;
mod contact_imports;
mod contact_properties;
mod contacts;
pub(crate) mod domains;
pub mod emails;
mod event_log;
pub(crate) mod health;
pub mod list;
mod logs;
pub mod openapi;
mod receiving;
mod segments;
pub(crate) mod suppressions;
pub(crate) mod templates;
mod topics;
pub(crate) mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use chrono::{DateTime, SecondsFormat, Utc};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::{self, BODY_LIMIT_DEFAULT, Limiting};
use crate::state::AppState;

/// The routes of one mount point, with their OpenAPI operations.
fn resources() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::health))
        .routes(routes!(openapi::document))
        .merge(api_keys::routes())
        .merge(emails::routes())
        .merge(receiving::routes())
        .merge(domains::routes())
        .merge(webhooks::routes())
        .merge(event_log::routes())
        .merge(logs::routes())
        .merge(suppressions::routes())
        .merge(contact_imports::routes())
        .merge(contacts::routes())
        .merge(contact_properties::routes())
        .merge(segments::routes())
        .merge(audiences::routes())
        .merge(topics::routes())
        .merge(templates::routes())
        .merge(broadcasts::routes())
}

/// The public API router with every cross-cutting layer applied.
pub fn router(state: AppState) -> Router {
    http::listener(routes(state.clone()), &state)
}

/// The public API's routes with their own layers (rate limits, JSON errors, timeouts), without the
/// listener's ([`http::listener`]): the public listener serves the dashboard beside them.
pub fn routes(state: AppState) -> Router {
    let (root, _) = resources().split_for_parts();
    let (mirror, _) = resources().split_for_parts();
    let routes = Router::new()
        .merge(root)
        .nest("/api", mirror)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_DEFAULT));
    let routes = http::with_request_timeout(routes, state.config.listen.request_timeout);
    let routes = http::limited(routes, state.clone(), Limiting::PublicApi);
    if !state.config.jobs.request_log {
        return routes;
    }
    // Around the rate limit (which authenticates), so a refused request of a known key is logged too.
    routes.layer(axum::middleware::from_fn_with_state(
        state.request_log.clone(),
        crate::request_log::record,
    ))
}

/// Timestamps on the wire: RFC 3339 in UTC with milliseconds (`2026-11-27T08:45:27.123Z`).
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}
