//! `/api-keys`: create (the token is shown once), list, rename, delete.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use opensend_core::{ApiKeyToken, ErrorCode, Permission};
use opensend_store::entities::api_key;
use opensend_store::repos::NewApiKey;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::list::{ListQuery, ListResponse};
use crate::api::timestamp;
use crate::auth::{Audited, FullAccess};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::state::AppState;
use opensend_store::repos::AuditContext;

/// Longest key name, in characters.
pub const MAX_NAME_CHARS: usize = 50;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(rename, remove))
}

#[derive(Debug, Deserialize)]
struct CreateRequest {
    name: Option<String>,
    permission: Option<String>,
    domain_id: Option<String>,
}

#[derive(Debug, Serialize)]
struct Created {
    id: Uuid,
    token: String,
}

#[utoipa::path(
    post,
    path = "/api-keys",
    tag = "api-keys",
    operation_id = "api_keys.create",
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
    Audited(audit): Audited,
    ApiJson(body): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let (key, token) = create_key(
        &state,
        caller.organization_id,
        &audit,
        body.name,
        body.permission.as_deref(),
        body.domain_id.as_deref(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            id: key.id,
            token: token.expose().to_owned(),
        }),
    ))
}

/// Creates a key of the organization from what a client sent (name, permission, `domain_id`): the API's
/// `POST /api-keys` and the dashboard's form. The token comes back once, to be shown once.
pub(crate) async fn create_key(
    state: &AppState,
    organization_id: Uuid,
    audit: &AuditContext,
    name: Option<String>,
    permission: Option<&str>,
    domain_id: Option<&str>,
) -> Result<(api_key::Model, ApiKeyToken), ApiError> {
    let name = parse_name(name)?;
    let permission = match permission {
        None => Permission::FullAccess,
        Some(raw) => raw
            .parse::<Permission>()
            .map_err(|e| ApiError::validation(e.to_string()))?,
    };
    let domain_id = match domain_id {
        None => None,
        Some(_) if permission == Permission::FullAccess => {
            return Err(ApiError::validation(
                "`domain_id` restricts a `sending_access` key; it cannot be set on a `full_access` key.",
            ));
        }
        Some(raw) => {
            let id = Uuid::try_parse(raw)
                .map_err(|_| ApiError::validation("`domain_id` must be a domain id."))?;
            // Another organization's domain is indistinguishable from a missing one.
            if state
                .store
                .domains()
                .get(organization_id, id)
                .await?
                .is_none()
            {
                return Err(ApiError::validation(
                    "`domain_id` must be the id of one of this organization's domains.",
                ));
            }
            Some(id)
        }
    };
    let token = ApiKeyToken::generate().map_err(ApiError::internal)?;
    let key = state
        .store
        .api_keys()
        .by(audit)
        .create(NewApiKey {
            organization_id,
            name,
            permission,
            domain_id,
            token: &token,
        })
        .await?;
    Ok((key, token))
}

/// Revokes a key of the organization (the API's `DELETE /api-keys/{id}` and the dashboard's button).
pub(crate) async fn revoke_key(
    state: &AppState,
    organization_id: Uuid,
    audit: &AuditContext,
    id: Uuid,
) -> Result<(), ApiError> {
    if state
        .store
        .api_keys()
        .by(audit)
        .revoke(organization_id, id)
        .await?
    {
        Ok(())
    } else {
        Err(ApiError::not_found("API key"))
    }
}

fn parse_name(raw: Option<String>) -> Result<String, ApiError> {
    let raw = raw.ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingRequiredField,
            "Missing required field `name`.",
        )
    })?;
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::validation(format!(
            "`name` must be 1 to {MAX_NAME_CHARS} characters."
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "`name` must not contain control characters.",
        ));
    }
    Ok(name.to_owned())
}

/// One key as lists show it (never the token).
#[derive(Debug, Serialize)]
struct ApiKeyView {
    id: Uuid,
    name: String,
    created_at: String,
    last_used_at: Option<String>,
    permission: String,
    domain_id: Option<Uuid>,
}

impl From<api_key::Model> for ApiKeyView {
    fn from(key: api_key::Model) -> Self {
        Self {
            id: key.id,
            name: key.name,
            created_at: timestamp(key.created_at),
            last_used_at: key.last_used_at.map(timestamp),
            permission: key.permission,
            domain_id: key.domain_id,
        }
    }
}

#[utoipa::path(
    get,
    path = "/api-keys",
    tag = "api-keys",
    operation_id = "api_keys.list",
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn list(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<ApiKeyView>>, ApiError> {
    let page = state
        .store
        .api_keys()
        .list(caller.organization_id, query.page()?)
        .await?;
    Ok(Json(ListResponse::new(
        page.items.into_iter().map(ApiKeyView::from).collect(),
        page.has_more,
    )))
}

#[derive(Debug, Deserialize)]
struct RenameRequest {
    name: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/api-keys/{id}",
    tag = "api-keys",
    operation_id = "api_keys.rename",
    params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn rename(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
    ApiJson(body): ApiJson<RenameRequest>,
) -> Result<Json<Value>, ApiError> {
    let name = parse_name(body.name)?;
    if !state
        .store
        .api_keys()
        .rename(caller.organization_id, id, &name)
        .await?
    {
        return Err(ApiError::not_found("API key"));
    }
    Ok(Json(json!({"object": "api_key", "id": id})))
}

#[utoipa::path(
    delete,
    path = "/api-keys/{id}",
    tag = "api-keys",
    operation_id = "api_keys.remove",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn remove(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Audited(audit): Audited,
    PathId(id): PathId,
) -> Result<Json<Value>, ApiError> {
    revoke_key(&state, caller.organization_id, &audit, id).await?;
    Ok(Json(
        json!({"object": "api_key", "id": id, "deleted": true}),
    ))
}
