//! `/templates`: reusable emails with declared variables. Edits change a draft; `publish` copies the draft
//! into a new published version, which is what `POST /emails` with `template` sends (see `send.rs`).
//! A template is named in the path by its id or its alias.

mod content;
pub(crate) mod send;

use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use opensend_core::ErrorCode;
use opensend_store::StoreError;
use opensend_store::records::{TemplateContent, TemplateRecord, TemplateVariable};
use opensend_store::repos::templates::{TemplateDraft, TemplateKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::audience::{bounded, nullable};
use crate::api::list::{ListQuery, ListResponse};
use crate::api::timestamp;
use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;

use content::{MAX_BODY_BYTES, MAX_NAME};

/// Request body of the template routes: room for `html` and `text` at their limit, escaped as JSON.
pub const BODY_BYTES: usize = 4 * MAX_BODY_BYTES + 256 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create).layer(DefaultBodyLimit::max(BODY_BYTES)))
        .routes(routes!(show, update, remove).layer(DefaultBodyLimit::max(BODY_BYTES)))
        .routes(routes!(publish))
        .routes(routes!(duplicate))
}

/// The path's `{id}`: a template id, or else an alias.
pub(crate) fn key_of(raw: &str) -> TemplateKey {
    match Uuid::try_parse(raw) {
        Ok(id) => TemplateKey::Id(id),
        Err(_) => TemplateKey::Alias(raw.to_owned()),
    }
}

async fn find(
    state: &AppState,
    organization_id: Uuid,
    raw: &str,
) -> Result<TemplateRecord, ApiError> {
    state
        .store
        .templates()
        .get(organization_id, &key_of(raw))
        .await?
        .ok_or_else(|| ApiError::not_found("Template"))
}

fn alias_taken(e: StoreError) -> ApiError {
    match e {
        StoreError::Duplicate(_) => ApiError::validation(
            "`alias` is already used by another template of this organization.",
        ),
        other => other.into(),
    }
}

#[derive(Debug, Serialize)]
struct VariableView {
    key: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback_value: Option<Value>,
}

impl From<TemplateVariable> for VariableView {
    fn from(v: TemplateVariable) -> Self {
        Self {
            key: v.key,
            kind: v.kind.as_str(),
            fallback_value: v.fallback_value,
        }
    }
}

fn status(template: &TemplateRecord) -> &'static str {
    if template.is_published() {
        "published"
    } else {
        "draft"
    }
}

/// One template with its draft (Resend's `Template`). Unset strings are left out: Resend's schema has them
/// as strings, never `null`.
#[derive(Debug, Serialize)]
struct TemplateView {
    object: &'static str,
    id: Uuid,
    current_version_id: Uuid,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    alias: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    reply_to: Option<Vec<String>>,
    html: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    variables: Vec<VariableView>,
    created_at: String,
    updated_at: String,
    status: &'static str,
    published_at: Option<String>,
    has_unpublished_versions: bool,
}

impl From<TemplateRecord> for TemplateView {
    fn from(t: TemplateRecord) -> Self {
        Self {
            object: "template",
            status: status(&t),
            has_unpublished_versions: t.has_unpublished_changes(),
            id: t.id,
            current_version_id: t.current_version_id,
            name: t.name,
            alias: t.alias,
            from: t.content.from,
            subject: t.content.subject,
            reply_to: t.content.reply_to,
            html: t.content.html,
            text: t.content.text,
            variables: t.content.variables.into_iter().map(Into::into).collect(),
            created_at: timestamp(t.created_at),
            updated_at: timestamp(t.updated_at),
            published_at: t.published_at.map(timestamp),
        }
    }
}

/// A template in a list (Resend's `TemplateListItem`).
#[derive(Debug, Serialize)]
struct ListItemView {
    id: Uuid,
    name: String,
    status: &'static str,
    published_at: Option<String>,
    created_at: String,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    alias: Option<String>,
}

impl From<TemplateRecord> for ListItemView {
    fn from(t: TemplateRecord) -> Self {
        Self {
            status: status(&t),
            id: t.id,
            name: t.name,
            published_at: t.published_at.map(timestamp),
            created_at: timestamp(t.created_at),
            updated_at: timestamp(t.updated_at),
            alias: t.alias,
        }
    }
}

#[derive(Debug, Deserialize)]
struct CreateRequest {
    name: Option<String>,
    alias: Option<String>,
    from: Option<String>,
    subject: Option<String>,
    reply_to: Option<content::OneOrMany>,
    html: Option<String>,
    text: Option<String>,
    variables: Option<Vec<content::VariableInput>>,
}

fn missing(field: &str) -> ApiError {
    ApiError::new(
        ErrorCode::MissingRequiredField,
        format!("Missing required field `{field}`."),
    )
}

/// An empty or blank optional string is no value.
fn given(raw: Option<String>) -> Option<String> {
    raw.filter(|s| !s.trim().is_empty())
}

/// `POST /templates` → 201 `{"id", "object": "template"}`: a draft.
#[utoipa::path(
    post,
    path = "/templates",
    tag = "templates",
    operation_id = "templates.create",
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
    let name = bounded(
        "name",
        body.name.as_deref().ok_or_else(|| missing("name"))?,
        MAX_NAME,
    )?;
    let html = content::body("html", body.html.ok_or_else(|| missing("html"))?)?;
    let draft = TemplateDraft {
        name,
        alias: given(body.alias).map(|a| content::alias(&a)).transpose()?,
        content: TemplateContent {
            from: given(body.from).map(|f| content::from(&f)).transpose()?,
            subject: given(body.subject).map(content::subject).transpose()?,
            reply_to: body.reply_to.map(content::reply_to).transpose()?,
            html,
            text: given(body.text)
                .map(|t| content::body("text", t))
                .transpose()?,
            variables: content::variables(body.variables.unwrap_or_default())?,
        },
    };
    content::check(&draft.content)?;
    let template = state
        .store
        .templates()
        .create(caller.organization_id, &draft)
        .await
        .map_err(alias_taken)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": template.id, "object": "template"})),
    ))
}

/// `GET /templates`: newest first, without content.
#[utoipa::path(
    get,
    path = "/templates",
    tag = "templates",
    operation_id = "templates.list",
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
) -> Result<Json<ListResponse<ListItemView>>, ApiError> {
    let found = state
        .store
        .templates()
        .list(caller.organization_id, page.page()?)
        .await?;
    let data = found.items.into_iter().map(ListItemView::from).collect();
    Ok(Json(ListResponse::new(data, found.has_more)))
}

/// `GET /templates/{id or alias}`: the template with its draft.
#[utoipa::path(
    get,
    path = "/templates/{template}",
    tag = "templates",
    operation_id = "templates.show",
    params(("template" = String, Path, description = "The template's id or alias.")),
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
) -> Result<Json<TemplateView>, ApiError> {
    Ok(Json(
        find(&state, caller.organization_id, &raw).await?.into(),
    ))
}

#[derive(Debug, Deserialize)]
struct UpdateRequest {
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    alias: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    from: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    subject: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    reply_to: Option<Option<content::OneOrMany>>,
    html: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    text: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    variables: Option<Option<Vec<content::VariableInput>>>,
}

/// `PATCH /templates/{id or alias}` → `{"id", "object": "template"}`. Changes the draft only; the
/// published version, if any, is what sends keep using until the next `publish`. A field given as `null`
/// (or an empty string) is cleared; the whole draft is checked again.
#[utoipa::path(
    patch,
    path = "/templates/{template}",
    tag = "templates",
    operation_id = "templates.update",
    params(("template" = String, Path, description = "The template's id or alias.")),
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
    let template = find(&state, caller.organization_id, &raw).await?;
    let mut draft = TemplateDraft {
        name: template.name,
        alias: template.alias,
        content: template.content,
    };
    if let Some(name) = body.name {
        draft.name = bounded("name", &name, MAX_NAME)?;
    }
    if let Some(alias) = body.alias {
        draft.alias = given(alias).map(|a| content::alias(&a)).transpose()?;
    }
    let c = &mut draft.content;
    if let Some(from) = body.from {
        c.from = given(from).map(|f| content::from(&f)).transpose()?;
    }
    if let Some(subject) = body.subject {
        c.subject = given(subject).map(content::subject).transpose()?;
    }
    if let Some(reply_to) = body.reply_to {
        c.reply_to = reply_to.map(content::reply_to).transpose()?;
    }
    if let Some(html) = body.html {
        c.html = content::body("html", html)?;
    }
    if let Some(text) = body.text {
        c.text = given(text).map(|t| content::body("text", t)).transpose()?;
    }
    if let Some(variables) = body.variables {
        c.variables = content::variables(variables.unwrap_or_default())?;
    }
    content::check(&draft.content)?;
    let saved = state
        .store
        .templates()
        .save_draft(caller.organization_id, template.id, &draft)
        .await
        .map_err(alias_taken)?;
    if !saved {
        return Err(ApiError::not_found("Template"));
    }
    Ok(Json(json!({"id": template.id, "object": "template"})))
}

/// `DELETE /templates/{id or alias}` → `{"object": "template", "id", "deleted": true}`, with every
/// published version. Emails already accepted keep their content.
#[utoipa::path(
    delete,
    path = "/templates/{template}",
    tag = "templates",
    operation_id = "templates.remove",
    params(("template" = String, Path, description = "The template's id or alias.")),
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
    let template = find(&state, caller.organization_id, &raw).await?;
    if !state
        .store
        .templates()
        .delete(caller.organization_id, template.id)
        .await?
    {
        return Err(ApiError::not_found("Template"));
    }
    Ok(Json(
        json!({"object": "template", "id": template.id, "deleted": true}),
    ))
}

/// `POST /templates/{id or alias}/publish` → `{"id", "object": "template"}`: the draft becomes a new
/// published version (publishing a draft without changes since the last publish changes nothing).
#[utoipa::path(
    post,
    path = "/templates/{template}/publish",
    tag = "templates",
    operation_id = "templates.publish",
    params(("template" = String, Path, description = "The template's id or alias.")),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn publish(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let template = find(&state, caller.organization_id, &raw).await?;
    state
        .store
        .templates()
        .publish(caller.organization_id, template.id)
        .await?
        .ok_or_else(|| ApiError::not_found("Template"))?;
    Ok(Json(json!({"id": template.id, "object": "template"})))
}

/// `POST /templates/{id or alias}/duplicate` → `{"id", "object": "template"}`: a new draft with the
/// draft's content, named `<name> (Copy)`, without an alias.
#[utoipa::path(
    post,
    path = "/templates/{template}/duplicate",
    tag = "templates",
    operation_id = "templates.duplicate",
    params(("template" = String, Path, description = "The template's id or alias.")),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn duplicate(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let template = find(&state, caller.organization_id, &raw).await?;
    let copy = state
        .store
        .templates()
        .duplicate(caller.organization_id, template.id, copy_name)
        .await?
        .ok_or_else(|| ApiError::not_found("Template"))?;
    Ok(Json(json!({"id": copy.id, "object": "template"})))
}

/// `<name> (Copy)`, the name shortened to keep it within `MAX_NAME` characters.
fn copy_name(name: &str) -> String {
    const SUFFIX: &str = " (Copy)";
    let keep = MAX_NAME - SUFFIX.chars().count();
    let mut copy: String = name.chars().take(keep).collect();
    copy.push_str(SUFFIX);
    copy
}
