//! Domain types of OpenSend.
//!
//! Everything here parses untrusted input into types that can only hold valid values, so the layers above
//! never re-check them. This crate does no I/O.

pub mod api_key;
pub mod dns_record;
pub mod domain_name;
pub mod email;
pub mod email_address;
pub mod error;
pub mod id;
pub mod opaque_token;
pub mod permission;
pub mod random;
pub mod rate;
pub mod role;
pub mod secret_box;
pub mod signed_link;
pub mod status;
pub mod variables;
pub mod webhook;

pub use api_key::{ApiKeyToken, TokenHash};
pub use domain_name::{DnsLabel, DomainName};
pub use email::{Header, Tag};
pub use email_address::{EmailAddress, Mailbox};
pub use error::ErrorCode;
pub use id::new_id;
pub use opaque_token::OpaqueToken;
pub use permission::Permission;
pub use rate::Rate;
pub use role::Role;
pub use secret_box::SecretBox;
pub use status::{
    DeliveryStatus, DkimKeyState, DomainStatus, EmailStatus, RecipientKind, RecipientStatus,
    UnknownValue, WebhookStatus,
};
