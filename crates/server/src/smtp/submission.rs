//! An SMTP transaction (envelope recipients and the message) turned into the same accept as `POST /emails`.
//!
//! The message is parsed (`opensend_mail::inbound::parse_received`, mail-parser) into what an API request
//! gives: From, To, Cc, Reply-To, Subject, the text and HTML bodies, attachments (file name, type,
//! Content-ID, bytes), and the other header fields as custom headers. Header fields OpenSend writes itself
//! (Message-ID, Date, MIME-Version, Content-*, DKIM-Signature, Received…, see
//! `api::emails::request::is_reserved_header`) are dropped, as is `Bcc:`; of a custom header given more
//! than once, the first is kept. `Resend-Idempotency-Key` is the idempotency key and is removed.
//!
//! Every envelope recipient gets the message: those named in To or Cc as such, the others as Bcc, which
//! no stored or sent header shows. An address in To or Cc that is not an envelope recipient stays in the
//! header and receives nothing, as with any SMTP server.
//!
//! Then the API's own path: the rate limit (each message counts as one request), the From check, the
//! idempotency key, the quotas, suppressions and webhooks in the accept; the reply comes after the commit.

use axum::body::to_bytes;
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::Response;
use chrono::Utc;
use opensend_core::{EmailAddress, RecipientKind};
use opensend_mail::inbound::{ReceivedAddress, parse_received};
use serde_json::Value;

use super::reply::Reply;
use crate::api::emails::limits;
use crate::api::emails::request::{self, Context, is_reserved_header};
use crate::api::emails::send_parsed;
use crate::api::emails::wire::{AttachmentBody, SendEmailBody};
use crate::auth::ApiKeyContext;
use crate::error::ApiError;
use crate::idempotency::{self, Fingerprint};
use crate::rate_limit::middleware::charge_additional;
use crate::state::AppState;

/// The header that carries an idempotency key over SMTP (removed from the message).
pub const IDEMPOTENCY_HEADER: &str = "resend-idempotency-key";
/// Longest answer of the API read back to make a reply from (an id, or an error message).
const ANSWER_BYTES: usize = 64 * 1024;

/// Accepts the message `raw` for `recipients` on behalf of `caller`; the reply to the `DATA`.
pub async fn submit(
    state: &AppState,
    caller: &ApiKeyContext,
    recipients: &[EmailAddress],
    raw: &[u8],
) -> Reply {
    // Each message counts as one request of the caller's rate limit, as one `POST /emails`.
    if let Err(refusal) = charge_additional(state, caller, 1).await {
        return refusal_reply(refusal).await;
    }
    let mut fingerprint = Fingerprint::new("smtp");
    for recipient in recipients {
        fingerprint.update(recipient.as_str().as_bytes());
        fingerprint.update(b"\n");
    }
    fingerprint.update(raw);
    let (body, key) = match read_message(raw, recipients) {
        Ok(read) => read,
        Err(reply) => return reply,
    };
    let parsed = match request::parse(body, Context::Single, Utc::now()) {
        Ok(parsed) => parsed,
        Err(e) => return api_error_reply(&e),
    };
    let envelope = envelope_kinds(recipients, &parsed.to, &parsed.cc);
    match send_parsed(
        state,
        caller,
        parsed,
        key,
        fingerprint.finish(),
        Some(envelope),
    )
    .await
    {
        Ok(response) => response_reply(response).await,
        Err(e) => api_error_reply(&e),
    }
}

/// The message as an API request would give it, and its idempotency key.
fn read_message(
    raw: &[u8],
    recipients: &[EmailAddress],
) -> Result<(SendEmailBody, Option<String>), Reply> {
    let message = parse_received(raw)
        .map_err(|e| Reply::new(554, "5.6.0", format!("The message cannot be read: {e}")))?;
    let from = message
        .from
        .as_ref()
        .ok_or_else(|| Reply::new(554, "5.6.0", "The message has no From header."))?;
    let mut key = None;
    let mut names = std::collections::HashSet::new();
    let mut headers = Vec::new();
    for (name, value) in &message.headers {
        let lower = name.to_ascii_lowercase();
        if lower == IDEMPOTENCY_HEADER {
            let value = value.trim();
            let valid = !value.is_empty()
                && value.len() <= idempotency::MAX_KEY_CHARS
                && value.bytes().all(|b| (0x20..0x7f).contains(&b));
            if !valid {
                return Err(Reply::new(
                    554,
                    "5.6.0",
                    "Resend-Idempotency-Key must be 1 to 256 printable ASCII characters.",
                ));
            }
            key.get_or_insert_with(|| value.to_owned());
            continue;
        }
        if is_reserved_header(name) || !names.insert(lower) {
            continue;
        }
        headers.push((name.clone(), value.trim().to_owned()));
    }
    if headers.len() > limits::HEADERS {
        return Err(Reply::new(
            554,
            "5.6.0",
            format!(
                "The message has more than {} custom header fields.",
                limits::HEADERS
            ),
        ));
    }
    let to = mailboxes(&message.to);
    let cc = mailboxes(&message.cc);
    if to.len() > limits::TO || cc.len() > limits::CC {
        return Err(Reply::new(
            554,
            "5.6.0",
            format!(
                "The To and Cc headers may name at most {} addresses each.",
                limits::TO
            ),
        ));
    }
    let named: Vec<EmailAddress> = message
        .to
        .iter()
        .chain(&message.cc)
        .filter_map(|a| EmailAddress::parse(&a.address).ok())
        .collect();
    let bcc = recipients
        .iter()
        .filter(|r| !named.contains(r))
        .map(|r| r.as_str().to_owned())
        .collect();
    let attachments = message
        .attachments
        .into_iter()
        .map(|a| AttachmentBody {
            filename: Some(a.filename.unwrap_or_else(|| "attachment".to_owned())),
            content: Some(a.content),
            path: None,
            content_type: Some(a.content_type),
            content_id: a.content_id,
        })
        .collect();
    let body = SendEmailBody {
        from: Some(mailbox(from)),
        to: Some(to),
        cc: Some(cc),
        bcc: Some(bcc),
        reply_to: Some(mailboxes(&message.reply_to)),
        subject: Some(message.subject.unwrap_or_default()),
        html: message.html,
        text: message.text,
        headers: Some(headers),
        tags: None,
        attachments: Some(attachments),
        scheduled_at: None,
        template: None,
        malformed: None,
    };
    Ok((body, key))
}

fn mailbox(address: &ReceivedAddress) -> String {
    opensend_core::Mailbox::parse(&address.address).map_or_else(
        |_| address.address.clone(),
        |mut mailbox| {
            mailbox.name = address.name.clone().filter(|n| !n.trim().is_empty());
            mailbox.to_string()
        },
    )
}

fn mailboxes(addresses: &[ReceivedAddress]) -> Vec<String> {
    addresses.iter().map(mailbox).collect()
}

/// Each envelope recipient with the kind the headers give it: To, Cc, or (named in neither) Bcc.
fn envelope_kinds(
    recipients: &[EmailAddress],
    to: &[opensend_core::Mailbox],
    cc: &[opensend_core::Mailbox],
) -> Vec<(EmailAddress, RecipientKind)> {
    recipients
        .iter()
        .map(|r| {
            let kind = if to.iter().any(|m| m.address == *r) {
                RecipientKind::To
            } else if cc.iter().any(|m| m.address == *r) {
                RecipientKind::Cc
            } else {
                RecipientKind::Bcc
            };
            (r.clone(), kind)
        })
        .collect()
}

/// The reply for a response of the API (`send_parsed`'s answer).
async fn response_reply(response: Response) -> Reply {
    if response.status() == StatusCode::OK {
        let body = to_bytes(response.into_body(), ANSWER_BYTES)
            .await
            .unwrap_or_default();
        let id = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned));
        return match id {
            Some(id) => Reply::new(250, "2.0.0", format!("OK id={id}")),
            None => Reply::new(451, "4.3.0", "The message was not accepted; try again."),
        };
    }
    refusal_reply(response).await
}

/// The reply for a refusal of the API, by its status and error name:
///
/// - rate limit (429 `rate_limit_exceeded`), daily quota, concurrent idempotent request, an unavailable
///   database or rate limiter, any 5xx: `451` (temporary: the client's queue retries);
/// - the monthly quota: `550 5.7.0` (a client's queue gives up long before the month turns);
/// - a From the key may not send as: `550 5.7.1`; anything else about the message: `554 5.6.0`.
async fn refusal_reply(response: Response) -> Reply {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = to_bytes(response.into_body(), ANSWER_BYTES)
        .await
        .unwrap_or_default();
    let answer = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let name = answer.get("name").and_then(Value::as_str).unwrap_or("");
    let message = answer
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("The message was not accepted.");
    let wait = retry_after
        .map(|s| format!(" (retry after {s} s)"))
        .unwrap_or_default();
    match (status.as_u16(), name) {
        (_, "monthly_quota_exceeded") => Reply::new(550, "5.7.0", message),
        (429, _) => Reply::new(451, "4.7.0", format!("{message}{wait}")),
        (409, "concurrent_idempotent_requests") => Reply::new(451, "4.5.0", message),
        (500.., _) => Reply::new(451, "4.3.0", format!("{message}{wait}")),
        (_, "invalid_from_address") => Reply::new(550, "5.7.1", message),
        _ => Reply::new(554, "5.6.0", message),
    }
}

fn api_error_reply(error: &ApiError) -> Reply {
    use opensend_core::ErrorCode;
    match error.code() {
        ErrorCode::InvalidFromAddress => Reply::new(550, "5.7.1", error.message()),
        code if code.status() >= 500 => Reply::new(
            451,
            "4.3.0",
            "The message could not be accepted now; try again.",
        ),
        _ => Reply::new(554, "5.6.0", error.message()),
    }
}
