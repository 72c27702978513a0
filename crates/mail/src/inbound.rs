//! Received mail: raw RFC 5322 bytes, as a receiving MTA or SES hands them over, parsed into the fields an
//! inbound webhook or the API shows.
//!
//! The input is untrusted. Parsing is best-effort (`mail-parser` recovers what it can from broken
//! boundaries, missing blank lines, bad encodings and unknown charsets), never panics, and is bounded: the
//! message's size, its number of header fields and its number of MIME parts have limits ([`InboundLimits`]),
//! and going over one is an [`InboundError`], not a silent cut.
//!
//! What comes out:
//! - Header fields of interest decoded: RFC 2047 encoded words, any charset `mail-parser` knows (ISO-8859-*,
//!   windows-125x, Shift_JIS, EUC-*, GB*, Big5, KOI8…), all turned into UTF-8.
//! - `text` is the text/plain body parts (as `mail-parser` selects them, RFC 8621 style) joined by blank
//!   lines, and `html` the text/html ones likewise. A message with HTML only has `text: None`: what arrived
//!   is reported as it arrived (a caller that wants a text rendering can use [`crate::html_to_text`]).
//! - `headers`: every top-level header field in order, its name as written and its value raw (unfolded,
//!   trimmed, bytes that are not UTF-8 replaced), so nothing is lost to interpretation.
//! - `attachments`: every part that is not a body, decoded (base64, quoted-printable), with its file name,
//!   type, Content-ID and whether it is inline.

use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{DateTime, Utc};
use mail_parser::{Address, Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// Largest message accepted by default: 40 MiB, as Amazon SES and our own sending.
pub const DEFAULT_MAX_BYTES: usize = 40 * 1024 * 1024;
/// Most top-level header fields by default.
pub const DEFAULT_MAX_HEADERS: usize = 1_000;
/// Most MIME parts (bodies, attachments and the multiparts around them) by default.
pub const DEFAULT_MAX_PARTS: usize = 1_000;

/// The bounds a received message must stay within.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboundLimits {
    pub max_bytes: usize,
    pub max_headers: usize,
    pub max_parts: usize,
}

impl Default for InboundLimits {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_parts: DEFAULT_MAX_PARTS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    #[error("the message is {size} bytes; at most {limit} are accepted")]
    TooLarge { size: usize, limit: usize },
    #[error("not an email message: no header fields found")]
    NotAMessage,
    #[error("the message has {count} header fields; at most {limit} are accepted")]
    TooManyHeaders { count: usize, limit: usize },
    #[error("the message has {count} MIME parts; at most {limit} are accepted")]
    TooManyParts { count: usize, limit: usize },
    /// The parser gave up in a way it should not have; the message is refused rather than half read.
    #[error("the message could not be parsed")]
    Unparseable,
}

/// A mailbox from an address header: `Jane <jane@example.com>` → name `Jane`, address `jane@example.com`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedAddress {
    /// As written (not validated: received mail may use forms we would never send).
    pub address: String,
    pub name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedAttachment {
    pub filename: Option<String>,
    /// `type/subtype`, lower-case; `application/octet-stream` when the part did not say.
    pub content_type: String,
    /// Without the angle brackets.
    pub content_id: Option<String>,
    /// `Content-Disposition: inline`, or no disposition but a Content-ID (an image the HTML refers to).
    pub inline: bool,
    /// Decoded bytes. For an attached message (`message/rfc822`), the message as it was.
    pub content: Vec<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// Without the angle brackets.
    pub message_id: Option<String>,
    /// The first mailbox of `From`.
    pub from: Option<ReceivedAddress>,
    pub to: Vec<ReceivedAddress>,
    pub cc: Vec<ReceivedAddress>,
    pub reply_to: Vec<ReceivedAddress>,
    pub subject: Option<String>,
    /// `None` when missing or not a valid date.
    pub date: Option<DateTime<Utc>>,
    pub text: Option<String>,
    pub html: Option<String>,
    /// Top-level header fields in order: name as written, raw value unfolded.
    pub headers: Vec<(String, String)>,
    pub attachments: Vec<ReceivedAttachment>,
}

/// Parses `raw` within the default limits.
pub fn parse_received(raw: &[u8]) -> Result<ReceivedMessage, InboundError> {
    parse_received_with(raw, &InboundLimits::default())
}

/// Parses `raw` within `limits`.
pub fn parse_received_with(
    raw: &[u8],
    limits: &InboundLimits,
) -> Result<ReceivedMessage, InboundError> {
    if raw.len() > limits.max_bytes {
        return Err(InboundError::TooLarge {
            size: raw.len(),
            limit: limits.max_bytes,
        });
    }
    // `mail-parser` promises not to panic; should it break that promise on some input, the message is
    // refused instead of taking its caller down.
    catch_unwind(AssertUnwindSafe(|| parse_within(raw, limits)))
        .unwrap_or(Err(InboundError::Unparseable))
        .map(without_nul)
}

/// Replaces NUL, which decoded headers and bodies may contain (`=?utf-8?B?AA==?=`) and which PostgreSQL text
/// columns refuse, with U+FFFD in every text field.
fn without_nul(mut message: ReceivedMessage) -> ReceivedMessage {
    fn clean(text: &mut String) {
        if text.contains('\0') {
            *text = text.replace('\0', "\u{FFFD}");
        }
    }
    fn clean_address(a: &mut ReceivedAddress) {
        clean(&mut a.address);
        a.name.iter_mut().for_each(clean);
    }
    message.message_id.iter_mut().for_each(clean);
    message.subject.iter_mut().for_each(clean);
    message.text.iter_mut().for_each(clean);
    message.html.iter_mut().for_each(clean);
    message.from.iter_mut().for_each(clean_address);
    for list in [&mut message.to, &mut message.cc, &mut message.reply_to] {
        list.iter_mut().for_each(clean_address);
    }
    for (name, value) in &mut message.headers {
        clean(name);
        clean(value);
    }
    for attachment in &mut message.attachments {
        attachment.filename.iter_mut().for_each(clean);
        clean(&mut attachment.content_type);
        attachment.content_id.iter_mut().for_each(clean);
    }
    message
}

fn parse_within(raw: &[u8], limits: &InboundLimits) -> Result<ReceivedMessage, InboundError> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(InboundError::NotAMessage)?;
    let header_count = message.headers().len();
    if header_count == 0 {
        return Err(InboundError::NotAMessage);
    }
    if header_count > limits.max_headers {
        return Err(InboundError::TooManyHeaders {
            count: header_count,
            limit: limits.max_headers,
        });
    }
    let part_count = count_parts(&message);
    if part_count > limits.max_parts {
        return Err(InboundError::TooManyParts {
            count: part_count,
            limit: limits.max_parts,
        });
    }

    Ok(ReceivedMessage {
        message_id: message.message_id().map(str::to_owned),
        from: message.from().and_then(|a| addresses(a).into_iter().next()),
        to: message.to().map(addresses).unwrap_or_default(),
        cc: message.cc().map(addresses).unwrap_or_default(),
        reply_to: message.reply_to().map(addresses).unwrap_or_default(),
        subject: message.subject().map(str::to_owned),
        date: message
            .date()
            .filter(|d| d.is_valid())
            .and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0)),
        text: join_bodies(&message, &message.text_body, false),
        html: join_bodies(&message, &message.html_body, true),
        headers: headers(&message, raw),
        attachments: message
            .attachments
            .iter()
            .filter_map(|&id| message.part(id))
            .map(attachment)
            .collect(),
    })
}

/// Parts of the message, nested messages' parts included (they are kept, as attachments).
fn count_parts(message: &Message<'_>) -> usize {
    message
        .parts
        .iter()
        .map(|part| match &part.body {
            PartType::Message(nested) => 1 + count_parts(nested),
            _ => 1,
        })
        .sum()
}

fn addresses(address: &Address<'_>) -> Vec<ReceivedAddress> {
    address
        .iter()
        .filter_map(|addr| {
            let address = addr.address()?.trim();
            (!address.is_empty()).then(|| ReceivedAddress {
                address: address.to_owned(),
                name: addr
                    .name()
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned),
            })
        })
        .collect()
}

/// The body parts listed in `ids` that really are text/html (`html`) or text/plain, joined by blank lines.
/// `mail-parser` lists an HTML part among the text bodies when there is no text part (and the reverse);
/// those stand-ins are left out.
fn join_bodies(message: &Message<'_>, ids: &[u32], html: bool) -> Option<String> {
    let bodies: Vec<&str> = ids
        .iter()
        .filter_map(|&id| message.part(id))
        .filter_map(|part| match (&part.body, html) {
            (PartType::Html(body), true) | (PartType::Text(body), false) => Some(body.as_ref()),
            _ => None,
        })
        .collect();
    (!bodies.is_empty()).then(|| bodies.join("\n\n"))
}

fn headers(message: &Message<'_>, raw: &[u8]) -> Vec<(String, String)> {
    message
        .headers()
        .iter()
        .map(|header| {
            let value = raw
                .get(header.offset_start() as usize..header.offset_end() as usize)
                .unwrap_or_default();
            // The name as written (`mail-parser` gives known names in their usual spelling).
            let written = raw
                .get(header.offset_field() as usize..header.offset_start() as usize)
                .and_then(|n| std::str::from_utf8(n).ok())
                .map(|n| n.trim_end().trim_end_matches(':').trim())
                .filter(|n| n.eq_ignore_ascii_case(header.name()));
            let name = written.unwrap_or(header.name()).to_owned();
            (name, unfold(value))
        })
        .collect()
}

/// A raw header value on one line: line breaks removed (RFC 5322 §2.2.3), ends trimmed.
fn unfold(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let unfolded: String = text.chars().filter(|&c| c != '\r' && c != '\n').collect();
    unfolded.trim().to_owned()
}

fn attachment(part: &MessagePart<'_>) -> ReceivedAttachment {
    let content_type = part
        .content_type()
        .map(|ct| match ct.subtype() {
            Some(subtype) => format!("{}/{}", ct.ctype(), subtype),
            None => ct.ctype().to_owned(),
        })
        .map(|ct| ct.to_ascii_lowercase())
        .filter(|ct| !ct.is_empty())
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let content_id = part
        .content_id()
        .map(|id| {
            id.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim()
        })
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    let inline = match part.content_disposition() {
        Some(disposition) => disposition.is_inline(),
        None => content_id.is_some(),
    };
    ReceivedAttachment {
        filename: part
            .attachment_name()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        content_type,
        content_id,
        inline,
        content: part.contents().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfolds_and_trims_raw_values() {
        assert_eq!(unfold(b" a\r\n b\r\n"), "a b");
        assert_eq!(unfold(b" caf\xe9\r\n"), "caf\u{fffd}");
    }
}
