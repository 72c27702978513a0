//! The endpoints themselves: create (at most `WEBHOOK_MAX_ENDPOINTS_PER_ORG` per organization), list, get,
//! update, delete, rotate the signing secret.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use opensend_core::webhook::{EventType, WebhookSecret};
use opensend_core::{ErrorCode, WebhookStatus};
use opensend_store::PageRequest;
use opensend_store::records::WebhookRecord;
use opensend_store::repos::{CreateWebhookOutcome, NewWebhook, WebhookChanges};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::deliveries::delivery_views;
use super::load;
use crate::api::list::{ListQuery, ListResponse};
use crate::api::timestamp;
use crate::auth::{Audited, FullAccess};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::state::AppState;
use crate::webhooks;
use opensend_store::repos::AuditContext;

/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_OVERLAP: TimeDelta = TimeDelta::hours(24);
/// Longest endpoint URL, in bytes.
pub const MAX_ENDPOINT_LEN: usize = 2048;
/// Deliveries shown on `GET /webhooks/{id}`.
const RECENT_DELIVERIES: u64 = 10;

#[derive(Debug, Deserialize)]
pub(super) struct CreateRequest {
    #[serde(alias = "url")]
    endpoint: Option<String>,
    #[serde(alias = "event_types")]
    events: Option<Vec<String>>,
}

#[utoipa::path(
    post,
    path = "/webhooks",
    tag = "webhooks",
    operation_id = "webhooks.endpoints.create",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 201, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub(super) async fn create(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Audited(audit): Audited,
    ApiJson(body): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (created, secret) = create_webhook(
        &state,
        caller.organization_id,
        &audit,
        body.endpoint,
        body.events,
    )
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

/// Registers an endpoint from what a client sent: `POST /webhooks` and the dashboard's form. The secret
/// comes back to be shown.
pub(crate) async fn create_webhook(
    state: &AppState,
    organization_id: Uuid,
    audit: &AuditContext,
    endpoint: Option<String>,
    events: Option<Vec<String>>,
) -> Result<(WebhookRecord, WebhookSecret), ApiError> {
    let endpoint = endpoint.ok_or_else(|| missing("endpoint"))?;
    let endpoint = parse_endpoint(state, &endpoint).await?;
    let events = parse_events(events.ok_or_else(|| missing("events"))?)?;
    let secret = WebhookSecret::generate().map_err(ApiError::internal)?;
    let sealed = webhooks::seal(&state.secrets, &secret).map_err(ApiError::internal)?;
    let limit = state.config.webhooks.max_endpoints_per_org;
    let created = match state
        .store
        .webhooks()
        .by(audit)
        .create(
            NewWebhook {
                organization_id,
                endpoint,
                event_types: events,
                secret_sealed: sealed,
            },
            limit,
        )
        .await?
    {
        CreateWebhookOutcome::Created(created) => created,
        CreateWebhookOutcome::LimitReached(limit) => {
            return Err(ApiError::validation(format!(
                "This organization already has {limit} webhook endpoints, the most it may have \
                 (WEBHOOK_MAX_ENDPOINTS_PER_ORG); delete one before adding another."
            )));
        }
    };
    Ok((*created, secret))
}

/// Installs a new signing secret (the old one keeps signing for [`ROTATION_OVERLAP`]): the API's route and
/// the dashboard's button. Returns the new secret, to be shown, and until when the old one signs.
pub(crate) async fn rotate_webhook_secret(
    state: &AppState,
    organization_id: Uuid,
    audit: &AuditContext,
    id: Uuid,
) -> Result<(WebhookSecret, chrono::DateTime<Utc>), ApiError> {
    let secret = WebhookSecret::generate().map_err(ApiError::internal)?;
    let sealed = webhooks::seal(&state.secrets, &secret).map_err(ApiError::internal)?;
    let until = Utc::now() + ROTATION_OVERLAP;
    state
        .store
        .webhooks()
        .by(audit)
        .rotate_secret(organization_id, id, sealed, until)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook"))?;
    Ok((secret, until))
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
pub(super) struct WebhookItem {
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

#[utoipa::path(
    get,
    path = "/webhooks",
    tag = "webhooks",
    operation_id = "webhooks.endpoints.list",
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub(super) async fn list(
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

#[utoipa::path(
    get,
    path = "/webhooks/{id}",
    tag = "webhooks",
    operation_id = "webhooks.endpoints.show",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub(super) async fn show(
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

#[derive(Debug, Default, Deserialize)]
pub(crate) struct UpdateRequest {
    #[serde(alias = "url")]
    pub endpoint: Option<String>,
    #[serde(alias = "event_types")]
    pub events: Option<Vec<String>>,
    pub status: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/webhooks/{id}",
    tag = "webhooks",
    operation_id = "webhooks.endpoints.update",
    params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub(super) async fn update(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Audited(audit): Audited,
    PathId(id): PathId,
    ApiJson(body): ApiJson<UpdateRequest>,
) -> Result<Json<Value>, ApiError> {
    update_webhook(&state, caller.organization_id, &audit, id, body).await?;
    Ok(Json(json!({"object": "webhook", "id": id})))
}

/// Changes an endpoint (URL, events, enabled): `PATCH /webhooks/{id}` and the dashboard's forms.
pub(crate) async fn update_webhook(
    state: &AppState,
    organization_id: Uuid,
    audit: &AuditContext,
    id: Uuid,
    body: UpdateRequest,
) -> Result<WebhookRecord, ApiError> {
    let endpoint = match body.endpoint {
        Some(raw) => Some(parse_endpoint(state, &raw).await?),
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
        .by(audit)
        .update(
            organization_id,
            id,
            WebhookChanges {
                endpoint,
                event_types: events,
                status,
            },
        )
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook"))
}

#[utoipa::path(
    delete,
    path = "/webhooks/{id}",
    tag = "webhooks",
    operation_id = "webhooks.endpoints.remove",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub(super) async fn remove(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Audited(audit): Audited,
    PathId(id): PathId,
) -> Result<Json<Value>, ApiError> {
    delete_webhook(&state, caller.organization_id, &audit, id).await?;
    Ok(Json(
        json!({"object": "webhook", "id": id, "deleted": true}),
    ))
}

/// Deletes an endpoint with its deliveries: the API's `DELETE` and the dashboard's button.
pub(crate) async fn delete_webhook(
    state: &AppState,
    organization_id: Uuid,
    audit: &AuditContext,
    id: Uuid,
) -> Result<(), ApiError> {
    if state
        .store
        .webhooks()
        .by(audit)
        .delete(organization_id, id)
        .await?
    {
        Ok(())
    } else {
        Err(ApiError::not_found("Webhook"))
    }
}

/// A new secret; the old one signs beside it for [`ROTATION_OVERLAP`], so receivers can switch at leisure.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    operation_id = "webhooks.endpoints.rotate_secret",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub(super) async fn rotate_secret(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Audited(audit): Audited,
    PathId(id): PathId,
) -> Result<Json<Value>, ApiError> {
    let (secret, until) = rotate_webhook_secret(&state, caller.organization_id, &audit, id).await?;
    Ok(Json(json!({
        "object": "webhook",
        "id": id,
        "signing_secret": secret.to_whsec().expose_secret(),
        "previous_secret_expires_at": timestamp(until),
    })))
}

/// `POST /webhooks/{id}/signing-secret/rotate`: [`rotate_secret`] at the path the Resend SDKs call.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/signing-secret/rotate",
    tag = "webhooks",
    operation_id = "webhooks.endpoints.rotate_signing_secret",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub(super) async fn rotate_signing_secret(
    state: State<AppState>,
    caller: FullAccess,
    audit: Audited,
    id: PathId,
) -> Result<Json<Value>, ApiError> {
    rotate_secret(state, caller, audit, id).await
}
