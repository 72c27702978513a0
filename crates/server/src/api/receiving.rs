//! `/emails/receiving`: the organization's received emails and their attachments (Resend's "Receiving
//! Emails" routes). Mail arrives through the ingester's `POST /events/inbound`.
//!
//! Shapes follow Resend's OpenAPI (`ListReceivedEmailsResponse`, `GetReceivedEmailResponse`,
//! `ListAttachmentsResponse`, `RetrievedAttachment`). Extensions: `envelope_recipients` (the addresses of
//! this organization the message was delivered to) and, on one attachment, its `content` in base64 (no
//! signed `download_url`). In `headers`, a field that occurs once is a string and a repeated one
//! (`Received`) an array of its values in order.

use std::collections::HashMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::Json;
use axum::extract::State;
use opensend_core::Header;
use opensend_core::webhook::payload::bracketed_message_id;
use opensend_store::records::{AttachmentSummary, ReceivedEmailRecord, ReceivedEmailSummary};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::api::attachments::{AttachmentView, RetrievedAttachment};
use crate::api::list::{ListQuery, ListResponse};
use crate::api::timestamp;
use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::extract::{ApiQuery, PathId, PathIds};
use crate::state::AppState;

/// Registered next to `/emails/{id}`: axum matches the static `receiving` segment first, so these paths
/// never reach the sent-email routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(attachments))
        .routes(routes!(attachment))
}

/// A received email in a list: everything but bodies and headers.
#[derive(Debug, Serialize)]
struct SummaryView {
    object: &'static str,
    id: Uuid,
    to: Vec<String>,
    from: String,
    subject: String,
    message_id: String,
    bcc: Vec<String>,
    cc: Vec<String>,
    reply_to: Vec<String>,
    created_at: String,
    attachments: Vec<AttachmentView>,
    /// Extension: the envelope recipients of this organization the message was delivered to.
    envelope_recipients: Vec<String>,
}

impl SummaryView {
    fn new(email: ReceivedEmailSummary, attachments: &[&AttachmentSummary]) -> Self {
        Self {
            object: "email",
            id: email.id,
            to: email.to,
            from: email.from,
            subject: email.subject.unwrap_or_default(),
            message_id: bracketed_message_id(email.message_id.as_deref()),
            bcc: email.bcc,
            cc: email.cc,
            reply_to: email.reply_to,
            created_at: timestamp(email.created_at),
            attachments: attachments
                .iter()
                .map(|a| AttachmentView::from(*a))
                .collect(),
            envelope_recipients: email.envelope_recipients,
        }
    }
}

/// One received email in full.
#[derive(Debug, Serialize)]
struct EmailView {
    #[serde(flatten)]
    summary: SummaryView,
    html: Option<String>,
    text: Option<String>,
    headers: Map<String, Value>,
}

/// `GET /emails/receiving`: newest first, without bodies.
#[utoipa::path(
    get,
    path = "/emails/receiving",
    tag = "emails",
    operation_id = "receiving.list",
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
) -> Result<Json<ListResponse<SummaryView>>, ApiError> {
    let repo = state.store.received_emails();
    let page = repo.list(caller.organization_id, query.page()?).await?;
    let ids: Vec<Uuid> = page.items.iter().map(|e| e.id).collect();
    let summaries = repo
        .attachment_summaries(caller.organization_id, &ids)
        .await?;
    let mut by_email: HashMap<Uuid, Vec<&AttachmentSummary>> = HashMap::new();
    for summary in &summaries {
        by_email
            .entry(summary.received_email_id)
            .or_default()
            .push(summary);
    }
    let data = page
        .items
        .into_iter()
        .map(|email| {
            let attachments = by_email.get(&email.id).map(Vec::as_slice).unwrap_or(&[]);
            SummaryView::new(email, attachments)
        })
        .collect();
    Ok(Json(ListResponse::new(data, page.has_more)))
}

async fn find(
    state: &AppState,
    organization_id: Uuid,
    id: Uuid,
) -> Result<ReceivedEmailRecord, ApiError> {
    state
        .store
        .received_emails()
        .get(organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Received email"))
}

/// `GET /emails/receiving/{id}`
#[utoipa::path(
    get,
    path = "/emails/receiving/{id}",
    tag = "emails",
    operation_id = "receiving.show",
    params(("id" = String, Path)),
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
) -> Result<Json<EmailView>, ApiError> {
    let email = find(&state, caller.organization_id, id).await?;
    let summaries = state
        .store
        .received_emails()
        .attachment_summaries(caller.organization_id, &[id])
        .await?;
    let refs: Vec<&AttachmentSummary> = summaries.iter().collect();
    Ok(Json(EmailView {
        summary: SummaryView::new(email.summary, &refs),
        headers: headers_object(email.headers),
        html: email.html,
        text: email.text,
    }))
}

/// Header fields as an object: a name that occurs once maps to its value, a repeated one to the list of
/// its values in order. Names compare without case; the first spelling is the key.
fn headers_object(headers: Vec<Header>) -> Map<String, Value> {
    let mut object = Map::new();
    let mut keys: HashMap<String, String> = HashMap::new();
    for Header { name, value } in headers {
        let key = keys
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| name.clone())
            .clone();
        match object.get_mut(&key) {
            None => {
                object.insert(key, Value::String(value));
            }
            Some(Value::Array(values)) => values.push(Value::String(value)),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(value)]);
            }
        }
    }
    object
}

/// `GET /emails/receiving/{id}/attachments`: metadata, in the message's order.
#[utoipa::path(
    get,
    path = "/emails/receiving/{id}/attachments",
    tag = "emails",
    operation_id = "receiving.attachments",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn attachments(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<AttachmentView>>, ApiError> {
    let page_request = query.page()?;
    find(&state, caller.organization_id, id).await?;
    let page = state
        .store
        .received_emails()
        .attachments_page(caller.organization_id, id, page_request)
        .await?;
    Ok(Json(ListResponse::new(
        page.items.iter().map(AttachmentView::from).collect(),
        page.has_more,
    )))
}

/// `GET /emails/receiving/{id}/attachments/{attachment_id}`: metadata and content.
#[utoipa::path(
    get,
    path = "/emails/receiving/{id}/attachments/{attachment_id}",
    tag = "emails",
    operation_id = "receiving.attachment",
    params(("id" = String, Path), ("attachment_id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn attachment(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathIds(email_id, id): PathIds,
) -> Result<Json<RetrievedAttachment>, ApiError> {
    let found = state
        .store
        .received_emails()
        .attachment(caller.organization_id, email_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Attachment"))?;
    let summary = AttachmentSummary {
        id: found.id,
        received_email_id: found.received_email_id,
        position: found.position,
        filename: found.filename,
        content_type: found.content_type,
        content_id: found.content_id,
        inline: found.inline,
        size: found.size,
    };
    Ok(Json(RetrievedAttachment::new(
        AttachmentView::from(&summary),
        &found.content,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_headers_become_lists() {
        let object = headers_object(vec![
            Header::new("Received", "from a"),
            Header::new("Subject", "Hi"),
            Header::new("received", "from b"),
            Header::new("RECEIVED", "from c"),
        ]);
        assert_eq!(object["Subject"], "Hi");
        assert_eq!(
            object["Received"],
            serde_json::json!(["from a", "from b", "from c"])
        );
        assert_eq!(object.len(), 2);
    }
}
