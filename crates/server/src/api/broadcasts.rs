//! `/broadcasts`: one email content sent to every contact of a segment (Resend's shapes), personalised per
//! contact and written by the background fan-out (`jobs::broadcasts`).
//!
//! Statuses: `draft` → `scheduled` (sent with a future `scheduled_at`) or `queued` (sent now) → `sending`
//! (the fan-out has started) → `sent` (every contact has its email or was skipped); `canceled` when a queued
//! or sending broadcast is canceled. Only drafts change (`PATCH`) and only drafts and scheduled broadcasts are
//! deleted (deleting a scheduled one cancels it); anything else is a 422 naming the status. Cancelling a
//! scheduled broadcast makes it a draft again.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use opensend_core::{ErrorCode, Mailbox};
use opensend_store::entities::broadcast;
use opensend_store::repos::broadcasts::{
    self as store, BroadcastChanges, BroadcastContent, Change, RecipientFilter, SendOrder,
};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::audience::nullable;
use crate::api::emails::limits;
use crate::api::emails::request::parse_schedule;
use crate::api::list::{ListQuery, ListResponse};
use crate::api::timestamp;
use crate::auth::{ApiKeyContext, FullAccess};
use crate::broadcast::Template;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::sending::identity_for;
use crate::state::AppState;

/// Longest broadcast name, in characters.
pub const MAX_NAME: usize = 255;
/// Longest preview text, in characters.
pub const MAX_PREVIEW_TEXT: usize = 255;
/// Largest HTML or text body, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(send))
        .routes(routes!(cancel))
        .routes(routes!(duplicate))
        .routes(routes!(recipients))
        .routes(routes!(clicked_links))
}

fn missing(field: &str) -> ApiError {
    ApiError::new(
        ErrorCode::MissingRequiredField,
        format!("Missing required field `{field}`."),
    )
}

fn not_found() -> ApiError {
    ApiError::not_found("Broadcast")
}

/// One address or a list of them (`reply_to`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

fn from_address(raw: &str) -> Result<String, ApiError> {
    Mailbox::parse(raw.trim())
        .map(|m| m.to_string())
        .map_err(|e| ApiError::validation(format!("`from`: {e}")))
}

fn reply_to(raw: Option<OneOrMany>) -> Result<Vec<String>, ApiError> {
    let given = raw.map(OneOrMany::into_vec).unwrap_or_default();
    if given.len() > limits::REPLY_TO {
        return Err(ApiError::validation(format!(
            "`reply_to` may list at most {} addresses.",
            limits::REPLY_TO
        )));
    }
    given
        .iter()
        .map(|r| {
            Mailbox::parse(r.trim())
                .map(|m| m.to_string())
                .map_err(|e| ApiError::validation(format!("`reply_to`: {e}")))
        })
        .collect()
}

fn subject(raw: &str) -> Result<String, ApiError> {
    let subject = raw.trim();
    if subject.is_empty() {
        return Err(ApiError::validation("`subject` must not be empty."));
    }
    if subject.chars().count() > limits::SUBJECT_CHARS {
        return Err(ApiError::validation(format!(
            "`subject` must be at most {} characters long.",
            limits::SUBJECT_CHARS
        )));
    }
    Ok(subject.to_owned())
}

fn text_of(field: &str, raw: Option<String>, max_chars: usize) -> Result<Option<String>, ApiError> {
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) if text.chars().count() > max_chars => Err(ApiError::validation(format!(
            "`{field}` must be at most {max_chars} characters long."
        ))),
        Some(text) => Ok(Some(text.to_owned())),
    }
}

fn body_of(field: &str, raw: Option<String>) -> Result<Option<String>, ApiError> {
    match raw {
        Some(body) if body.len() > MAX_BODY_BYTES => Err(ApiError::validation(format!(
            "`{field}` must be at most {MAX_BODY_BYTES} bytes."
        ))),
        Some(body) if body.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn id_of(field: &str, raw: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw.trim())
        .map_err(|_| ApiError::validation(format!("`{field}` is not a valid id.")))
}

/// The segment given as `segment_id` or (deprecated) `audience_id`: an audience is a segment.
async fn segment_of(
    state: &AppState,
    organization_id: Uuid,
    segment_id: Option<&str>,
    audience_id: Option<&str>,
) -> Result<Option<Uuid>, ApiError> {
    let (field, raw) = match (segment_id, audience_id) {
        (Some(raw), _) => ("segment_id", raw),
        (None, Some(raw)) => ("audience_id", raw),
        (None, None) => return Ok(None),
    };
    let id = id_of(field, raw)?;
    if state
        .store
        .segments()
        .get(organization_id, id)
        .await?
        .is_none()
    {
        return Err(ApiError::validation(format!(
            "`{field}` does not name a segment of this organization."
        )));
    }
    Ok(Some(id))
}

async fn topic_of(state: &AppState, organization_id: Uuid, raw: &str) -> Result<Uuid, ApiError> {
    let id = id_of("topic_id", raw)?;
    if state
        .store
        .topics()
        .get(organization_id, id)
        .await?
        .is_none()
    {
        return Err(ApiError::validation(
            "`topic_id` does not name a topic of this organization.",
        ));
    }
    Ok(id)
}

/// `scheduled_at`: ISO 8601 (as emails take it), or `in N minutes|hours|days` (Resend's natural language, the
/// relative form only). Empty or absent: now.
pub fn schedule(raw: Option<&str>, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if let Some(rest) = raw.to_ascii_lowercase().strip_prefix("in ") {
        let mut words = rest.split_whitespace();
        let (Some(count), Some(unit), None) = (words.next(), words.next(), words.next()) else {
            return Err(bad_schedule(raw));
        };
        let count: i64 = count.parse().map_err(|_| bad_schedule(raw))?;
        let delta = match unit {
            "min" | "mins" | "minute" | "minutes" => TimeDelta::try_minutes(count),
            "hour" | "hours" | "hr" | "hrs" => TimeDelta::try_hours(count),
            "day" | "days" => TimeDelta::try_days(count),
            _ => None,
        }
        .ok_or_else(|| bad_schedule(raw))?;
        if count < 1 || delta > TimeDelta::days(limits::SCHEDULE_AHEAD_DAYS) {
            return Err(ApiError::validation(format!(
                "`scheduled_at` must be in the future and within {} days.",
                limits::SCHEDULE_AHEAD_DAYS
            )));
        }
        return Ok(Some(now + delta));
    }
    parse_schedule(raw, now).map(Some)
}

fn bad_schedule(raw: &str) -> ApiError {
    ApiError::validation(format!(
        "`scheduled_at` must be an ISO 8601 date and time with an offset (2026-12-01T09:30:00Z) or `in N minutes`, `in N hours`, `in N days`; not `{}`.",
        raw.chars().take(64).collect::<String>()
    ))
}

/// Checks a broadcast can be sent and with which sender identity; the order to record.
async fn send_order(
    state: &AppState,
    caller: &ApiKeyContext,
    b: &BroadcastContent,
    scheduled_at: Option<DateTime<Utc>>,
) -> Result<SendOrder, ApiError> {
    if b.segment_id.is_none() {
        return Err(missing("segment_id"));
    }
    if b.html.is_none() && b.text.is_none() {
        return Err(ApiError::validation(
            "A broadcast needs `html` or `text` before it can be sent.",
        ));
    }
    let template = Template::parse(&b.subject, b.html.as_deref(), b.text.as_deref());
    let keys: BTreeSet<String> = state
        .store
        .contact_properties()
        .all(caller.organization_id)
        .await?
        .into_iter()
        .map(|p| p.key)
        .collect();
    let unknown = template.unknown_keys(&keys);
    if !unknown.is_empty() {
        return Err(ApiError::validation(format!(
            "The content uses variables that name nothing: {}. Use contact.first_name, contact.last_name, contact.email, contact.<property key> or RESEND_UNSUBSCRIBE_URL.",
            unknown.join(", ")
        )));
    }
    let from = Mailbox::parse(&b.from).map_err(|e| ApiError::validation(format!("`from`: {e}")))?;
    let identity = identity_for(state, caller, &from.address).await?;
    Ok(SendOrder {
        scheduled_at,
        api_key_id: Some(caller.key_id),
        sending_domain_id: identity.domain_id,
        unverified_sender: identity.unverified,
    })
}

fn content_of(b: &broadcast::Model) -> Result<BroadcastContent, ApiError> {
    Ok(BroadcastContent {
        name: b.name.clone(),
        segment_id: b.segment_id,
        topic_id: b.topic_id,
        from: b.from_address.clone(),
        subject: b.subject.clone(),
        reply_to: store::reply_to_of(b)?,
        preview_text: b.preview_text.clone(),
        html: b.html.clone(),
        text: b.text_body.clone(),
    })
}

/// Drops the fields Resend's schemas type as plain strings when they are unset: they are left out rather than
/// `null` (as topics leave out an unset `description`).
fn without_unset(mut value: Value, fields: &[&str]) -> Value {
    if let Some(object) = value.as_object_mut() {
        for field in fields {
            if object.get(*field).is_some_and(Value::is_null) {
                object.remove(*field);
            }
        }
    }
    value
}

fn view(b: &broadcast::Model) -> Result<Value, ApiError> {
    Ok(without_unset(
        json!({
            "object": "broadcast",
            "id": b.id,
            "name": b.name,
            "audience_id": b.segment_id,
            "segment_id": b.segment_id,
            "topic_id": b.topic_id,
            "from": b.from_address,
            "subject": b.subject,
            "reply_to": store::reply_to_of(b)?,
            "preview_text": b.preview_text,
            "html": b.html,
            "text": b.text_body,
            "status": b.status,
            "created_at": timestamp(b.created_at),
            "scheduled_at": b.scheduled_at.map(timestamp),
            "sent_at": b.sent_at.map(timestamp),
        }),
        &["name", "preview_text", "scheduled_at", "sent_at"],
    ))
}

fn refused(action: &str, status: &str) -> ApiError {
    ApiError::validation(format!("This broadcast is `{status}`; only {action}."))
}

#[derive(Debug, Deserialize)]
struct CreateRequest {
    name: Option<String>,
    segment_id: Option<String>,
    audience_id: Option<String>,
    topic_id: Option<String>,
    from: Option<String>,
    subject: Option<String>,
    reply_to: Option<OneOrMany>,
    preview_text: Option<String>,
    html: Option<String>,
    text: Option<String>,
    send: Option<bool>,
    scheduled_at: Option<String>,
}

/// `POST /broadcasts` → 201 `{"object": "broadcast", "id"}`. A draft, or sent at once with `send: true`
/// (optionally `scheduled_at`).
#[utoipa::path(
    post,
    path = "/broadcasts",
    tag = "broadcasts",
    operation_id = "broadcasts.create",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 201, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn create(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    ApiJson(body): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let org = caller.organization_id;
    let segment_id = segment_of(
        &state,
        org,
        body.segment_id.as_deref(),
        body.audience_id.as_deref(),
    )
    .await?
    .ok_or_else(|| missing("segment_id"))?;
    let topic_id = match body.topic_id.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(raw) => Some(topic_of(&state, org, raw).await?),
        None => None,
    };
    let content = BroadcastContent {
        name: text_of("name", body.name, MAX_NAME)?,
        segment_id: Some(segment_id),
        topic_id,
        from: from_address(body.from.as_deref().ok_or_else(|| missing("from"))?)?,
        subject: subject(body.subject.as_deref().ok_or_else(|| missing("subject"))?)?,
        reply_to: reply_to(body.reply_to)?,
        preview_text: text_of("preview_text", body.preview_text, MAX_PREVIEW_TEXT)?,
        html: body_of("html", body.html)?,
        text: body_of("text", body.text)?,
    };
    let send = body.send.unwrap_or(false);
    let scheduled_at = schedule(body.scheduled_at.as_deref(), Utc::now())?;
    if scheduled_at.is_some() && !send {
        return Err(ApiError::validation(
            "`scheduled_at` can only be used with `send: true`.",
        ));
    }
    let order = match send {
        true => Some(send_order(&state, &caller, &content, scheduled_at).await?),
        false => None,
    };
    let created = state
        .store
        .broadcasts()
        .create(org, &content, order.as_ref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"object": "broadcast", "id": created.id})),
    ))
}

/// `GET /broadcasts`: newest first, cursor-paginated.
#[utoipa::path(
    get,
    path = "/broadcasts",
    tag = "broadcasts",
    operation_id = "broadcasts.list",
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn list(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    ApiQuery(page): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<Value>>, ApiError> {
    let found = state
        .store
        .broadcasts()
        .list(caller.organization_id, page.page()?)
        .await?;
    let data = found
        .items
        .iter()
        .map(|b| {
            without_unset(
                json!({
                    "id": b.id,
                    "name": b.name,
                    "audience_id": b.segment_id,
                    "segment_id": b.segment_id,
                    "status": b.status,
                    "created_at": timestamp(b.created_at),
                    "scheduled_at": b.scheduled_at.map(timestamp),
                    "sent_at": b.sent_at.map(timestamp),
                    "topic_id": b.topic_id,
                }),
                &[
                    "name",
                    "audience_id",
                    "segment_id",
                    "scheduled_at",
                    "sent_at",
                    "topic_id",
                ],
            )
        })
        .collect();
    Ok(Json(ListResponse::new(data, found.has_more)))
}

/// `GET /broadcasts/{id}`.
#[utoipa::path(
    get,
    path = "/broadcasts/{broadcast}",
    tag = "broadcasts",
    operation_id = "broadcasts.show",
    params(("broadcast" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn show(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
) -> Result<Json<Value>, ApiError> {
    let found = state
        .store
        .broadcasts()
        .get(caller.organization_id, id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(view(&found)?))
}

#[derive(Debug, Deserialize)]
struct UpdateRequest {
    #[serde(default, deserialize_with = "nullable")]
    name: Option<Option<String>>,
    segment_id: Option<String>,
    audience_id: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    topic_id: Option<Option<String>>,
    from: Option<String>,
    subject: Option<String>,
    reply_to: Option<OneOrMany>,
    #[serde(default, deserialize_with = "nullable")]
    preview_text: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    html: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    text: Option<Option<String>>,
}

/// `PATCH /broadcasts/{id}` → `{"object": "broadcast", "id"}`; drafts only (else 422).
#[utoipa::path(
    patch,
    path = "/broadcasts/{broadcast}",
    tag = "broadcasts",
    operation_id = "broadcasts.update",
    params(("broadcast" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn update(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
    ApiJson(body): ApiJson<UpdateRequest>,
) -> Result<Json<Value>, ApiError> {
    let org = caller.organization_id;
    let topic_id = match body.topic_id {
        None => None,
        Some(None) => Some(None),
        Some(Some(raw)) if raw.trim().is_empty() => Some(None),
        Some(Some(raw)) => Some(Some(topic_of(&state, org, &raw).await?)),
    };
    let changes = BroadcastChanges {
        name: body
            .name
            .map(|n| text_of("name", n, MAX_NAME))
            .transpose()?,
        segment_id: segment_of(
            &state,
            org,
            body.segment_id.as_deref(),
            body.audience_id.as_deref(),
        )
        .await?,
        topic_id,
        from: body.from.as_deref().map(from_address).transpose()?,
        subject: body.subject.as_deref().map(subject).transpose()?,
        reply_to: body.reply_to.map(|r| reply_to(Some(r))).transpose()?,
        preview_text: body
            .preview_text
            .map(|p| text_of("preview_text", p, MAX_PREVIEW_TEXT))
            .transpose()?,
        html: body.html.map(|h| body_of("html", h)).transpose()?,
        text: body.text.map(|t| body_of("text", t)).transpose()?,
    };
    match state.store.broadcasts().update(org, id, &changes).await? {
        Change::Done => Ok(Json(json!({"object": "broadcast", "id": id}))),
        Change::NotFound => Err(not_found()),
        Change::Refused(status) => Err(refused("drafts can be updated", &status)),
    }
}

/// `DELETE /broadcasts/{id}` → `{"object": "broadcast", "id", "deleted": true}`: a draft, or a scheduled
/// broadcast (its sending is canceled).
#[utoipa::path(
    delete,
    path = "/broadcasts/{broadcast}",
    tag = "broadcasts",
    operation_id = "broadcasts.remove",
    params(("broadcast" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn remove(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
) -> Result<Json<Value>, ApiError> {
    match state
        .store
        .broadcasts()
        .delete(caller.organization_id, id)
        .await?
    {
        Change::Done => Ok(Json(
            json!({"object": "broadcast", "id": id, "deleted": true}),
        )),
        Change::NotFound => Err(not_found()),
        Change::Refused(status) => Err(refused(
            "drafts and scheduled broadcasts can be deleted",
            &status,
        )),
    }
}

#[derive(Debug, Default, Deserialize)]
struct SendRequest {
    scheduled_at: Option<String>,
}

/// `POST /broadcasts/{id}/send` → `{"id"}`: a draft is sent now, or at `scheduled_at`.
#[utoipa::path(
    post,
    path = "/broadcasts/{broadcast}/send",
    tag = "broadcasts",
    operation_id = "broadcasts.send",
    params(("broadcast" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn send(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
    ApiJson(body): ApiJson<SendRequest>,
) -> Result<Json<Value>, ApiError> {
    let org = caller.organization_id;
    let broadcasts = state.store.broadcasts();
    let found = broadcasts.get(org, id).await?.ok_or_else(not_found)?;
    if found.status != store::DRAFT {
        return Err(refused("drafts can be sent", &found.status));
    }
    let scheduled_at = schedule(body.scheduled_at.as_deref(), Utc::now())?;
    let content = content_of(&found)?;
    if let Some(segment) = content.segment_id
        && state.store.segments().get(org, segment).await?.is_none()
    {
        return Err(ApiError::validation(
            "The broadcast's segment no longer exists; set `segment_id` first.",
        ));
    }
    let order = send_order(&state, &caller, &content, scheduled_at).await?;
    match broadcasts.send(org, id, &order).await? {
        Change::Done => Ok(Json(json!({"id": id}))),
        Change::NotFound => Err(not_found()),
        Change::Refused(status) => Err(refused("drafts can be sent", &status)),
    }
}

/// `POST /broadcasts/{id}/cancel` → `{"object": "broadcast", "id"}`: a scheduled broadcast goes back to
/// `draft`; a queued or sending one becomes `canceled` (emails already written are not recalled).
#[utoipa::path(
    post,
    path = "/broadcasts/{broadcast}/cancel",
    tag = "broadcasts",
    operation_id = "broadcasts.cancel",
    params(("broadcast" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn cancel(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
) -> Result<Json<Value>, ApiError> {
    match state
        .store
        .broadcasts()
        .cancel(caller.organization_id, id)
        .await?
    {
        Change::Done => Ok(Json(json!({"object": "broadcast", "id": id}))),
        Change::NotFound => Err(not_found()),
        Change::Refused(status) => Err(refused(
            "scheduled, queued or sending broadcasts can be canceled",
            &status,
        )),
    }
}

/// `POST /broadcasts/{id}/duplicate` → 201 `{"object": "broadcast", "id"}`: a new draft with the same
/// content and audience.
#[utoipa::path(
    post,
    path = "/broadcasts/{broadcast}/duplicate",
    tag = "broadcasts",
    operation_id = "broadcasts.duplicate",
    params(("broadcast" = String, Path)),
    responses(
        (status = 201, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn duplicate(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let copy = state
        .store
        .broadcasts()
        .duplicate(caller.organization_id, id)
        .await?
        .ok_or_else(not_found)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"object": "broadcast", "id": copy.id})),
    ))
}

#[derive(Debug, Deserialize)]
struct RecipientsQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    email: Option<String>,
    bounce_type: Option<String>,
    limit: Option<String>,
    after: Option<String>,
    before: Option<String>,
}

/// `?type=` as a filter: the email statuses and skip reasons it covers.
fn recipient_filter(kind: &str) -> Result<RecipientFilter, ApiError> {
    let statuses = |s: &[&str]| Some(s.iter().map(|s| (*s).to_owned()).collect());
    let reasons = |r: &[&str]| Some(r.iter().map(|r| (*r).to_owned()).collect());
    Ok(match kind {
        "sent" => RecipientFilter {
            email_statuses: statuses(&[
                "sent",
                "delivered",
                "delivery_delayed",
                "opened",
                "clicked",
                "bounced",
                "complained",
            ]),
            ..RecipientFilter::default()
        },
        "delivered" => RecipientFilter {
            email_statuses: statuses(&["delivered", "opened", "clicked"]),
            ..RecipientFilter::default()
        },
        "opened" => RecipientFilter {
            email_statuses: statuses(&["opened", "clicked"]),
            ..RecipientFilter::default()
        },
        "clicked" => RecipientFilter {
            email_statuses: statuses(&["clicked"]),
            ..RecipientFilter::default()
        },
        "bounced" => RecipientFilter {
            email_statuses: statuses(&["bounced"]),
            ..RecipientFilter::default()
        },
        "complained" => RecipientFilter {
            email_statuses: statuses(&["complained"]),
            ..RecipientFilter::default()
        },
        "unsubscribed" => RecipientFilter {
            skipped_reasons: reasons(&[store::SKIP_UNSUBSCRIBED, store::SKIP_OPTED_OUT]),
            ..RecipientFilter::default()
        },
        "suppressed" => RecipientFilter {
            email_statuses: statuses(&["suppressed"]),
            skipped_reasons: reasons(&[store::SKIP_SUPPRESSED]),
            ..RecipientFilter::default()
        },
        "queued" | "skipped" => RecipientFilter {
            email_statuses: (kind == "queued").then(|| vec!["queued".to_owned()]),
            skipped_reasons: (kind == "skipped").then(|| {
                vec![
                    store::SKIP_UNSUBSCRIBED.to_owned(),
                    store::SKIP_SUPPRESSED.to_owned(),
                    store::SKIP_OPTED_OUT.to_owned(),
                ]
            }),
            ..RecipientFilter::default()
        },
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                format!(
                    "`type` must be one of sent, delivered, opened, clicked, bounced, complained, unsubscribed, suppressed, queued, skipped; not `{}`.",
                    other.chars().take(40).collect::<String>()
                ),
            ));
        }
    })
}

/// `GET /broadcasts/{id}/recipients`: every contact the fan-out reached, with its email's state
/// (`status`: the email's status, or `skipped` with `skipped_reason` `unsubscribed`, `suppressed` or
/// `opted_out`). `type` (Resend's filter) is optional here: without it every recipient is listed.
#[utoipa::path(
    get,
    path = "/broadcasts/{broadcast}/recipients",
    tag = "broadcasts",
    operation_id = "broadcasts.recipients",
    params(("broadcast" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn recipients(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
    ApiQuery(query): ApiQuery<RecipientsQuery>,
) -> Result<Json<ListResponse<Value>>, ApiError> {
    let mut filter = match query
        .kind
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
    {
        Some(kind) => recipient_filter(kind)?,
        None => RecipientFilter::default(),
    };
    if query.bounce_type.is_some() && query.kind.as_deref() != Some("bounced") {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "`bounce_type` is only valid with `type=bounced`.",
        ));
    }
    filter.email = query
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned);
    let page = serde_json::from_value::<ListQuery>(json!({
        "limit": query.limit,
        "after": query.after,
        "before": query.before,
    }))
    .map_err(|e| ApiError::new(ErrorCode::InvalidParameter, e.to_string()))?
    .page()?;
    let found = state
        .store
        .broadcasts()
        .recipients(caller.organization_id, id, &filter, page)
        .await?
        .ok_or_else(not_found)?;
    let data = found
        .items
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id,
                "contact_id": r.contact_id,
                "email": r.email,
                "email_id": r.email_id,
                "status": r.status,
                "skipped_reason": r.skipped_reason,
                "created_at": timestamp(r.created_at),
            })
        })
        .collect();
    Ok(Json(ListResponse::new(data, found.has_more)))
}

/// `?limit`, `?after`, `?before` of `GET /broadcasts/{id}/clicked-links`: the cursors are the opaque row ids
/// the list gave (`base64url("offset:N")`), as Resend's are.
#[derive(Debug, Default, Deserialize)]
struct ClickedLinksQuery {
    limit: Option<String>,
    after: Option<String>,
    before: Option<String>,
}

/// The opaque id of the clicked-links row at `offset`.
fn offset_cursor(offset: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

fn read_offset_cursor(raw: &str) -> Result<usize, ApiError> {
    use base64::Engine;
    let invalid = || {
        ApiError::new(
            ErrorCode::InvalidParameter,
            "`after` and `before` must be ids returned by this list.",
        )
    };
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw.trim_end_matches('='))
        .map_err(|_| invalid())?;
    std::str::from_utf8(&decoded)
        .ok()
        .and_then(|text| text.strip_prefix("offset:"))
        .and_then(|n| n.parse().ok())
        .ok_or_else(invalid)
}

/// The rows `[start, end)` of `total` a page asks for, and whether more follow in its direction.
fn offset_page(query: &ClickedLinksQuery, total: usize) -> Result<(usize, usize, bool), ApiError> {
    let limit = serde_json::from_value::<ListQuery>(json!({"limit": query.limit}))
        .map_err(|e| ApiError::new(ErrorCode::InvalidParameter, e.to_string()))?
        .page()?
        .limit();
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    match (query.after.as_deref(), query.before.as_deref()) {
        (Some(_), Some(_)) => Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "Give `after` or `before`, not both.",
        )),
        (Some(after), None) => {
            let start = read_offset_cursor(after)?.saturating_add(1).min(total);
            let end = start.saturating_add(limit).min(total);
            Ok((start, end, end < total))
        }
        (None, Some(before)) => {
            let end = read_offset_cursor(before)?.min(total);
            let start = end.saturating_sub(limit);
            Ok((start, end, start > 0))
        }
        (None, None) => {
            let end = limit.min(total);
            Ok((0, end, end < total))
        }
    }
}

/// `GET /broadcasts/{id}/clicked-links`: each link of the broadcast's emails that was clicked (open and click
/// tracking, see docs/tracking.md), with `clicks` and `unique_clicks` (how many recipients clicked it), most
/// clicked first.
#[utoipa::path(
    get,
    path = "/broadcasts/{broadcast}/clicked-links",
    tag = "broadcasts",
    operation_id = "broadcasts.clicked_links",
    params(("broadcast" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn clicked_links(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
    ApiQuery(query): ApiQuery<ClickedLinksQuery>,
) -> Result<Json<ListResponse<Value>>, ApiError> {
    state
        .store
        .broadcasts()
        .get(caller.organization_id, id)
        .await?
        .ok_or_else(not_found)?;
    let links = state
        .store
        .engagements()
        .clicked_links(
            caller.organization_id,
            opensend_store::repos::engagement::ClickScope::Broadcast(id),
        )
        .await?;
    let (start, end, has_more) = offset_page(&query, links.len())?;
    let data = links
        .iter()
        .enumerate()
        .skip(start)
        .take(end.saturating_sub(start))
        .map(|(offset, link)| {
            json!({
                "id": offset_cursor(offset),
                "url": link.url,
                "clicks": link.clicks,
                "unique_clicks": link.unique_clicks,
            })
        })
        .collect();
    Ok(Json(ListResponse::new(data, has_more)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clicked_links_page_by_offset_cursors() {
        let page = |limit: &str, after: Option<usize>, before: Option<usize>, total| {
            offset_page(
                &ClickedLinksQuery {
                    limit: Some(limit.to_owned()),
                    after: after.map(offset_cursor),
                    before: before.map(offset_cursor),
                },
                total,
            )
            .unwrap()
        };
        assert_eq!(offset_cursor(0), "b2Zmc2V0OjA", "as Resend writes them");
        assert_eq!(page("2", None, None, 5), (0, 2, true));
        assert_eq!(page("2", Some(1), None, 5), (2, 4, true));
        assert_eq!(page("2", Some(3), None, 5), (4, 5, false));
        assert_eq!(page("2", None, Some(4), 5), (2, 4, true));
        assert_eq!(page("2", None, Some(1), 5), (0, 1, false));
        assert_eq!(page("10", None, None, 0), (0, 0, false));
        assert!(read_offset_cursor("not a cursor").is_err());
        assert!(read_offset_cursor(&offset_cursor(3)[..4]).is_err());
    }

    #[test]
    fn schedules_in_iso_8601_or_relative_words() {
        let now = Utc::now();
        assert_eq!(schedule(None, now).unwrap(), None);
        assert_eq!(schedule(Some(" "), now).unwrap(), None);
        assert_eq!(
            schedule(Some("in 5 minutes"), now).unwrap(),
            Some(now + TimeDelta::minutes(5))
        );
        assert_eq!(
            schedule(Some("in 1 hour"), now).unwrap(),
            Some(now + TimeDelta::hours(1))
        );
        assert!(schedule(Some("in 0 min"), now).is_err());
        assert!(schedule(Some("in 400 days"), now).is_err());
        assert!(schedule(Some("tomorrow at noon"), now).is_err());
        let later = (now + TimeDelta::hours(2)).to_rfc3339();
        assert!(schedule(Some(&later), now).unwrap().is_some());
    }
}
