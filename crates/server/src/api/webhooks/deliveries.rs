//! What was sent to an endpoint: its deliveries with every attempt, replays, and the same under the paths the
//! Resend SDKs call (`/events`, where an "event" of an endpoint is one of its deliveries).

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use opensend_core::DeliveryStatus;
use opensend_core::webhook::{EventType, message_id};
use opensend_store::entities::webhook_attempt;
use opensend_store::records::DeliveryRecord;
use opensend_store::repos::ReplayOutcome;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::load;
use crate::api::list::{ListQuery, ListResponse};
use crate::api::timestamp;
use crate::auth::{Audited, FullAccess};
use crate::error::ApiError;
use crate::extract::{ApiQuery, PathId, PathIds};
use crate::state::AppState;
use opensend_store::repos::AuditContext;

/// One attempt of a delivery.
#[derive(Debug, Serialize)]
struct AttemptView {
    attempt: i32,
    succeeded: bool,
    status_code: Option<i32>,
    response: Option<String>,
    error: Option<String>,
    duration_ms: i32,
    next_attempt_at: Option<String>,
    created_at: String,
}

impl From<webhook_attempt::Model> for AttemptView {
    fn from(a: webhook_attempt::Model) -> Self {
        Self {
            attempt: a.attempt,
            succeeded: a.succeeded,
            status_code: a.status_code,
            response: a.response,
            error: a.error,
            duration_ms: a.duration_ms,
            next_attempt_at: a.next_attempt_at.map(timestamp),
            created_at: timestamp(a.created_at),
        }
    }
}

/// One delivery: where it stands, what the last attempt got, and every attempt.
#[derive(Debug, Serialize)]
pub(crate) struct DeliveryView {
    object: &'static str,
    id: Uuid,
    /// The `webhook-id` / `svix-id` receivers see; the same on every attempt and replay.
    message_id: String,
    event_type: Option<EventType>,
    status: DeliveryStatus,
    attempts: i32,
    status_code: Option<i32>,
    response: Option<String>,
    duration_ms: Option<i32>,
    error: Option<String>,
    last_attempt_at: Option<String>,
    next_attempt_at: Option<String>,
    replay_of: Option<Uuid>,
    created_at: String,
    history: Vec<AttemptView>,
}

pub(crate) async fn delivery_views(
    state: &AppState,
    organization_id: Uuid,
    items: Vec<DeliveryRecord>,
) -> Result<Vec<DeliveryView>, ApiError> {
    let repo = state.store.webhooks();
    let ids: Vec<Uuid> = items.iter().map(|d| d.id).collect();
    let mut attempts: HashMap<Uuid, Vec<webhook_attempt::Model>> = HashMap::new();
    for attempt in repo.attempts(organization_id, ids).await? {
        attempts
            .entry(attempt.delivery_id)
            .or_default()
            .push(attempt);
    }
    let message_ids: Vec<Uuid> = items.iter().map(|d| d.message_id).collect();
    let types: HashMap<Uuid, EventType> = repo
        .message_types(organization_id, message_ids)
        .await?
        .into_iter()
        .collect();
    Ok(items
        .into_iter()
        .map(|d| {
            let history = attempts.remove(&d.id).unwrap_or_default();
            let last = history.last();
            DeliveryView {
                object: "webhook_delivery",
                id: d.id,
                message_id: message_id(d.message_id),
                event_type: types.get(&d.message_id).copied(),
                status: d.status,
                attempts: d.attempts,
                status_code: d.last_status_code,
                response: last.and_then(|a| a.response.clone()),
                duration_ms: last.map(|a| a.duration_ms),
                error: d.last_error,
                last_attempt_at: d.last_attempt_at.map(timestamp),
                next_attempt_at: d.next_attempt_at.map(timestamp),
                replay_of: d.replay_of,
                created_at: timestamp(d.created_at),
                history: history.into_iter().map(AttemptView::from).collect(),
            }
        })
        .collect())
}

#[utoipa::path(
    get,
    path = "/webhooks/{id}/deliveries",
    tag = "webhooks",
    operation_id = "webhooks.deliveries.deliveries",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub(super) async fn deliveries(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<DeliveryView>>, ApiError> {
    let page_request = query.page()?;
    load(&state, caller.organization_id, id).await?;
    let page = state
        .store
        .webhooks()
        .deliveries(caller.organization_id, id, page_request)
        .await?;
    let views = delivery_views(&state, caller.organization_id, page.items).await?;
    Ok(Json(ListResponse::new(views, page.has_more)))
}

#[utoipa::path(
    get,
    path = "/webhooks/{id}/deliveries/{delivery_id}",
    tag = "webhooks",
    operation_id = "webhooks.deliveries.delivery",
    params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub(super) async fn delivery(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathIds(id, delivery_id): PathIds,
) -> Result<Json<DeliveryView>, ApiError> {
    let found = state
        .store
        .webhooks()
        .delivery(caller.organization_id, id, delivery_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook delivery"))?;
    let mut views = delivery_views(&state, caller.organization_id, vec![found]).await?;
    views
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::not_found("Webhook delivery"))
}

/// Sends a delivery's message again, as a new delivery with the same `webhook-id`.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/deliveries/{delivery_id}/replay",
    tag = "webhooks",
    operation_id = "webhooks.deliveries.replay",
    params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses(
        (status = 202, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub(super) async fn replay(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Audited(audit): Audited,
    PathIds(id, delivery_id): PathIds,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    match replay_delivery(&state, caller.organization_id, &audit, id, delivery_id).await? {
        ReplayOutcome::Created(new_id) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "object": "webhook_delivery",
                "id": new_id,
                "replay_of": delivery_id,
                "status": DeliveryStatus::Pending,
            })),
        )),
        ReplayOutcome::NotFound => Err(ApiError::not_found("Webhook delivery")),
        ReplayOutcome::EndpointDisabled => Err(ApiError::validation(
            "The webhook is disabled; enable it before replaying its deliveries.",
        )),
    }
}

/// Queues a delivery's message again (same `webhook-id`) and wakes the dispatcher: the API's replay routes
/// and the dashboard's button.
pub(crate) async fn replay_delivery(
    state: &AppState,
    organization_id: Uuid,
    audit: &AuditContext,
    id: Uuid,
    delivery_id: Uuid,
) -> Result<ReplayOutcome, ApiError> {
    let outcome = state
        .store
        .webhooks()
        .by(audit)
        .replay(organization_id, id, delivery_id)
        .await?;
    if matches!(outcome, ReplayOutcome::Created(_)) {
        state.webhook_wakeup.notify_one();
    }
    Ok(outcome)
}

/// Resend's status of a webhook event.
fn event_status(delivery: &DeliveryRecord) -> &'static str {
    match delivery.status {
        DeliveryStatus::Succeeded => "success",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Pending if delivery.attempts > 0 => "attempting",
        DeliveryStatus::Pending => "pending",
    }
}

#[utoipa::path(
    get,
    path = "/webhooks/{id}/events",
    tag = "webhooks",
    operation_id = "webhooks.deliveries.events",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub(super) async fn events(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let page_request = query.page()?;
    load(&state, caller.organization_id, id).await?;
    let repo = state.store.webhooks();
    let page = repo
        .deliveries(caller.organization_id, id, page_request)
        .await?;
    let types: HashMap<Uuid, EventType> = repo
        .message_types(
            caller.organization_id,
            page.items.iter().map(|d| d.message_id).collect(),
        )
        .await?
        .into_iter()
        .collect();
    let data: Vec<Value> = page
        .items
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "type": types.get(&d.message_id),
                "created_at": timestamp(d.created_at),
                "status": event_status(d),
            })
        })
        .collect();
    Ok(Json(
        json!({"object": "list", "has_more": page.has_more, "data": data}),
    ))
}

async fn load_delivery(
    state: &AppState,
    organization_id: Uuid,
    id: Uuid,
    delivery_id: Uuid,
) -> Result<DeliveryRecord, ApiError> {
    state
        .store
        .webhooks()
        .delivery(organization_id, id, delivery_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook event"))
}

#[utoipa::path(
    get,
    path = "/webhooks/{id}/events/{event_id}",
    tag = "webhooks",
    operation_id = "webhooks.deliveries.event",
    params(("id" = String, Path), ("event_id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub(super) async fn event(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathIds(id, event_id): PathIds,
) -> Result<Json<Value>, ApiError> {
    let delivery = load_delivery(&state, caller.organization_id, id, event_id).await?;
    let message = state
        .store
        .webhooks()
        .message(caller.organization_id, delivery.message_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook event"))?;
    Ok(Json(json!({
        "object": "webhook_event",
        "id": delivery.id,
        "type": message.event_type,
        "created_at": timestamp(delivery.created_at),
        "status": event_status(&delivery),
        "next_attempt_at": delivery.next_attempt_at.map(timestamp),
        "payload": message.payload,
    })))
}

#[utoipa::path(
    post,
    path = "/webhooks/{id}/events/{event_id}/replay",
    tag = "webhooks",
    operation_id = "webhooks.deliveries.replay_event",
    params(("id" = String, Path), ("event_id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub(super) async fn replay_event(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Audited(audit): Audited,
    PathIds(id, event_id): PathIds,
) -> Result<Json<Value>, ApiError> {
    match replay_delivery(&state, caller.organization_id, &audit, id, event_id).await? {
        ReplayOutcome::Created(new_id) => {
            Ok(Json(json!({"object": "webhook_event", "id": new_id})))
        }
        ReplayOutcome::NotFound => Err(ApiError::not_found("Webhook event")),
        ReplayOutcome::EndpointDisabled => Err(ApiError::validation(
            "The webhook is disabled; enable it before replaying its events.",
        )),
    }
}

#[utoipa::path(
    get,
    path = "/webhooks/{id}/events/{event_id}/attempts",
    tag = "webhooks",
    operation_id = "webhooks.deliveries.event_attempts",
    params(("id" = String, Path), ("event_id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub(super) async fn event_attempts(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathIds(id, event_id): PathIds,
) -> Result<Json<Value>, ApiError> {
    let delivery = load_delivery(&state, caller.organization_id, id, event_id).await?;
    // A delivery has at most one attempt more than WEBHOOK_RETRY_DELAYS_SECONDS has delays: one page.
    let attempts = state
        .store
        .webhooks()
        .attempts(caller.organization_id, vec![delivery.id])
        .await?;
    let data: Vec<Value> = attempts
        .iter()
        .rev()
        .map(|a| {
            json!({
                "id": a.id,
                "http_status_code": a.status_code,
                "response": a.response.clone().or_else(|| a.error.clone()).unwrap_or_default(),
                "sent_at": timestamp(a.created_at),
            })
        })
        .collect();
    Ok(Json(
        json!({"object": "list", "has_more": false, "data": data}),
    ))
}
