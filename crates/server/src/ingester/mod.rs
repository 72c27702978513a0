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
    let events = Router::new()
        .route("/health", get(health::health))
        .merge(inbound::routes())
        .route("/events/ses", post(ses::receive));
    let events = http::with_request_timeout(events, state.config.listen.request_timeout);
    // A job pass may take longer than an ordinary request; `opensend scheduler` waits this long for one.
    let jobs = http::with_request_timeout(
        Router::new().route("/jobs/{name}", post(jobs::run_job)),
        crate::jobs::scheduler::JOB_TIMEOUT.max(state.config.listen.request_timeout),
    );
    let routes = events
        .merge(jobs)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_DEFAULT));
    http::finish(routes, state, Limiting::Ingester)
}
