//! `/webhooks`: register endpoints for event types, read and change them, see every delivery attempt,
//! replay a delivery and rotate the signing secret.
//!
//! Shapes follow Resend's OpenAPI (`CreateWebhookRequest`, `GetWebhookResponse`…). Extensions: `url` and
//! `event_types` are accepted as aliases of `endpoint` and `events`; `GET /webhooks/{id}` adds
//! `disabled_reason` and the most recent deliveries; the `deliveries` routes are ours. The Resend SDKs'
//! `events` routes (list, get, replay, attempts) and `signing-secret/rotate` are served too: Resend's
//! "webhook event" is our delivery, with the delivery's id.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{TimeDelta, Utc};
use opensend_core::webhook::{EventType, WebhookSecret, message_id};
use opensend_core::{DeliveryStatus, ErrorCode, WebhookStatus};
use opensend_store::PageRequest;
use opensend_store::entities::webhook_attempt;
use opensend_store::records::{DeliveryRecord, WebhookRecord};
use opensend_store::repos::{NewWebhook, ReplayOutcome, WebhookChanges};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::api::list::{ListQuery, ListResponse};
use crate::api::timestamp;
use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, PathId, PathIds};
use crate::state::AppState;
use crate::webhooks;

/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_OVERLAP: TimeDelta = TimeDelta::hours(24);
/// Longest endpoint URL, in bytes.
pub const MAX_ENDPOINT_LEN: usize = 2048;
/// Deliveries shown on `GET /webhooks/{id}`.
const RECENT_DELIVERIES: u64 = 10;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list).post(create))
        .route("/webhooks/{id}", get(show).patch(update).delete(remove))
        .route("/webhooks/{id}/rotate-secret", post(rotate_secret))
        .route("/webhooks/{id}/deliveries", get(deliveries))
        .route("/webhooks/{id}/deliveries/{delivery_id}", get(delivery))
        .route(
            "/webhooks/{id}/deliveries/{delivery_id}/replay",
            post(replay),
        )
        // The paths the Resend SDKs call for the same things: an "event" of an endpoint is one of its
        // deliveries.
        .route("/webhooks/{id}/signing-secret/rotate", post(rotate_secret))
        .route("/webhooks/{id}/events", get(events))
        .route("/webhooks/{id}/events/{event_id}", get(event))
        .route(
            "/webhooks/{id}/events/{event_id}/replay",
            post(replay_event),
        )
        .route(
            "/webhooks/{id}/events/{event_id}/attempts",
            get(event_attempts),
        )
}

#[derive(Debug, Deserialize)]
struct CreateRequest {
    #[serde(alias = "url")]
    endpoint: Option<String>,
    #[serde(alias = "event_types")]
    events: Option<Vec<String>>,
}

async fn create(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    ApiJson(body): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let endpoint = body.endpoint.ok_or_else(|| missing("endpoint"))?;
    let endpoint = parse_endpoint(&state, &endpoint).await?;
    let events = parse_events(body.events.ok_or_else(|| missing("events"))?)?;
    let secret = WebhookSecret::generate().map_err(ApiError::internal)?;
    let sealed = webhooks::seal(&state.secrets, &secret).map_err(ApiError::internal)?;
    let created = state
        .store
        .webhooks()
        .create(NewWebhook {
            organization_id: caller.organization_id,
            endpoint,
            event_types: events,
            secret_sealed: sealed,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "object": "webhook",
            "id": created.id,
            "signing_secret": secret.to_whsec().expose_secret(),
        })),
    ))
}

fn missing(field: &str) -> ApiError {
    ApiError::new(
        ErrorCode::MissingRequiredField,
        format!("Missing required field `{field}`."),
    )
}

/// An endpoint URL we are willing to call: see `crate::outbound` for what is refused and why.
async fn parse_endpoint(state: &AppState, raw: &str) -> Result<String, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_ENDPOINT_LEN {
        return Err(ApiError::validation(format!(
            "`endpoint` must be an http or https URL of at most {MAX_ENDPOINT_LEN} bytes."
        )));
    }
    let url = state.outbound.check(raw).await.map_err(|refusal| {
        ApiError::validation(refusal.describe(
            "endpoint",
            "webhooks can only be delivered to public addresses",
        ))
    })?;
    Ok(url.to_string())
}

/// A non-empty list of known event types, without repeats, in the order given.
fn parse_events(raw: Vec<String>) -> Result<Vec<EventType>, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::validation(
            "`events` must name at least one event type.",
        ));
    }
    let mut events: Vec<EventType> = Vec::new();
    for name in raw {
        let event = name.parse::<EventType>().map_err(|e| {
            ApiError::validation(format!(
                "{e}; known types are {}.",
                EventType::ALL.map(|t| t.as_str()).join(", ")
            ))
        })?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    Ok(events)
}

/// One endpoint as lists show it.
#[derive(Debug, Serialize)]
struct WebhookItem {
    id: Uuid,
    endpoint: String,
    events: Vec<EventType>,
    status: WebhookStatus,
    created_at: String,
}

impl From<&WebhookRecord> for WebhookItem {
    fn from(w: &WebhookRecord) -> Self {
        Self {
            id: w.id,
            endpoint: w.endpoint.clone(),
            events: w.events.clone(),
            status: w.status,
            created_at: timestamp(w.created_at),
        }
    }
}

async fn list(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<WebhookItem>>, ApiError> {
    let page = state
        .store
        .webhooks()
        .list(caller.organization_id, query.page()?)
        .await?;
    Ok(Json(ListResponse::new(
        page.items.iter().map(WebhookItem::from).collect(),
        page.has_more,
    )))
}

async fn load(
    state: &AppState,
    organization_id: Uuid,
    id: Uuid,
) -> Result<WebhookRecord, ApiError> {
    state
        .store
        .webhooks()
        .get(organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook"))
}

async fn show(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
) -> Result<Json<Value>, ApiError> {
    let endpoint = load(&state, caller.organization_id, id).await?;
    let secret =
        webhooks::open(&state.secrets, &endpoint.secret_sealed).map_err(ApiError::internal)?;
    let page = PageRequest::new(RECENT_DELIVERIES, None).unwrap_or_default();
    let recent = state
        .store
        .webhooks()
        .deliveries(caller.organization_id, id, page)
        .await?;
    let recent = delivery_views(&state, caller.organization_id, recent.items).await?;
    let item = WebhookItem::from(&endpoint);
    Ok(Json(json!({
        "object": "webhook",
        "id": item.id,
        "endpoint": item.endpoint,
        "events": item.events,
        "status": item.status,
        "created_at": item.created_at,
        "signing_secret": secret.to_whsec().expose_secret(),
        "disabled_reason": endpoint.disabled_reason,
        "previous_secret_expires_at": endpoint
            .previous_secret_expires_at
            .filter(|until| *until > Utc::now())
            .map(timestamp),
        "recent_deliveries": recent,
    })))
}

#[derive(Debug, Deserialize)]
struct UpdateRequest {
    #[serde(alias = "url")]
    endpoint: Option<String>,
    #[serde(alias = "event_types")]
    events: Option<Vec<String>>,
    status: Option<String>,
}

async fn update(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
    ApiJson(body): ApiJson<UpdateRequest>,
) -> Result<Json<Value>, ApiError> {
    let endpoint = match body.endpoint {
        Some(raw) => Some(parse_endpoint(&state, &raw).await?),
        None => None,
    };
    let events = body.events.map(parse_events).transpose()?;
    let status = body
        .status
        .as_deref()
        .map(|raw| {
            raw.parse::<WebhookStatus>().map_err(|_| {
                ApiError::validation(format!(
                    "`status` must be `enabled` or `disabled`, not `{}`.",
                    raw.chars().take(32).collect::<String>()
                ))
            })
        })
        .transpose()?;
    state
        .store
        .webhooks()
        .update(
            caller.organization_id,
            id,
            WebhookChanges {
                endpoint,
                event_types: events,
                status,
            },
        )
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook"))?;
    Ok(Json(json!({"object": "webhook", "id": id})))
}

async fn remove(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
) -> Result<Json<Value>, ApiError> {
    if !state
        .store
        .webhooks()
        .delete(caller.organization_id, id)
        .await?
    {
        return Err(ApiError::not_found("Webhook"));
    }
    Ok(Json(
        json!({"object": "webhook", "id": id, "deleted": true}),
    ))
}

/// A new secret; the old one signs beside it for [`ROTATION_OVERLAP`], so receivers can switch at leisure.
async fn rotate_secret(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
) -> Result<Json<Value>, ApiError> {
    let secret = WebhookSecret::generate().map_err(ApiError::internal)?;
    let sealed = webhooks::seal(&state.secrets, &secret).map_err(ApiError::internal)?;
    let until = Utc::now() + ROTATION_OVERLAP;
    state
        .store
        .webhooks()
        .rotate_secret(caller.organization_id, id, sealed, until)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook"))?;
    Ok(Json(json!({
        "object": "webhook",
        "id": id,
        "signing_secret": secret.to_whsec().expose_secret(),
        "previous_secret_expires_at": timestamp(until),
    })))
}

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
struct DeliveryView {
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

async fn delivery_views(
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

async fn deliveries(
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

async fn delivery(
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
async fn replay(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathIds(id, delivery_id): PathIds,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    match state
        .store
        .webhooks()
        .replay(caller.organization_id, id, delivery_id)
        .await?
    {
        ReplayOutcome::Created(new_id) => {
            state.webhook_wakeup.notify_one();
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({
                    "object": "webhook_delivery",
                    "id": new_id,
                    "replay_of": delivery_id,
                    "status": DeliveryStatus::Pending,
                })),
            ))
        }
        ReplayOutcome::NotFound => Err(ApiError::not_found("Webhook delivery")),
        ReplayOutcome::EndpointDisabled => Err(ApiError::validation(
            "The webhook is disabled; enable it before replaying its deliveries.",
        )),
    }
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

async fn events(
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

async fn event(
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

async fn replay_event(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathIds(id, event_id): PathIds,
) -> Result<Json<Value>, ApiError> {
    match state
        .store
        .webhooks()
        .replay(caller.organization_id, id, event_id)
        .await?
    {
        ReplayOutcome::Created(new_id) => {
            state.webhook_wakeup.notify_one();
            Ok(Json(json!({"object": "webhook_event", "id": new_id})))
        }
        ReplayOutcome::NotFound => Err(ApiError::not_found("Webhook event")),
        ReplayOutcome::EndpointDisabled => Err(ApiError::validation(
            "The webhook is disabled; enable it before replaying its events.",
        )),
    }
}

async fn event_attempts(
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
