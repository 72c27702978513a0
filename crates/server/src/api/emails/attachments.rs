//! The attachments of sent (accepted) emails: `GET /emails/{id}/attachments`,
//! `GET /emails/{id}/attachments/{attachment_id}`, and the signed download route their `download_url`
//! points to.
//!
//! `download_url` is `APP_URL/emails/{id}/attachments/{attachment_id}/download?org=…&expires=…&signature=…`:
//! anyone holding it may fetch the content, without an API key, until `expires_at`
//! ([`DOWNLOAD_URL_SECONDS`] after it was issued). The signature is HMAC-SHA256 under `AUTH_SECRET` of the
//! organization, email, attachment and expiry (a key derived from `AUTH_SECRET` for download URLs alone, see
//! [`LinkSigner`]), so a URL cannot be altered to reach another file or to live
//! longer; rotating `AUTH_SECRET` invalidates every URL issued before.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use opensend_core::ErrorCode;
use opensend_core::signed_link::LinkSigner;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use uuid::Uuid;

use crate::api::attachments::{AttachmentView, Download, RetrievedAttachment};
use crate::api::list::{ListQuery, ListResponse};
use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::extract::{ApiQuery, PathId, PathIds};
use crate::state::AppState;

/// How long a `download_url` works after it was issued.
pub const DOWNLOAD_URL_SECONDS: i64 = 3600;

/// The signer of download URLs, its key derived from `AUTH_SECRET` for this purpose alone.
fn signer(state: &AppState) -> Result<LinkSigner, ApiError> {
    let secret = state
        .config
        .secrets
        .auth_secret
        .as_ref()
        .ok_or_else(|| ApiError::internal("AUTH_SECRET is not set"))?;
    Ok(LinkSigner::new(secret, "attachment-download"))
}

/// What a download URL's signature covers.
fn signed_part(
    organization_id: Uuid,
    email_id: Uuid,
    attachment_id: Uuid,
    expires: i64,
) -> Vec<u8> {
    format!("v1:{organization_id}:{email_id}:{attachment_id}:{expires}").into_bytes()
}

/// A `download_url` for the attachment, valid until `now + DOWNLOAD_URL_SECONDS`.
fn download(
    state: &AppState,
    organization_id: Uuid,
    email_id: Uuid,
    attachment_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Download, ApiError> {
    let expires_at = now + TimeDelta::seconds(DOWNLOAD_URL_SECONDS);
    let expires = expires_at.timestamp();
    let signature = hex::encode(signer(state)?.signature(&signed_part(
        organization_id,
        email_id,
        attachment_id,
        expires,
    )));
    let base = state.config.app_url.as_str().trim_end_matches('/');
    Ok(Download {
        download_url: format!(
            "{base}/emails/{email_id}/attachments/{attachment_id}/download?org={organization_id}&expires={expires}&signature={signature}"
        ),
        expires_at: crate::api::timestamp(expires_at),
    })
}

/// `GET /emails/{id}/attachments`: metadata in the message's order, each with a `download_url`.
#[utoipa::path(
    get,
    path = "/emails/{id}/attachments",
    tag = "emails",
    operation_id = "emails.attachments",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub(super) async fn attachments(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathId(id): PathId,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<AttachmentView>>, ApiError> {
    let page_request = query.page()?;
    let emails = state.store.emails();
    emails
        .get(caller.organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Email"))?;
    let page = emails
        .attachments_page(caller.organization_id, id, page_request)
        .await?;
    let now = Utc::now();
    let mut data = Vec::with_capacity(page.items.len());
    for summary in &page.items {
        let mut view = AttachmentView::from(summary);
        view.download = Some(download(
            &state,
            caller.organization_id,
            id,
            summary.id,
            now,
        )?);
        data.push(view);
    }
    Ok(Json(ListResponse::new(data, page.has_more)))
}

/// `GET /emails/{id}/attachments/{attachment_id}`: metadata, `download_url` and (extension) the content
/// in base64.
#[utoipa::path(
    get,
    path = "/emails/{id}/attachments/{attachment_id}",
    tag = "emails",
    operation_id = "emails.attachment",
    params(("id" = String, Path), ("attachment_id" = String, Path)),
    responses(
        (status = 200, description = "Success.", body = Object),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
    security(("api_key" = [])),
)]
pub(super) async fn attachment(
    State(state): State<AppState>,
    FullAccess(caller): FullAccess,
    PathIds(email_id, id): PathIds,
) -> Result<Json<RetrievedAttachment>, ApiError> {
    let found = state
        .store
        .emails()
        .attachment(caller.organization_id, email_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Attachment"))?;
    let mut view = AttachmentView::from(&summary_of(&found));
    view.download = Some(download(
        &state,
        caller.organization_id,
        email_id,
        id,
        Utc::now(),
    )?);
    Ok(Json(RetrievedAttachment::new(view, &found.content)))
}

fn summary_of(
    found: &opensend_store::entities::email_attachment::Model,
) -> opensend_store::records::SentAttachmentSummary {
    opensend_store::records::SentAttachmentSummary {
        id: found.id,
        email_id: found.email_id,
        position: found.position,
        filename: found.filename.clone(),
        content_type: found.content_type.clone(),
        content_id: found.content_id.clone(),
        size: i64::try_from(found.content.len()).unwrap_or(i64::MAX),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct DownloadQuery {
    org: Option<String>,
    expires: Option<String>,
    signature: Option<String>,
}

fn refused() -> ApiError {
    ApiError::new(
        ErrorCode::Unauthorized,
        "This download URL is not valid or has expired: get a new one from GET /emails/{id}/attachments.",
    )
}

/// `GET /emails/{id}/attachments/{attachment_id}/download`: the content itself, for a `download_url`
/// (no API key: the URL's signature is the authorization). Always served as a download
/// (`Content-Disposition: attachment`, sandboxed, never sniffed), so an HTML attachment cannot run on the
/// API's origin.
#[utoipa::path(
    get,
    path = "/emails/{id}/attachments/{attachment_id}/download",
    tag = "emails",
    operation_id = "emails.attachment_download",
    params(
        ("id" = String, Path),
        ("attachment_id" = String, Path),
        ("org" = String, Query),
        ("expires" = i64, Query),
        ("signature" = String, Query),
    ),
    responses(
        (status = 200, description = "The attachment's content."),
        (status = "4XX", description = "The request was refused; `name` says why.", body = crate::api::openapi::ErrorBody),
    ),
)]
pub(super) async fn attachment_download(
    State(state): State<AppState>,
    PathIds(email_id, id): PathIds,
    ApiQuery(query): ApiQuery<DownloadQuery>,
) -> Result<Response, ApiError> {
    let organization_id = query
        .org
        .as_deref()
        .and_then(|o| Uuid::try_parse(o).ok())
        .ok_or_else(refused)?;
    let expires: i64 = query
        .expires
        .as_deref()
        .and_then(|e| e.parse().ok())
        .ok_or_else(refused)?;
    let signature = query
        .signature
        .as_deref()
        .and_then(|s| hex::decode(s).ok())
        .ok_or_else(refused)?;
    if expires < Utc::now().timestamp() {
        return Err(refused());
    }
    if !signer(&state)?.verify_signature(
        &signed_part(organization_id, email_id, id, expires),
        &signature,
    ) {
        return Err(refused());
    }
    let found = state
        .store
        .emails()
        .attachment(organization_id, email_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Attachment"))?;
    let content_type = HeaderValue::from_str(&found.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename*=UTF-8''{}",
        utf8_percent_encode(&found.filename, NON_ALPHANUMERIC)
    ))
    .unwrap_or(HeaderValue::from_static("attachment"));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
        found.content,
    )
        .into_response())
}
