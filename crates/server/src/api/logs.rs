//! `/logs`: the organization's API requests (see [`crate::request_log`]), newest first, in Resend's shapes
//! (`LogSummary` in lists, `Log` with the redacted bodies for one).

use axum::Json;
use axum::extract::State;
use opensend_store::entities::request_log;
use opensend_store::repos::RequestLogSummary;
use serde::Serialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::list::{ListQuery, ListResponse};
use crate::api::timestamp;
use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::extract::{ApiQuery, PathId};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(retrieve))
}

/// Resend's `LogSummary`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = LogSummary)]
struct LogSummaryView {
    id: Uuid,
    created_at: String,
    endpoint: String,
    method: String,
    response_status: i32,
    user_agent: Option<String>,
}

impl From<RequestLogSummary> for LogSummaryView {
    fn from(log: RequestLogSummary) -> Self {
        Self {
            id: log.id,
            created_at: timestamp(log.created_at),
            endpoint: log.endpoint,
            method: log.method,
            response_status: log.response_status,
            user_agent: log.user_agent,
        }
    }
}

/// Resend's `Log`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Log)]
struct LogView {
    object: &'static str,
    id: Uuid,
    created_at: String,
    endpoint: String,
    method: String,
    response_status: i32,
    user_agent: Option<String>,
    #[schema(value_type = Option<Object>)]
    request_body: Option<Value>,
    #[schema(value_type = Option<Object>)]
    response_body: Option<Value>,
}

/// Resend's `ListLogsResponse`.
#[derive(utoipa::ToSchema)]
#[schema(as = ListLogsResponse)]
// Never built: only its schema is used (the route answers a `ListResponse`).
#[allow(dead_code)]
struct LogListView {
    /// Always `list`.
    object: String,
    has_more: bool,
    data: Vec<LogSummaryView>,
}

impl From<request_log::Model> for LogView {
    fn from(log: request_log::Model) -> Self {
        Self {
            object: "log",
            id: log.id,
            created_at: timestamp(log.created_at),
            endpoint: log.endpoint,
            method: log.method,
            response_status: log.response_status,
            user_agent: log.user_agent,
            request_body: body_object(log.request_body.as_deref()),
            response_body: body_object(log.response_body.as_deref()),
        }
    }
}

/// A stored body as Resend's schema has it: a JSON object, or `null`. Bodies that are not an object (a
/// batch's array, text, or JSON cut at the size limit) are kept in the database but answered as `null`.
fn body_object(stored: Option<&str>) -> Option<Value> {
    serde_json::from_str::<Value>(stored?)
        .ok()
        .filter(Value::is_object)
}

#[utoipa::path(
    get,
    path = "/logs",
    tag = "logs",
    operation_id = "logs.list",
    responses(
        (status = 200, description = "A page of the log, newest first.", body = LogListView),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn list(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<LogSummaryView>>, ApiError> {
    let page = state
        .store
        .request_logs()
        .list(caller.organization_id, query.page()?)
        .await?;
    Ok(Json(ListResponse::new(
        page.items.into_iter().map(LogSummaryView::from).collect(),
        page.has_more,
    )))
}

#[utoipa::path(
    get,
    path = "/logs/{id}",
    tag = "logs",
    operation_id = "logs.retrieve",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "One entry, with its redacted bodies.", body = LogView),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn retrieve(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
) -> Result<Json<LogView>, ApiError> {
    let log = state
        .store
        .request_logs()
        .get(caller.organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Log"))?;
    Ok(Json(LogView::from(log)))
}
