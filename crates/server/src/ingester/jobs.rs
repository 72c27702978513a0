//! `POST /jobs/{name}`: the background jobs, for a cron or `opensend scheduler` to trigger.
//!
//! Every job is one bounded pass over work that is claimed with leases, so triggering it from several nodes
//! at once, or again before the last run finished, is safe: each item is handled by one caller. A run goes
//! on to the end even if the caller hangs up, so nothing is left half done.
//!
//! | job | what one run does |
//! |---|---|
//! | `dispatch-scheduled` | delivers up to [`BATCH`] due emails (scheduled ones that fell due, retries whose time came) |
//! | `retry-webhooks` | attempts up to [`BATCH`] due webhook deliveries |
//! | `verify-domains` | re-checks the DNS of domains whose next check is due |
//! | `cleanup` | deletes expired idempotency keys, and what is older than `RETENTION_DAYS` |
//!
//! The routes need `Authorization: Bearer ${INGESTER_JOB_TOKEN}`, compared in constant time.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{TimeDelta, Utc};
use opensend_core::ErrorCode;
use serde_json::{Value, json};

use crate::delivery::{self, DeliveryWorker, WorkerSettings};
use crate::error::ApiError;
use crate::ingester::tokens::JobToken;
use crate::state::AppState;
use crate::webhooks::dispatcher::Dispatcher;

/// Items one run of `dispatch-scheduled` or `retry-webhooks` takes at most.
pub const BATCH: usize = 500;

/// Every job, by the name its route uses.
pub const JOBS: [&str; 4] = [
    "dispatch-scheduled",
    "retry-webhooks",
    "verify-domains",
    "cleanup",
];

pub async fn run_job(
    State(state): State<AppState>,
    _token: JobToken,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    // Detached: a caller that gives up waiting must not cancel work half done (a sent email or webhook not
    // yet recorded would go out again). The run finishes and records everything either way.
    let job = name.clone();
    let result = tokio::spawn(async move { run(&state, &job).await })
        .await
        .map_err(ApiError::internal)??;
    Ok(Json(
        json!({"object": "job_run", "job": name, "result": result}),
    ))
}

/// Runs the job `name` once (the route, and `serve`'s in-process scheduler).
pub async fn run(state: &AppState, name: &str) -> Result<Value, ApiError> {
    match name {
        "dispatch-scheduled" => {
            let transport = delivery::transport_for(&state.config).map_err(ApiError::internal)?;
            let worker = DeliveryWorker::new(
                state.clone(),
                transport,
                WorkerSettings::from_config(&state.config),
            );
            let delivered = worker.run_once(BATCH).await?;
            Ok(json!({"claimed": delivered}))
        }
        "retry-webhooks" => {
            let client = state.outbound.shared_client().clone();
            let attempted = Dispatcher::new(state.clone(), client)
                .run_once(BATCH)
                .await?;
            Ok(json!({"attempted": attempted}))
        }
        "verify-domains" => {
            let checked = crate::domains::run_due_checks(state, Utc::now())
                .await
                .map_err(ApiError::internal)?;
            Ok(json!({"checked": checked}))
        }
        "cleanup" => cleanup(state).await,
        other => Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "There is no job `{}`; the jobs are {}.",
                other.chars().take(64).collect::<String>(),
                JOBS.join(", ")
            ),
        )),
    }
}

async fn cleanup(state: &AppState) -> Result<Value, ApiError> {
    let idempotency_keys = state.store.idempotency().purge_expired().await?;
    let purged = match state.config.jobs.retention_days {
        Some(days) => {
            let cutoff = Utc::now() - TimeDelta::days(i64::from(days));
            Some(state.store.retention().purge_before(cutoff).await?)
        }
        None => None,
    };
    Ok(json!({
        "idempotency_keys": idempotency_keys,
        "retention_days": state.config.jobs.retention_days,
        "deleted": purged,
    }))
}
