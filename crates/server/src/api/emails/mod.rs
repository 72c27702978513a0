//! `/emails`: send one, send a batch, read, list, reschedule, cancel.

mod attachments;
mod body;
pub mod limits;
mod remote;
pub(crate) mod request;
mod view;
pub(crate) mod wire;

use std::collections::HashMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use opensend_core::{EmailAddress, ErrorCode, RecipientKind};
use opensend_store::repos::emails::{ChangeOutcome, NewEmail};
use serde::Deserialize;
use serde_json::{Value, json};

use request::{Context, ParsedEmail};
use view::EmailView;
use wire::{BatchBody, SendEmailBody};

use crate::api::list::{ListQuery, ListResponse};
use crate::api::templates::{self, send::TemplateCache};
use crate::auth::{ApiKeyContext, FullAccess, SendAccess};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::idempotency::{self, IdempotentRecord};
use crate::sending::{self, SendingIdentity};
use crate::state::AppState;
use crate::{quota, rate_limit};

/// The send routes read their bodies themselves (`body.rs`), with their own limits.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send, list))
        .routes(routes!(send_batch))
        .routes(routes!(get_one, reschedule))
        .routes(routes!(cancel))
        .routes(routes!(attachments::attachments))
        .routes(routes!(attachments::attachment))
        .routes(routes!(attachments::attachment_download))
}

/// Assigns ids; the result, with the sender already checked, is ready for the store.
fn prepare(caller: &ApiKeyContext, parsed: ParsedEmail, identity: SendingIdentity) -> NewEmail {
    let id = opensend_core::new_id();
    let recipients = parsed.recipients();
    NewEmail {
        id,
        organization_id: caller.organization_id,
        api_key_id: Some(caller.key_id),
        message_id: format!("{}@{}", id, parsed.from.address.domain()),
        from: parsed.from,
        to: parsed.to,
        cc: parsed.cc,
        bcc: parsed.bcc,
        reply_to: parsed.reply_to,
        subject: parsed.subject,
        html: parsed.html,
        text: parsed.text,
        headers: parsed.headers,
        tags: parsed.tags,
        attachments: parsed.attachments,
        scheduled_at: parsed.scheduled_at,
        sending_domain_id: identity.domain_id,
        unverified_sender: identity.unverified,
        recipients,
    }
}

/// `POST /emails` → 200 `{"id"}`.
#[utoipa::path(
    post,
    path = "/emails",
    tag = "emails",
    operation_id = "emails.send",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn send(
    State(state): State<AppState>,
    SendAccess(caller): SendAccess,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let key = idempotency::key_of(&headers)?;
    // `_large_body` is held until the answer: a large body's place among the few parsed at once.
    let body::ReadBody {
        request,
        fingerprint,
        large_body: _large_body,
    } = body::read::<SendEmailBody>(&state.large_send_bodies, &body::SINGLE, &headers, body)
        .await?;
    let request = templates::send::fill(
        &state,
        caller.organization_id,
        request,
        &mut TemplateCache::default(),
    )
    .await?;
    let parsed = request::parse(request, Context::Single, Utc::now())?;
    send_parsed(&state, &caller, parsed, key, fingerprint, None).await
}

/// Sends one parsed email as `POST /emails` does, once the caller's rate limit has been charged: the From
/// check, then (once per idempotency key) attachments given by `path` fetched, the quotas reserved and the
/// email accepted. The answer is the API's response, returned only once the accept transaction committed.
/// The SMTP relay (`crate::smtp::submission`) sends through here too; `envelope`, when given, replaces
/// the recipients worked out from to/cc/bcc (an SMTP message goes to its envelope recipients only).
pub(crate) async fn send_parsed(
    state: &AppState,
    caller: &ApiKeyContext,
    parsed: ParsedEmail<request::Attachment>,
    key: Option<String>,
    fingerprint: [u8; 32],
    envelope: Option<Vec<(EmailAddress, RecipientKind)>>,
) -> Result<Response, ApiError> {
    let identity = sending::identity_for(state, caller, request::from_address(&parsed)).await?;
    let (state_ref, caller_ref) = (state, caller);
    let response = idempotency::run(
        state,
        caller.organization_id,
        key,
        fingerprint,
        |record: Option<IdempotentRecord>| async move {
            // Files given by `path` are fetched only once the key is claimed: a replay answers from the record
            // without fetching again, and a failed fetch leaves the key unused.
            let parsed = remote::fetch_attachments(&state_ref.outbound, parsed)
                .await
                .map_err(IntoResponse::into_response)?;
            let mut email = prepare(caller_ref, parsed, identity);
            if let Some(envelope) = envelope {
                email.recipients = envelope;
            }
            // Counted toward the quotas only when it is really sent, not on a replay.
            quota::reserve_emails(state_ref, caller_ref, 1).await?;
            let body = json!({ "id": email.id }).to_string();
            let remembered = record.map(|r| r.response(StatusCode::OK, &body));
            state_ref
                .store
                .emails()
                .accept(vec![email], remembered)
                .await
                .map_err(|e| ApiError::from(e).into_response())?;
            Ok((StatusCode::OK, body))
        },
    )
    .await;
    state.delivery_wakeup.notify_one();
    state.webhook_wakeup.notify_one();
    Ok(response)
}

/// How batch items are validated (`x-batch-validation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BatchValidation {
    /// Any invalid item refuses the whole batch (the default).
    Strict,
    /// Valid items are sent; invalid ones are reported by index.
    Permissive,
}

/// `POST /emails/batch` → 200 `{"data": [{"id"}…]}` (+ `"errors"` in permissive mode).
#[utoipa::path(
    post,
    path = "/emails/batch",
    tag = "emails",
    operation_id = "emails.send_batch",
    request_body(content = [Object], content_type = "application/json"),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn send_batch(
    State(state): State<AppState>,
    SendAccess(caller): SendAccess,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mode = match headers
        .get("x-batch-validation")
        .map(|v| v.to_str().unwrap_or_default().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("strict") => BatchValidation::Strict,
        Some("permissive") => BatchValidation::Permissive,
        Some(_) => {
            return Err(ApiError::validation(
                "`x-batch-validation` must be `strict` or `permissive`.",
            ));
        }
    };
    let key = idempotency::key_of(&headers)?;
    // Over `limits::BATCH` emails, or any email over a count limit, refuses the batch as it is read.
    let body::ReadBody {
        request: BatchBody(items),
        fingerprint,
        large_body: _large_body,
    } = body::read::<BatchBody>(&state.large_send_bodies, &body::BATCH, &headers, body).await?;
    if items.is_empty() {
        return Err(ApiError::validation("The batch is empty."));
    }

    let now = Utc::now();
    let mut senders: HashMap<String, SendingIdentity> = HashMap::new();
    let mut templates = TemplateCache::default();
    let mut accepted = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let item = match templates::send::fill(&state, caller.organization_id, item, &mut templates)
            .await
        {
            // The database failing is the request's problem, not this email's.
            Err(e) if e.code().status() >= 500 => return Err(e),
            item => item,
        };
        let outcome = match item
            .and_then(|item| request::parse(item, Context::BatchItem, now))
            .and_then(ParsedEmail::into_ready)
        {
            Ok(parsed) => {
                // A batch usually sends from one address: check each sender once.
                let from = request::from_address(&parsed).as_str().to_owned();
                let identity = match senders.get(&from) {
                    Some(known) => Ok(known.clone()),
                    None => sending::identity_for(&state, &caller, request::from_address(&parsed))
                        .await
                        .inspect(|id| {
                            senders.insert(from, id.clone());
                        }),
                };
                identity.map(|identity| prepare(&caller, parsed, identity))
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(email) => accepted.push(email),
            Err(error) if mode == BatchValidation::Strict => {
                return Err(ApiError::new(
                    error.code(),
                    format!("emails[{index}]: {}", error.message()),
                ));
            }
            Err(error) => errors.push(json!({"index": index, "message": error.message()})),
        }
    }

    // The rate limit counts every email of a batch (the request itself was counted once already).
    let count = u32::try_from(accepted.len()).unwrap_or(u32::MAX);
    if let Err(refusal) =
        rate_limit::middleware::charge_additional(&state, &caller, count.saturating_sub(1)).await
    {
        return Ok(refusal);
    }
    let (state_ref, caller_ref) = (&state, &caller);
    let response = idempotency::run(
        &state,
        caller.organization_id,
        key,
        fingerprint,
        |record: Option<IdempotentRecord>| async move {
            if count > 0 {
                quota::reserve_emails(state_ref, caller_ref, count).await?;
            }
            let data: Vec<Value> = accepted.iter().map(|e| json!({"id": e.id})).collect();
            let body = match mode {
                BatchValidation::Strict => json!({ "data": data }),
                BatchValidation::Permissive => json!({ "data": data, "errors": errors }),
            }
            .to_string();
            let remembered = record.map(|r| r.response(StatusCode::OK, &body));
            if !accepted.is_empty() || remembered.is_some() {
                state_ref
                    .store
                    .emails()
                    .accept(accepted, remembered)
                    .await
                    .map_err(|e| ApiError::from(e).into_response())?;
            }
            Ok((StatusCode::OK, body))
        },
    )
    .await;
    state.delivery_wakeup.notify_one();
    state.webhook_wakeup.notify_one();
    Ok(response)
}

#[utoipa::path(
    get,
    path = "/emails/{id}",
    tag = "emails",
    operation_id = "emails.get_one",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn get_one(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
) -> Result<Json<EmailView>, ApiError> {
    let email = state
        .store
        .emails()
        .get(caller.organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Email"))?;
    Ok(Json(EmailView::full(email)))
}

#[utoipa::path(
    get,
    path = "/emails",
    tag = "emails",
    operation_id = "emails.list",
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
) -> Result<Json<ListResponse<EmailView>>, ApiError> {
    let page = state
        .store
        .emails()
        .list(caller.organization_id, query.page()?)
        .await?;
    Ok(Json(ListResponse::new(
        page.items.into_iter().map(EmailView::summary).collect(),
        page.has_more,
    )))
}

#[derive(Debug, Deserialize)]
struct RescheduleBody {
    scheduled_at: Option<String>,
}

/// `PATCH /emails/{id}` with `{"scheduled_at"}`: moves a scheduled or queued email.
#[utoipa::path(
    patch,
    path = "/emails/{id}",
    tag = "emails",
    operation_id = "emails.reschedule",
    params(("id" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn reschedule(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
    ApiJson(body): ApiJson<RescheduleBody>,
) -> Result<Json<Value>, ApiError> {
    let raw = body.scheduled_at.ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingRequiredField,
            "Missing required field `scheduled_at`.",
        )
    })?;
    let at = request::parse_schedule(&raw, Utc::now())?;
    let outcome = state
        .store
        .emails()
        .reschedule(caller.organization_id, id, at)
        .await?;
    change_result(outcome, "rescheduled")?;
    state.delivery_wakeup.notify_one();
    state.webhook_wakeup.notify_one();
    Ok(Json(json!({
        "object": "email",
        "id": id,
        "scheduled_at": crate::api::timestamp(at),
    })))
}

/// `POST /emails/{id}/cancel`: only while scheduled or queued.
#[utoipa::path(
    post,
    path = "/emails/{id}/cancel",
    tag = "emails",
    operation_id = "emails.cancel",
    params(("id" = String, Path)),
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
) -> Result<Json<EmailView>, ApiError> {
    let outcome = state
        .store
        .emails()
        .cancel(caller.organization_id, id)
        .await?;
    change_result(outcome, "canceled")?;
    get_one(State(state), FullAccess(caller), PathId(id)).await
}

fn change_result(outcome: ChangeOutcome, verb: &str) -> Result<(), ApiError> {
    match outcome {
        ChangeOutcome::Done => Ok(()),
        ChangeOutcome::NotFound => Err(ApiError::not_found("Email")),
        ChangeOutcome::TooLate => Err(ApiError::validation(format!(
            "Only scheduled or queued emails can be {verb}."
        ))),
        ChangeOutcome::InProgress => Err(ApiError::validation(format!(
            "The email is being sent right now and can no longer be {verb}."
        ))),
    }
}
