//! Emails: the list (by status and text, paged), one email with its recipients and event timeline, its
//! HTML in a sandboxed frame, and in capture delivery the raw message as it would have been sent.
//!
//! The preview route answers the email's own HTML under a policy of its own: no script, no network (images
//! only as `data:` URLs, so opening an email cannot tell a tracker it was read), `sandbox`, and framed only
//! by our own page (`frame-ancestors 'self'`), which frames it with the `sandbox` attribute as well.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_FRAME_OPTIONS};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use opensend_core::EmailStatus;
use opensend_store::repos::emails::EmailFilter;
use opensend_store::{Cursor, PageRequest};
use serde::Deserialize;
use uuid::Uuid;

use super::page::{Chrome, DashError, html, when, when_opt};
use super::session::Workspace;
use crate::state::AppState;

/// Emails per page of the list.
const PAGE_SIZE: u64 = 50;
/// The preview's policy (see the module docs).
pub const PREVIEW_CSP: &str =
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox; frame-ancestors 'self'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/emails", get(list))
        .route("/emails/{id}", get(show))
        .route("/emails/{id}/preview", get(preview))
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    status: Option<String>,
    q: Option<String>,
    after: Option<String>,
}

struct EmailRow {
    id: String,
    to: String,
    subject: String,
    status: String,
    created: String,
}

#[derive(Template)]
#[template(path = "dashboard/emails.html")]
struct EmailsPage {
    chrome: Chrome,
    emails: Vec<EmailRow>,
    statuses: Vec<&'static str>,
    status: String,
    q: String,
    next: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    workspace: Workspace,
    Query(query): Query<ListQuery>,
) -> Result<Response, DashError> {
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(
            raw.parse::<EmailStatus>()
                .map_err(|e| DashError::BadRequest(e.to_string()))?,
        ),
    };
    let text: Option<String> = query
        .q
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(|q| q.chars().take(200).collect());
    let cursor = match query.after.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(Cursor::After(
            Uuid::try_parse(raw).map_err(|_| DashError::BadRequest("Bad page.".into()))?,
        )),
    };
    let page = state
        .store
        .emails()
        .search(
            workspace.org(),
            &EmailFilter {
                status,
                text: text.clone(),
            },
            PageRequest::new(PAGE_SIZE, cursor).unwrap_or_default(),
        )
        .await?;
    let next = page
        .has_more
        .then(|| page.items.last().map(|e| e.id.to_string()))
        .flatten();
    html(EmailsPage {
        chrome: Chrome::new(&state, &workspace, "Emails", "emails")?,
        emails: page
            .items
            .into_iter()
            .map(|e| EmailRow {
                id: e.id.to_string(),
                to: e
                    .to
                    .iter()
                    .map(|m| m.address.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                subject: e.subject,
                status: e.status.as_str().to_owned(),
                created: when(e.created_at),
            })
            .collect(),
        statuses: EmailStatus::ALL.iter().map(|s| s.as_str()).collect(),
        status: status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        q: text.unwrap_or_default(),
        next,
    })
}

struct EventRow {
    event_type: String,
    at: String,
    data: String,
}

struct RecipientRow {
    address: String,
    kind: String,
    status: String,
    response: String,
}

#[derive(Template)]
#[template(path = "dashboard/email.html")]
struct EmailPage {
    chrome: Chrome,
    id: String,
    from: String,
    to: String,
    subject: String,
    status: String,
    message_id: String,
    created: String,
    sent: String,
    unverified_sender: bool,
    last_error: String,
    has_html: bool,
    text: Option<String>,
    raw: Option<String>,
    recipients: Vec<RecipientRow>,
    events: Vec<EventRow>,
}

fn parse_id(raw: &str) -> Result<Uuid, DashError> {
    Uuid::try_parse(raw).map_err(|_| DashError::NotFound)
}

async fn show(
    State(state): State<AppState>,
    workspace: Workspace,
    Path(id): Path<String>,
) -> Result<Response, DashError> {
    let email = state
        .store
        .emails()
        .get(workspace.org(), parse_id(&id)?)
        .await?
        .ok_or(DashError::NotFound)?;
    let events = state
        .store
        .emails()
        .events(workspace.org(), email.summary.id)
        .await?;
    let recipients = state.store.emails().recipients(email.summary.id).await?;
    let summary = &email.summary;
    html(EmailPage {
        chrome: Chrome::new(&state, &workspace, summary.subject.clone(), "emails")?,
        id: summary.id.to_string(),
        from: summary.from.to_string(),
        to: summary
            .to
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        subject: summary.subject.clone(),
        status: summary.status.as_str().to_owned(),
        message_id: summary.message_id.clone(),
        created: when(summary.created_at),
        sent: when_opt(email.sent_at),
        unverified_sender: summary.unverified_sender,
        last_error: email.last_error.clone().unwrap_or_default(),
        has_html: email.html.is_some(),
        text: email.text.clone(),
        raw: email
            .raw_mime
            .as_deref()
            .map(|raw| String::from_utf8_lossy(raw).into_owned()),
        recipients: recipients
            .into_iter()
            .map(|r| RecipientRow {
                address: r.address.as_str().to_owned(),
                kind: r.kind.as_str().to_owned(),
                status: r.status.as_str().to_owned(),
                response: r.response.unwrap_or_default(),
            })
            .collect(),
        events: events
            .into_iter()
            .map(|e| EventRow {
                event_type: e.event_type,
                at: when(e.created_at),
                data: if e.data.as_object().is_some_and(|o| o.is_empty()) {
                    String::new()
                } else {
                    e.data.to_string()
                },
            })
            .collect(),
    })
}

async fn preview(
    State(state): State<AppState>,
    workspace: Workspace,
    Path(id): Path<String>,
) -> Result<Response, DashError> {
    let email = state
        .store
        .emails()
        .get(workspace.org(), parse_id(&id)?)
        .await?
        .ok_or(DashError::NotFound)?;
    let body = email.html.unwrap_or_default();
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PREVIEW_CSP),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
