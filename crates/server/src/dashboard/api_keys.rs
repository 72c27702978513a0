//! API keys: the list, creating one (its token shown once, on the answer to the form, never again), and
//! revoking one, through the same functions as `POST /api-keys` and `DELETE /api-keys/{id}`.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use opensend_core::Permission;
use opensend_store::PageRequest;
use uuid::Uuid;

use super::page::{Chrome, DashError, Found, Notice, html, when, when_opt};
use super::session::{CsrfForm, Workspace};
use crate::api::api_keys::{create_key, revoke_key};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api-keys", get(list).post(create))
        .route("/api-keys/{id}/revoke", post(revoke))
}

struct KeyRow {
    id: String,
    name: String,
    permission: String,
    created: String,
    last_used: String,
}

struct DomainChoice {
    id: String,
    name: String,
}

#[derive(Template)]
#[template(path = "dashboard/api_keys.html")]
struct KeysPage {
    chrome: Chrome,
    keys: Vec<KeyRow>,
    domains: Vec<DomainChoice>,
    permissions: [&'static str; 2],
    /// The token of the key just made: shown on this answer only.
    new_token: Option<String>,
}

async fn page(
    state: &AppState,
    workspace: &Workspace,
    done: Option<&str>,
    new_token: Option<String>,
) -> Result<Response, DashError> {
    let keys = state
        .store
        .api_keys()
        .list(
            workspace.org(),
            PageRequest::new(100, None).unwrap_or_default(),
        )
        .await?;
    let domains = state
        .store
        .domains()
        .list(
            workspace.org(),
            PageRequest::new(100, None).unwrap_or_default(),
        )
        .await?;
    html(KeysPage {
        chrome: Chrome::new(state, workspace, "API keys", "api_keys")?.with_notice(done),
        keys: keys
            .items
            .into_iter()
            .map(|k| KeyRow {
                id: k.id.to_string(),
                name: k.name,
                permission: k.permission,
                created: when(k.created_at),
                last_used: when_opt(k.last_used_at),
            })
            .collect(),
        domains: domains
            .items
            .into_iter()
            .map(|d| DomainChoice {
                id: d.id.to_string(),
                name: d.name,
            })
            .collect(),
        permissions: Permission::ALL.map(Permission::as_str),
        new_token,
    })
}

async fn list(
    State(state): State<AppState>,
    workspace: Workspace,
    Query(notice): Query<Notice>,
) -> Result<Response, DashError> {
    page(&state, &workspace, notice.done.as_deref(), None).await
}

async fn create(
    State(state): State<AppState>,
    workspace: Workspace,
    form: CsrfForm,
) -> Result<Response, DashError> {
    let (_, token) = create_key(
        &state,
        workspace.org(),
        &workspace.audit(),
        form.get("name").map(str::to_owned),
        form.get("permission"),
        form.get("domain_id"),
    )
    .await?;
    page(&state, &workspace, None, Some(token.expose().to_owned())).await
}

async fn revoke(
    State(state): State<AppState>,
    workspace: Workspace,
    Path(id): Path<String>,
    form: CsrfForm,
) -> Result<Response, DashError> {
    let _ = &form;
    let id = Uuid::try_parse(&id).map_err(|_| DashError::NotFound)?;
    revoke_key(&state, workspace.org(), &workspace.audit(), id).await?;
    Ok(Found::to("/dashboard/api-keys?done=key-revoked").into_response())
}
