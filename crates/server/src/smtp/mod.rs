//! SMTP: the submission relay (Resend's SMTP credentials: user `resend`, password an API key) on `SMTP_PORT`
//! (STARTTLS) and `SMTPS_PORT` (implicit TLS), and inbound mail on `MX_PORT`. See docs/smtp.md.
//!
//! One module per job: [`command`] reads a command line, [`session`] is the conversation (state machine,
//! line and size limits, timeouts), [`tls`] the certificate, [`auth`] `AUTH PLAIN`/`LOGIN` against the API
//! keys, [`submission`] turns a transaction into the same accept as `POST /emails`, [`inbound`] hands a
//! received message to the receiving pipeline, and [`listener`] binds the ports.

pub mod auth;
pub mod command;
pub mod inbound;
pub mod listener;
pub mod reply;
pub mod session;
pub mod submission;
pub mod tls;

use std::time::Duration;

/// Largest message (`SIZE`), the API's own limit on an encoded message (Amazon SES's): 40 MiB.
pub const MAX_MESSAGE_BYTES: usize = crate::api::emails::limits::MESSAGE_BYTES;
/// Envelope recipients of one message: the API's limit on `to` (a message also counts `cc` and `bcc`, but
/// over SMTP every recipient is an envelope recipient, so the one limit covers them all). More are answered
/// `452 4.5.3`, which tells a client to send the rest in another transaction.
pub const MAX_RECIPIENTS: usize = crate::api::emails::limits::TO;
/// Longest command line with its CRLF (RFC 5321 §4.5.3.1.4).
pub const MAX_COMMAND_LINE: usize = 512;
/// Longest line of an `AUTH` exchange (RFC 4954 §4: 12288 octets).
pub const MAX_AUTH_LINE: usize = 12_288;
/// Longest line of a message. RFC 5321 allows 1000 octets; longer ones are common enough (HTML written on
/// one line) to be accepted up to this, after which the message is refused (`554 5.6.0`).
pub const MAX_DATA_LINE: usize = 64 * 1024;
/// How long a client may stay silent between commands (RFC 5321 §4.5.3.2.7: at least 5 minutes).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How long the whole message of one `DATA` may take to arrive, so a client dripping lines cannot hold a
/// connection forever (RFC 5321 gives 3 minutes per block and 10 for the terminating dot).
pub const DATA_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// How long the TLS handshake may take.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long accepting one message may take once it is read (parsing, checks, the accept transaction).
/// Over it, the client gets `451 4.3.0` and may retry.
pub const SUBMIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Commands refused in one session before it is closed (`421 4.7.0`).
pub const MAX_ERRORS: u32 = 20;
