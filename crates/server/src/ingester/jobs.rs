//! `POST /jobs/{name}`: one pass of a background job (see `crate::jobs` for the registry), for a cron or
//! `opensend scheduler` to trigger.
//!
//! Every job is one bounded pass over work that is claimed with leases, so triggering it from several nodes
//! at once, or again before the last run finished, is safe: each item is handled by one caller. A run goes
//! on to the end even if the caller hangs up, so nothing is left half done.
//!
//! The routes need `Authorization: Bearer ${INGESTER_JOB_TOKEN}`, compared in constant time.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::ingester::tokens::JobToken;
use crate::jobs;
use crate::state::AppState;

pub async fn run_job(
    State(state): State<AppState>,
    _token: JobToken,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    // Detached: a caller that gives up waiting must not cancel work half done (a sent email or webhook not
    // yet recorded would go out again). The run finishes and records everything either way.
    let job = name.clone();
    let result = tokio::spawn(async move { jobs::run_once(&state, &job).await })
        .await
        .map_err(ApiError::internal)??;
    Ok(Json(
        json!({"object": "job_run", "job": name, "result": result}),
    ))
}
