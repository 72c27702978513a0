use sea_orm::entity::prelude::*;

/// An accepted email. Mailboxes, headers and tags are JSON text so one column type serves both backends;
/// they are written by the emails repository and read into [`crate::records::EmailRecord`] (their stored
/// forms, old and new, are described in `records::columns`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "emails")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub api_key_id: Option<Uuid>,
    pub from_address: String,
    pub to_addresses: String,
    pub cc_addresses: String,
    pub bcc_addresses: String,
    pub reply_to: String,
    pub subject: String,
    /// Bodies and `raw_mime` are the heavy columns: lists never select them.
    pub html: Option<String>,
    pub text_body: Option<String>,
    pub headers: String,
    pub tags: String,
    /// Resend's `last_event` vocabulary: queued, scheduled, sent, delivered, failed, canceled, suppressed, …
    pub status: String,
    pub scheduled_at: Option<DateTimeUtc>,
    /// The RFC 5322 `Message-ID`, `<id@sending-domain>`.
    pub message_id: String,
    pub sending_domain_id: Option<Uuid>,
    /// Accepted in capture mode from a domain the organization has not verified.
    pub unverified_sender: bool,
    pub transport: Option<String>,
    pub provider_message_id: Option<String>,
    pub last_error: Option<String>,
    pub raw_mime: Option<Vec<u8>>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
