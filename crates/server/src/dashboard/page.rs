//! Rendering: the layout every signed-in page shares ([`Chrome`]), HTML responses, redirects after a form,
//! and errors as pages (404, 403, expired form, bad input).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::error::set_html;
pub use super::error::{DashError, Found};
use super::session::Workspace;
use crate::state::AppState;

/// A rendered page.
pub fn html(template: impl Template) -> Result<Response, DashError> {
    let body = template.render().map_err(DashError::internal)?;
    let mut response = body.into_response();
    set_html(&mut response);
    Ok(response)
}

/// A page shown after a form with a status other than 200 (a form sent back with its problem).
pub fn html_status(status: StatusCode, template: impl Template) -> Result<Response, DashError> {
    let mut response = html(template)?;
    *response.status_mut() = status;
    Ok(response)
}

/// One entry of the organization switcher.
pub struct OrgChoice {
    pub id: String,
    pub name: String,
    pub current: bool,
}

/// What the layout of every signed-in page shows: the user, their organizations, the navigation, and the
/// CSRF token its forms carry.
pub struct Chrome {
    pub title: String,
    pub section: &'static str,
    pub user_email: String,
    pub organization: String,
    pub role: &'static str,
    pub is_admin: bool,
    pub organizations: Vec<OrgChoice>,
    pub csrf: String,
    pub notice: Option<&'static str>,
}

impl Chrome {
    pub fn new(
        state: &AppState,
        workspace: &Workspace,
        title: impl Into<String>,
        section: &'static str,
    ) -> Result<Self, DashError> {
        Ok(Self {
            title: title.into(),
            section,
            user_email: workspace.user.email.clone(),
            organization: workspace.organization.name.clone(),
            role: workspace.role.as_str(),
            is_admin: workspace.role.manages_members(),
            organizations: workspace
                .organizations
                .iter()
                .map(|(o, _)| OrgChoice {
                    id: o.id.to_string(),
                    name: o.name.clone(),
                    current: o.id == workspace.organization.id,
                })
                .collect(),
            csrf: workspace.visitor.csrf_token(state)?,
            notice: None,
        })
    }

    /// With the message of a `?done=` code (fixed texts only: a link cannot make the page say anything).
    pub fn with_notice(mut self, done: Option<&str>) -> Self {
        self.notice = done.and_then(notice);
        self
    }
}

fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "org-created" => "Organization created.",
        "switched" => "Switched organization.",
        "invited" => "Invitation sent.",
        "invitation-revoked" => "Invitation revoked.",
        "role-changed" => "Role changed.",
        "member-removed" => "Member removed.",
        "renamed" => "Organization renamed.",
        "key-revoked" => "API key revoked.",
        "domain-deleted" => "Domain deleted.",
        "domain-verified" => "Verification finished: the records below show what was found.",
        "dkim-rotated" => "New DKIM keys created: publish their records, then verify.",
        "webhook-updated" => "Webhook updated.",
        "webhook-deleted" => "Webhook deleted.",
        "replayed" => "Delivery queued again.",
        "suppression-added" => "Address added to the suppression list.",
        "suppression-removed" => "Address removed from the suppression list.",
        "signed-out-everywhere" => "Every other session was signed out.",
        "email-canceled" => "Email canceled.",
        "accepted" => "Invitation accepted: welcome.",
        _ => return None,
    })
}

/// `?done=` and other small query values.
#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    pub done: Option<String>,
}

/// `?after=ID`: the next page of a list, 50 at a time.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub after: Option<String>,
}

impl PageQuery {
    pub fn page(&self) -> Result<opensend_store::PageRequest, DashError> {
        let cursor = match self.after.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(raw) => Some(opensend_store::Cursor::After(
                Uuid::try_parse(raw).map_err(|_| DashError::BadRequest("Bad page.".into()))?,
            )),
        };
        Ok(opensend_store::PageRequest::new(50, cursor).unwrap_or_default())
    }
}

/// The link to the page after `page` of the list at `path`, when there is one.
pub fn next_page<T>(
    page: &opensend_store::Page<T>,
    path: &str,
    id: impl Fn(&T) -> Uuid,
) -> Option<String> {
    let last = page.items.last().filter(|_| page.has_more)?;
    Some(format!("{path}?after={}", id(last)))
}

/// Short display of a timestamp.
pub fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub fn when_opt(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map(when).unwrap_or_else(|| "—".to_owned())
}
