//! `/suppressions`: the organization's suppression list (addresses never sent to), as in Resend's API, plus
//! CSV export and import.
//!
//! Resend calls why an address is listed its `origin`: `bounce`, `complaint` or `manual`. We keep one more
//! reason, `unsubscribe`; on the wire its `origin` is `manual` (the recipient asked, nothing bounced) and the
//! exact reason is in the extension field `reason`.

mod csv;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use opensend_core::{EmailAddress, ErrorCode};
use opensend_store::entities::suppression;
use opensend_store::repos::suppressions::{NewSuppression, Reason};
use opensend_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::list::{ListQuery, ListResponse};
use crate::api::timestamp;
use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;

/// Most addresses (or ids) in one batch request.
pub const MAX_BATCH: usize = 100;
/// Rows read from the database per step of an export.
const EXPORT_CHUNK: u64 = 1_000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(batch_add))
        .routes(routes!(batch_remove))
        .routes(routes!(export))
        .routes(routes!(import).layer(DefaultBodyLimit::max(csv::MAX_BYTES)))
        .routes(routes!(show, remove))
}

/// Resend's `origin` of a stored reason.
fn origin(reason: Reason) -> &'static str {
    match reason {
        Reason::Bounce => "bounce",
        Reason::Complaint => "complaint",
        Reason::Manual | Reason::Unsubscribe => "manual",
    }
}

/// The reasons an `origin` covers.
fn reasons_of_origin(origin: &str) -> Option<&'static [Reason]> {
    match origin {
        "bounce" => Some(&[Reason::Bounce]),
        "complaint" => Some(&[Reason::Complaint]),
        "manual" => Some(&[Reason::Manual, Reason::Unsubscribe]),
        _ => None,
    }
}

/// One suppression as `GET /suppressions/{id}` and the list show it.
#[derive(Debug, Serialize)]
struct SuppressionView {
    object: &'static str,
    id: Uuid,
    email: String,
    origin: &'static str,
    /// Extension: `bounce`, `complaint`, `manual` or `unsubscribe`.
    reason: &'static str,
    source_id: Option<Uuid>,
    created_at: String,
}

impl SuppressionView {
    fn new(row: suppression::Model) -> Result<Self, ApiError> {
        let reason = stored_reason(&row)?;
        Ok(Self {
            object: "suppression",
            id: row.id,
            email: row.address,
            origin: origin(reason),
            reason: reason.as_str(),
            source_id: row.source_id,
            created_at: timestamp(row.created_at),
        })
    }
}

fn stored_reason(row: &suppression::Model) -> Result<Reason, ApiError> {
    row.reason.parse::<Reason>().map_err(ApiError::internal)
}

/// `reason` in a request body (extension): one of the four, `manual` when absent.
fn parse_reason(raw: Option<&str>) -> Result<Reason, ApiError> {
    match raw {
        None => Ok(Reason::Manual),
        Some(raw) => raw
            .parse::<Reason>()
            .map_err(|e| ApiError::validation(format!("`reason`: {e}."))),
    }
}

fn parse_address(field: &str, raw: &str) -> Result<EmailAddress, ApiError> {
    EmailAddress::parse(raw).map_err(|e| ApiError::validation(format!("`{field}`: {e}.")))
}

#[derive(Debug, Deserialize)]
struct CreateRequest {
    email: Option<String>,
    reason: Option<String>,
}

/// `POST /suppressions` → 201 `{"object", "id", "created"}`. An address already listed keeps its row (and
/// its reason); `created` (extension) tells which happened.
#[utoipa::path(
    post,
    path = "/suppressions",
    tag = "suppressions",
    operation_id = "suppressions.create",
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
    let added = add_suppression(
        &state,
        caller.organization_id,
        body.email,
        body.reason.as_deref(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "object": "suppression",
            "id": added.suppression.id,
            "created": added.created,
        })),
    ))
}

/// Lists an address (`reason` `manual` unless given): `POST /suppressions` and the dashboard's form.
pub(crate) async fn add_suppression(
    state: &AppState,
    organization_id: Uuid,
    email: Option<String>,
    reason: Option<&str>,
) -> Result<opensend_store::repos::suppressions::Added, ApiError> {
    let raw = email.ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingRequiredField,
            "Missing required field `email`.",
        )
    })?;
    let address = parse_address("email", &raw)?;
    let reason = parse_reason(reason)?;
    Ok(state
        .store
        .suppressions()
        .add(organization_id, &address, reason, None)
        .await?)
}

/// `?origin=` (Resend's) and `?reason=` (extension); both may be given, and then both must match.
#[derive(Debug, Default, Deserialize)]
struct FilterQuery {
    origin: Option<String>,
    reason: Option<String>,
}

impl FilterQuery {
    /// `None` for no filter.
    fn reasons(&self) -> Result<Option<Vec<Reason>>, ApiError> {
        let invalid = |m: String| ApiError::new(ErrorCode::InvalidParameter, m);
        let by_origin = match self.origin.as_deref() {
            None => None,
            Some(raw) => Some(reasons_of_origin(raw).ok_or_else(|| {
                invalid(format!(
                    "`origin` must be bounce, complaint or manual (for unsubscribes, use `reason=unsubscribe`); got `{}`.",
                    raw.chars().take(40).collect::<String>()
                ))
            })?),
        };
        let by_reason = match self.reason.as_deref() {
            None => None,
            Some(raw) => Some(
                raw.parse::<Reason>()
                    .map_err(|e| invalid(format!("`reason`: {e}.")))?,
            ),
        };
        Ok(match (by_origin, by_reason) {
            (None, None) => None,
            (Some(reasons), None) => Some(reasons.to_vec()),
            (None, Some(reason)) => Some(vec![reason]),
            (Some(reasons), Some(reason)) => {
                Some(reasons.iter().copied().filter(|r| *r == reason).collect())
            }
        })
    }
}

/// `GET /suppressions`: newest first, cursor pagination.
#[utoipa::path(
    get,
    path = "/suppressions",
    tag = "suppressions",
    operation_id = "suppressions.list",
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
    ApiQuery(filter): ApiQuery<FilterQuery>,
) -> Result<Json<ListResponse<SuppressionView>>, ApiError> {
    let page = page.page()?;
    let reasons = filter.reasons()?;
    let found = state
        .store
        .suppressions()
        .list(caller.organization_id, reasons.as_deref(), page)
        .await?;
    let data = found
        .items
        .into_iter()
        .map(SuppressionView::new)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(ListResponse::new(data, found.has_more)))
}

/// Reads a batch's list: present, 1 to 100 items.
fn batch_items<T>(field: &str, items: Option<Vec<T>>) -> Result<Vec<T>, ApiError> {
    let items = items.ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingRequiredField,
            format!("Missing required field `{field}`."),
        )
    })?;
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::validation(format!(
            "`{field}` must list 1 to {MAX_BATCH} items; it has {}.",
            items.len()
        )));
    }
    Ok(items)
}

/// Parses every address of a batch, naming each bad one (`emails[3]: …`).
fn batch_addresses(raw: &[String]) -> Result<Vec<EmailAddress>, ApiError> {
    let mut addresses = Vec::with_capacity(raw.len());
    let mut problems = Vec::new();
    for (index, value) in raw.iter().enumerate() {
        match EmailAddress::parse(value) {
            Ok(address) => addresses.push(address),
            Err(e) => problems.push(format!("emails[{index}]: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(addresses)
    } else {
        Err(ApiError::validation(format!(
            "{}. Nothing was changed.",
            problems.join("; ")
        )))
    }
}

#[derive(Debug, Deserialize)]
struct BatchAddRequest {
    emails: Option<Vec<String>>,
    reason: Option<String>,
}

/// `POST /suppressions/batch/add` → 201 `{"data": [{"object", "id", "email", "created"}…]}`, one item per
/// address given, in order. All or nothing.
#[utoipa::path(
    post,
    path = "/suppressions/batch/add",
    tag = "suppressions",
    operation_id = "suppressions.batch_add",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 201, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn batch_add(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    ApiJson(body): ApiJson<BatchAddRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let raw = batch_items("emails", body.emails)?;
    let addresses = batch_addresses(&raw)?;
    let reason = parse_reason(body.reason.as_deref())?;
    let entries: Vec<NewSuppression> = addresses
        .into_iter()
        .map(|address| NewSuppression::new(address, reason))
        .collect();
    let added = state
        .store
        .suppressions()
        .add_many(caller.organization_id, &entries)
        .await?;
    let data: Vec<Value> = added
        .into_iter()
        .map(|a| {
            json!({
                "object": "suppression",
                "id": a.suppression.id,
                "email": a.suppression.address,
                "created": a.created,
            })
        })
        .collect();
    Ok((StatusCode::CREATED, Json(json!({ "data": data }))))
}

#[derive(Debug, Deserialize)]
struct BatchRemoveRequest {
    emails: Option<Vec<String>>,
    ids: Option<Vec<String>>,
}

/// `POST /suppressions/batch/remove` with `emails` or `ids` (not both) → 200 `{"data": [{"object", "id",
/// "email", "deleted": true}…]}` listing what was removed; entries that were not on the list are skipped.
#[utoipa::path(
    post,
    path = "/suppressions/batch/remove",
    tag = "suppressions",
    operation_id = "suppressions.batch_remove",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn batch_remove(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    ApiJson(body): ApiJson<BatchRemoveRequest>,
) -> Result<Json<Value>, ApiError> {
    let suppressions = state.store.suppressions();
    let removed = match (body.emails, body.ids) {
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(
                "Provide either `emails` or `ids`, not both.",
            ));
        }
        (None, None) => {
            return Err(ApiError::new(
                ErrorCode::MissingRequiredField,
                "Missing required field: provide `emails` or `ids`.",
            ));
        }
        (Some(emails), None) => {
            let addresses = batch_addresses(&batch_items("emails", Some(emails))?)?;
            suppressions
                .remove_many_by_address(caller.organization_id, &addresses)
                .await?
        }
        (None, Some(ids)) => {
            let raw = batch_items("ids", Some(ids))?;
            let mut ids = Vec::with_capacity(raw.len());
            let mut problems = Vec::new();
            for (index, value) in raw.iter().enumerate() {
                match Uuid::try_parse(value.trim()) {
                    Ok(id) => ids.push(id),
                    Err(_) => problems.push(format!("ids[{index}] is not a suppression id")),
                }
            }
            if !problems.is_empty() {
                return Err(ApiError::validation(format!(
                    "{}. Nothing was changed.",
                    problems.join("; ")
                )));
            }
            suppressions
                .remove_many_by_id(caller.organization_id, &ids)
                .await?
        }
    };
    let data: Vec<Value> = removed
        .into_iter()
        .map(|row| {
            json!({
                "object": "suppression",
                "id": row.id,
                "email": row.address,
                "deleted": true,
            })
        })
        .collect();
    Ok(Json(json!({ "data": data })))
}

/// The `{suppression}` of a path: an id, or an address.
enum Target {
    Id(Uuid),
    Address(EmailAddress),
}

fn target(raw: &str) -> Result<Target, ApiError> {
    if let Ok(id) = Uuid::try_parse(raw) {
        return Ok(Target::Id(id));
    }
    EmailAddress::parse(raw).map(Target::Address).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidParameter,
            "The path must end with a suppression id or an email address.",
        )
    })
}

async fn find(
    store: &Store,
    organization_id: Uuid,
    target: &Target,
) -> Result<Option<suppression::Model>, StoreError> {
    match target {
        Target::Id(id) => store.suppressions().get(organization_id, *id).await,
        Target::Address(address) => {
            store
                .suppressions()
                .get_by_address(organization_id, address)
                .await
        }
    }
}

/// `GET /suppressions/{id or email}`.
#[utoipa::path(
    get,
    path = "/suppressions/{suppression}",
    tag = "suppressions",
    operation_id = "suppressions.show",
    params(("suppression" = String, Path)),
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
) -> Result<Json<SuppressionView>, ApiError> {
    let target = target(&raw)?;
    let row = find(&state.store, caller.organization_id, &target)
        .await?
        .ok_or_else(|| ApiError::not_found("Suppression"))?;
    Ok(Json(SuppressionView::new(row)?))
}

/// `DELETE /suppressions/{id or email}` → `{"object", "id", "deleted": true}`.
#[utoipa::path(
    delete,
    path = "/suppressions/{suppression}",
    tag = "suppressions",
    operation_id = "suppressions.remove",
    params(("suppression" = String, Path)),
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
    let suppressions = state.store.suppressions();
    let removed = match target(&raw)? {
        Target::Id(id) => suppressions
            .remove(caller.organization_id, id)
            .await?
            .then_some(id),
        Target::Address(address) => suppressions
            .remove_by_address(caller.organization_id, &address)
            .await?
            .map(|row| row.id),
    };
    let id = removed.ok_or_else(|| ApiError::not_found("Suppression"))?;
    Ok(Json(
        json!({"object": "suppression", "id": id, "deleted": true}),
    ))
}

/// `GET /suppressions/export` (extension) → `text/csv`, `email,reason,created_at`, oldest first. Streamed a
/// chunk of rows at a time, so memory stays flat whatever the list's size; a database failure midway cuts
/// the response off (it never ends cleanly with rows missing).
#[utoipa::path(
    get,
    path = "/suppressions/export",
    tag = "suppressions",
    operation_id = "suppressions.export",
    responses(
        (status = 200, description = "The suppressions as CSV.", body = String, content_type = "text/csv"),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn export(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
) -> Result<Response, ApiError> {
    // The first chunk is read before answering, so a database that is down is a proper error response.
    let first = state
        .store
        .suppressions()
        .export_chunk(caller.organization_id, None, EXPORT_CHUNK)
        .await?;
    let mut head = String::from(csv::EXPORT_HEADER);
    head.extend(first.iter().map(csv::export_line));
    let next = (first.len() as u64 == EXPORT_CHUNK)
        .then(|| first.last().map(|r| r.id))
        .flatten();

    let store = state.store.clone();
    let organization_id = caller.organization_id;
    let rest = futures::stream::try_unfold(next, move |cursor| {
        let store = store.clone();
        async move {
            let Some(after) = cursor else {
                return Ok::<_, StoreError>(None);
            };
            let rows = store
                .suppressions()
                .export_chunk(organization_id, Some(after), EXPORT_CHUNK)
                .await
                .inspect_err(|e| tracing::error!(error = %e, "suppression export failed midway"))?;
            let next = (rows.len() as u64 == EXPORT_CHUNK)
                .then(|| rows.last().map(|r| r.id))
                .flatten();
            let text: String = rows.iter().map(csv::export_line).collect();
            Ok(Some((Bytes::from(text), next)))
        }
    });
    let body =
        futures::stream::once(async move { Ok::<_, StoreError>(Bytes::from(head)) }).chain(rest);
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"suppressions.csv\""),
    );
    Ok(response)
}

/// `POST /suppressions/import` (extension) with a `text/csv` body → 200 `{"object": "suppression_import",
/// "rows", "added", "existing"}`. All or nothing: any bad row is a 422 listing every bad row by line.
#[utoipa::path(
    post,
    path = "/suppressions/import",
    tag = "suppressions",
    operation_id = "suppressions.import",
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn import(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let is_csv = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("text/csv"));
    if !is_csv {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Send the CSV with `Content-Type: text/csv`.",
        ));
    }
    let entries = match csv::parse_import(&body) {
        Ok(entries) => entries,
        Err(csv::ImportError::Rows(rows)) => {
            let errors: Vec<Value> = rows
                .iter()
                .map(|e| json!({"line": e.line, "message": e.message}))
                .collect();
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok((
                status,
                Json(json!({
                    "statusCode": status.as_u16(),
                    "name": ErrorCode::ValidationError.as_str(),
                    "message": csv::rows_message(&rows),
                    "errors": errors,
                })),
            )
                .into_response());
        }
        Err(error) => return Err(ApiError::validation(error.message())),
    };
    let outcome = state
        .store
        .suppressions()
        .import(caller.organization_id, &entries)
        .await?;
    Ok(Json(json!({
        "object": "suppression_import",
        "rows": entries.len(),
        "added": outcome.added,
        "existing": outcome.existing,
    }))
    .into_response())
}
