//! From a stored email to the bytes and envelope a transport needs.

use opensend_core::{EmailAddress, Mailbox};
use opensend_mail::{OutgoingAttachment, OutgoingMessage, build_message};
use opensend_store::entities::{email, email_attachment, email_recipient};
use opensend_store::repos::emails::{read_list, read_pairs, recipient_status};

pub struct Prepared {
    pub bytes: Vec<u8>,
    pub mail_from: EmailAddress,
    /// Recipients still to be delivered to (not suppressed, not already accepted).
    pub recipients: Vec<EmailAddress>,
}

/// Everything stored was validated when the email was accepted, so a failure here means damaged data; it
/// is reported as a reason and the email fails rather than being retried forever.
pub fn prepare(
    email: &email::Model,
    attachments: &[email_attachment::Model],
    recipients: &[email_recipient::Model],
) -> Result<Prepared, String> {
    let mailbox = |raw: &str| Mailbox::parse(raw).map_err(|e| format!("stored address: {e}"));
    let list = |column: &str| -> Result<Vec<Mailbox>, String> {
        read_list(column).iter().map(|a| mailbox(a)).collect()
    };
    let from = mailbox(&email.from_address)?;
    let message = OutgoingMessage {
        from: from.clone(),
        to: list(&email.to_addresses)?,
        cc: list(&email.cc_addresses)?,
        reply_to: list(&email.reply_to)?,
        subject: email.subject.clone(),
        html: email.html.clone(),
        text: email.text_body.clone(),
        headers: read_pairs(&email.headers),
        attachments: attachments
            .iter()
            .map(|a| OutgoingAttachment {
                filename: a.filename.clone(),
                content_type: a.content_type.clone(),
                content_id: a.content_id.clone(),
                content: a.content.clone(),
            })
            .collect(),
        message_id: email.message_id.clone(),
        date: email.created_at.timestamp(),
    };
    let bytes = build_message(&message).map_err(|e| e.to_string())?;
    let recipients = recipients
        .iter()
        .filter(|r| r.status == recipient_status::PENDING)
        .map(|r| EmailAddress::parse(&r.address).map_err(|e| format!("stored recipient: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if recipients.is_empty() {
        return Err("no recipient is left to deliver to".to_owned());
    }
    Ok(Prepared {
        bytes,
        mail_from: from.address,
        recipients,
    })
}
