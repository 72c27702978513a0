//! The ingester: routes for machines (provider events, inbound mail, job triggers), on its own port
//! (`INGESTER_PORT`) so the public API port never serves them. Every route is rate limited per source
//! address (`RATE_LIMIT_INGESTER_PER_SECOND`).
//!
//! - `POST /jobs/{name}`: background jobs, see [`jobs`].
//! - `POST /events/inbound`: received mail, see [`inbound`].
//! - `POST /events/ses`: Amazon SES events through SNS, see [`ses`].

pub mod inbound;
pub mod jobs;
pub mod ses;
pub mod tokens;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::api::health;
use crate::http::{self, BODY_LIMIT_DEFAULT, Limiting};
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/health", get(health::health))
        .route("/jobs/{name}", post(jobs::run_job))
        .merge(inbound::routes())
        .route("/events/ses", post(ses::receive))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_DEFAULT));
    http::finish(routes, state, Limiting::Ingester)
}
