//! Building the RFC 5322 message for an accepted email.
//!
//! Structure, from the inside out: the text and HTML bodies form `multipart/alternative` (a text part is
//! derived from the HTML when only HTML is given, since some clients and spam filters want one); inline
//! images (parts with a `content_id`) join the HTML in `multipart/related`; attachments wrap everything in
//! `multipart/mixed`. Non-ASCII header text is RFC 2047-encoded by mail-builder. Bcc recipients are never
//! written: they exist only in the envelope.

use std::borrow::Cow;

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::mime::MimePart;
use opensend_core::Mailbox;

use crate::html_text::html_to_text;

/// Everything the message is made of, already validated by the API.
#[derive(Clone, Debug)]
pub struct OutgoingMessage {
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
    /// Custom headers, already checked for names we own and for line breaks.
    pub headers: Vec<(String, String)>,
    pub attachments: Vec<OutgoingAttachment>,
    /// Without angle brackets: `0192…@example.com`.
    pub message_id: String,
    /// Seconds since the Unix epoch.
    pub date: i64,
}

#[derive(Clone, Debug)]
pub struct OutgoingAttachment {
    pub filename: String,
    pub content_type: String,
    /// Referenced from the HTML as `cid:…`; such parts are inline, the others are attachments.
    pub content_id: Option<String>,
    pub content: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
#[error("could not write the message: {0}")]
pub struct MimeError(String);

/// The message as bytes, CRLF line endings.
pub fn build_message(message: &OutgoingMessage) -> Result<Vec<u8>, MimeError> {
    let mut builder = MessageBuilder::new()
        .from(address(&message.from))
        .subject(Text::new(message.subject.as_str()))
        .message_id(message.message_id.as_str())
        .date(message.date);
    if !message.to.is_empty() {
        builder = builder.to(address_list(&message.to));
    }
    if !message.cc.is_empty() {
        builder = builder.cc(address_list(&message.cc));
    }
    if !message.reply_to.is_empty() {
        builder = builder.reply_to(address_list(&message.reply_to));
    }
    for (name, value) in &message.headers {
        // Printable ASCII is written as given (folded at spaces): an encoded word would break structured
        // values such as `List-Unsubscribe: <https://…>` once they pass 76 characters. Anything else is
        // encoded (RFC 2047).
        builder = if value
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
        {
            builder.header(name.as_str(), Raw::new(value.as_str()))
        } else {
            builder.header(name.as_str(), Text::new(value.as_str()))
        };
    }
    builder
        .body(body(message))
        .write_to_vec()
        .map_err(|e| MimeError(e.to_string()))
}

fn address(mailbox: &Mailbox) -> Address<'_> {
    Address::new_address(
        mailbox.name.as_deref().map(Cow::Borrowed),
        mailbox.address.as_str(),
    )
}

fn address_list(mailboxes: &[Mailbox]) -> Address<'_> {
    Address::new_list(mailboxes.iter().map(address).collect())
}

fn body(message: &OutgoingMessage) -> MimePart<'_> {
    let derived_text;
    let text = match (&message.text, &message.html) {
        (Some(text), _) => Some(text.as_str()),
        (None, Some(html)) => {
            derived_text = html_to_text(html);
            Some(derived_text.as_str())
        }
        (None, None) => None,
    };
    let (inline, attached): (Vec<_>, Vec<_>) = message
        .attachments
        .iter()
        .partition(|a| a.content_id.is_some() && message.html.is_some());

    let html_part = message.html.as_deref().map(|html| {
        let html = MimePart::new("text/html", html);
        if inline.is_empty() {
            html
        } else {
            let mut parts = vec![html];
            parts.extend(inline.iter().map(|a| {
                MimePart::new(a.content_type.as_str(), a.content.as_slice())
                    .inline()
                    .cid(a.content_id.as_deref().unwrap_or_default())
            }));
            MimePart::new("multipart/related", parts)
        }
    });
    let text_part = text.map(|t| MimePart::new("text/plain", t.to_owned()));
    let content = match (text_part, html_part) {
        (Some(text), Some(html)) => MimePart::new("multipart/alternative", vec![text, html]),
        (Some(text), None) => text,
        (None, Some(html)) => html,
        // The API requires html or text; an empty text part keeps the message well-formed regardless.
        (None, None) => MimePart::new("text/plain", ""),
    };
    if attached.is_empty() {
        return content;
    }
    let mut parts = vec![content];
    parts.extend(attached.iter().map(|a| {
        MimePart::new(a.content_type.as_str(), a.content.as_slice()).attachment(a.filename.as_str())
    }));
    MimePart::new("multipart/mixed", parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{MessageParser, MimeHeaders};

    fn message() -> OutgoingMessage {
        OutgoingMessage {
            from: Mailbox::parse("Acme Café <hello@acme.com>").unwrap(),
            to: vec![Mailbox::parse("jane@example.com").unwrap()],
            cc: vec![Mailbox::parse("Bob <bob@example.com>").unwrap()],
            reply_to: vec![],
            subject: "Grüße aus Köln".to_owned(),
            html: Some("<p>Hello <b>Jane</b></p><img src=\"cid:logo\">".to_owned()),
            text: None,
            headers: vec![("X-Entity-Ref-ID".to_owned(), "abc-123".to_owned())],
            attachments: vec![
                OutgoingAttachment {
                    filename: "logo.png".to_owned(),
                    content_type: "image/png".to_owned(),
                    content_id: Some("logo".to_owned()),
                    content: vec![0x89, b'P', b'N', b'G'],
                },
                OutgoingAttachment {
                    filename: "invoice.pdf".to_owned(),
                    content_type: "application/pdf".to_owned(),
                    content_id: None,
                    content: b"%PDF-1.4 fake".to_vec(),
                },
            ],
            message_id: "0192@acme.com".to_owned(),
            date: 1_764_230_400,
        }
    }

    #[test]
    fn long_ascii_headers_are_not_encoded_and_others_are() {
        let url = format!("<https://mail.example.com/unsubscribe/{}>", "A".repeat(120));
        let mut m = message();
        m.headers = vec![
            (
                "List-Unsubscribe".to_owned(),
                format!("{url}, <mailto:u@example.com>"),
            ),
            ("X-Name".to_owned(), "Köln".to_owned()),
        ];
        let raw = build_message(&m).unwrap();
        let text = String::from_utf8_lossy(&raw);
        let unfolded = text.replace("\r\n ", " ");
        assert!(
            unfolded.contains(&format!("List-Unsubscribe: {url}, <mailto:u@example.com>")),
            "{text}"
        );
        assert!(text.contains("X-Name: =?utf-8?"), "{text}");
    }

    #[test]
    fn full_structure_parses_back() {
        let raw = build_message(&message()).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("\r\n"), "CRLF line endings");
        assert!(
            text.contains("Subject: =?utf-8?"),
            "RFC 2047 subject:\n{text}"
        );
        assert!(text.contains("Message-ID: <0192@acme.com>"));
        assert!(text.contains("X-Entity-Ref-ID: abc-123"));

        let parsed = MessageParser::new().parse(&raw).unwrap();
        assert_eq!(parsed.subject(), Some("Grüße aus Köln"));
        assert_eq!(
            parsed.from().unwrap().first().unwrap().name(),
            Some("Acme Café")
        );
        assert!(parsed.content_type().unwrap().subtype() == Some("mixed"));
        assert_eq!(
            parsed.body_text(0).as_deref().map(str::trim),
            Some("Hello Jane")
        );
        assert!(parsed.body_html(0).unwrap().contains("<b>Jane</b>"));
        let attachment_names: Vec<_> = parsed
            .attachments()
            .filter_map(|a| a.attachment_name())
            .collect();
        assert!(
            attachment_names.contains(&"invoice.pdf"),
            "{attachment_names:?}"
        );
        assert!(text.contains("multipart/related"));
        assert!(text.contains("multipart/alternative"));
        assert!(text.contains("Content-ID: <logo>"));
    }

    #[test]
    fn text_only_is_a_single_part() {
        let mut m = message();
        m.html = None;
        m.attachments.clear();
        m.text = Some("Just text".to_owned());
        let raw = build_message(&m).unwrap();
        let parsed = MessageParser::new().parse(&raw).unwrap();
        assert_eq!(parsed.content_type().unwrap().ctype(), "text");
        assert_eq!(
            parsed.body_text(0).as_deref().map(str::trim),
            Some("Just text")
        );
    }

    #[test]
    fn no_bcc_header_is_ever_written() {
        let raw = build_message(&message()).unwrap();
        let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
        assert!(!text.contains("\nbcc:"));
    }
}
