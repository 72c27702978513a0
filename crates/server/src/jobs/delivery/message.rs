//! From a stored email to the bytes and envelope a transport needs.

use opensend_core::{EmailAddress, RecipientStatus};
use opensend_mail::{OutgoingAttachment, OutgoingMessage, build_message};
use opensend_store::entities::email_attachment;
use opensend_store::records::{EmailRecord, RecipientRecord};

pub struct Prepared {
    pub bytes: Vec<u8>,
    pub mail_from: EmailAddress,
    /// Recipients still to be delivered to (not suppressed, not already accepted).
    pub recipients: Vec<EmailAddress>,
}

/// Builds the message from the values stored at accept, which were validated then and are not parsed again,
/// with `html` as its HTML body (the stored one, or that with its links tracked). A message that cannot be
/// built is reported as a reason: the email fails rather than being retried forever.
pub fn prepare(
    email: &EmailRecord,
    html: Option<String>,
    attachments: &[email_attachment::Model],
    recipients: &[RecipientRecord],
) -> Result<Prepared, String> {
    let summary = &email.summary;
    let message = OutgoingMessage {
        from: summary.from.clone(),
        to: summary.to.clone(),
        cc: summary.cc.clone(),
        reply_to: summary.reply_to.clone(),
        subject: summary.subject.clone(),
        html,
        text: email.text.clone(),
        headers: email
            .headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect(),
        attachments: attachments
            .iter()
            .map(|a| OutgoingAttachment {
                filename: a.filename.clone(),
                content_type: a.content_type.clone(),
                content_id: a.content_id.clone(),
                content: a.content.clone(),
            })
            .collect(),
        message_id: summary.message_id.clone(),
        date: summary.created_at.timestamp(),
    };
    let bytes = build_message(&message).map_err(|e| e.to_string())?;
    let recipients: Vec<EmailAddress> = recipients
        .iter()
        .filter(|r| r.status == RecipientStatus::Pending)
        .map(|r| r.address.clone())
        .collect();
    if recipients.is_empty() {
        return Err("no recipient is left to deliver to".to_owned());
    }
    Ok(Prepared {
        bytes,
        mail_from: summary.from.address.clone(),
        recipients,
    })
}
