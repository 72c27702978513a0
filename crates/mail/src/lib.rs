//! Mail for OpenSend: turning an accepted email into RFC 5322 bytes, DKIM keys and signing, the DNS records a
//! sending domain publishes and their verification, the transports that deliver, and the verified SNS messages
//! and SES events that report back. Knows nothing of HTTP routing or of the database; the server crate drives
//! it.

pub mod dkim;
pub mod dns;
mod html_text;
pub mod inbound;
pub mod mime;
pub mod records;
pub mod ses_events;
pub mod sns;
pub mod tracking;
pub mod transport;

pub use dkim::{DkimAlgorithm, GeneratedKey};
pub use dns::{DnsChecker, RecordCheck};
pub use html_text::html_to_text;
pub use mime::{MimeError, OutgoingAttachment, OutgoingMessage, build_message};
pub use records::{DomainStatus, ExpectedRecord, RecordSettings, RecordStatus};
pub use ses_events::{SesEvent, SesEventDetails, SesEventError, SesNotification, parse_ses_event};
pub use sns::{SnsMessage, SnsRefusal, SnsSettings, SnsVerifier, VerifiedSnsMessage};
