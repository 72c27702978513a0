//! Webhook endpoints: the list, adding one (its signing secret shown on the answer), one endpoint with its
//! deliveries and every attempt, replaying a delivery, enabling or disabling, rotating the secret and
//! deleting, through the same functions as the API's `/webhooks` routes.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use opensend_core::webhook::{EventType, message_id};
use opensend_store::PageRequest;
use opensend_store::repos::ReplayOutcome;
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::page::{Chrome, DashError, Found, Notice, html, when, when_opt};
use super::session::{CsrfForm, Workspace};
use crate::api::webhooks::deliveries::replay_delivery;
use crate::api::webhooks::endpoints::{
    UpdateRequest, create_webhook, delete_webhook, rotate_webhook_secret, update_webhook,
};
use crate::state::AppState;

/// Deliveries shown on an endpoint's page.
const DELIVERIES_SHOWN: u64 = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list).post(create))
        .route("/webhooks/{id}", get(show))
        .route("/webhooks/{id}/status", post(set_status))
        .route("/webhooks/{id}/rotate-secret", post(rotate))
        .route("/webhooks/{id}/delete", post(delete))
        .route(
            "/webhooks/{id}/deliveries/{delivery_id}/replay",
            post(replay),
        )
}

struct EndpointRow {
    id: String,
    endpoint: String,
    events: String,
    status: String,
    created: String,
}

#[derive(Template)]
#[template(path = "dashboard/webhooks.html")]
struct WebhooksPage {
    chrome: Chrome,
    endpoints: Vec<EndpointRow>,
    event_types: Vec<&'static str>,
    /// The signing secret of the endpoint just made.
    new_secret: Option<(String, String)>,
}

async fn list_page(
    state: &AppState,
    workspace: &Workspace,
    done: Option<&str>,
    new_secret: Option<(String, String)>,
) -> Result<Response, DashError> {
    let page = state
        .store
        .webhooks()
        .list(
            workspace.org(),
            PageRequest::new(100, None).unwrap_or_default(),
        )
        .await?;
    html(WebhooksPage {
        chrome: Chrome::new(state, workspace, "Webhooks", "webhooks")?.with_notice(done),
        endpoints: page
            .items
            .into_iter()
            .map(|w| EndpointRow {
                id: w.id.to_string(),
                endpoint: w.endpoint,
                events: w
                    .events
                    .iter()
                    .map(|e| e.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                status: w.status.as_str().to_owned(),
                created: when(w.created_at),
            })
            .collect(),
        event_types: EventType::ALL.iter().map(|e| e.as_str()).collect(),
        new_secret,
    })
}

async fn list(
    State(state): State<AppState>,
    workspace: Workspace,
    Query(notice): Query<Notice>,
) -> Result<Response, DashError> {
    list_page(&state, &workspace, notice.done.as_deref(), None).await
}

async fn create(
    State(state): State<AppState>,
    workspace: Workspace,
    form: CsrfForm,
) -> Result<Response, DashError> {
    let events = form.all("events");
    let (created, secret) = create_webhook(
        &state,
        workspace.org(),
        &workspace.audit(),
        form.get("endpoint").map(str::to_owned),
        Some(events),
    )
    .await?;
    let shown = (
        created.id.to_string(),
        secret.to_whsec().expose_secret().to_owned(),
    );
    list_page(&state, &workspace, None, Some(shown)).await
}

struct AttemptRow {
    attempt: i32,
    at: String,
    outcome: String,
}

struct DeliveryRow {
    id: String,
    message_id: String,
    event_type: String,
    status: String,
    attempts: i32,
    last_status: String,
    next_attempt: String,
    created: String,
    replay_of: String,
    history: Vec<AttemptRow>,
}

#[derive(Template)]
#[template(path = "dashboard/webhook.html")]
struct WebhookPage {
    chrome: Chrome,
    id: String,
    endpoint: String,
    events: String,
    status: String,
    enabled: bool,
    disabled_reason: String,
    created: String,
    deliveries: Vec<DeliveryRow>,
    new_secret: Option<String>,
}

fn parse_id(raw: &str) -> Result<Uuid, DashError> {
    Uuid::try_parse(raw).map_err(|_| DashError::NotFound)
}

async fn endpoint_page(
    state: &AppState,
    workspace: &Workspace,
    id: Uuid,
    done: Option<&str>,
    new_secret: Option<String>,
) -> Result<Response, DashError> {
    let repo = state.store.webhooks();
    let endpoint = repo
        .get(workspace.org(), id)
        .await?
        .ok_or(DashError::NotFound)?;
    let deliveries = repo
        .deliveries(
            workspace.org(),
            id,
            PageRequest::new(DELIVERIES_SHOWN, None).unwrap_or_default(),
        )
        .await?;
    let mut attempts: HashMap<Uuid, Vec<AttemptRow>> = HashMap::new();
    for a in repo
        .attempts(
            workspace.org(),
            deliveries.items.iter().map(|d| d.id).collect(),
        )
        .await?
    {
        attempts.entry(a.delivery_id).or_default().push(AttemptRow {
            attempt: a.attempt,
            at: when(a.created_at),
            outcome: match (a.status_code, &a.error) {
                (Some(code), _) => format!("HTTP {code}"),
                (None, Some(error)) => error.clone(),
                (None, None) => "no answer".to_owned(),
            },
        });
    }
    let types: HashMap<Uuid, EventType> = repo
        .message_types(
            workspace.org(),
            deliveries.items.iter().map(|d| d.message_id).collect(),
        )
        .await?
        .into_iter()
        .collect();
    html(WebhookPage {
        chrome: Chrome::new(state, workspace, "Webhook", "webhooks")?.with_notice(done),
        id: endpoint.id.to_string(),
        events: endpoint
            .events
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        status: endpoint.status.as_str().to_owned(),
        enabled: endpoint.status == opensend_core::WebhookStatus::Enabled,
        disabled_reason: endpoint.disabled_reason.clone().unwrap_or_default(),
        created: when(endpoint.created_at),
        endpoint: endpoint.endpoint,
        deliveries: deliveries
            .items
            .into_iter()
            .map(|d| DeliveryRow {
                id: d.id.to_string(),
                message_id: message_id(d.message_id),
                event_type: types
                    .get(&d.message_id)
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                status: d.status.as_str().to_owned(),
                attempts: d.attempts,
                last_status: d
                    .last_status_code
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                next_attempt: when_opt(d.next_attempt_at),
                created: when(d.created_at),
                replay_of: d.replay_of.map(|r| r.to_string()).unwrap_or_default(),
                history: attempts.remove(&d.id).unwrap_or_default(),
            })
            .collect(),
        new_secret,
    })
}

async fn show(
    State(state): State<AppState>,
    workspace: Workspace,
    Path(id): Path<String>,
    Query(notice): Query<Notice>,
) -> Result<Response, DashError> {
    endpoint_page(
        &state,
        &workspace,
        parse_id(&id)?,
        notice.done.as_deref(),
        None,
    )
    .await
}

async fn set_status(
    State(state): State<AppState>,
    workspace: Workspace,
    Path(id): Path<String>,
    form: CsrfForm,
) -> Result<Response, DashError> {
    let id = parse_id(&id)?;
    update_webhook(
        &state,
        workspace.org(),
        &workspace.audit(),
        id,
        UpdateRequest {
            status: form.get("status").map(str::to_owned),
            ..UpdateRequest::default()
        },
    )
    .await?;
    Ok(Found::to(format!("/dashboard/webhooks/{id}?done=webhook-updated")).into_response())
}

async fn rotate(
    State(state): State<AppState>,
    workspace: Workspace,
    Path(id): Path<String>,
    form: CsrfForm,
) -> Result<Response, DashError> {
    let _ = &form;
    let id = parse_id(&id)?;
    let (secret, _) =
        rotate_webhook_secret(&state, workspace.org(), &workspace.audit(), id).await?;
    let shown = secret.to_whsec().expose_secret().to_owned();
    endpoint_page(&state, &workspace, id, None, Some(shown)).await
}

async fn delete(
    State(state): State<AppState>,
    workspace: Workspace,
    Path(id): Path<String>,
    form: CsrfForm,
) -> Result<Response, DashError> {
    let _ = &form;
    delete_webhook(&state, workspace.org(), &workspace.audit(), parse_id(&id)?).await?;
    Ok(Found::to("/dashboard/webhooks?done=webhook-deleted").into_response())
}

async fn replay(
    State(state): State<AppState>,
    workspace: Workspace,
    Path((id, delivery_id)): Path<(String, String)>,
    form: CsrfForm,
) -> Result<Response, DashError> {
    let _ = &form;
    let id = parse_id(&id)?;
    match replay_delivery(
        &state,
        workspace.org(),
        &workspace.audit(),
        id,
        parse_id(&delivery_id)?,
    )
    .await?
    {
        ReplayOutcome::Created(_) => {
            Ok(Found::to(format!("/dashboard/webhooks/{id}?done=replayed")).into_response())
        }
        ReplayOutcome::NotFound => Err(DashError::NotFound),
        ReplayOutcome::EndpointDisabled => Err(DashError::BadRequest(
            "The webhook is disabled; enable it before replaying its deliveries.".into(),
        )),
    }
}
