//! `/segments`: named groups of contacts (Resend's segments; `/audiences` serves them in their deprecated
//! shapes), and a contact's segments under `/contacts/{id or email}/segments`.
//!
//! Membership is explicit (added and removed per contact). A segment's `filter` is kept and shown as it
//! was given; it does not select contacts.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use opensend_core::ErrorCode;
use opensend_store::records::SegmentRecord;
use opensend_store::repos::segments::Membership;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::audience::{MAX_TEXT, bounded, contact_key};
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
        .routes(routes!(of_contact))
        .routes(routes!(add_contact, remove_contact))
}

#[derive(Debug, Serialize)]
struct SegmentSummary {
    id: Uuid,
    name: String,
    created_at: String,
}

/// A segment's name: 1 to [`MAX_TEXT`] characters.
pub(crate) fn segment_name(raw: Option<&str>) -> Result<String, ApiError> {
    let raw = raw.ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingRequiredField,
            "Missing required field `name`.",
        )
    })?;
    bounded("name", raw, MAX_TEXT)
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateRequest {
    pub name: Option<String>,
    filter: Option<Value>,
}

pub(crate) async fn create_segment(
    state: &AppState,
    organization_id: Uuid,
    body: &CreateRequest,
) -> Result<SegmentRecord, ApiError> {
    let name = segment_name(body.name.as_deref())?;
    let filter = match &body.filter {
        None | Some(Value::Null) => None,
        Some(filter @ Value::Object(_)) => Some(filter),
        Some(_) => return Err(ApiError::validation("`filter` must be an object.")),
    };
    Ok(state
        .store
        .segments()
        .create(organization_id, &name, filter)
        .await?)
}

/// `POST /segments` → 201 `{"object": "segment", "id", "name"}`.
#[utoipa::path(
    post,
    path = "/segments",
    tag = "segments",
    operation_id = "segments.create",
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
    let segment = create_segment(&state, caller.organization_id, &body).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"object": "segment", "id": segment.id, "name": segment.name})),
    ))
}

/// `GET /segments`.
#[utoipa::path(
    get,
    path = "/segments",
    tag = "segments",
    operation_id = "segments.list",
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
) -> Result<Json<ListResponse<SegmentSummary>>, ApiError> {
    let found = state
        .store
        .segments()
        .list(caller.organization_id, page.page()?)
        .await?;
    let data = found
        .items
        .into_iter()
        .map(|s| SegmentSummary {
            id: s.id,
            name: s.name,
            created_at: timestamp(s.created_at),
        })
        .collect();
    Ok(Json(ListResponse::new(data, found.has_more)))
}

/// `GET /segments/{id}`.
#[utoipa::path(
    get,
    path = "/segments/{segment}",
    tag = "segments",
    operation_id = "segments.show",
    params(("segment" = String, Path)),
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
    let segment = state
        .store
        .segments()
        .get(caller.organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Segment"))?;
    let mut view = json!({
        "object": "segment",
        "id": segment.id,
        "name": segment.name,
        "created_at": timestamp(segment.created_at),
    });
    // Left out when unset: Resend's schema has `filter` as an object, never `null`.
    if let Some(filter) = segment.filter {
        view["filter"] = filter;
    }
    Ok(Json(view))
}

#[derive(Debug, Deserialize)]
struct UpdateRequest {
    name: Option<String>,
}

/// `PATCH /segments/{id}` with `name` → `{"object": "segment", "id"}`.
#[utoipa::path(
    patch,
    path = "/segments/{segment}",
    tag = "segments",
    operation_id = "segments.update",
    params(("segment" = String, Path)),
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
    let name = segment_name(body.name.as_deref())?;
    if !state
        .store
        .segments()
        .rename(caller.organization_id, id, &name)
        .await?
    {
        return Err(ApiError::not_found("Segment"));
    }
    Ok(Json(json!({"object": "segment", "id": id})))
}

/// `DELETE /segments/{id}` → `{"object": "segment", "id", "deleted": true}`. Its contacts stay.
pub(crate) async fn delete_segment(
    state: &AppState,
    organization_id: Uuid,
    id: Uuid,
) -> Result<(), ApiError> {
    if state.store.segments().delete(organization_id, id).await? {
        Ok(())
    } else {
        Err(ApiError::not_found("Segment"))
    }
}

#[utoipa::path(
    delete,
    path = "/segments/{segment}",
    tag = "segments",
    operation_id = "segments.remove",
    params(("segment" = String, Path)),
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
    delete_segment(&state, caller.organization_id, id).await?;
    Ok(Json(
        json!({"object": "segment", "id": id, "deleted": true}),
    ))
}

/// `GET /contacts/{id or email}/segments`: `{id, name, created_at}` with `created_at` the time the contact
/// joined.
#[utoipa::path(
    get,
    path = "/contacts/{contact}/segments",
    tag = "contacts",
    operation_id = "segments.of_contact",
    params(("contact" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn of_contact(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Path(raw): Path<String>,
    ApiQuery(page): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<SegmentSummary>>, ApiError> {
    let key = contact_key(&raw)?;
    let found = state
        .store
        .segments()
        .of_contact(caller.organization_id, &key, page.page()?)
        .await?
        .ok_or_else(|| ApiError::not_found("Contact"))?;
    let data = found
        .items
        .into_iter()
        .map(|m| SegmentSummary {
            id: m.segment.id,
            name: m.segment.name,
            created_at: timestamp(m.added_at),
        })
        .collect();
    Ok(Json(ListResponse::new(data, found.has_more)))
}

fn membership_path(
    raw: &(String, String),
) -> Result<(opensend_store::repos::contacts::ContactKey, Uuid), ApiError> {
    let key = contact_key(&raw.0)?;
    let segment = Uuid::try_parse(&raw.1).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidParameter,
            "The segment id in the path must be a valid UUID.",
        )
    })?;
    Ok((key, segment))
}

/// `POST /contacts/{id or email}/segments/{segment_id}` → 201 `{"object": "contact_segment", "id",
/// "contact_id", "segment_id"}` (`id` is the segment's). Adding a member again changes nothing.
#[utoipa::path(
    post,
    path = "/contacts/{contact}/segments/{segment}",
    tag = "contacts",
    operation_id = "segments.add_contact",
    params(("contact" = String, Path), ("segment" = String, Path)),
    responses(
        (status = 201, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn add_contact(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Path(raw): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (key, segment) = membership_path(&raw)?;
    match state
        .store
        .segments()
        .add_contact(caller.organization_id, &key, segment)
        .await?
    {
        Membership::Done(contact) => Ok((
            StatusCode::CREATED,
            Json(json!({
                "object": "contact_segment",
                "id": segment,
                "contact_id": contact,
                "segment_id": segment,
            })),
        )),
        Membership::NoContact => Err(ApiError::not_found("Contact")),
        Membership::NoSegment => Err(ApiError::not_found("Segment")),
    }
}

/// `DELETE /contacts/{id or email}/segments/{segment_id}` → `{"object": "contact_segment", "id",
/// "contact_id", "segment_id", "deleted": true}`; 404 when the contact is not a member.
#[utoipa::path(
    delete,
    path = "/contacts/{contact}/segments/{segment}",
    tag = "contacts",
    operation_id = "segments.remove_contact",
    params(("contact" = String, Path), ("segment" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn remove_contact(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Path(raw): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (key, segment) = membership_path(&raw)?;
    match state
        .store
        .segments()
        .remove_contact(caller.organization_id, &key, segment)
        .await?
    {
        Membership::Done(contact) => Ok(Json(json!({
            "object": "contact_segment",
            "id": segment,
            "contact_id": contact,
            "segment_id": segment,
            "deleted": true,
        }))),
        Membership::NoContact => Err(ApiError::not_found("Contact")),
        Membership::NoSegment => Err(ApiError::not_found("Segment membership")),
    }
}
