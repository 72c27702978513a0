//! What the attachment routes of sent emails (`/emails/{id}/attachments`) and received emails
//! (`/emails/receiving/{id}/attachments`) answer alike: Resend's attachment metadata
//! (`ListAttachmentsResponse`'s items, `RetrievedAttachment`), and one attachment with its content.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use opensend_store::records::{AttachmentSummary, SentAttachmentSummary};
use serde::Serialize;
use uuid::Uuid;

/// Where an attachment's content can be fetched without an API key, and until when.
#[derive(Debug, Serialize)]
pub struct Download {
    pub download_url: String,
    pub expires_at: String,
}

/// One attachment's metadata.
#[derive(Debug, Serialize)]
pub struct AttachmentView {
    pub id: Uuid,
    pub filename: Option<String>,
    pub content_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
    pub content_disposition: &'static str,
    pub size: i64,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub download: Option<Download>,
}

impl From<&AttachmentSummary> for AttachmentView {
    fn from(a: &AttachmentSummary) -> Self {
        Self {
            id: a.id,
            filename: a.filename.clone(),
            content_type: a.content_type.clone(),
            content_id: a.content_id.clone(),
            content_disposition: a.disposition(),
            size: a.size,
            download: None,
        }
    }
}

impl From<&SentAttachmentSummary> for AttachmentView {
    /// A sent attachment with a `content_id` was attached for `cid:` references from the HTML: inline.
    fn from(a: &SentAttachmentSummary) -> Self {
        Self {
            id: a.id,
            filename: Some(a.filename.clone()),
            content_type: a.content_type.clone(),
            content_id: a.content_id.clone(),
            content_disposition: if a.content_id.is_some() {
                "inline"
            } else {
                "attachment"
            },
            size: a.size,
            download: None,
        }
    }
}

/// One attachment with its content (`GET …/attachments/{attachment_id}`): `{"object": "attachment", …}`
/// and, as an extension, `content` in base64.
#[derive(Debug, Serialize)]
pub struct RetrievedAttachment {
    object: &'static str,
    #[serde(flatten)]
    attachment: AttachmentView,
    /// Extension: the content, base64-encoded.
    content: String,
}

impl RetrievedAttachment {
    pub fn new(attachment: AttachmentView, content: &[u8]) -> Self {
        Self {
            object: "attachment",
            attachment,
            content: STANDARD.encode(content),
        }
    }
}
