//! Turning a send request (as `wire.rs` read it from Resend's JSON) into an email the store can accept, or
//! a 422 that says which field is wrong and why.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use opensend_core::{EmailAddress, ErrorCode, Header, Mailbox, RecipientKind, Tag};
use opensend_store::repos::emails::NewAttachment;

use super::limits::{self, bad_attachment, check_message_size};
use super::wire::{AttachmentBody, SendEmailBody, TagBody};
use crate::error::ApiError;

/// Headers a custom header may not set (compared case-insensitively): those the message's own fields
/// produce, and those that carry what a receiver or relay records about the message (its trace, its
/// authentication results), which a sender must not be able to forge.
const RESERVED_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "sender",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "dkim-signature",
    "return-path",
    "received",
    "received-spf",
    "authentication-results",
];

/// Families of reserved headers, by lower-case prefix: the MIME structure (`Content-*`); instructions Amazon
/// SES acts on (`X-SES-Configuration-Set`, `X-SES-Source-ARN`, `X-SES-Message-Tags`…); resending trace
/// (`Resent-*`); ARC sets (`ARC-Seal`, `ARC-Message-Signature`, `ARC-Authentication-Results`).
const RESERVED_HEADER_PREFIXES: &[&str] = &["content-", "x-ses-", "resent-", "arc-"];

/// Whether `name` (any case) is a header a custom header may not set.
pub fn is_reserved_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    RESERVED_HEADERS.contains(&lower.as_str())
        || RESERVED_HEADER_PREFIXES
            .iter()
            .any(|prefix| lower.starts_with(prefix))
}

/// The parsed email, before ids are assigned. `A` is [`Attachment`] straight out of [`parse`] (files given by
/// `path` are still to be fetched, see `remote.rs`), [`NewAttachment`] once every file is in hand.
#[derive(Debug)]
pub struct ParsedEmail<A = NewAttachment> {
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
    pub headers: Vec<Header>,
    pub tags: Vec<Tag>,
    pub attachments: Vec<A>,
    pub scheduled_at: Option<DateTime<Utc>>,
}

/// An attachment as the request gives it: its bytes, or a URL to fetch them from.
#[derive(Debug)]
pub enum Attachment {
    Ready(NewAttachment),
    Remote(RemoteAttachment),
}

/// An attachment given by `path`, checked as far as it can be without fetching it.
#[derive(Debug)]
pub struct RemoteAttachment {
    /// Its position in `attachments`, for error messages.
    pub index: usize,
    pub path: String,
    /// The request's `filename`, already checked; when absent, the last segment of the URL's path.
    pub filename: Option<String>,
    /// The request's `content_type`, already checked and lowercased; when absent, the response's.
    pub content_type: Option<String>,
    pub content_id: Option<String>,
}

impl ParsedEmail<Attachment> {
    /// The email as it is, when no attachment waits to be fetched (batch items, which cannot attach).
    pub fn into_ready(mut self) -> Result<ParsedEmail, ApiError> {
        let mut ready = Vec::with_capacity(self.attachments.len());
        for (index, attachment) in std::mem::take(&mut self.attachments)
            .into_iter()
            .enumerate()
        {
            match attachment {
                Attachment::Ready(a) => ready.push(a),
                Attachment::Remote(_) => {
                    return Err(bad_attachment(index, "`path` cannot be used here."));
                }
            }
        }
        Ok(self.with_attachments(ready))
    }
}

impl<A> ParsedEmail<A> {
    /// The same email with other attachments.
    pub fn with_attachments<B>(self, attachments: Vec<B>) -> ParsedEmail<B> {
        ParsedEmail {
            from: self.from,
            to: self.to,
            cc: self.cc,
            bcc: self.bcc,
            reply_to: self.reply_to,
            subject: self.subject,
            html: self.html,
            text: self.text,
            headers: self.headers,
            tags: self.tags,
            attachments,
            scheduled_at: self.scheduled_at,
        }
    }

    /// Bytes of the html and text bodies.
    pub fn body_bytes(&self) -> usize {
        self.html.as_ref().map_or(0, String::len) + self.text.as_ref().map_or(0, String::len)
    }

    /// Envelope recipients, each address once (the first kind it appears under wins).
    pub fn recipients(&self) -> Vec<(EmailAddress, RecipientKind)> {
        let mut seen = std::collections::HashSet::new();
        let lists = [
            (&self.to, RecipientKind::To),
            (&self.cc, RecipientKind::Cc),
            (&self.bcc, RecipientKind::Bcc),
        ];
        let mut out = Vec::new();
        for (list, kind) in lists {
            for mailbox in list {
                if seen.insert(mailbox.address.as_str()) {
                    out.push((mailbox.address.clone(), kind));
                }
            }
        }
        out
    }
}

/// Whether the request may schedule and attach (single sends) or not (batch items, as in Resend).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    Single,
    BatchItem,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::validation(message.into())
}

fn missing(field: &str) -> ApiError {
    ApiError::new(
        ErrorCode::MissingRequiredField,
        format!("Missing required field `{field}`."),
    )
}

pub fn parse(
    body: SendEmailBody,
    context: Context,
    now: DateTime<Utc>,
) -> Result<ParsedEmail<Attachment>, ApiError> {
    if let Some(problem) = body.malformed {
        return Err(problem);
    }
    if body.template.is_some() {
        // `api::templates::send::fill` takes it out before any request is parsed.
        return Err(ApiError::internal(
            "a send request reached parse with its template unapplied",
        ));
    }
    let from_raw = body.from.ok_or_else(|| missing("from"))?;
    let from = Mailbox::parse(&from_raw)
        .map_err(|e| ApiError::new(ErrorCode::ValidationError, format!("`from`: {e}")))?;
    let to = mailboxes("to", body.to.unwrap_or_default())?;
    if to.is_empty() {
        return Err(missing("to"));
    }
    let cc = mailboxes("cc", body.cc.unwrap_or_default())?;
    let bcc = mailboxes("bcc", body.bcc.unwrap_or_default())?;
    let reply_to = mailboxes("reply_to", body.reply_to.unwrap_or_default())?;

    let subject = body.subject.ok_or_else(|| missing("subject"))?;
    if subject.chars().count() > limits::SUBJECT_CHARS {
        return Err(invalid(format!(
            "`subject` is longer than {} characters.",
            limits::SUBJECT_CHARS
        )));
    }
    if subject
        .chars()
        .any(|c| c == '\r' || c == '\n' || (c.is_control() && c != '\t'))
    {
        return Err(invalid(
            "`subject` must not contain line breaks or control characters.",
        ));
    }
    let html = body.html.filter(|h| !h.is_empty());
    let text = body.text.filter(|t| !t.is_empty());
    if html.is_none() && text.is_none() {
        return Err(ApiError::new(
            ErrorCode::MissingRequiredField,
            "Missing `html` or `text`: an email needs a body.",
        ));
    }

    let headers = headers(body.headers.unwrap_or_default())?;
    let tags = tags(body.tags.unwrap_or_default())?;

    let attachments = body.attachments.unwrap_or_default();
    if context == Context::BatchItem && !attachments.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidAttachment,
            "Attachments are not supported in batch sends.",
        ));
    }
    let attachments = attachments_of(attachments)?;

    let scheduled_at = match body.scheduled_at.filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(_) if context == Context::BatchItem => {
            return Err(invalid("`scheduled_at` is not supported in batch sends."));
        }
        Some(raw) => Some(parse_schedule(&raw, now)?),
    };

    let parsed = ParsedEmail {
        from,
        to,
        cc,
        bcc,
        reply_to,
        subject,
        html,
        text,
        headers,
        tags,
        attachments,
        scheduled_at,
    };
    let attached: usize = parsed
        .attachments
        .iter()
        .map(|a| match a {
            Attachment::Ready(ready) => ready.content.len(),
            Attachment::Remote(_) => 0,
        })
        .sum();
    check_message_size(parsed.body_bytes() + attached)?;
    Ok(parsed)
}

/// `scheduled_at`: an RFC 3339 / ISO 8601 time with an offset, in the future and at most
/// `SCHEDULE_AHEAD_DAYS` ahead. A time in the past is refused rather than sent at once, so a clock or
/// time-zone mistake does not send early without notice.
pub fn parse_schedule(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    let at = DateTime::parse_from_rfc3339(raw.trim())
        .map_err(|_| {
            invalid(format!(
                "`scheduled_at` must be an ISO 8601 date and time with an offset, e.g. 2026-12-01T09:30:00Z, not `{}`.",
                raw.chars().take(64).collect::<String>()
            ))
        })?
        .with_timezone(&Utc);
    if at <= now {
        return Err(invalid("`scheduled_at` must be in the future."));
    }
    if at > now + TimeDelta::days(limits::SCHEDULE_AHEAD_DAYS) {
        return Err(invalid(format!(
            "`scheduled_at` must be within {} days.",
            limits::SCHEDULE_AHEAD_DAYS
        )));
    }
    Ok(at)
}

fn mailboxes(field: &str, raw: Vec<String>) -> Result<Vec<Mailbox>, ApiError> {
    raw.iter()
        .map(|r| Mailbox::parse(r).map_err(|e| invalid(format!("`{field}`: {e}"))))
        .collect()
}

/// Custom headers: valid names, none reserved, none given twice in any case; values on one line.
fn headers(raw: Vec<(String, String)>) -> Result<Vec<Header>, ApiError> {
    let mut names = HashSet::with_capacity(raw.len());
    for (name, value) in &raw {
        let valid_name = !name.is_empty()
            && name.len() <= limits::HEADER_NAME_CHARS
            && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !valid_name {
            return Err(invalid(format!(
                "Header name `{}` is not valid: printable ASCII without `:`, at most {} characters.",
                name.chars().take(80).collect::<String>(),
                limits::HEADER_NAME_CHARS
            )));
        }
        if is_reserved_header(name) {
            return Err(invalid(format!(
                "Header `{name}` is reserved: it is set by OpenSend or by the receiving systems and cannot be given."
            )));
        }
        if !names.insert(name.to_ascii_lowercase()) {
            return Err(invalid(format!(
                "Header `{name}` is given more than once (header names are case-insensitive)."
            )));
        }
        if value
            .chars()
            .any(|c| c == '\r' || c == '\n' || (c.is_control() && c != '\t'))
        {
            return Err(invalid(format!(
                "Header `{name}` must not contain line breaks or control characters."
            )));
        }
        if value.chars().count() > limits::HEADER_VALUE_CHARS {
            return Err(invalid(format!(
                "Header `{name}` is longer than {} characters.",
                limits::HEADER_VALUE_CHARS
            )));
        }
    }
    Ok(raw
        .into_iter()
        .map(|(name, value)| Header { name, value })
        .collect())
}

fn tags(raw: Vec<TagBody>) -> Result<Vec<Tag>, ApiError> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= limits::TAG_CHARS
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    raw.into_iter()
        .map(|tag| {
            if valid(&tag.name) && valid(&tag.value) {
                Ok(Tag {
                    name: tag.name,
                    value: tag.value,
                })
            } else {
                Err(invalid(format!(
                    "Tag `{}`: names and values may only contain ASCII letters, digits, `_` and `-`, 1 to {} characters.",
                    tag.name.chars().take(64).collect::<String>(),
                    limits::TAG_CHARS
                )))
            }
        })
        .collect()
}

fn attachments_of(raw: Vec<AttachmentBody>) -> Result<Vec<Attachment>, ApiError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, a)| {
            let content_type = match a.content_type {
                Some(ct) => {
                    if !is_media_type(&ct) {
                        return Err(bad_attachment(
                            i,
                            "`content_type` must look like `type/subtype`.",
                        ));
                    }
                    Some(ct.to_ascii_lowercase())
                }
                None => None,
            };
            let content_id = match a.content_id {
                None => None,
                Some(cid) => {
                    let cid = cid
                        .trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_owned();
                    let ok = !cid.is_empty()
                        && cid.len() <= limits::CONTENT_ID_CHARS
                        && cid
                            .bytes()
                            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>');
                    if !ok {
                        return Err(bad_attachment(
                            i,
                            "`content_id` must be 1 to 128 printable ASCII characters.",
                        ));
                    }
                    Some(cid)
                }
            };
            let path = a.path.filter(|p| !p.trim().is_empty());
            let content = match (a.content, path) {
                (Some(content), _) => content,
                (None, Some(path)) => {
                    let filename = a
                        .filename
                        .map(|name| checked_filename(i, name))
                        .transpose()?;
                    return Ok(Attachment::Remote(RemoteAttachment {
                        index: i,
                        path,
                        filename,
                        content_type,
                        content_id,
                    }));
                }
                (None, None) => {
                    return Err(bad_attachment(
                        i,
                        "`content` (the file, base64) or `path` (a URL to fetch it from) is required.",
                    ));
                }
            };
            let filename = checked_filename(i, a.filename.unwrap_or_default())?;
            let content_type =
                content_type.unwrap_or_else(|| media_type_for(&filename).to_owned());
            Ok(Attachment::Ready(NewAttachment {
                filename,
                content_type,
                content_id,
                content,
            }))
        })
        .collect()
}

/// An attachment's file name: 1 to 255 characters, no control characters, slashes or quotes.
pub fn checked_filename(index: usize, filename: String) -> Result<String, ApiError> {
    let ok = !filename.trim().is_empty()
        && filename.chars().count() <= limits::FILENAME_CHARS
        && !filename
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\' || c == '"');
    if ok {
        Ok(filename)
    } else {
        Err(bad_attachment(
            index,
            "`filename` is required: 1 to 255 characters, no control characters, slashes or quotes.",
        ))
    }
}

pub fn is_media_type(value: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    matches!(value.split_once('/'), Some((t, s)) if token(t) && token(s))
}

/// A media type from the file extension, for attachments sent without `content_type`.
pub fn media_type_for(filename: &str) -> &'static str {
    let extension = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "ics" => "text/calendar",
        "json" => "application/json",
        "zip" => "application/zip",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}

/// The address part only, for the sending-domain check.
pub fn from_address<A>(email: &ParsedEmail<A>) -> &EmailAddress {
    &email.from.address
}
