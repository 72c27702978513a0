//! `/contacts`: an organization's contacts, as in Resend's API — created, read, updated and deleted by id or
//! by email address (in any case), listed newest first (all of them, or a segment's through
//! `?segment_id=` and `/segments/{id}/contacts`).
//!
//! A contact's `unsubscribed` reads `true` when it unsubscribed or when its address is on the suppression
//! list. Custom `properties` must be defined first (`/contact-properties`) and match their type.

use std::collections::HashMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use opensend_core::{EmailAddress, ErrorCode};
use opensend_store::records::{ContactDetail, ContactPropertyRecord, ContactRecord, PropertyType};
use opensend_store::repos::contacts::{ContactChanges, NewContact};
use opensend_store::{PageRequest, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::api::audience::{
    MAX_TEXT, Reference, TopicChoice, contact_key, nullable, optional_name, segment_ids,
    topic_choices, write_error,
};
use crate::api::list::{ListQuery, ListResponse};
use crate::api::timestamp;
use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(list_segment))
}

/// A contact as lists show it.
#[derive(Debug, Serialize)]
pub struct ContactSummary {
    id: Uuid,
    email: String,
    /// Names are left out when unset: Resend's schema has them as strings, never `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_name: Option<String>,
    created_at: String,
    unsubscribed: bool,
}

impl From<ContactRecord> for ContactSummary {
    fn from(contact: ContactRecord) -> Self {
        Self {
            unsubscribed: contact.effectively_unsubscribed(),
            id: contact.id,
            email: contact.email,
            first_name: contact.first_name,
            last_name: contact.last_name,
            created_at: timestamp(contact.created_at),
        }
    }
}

/// `GET /contacts/{id}`: the summary with `object`, `properties` (`{key: {"type", "value"}}`, as the SDKs
/// read them) and, as an extension, `segment_ids`.
fn detail_view(detail: ContactDetail) -> Value {
    let properties: Map<String, Value> = detail
        .properties
        .into_iter()
        .map(|p| {
            (
                p.key,
                json!({"type": p.value_type.as_str(), "value": p.value}),
            )
        })
        .collect();
    let segment_ids = detail.segment_ids;
    let mut view = json!(ContactSummary::from(detail.contact));
    if let Some(fields) = view.as_object_mut() {
        fields.insert("object".into(), json!("contact"));
        fields.insert("properties".into(), Value::Object(properties));
        fields.insert("segment_ids".into(), json!(segment_ids));
    }
    view
}

/// The values given in `properties`, checked against the organization's definitions: every key defined,
/// every value of its property's type (a string of at most [`MAX_TEXT`] characters, or a number); `null`
/// clears a value where `allow_null`, and is skipped otherwise.
async fn resolve_properties(
    store: &Store,
    organization_id: Uuid,
    given: Option<&Map<String, Value>>,
    allow_null: bool,
) -> Result<Vec<(Uuid, Option<Value>)>, ApiError> {
    let Some(given) = given.filter(|g| !g.is_empty()) else {
        return Ok(Vec::new());
    };
    let definitions: HashMap<String, ContactPropertyRecord> = store
        .contact_properties()
        .all(organization_id)
        .await?
        .into_iter()
        .map(|p| (p.key.clone(), p))
        .collect();
    let mut values = Vec::with_capacity(given.len());
    let mut problems = Vec::new();
    for (key, value) in given {
        let shown: String = key.chars().take(50).collect();
        let Some(definition) = definitions.get(key) else {
            problems.push(format!(
                "`properties.{shown}`: there is no contact property `{shown}` (create it with POST /contact-properties)"
            ));
            continue;
        };
        if value.is_null() {
            if allow_null {
                values.push((definition.id, None));
            }
            continue;
        }
        if !definition.value_type.accepts(value) {
            problems.push(format!(
                "`properties.{shown}` must be a {}",
                definition.value_type
            ));
            continue;
        }
        if definition.value_type == PropertyType::String
            && value.as_str().is_some_and(|s| s.chars().count() > MAX_TEXT)
        {
            problems.push(format!(
                "`properties.{shown}` must be at most {MAX_TEXT} characters long"
            ));
            continue;
        }
        values.push((definition.id, Some(value.clone())));
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(ApiError::validation(format!("{}.", problems.join("; "))))
    }
}

fn parse_email(raw: &str) -> Result<String, ApiError> {
    EmailAddress::parse(raw)
        .map(|a| a.as_str().to_owned())
        .map_err(|e| ApiError::validation(format!("`email`: {e}.")))
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateRequest {
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    unsubscribed: Option<bool>,
    properties: Option<Map<String, Value>>,
    segments: Option<Vec<Reference>>,
    topics: Option<Vec<TopicChoice>>,
    /// Deprecated: a segment to add the contact to.
    audience_id: Option<String>,
}

/// Creates a contact from `body`, adding it to `extra_segment` as well (the audience of
/// `POST /audiences/{id}/contacts`).
pub(crate) async fn create_contact(
    state: &AppState,
    organization_id: Uuid,
    body: CreateRequest,
    extra_segment: Option<Uuid>,
) -> Result<Uuid, ApiError> {
    let raw = body.email.as_deref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingRequiredField,
            "Missing required field `email`.",
        )
    })?;
    let email = parse_email(raw)?;
    let first_name = optional_name("first_name", body.first_name.as_deref())?;
    let last_name = optional_name("last_name", body.last_name.as_deref())?;
    let mut segments = segment_ids("segments", body.segments.as_deref().unwrap_or_default())?;
    if let Some(raw) = body.audience_id.as_deref() {
        segments.push(
            Uuid::try_parse(raw.trim())
                .map_err(|_| ApiError::validation("`audience_id` is not a valid id."))?,
        );
    }
    segments.extend(extra_segment);
    let topics = topic_choices("topics", body.topics.as_deref().unwrap_or_default())?;
    let properties = resolve_properties(
        &state.store,
        organization_id,
        body.properties.as_ref(),
        false,
    )
    .await?
    .into_iter()
    .filter_map(|(id, value)| value.map(|v| (id, v)))
    .collect();
    state
        .store
        .contacts()
        .create(
            organization_id,
            NewContact {
                email,
                first_name,
                last_name,
                unsubscribed: body.unsubscribed.unwrap_or(false),
                properties,
                segments,
                topics,
            },
        )
        .await
        .map_err(write_error)
}

/// `POST /contacts` → 201 `{"object": "contact", "id"}`.
#[utoipa::path(
    post,
    path = "/contacts",
    tag = "contacts",
    operation_id = "contacts.create",
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
    let id = create_contact(&state, caller.organization_id, body, None).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"object": "contact", "id": id})),
    ))
}

/// `?segment_id=`
#[derive(Debug, Default, Deserialize)]
struct SegmentFilter {
    segment_id: Option<String>,
    audience_id: Option<String>,
}

/// One page of contacts, of `segment` only when given (404 when it is not the organization's).
pub(crate) async fn list_page(
    state: &AppState,
    organization_id: Uuid,
    segment: Option<Uuid>,
    page: PageRequest,
) -> Result<Json<ListResponse<ContactSummary>>, ApiError> {
    let found = state
        .store
        .contacts()
        .list(organization_id, segment, page)
        .await?
        .ok_or_else(|| ApiError::not_found("Segment"))?;
    let data = found.items.into_iter().map(ContactSummary::from).collect();
    Ok(Json(ListResponse::new(data, found.has_more)))
}

/// `GET /contacts`: newest first, cursor pagination; `?segment_id=` (or the deprecated `?audience_id=`)
/// keeps a segment's members.
#[utoipa::path(
    get,
    path = "/contacts",
    tag = "contacts",
    operation_id = "contacts.list",
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
    ApiQuery(filter): ApiQuery<SegmentFilter>,
) -> Result<Json<ListResponse<ContactSummary>>, ApiError> {
    let page = page.page()?;
    let segment = match filter
        .segment_id
        .as_deref()
        .or(filter.audience_id.as_deref())
    {
        None => None,
        Some(raw) => Some(Uuid::try_parse(raw.trim()).map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidParameter,
                "`segment_id` must be a segment id.",
            )
        })?),
    };
    list_page(&state, caller.organization_id, segment, page).await
}

/// `GET /segments/{id}/contacts`.
#[utoipa::path(
    get,
    path = "/segments/{segment}/contacts",
    tag = "segments",
    operation_id = "contacts.list_segment",
    params(("segment" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn list_segment(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(segment): PathId,
    ApiQuery(page): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<ContactSummary>>, ApiError> {
    list_page(&state, caller.organization_id, Some(segment), page.page()?).await
}

/// The contact `raw` names, read whole; 404 when the organization has none (or, with `segment`, when it
/// is not a member).
pub(crate) async fn read_contact(
    state: &AppState,
    organization_id: Uuid,
    raw: &str,
    segment: Option<Uuid>,
) -> Result<ContactDetail, ApiError> {
    let key = contact_key(raw)?;
    let detail = state
        .store
        .contacts()
        .get(organization_id, &key)
        .await?
        .filter(|d| segment.is_none_or(|s| d.segment_ids.contains(&s)))
        .ok_or_else(|| ApiError::not_found("Contact"))?;
    Ok(detail)
}

/// `GET /contacts/{id or email}`.
#[utoipa::path(
    get,
    path = "/contacts/{contact}",
    tag = "contacts",
    operation_id = "contacts.show",
    params(("contact" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn show(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let detail = read_contact(&state, caller.organization_id, &raw, None).await?;
    Ok(Json(detail_view(detail)))
}

#[derive(Debug, Deserialize)]
pub(crate) struct UpdateRequest {
    email: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    last_name: Option<Option<String>>,
    unsubscribed: Option<bool>,
    properties: Option<Map<String, Value>>,
}

/// Applies `body` to the contact `raw` names; its id.
pub(crate) async fn update_contact(
    state: &AppState,
    organization_id: Uuid,
    raw: &str,
    body: UpdateRequest,
) -> Result<Uuid, ApiError> {
    let key = contact_key(raw)?;
    let changes = ContactChanges {
        email: body.email.as_deref().map(parse_email).transpose()?,
        first_name: body
            .first_name
            .map(|v| optional_name("first_name", v.as_deref()))
            .transpose()?,
        last_name: body
            .last_name
            .map(|v| optional_name("last_name", v.as_deref()))
            .transpose()?,
        unsubscribed: body.unsubscribed,
        properties: resolve_properties(
            &state.store,
            organization_id,
            body.properties.as_ref(),
            true,
        )
        .await?,
    };
    state
        .store
        .contacts()
        .update(organization_id, &key, &changes)
        .await
        .map_err(write_error)?
        .ok_or_else(|| ApiError::not_found("Contact"))
}

/// `PATCH /contacts/{id or email}` → `{"object": "contact", "id"}`. `null` clears a name or a property.
#[utoipa::path(
    patch,
    path = "/contacts/{contact}",
    tag = "contacts",
    operation_id = "contacts.update",
    params(("contact" = String, Path)),
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
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<UpdateRequest>,
) -> Result<Json<Value>, ApiError> {
    let id = update_contact(&state, caller.organization_id, &raw, body).await?;
    Ok(Json(json!({"object": "contact", "id": id})))
}

/// `DELETE /contacts/{id or email}` → `{"object": "contact", "id", "deleted": true}`.
#[utoipa::path(
    delete,
    path = "/contacts/{contact}",
    tag = "contacts",
    operation_id = "contacts.remove",
    params(("contact" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn remove(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = contact_key(&raw)?;
    let id = state
        .store
        .contacts()
        .delete(caller.organization_id, &key)
        .await?
        .ok_or_else(|| ApiError::not_found("Contact"))?;
    Ok(Json(
        json!({"object": "contact", "id": id, "contact": id, "deleted": true}),
    ))
}
