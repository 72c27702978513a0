//! Emails as the API shows them (Resend's `Email` object, plus a few extensions).

use base64::Engine;
use opensend_core::{EmailStatus, Mailbox, Tag};
use opensend_store::records::{EmailRecord, EmailSummary};
use serde::Serialize;
use uuid::Uuid;

use crate::api::timestamp;

#[derive(Debug, Serialize)]
pub struct EmailView {
    pub object: &'static str,
    pub id: Uuid,
    /// The `Message-ID` header, with angle brackets.
    pub message_id: String,
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub reply_to: Vec<String>,
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<Option<String>>,
    pub created_at: String,
    pub scheduled_at: Option<String>,
    pub last_event: EmailStatus,
    pub tags: Vec<Tag>,
    /// Extension: accepted in capture mode from a domain the organization has not verified.
    pub unverified_sender: bool,
    /// Extension, capture mode only: the message exactly as it would have been sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// Extension, capture mode only: `raw` base64-encoded, for messages that are not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_base64: Option<String>,
}

/// Addresses as the client sent them (normalised): `Name <address>` or the bare address.
fn shown(mailboxes: &[Mailbox]) -> Vec<String> {
    mailboxes.iter().map(ToString::to_string).collect()
}

impl EmailView {
    /// The full object, bodies included (`GET /emails/{id}`).
    pub fn full(email: EmailRecord) -> Self {
        let mut view = Self::summary(email.summary);
        view.html = Some(email.html);
        view.text = Some(email.text);
        if let Some(raw) = email.raw_mime {
            view.raw_base64 = Some(base64::engine::general_purpose::STANDARD.encode(&raw));
            view.raw = String::from_utf8(raw).ok();
        }
        view
    }

    /// Without bodies or raw message (lists).
    pub fn summary(email: EmailSummary) -> Self {
        Self {
            object: "email",
            id: email.id,
            message_id: format!("<{}>", email.message_id),
            from: email.from.to_string(),
            to: shown(&email.to),
            cc: shown(&email.cc),
            bcc: shown(&email.bcc),
            reply_to: shown(&email.reply_to),
            subject: email.subject,
            html: None,
            text: None,
            created_at: timestamp(email.created_at),
            scheduled_at: email.scheduled_at.map(timestamp),
            last_event: email.status,
            tags: email.tags,
            unverified_sender: email.unverified_sender,
            raw: None,
            raw_base64: None,
        }
    }
}
