//! The organization's settings: its name, members and their roles, invitations, signing out everywhere, and
//! deleting it. Reading is for every member; changing members, roles and invitations is for admins and
//! owners (403 otherwise); owners alone handle owners.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use opensend_core::Role;
use opensend_store::repos::MemberChange;
use uuid::Uuid;

use super::page::{Chrome, DashError, Found, Notice, html, when};
use super::session::{CsrfForm, Workspace};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/settings", get(show))
        .route("/settings/rename", post(rename))
        .route("/settings/members/{user_id}/role", post(change_role))
        .route("/settings/members/{user_id}/remove", post(remove_member))
        .route("/settings/invitations", post(invite))
        .route("/settings/invitations/{id}/revoke", post(revoke_invitation))
}

struct MemberRow {
    user_id: String,
    email: String,
    role: &'static str,
    joined: String,
    is_self: bool,
    assignable: bool,
}

struct InvitationRow {
    id: String,
    email: String,
    role: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "dashboard/settings.html")]
struct SettingsPage {
    chrome: Chrome,
    organization_name: String,
    members: Vec<MemberRow>,
    invitations: Vec<InvitationRow>,
    roles: Vec<&'static str>,
    is_owner: bool,
    shared_link: Option<(String, String)>,
}

async fn page(
    state: &AppState,
    workspace: &Workspace,
    done: Option<&str>,
    shared_link: Option<(String, String)>,
) -> Result<Response, DashError> {
    let members = state.store.members().list(workspace.org()).await?;
    let invitations = if workspace.role.manages_members() {
        state
            .store
            .invitations()
            .open(workspace.org(), Utc::now())
            .await?
    } else {
        Vec::new()
    };
    let roles = Role::ALL
        .into_iter()
        .filter(|r| workspace.role.may_assign(*r))
        .map(Role::as_str)
        .collect();
    html(SettingsPage {
        chrome: Chrome::new(state, workspace, "Settings", "settings")?.with_notice(done),
        organization_name: workspace.organization.name.clone(),
        members: members
            .into_iter()
            .map(|m| MemberRow {
                user_id: m.user_id.to_string(),
                is_self: m.user_id == workspace.user.id,
                assignable: workspace.role.may_assign(m.role),
                email: m.email,
                role: m.role.as_str(),
                joined: when(m.joined_at),
            })
            .collect(),
        invitations: invitations
            .into_iter()
            .map(|i| InvitationRow {
                id: i.id.to_string(),
                email: i.email,
                role: i.role,
                expires: when(i.expires_at),
            })
            .collect(),
        roles,
        is_owner: workspace.role.owns(),
        shared_link,
    })
}

async fn show(
    State(state): State<AppState>,
    workspace: Workspace,
    Query(notice): Query<Notice>,
) -> Result<Response, DashError> {
    page(&state, &workspace, notice.done.as_deref(), None).await
}

async fn rename(
    State(state): State<AppState>,
    workspace: Workspace,
    form: CsrfForm,
) -> Result<Response, DashError> {
    workspace.require_admin()?;
    let name = crate::admin::organization_name(form.get("name").unwrap_or_default())
        .map_err(|e| DashError::BadRequest(format!("The {e}.")))?;
    if !state
        .store
        .organizations()
        .rename(workspace.org(), name)
        .await?
    {
        return Err(DashError::NotFound);
    }
    Ok(Found::to("/dashboard/settings?done=renamed").into_response())
}

fn parse_role(raw: Option<&str>) -> Result<Role, DashError> {
    raw.unwrap_or_default()
        .parse::<Role>()
        .map_err(|e| DashError::BadRequest(format!("{e}.")))
}

async fn change_role(
    State(state): State<AppState>,
    workspace: Workspace,
    Path(user_id): Path<String>,
    form: CsrfForm,
) -> Result<Response, DashError> {
    workspace.require_admin()?;
    let user_id = Uuid::try_parse(&user_id).map_err(|_| DashError::NotFound)?;
    let role = parse_role(form.get("role"))?;
    let current = state
        .store
        .members()
        .role(workspace.org(), user_id)
        .await?
        .ok_or(DashError::NotFound)?;
    if !workspace.role.may_assign(current) || !workspace.role.may_assign(role) {
        return Err(DashError::Forbidden(
            "Only owners can make or unmake owners.",
        ));
    }
    member_change(
        state
            .store
            .members()
            .set_role(workspace.org(), user_id, role, &workspace.audit())
            .await?,
        "role-changed",
    )
}

fn member_change(change: MemberChange, done: &str) -> Result<Response, DashError> {
    match change {
        MemberChange::Done => {
            Ok(Found::to(format!("/dashboard/settings?done={done}")).into_response())
        }
        MemberChange::NotFound => Err(DashError::NotFound),
        MemberChange::LastOwner => Err(DashError::BadRequest(
            "An organization needs at least one owner: make someone else owner first.".into(),
        )),
    }
}

/// Admins remove members (owners only by owners); anyone may leave.
async fn remove_member(
    State(state): State<AppState>,
    workspace: Workspace,
    Path(user_id): Path<String>,
    form: CsrfForm,
) -> Result<Response, DashError> {
    let _ = &form;
    let user_id = Uuid::try_parse(&user_id).map_err(|_| DashError::NotFound)?;
    let leaving = user_id == workspace.user.id;
    if !leaving {
        workspace.require_admin()?;
        let current = state
            .store
            .members()
            .role(workspace.org(), user_id)
            .await?
            .ok_or(DashError::NotFound)?;
        if !workspace.role.may_assign(current) {
            return Err(DashError::Forbidden("Only owners can remove owners."));
        }
    }
    let change = state
        .store
        .members()
        .remove(workspace.org(), user_id, &workspace.audit())
        .await?;
    if leaving && change == MemberChange::Done {
        return Ok(Found::to("/dashboard").into_response());
    }
    member_change(change, "member-removed")
}

async fn invite(
    State(state): State<AppState>,
    workspace: Workspace,
    form: CsrfForm,
) -> Result<Response, DashError> {
    workspace.require_admin()?;
    let role = parse_role(form.get("role"))?;
    if !workspace.role.may_assign(role) {
        return Err(DashError::Forbidden("Only owners can invite owners."));
    }
    let invited = crate::invitations::invite(
        &state,
        workspace.org(),
        &workspace.organization.name,
        (workspace.user.id, &workspace.user.email),
        form.get("email").unwrap_or_default(),
        role,
        &workspace.audit(),
    )
    .await?;
    match invited.link_to_share {
        None => Ok(Found::to("/dashboard/settings?done=invited").into_response()),
        Some((link, why)) => {
            let shown = crate::invitations::shown_once(&link).to_owned();
            page(&state, &workspace, None, Some((shown, why))).await
        }
    }
}

async fn revoke_invitation(
    State(state): State<AppState>,
    workspace: Workspace,
    Path(id): Path<String>,
    form: CsrfForm,
) -> Result<Response, DashError> {
    let _ = &form;
    workspace.require_admin()?;
    let id = Uuid::try_parse(&id).map_err(|_| DashError::NotFound)?;
    if !state
        .store
        .invitations()
        .revoke(workspace.org(), id, &workspace.audit())
        .await?
    {
        return Err(DashError::NotFound);
    }
    Ok(Found::to("/dashboard/settings?done=invitation-revoked").into_response())
}
