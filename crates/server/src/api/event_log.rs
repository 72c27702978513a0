//! `GET /event-log`: what the platform did to the organization's resources on its own, newest first (for
//! example, a webhook endpoint disabled after failing for days). An extension; Resend has no equivalent.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::list::{ListQuery, ListResponse};
use crate::api::timestamp;
use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[utoipa::path(
    get,
    path = "/event-log",
    tag = "event-log",
    operation_id = "event_log.list",
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
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
