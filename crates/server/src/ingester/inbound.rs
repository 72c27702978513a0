//! `POST /events/inbound`: a receiving MTA (Postfix pipe, a relay, a provider's push) hands over one raw
//! message and its envelope recipients; OpenSend stores it for every organization that receives mail for
//! one of those recipients and announces `email.received` to that organization's webhooks.
//!
//! The request needs `Authorization: Bearer ${INGESTER_INBOUND_TOKEN}`. The body is either
//!
//! - `Content-Type: message/rfc822`: the raw message, with the envelope recipients in `X-Envelope-To`
//!   (comma-separated, the header may repeat), or
//! - `Content-Type: application/json`: `{"raw": "<base64 of the message>", "recipients": ["…"]}`.
//!
//! Routing goes by the **envelope** recipients only: the message's own `To`/`Cc` are written by its sender
//! and never decide which organization gets it. A recipient `local@host` goes to every organization with a
//! verified, receiving-enabled domain named `host`, or named an ancestor of `host` with `allow_subdomains`
//! on. Recipients no organization receives for are ignored (and listed in the answer); when that is every
//! recipient, the request is refused (422) and nothing is stored. Any invalid input is a 4xx with nothing
//! stored; everything that is stored, and its webhook messages, is written in one transaction.

use std::collections::HashSet;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use opensend_core::{DomainName, ErrorCode, Header};
use opensend_mail::inbound::{self, InboundError, ReceivedAddress, ReceivedMessage};
use opensend_store::repos::received_emails::{InboundAttachment, InboundMessage, InboundRoute};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::parse_json;
use crate::ingester::tokens::InboundToken;
use crate::state::AppState;

/// Largest message accepted: 40 MiB, as outgoing mail and Amazon SES.
pub const MAX_MESSAGE_BYTES: usize = inbound::DEFAULT_MAX_BYTES;
/// Largest request body: a 40 MiB message in base64 inside JSON, and some room for the rest of the JSON.
pub const BODY_LIMIT: usize = MAX_MESSAGE_BYTES.div_ceil(3) * 4 + 1024 * 1024;
const _: () = assert!(BODY_LIMIT > MAX_MESSAGE_BYTES.div_ceil(3) * 4 + 64 * 1024);
/// Most envelope recipients of one message (RFC 5321 asks servers to take at least 100).
pub const MAX_RECIPIENTS: usize = 1000;
/// The header that carries the envelope recipients of a `message/rfc822` body.
pub const ENVELOPE_HEADER: &str = "x-envelope-to";
/// Longest envelope address, in octets (RFC 5321: a path is at most 256 octets with its brackets).
const MAX_ADDRESS_LEN: usize = 254;
/// Longest local part, in octets (RFC 5321).
const MAX_LOCAL_PART_LEN: usize = 64;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/events/inbound", post(receive))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

#[derive(Debug, Deserialize)]
struct JsonBody {
    raw: Option<String>,
    recipients: Option<Vec<String>>,
}

/// An envelope recipient: the local part as given, the domain lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Recipient {
    address: String,
    domain: DomainName,
}

async fn receive(
    State(state): State<AppState>,
    _token: InboundToken,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (raw, recipients) = read_request(&headers, body)?;
    store_received(&state, raw, &recipients).await.map(Json)
}

/// Stores `raw` for every organization that receives for one of `recipients` and wakes the webhook
/// dispatcher for `email.received`; the answer of `POST /events/inbound`. The SMTP MX
/// (`crate::smtp::inbound`) hands its messages over here too.
pub(crate) async fn store_received(
    state: &AppState,
    raw: Bytes,
    recipients: &[String],
) -> Result<Value, ApiError> {
    let recipients = parse_recipients(recipients)?;
    let message = inbound::parse_received(&raw).map_err(refused_message)?;
    let raw_size = i64::try_from(raw.len()).unwrap_or(i64::MAX);
    drop(raw);

    let (routes, ignored) = route(state, &recipients, &message).await?;
    if routes.is_empty() {
        return Err(ApiError::validation(
            "No envelope recipient is at a verified domain with receiving enabled; nothing was stored.",
        ));
    }
    let stored = into_stored(message, raw_size);
    let ids = state
        .store
        .received_emails()
        .receive(&stored, &routes)
        .await?;
    state.webhook_wakeup.notify_one();
    tracing::info!(
        organizations = routes.len(),
        recipients = recipients.len(),
        ignored = ignored.len(),
        attachments = stored.attachments.len(),
        size = raw_size,
        "inbound message stored"
    );

    let emails: Vec<Value> = ids
        .iter()
        .zip(&routes)
        .map(|(id, route)| json!({"id": id, "recipients": route.envelope_recipients}))
        .collect();
    Ok(json!({
        "object": "inbound",
        "accepted": emails.len(),
        "emails": emails,
        "ignored": ignored,
    }))
}

/// Whether some organization receives mail for `address` (a verified, receiving-enabled domain named its
/// domain, or an ancestor with `allow_subdomains`): what the SMTP MX asks at `RCPT` so that it never
/// relays.
pub(crate) async fn receives_for(state: &AppState, address: &str) -> Result<bool, ApiError> {
    let Some(recipient) = parse_recipient(address) else {
        return Ok(false);
    };
    let names: Vec<&str> = recipient.domain.ancestors().collect();
    let domains = state
        .store
        .received_emails()
        .receiving_domains(&names)
        .await?;
    Ok(domains.iter().any(|d| {
        d.name == recipient.domain.as_str()
            || (d.allow_subdomains && recipient.domain.ancestors().any(|name| name == d.name))
    }))
}

/// The raw message and the envelope recipients as given, from either body format.
fn read_request(headers: &HeaderMap, body: Bytes) -> Result<(Bytes, Vec<String>), ApiError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match content_type.as_str() {
        "message/rfc822" => {
            let mut recipients = Vec::new();
            for value in headers.get_all(ENVELOPE_HEADER) {
                let value = value.to_str().map_err(|_| {
                    ApiError::validation(
                        "`X-Envelope-To` must be ASCII addresses separated by commas.",
                    )
                })?;
                recipients.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned),
                );
            }
            if recipients.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::MissingRequiredField,
                    "Missing `X-Envelope-To`: name the envelope recipients, separated by commas.",
                ));
            }
            Ok((body, recipients))
        }
        "application/json" => {
            let parsed: JsonBody = parse_json(&body)?;
            drop(body);
            let raw = parsed.raw.ok_or_else(|| missing("raw"))?;
            let recipients = parsed.recipients.ok_or_else(|| missing("recipients"))?;
            let raw = decode_base64(raw)?;
            Ok((Bytes::from(raw), recipients))
        }
        _ => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Send the message as `Content-Type: message/rfc822` (recipients in `X-Envelope-To`) or as \
             `application/json` (`{\"raw\": base64, \"recipients\": [...]}`).",
        )),
    }
}

fn missing(field: &str) -> ApiError {
    ApiError::new(
        ErrorCode::MissingRequiredField,
        format!("Missing required field `{field}`."),
    )
}

/// Standard base64, line breaks and other ASCII whitespace allowed (MIME wraps at 76 characters).
fn decode_base64(text: String) -> Result<Vec<u8>, ApiError> {
    let mut compact = text.into_bytes();
    compact.retain(|b| !b.is_ascii_whitespace());
    if compact.is_empty() {
        return Err(ApiError::validation("`raw` is empty."));
    }
    if compact.len() / 4 * 3 > MAX_MESSAGE_BYTES + 3 {
        return Err(too_large(compact.len() / 4 * 3));
    }
    STANDARD
        .decode(&compact)
        .map_err(|e| ApiError::validation(format!("`raw` is not valid base64: {e}.")))
}

fn too_large(size: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("The message is {size} bytes; at most {MAX_MESSAGE_BYTES} are accepted."),
    )
}

fn refused_message(error: InboundError) -> ApiError {
    match error {
        InboundError::TooLarge { size, .. } => too_large(size),
        other => ApiError::validation(format!("The message cannot be accepted: {other}.")),
    }
}

/// Checks and normalises the envelope recipients (duplicates dropped, first spelling kept).
fn parse_recipients(given: &[String]) -> Result<Vec<Recipient>, ApiError> {
    if given.is_empty() {
        return Err(ApiError::validation(
            "`recipients` is empty: name at least one envelope recipient.",
        ));
    }
    if given.len() > MAX_RECIPIENTS {
        return Err(ApiError::validation(format!(
            "A message may have at most {MAX_RECIPIENTS} envelope recipients; this one has {}.",
            given.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut recipients = Vec::with_capacity(given.len());
    for raw in given {
        let recipient = parse_recipient(raw).ok_or_else(|| {
            let shown: String = raw.chars().take(64).collect();
            ApiError::validation(format!(
                "`{shown}` is not an envelope recipient address (local@domain)."
            ))
        })?;
        if seen.insert(recipient.address.to_ascii_lowercase()) {
            recipients.push(recipient);
        }
    }
    Ok(recipients)
}

/// `local@domain` or `<local@domain>`. The local part is kept as written (it is the receiving
/// organization's to interpret) but must be printable and without spaces; the domain must be a domain name.
fn parse_recipient(raw: &str) -> Option<Recipient> {
    let trimmed = raw.trim();
    let bare = trimmed
        .strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .unwrap_or(trimmed);
    if bare.len() > MAX_ADDRESS_LEN {
        return None;
    }
    let (local, host) = bare.rsplit_once('@')?;
    let printable =
        |c: char| !c.is_whitespace() && !c.is_control() && !matches!(c, '<' | '>' | ',');
    if local.is_empty() || local.len() > MAX_LOCAL_PART_LEN || !local.chars().all(printable) {
        return None;
    }
    let domain = DomainName::parse(host).ok()?;
    Some(Recipient {
        address: format!("{local}@{}", domain.as_str()),
        domain,
    })
}

/// Which organizations get the message, for which recipients; and the recipients nobody receives for.
async fn route(
    state: &AppState,
    recipients: &[Recipient],
    message: &ReceivedMessage,
) -> Result<(Vec<InboundRoute>, Vec<String>), ApiError> {
    let mut names: Vec<&str> = recipients
        .iter()
        .flat_map(|r| r.domain.ancestors())
        .collect();
    names.sort_unstable();
    names.dedup();
    let domains = state
        .store
        .received_emails()
        .receiving_domains(&names)
        .await?;

    // Addresses the message's To and Cc name; the other envelope recipients were blind copies.
    let named: HashSet<String> = message
        .to
        .iter()
        .chain(&message.cc)
        .map(|a| a.address.to_ascii_lowercase())
        .collect();

    let mut routes: Vec<InboundRoute> = Vec::new();
    let mut ignored = Vec::new();
    for recipient in recipients {
        let mut organizations: Vec<Uuid> = domains
            .iter()
            .filter(|d| {
                d.name == recipient.domain.as_str()
                    || (d.allow_subdomains
                        && recipient.domain.ancestors().any(|name| name == d.name))
            })
            .map(|d| d.organization_id)
            .collect();
        organizations.sort_unstable();
        organizations.dedup();
        if organizations.is_empty() {
            ignored.push(recipient.address.clone());
            continue;
        }
        let blind = !named.contains(&recipient.address.to_ascii_lowercase());
        for organization_id in organizations {
            let index = match routes
                .iter()
                .position(|r| r.organization_id == organization_id)
            {
                Some(index) => index,
                None => {
                    routes.push(InboundRoute {
                        organization_id,
                        envelope_recipients: Vec::new(),
                        bcc: Vec::new(),
                    });
                    routes.len() - 1
                }
            };
            let route = &mut routes[index];
            if !route.envelope_recipients.contains(&recipient.address) {
                route.envelope_recipients.push(recipient.address.clone());
                if blind {
                    route.bcc.push(recipient.address.clone());
                }
            }
        }
    }
    Ok((routes, ignored))
}

fn into_stored(message: ReceivedMessage, raw_size: i64) -> InboundMessage {
    InboundMessage {
        from: message.from.as_ref().map(display).unwrap_or_default(),
        to: message.to.iter().map(display).collect(),
        cc: message.cc.iter().map(display).collect(),
        reply_to: message.reply_to.iter().map(display).collect(),
        subject: message.subject,
        html: message.html,
        text: message.text,
        headers: message
            .headers
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect(),
        message_id: message.message_id,
        raw_size,
        attachments: message
            .attachments
            .into_iter()
            .map(|a| InboundAttachment {
                filename: a.filename,
                content_type: a.content_type,
                content_id: a.content_id,
                inline: a.inline,
                content: a.content,
            })
            .collect(),
    }
}

/// `Name <address>`, the name quoted when it holds characters that would otherwise end it; or the bare
/// address.
fn display(mailbox: &ReceivedAddress) -> String {
    match mailbox.name.as_deref() {
        None => mailbox.address.clone(),
        Some(name) => {
            let special = name.chars().any(|c| {
                matches!(
                    c,
                    '(' | ')' | '<' | '>' | '[' | ']' | ':' | ';' | '@' | '\\' | ',' | '.' | '"'
                )
            });
            if special {
                let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
                format!("\"{escaped}\" <{}>", mailbox.address)
            } else {
                format!("{name} <{}>", mailbox.address)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_normalised_and_checked() {
        let r = parse_recipient(" <Jane.Doe@Inbound.EXAMPLE> ").unwrap();
        assert_eq!(r.address, "Jane.Doe@inbound.example");
        assert_eq!(r.domain.as_str(), "inbound.example");
        assert!(parse_recipient("\"quoted local\"@example.com").is_none());
        assert!(parse_recipient("no-at-sign").is_none());
        assert!(parse_recipient("@example.com").is_none());
        assert!(parse_recipient("a@localhost").is_none());
        assert!(parse_recipient("a@[192.0.2.1]").is_none());
        let list = parse_recipients(&["a@x.example".into(), "A@X.example".into()]).unwrap();
        assert_eq!(
            list.len(),
            1,
            "duplicates differing in case are one recipient"
        );
        assert!(parse_recipients(&[]).is_err());
    }

    #[test]
    fn mailboxes_display_with_quoted_names_when_needed() {
        let mailbox = |name: Option<&str>| ReceivedAddress {
            address: "john@inbound.example".into(),
            name: name.map(str::to_owned),
        };
        assert_eq!(display(&mailbox(None)), "john@inbound.example");
        assert_eq!(
            display(&mailbox(Some("John Doe"))),
            "John Doe <john@inbound.example>"
        );
        assert_eq!(
            display(&mailbox(Some("Doe, John"))),
            "\"Doe, John\" <john@inbound.example>"
        );
    }

    #[test]
    fn base64_may_be_wrapped() {
        assert_eq!(decode_base64("aGVs\r\nbG8=".into()).unwrap(), b"hello");
        assert!(decode_base64("not base64!".into()).is_err());
        assert!(decode_base64("  ".into()).is_err());
    }
}
