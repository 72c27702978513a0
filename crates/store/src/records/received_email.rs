//! Received (inbound) emails and their attachments' metadata, as the received-emails repository returns
//! them. Addresses are the message's own display forms (`Name <address>`): received mail is shown as it
//! came, not held to the rules for what we send.

use chrono::{DateTime, Utc};
use opensend_core::Header;
use sea_orm::{DerivePartialModel, FromQueryResult};
use uuid::Uuid;

use super::columns::Row;
use crate::StoreError;
use crate::entities::received_email;

/// A received email as lists show it: everything but its bodies and header fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedEmailSummary {
    pub id: Uuid,
    pub organization_id: Uuid,
    /// Display text of the first From mailbox; empty when there was none.
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub reply_to: Vec<String>,
    /// Envelope recipients named in neither To nor Cc.
    pub bcc: Vec<String>,
    /// The envelope recipients (at this organization's domains) the message was delivered for.
    pub envelope_recipients: Vec<String>,
    pub subject: Option<String>,
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub raw_size: i64,
    pub created_at: DateTime<Utc>,
}

/// A received email with its bodies and header fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedEmailRecord {
    pub summary: ReceivedEmailSummary,
    pub html: Option<String>,
    pub text: Option<String>,
    /// In the message's order, repeated fields included.
    pub headers: Vec<Header>,
}

/// The columns of [`ReceivedEmailSummary`]: lists read only these.
#[derive(Clone, Debug, DerivePartialModel)]
#[sea_orm(entity = "received_email::Entity")]
pub(crate) struct ReceivedEmailSummaryRow {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub from_address: String,
    pub to_addresses: String,
    pub cc_addresses: String,
    pub reply_to: String,
    pub bcc_addresses: String,
    pub envelope_recipients: String,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    pub raw_size: i64,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<ReceivedEmailSummaryRow> for ReceivedEmailSummary {
    type Error = StoreError;

    fn try_from(row: ReceivedEmailSummaryRow) -> Result<Self, StoreError> {
        let read = Row::new("received_emails", row.id);
        Ok(Self {
            id: row.id,
            organization_id: row.organization_id,
            from: row.from_address,
            to: read.strings("to_addresses", &row.to_addresses)?,
            cc: read.strings("cc_addresses", &row.cc_addresses)?,
            reply_to: read.strings("reply_to", &row.reply_to)?,
            bcc: read.strings("bcc_addresses", &row.bcc_addresses)?,
            envelope_recipients: read.strings("envelope_recipients", &row.envelope_recipients)?,
            subject: row.subject,
            message_id: row.message_id,
            raw_size: row.raw_size,
            created_at: row.created_at,
        })
    }
}

impl TryFrom<received_email::Model> for ReceivedEmailRecord {
    type Error = StoreError;

    fn try_from(model: received_email::Model) -> Result<Self, StoreError> {
        let headers = Row::new("received_emails", model.id).headers("headers", &model.headers)?;
        let summary = ReceivedEmailSummaryRow {
            id: model.id,
            organization_id: model.organization_id,
            from_address: model.from_address,
            to_addresses: model.to_addresses,
            cc_addresses: model.cc_addresses,
            reply_to: model.reply_to,
            bcc_addresses: model.bcc_addresses,
            envelope_recipients: model.envelope_recipients,
            subject: model.subject,
            message_id: model.message_id,
            raw_size: model.raw_size,
            created_at: model.created_at,
        };
        Ok(Self {
            summary: summary.try_into()?,
            html: model.html,
            text: model.text_body,
            headers,
        })
    }
}

/// What the API shows of an attachment without loading its content.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct AttachmentSummary {
    pub id: Uuid,
    pub received_email_id: Uuid,
    pub position: i32,
    pub filename: Option<String>,
    pub content_type: String,
    pub content_id: Option<String>,
    pub inline: bool,
    pub size: i64,
}

impl AttachmentSummary {
    /// `inline` or `attachment`, as Resend's `content_disposition`.
    pub fn disposition(&self) -> &'static str {
        if self.inline { "inline" } else { "attachment" }
    }
}
