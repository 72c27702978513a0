//! Who is at the browser: the session cookie, the anonymous visitor cookie that login forms are bound to,
//! CSRF tokens, and the extractors pages take.
//!
//! - The session cookie holds a random token ([`OpaqueToken`]); the database keeps its SHA-256. `HttpOnly`,
//!   `SameSite=Lax`, `Path=/`, and `Secure` (with the `__Host-` name prefix) when `APP_URL` is https.
//! - CSRF: every form carries `_csrf`, a synchronizer token bound to the session: HMAC-SHA256 under
//!   `AUTH_SECRET` of the session's token, checked in constant time on every POST ([`CsrfForm`]). The
//!   sign-in and sign-up forms, shown before there is a session, are bound the same way to a random
//!   visitor cookie, so a login form cannot be posted from another site either.
//! - [`Workspace`] is a signed-in user in their current organization, with their role read on every
//!   request: a removed member loses access on their next click.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use chrono::Utc;
use hmac::{Hmac, Mac};
use opensend_core::{OpaqueToken, Role};
use opensend_store::entities::{organization, session, user};
use opensend_store::repos::{Actor, AuditContext};
use secrecy::ExposeSecret;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::error::{DashError, Found};
use crate::accounts::{SESSION_IDLE, SESSION_TOUCH_EVERY};
use crate::rate_limit::client_ip::client_ip;
use crate::state::AppState;

/// Largest form body the dashboard reads.
pub const FORM_LIMIT: usize = 64 * 1024;

pub fn session_cookie_name(state: &AppState) -> &'static str {
    if state.config.https() {
        "__Host-opensend_session"
    } else {
        "opensend_session"
    }
}

pub fn visitor_cookie_name(state: &AppState) -> &'static str {
    if state.config.https() {
        "__Host-opensend_visitor"
    } else {
        "opensend_visitor"
    }
}

/// A `Set-Cookie` value with the dashboard's flags.
pub fn cookie(
    state: &AppState,
    name: &str,
    value: &str,
    max_age_seconds: Option<i64>,
) -> HeaderValue {
    let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if state.config.https() {
        text.push_str("; Secure");
    }
    if let Some(age) = max_age_seconds {
        text.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&text)
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=1; Max-Age=0"))
}

/// The cookie that ends a session in the browser.
pub fn clear_session_cookie(state: &AppState) -> HeaderValue {
    cookie(state, session_cookie_name(state), "", Some(0))
}

/// The session cookie for a new session.
pub fn session_cookie(state: &AppState, token: &OpaqueToken) -> HeaderValue {
    cookie(
        state,
        session_cookie_name(state),
        token.expose(),
        Some(SESSION_IDLE.num_seconds()),
    )
}

fn read_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A signed-in user.
#[derive(Clone)]
pub struct SignedIn {
    pub session: session::Model,
    pub user: user::Model,
    token: OpaqueToken,
}

/// Whoever is at the browser, signed in or not. Resolved once per request (kept in its extensions).
#[derive(Clone)]
pub struct Visitor {
    pub signed_in: Option<SignedIn>,
    /// The anonymous visitor token, from the cookie or made for this response.
    visitor: Option<OpaqueToken>,
    /// Whether `visitor` is new and its cookie must be set on the response.
    pub new_visitor: bool,
    pub client_ip: IpAddr,
}

impl Visitor {
    /// The CSRF token every form of this visitor carries.
    pub fn csrf_token(&self, state: &AppState) -> Result<String, DashError> {
        let (kind, token) = match (&self.signed_in, &self.visitor) {
            (Some(s), _) => ("session", &s.token),
            (None, Some(v)) => ("visitor", v),
            (None, None) => return Err(DashError::internal("a visitor without a token")),
        };
        csrf_for(state, kind, token.expose())
    }

    /// The `Set-Cookie` of a new visitor token, when there is one to set.
    pub fn visitor_cookie(&self, state: &AppState) -> Option<HeaderValue> {
        match (&self.visitor, self.new_visitor) {
            (Some(token), true) => Some(cookie(
                state,
                visitor_cookie_name(state),
                token.expose(),
                Some(SESSION_IDLE.num_seconds()),
            )),
            _ => None,
        }
    }

    /// The audit actor for something this visitor does.
    pub fn audit(&self) -> AuditContext {
        AuditContext {
            actor: match &self.signed_in {
                Some(s) => Actor::User {
                    id: s.user.id,
                    email: s.user.email.clone(),
                },
                None => Actor::Anonymous {
                    label: "visitor".to_owned(),
                },
            },
            client_ip: Some(self.client_ip.to_string()),
        }
    }
}

fn csrf_for(state: &AppState, kind: &str, token: &str) -> Result<String, DashError> {
    let secret = state
        .config
        .secrets
        .auth_secret
        .as_ref()
        .ok_or_else(|| DashError::internal("AUTH_SECRET is not set"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .map_err(DashError::internal)?;
    mac.update(b"opensend-dashboard-csrf:");
    mac.update(kind.as_bytes());
    mac.update(b":");
    mac.update(token.as_bytes());
    Ok(hex::encode(mac.finalize().into_bytes()))
}

pub fn request_ip(parts: &Parts, state: &AppState) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
        .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
    client_ip(
        peer,
        &parts.headers,
        state.config.rate_limits.trusted_proxy_hops,
    )
}

async fn resolve(parts: &mut Parts, state: &AppState) -> Result<Arc<Visitor>, DashError> {
    if let Some(visitor) = parts.extensions.get::<Arc<Visitor>>() {
        return Ok(visitor.clone());
    }
    let client_ip = request_ip(parts, state);
    let mut signed_in = None;
    if let Some(token) =
        read_cookie(&parts.headers, session_cookie_name(state)).and_then(OpaqueToken::parse)
    {
        let now = Utc::now();
        if let Some((session, user)) = state
            .store
            .users()
            .session_by_hash(&token.hash(), now)
            .await?
        {
            if now - session.last_seen_at >= SESSION_TOUCH_EVERY {
                // An idle session lives on while it is used; the write need not slow the page.
                let store = state.store.clone();
                let id = session.id;
                tokio::spawn(async move {
                    if let Err(e) = store
                        .users()
                        .touch_session(id, Utc::now() + SESSION_IDLE)
                        .await
                    {
                        tracing::warn!(error = %e, "could not extend a dashboard session");
                    }
                });
            }
            signed_in = Some(SignedIn {
                session,
                user,
                token,
            });
        }
    }
    let existing_visitor =
        read_cookie(&parts.headers, visitor_cookie_name(state)).and_then(OpaqueToken::parse);
    let (visitor, new_visitor) = match (&signed_in, existing_visitor) {
        (_, Some(token)) => (Some(token), false),
        (Some(_), None) => (None, false),
        (None, None) => (
            Some(OpaqueToken::generate().map_err(DashError::internal)?),
            true,
        ),
    };
    let visitor = Arc::new(Visitor {
        signed_in,
        visitor,
        new_visitor,
        client_ip,
    });
    parts.extensions.insert(visitor.clone());
    Ok(visitor)
}

impl FromRequestParts<AppState> for Arc<Visitor> {
    type Rejection = DashError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, DashError> {
        resolve(parts, state).await
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = DashError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, DashError> {
        let visitor = resolve(parts, state).await?;
        visitor.signed_in.clone().ok_or(DashError::SignInRequired)
    }
}

/// A signed-in user working in an organization they belong to.
#[derive(Clone)]
pub struct Workspace {
    pub visitor: Arc<Visitor>,
    pub user: user::Model,
    pub session: session::Model,
    pub organization: organization::Model,
    pub role: Role,
    /// Every organization of the user, for the switcher.
    pub organizations: Vec<(organization::Model, Role)>,
}

impl Workspace {
    pub fn org(&self) -> uuid::Uuid {
        self.organization.id
    }

    pub fn audit(&self) -> AuditContext {
        self.visitor.audit()
    }

    /// Refuses (403) unless the role manages members.
    pub fn require_admin(&self) -> Result<(), DashError> {
        if self.role.manages_members() {
            Ok(())
        } else {
            Err(DashError::Forbidden(
                "Only the organization's admins and owners can do this.",
            ))
        }
    }

    pub fn require_owner(&self) -> Result<(), DashError> {
        if self.role.owns() {
            Ok(())
        } else {
            Err(DashError::Forbidden(
                "Only the organization's owners can do this.",
            ))
        }
    }
}

impl FromRequestParts<AppState> for Workspace {
    type Rejection = DashError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, DashError> {
        if let Some(workspace) = parts.extensions.get::<Workspace>() {
            return Ok(workspace.clone());
        }
        let visitor = resolve(parts, state).await?;
        let signed_in = visitor.signed_in.clone().ok_or(DashError::SignInRequired)?;
        let organizations = state
            .store
            .members()
            .organizations_of(signed_in.user.id)
            .await?;
        // The session's organization, while the user still belongs to it; otherwise their first.
        let current = signed_in
            .session
            .organization_id
            .and_then(|id| organizations.iter().find(|(o, _)| o.id == id))
            .or_else(|| organizations.first())
            .cloned();
        let Some((organization, role)) = current else {
            return Err(DashError::Redirect(Found::to(
                "/dashboard/organizations/new",
            )));
        };
        if signed_in.session.organization_id != Some(organization.id) {
            state
                .store
                .users()
                .switch_organization(signed_in.session.id, Some(organization.id))
                .await?;
        }
        let workspace = Workspace {
            visitor,
            user: signed_in.user,
            session: signed_in.session,
            organization,
            role,
            organizations,
        };
        parts.extensions.insert(workspace.clone());
        Ok(workspace)
    }
}

/// A submitted form whose `_csrf` matches the visitor's token. Every POST handler takes one, so no change
/// can be made from another site's page. Fields are read with [`CsrfForm::get`] and [`CsrfForm::all`].
pub struct CsrfForm {
    fields: Vec<(String, String)>,
    pub visitor: Arc<Visitor>,
}

impl CsrfForm {
    /// The first value of `name`, trimmed; `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name` as sent (passwords are not trimmed).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (checkboxes).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

impl FromRequest<AppState> for CsrfForm {
    type Rejection = DashError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, DashError> {
        let (mut parts, body) = request.into_parts();
        let visitor = resolve(&mut parts, state).await?;
        let request = Request::from_parts(parts, body);
        let bytes = axum::body::to_bytes(request.into_body(), FORM_LIMIT)
            .await
            .map_err(|_| DashError::BadRequest("The form is too large or was cut off.".into()))?;
        let fields = parse_form(&bytes);
        let sent = fields
            .iter()
            .find(|(k, _)| k == "_csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        let expected = match (&visitor.signed_in, &visitor.visitor, visitor.new_visitor) {
            // A visitor token made for this very request was never in a form.
            (None, _, true) | (None, None, _) => None,
            _ => Some(visitor.csrf_token(state)?),
        };
        let matches =
            expected.is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(sent.as_bytes())));
        if !matches {
            return Err(DashError::Csrf);
        }
        Ok(Self { fields, visitor })
    }
}

fn parse_form(bytes: &Bytes) -> Vec<(String, String)> {
    url::form_urlencoded::parse(bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Adds `Set-Cookie` for a new visitor token to a response.
pub fn with_visitor_cookie(
    mut response: axum::response::Response,
    visitor: &Visitor,
    state: &AppState,
) -> axum::response::Response {
    if let Some(cookie) = visitor.visitor_cookie(state) {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}
