use sea_orm::entity::prelude::*;

/// A received message as one organization got it. Address lists and headers are JSON text, written by the
/// received-emails repository and read into [`crate::records::ReceivedEmailRecord`].
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "received_emails")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub from_address: String,
    pub to_addresses: String,
    pub cc_addresses: String,
    pub reply_to: String,
    /// Envelope recipients named in neither To nor Cc.
    pub bcc_addresses: String,
    /// The envelope recipients (at this organization's domains) the message was delivered for.
    pub envelope_recipients: String,
    pub subject: Option<String>,
    pub html: Option<String>,
    pub text_body: Option<String>,
    /// JSON array of `[name, value]` pairs, in the message's order.
    pub headers: String,
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub raw_size: i64,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
