//! `GET /event-log`: what the platform did to the organization's resources on its own, newest first (for
//! example, a webhook endpoint disabled after failing for days). An extension; Resend has no equivalent.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::api::list::{ListQuery, ListResponse};
use crate::api::timestamp;
use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/event-log", get(list))
}

async fn list(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<Value>>, ApiError> {
    let page = state
        .store
        .webhooks()
        .organization_events(caller.organization_id, query.page()?)
        .await?;
    let data = page
        .items
        .into_iter()
        .map(|e| {
            json!({
                "object": "event_log_entry",
                "id": e.id,
                "kind": e.kind,
                "message": e.message,
                "data": e.data,
                "created_at": timestamp(e.created_at),
            })
        })
        .collect();
    Ok(Json(ListResponse::new(data, page.has_more)))
}
