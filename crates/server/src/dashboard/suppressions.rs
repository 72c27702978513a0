//! The suppression list: read it, add an address by hand, take one off (through the same function as
//! `POST /suppressions`, and the repository `DELETE /suppressions/{id}` uses).

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use uuid::Uuid;

use super::page::{Chrome, DashError, Found, PageQuery, html, next_page, when};
use super::session::{CsrfForm, Workspace};
use crate::api::suppressions::add_suppression;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/suppressions", get(list).post(add))
        .route("/suppressions/{id}/remove", post(remove))
}

struct Row {
    id: String,
    address: String,
    reason: String,
    created: String,
}

#[derive(Template)]
#[template(path = "dashboard/suppressions.html")]
struct SuppressionsPage {
    chrome: Chrome,
    rows: Vec<Row>,
    next: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ListQuery {
    after: Option<String>,
    done: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    workspace: Workspace,
    Query(query): Query<ListQuery>,
) -> Result<Response, DashError> {
    let page_request = PageQuery {
        after: query.after.clone(),
    }
    .page()?;
    let page = state
        .store
        .suppressions()
        .list(workspace.org(), None, page_request)
        .await?;
    let next = next_page(&page, "/dashboard/suppressions", |s| s.id);
    html(SuppressionsPage {
        chrome: Chrome::new(&state, &workspace, "Suppressions", "suppressions")?
            .with_notice(query.done.as_deref()),
        rows: page
            .items
            .into_iter()
            .map(|s| Row {
                id: s.id.to_string(),
                address: s.address,
                reason: s.reason,
                created: when(s.created_at),
            })
            .collect(),
        next,
    })
}

async fn add(
    State(state): State<AppState>,
    workspace: Workspace,
    form: CsrfForm,
) -> Result<Response, DashError> {
    add_suppression(
        &state,
        workspace.org(),
        form.get("email").map(str::to_owned),
        None,
    )
    .await?;
    Ok(Found::to("/dashboard/suppressions?done=suppression-added").into_response())
}

async fn remove(
    State(state): State<AppState>,
    workspace: Workspace,
    Path(id): Path<String>,
    form: CsrfForm,
) -> Result<Response, DashError> {
    let _ = &form;
    let id = Uuid::try_parse(&id).map_err(|_| DashError::NotFound)?;
    if !state
        .store
        .suppressions()
        .remove(workspace.org(), id)
        .await?
    {
        return Err(DashError::NotFound);
    }
    Ok(Found::to("/dashboard/suppressions?done=suppression-removed").into_response())
}
