//! Mail: turning an accepted email into RFC 5322 bytes, signing them, and handing them to a transport.
//! Knows nothing of HTTP or of the database.

mod html_text;
pub mod mime;
pub mod transport;

pub use html_text::html_to_text;
pub use mime::{MimeError, OutgoingAttachment, OutgoingMessage, build_message};
