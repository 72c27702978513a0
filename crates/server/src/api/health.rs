use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

/// How long a health check waits for the database.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /health`: 200 when the database answers, 503 otherwise. No authentication, no detail beyond that.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    operation_id = "health.health",
    responses(
        (status = 200, description = "The database answers.", body = Object),
        (status = 503, description = "The database does not answer.", body = Object),
    ),
)]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = tokio::time::timeout(DATABASE_TIMEOUT, state.store.ping()).await;
    match database {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(json!({"status": "ok", "database": "ok", "version": env!("CARGO_PKG_VERSION")})),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: database error");
            unavailable()
        }
        Err(_) => {
            tracing::warn!("health check: database did not answer in time");
            unavailable()
        }
    }
}

fn unavailable() -> (StatusCode, Json<Value>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(
            json!({"status": "unavailable", "database": "unreachable", "version": env!("CARGO_PKG_VERSION")}),
        ),
    )
}
