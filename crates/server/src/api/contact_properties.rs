//! `/contact-properties`: the custom fields of an organization's contacts. A key is 1 to 50 letters,
//! digits and underscores, unique per organization; the type (`string` or `number`) never changes; the
//! fallback value, of the property's type, is what templates use for a contact without a value.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use opensend_core::ErrorCode;
use opensend_store::StoreError;
use opensend_store::records::{ContactPropertyRecord, PropertyType};
use opensend_store::repos::contact_properties::MAX_PROPERTIES;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::audience::{MAX_TEXT, nullable};
use crate::api::list::{ListQuery, ListResponse};
use crate::api::timestamp;
use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::state::AppState;

/// Longest key, in characters (Resend's limit).
pub const MAX_KEY: usize = 50;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
}

#[derive(Debug, Serialize)]
struct PropertyView {
    object: &'static str,
    id: Uuid,
    key: String,
    #[serde(rename = "type")]
    value_type: &'static str,
    fallback_value: Option<Value>,
    created_at: String,
}

impl From<ContactPropertyRecord> for PropertyView {
    fn from(p: ContactPropertyRecord) -> Self {
        Self {
            object: "contact_property",
            id: p.id,
            key: p.key,
            value_type: p.value_type.as_str(),
            fallback_value: p.fallback_value,
            created_at: timestamp(p.created_at),
        }
    }
}

fn key(raw: &str) -> Result<String, ApiError> {
    let ok = !raw.is_empty()
        && raw.chars().count() <= MAX_KEY
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::validation(format!(
            "`key` must be 1 to {MAX_KEY} letters, digits or underscores."
        )))
    }
}

fn value_type(raw: &str) -> Result<PropertyType, ApiError> {
    raw.parse().map_err(|()| {
        ApiError::validation(format!(
            "`type` must be `string` or `number`; got `{}`.",
            raw.chars().take(40).collect::<String>()
        ))
    })
}

/// A fallback of the property's type; `null` is none.
fn fallback(value_type: PropertyType, raw: Option<&Value>) -> Result<Option<Value>, ApiError> {
    match raw {
        None | Some(Value::Null) => Ok(None),
        Some(value) if !value_type.accepts(value) => Err(ApiError::validation(format!(
            "`fallback_value` must be a {value_type}, the property's type."
        ))),
        Some(Value::String(s)) if s.chars().count() > MAX_TEXT => Err(ApiError::validation(
            format!("`fallback_value` must be at most {MAX_TEXT} characters long."),
        )),
        Some(value) => Ok(Some(value.clone())),
    }
}

#[derive(Debug, Deserialize)]
struct CreateRequest {
    key: Option<String>,
    #[serde(rename = "type")]
    value_type: Option<String>,
    fallback_value: Option<Value>,
}

/// `POST /contact-properties` → 201 `{"object": "contact_property", "id"}`.
#[utoipa::path(
    post,
    path = "/contact-properties",
    tag = "contact-properties",
    operation_id = "contact_properties.create",
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
    let missing = |field: &str| {
        ApiError::new(
            ErrorCode::MissingRequiredField,
            format!("Missing required field `{field}`."),
        )
    };
    let key = key(body.key.as_deref().ok_or_else(|| missing("key"))?)?;
    let value_type = value_type(body.value_type.as_deref().ok_or_else(|| missing("type"))?)?;
    let fallback_value = fallback(value_type, body.fallback_value.as_ref())?;
    let properties = state.store.contact_properties();
    if properties.count(caller.organization_id).await? >= MAX_PROPERTIES {
        return Err(ApiError::validation(format!(
            "An organization may define at most {MAX_PROPERTIES} contact properties."
        )));
    }
    let created = properties
        .create(
            caller.organization_id,
            &key,
            value_type,
            fallback_value.as_ref(),
        )
        .await
        .map_err(|e| match e {
            StoreError::Duplicate(_) => ApiError::validation(format!(
                "A contact property with the key `{key}` already exists."
            )),
            other => other.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"object": "contact_property", "id": created.id})),
    ))
}

/// `GET /contact-properties`.
#[utoipa::path(
    get,
    path = "/contact-properties",
    tag = "contact-properties",
    operation_id = "contact_properties.list",
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
) -> Result<Json<ListResponse<PropertyView>>, ApiError> {
    let found = state
        .store
        .contact_properties()
        .list(caller.organization_id, page.page()?)
        .await?;
    let data = found.items.into_iter().map(PropertyView::from).collect();
    Ok(Json(ListResponse::new(data, found.has_more)))
}

/// `GET /contact-properties/{id}`.
#[utoipa::path(
    get,
    path = "/contact-properties/{property}",
    tag = "contact-properties",
    operation_id = "contact_properties.show",
    params(("property" = String, Path)),
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
) -> Result<Json<PropertyView>, ApiError> {
    let property = state
        .store
        .contact_properties()
        .get(caller.organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Contact property"))?;
    Ok(Json(property.into()))
}

#[derive(Debug, Deserialize)]
struct UpdateRequest {
    #[serde(default, deserialize_with = "nullable")]
    fallback_value: Option<Option<Value>>,
    key: Option<String>,
    #[serde(rename = "type")]
    value_type: Option<String>,
}

/// `PATCH /contact-properties/{id}` with `fallback_value` → `{"object": "contact_property", "id"}`.
/// The key and type cannot change: giving other values than the property's is a 422.
#[utoipa::path(
    patch,
    path = "/contact-properties/{property}",
    tag = "contact-properties",
    operation_id = "contact_properties.update",
    params(("property" = String, Path)),
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
    let properties = state.store.contact_properties();
    let property = properties
        .get(caller.organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Contact property"))?;
    if body.key.as_deref().is_some_and(|k| k != property.key) {
        return Err(ApiError::validation(
            "`key` cannot be changed after a property is created.",
        ));
    }
    if body
        .value_type
        .as_deref()
        .is_some_and(|t| t != property.value_type.as_str())
    {
        return Err(ApiError::validation(
            "`type` cannot be changed after a property is created.",
        ));
    }
    if let Some(raw) = body.fallback_value {
        let value = fallback(property.value_type, raw.as_ref())?;
        if !properties
            .set_fallback(caller.organization_id, id, value.as_ref())
            .await?
        {
            return Err(ApiError::not_found("Contact property"));
        }
    }
    Ok(Json(json!({"object": "contact_property", "id": id})))
}

/// `DELETE /contact-properties/{id}` → `{"object": "contact_property", "id", "deleted": true}`. Every
/// contact's value of it goes too.
#[utoipa::path(
    delete,
    path = "/contact-properties/{property}",
    tag = "contact-properties",
    operation_id = "contact_properties.remove",
    params(("property" = String, Path)),
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
    if !state
        .store
        .contact_properties()
        .delete(caller.organization_id, id)
        .await?
    {
        return Err(ApiError::not_found("Contact property"));
    }
    Ok(Json(
        json!({"object": "contact_property", "id": id, "deleted": true}),
    ))
}
