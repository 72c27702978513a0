//! The dashboard's stylesheet and its one small script (copy buttons, confirmations), compiled into the
//! binary: no build step, nothing fetched from elsewhere.

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::state::AppState;

const CSS: &[u8] = include_bytes!("../../assets/dashboard.css");
const JS: &[u8] = include_bytes!("../../assets/dashboard.js");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/assets/dashboard.css", get(css))
        .route("/assets/dashboard.js", get(js))
}

async fn css() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        JS,
    )
}
