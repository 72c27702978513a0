//! The audit log, for admins and owners: every security-relevant change to the organization (keys,
//! domains, webhooks, members, roles, invitations) and its members' sign-ins, newest first.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;

use super::page::{Chrome, DashError, PageQuery, html, next_page, when};
use super::session::Workspace;
use super::table::{Cell, Table, TablePage};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

async fn list(
    State(state): State<AppState>,
    workspace: Workspace,
    Query(query): Query<PageQuery>,
) -> Result<Response, DashError> {
    workspace.require_admin()?;
    let page = state
        .store
        .audit_log()
        .list(workspace.org(), query.page()?)
        .await?;
    let next = next_page(&page, "/dashboard/audit", |e| e.id);
    html(TablePage {
        chrome: Chrome::new(&state, &workspace, "Audit log", "audit")?,
        heading: "Audit log".into(),
        intro: Some(
            "Changes to keys, domains, webhooks, members, roles and invitations, and sign-ins of this organization's members.",
        ),
        facts: Vec::new(),
        tables: vec![Table {
            id: "audit",
            title: String::new(),
            columns: vec!["When", "Action", "Actor", "Target", "Details", "Address"],
            rows: page
                .items
                .into_iter()
                .map(|e| {
                    vec![
                        Cell::text(when(e.created_at)),
                        Cell::text(e.action),
                        Cell::text(format!("{} ({})", e.actor_label, e.actor_type)),
                        Cell::text(match (e.target_type, e.target_id) {
                            (Some(kind), Some(id)) => format!("{kind} {id}"),
                            _ => String::new(),
                        }),
                        Cell::text(if e.detail == "{}" {
                            String::new()
                        } else {
                            e.detail
                        }),
                        Cell::text(e.client_ip.unwrap_or_default()),
                    ]
                })
                .collect(),
            empty: "Nothing recorded yet.",
        }],
        next,
        text: None,
    })
}
