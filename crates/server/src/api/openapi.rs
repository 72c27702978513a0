//! The API's OpenAPI document, served at `GET /openapi.json`: generated from the routes themselves (each
//! handler's `#[utoipa::path]`, gathered by the resource modules' `routes!`), so a route cannot be served
//! without being documented (`tests/openapi.rs` checks both ways). It describes the root mount; every path
//! is served under `/api` as well.
//!
//! Response and request bodies are loose (`type: object`) where typing them would cost more than it tells:
//! the wire contract for the routes Resend defines is Resend's own document, which the conformance run
//! (`tests/conformance`) checks our answers against.

use std::sync::OnceLock;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

/// The name of the bearer scheme the operations' `security` refers to.
pub const SECURITY_SCHEME: &str = "api_key";

/// Our error envelope (`{"statusCode", "name", "message"}`), as the document describes it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
// Never built: only its schema is used.
#[allow(dead_code)]
pub(crate) struct ErrorBody {
    status_code: u16,
    name: String,
    message: String,
}

/// The document of the routes in `paths`, with the title, version and security scheme filled in.
pub(crate) fn finish(mut document: OpenApi) -> OpenApi {
    document.info.title = "OpenSend API".to_owned();
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    document.info.description = Some(
        "OpenSend's REST API, wire-compatible with Resend's. Every path is also served under `/api`."
            .to_owned(),
    );
    document
        .components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            SECURITY_SCHEME,
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    document
}

/// The document as JSON, built once per process.
pub fn document_json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let (_, document) = super::resources().split_for_parts();
        // The document is built from types of ours only; it always serializes.
        finish(document)
            .to_json()
            .unwrap_or_else(|_| "{}".to_owned())
    })
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "openapi",
    operation_id = "openapi.document",
    responses((status = 200, description = "This document.", body = Object)),
)]
pub(crate) async fn document() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], document_json())
}
