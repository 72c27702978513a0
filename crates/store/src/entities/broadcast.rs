use sea_orm::entity::prelude::*;

/// One email content sent to the contacts of a segment, and how far its fan-out got.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "broadcasts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: Option<String>,
    pub segment_id: Option<Uuid>,
    pub topic_id: Option<Uuid>,
    /// A mailbox as given (`Name <address>`), checked when written.
    pub from_address: String,
    pub subject: String,
    /// JSON array of addresses.
    pub reply_to: String,
    pub preview_text: Option<String>,
    pub html: Option<String>,
    pub text_body: Option<String>,
    /// `draft`, `scheduled`, `queued`, `sending`, `sent` or `canceled`.
    pub status: String,
    pub scheduled_at: Option<DateTimeUtc>,
    pub sent_at: Option<DateTimeUtc>,
    pub api_key_id: Option<Uuid>,
    pub sending_domain_id: Option<Uuid>,
    pub unverified_sender: bool,
    /// The last contact the fan-out wrote (contacts are walked in id order).
    pub cursor: Option<Uuid>,
    /// Emails written.
    pub queued: i64,
    /// Contacts skipped (unsubscribed, suppressed, opted out of the topic).
    pub skipped: i64,
    pub next_attempt_at: Option<DateTimeUtc>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
