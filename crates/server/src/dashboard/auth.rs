//! Signing in and out, creating an account, and accepting an invitation.
//!
//! Sign-in attempts are throttled with the rate limiter (memory or Redis, like the API's limits): each
//! failed attempt draws [`FAILURE_COST`] from a bucket of the account address (5 failures at once, then one
//! a minute) and one of the client address (20 at once, then one a minute). While either bucket is empty,
//! every attempt is refused with 429 before the password is looked at. Sign-ups draw from the client
//! address's bucket the same way. A sign-in to an address with no account costs the same time as one to an
//! existing account (the password is checked against a decoy hash) and gets the same answer.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use opensend_core::{OpaqueToken, Rate};
use opensend_store::entities::user;
use opensend_store::repos::{
    Acceptance, Actor, AuditContext, AuditEvent, Invitee, NewSession, NewUser,
};
use secrecy::SecretString;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::page::{DashError, Found, html, html_status};
use super::session::{
    CsrfForm, SignedIn, Visitor, clear_session_cookie, session_cookie, with_visitor_cookie,
};
use crate::accounts::{self, MIN_PASSWORD_CHARS, SESSION_IDLE};
use crate::config::Signup;
use crate::rate_limit::{Bucket, Subject};
use crate::state::AppState;

/// What one failed attempt draws from its buckets (they refill one a second).
const FAILURE_COST: u32 = 60;
/// An account address: 5 failures at once, then one a minute.
const ADDRESS_BUCKET: Rate = Rate::constant(1, 5 * FAILURE_COST);
/// A client address: 20 failures at once, then one a minute.
const CLIENT_BUCKET: Rate = Rate::constant(1, 20 * FAILURE_COST);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-up", get(sign_up_page).post(sign_up))
        .route("/sign-out", post(sign_out))
        .route("/sign-out-everywhere", post(sign_out_everywhere))
        .route(
            "/invitations/{token}",
            get(invitation_page).post(accept_invitation),
        )
}

#[derive(Template)]
#[template(path = "dashboard/sign_in.html")]
struct SignInPage {
    csrf: String,
    email: String,
    problem: Option<String>,
    signup_open: bool,
    signed_out: bool,
}

#[derive(serde::Deserialize, Default)]
struct SignInQuery {
    signed_out: Option<String>,
}

async fn sign_in_page(
    State(state): State<AppState>,
    visitor: Arc<Visitor>,
    axum::extract::Query(query): axum::extract::Query<SignInQuery>,
) -> Result<Response, DashError> {
    if visitor.signed_in.is_some() {
        return Ok(Found::to("/dashboard").into_response());
    }
    let page = SignInPage {
        csrf: visitor.csrf_token(&state)?,
        email: String::new(),
        problem: None,
        signup_open: state.config.signup() == Signup::Open,
        signed_out: query.signed_out.is_some(),
    };
    Ok(with_visitor_cookie(html(page)?, &visitor, &state))
}

fn buckets(address_key: &str, ip: IpAddr) -> [Bucket; 2] {
    [
        Bucket {
            subject: Subject::SignInAddress(hex::encode(Sha256::digest(address_key.as_bytes()))),
            rate: ADDRESS_BUCKET,
        },
        Bucket {
            subject: Subject::SignInIp(ip),
            rate: CLIENT_BUCKET,
        },
    ]
}

/// Refuses with 429 while either bucket is empty.
async fn check_throttle(state: &AppState, buckets: &[Bucket]) -> Result<(), DashError> {
    let cost = NonZeroU32::new(FAILURE_COST).unwrap_or(NonZeroU32::MIN);
    for bucket in buckets {
        match state.rate_limiter.would_refuse(bucket, cost).await {
            Ok(None) => {}
            Ok(Some(refusal)) => {
                return Err(DashError::TooMany(format!(
                    "Too many failed attempts; try again in {} seconds.",
                    crate::rate_limit::ceil_secs(refusal.retry_after).max(1)
                )));
            }
            Err(_) => return Err(DashError::Unavailable),
        }
    }
    Ok(())
}

/// Charges a failed attempt to the buckets.
async fn charge_failure(state: &AppState, buckets: &[Bucket]) {
    let cost = NonZeroU32::new(FAILURE_COST).unwrap_or(NonZeroU32::MIN);
    if let Err(e) = state.rate_limiter.check(buckets, cost).await {
        tracing::warn!(error = %e, "could not count a failed sign-in");
    }
}

/// Checks a password for an address, throttled and recorded; the user when it matches.
async fn authenticate(
    state: &AppState,
    visitor: &Visitor,
    email: &str,
    password: SecretString,
) -> Result<Option<user::Model>, DashError> {
    let key = accounts::address_key(email);
    let buckets = buckets(&key, visitor.client_ip);
    check_throttle(state, &buckets).await?;
    let found = state.store.users().find_by_email_key(&key).await?;
    let matched =
        accounts::verify_password(password, found.as_ref().map(|u| u.password_hash.clone())).await;
    match found {
        Some(user) if matched => Ok(Some(user)),
        found => {
            charge_failure(state, &buckets).await;
            let audit = AuditContext {
                actor: Actor::Anonymous {
                    label: email.chars().take(254).collect(),
                },
                client_ip: Some(visitor.client_ip.to_string()),
            };
            let event = AuditEvent {
                organization_id: None,
                action: "session.sign_in_failed",
                target_type: found.as_ref().map(|_| "user"),
                target_id: found.as_ref().map(|u| u.id),
                detail: json!({}),
            };
            state.store.audit_log().record(&audit, event).await?;
            Ok(None)
        }
    }
}

/// Opens a session for `user` (a fresh token: a session id is never carried over from before sign-in) and
/// answers with its cookie and a redirect.
async fn open_session(
    state: &AppState,
    user: &user::Model,
    organization_id: Option<uuid::Uuid>,
    ip: IpAddr,
    to: &str,
) -> Result<Response, DashError> {
    let token = OpaqueToken::generate().map_err(DashError::internal)?;
    let organization_id = match organization_id {
        Some(id) => Some(id),
        None => state
            .store
            .members()
            .organizations_of(user.id)
            .await?
            .first()
            .map(|(o, _)| o.id),
    };
    state
        .store
        .users()
        .open_session(NewSession {
            user_id: user.id,
            token_hash: token.hash(),
            organization_id,
            client_ip: Some(ip.to_string()),
            expires_at: Utc::now() + SESSION_IDLE,
        })
        .await?;
    let audit = AuditContext {
        actor: Actor::User {
            id: user.id,
            email: user.email.clone(),
        },
        client_ip: Some(ip.to_string()),
    };
    state
        .store
        .audit_log()
        .record(
            &audit,
            AuditEvent {
                organization_id: None,
                action: "session.signed_in",
                target_type: Some("user"),
                target_id: Some(user.id),
                detail: json!({}),
            },
        )
        .await?;
    let mut response = Found::to(to).into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, session_cookie(state, &token));
    Ok(response)
}

async fn sign_in(State(state): State<AppState>, form: CsrfForm) -> Result<Response, DashError> {
    let email = form.get("email").unwrap_or_default().to_owned();
    let password = SecretString::from(form.raw("password").unwrap_or_default().to_owned());
    let visitor = form.visitor.clone();
    match authenticate(&state, &visitor, &email, password).await? {
        Some(user) => open_session(&state, &user, None, visitor.client_ip, "/dashboard").await,
        None => html_status(
            StatusCode::UNAUTHORIZED,
            SignInPage {
                csrf: visitor.csrf_token(&state)?,
                email,
                problem: Some("The email or the password is wrong.".into()),
                signup_open: state.config.signup() == Signup::Open,
                signed_out: false,
            },
        ),
    }
}

#[derive(Template)]
#[template(path = "dashboard/sign_up.html")]
struct SignUpPage {
    csrf: String,
    email: String,
    problem: Option<String>,
    min_password: usize,
}

fn signup_refused(state: &AppState) -> Option<DashError> {
    match state.config.signup() {
        Signup::Open => None,
        Signup::Invite => Some(DashError::Forbidden(
            "Accounts here are made by invitation: ask an organization's admin to invite you.",
        )),
        Signup::Closed => Some(DashError::Forbidden(
            "Sign-up is closed here: the operator creates accounts.",
        )),
    }
}

async fn sign_up_page(
    State(state): State<AppState>,
    visitor: Arc<Visitor>,
) -> Result<Response, DashError> {
    if let Some(refused) = signup_refused(&state) {
        return Err(refused);
    }
    let page = SignUpPage {
        csrf: visitor.csrf_token(&state)?,
        email: String::new(),
        problem: None,
        min_password: MIN_PASSWORD_CHARS,
    };
    Ok(with_visitor_cookie(html(page)?, &visitor, &state))
}

async fn sign_up(State(state): State<AppState>, form: CsrfForm) -> Result<Response, DashError> {
    if let Some(refused) = signup_refused(&state) {
        return Err(refused);
    }
    let visitor = form.visitor.clone();
    let email = form.get("email").unwrap_or_default().to_owned();
    let password = SecretString::from(form.raw("password").unwrap_or_default().to_owned());
    let client = [Bucket {
        subject: Subject::SignInIp(visitor.client_ip),
        rate: CLIENT_BUCKET,
    }];
    check_throttle(&state, &client).await?;
    let audit = visitor.audit();
    match accounts::create_user(&state.store, &email, password, None, &audit).await {
        Ok(user) => {
            // Each account made from one address costs like a failed sign-in, so sign-ups cannot be scripted.
            charge_failure(&state, &client).await;
            open_session(
                &state,
                &user,
                None,
                visitor.client_ip,
                "/dashboard/organizations/new",
            )
            .await
        }
        Err(accounts::AccountError::Internal(e)) => Err(DashError::internal(e)),
        Err(problem) => html_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            SignUpPage {
                csrf: visitor.csrf_token(&state)?,
                email,
                problem: Some(capitalised(&problem.to_string())),
                min_password: MIN_PASSWORD_CHARS,
            },
        ),
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

async fn sign_out(
    State(state): State<AppState>,
    signed_in: SignedIn,
    form: CsrfForm,
) -> Result<Response, DashError> {
    state
        .store
        .users()
        .close_session(
            signed_in.session.id,
            &form.visitor.audit(),
            signed_in.user.id,
        )
        .await?;
    let mut response = Found::to("/dashboard/sign-in?signed_out=1").into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, clear_session_cookie(&state));
    Ok(response)
}

/// Ends every session of the user, this one included.
async fn sign_out_everywhere(
    State(state): State<AppState>,
    signed_in: SignedIn,
    form: CsrfForm,
) -> Result<Response, DashError> {
    state
        .store
        .users()
        .close_all_sessions(signed_in.user.id, &form.visitor.audit())
        .await?;
    let mut response = Found::to("/dashboard/sign-in?signed_out=1").into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, clear_session_cookie(&state));
    Ok(response)
}

#[derive(Template)]
#[template(path = "dashboard/invitation.html")]
struct InvitationPage {
    csrf: String,
    token: String,
    organization: String,
    email: String,
    role: String,
    usable: bool,
    problem: Option<String>,
    signed_in_as: Option<String>,
    signed_in_matches: bool,
    has_account: bool,
    min_password: usize,
}

async fn invitation_view(
    state: &AppState,
    visitor: &Visitor,
    raw_token: &str,
    problem: Option<String>,
) -> Result<(StatusCode, InvitationPage), DashError> {
    let token = OpaqueToken::parse(raw_token).ok_or(DashError::NotFound)?;
    let (invitation, organization) = state
        .store
        .invitations()
        .by_token(&token.hash())
        .await?
        .ok_or(DashError::NotFound)?;
    if invitation.revoked_at.is_some() {
        return Err(DashError::NotFound);
    }
    let unusable = if invitation.accepted_at.is_some() {
        Some("This invitation has been used already.")
    } else if invitation.expires_at <= Utc::now() {
        Some("This invitation has expired: ask for a new one.")
    } else {
        None
    };
    let has_account = state
        .store
        .users()
        .find_by_email_key(&invitation.email_key)
        .await?
        .is_some();
    let closed = !has_account && state.config.signup() == Signup::Closed;
    let problem = problem.or_else(|| unusable.map(str::to_owned)).or_else(|| {
        closed.then(|| {
            "Sign-up is closed here: ask the operator to create your account first.".to_owned()
        })
    });
    let signed_in_as = visitor.signed_in.as_ref().map(|s| s.user.email.clone());
    let signed_in_matches = visitor
        .signed_in
        .as_ref()
        .is_some_and(|s| s.user.email_key == invitation.email_key);
    let status = if unusable.is_some() {
        StatusCode::GONE
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        InvitationPage {
            csrf: visitor.csrf_token(state)?,
            token: token.expose().to_owned(),
            organization,
            email: invitation.email,
            role: invitation.role,
            usable: unusable.is_none() && !closed,
            problem,
            signed_in_as,
            signed_in_matches,
            has_account,
            min_password: MIN_PASSWORD_CHARS,
        },
    ))
}

async fn invitation_page(
    State(state): State<AppState>,
    visitor: Arc<Visitor>,
    Path(token): Path<String>,
) -> Result<Response, DashError> {
    let (status, page) = invitation_view(&state, &visitor, &token, None).await?;
    Ok(with_visitor_cookie(
        html_status(status, page)?,
        &visitor,
        &state,
    ))
}

async fn accept_invitation(
    State(state): State<AppState>,
    Path(raw_token): Path<String>,
    form: CsrfForm,
) -> Result<Response, DashError> {
    let visitor = form.visitor.clone();
    let token = OpaqueToken::parse(&raw_token).ok_or(DashError::NotFound)?;
    let (invitation, _) = state
        .store
        .invitations()
        .by_token(&token.hash())
        .await?
        .ok_or(DashError::NotFound)?;
    let retry = |problem: String| {
        let state = state.clone();
        let visitor = visitor.clone();
        let raw_token = raw_token.clone();
        async move {
            let (_, page) = invitation_view(&state, &visitor, &raw_token, Some(problem)).await?;
            html_status(StatusCode::UNPROCESSABLE_ENTITY, page)
        }
    };
    let (invitee, new_session) = match (&visitor.signed_in, form.get("mode")) {
        (Some(signed_in), _) => (Invitee::Existing(signed_in.user.id), false),
        (None, Some("sign-in")) => {
            let password = SecretString::from(form.raw("password").unwrap_or_default().to_owned());
            match authenticate(&state, &visitor, &invitation.email, password).await? {
                Some(user) => (Invitee::Existing(user.id), true),
                None => return retry("The password is wrong.".into()).await,
            }
        }
        (None, Some("sign-up")) => {
            if state.config.signup() == Signup::Closed {
                return Err(DashError::Forbidden(
                    "Sign-up is closed here: the operator creates accounts.",
                ));
            }
            let password = SecretString::from(form.raw("password").unwrap_or_default().to_owned());
            if let Err(problem) = accounts::check_password(&password) {
                return retry(capitalised(&problem.to_string())).await;
            }
            let password_hash = accounts::hash_password(password)
                .await
                .map_err(DashError::internal)?;
            (
                Invitee::NewUser(NewUser {
                    email: invitation.email.clone(),
                    email_key: invitation.email_key.clone(),
                    password_hash,
                }),
                true,
            )
        }
        (None, _) => {
            return Err(DashError::BadRequest(
                "Choose how to accept the invitation.".into(),
            ));
        }
    };
    let outcome = state
        .store
        .invitations()
        .accept(
            &token.hash(),
            invitee,
            Utc::now(),
            Some(visitor.client_ip.to_string()),
        )
        .await?;
    match outcome {
        Acceptance::Accepted {
            organization_id,
            user,
        } => {
            if new_session {
                open_session(
                    &state,
                    &user,
                    Some(organization_id),
                    visitor.client_ip,
                    "/dashboard?done=accepted",
                )
                .await
            } else {
                if let Some(signed_in) = &visitor.signed_in {
                    state
                        .store
                        .users()
                        .switch_organization(signed_in.session.id, Some(organization_id))
                        .await?;
                }
                Ok(Found::to("/dashboard?done=accepted").into_response())
            }
        }
        Acceptance::NotFound => Err(DashError::NotFound),
        Acceptance::Expired => Err(DashError::BadRequest(
            "This invitation has expired: ask for a new one.".into(),
        )),
        Acceptance::AlreadyUsed => Err(DashError::BadRequest(
            "This invitation has been used already.".into(),
        )),
        Acceptance::AccountExists => {
            retry("An account with this address exists: sign in to accept.".into()).await
        }
        Acceptance::WrongAddress => Err(DashError::Forbidden(
            "This invitation is for another address.",
        )),
    }
}
