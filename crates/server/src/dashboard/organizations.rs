//! Creating, switching and deleting organizations.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use uuid::Uuid;

use super::page::{DashError, Found, html, html_status};
use super::session::{CsrfForm, SignedIn, Workspace};
use crate::admin;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/organizations/new", get(new_page))
        .route("/organizations", post(create))
        .route("/organizations/switch", post(switch))
        .route("/organizations/delete", post(delete))
}

#[derive(Template)]
#[template(path = "dashboard/organization_new.html")]
struct NewOrganizationPage {
    csrf: String,
    email: String,
    problem: Option<String>,
    has_organizations: bool,
}

async fn new_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    visitor: std::sync::Arc<super::session::Visitor>,
) -> Result<Response, DashError> {
    let has_organizations = !state
        .store
        .members()
        .organizations_of(signed_in.user.id)
        .await?
        .is_empty();
    html(NewOrganizationPage {
        csrf: visitor.csrf_token(&state)?,
        email: signed_in.user.email,
        problem: None,
        has_organizations,
    })
}

async fn create(
    State(state): State<AppState>,
    signed_in: SignedIn,
    form: CsrfForm,
) -> Result<Response, DashError> {
    let name = form.get("name").unwrap_or_default();
    let name = match admin::organization_name(name) {
        Ok(name) => name,
        Err(e) => {
            return html_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                NewOrganizationPage {
                    csrf: form.visitor.csrf_token(&state)?,
                    email: signed_in.user.email,
                    problem: Some(format!("The {e}.")),
                    has_organizations: true,
                },
            );
        }
    };
    let organization = state
        .store
        .members()
        .create_organization(name, signed_in.user.id, &form.visitor.audit())
        .await?;
    state
        .store
        .users()
        .switch_organization(signed_in.session.id, Some(organization.id))
        .await?;
    Ok(Found::to("/dashboard?done=org-created").into_response())
}

async fn switch(
    State(state): State<AppState>,
    signed_in: SignedIn,
    form: CsrfForm,
) -> Result<Response, DashError> {
    let id = form
        .get("organization_id")
        .and_then(|v| Uuid::try_parse(v).ok())
        .ok_or(DashError::NotFound)?;
    // Only an organization the user belongs to; any other id is as missing as in the API.
    if state
        .store
        .members()
        .role(id, signed_in.user.id)
        .await?
        .is_none()
    {
        return Err(DashError::NotFound);
    }
    state
        .store
        .users()
        .switch_organization(signed_in.session.id, Some(id))
        .await?;
    Ok(Found::to("/dashboard?done=switched").into_response())
}

/// Owners only, and only with the organization's name typed again.
async fn delete(
    State(state): State<AppState>,
    workspace: Workspace,
    form: CsrfForm,
) -> Result<Response, DashError> {
    workspace.require_owner()?;
    if form.get("confirm_name") != Some(workspace.organization.name.as_str()) {
        return Err(DashError::BadRequest(
            "Type the organization's name exactly to delete it.".into(),
        ));
    }
    state
        .store
        .members()
        .delete_organization(workspace.org(), &workspace.audit())
        .await?;
    Ok(Found::to("/dashboard").into_response())
}
