//! What the accept path is given and gives back: an email the API validated, the response kept for its
//! idempotency key, and what became of each email. Kept apart from [`crate::repos::emails`] so that the
//! group writer ([`crate::repos::accept_writer`]) and the repository that hands it work share these types
//! without depending on each other.

use chrono::{DateTime, Utc};
use opensend_core::{EmailAddress, EmailStatus, Header, Mailbox, RecipientKind, Tag};
use uuid::Uuid;

/// An email the API validated, ready to be written. Addresses are stored as parsed here and read back
/// without being parsed again (see [`crate::records`]).
#[derive(Clone, Debug)]
pub struct NewEmail {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub api_key_id: Option<Uuid>,
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
    pub attachments: Vec<NewAttachment>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub message_id: String,
    pub sending_domain_id: Option<Uuid>,
    pub unverified_sender: bool,
    /// Envelope recipients, normalised and without duplicates.
    pub recipients: Vec<(EmailAddress, RecipientKind)>,
}

#[derive(Clone, Debug)]
pub struct NewAttachment {
    pub filename: String,
    pub content_type: String,
    pub content_id: Option<String>,
    pub content: Vec<u8>,
}

/// The response to remember for an `Idempotency-Key`, written in the same transaction as the emails.
#[derive(Clone, Debug)]
pub struct IdempotentResponse {
    pub record_id: Uuid,
    pub status: u16,
    pub body: String,
}

/// What became of one accepted email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub id: Uuid,
    pub status: EmailStatus,
}
