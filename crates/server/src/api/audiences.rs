//! `/audiences`: Resend's deprecated name for segments, in its own shapes (`"object": "audience"`), with
//! the contact routes the SDKs still call under it (`/audiences/{id}/contacts[/{id or email}]`). An
//! audience is a segment: the same id works under both paths.
//!
//! Under an audience, a contact is found only when it is a member; creating one adds it to the audience,
//! and deleting one deletes the contact (as Resend did when a contact belonged to one audience).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use opensend_core::ErrorCode;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::audience::contact_key;
use crate::api::contacts::{self, ContactSummary};
use crate::api::list::{ListQuery, ListResponse};
use crate::api::segments::{self, CreateRequest};
use crate::api::timestamp;
use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, remove))
        .routes(routes!(list_contacts, create_contact))
        .routes(routes!(show_contact, update_contact, remove_contact))
}

fn audience_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidParameter,
            "The audience id in the path must be a valid UUID.",
        )
    })
}

/// 404 unless the organization has this audience.
async fn require(state: &AppState, organization_id: Uuid, id: Uuid) -> Result<(), ApiError> {
    state
        .store
        .segments()
        .get(organization_id, id)
        .await?
        .map(|_| ())
        .ok_or_else(|| ApiError::not_found("Audience"))
}

/// `POST /audiences` → 201 `{"object": "audience", "id", "name"}`.
#[utoipa::path(
    post,
    path = "/audiences",
    tag = "audiences",
    operation_id = "audiences.create",
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
    let segment = segments::create_segment(&state, caller.organization_id, &body).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"object": "audience", "id": segment.id, "name": segment.name})),
    ))
}

/// `GET /audiences`: `{"object": "list", "has_more", "data": [{id, name, created_at}]}`.
#[utoipa::path(
    get,
    path = "/audiences",
    tag = "audiences",
    operation_id = "audiences.list",
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
) -> Result<Json<Value>, ApiError> {
    let found = state
        .store
        .segments()
        .list(caller.organization_id, page.page()?)
        .await?;
    let data: Vec<Value> = found
        .items
        .into_iter()
        .map(|s| json!({"id": s.id, "name": s.name, "created_at": timestamp(s.created_at)}))
        .collect();
    Ok(Json(
        json!({"object": "list", "has_more": found.has_more, "data": data}),
    ))
}

/// `GET /audiences/{id}`.
#[utoipa::path(
    get,
    path = "/audiences/{audience}",
    tag = "audiences",
    operation_id = "audiences.show",
    params(("audience" = String, Path)),
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
        .ok_or_else(|| ApiError::not_found("Audience"))?;
    Ok(Json(json!({
        "object": "audience",
        "id": segment.id,
        "name": segment.name,
        "created_at": timestamp(segment.created_at),
    })))
}

/// `DELETE /audiences/{id}` → `{"object": "audience", "id", "deleted": true}`.
#[utoipa::path(
    delete,
    path = "/audiences/{audience}",
    tag = "audiences",
    operation_id = "audiences.remove",
    params(("audience" = String, Path)),
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
    segments::delete_segment(&state, caller.organization_id, id)
        .await
        .map_err(|_| ApiError::not_found("Audience"))?;
    Ok(Json(
        json!({"object": "audience", "id": id, "deleted": true}),
    ))
}

/// `POST /audiences/{id}/contacts` → 201 `{"object": "contact", "id"}`: the contact, in the audience.
#[utoipa::path(
    post,
    path = "/audiences/{audience}/contacts",
    tag = "audiences",
    operation_id = "audiences.create_contact",
    params(("audience" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 201, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn create_contact(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(audience): PathId,
    ApiJson(body): ApiJson<contacts::CreateRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require(&state, caller.organization_id, audience).await?;
    let id = contacts::create_contact(&state, caller.organization_id, body, Some(audience)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"object": "contact", "id": id})),
    ))
}

/// `GET /audiences/{id}/contacts`.
#[utoipa::path(
    get,
    path = "/audiences/{audience}/contacts",
    tag = "audiences",
    operation_id = "audiences.list_contacts",
    params(("audience" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn list_contacts(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(audience): PathId,
    ApiQuery(page): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<ContactSummary>>, ApiError> {
    contacts::list_page(&state, caller.organization_id, Some(audience), page.page()?)
        .await
        .map_err(|e| match e.code() {
            ErrorCode::NotFound => ApiError::not_found("Audience"),
            _ => e,
        })
}

/// The audience and the contact of a nested path, the contact a member of the audience.
async fn member(
    state: &AppState,
    organization_id: Uuid,
    raw: &(String, String),
) -> Result<Uuid, ApiError> {
    let audience = audience_id(&raw.0)?;
    require(state, organization_id, audience).await?;
    let detail = contacts::read_contact(state, organization_id, &raw.1, Some(audience)).await?;
    Ok(detail.contact.id)
}

/// `GET /audiences/{id}/contacts/{id or email}`.
#[utoipa::path(
    get,
    path = "/audiences/{audience}/contacts/{contact}",
    tag = "audiences",
    operation_id = "audiences.show_contact",
    params(("audience" = String, Path), ("contact" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn show_contact(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Path(raw): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let audience = audience_id(&raw.0)?;
    require(&state, caller.organization_id, audience).await?;
    let detail =
        contacts::read_contact(&state, caller.organization_id, &raw.1, Some(audience)).await?;
    let contact = detail.contact;
    Ok(Json(json!({
        "object": "contact",
        "id": contact.id,
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "created_at": timestamp(contact.created_at),
        "unsubscribed": contact.unsubscribed || contact.suppressed,
    })))
}

/// `PATCH /audiences/{id}/contacts/{id or email}` → `{"object": "contact", "id"}`.
#[utoipa::path(
    patch,
    path = "/audiences/{audience}/contacts/{contact}",
    tag = "audiences",
    operation_id = "audiences.update_contact",
    params(("audience" = String, Path), ("contact" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn update_contact(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Path(raw): Path<(String, String)>,
    ApiJson(body): ApiJson<contacts::UpdateRequest>,
) -> Result<Json<Value>, ApiError> {
    let id = member(&state, caller.organization_id, &raw).await?;
    let id =
        contacts::update_contact(&state, caller.organization_id, &id.to_string(), body).await?;
    Ok(Json(json!({"object": "contact", "id": id})))
}

/// `DELETE /audiences/{id}/contacts/{id or email}` → `{"object": "contact", "contact", "deleted": true}`.
#[utoipa::path(
    delete,
    path = "/audiences/{audience}/contacts/{contact}",
    tag = "audiences",
    operation_id = "audiences.remove_contact",
    params(("audience" = String, Path), ("contact" = String, Path)),
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
    let id = member(&state, caller.organization_id, &raw).await?;
    let key = contact_key(&id.to_string())?;
    state
        .store
        .contacts()
        .delete(caller.organization_id, &key)
        .await?
        .ok_or_else(|| ApiError::not_found("Contact"))?;
    Ok(Json(
        json!({"object": "contact", "id": id, "contact": id, "deleted": true}),
    ))
}
