//! `/contacts/imports`: CSV uploads of contacts (`multipart/form-data`: `file`, and optionally
//! `column_map`, `on_conflict` (`skip`, the default, or `upsert`), `segments` and `topics`, each JSON),
//! processed in the background (`jobs::contact_imports`), and their progress: counts and every row that
//! could not be imported.
//!
//! The file is stored in pieces as it arrives, never held whole; at most
//! [`contact_import::MAX_FILE_BYTES`]. The options and the file's header are checked before the import is
//! queued: a problem there is a 422 and nothing is kept.

use axum::Json;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::StatusCode;
use opensend_core::ErrorCode;
use opensend_store::entities::contact_import as import_row;
use opensend_store::repos::contact_imports::{COMPLETED, FAILED, IN_PROGRESS, QUEUED};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::api::audience::{Reference, TopicChoice, segment_ids, topic_choices};
use crate::api::list::{ListQuery, ListResponse};
use crate::api::timestamp;
use crate::auth::FullAccess;
use crate::contact_import::{self, CHUNK_BYTES, ImportOptions, MAX_FILE_BYTES, RawColumnMap};
use crate::error::ApiError;
use crate::extract::{ApiQuery, PathId};
use crate::state::AppState;

/// Longest option field (`column_map`, `segments`, …), in bytes.
const MAX_FIELD_BYTES: usize = 64 * 1024;
/// The start of the file kept to check its header.
const HEADER_BYTES: usize = 64 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create).layer(DefaultBodyLimit::max(MAX_FILE_BYTES + 1024 * 1024)))
        .routes(routes!(show))
}

fn view(row: import_row::Model, errors: Option<Vec<(i64, String)>>) -> Value {
    let mut view = json!({
        "object": "contact_import",
        "id": row.id,
        "status": row.status,
        "created_at": timestamp(row.created_at),
        "completed_at": row.completed_at.map(timestamp),
        "counts": {
            "total": row.created + row.updated + row.skipped + row.failed,
            "created": row.created,
            "updated": row.updated,
            "skipped": row.skipped,
            "failed": row.failed,
        },
    });
    if let Some(fields) = view.as_object_mut() {
        if let Some(errors) = errors {
            let errors: Vec<Value> = errors
                .into_iter()
                .map(|(line, message)| json!({"line": line, "message": message}))
                .collect();
            fields.insert("errors".into(), Value::Array(errors));
        }
        if let Some(error) = row.error {
            fields.insert("error".into(), Value::String(error));
        }
    }
    view
}

fn multipart_error(e: impl std::fmt::Display + HasStatus) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "The file is larger than {} MiB.",
                MAX_FILE_BYTES / (1024 * 1024)
            ),
        )
    } else {
        ApiError::validation(format!("The upload could not be read: {e}."))
    }
}

trait HasStatus {
    fn status(&self) -> StatusCode;
}

impl HasStatus for axum::extract::multipart::MultipartError {
    fn status(&self) -> StatusCode {
        axum::extract::multipart::MultipartError::status(self)
    }
}

async fn small_field(mut field: Field<'_>) -> Result<String, ApiError> {
    let name = field.name().unwrap_or_default().to_owned();
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_FIELD_BYTES {
            return Err(ApiError::validation(format!(
                "`{name}` is longer than {MAX_FIELD_BYTES} bytes."
            )));
        }
    }
    String::from_utf8(bytes)
        .map_err(|_| ApiError::validation(format!("`{name}` is not UTF-8 text.")))
}

#[derive(Default)]
struct Form {
    file_seen: bool,
    header: Vec<u8>,
    column_map: Option<String>,
    on_conflict: Option<String>,
    segments: Option<String>,
    topics: Option<String>,
}

/// Reads the form, storing the file's pieces under `import_id` as they come.
async fn read_form(
    state: &AppState,
    import_id: Uuid,
    mut multipart: Multipart,
) -> Result<Form, ApiError> {
    let imports = state.store.contact_imports();
    let mut form = Form::default();
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name().unwrap_or_default() {
            "file" => {
                if form.file_seen {
                    return Err(ApiError::validation("Send one `file`."));
                }
                form.file_seen = true;
                let mut piece = Vec::with_capacity(CHUNK_BYTES);
                let mut seq = 0;
                while let Some(bytes) = field.chunk().await.map_err(multipart_error)? {
                    if form.header.len() < HEADER_BYTES {
                        let take = (HEADER_BYTES - form.header.len()).min(bytes.len());
                        form.header.extend_from_slice(&bytes[..take]);
                    }
                    piece.extend_from_slice(&bytes);
                    if piece.len() >= CHUNK_BYTES {
                        imports
                            .add_chunk(import_id, seq, std::mem::take(&mut piece))
                            .await?;
                        seq += 1;
                    }
                }
                if !piece.is_empty() {
                    imports.add_chunk(import_id, seq, piece).await?;
                }
            }
            "column_map" => form.column_map = Some(small_field(field).await?),
            "on_conflict" => form.on_conflict = Some(small_field(field).await?),
            "segments" => form.segments = Some(small_field(field).await?),
            "topics" => form.topics = Some(small_field(field).await?),
            // Unknown fields are read and ignored.
            _ => {
                small_field(field).await?;
            }
        }
    }
    Ok(form)
}

fn json_field<T: for<'de> Deserialize<'de>>(
    name: &str,
    raw: Option<&str>,
) -> Result<Option<T>, ApiError> {
    match raw.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(raw) => serde_json::from_str(raw)
            .map(Some)
            .map_err(|e| ApiError::validation(format!("`{name}` is not valid: {e}."))),
    }
}

/// The form's options, checked against the organization's properties, segments and topics and against
/// the file's header.
async fn options(
    state: &AppState,
    organization_id: Uuid,
    form: &Form,
) -> Result<ImportOptions, ApiError> {
    if !form.file_seen || form.header.is_empty() {
        return Err(ApiError::new(
            ErrorCode::MissingRequiredField,
            "Missing required field `file` (a CSV file with a header row).",
        ));
    }
    let upsert = match form.on_conflict.as_deref().map(str::trim) {
        None | Some("") | Some("skip") => false,
        Some("upsert") => true,
        Some(other) => {
            return Err(ApiError::validation(format!(
                "`on_conflict` must be `skip` or `upsert`; got `{}`.",
                other.chars().take(40).collect::<String>()
            )));
        }
    };
    let properties = state
        .store
        .contact_properties()
        .all(organization_id)
        .await?;
    let raw_map: Option<RawColumnMap> = json_field("column_map", form.column_map.as_deref())?;
    let columns = contact_import::column_map(raw_map, &properties).map_err(ApiError::validation)?;
    let segments_given: Vec<Reference> =
        json_field("segments", form.segments.as_deref())?.unwrap_or_default();
    let segments = segment_ids("segments", &segments_given)?;
    let topics_given: Vec<TopicChoice> =
        json_field("topics", form.topics.as_deref())?.unwrap_or_default();
    let topics = topic_choices("topics", &topics_given)?;
    for id in &segments {
        if state
            .store
            .segments()
            .get(organization_id, *id)
            .await?
            .is_none()
        {
            return Err(ApiError::validation(format!(
                "Segment `{id}` in `segments` does not exist."
            )));
        }
    }
    for (id, _) in &topics {
        if state
            .store
            .topics()
            .get(organization_id, *id)
            .await?
            .is_none()
        {
            return Err(ApiError::validation(format!(
                "Topic `{id}` in `topics` does not exist."
            )));
        }
    }
    // The header: the first record of the file's start.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(form.header.as_slice());
    let mut record = csv::StringRecord::new();
    let header: Vec<String> = match reader.read_record(&mut record) {
        Ok(true) => record.iter().map(|h| h.trim().to_owned()).collect(),
        _ => {
            return Err(ApiError::validation(
                "The file does not start with a CSV header row.",
            ));
        }
    };
    contact_import::layout(&columns, &header)
        .map_err(|why| ApiError::validation(format!("{why}.")))?;
    Ok(ImportOptions {
        columns,
        upsert,
        segments,
        topics,
    })
}

/// `POST /contacts/imports` → 201 `{"object": "contact_import", "id"}`; the import is `queued`.
#[utoipa::path(
    post,
    path = "/contacts/imports",
    tag = "contacts",
    operation_id = "contact_imports.create",
    request_body(content = Object, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn create(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let multipart = multipart.map_err(|_| {
        ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Send the import as `multipart/form-data` with a `file` field.",
        )
    })?;
    let org = caller.organization_id;
    let imports = state.store.contact_imports();
    let id = imports.begin(org).await?;
    let queued = async {
        let form = read_form(&state, id, multipart).await?;
        let options = options(&state, org, &form).await?;
        let text = serde_json::to_string(&options).map_err(ApiError::internal)?;
        imports.queue(org, id, &text).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    if let Err(e) = queued {
        if let Err(cleanup) = imports.discard(org, id).await {
            tracing::warn!(import_id = %id, error = %cleanup, "refused import not discarded");
        }
        return Err(e);
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({"object": "contact_import", "id": id})),
    ))
}

#[derive(Debug, Default, Deserialize)]
struct StatusFilter {
    status: Option<String>,
}

/// `GET /contacts/imports`, newest first, `?status=` one of `queued`, `in_progress`, `completed`,
/// `failed`. Items leave out `errors` (see `GET /contacts/imports/{id}`).
#[utoipa::path(
    get,
    path = "/contacts/imports",
    tag = "contacts",
    operation_id = "contact_imports.list",
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
    ApiQuery(filter): ApiQuery<StatusFilter>,
) -> Result<Json<ListResponse<Value>>, ApiError> {
    let page = page.page()?;
    let status = match filter.status.as_deref() {
        None => None,
        Some(s) if [QUEUED, IN_PROGRESS, COMPLETED, FAILED].contains(&s) => Some(s),
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameter,
                "`status` must be queued, in_progress, completed or failed.",
            ));
        }
    };
    let found = state
        .store
        .contact_imports()
        .list(caller.organization_id, status, page)
        .await?;
    let data = found.items.into_iter().map(|row| view(row, None)).collect();
    Ok(Json(ListResponse::new(data, found.has_more)))
}

/// `GET /contacts/imports/{id}`: status, counts and, as an extension, `errors`: every row that could not
/// be imported, `{line, message}` by line (the header is line 1).
#[utoipa::path(
    get,
    path = "/contacts/imports/{import}",
    tag = "contacts",
    operation_id = "contact_imports.show",
    params(("import" = String, Path)),
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
    let imports = state.store.contact_imports();
    let row = imports
        .get(caller.organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Contact import"))?;
    let errors = imports.errors(id).await?;
    Ok(Json(view(row, Some(errors))))
}
