//! Accepted emails, their recipients and their history, as the emails repository returns them.

use chrono::{DateTime, Utc};
use opensend_core::{
    EmailAddress, EmailStatus, Header, Mailbox, RecipientKind, RecipientStatus, Tag,
};
use sea_orm::DerivePartialModel;
use serde_json::Value;
use uuid::Uuid;

use super::columns::Row;
use crate::StoreError;
use crate::entities::{email, email_event, email_recipient};

/// An accepted email as lists show it: everything but its bodies, custom headers and raw message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailSummary {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub subject: String,
    pub tags: Vec<Tag>,
    /// Also Resend's `last_event`.
    pub status: EmailStatus,
    pub scheduled_at: Option<DateTime<Utc>>,
    /// The RFC 5322 `Message-ID`, `id@sending-domain`, without angle brackets.
    pub message_id: String,
    /// Accepted in capture mode from a domain the organization has not verified.
    pub unverified_sender: bool,
    pub created_at: DateTime<Utc>,
}

/// An accepted email with everything stored about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailRecord {
    pub summary: EmailSummary,
    pub api_key_id: Option<Uuid>,
    pub html: Option<String>,
    pub text: Option<String>,
    pub headers: Vec<Header>,
    pub sending_domain_id: Option<Uuid>,
    pub transport: Option<String>,
    pub provider_message_id: Option<String>,
    pub last_error: Option<String>,
    /// The message as sent, kept only by the capture transport.
    pub raw_mime: Option<Vec<u8>>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// The columns of [`EmailSummary`]: lists read only these.
#[derive(Clone, Debug, DerivePartialModel)]
#[sea_orm(entity = "email::Entity")]
pub(crate) struct EmailSummaryRow {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub from_address: String,
    pub to_addresses: String,
    pub cc_addresses: String,
    pub bcc_addresses: String,
    pub reply_to: String,
    pub subject: String,
    pub tags: String,
    pub status: String,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub message_id: String,
    pub unverified_sender: bool,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<EmailSummaryRow> for EmailSummary {
    type Error = StoreError;

    fn try_from(row: EmailSummaryRow) -> Result<Self, StoreError> {
        let read = Row::new("emails", row.id);
        Ok(Self {
            id: row.id,
            organization_id: row.organization_id,
            from: read.mailbox("from_address", &row.from_address)?,
            to: read.mailboxes("to_addresses", &row.to_addresses)?,
            cc: read.mailboxes("cc_addresses", &row.cc_addresses)?,
            bcc: read.mailboxes("bcc_addresses", &row.bcc_addresses)?,
            reply_to: read.mailboxes("reply_to", &row.reply_to)?,
            subject: row.subject,
            tags: read.tags("tags", &row.tags)?,
            status: read.value("status", &row.status)?,
            scheduled_at: row.scheduled_at,
            message_id: row.message_id,
            unverified_sender: row.unverified_sender,
            created_at: row.created_at,
        })
    }
}

impl TryFrom<email::Model> for EmailRecord {
    type Error = StoreError;

    fn try_from(model: email::Model) -> Result<Self, StoreError> {
        let headers = Row::new("emails", model.id).headers("headers", &model.headers)?;
        let summary = EmailSummaryRow {
            id: model.id,
            organization_id: model.organization_id,
            from_address: model.from_address,
            to_addresses: model.to_addresses,
            cc_addresses: model.cc_addresses,
            bcc_addresses: model.bcc_addresses,
            reply_to: model.reply_to,
            subject: model.subject,
            tags: model.tags,
            status: model.status,
            scheduled_at: model.scheduled_at,
            message_id: model.message_id,
            unverified_sender: model.unverified_sender,
            created_at: model.created_at,
        };
        Ok(Self {
            summary: summary.try_into()?,
            api_key_id: model.api_key_id,
            html: model.html,
            text: model.text_body,
            headers,
            sending_domain_id: model.sending_domain_id,
            transport: model.transport,
            provider_message_id: model.provider_message_id,
            last_error: model.last_error,
            raw_mime: model.raw_mime,
            updated_at: model.updated_at,
            sent_at: model.sent_at,
        })
    }
}

/// One envelope recipient of an email and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientRecord {
    pub id: Uuid,
    pub email_id: Uuid,
    pub organization_id: Uuid,
    pub address: EmailAddress,
    pub kind: RecipientKind,
    pub status: RecipientStatus,
    /// The receiving server's reply.
    pub response: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<email_recipient::Model> for RecipientRecord {
    type Error = StoreError;

    fn try_from(model: email_recipient::Model) -> Result<Self, StoreError> {
        let read = Row::new("email_recipients", model.id);
        Ok(Self {
            id: model.id,
            email_id: model.email_id,
            organization_id: model.organization_id,
            address: read.address("address", model.address)?,
            kind: read.value("kind", &model.kind)?,
            status: read.value("status", &model.status)?,
            response: model.response,
            updated_at: model.updated_at,
        })
    }
}

/// Something that happened to an email (`email.sent`, `email.failed`…), with its details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailEventRecord {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub email_id: Uuid,
    /// `email.queued`, `email.canceled` and the email event types webhooks carry.
    pub event_type: String,
    /// A JSON object.
    pub data: Value,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<email_event::Model> for EmailEventRecord {
    type Error = StoreError;

    fn try_from(model: email_event::Model) -> Result<Self, StoreError> {
        Ok(Self {
            data: Row::new("email_events", model.id).document("data", &model.data)?,
            id: model.id,
            organization_id: model.organization_id,
            email_id: model.email_id,
            event_type: model.event_type,
            created_at: model.created_at,
        })
    }
}

/// What the API shows of an accepted email's attachment without loading its content. `size` is the
/// content's length in bytes, measured by the database.
#[derive(Clone, Debug, PartialEq, Eq, sea_orm::FromQueryResult)]
pub struct SentAttachmentSummary {
    pub id: Uuid,
    pub email_id: Uuid,
    pub position: i32,
    pub filename: String,
    pub content_type: String,
    pub content_id: Option<String>,
    pub size: i64,
}
