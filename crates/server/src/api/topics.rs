//! `/topics`: subjects contacts subscribe to (`opt_in`) or not (`opt_out`), and a contact's subscriptions
//! under `/contacts/{id or email}/topics`. A topic's default subscription, what a contact that never chose
//! has, is set at creation and never changes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use opensend_core::ErrorCode;
use opensend_store::StoreError;
use opensend_store::records::{TopicRecord, Visibility};
use opensend_store::repos::topics::{NewTopic, TopicChanges};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::audience::{
    TopicChoice, bounded, contact_key, nullable, subscription, topic_choices,
};
use crate::api::list::{ListQuery, ListResponse};
use crate::api::timestamp;
use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::state::AppState;

/// Longest topic name, in characters (Resend's limit).
pub const MAX_NAME: usize = 50;
/// Longest topic description, in characters (Resend's limit).
pub const MAX_DESCRIPTION: usize = 200;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(of_contact, subscribe))
}

#[derive(Debug, Serialize)]
struct TopicView {
    object: &'static str,
    id: Uuid,
    name: String,
    /// Left out when unset: Resend's schema has it as a string, never `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    default_subscription: &'static str,
    visibility: &'static str,
    created_at: String,
}

impl From<TopicRecord> for TopicView {
    fn from(topic: TopicRecord) -> Self {
        Self {
            object: "topic",
            id: topic.id,
            name: topic.name,
            description: topic.description,
            default_subscription: topic.default_subscription.as_str(),
            visibility: topic.visibility.as_str(),
            created_at: timestamp(topic.created_at),
        }
    }
}

fn visibility(raw: &str) -> Result<Visibility, ApiError> {
    raw.parse().map_err(|()| {
        ApiError::validation(format!(
            "`visibility` must be `public` or `private`; got `{}`.",
            raw.chars().take(40).collect::<String>()
        ))
    })
}

fn description(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => bounded("description", text, MAX_DESCRIPTION).map(Some),
    }
}

#[derive(Debug, Deserialize)]
struct CreateRequest {
    name: Option<String>,
    default_subscription: Option<String>,
    description: Option<String>,
    visibility: Option<String>,
}

/// `POST /topics` → 201 `{"object": "topic", "id"}`. `visibility` defaults to `private`.
#[utoipa::path(
    post,
    path = "/topics",
    tag = "topics",
    operation_id = "topics.create",
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
    let name = bounded(
        "name",
        body.name.as_deref().ok_or_else(|| missing("name"))?,
        MAX_NAME,
    )?;
    let default_subscription = subscription(
        "default_subscription",
        body.default_subscription
            .as_deref()
            .ok_or_else(|| missing("default_subscription"))?,
    )?;
    let new = NewTopic {
        name,
        description: description(body.description.as_deref())?,
        default_subscription,
        visibility: body
            .visibility
            .as_deref()
            .map(visibility)
            .transpose()?
            .unwrap_or(Visibility::Private),
    };
    let topic = state
        .store
        .topics()
        .create(caller.organization_id, &new)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"object": "topic", "id": topic.id})),
    ))
}

/// `GET /topics`.
#[utoipa::path(
    get,
    path = "/topics",
    tag = "topics",
    operation_id = "topics.list",
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
) -> Result<Json<ListResponse<TopicView>>, ApiError> {
    let found = state
        .store
        .topics()
        .list(caller.organization_id, page.page()?)
        .await?;
    let data = found.items.into_iter().map(TopicView::from).collect();
    Ok(Json(ListResponse::new(data, found.has_more)))
}

/// `GET /topics/{id}`.
#[utoipa::path(
    get,
    path = "/topics/{topic}",
    tag = "topics",
    operation_id = "topics.show",
    params(("topic" = String, Path)),
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
) -> Result<Json<TopicView>, ApiError> {
    let topic = state
        .store
        .topics()
        .get(caller.organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Topic"))?;
    Ok(Json(topic.into()))
}

#[derive(Debug, Deserialize)]
struct UpdateRequest {
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    visibility: Option<String>,
    default_subscription: Option<String>,
}

/// `PATCH /topics/{id}` with `name`, `description` or `visibility` → `{"object": "topic", "id"}`.
/// `default_subscription` cannot change: giving another value than the topic's is a 422.
#[utoipa::path(
    patch,
    path = "/topics/{topic}",
    tag = "topics",
    operation_id = "topics.update",
    params(("topic" = String, Path)),
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
    let topics = state.store.topics();
    let topic = topics
        .get(caller.organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Topic"))?;
    if let Some(raw) = body.default_subscription.as_deref()
        && subscription("default_subscription", raw)? != topic.default_subscription
    {
        return Err(ApiError::validation(
            "`default_subscription` cannot be changed after a topic is created.",
        ));
    }
    let changes = TopicChanges {
        name: body
            .name
            .as_deref()
            .map(|n| bounded("name", n, MAX_NAME))
            .transpose()?,
        description: body
            .description
            .map(|d| description(d.as_deref()))
            .transpose()?,
        visibility: body.visibility.as_deref().map(visibility).transpose()?,
    };
    if !topics.update(caller.organization_id, id, &changes).await? {
        return Err(ApiError::not_found("Topic"));
    }
    Ok(Json(json!({"object": "topic", "id": id})))
}

/// `DELETE /topics/{id}` → `{"object": "topic", "id", "deleted": true}`.
#[utoipa::path(
    delete,
    path = "/topics/{topic}",
    tag = "topics",
    operation_id = "topics.remove",
    params(("topic" = String, Path)),
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
        .topics()
        .delete(caller.organization_id, id)
        .await?
    {
        return Err(ApiError::not_found("Topic"));
    }
    Ok(Json(json!({"object": "topic", "id": id, "deleted": true})))
}

/// `GET /contacts/{id or email}/topics`: every topic with the contact's subscription
/// (`{id, name, description, subscription}`), a page at a time.
#[utoipa::path(
    get,
    path = "/contacts/{contact}/topics",
    tag = "contacts",
    operation_id = "topics.of_contact",
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
) -> Result<Json<Value>, ApiError> {
    let key = contact_key(&raw)?;
    let found = state
        .store
        .topics()
        .of_contact(caller.organization_id, &key, page.page()?)
        .await?
        .ok_or_else(|| ApiError::not_found("Contact"))?;
    let data: Vec<Value> = found
        .items
        .into_iter()
        .map(|t| {
            json!({
                "id": t.topic.id,
                "name": t.topic.name,
                "description": t.topic.description,
                "subscription": t.subscription.as_str(),
            })
        })
        .collect();
    Ok(Json(
        json!({"object": "list", "has_more": found.has_more, "data": data}),
    ))
}

/// The body of `PATCH /contacts/{id}/topics`: the list itself (as the SDKs send it) or `{"topics": […]}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SubscribeRequest {
    List(Vec<TopicChoice>),
    Object { topics: Option<Vec<TopicChoice>> },
}

/// `PATCH /contacts/{id or email}/topics` → `{"object": "contact_topics", "id", "contact_id", "topics"}`.
/// All or nothing: a topic that is not the organization's is a 422 and changes nothing.
#[utoipa::path(
    patch,
    path = "/contacts/{contact}/topics",
    tag = "contacts",
    operation_id = "topics.subscribe",
    params(("contact" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn subscribe(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<SubscribeRequest>,
) -> Result<Json<Value>, ApiError> {
    let key = contact_key(&raw)?;
    let given = match body {
        SubscribeRequest::List(list) => list,
        SubscribeRequest::Object { topics } => topics.ok_or_else(|| {
            ApiError::new(
                ErrorCode::MissingRequiredField,
                "Missing required field `topics`.",
            )
        })?,
    };
    let choices = topic_choices("topics", &given)?;
    let contact = state
        .store
        .topics()
        .subscribe(caller.organization_id, &key, &choices)
        .await
        .map_err(|e| match e {
            StoreError::MissingReference(_) => {
                ApiError::validation("A topic given in `topics` does not exist.")
            }
            other => other.into(),
        })?
        .ok_or_else(|| ApiError::not_found("Contact"))?;
    let topics: Vec<Value> = choices
        .iter()
        .map(|(id, s)| json!({"id": id, "subscription": s.as_str()}))
        .collect();
    Ok(Json(json!({
        "object": "contact_topics",
        "id": contact,
        "contact_id": contact,
        "topics": topics,
    })))
}
