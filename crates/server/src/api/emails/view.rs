//! Emails as the API shows them (Resend's `Email` object, plus a few extensions).

use base64::Engine;
use opensend_store::entities::email;
use opensend_store::repos::emails::{read_list, read_pairs};
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
    pub last_event: String,
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

#[derive(Debug, Serialize)]
pub struct Tag {
    pub name: String,
    pub value: String,
}

impl EmailView {
    /// The full object, bodies included (`GET /emails/{id}`).
    pub fn full(email: email::Model) -> Self {
        let raw = email.raw_mime.clone();
        let mut view = Self::summary(email.clone());
        view.html = Some(email.html);
        view.text = Some(email.text_body);
        if let Some(raw) = raw {
            view.raw_base64 = Some(base64::engine::general_purpose::STANDARD.encode(&raw));
            view.raw = String::from_utf8(raw).ok();
        }
        view
    }

    /// Without bodies or raw message (lists).
    pub fn summary(email: email::Model) -> Self {
        Self {
            object: "email",
            id: email.id,
            message_id: format!("<{}>", email.message_id),
            from: email.from_address,
            to: read_list(&email.to_addresses),
            cc: read_list(&email.cc_addresses),
            bcc: read_list(&email.bcc_addresses),
            reply_to: read_list(&email.reply_to),
            subject: email.subject,
            html: None,
            text: None,
            created_at: timestamp(email.created_at),
            scheduled_at: email.scheduled_at.map(timestamp),
            last_event: email.status,
            tags: read_pairs(&email.tags)
                .into_iter()
                .map(|(name, value)| Tag { name, value })
                .collect(),
            unverified_sender: email.unverified_sender,
            raw: None,
            raw_base64: None,
        }
    }
}
