//! Received emails: the list and one message (its headers and text), as `GET /emails/receiving` shows them.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use uuid::Uuid;

use super::page::{Chrome, DashError, PageQuery, html, next_page, when};
use super::session::Workspace;
use super::table::{Cell, Table, TablePage};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/receiving", get(list))
        .route("/receiving/{id}", get(show))
}

async fn list(
    State(state): State<AppState>,
    workspace: Workspace,
    Query(query): Query<PageQuery>,
) -> Result<Response, DashError> {
    let page = state
        .store
        .received_emails()
        .list(workspace.org(), query.page()?)
        .await?;
    let next = next_page(&page, "/dashboard/receiving", |e| e.id);
    html(TablePage {
        chrome: Chrome::new(&state, &workspace, "Received emails", "receiving")?,
        heading: "Received emails".into(),
        intro: Some("Mail received for your domains with receiving enabled."),
        facts: Vec::new(),
        tables: vec![Table {
            id: "received",
            title: String::new(),
            columns: vec!["From", "To", "Subject", "Received"],
            rows: page
                .items
                .into_iter()
                .map(|e| {
                    vec![
                        Cell::text(e.from),
                        Cell::text(e.envelope_recipients.join(", ")),
                        Cell::link(
                            e.subject.unwrap_or_else(|| "(no subject)".into()),
                            format!("/dashboard/receiving/{}", e.id),
                        ),
                        Cell::text(when(e.created_at)),
                    ]
                })
                .collect(),
            empty: "Nothing received yet.",
        }],
        next,
        text: None,
    })
}

async fn show(
    State(state): State<AppState>,
    workspace: Workspace,
    Path(id): Path<String>,
) -> Result<Response, DashError> {
    let id = Uuid::try_parse(&id).map_err(|_| DashError::NotFound)?;
    let email = state
        .store
        .received_emails()
        .get(workspace.org(), id)
        .await?
        .ok_or(DashError::NotFound)?;
    let s = &email.summary;
    html(TablePage {
        chrome: Chrome::new(&state, &workspace, "Received email", "receiving")?,
        heading: s.subject.clone().unwrap_or_else(|| "(no subject)".into()),
        intro: None,
        facts: vec![
            ("From", s.from.clone()),
            ("To", s.to.join(", ")),
            ("Cc", s.cc.join(", ")),
            ("Delivered for", s.envelope_recipients.join(", ")),
            ("Message-ID", s.message_id.clone().unwrap_or_default()),
            ("Size", format!("{} bytes", s.raw_size)),
            ("Received", when(s.created_at)),
        ],
        tables: vec![Table {
            id: "headers",
            title: "Headers".into(),
            columns: vec!["Name", "Value"],
            rows: email
                .headers
                .iter()
                .map(|h| vec![Cell::text(h.name.clone()), Cell::text(h.value.clone())])
                .collect(),
            empty: "No headers.",
        }],
        next: None,
        text: email.text.clone(),
    })
}
