//! Transports deliver a finished message (MIME bytes, already DKIM-signed) to its envelope recipients.
//!
//! Which one runs is the operator's choice (`DELIVERY`): `capture` keeps mail on the machine, `smtp` hands it
//! to a smarthost, `ses` to Amazon SES. Every transport reports per recipient where it can, and classifies
//! failures as temporary (retry later) or permanent (give up now), which is all the delivery worker needs.

mod capture;
pub mod ses;
pub mod smtp;

pub use capture::CaptureTransport;
pub use ses::{SesConfigError, SesSettings, SesTransport};
pub use smtp::{SmtpConfigError, SmtpCredentials, SmtpSettings, SmtpTls, SmtpTransport};

use opensend_core::EmailAddress;

/// SMTP envelope: who bounces go to, and who receives (To, Cc and Bcc alike; Bcc never appears in headers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub mail_from: EmailAddress,
    pub recipients: Vec<EmailAddress>,
}

/// What happened to one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientOutcome {
    pub address: EmailAddress,
    pub accepted: bool,
    /// The server's reply for this recipient (e.g. `250 2.1.5 Ok`), or a summary when the transport has no
    /// per-recipient replies. SMTP and SES start it with a three-digit reply code (SES failures are given
    /// `451` when worth retrying and `554` when not), so [`RecipientOutcome::is_temporary_failure`] works for
    /// both.
    pub response: String,
    /// The provider's id for the message as delivered to this recipient, which is what its bounces and
    /// complaints name: the `MessageId` of the SES call that carried this recipient (a send to more than
    /// 50 recipients is several calls, each with its own id), or the smarthost's queue id for every
    /// recipient it accepted (when its reply to `DATA` gives one). `None` for a refused recipient, when
    /// the provider gave no id, and for `capture`, which hands the message to no provider.
    pub provider_message_id: Option<String>,
}

impl RecipientOutcome {
    /// The reply code the response starts with, if it starts with one.
    pub fn reply_code(&self) -> Option<u16> {
        let code = self.response.get(..3)?;
        let rest = &self.response[3..];
        if code.bytes().all(|b| b.is_ascii_digit()) && (rest.is_empty() || rest.starts_with(' ')) {
            code.parse().ok()
        } else {
            None
        }
    }

    /// Not accepted, but worth trying again for this recipient (a 4xx reply, e.g. a full mailbox or
    /// greylisting). A refused recipient without a 4xx code counts as permanent.
    pub fn is_temporary_failure(&self) -> bool {
        !self.accepted && matches!(self.reply_code(), Some(400..=499))
    }
}

/// A message the transport took responsibility for (at least one recipient accepted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendOutcome {
    /// The provider's id for the message (SES `MessageId`, the smarthost's queue id when it gives one).
    /// With several SES calls this is the first call's id; each recipient's own is in
    /// [`RecipientOutcome::provider_message_id`].
    pub provider_message_id: Option<String>,
    pub recipients: Vec<RecipientOutcome>,
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransportError {
    /// Try again later: 4xx replies, timeouts, refused connections, throttling.
    #[error("temporary delivery failure: {0}")]
    Temporary(String),
    /// Do not try again: 5xx replies, every recipient refused, a message the provider will never accept.
    #[error("permanent delivery failure: {0}")]
    Permanent(String),
}

impl TransportError {
    pub fn is_temporary(&self) -> bool {
        matches!(self, TransportError::Temporary(_))
    }
}

#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// Short name for logs and the email's record (`capture`, `smtp`, `ses`).
    fn name(&self) -> &'static str;

    /// Whether what this transport "sends" stays on this machine (capture). Only such a transport may carry
    /// mail from a domain that is not verified, or unsigned mail: everything that leaves is DKIM-signed by a
    /// verified domain.
    fn keeps_mail_local(&self) -> bool {
        false
    }

    /// Delivers `message` to `envelope.recipients`.
    async fn send(
        &self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<SendOutcome, TransportError>;
}
