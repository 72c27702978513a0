//! One-click unsubscribe (RFC 8058) and the hosted preference page, reached from the links every broadcast
//! email carries.
//!
//! A link's token names the organization, the contact, the broadcast and (for a broadcast scoped to a topic)
//! the topic, signed with HMAC-SHA256 under a key derived from `AUTH_SECRET` for this purpose alone (so a
//! token can never be mistaken for another signed value of the product). Verification is constant-time
//! (`opensend_core::signed_link`). A token that does not verify changes nothing and gets a 404 page.
//!
//! - `POST /unsubscribe/{token}`: the one-click request mail clients send (`List-Unsubscribe=One-Click`);
//!   no login, no cookie. A topic broadcast opts the contact out of that topic, any other sets the contact's
//!   `unsubscribed`. Answers 200.
//! - `GET /unsubscribe/{token}`: the preference page, plain HTML that works without JavaScript: unsubscribe
//!   from everything, and one checkbox per topic the contact may see (public topics, and private ones it is
//!   subscribed to).
//! - `POST /unsubscribe/{token}/preferences`: what that form saves.
//!
//! Every change announces `contact.updated` through the webhook outbox in its own transaction. These routes
//! are pages, not API: they live on the public listener beside the API, outside the OpenAPI document.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use opensend_core::signed_link::LinkSigner;
use opensend_store::records::{Subscription, Visibility};
use secrecy::SecretString;
use uuid::Uuid;

use crate::state::AppState;

/// The purpose the signing key is derived for (see [`LinkSigner`]): changing it invalidates every link sent.
const PURPOSE: &str = "unsubscribe-link";
const VERSION: u8 = 1;
/// Longest form body the preference page accepts.
const FORM_BYTES: usize = 16 * 1024;

/// What an unsubscribe link is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkClaims {
    pub organization_id: Uuid,
    pub contact_id: Uuid,
    pub broadcast_id: Uuid,
    pub topic_id: Option<Uuid>,
}

/// Signs and verifies unsubscribe tokens ([`LinkSigner`] under a key derived from `AUTH_SECRET` for them alone).
#[derive(Clone, Debug)]
pub struct UnsubscribeLinks {
    signer: LinkSigner,
}

impl UnsubscribeLinks {
    pub fn new(auth_secret: &SecretString) -> Self {
        Self {
            signer: LinkSigner::new(auth_secret, PURPOSE),
        }
    }

    /// The signer of this deployment; `None` when `AUTH_SECRET` is not set (startup fills it in on a local
    /// deployment and refuses production without it, so only a hand-built configuration lacks it).
    pub fn from_state(state: &AppState) -> Option<Self> {
        state.config.secrets.auth_secret.as_ref().map(Self::new)
    }

    pub fn sign(&self, claims: &LinkClaims) -> String {
        let mut payload = Vec::with_capacity(1 + 16 * 4);
        payload.push(VERSION);
        payload.extend_from_slice(claims.organization_id.as_bytes());
        payload.extend_from_slice(claims.contact_id.as_bytes());
        payload.extend_from_slice(claims.broadcast_id.as_bytes());
        if let Some(topic) = claims.topic_id {
            payload.extend_from_slice(topic.as_bytes());
        }
        self.signer.sign(&payload)
    }

    /// The claims of a token this deployment signed; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<LinkClaims> {
        let payload = self.signer.verify(token)?;
        if payload.len() != 1 + 16 * 3 && payload.len() != 1 + 16 * 4 {
            return None;
        }
        if payload.first() != Some(&VERSION) {
            return None;
        }
        let id = |at: usize| Uuid::from_slice(payload.get(at..at + 16)?).ok();
        Some(LinkClaims {
            organization_id: id(1)?,
            contact_id: id(17)?,
            broadcast_id: id(33)?,
            topic_id: if payload.len() == 65 { id(49) } else { None },
        })
    }
}

/// The public URL of a token's page (and one-click target).
pub fn link(state: &AppState, token: &str) -> String {
    let base = state.config.app_url.as_str().trim_end_matches('/');
    format!("{base}/unsubscribe/{token}")
}

/// The routes, for the public listener.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/unsubscribe/{token}", get(page).post(one_click))
        .route("/unsubscribe/{token}/preferences", post(save))
        .layer(DefaultBodyLimit::max(FORM_BYTES))
        .with_state(state)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let document = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}\
         label{{display:block;margin:.5rem 0}}fieldset{{margin:1rem 0}}small{{color:#555;display:block;margin-left:1.6rem}}</style>\
         </head><body><h1>{title}</h1>{body}</body></html>\n",
        title = escape(title),
    );
    let mut response = (status, document).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The token is in the URL: never send it on to another site.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn invalid_link() -> Response {
    html(
        StatusCode::NOT_FOUND,
        "Link not valid",
        "<p>This unsubscribe link is not valid. Use the link from the most recent email you received.</p>",
    )
}

fn unavailable() -> Response {
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again later",
        "<p>Your preferences could not be read or saved just now. Nothing was changed; please try again in a moment.</p>",
    )
}

fn claims_of(state: &AppState, token: &str) -> Option<LinkClaims> {
    UnsubscribeLinks::from_state(state)?.verify(token)
}

/// The topics the contact may see on its page, with whether it is subscribed.
fn visible(
    topics: &[(opensend_store::records::TopicRecord, Subscription)],
) -> Vec<(Uuid, String, Option<String>, bool)> {
    topics
        .iter()
        .filter(|(t, s)| t.visibility == Visibility::Public || *s == Subscription::OptIn)
        .map(|(t, s)| {
            (
                t.id,
                t.name.clone(),
                t.description.clone(),
                *s == Subscription::OptIn,
            )
        })
        .collect()
}

async fn render_page(
    state: &AppState,
    token: &str,
    claims: &LinkClaims,
    note: Option<&str>,
) -> Response {
    let preferences = match state
        .store
        .contacts()
        .preferences(claims.organization_id, claims.contact_id)
        .await
    {
        Ok(Some(p)) => p,
        Ok(None) => return invalid_link(),
        Err(e) => {
            tracing::warn!(error = %e, "reading a contact's preferences failed");
            return unavailable();
        }
    };
    let mut body = String::new();
    if let Some(note) = note {
        body.push_str(&format!(
            "<p role=\"status\"><strong>{}</strong></p>",
            escape(note)
        ));
    }
    body.push_str(&format!(
        "<p>Email preferences for <strong>{}</strong>.</p>\
         <form method=\"post\" action=\"/unsubscribe/{}/preferences\">\
         <label><input type=\"checkbox\" name=\"unsubscribe_all\" value=\"on\"{}> Unsubscribe from all emails</label>",
        escape(&preferences.email),
        escape(token),
        if preferences.unsubscribed { " checked" } else { "" },
    ));
    let topics = visible(&preferences.topics);
    if !topics.is_empty() {
        body.push_str("<fieldset><legend>Topics you receive</legend>");
        for (id, name, description, subscribed) in topics {
            body.push_str(&format!(
                "<label><input type=\"checkbox\" name=\"topic\" value=\"{id}\"{}> {}</label>",
                if subscribed { " checked" } else { "" },
                escape(&name),
            ));
            if let Some(description) = description {
                body.push_str(&format!("<small>{}</small>", escape(&description)));
            }
        }
        body.push_str("</fieldset>");
    }
    body.push_str("<button type=\"submit\">Save preferences</button></form>");
    html(StatusCode::OK, "Email preferences", &body)
}

/// `GET /unsubscribe/{token}`: the preference page.
async fn page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match claims_of(&state, &token) {
        Some(claims) => render_page(&state, &token, &claims, None).await,
        None => invalid_link(),
    }
}

/// `POST /unsubscribe/{token}`: one-click unsubscribe (RFC 8058). The body (`List-Unsubscribe=One-Click`) is
/// not required: the signed token is the whole authority.
async fn one_click(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some(claims) = claims_of(&state, &token) else {
        return invalid_link();
    };
    let org = claims.organization_id;
    // A topic broadcast: out of that topic. A topic deleted since: out of everything, the one choice left
    // that honours the request.
    let topic = match claims.topic_id {
        Some(id) => match state.store.topics().get(org, id).await {
            Ok(found) => found.map(|t| t.id),
            Err(e) => {
                tracing::warn!(error = %e, "reading a topic for an unsubscribe failed");
                return unavailable();
            }
        },
        None => None,
    };
    let result = match topic {
        Some(topic) => {
            state
                .store
                .contacts()
                .set_preferences(
                    org,
                    claims.contact_id,
                    None,
                    &[(topic, Subscription::OptOut)],
                )
                .await
        }
        None => {
            state
                .store
                .contacts()
                .set_preferences(org, claims.contact_id, Some(true), &[])
                .await
        }
    };
    match result {
        Ok(true) => html(
            StatusCode::OK,
            "Unsubscribed",
            "<p>You are unsubscribed. You can change your preferences from the link in any email.</p>",
        ),
        Ok(false) => invalid_link(),
        Err(e) => {
            tracing::warn!(error = %e, "an unsubscribe failed");
            unavailable()
        }
    }
}

/// `POST /unsubscribe/{token}/preferences` (`application/x-www-form-urlencoded`): `unsubscribe_all=on` when
/// checked, and one `topic={id}` per topic kept. Topics the page did not show are left as they are.
async fn save(State(state): State<AppState>, Path(token): Path<String>, body: Bytes) -> Response {
    let Some(claims) = claims_of(&state, &token) else {
        return invalid_link();
    };
    let mut unsubscribe_all = false;
    let mut kept: Vec<Uuid> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(&body) {
        match name.as_ref() {
            "unsubscribe_all" => unsubscribe_all = !value.is_empty(),
            "topic" => {
                if let Ok(id) = Uuid::try_parse(&value) {
                    kept.push(id);
                }
            }
            _ => {}
        }
    }
    let org = claims.organization_id;
    let shown = match state
        .store
        .contacts()
        .preferences(org, claims.contact_id)
        .await
    {
        Ok(Some(p)) => visible(&p.topics),
        Ok(None) => return invalid_link(),
        Err(e) => {
            tracing::warn!(error = %e, "reading a contact's preferences failed");
            return unavailable();
        }
    };
    let choices: Vec<(Uuid, Subscription)> = shown
        .iter()
        .map(|(id, ..)| {
            let choice = if kept.contains(id) {
                Subscription::OptIn
            } else {
                Subscription::OptOut
            };
            (*id, choice)
        })
        .collect();
    match state
        .store
        .contacts()
        .set_preferences(org, claims.contact_id, Some(unsubscribe_all), &choices)
        .await
    {
        Ok(true) => render_page(&state, &token, &claims, Some("Your preferences are saved.")).await,
        Ok(false) => invalid_link(),
        Err(e) => {
            tracing::warn!(error = %e, "saving a contact's preferences failed");
            unavailable()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(secret: &str) -> UnsubscribeLinks {
        UnsubscribeLinks::new(&SecretString::from(secret.to_owned()))
    }

    #[test]
    fn a_signed_token_verifies_and_nothing_else_does() {
        let claims = LinkClaims {
            organization_id: Uuid::now_v7(),
            contact_id: Uuid::now_v7(),
            broadcast_id: Uuid::now_v7(),
            topic_id: Some(Uuid::now_v7()),
        };
        let s = signer("a-secret-long-enough-for-the-test-0001");
        let token = s.sign(&claims);
        assert_eq!(s.verify(&token), Some(claims));
        let no_topic = LinkClaims {
            topic_id: None,
            ..claims
        };
        assert_eq!(s.verify(&s.sign(&no_topic)), Some(no_topic));
        // Another secret, a changed character, a truncated token, garbage.
        assert_eq!(
            signer("another-secret-long-enough-000000001").verify(&token),
            None
        );
        let mut altered = token.clone().into_bytes();
        altered[5] = if altered[5] == b'A' { b'B' } else { b'A' };
        assert_eq!(s.verify(&String::from_utf8(altered).unwrap()), None);
        assert_eq!(s.verify(&token[..token.len() - 2]), None);
        assert_eq!(s.verify("not a token"), None);
        assert_eq!(s.verify(""), None);
    }
}
