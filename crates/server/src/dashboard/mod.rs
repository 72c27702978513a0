//! The dashboard: server-rendered pages under `/dashboard` on the public port, where people sign in and
//! work in their organizations by role.
//!
//! One module per area. Handlers hold no SQL and repeat none of the API's rules: they call the same store
//! repositories and the same server functions the API handlers call, always with the organization of the
//! session, so another organization's ids are a 404 exactly as in the API. Members may do everything but
//! manage members; admins also manage members and invitations and read the audit log; owners may also delete
//! the organization ([`opensend_core::Role`]).
//!
//! Every response carries a strict Content-Security-Policy (`default-src 'self'`, no inline script or
//! style) and may not be framed, except the email preview ([`emails`]), which is framed by our own page
//! inside a sandbox and has a policy of its own. Templates (askama) and assets are compiled into the
//! binary.

mod api_keys;
mod assets;
mod audience;
mod audit;
mod auth;
mod domains;
mod emails;
pub mod error;
mod organizations;
mod overview;
pub mod page;
mod receiving;
pub mod session;
mod settings;
mod suppressions;
mod table;
mod webhooks;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderValue;
use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// The policy of every dashboard page: only our own scripts, styles, images and forms; never framed.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(assets::routes())
        .merge(auth::routes())
        .merge(organizations::routes())
        .merge(settings::routes())
        .merge(overview::routes())
        .merge(emails::routes())
        .merge(domains::routes())
        .merge(api_keys::routes())
        .merge(webhooks::routes())
        .merge(suppressions::routes())
        .merge(receiving::routes())
        .merge(audience::routes())
        .merge(audit::routes())
        .fallback(|| async { error::DashError::NotFound.into_response() })
        .layer(DefaultBodyLimit::max(session::FORM_LIMIT));
    let routes = crate::http::with_request_timeout(routes, state.config.listen.request_timeout);
    routes
        .with_state(state)
        .layer(middleware::from_fn(security_headers))
}

/// Adds the dashboard's security headers to every response that did not set its own.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .entry(CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(PAGE_CSP));
    headers
        .entry(X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Invitation links carry their token in the path: never send it on to another site.
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
