//! Webhooks: the event types an endpoint can subscribe to, and the Standard Webhooks (Svix) signing scheme.
//!
//! A signing secret is 32 random bytes, shown to the user once as `whsec_` + base64. A delivery is signed
//! over `{msg_id}.{timestamp}.{body}` with HMAC-SHA256 keyed by the *decoded* bytes (not the `whsec_…`
//! text), which is what the official verifiers (`svix`, `standardwebhooks`, Resend's `webhooks.verify`)
//! expect. The signature header carries one `v1,<base64>` per secret in use, space-separated, so a receiver
//! holding either the old or the new secret accepts deliveries during a rotation.
//!
//! What a message says is shaped in [`payload`].

pub mod payload;

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox as Secret, SecretString};
use sha2::Sha256;

use crate::random::os_random;

/// What a webhook message reports. The names are Resend's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    EmailSent,
    EmailDelivered,
    EmailDeliveryDelayed,
    EmailBounced,
    EmailComplained,
    EmailOpened,
    EmailClicked,
    EmailFailed,
    EmailScheduled,
    EmailSuppressed,
    EmailReceived,
    DomainCreated,
    DomainUpdated,
    DomainDeleted,
    ContactCreated,
    ContactUpdated,
    ContactDeleted,
}

impl EventType {
    pub const ALL: [EventType; 17] = [
        EventType::EmailSent,
        EventType::EmailDelivered,
        EventType::EmailDeliveryDelayed,
        EventType::EmailBounced,
        EventType::EmailComplained,
        EventType::EmailOpened,
        EventType::EmailClicked,
        EventType::EmailFailed,
        EventType::EmailScheduled,
        EventType::EmailSuppressed,
        EventType::EmailReceived,
        EventType::DomainCreated,
        EventType::DomainUpdated,
        EventType::DomainDeleted,
        EventType::ContactCreated,
        EventType::ContactUpdated,
        EventType::ContactDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::EmailSent => "email.sent",
            EventType::EmailDelivered => "email.delivered",
            EventType::EmailDeliveryDelayed => "email.delivery_delayed",
            EventType::EmailBounced => "email.bounced",
            EventType::EmailComplained => "email.complained",
            EventType::EmailOpened => "email.opened",
            EventType::EmailClicked => "email.clicked",
            EventType::EmailFailed => "email.failed",
            EventType::EmailScheduled => "email.scheduled",
            EventType::EmailSuppressed => "email.suppressed",
            EventType::EmailReceived => "email.received",
            EventType::DomainCreated => "domain.created",
            EventType::DomainUpdated => "domain.updated",
            EventType::DomainDeleted => "domain.deleted",
            EventType::ContactCreated => "contact.created",
            EventType::ContactUpdated => "contact.updated",
            EventType::ContactDeleted => "contact.deleted",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an event type")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.chars().take(64).collect()))
    }
}

impl serde::Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Length of a generated signing secret, in bytes (Standard Webhooks allows 24 to 64).
pub const SECRET_LEN: usize = 32;
const SECRET_PREFIX: &str = "whsec_";

/// A webhook signing secret. Never printed: `Debug` shows nothing of it.
pub struct WebhookSecret(Secret<[u8]>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSecretError {
    #[error("the operating system's random number generator failed")]
    Random,
    #[error("a signing secret is 24 to 64 bytes")]
    Length,
}

impl WebhookSecret {
    pub fn generate() -> Result<Self, WebhookSecretError> {
        let bytes = os_random::<SECRET_LEN>().map_err(|_| WebhookSecretError::Random)?;
        Ok(Self(Secret::from(Box::<[u8]>::from(bytes.as_slice()))))
    }

    /// From the raw key bytes (as unsealed from storage).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WebhookSecretError> {
        if !(24..=64).contains(&bytes.len()) {
            return Err(WebhookSecretError::Length);
        }
        Ok(Self(Secret::from(Box::<[u8]>::from(bytes))))
    }

    /// The raw key bytes, for sealing.
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// The form users copy into their receiver: `whsec_` + base64 of the key.
    pub fn to_whsec(&self) -> SecretString {
        SecretString::from(format!(
            "{SECRET_PREFIX}{}",
            STANDARD.encode(self.0.expose_secret())
        ))
    }

    /// `v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC accepts keys of any length, so this does not fail; were it to, an empty signature (which no
        // verifier accepts) is safer than a panic in the dispatcher.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.expose_secret()) else {
            return String::new();
        };
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        let mut signature = String::with_capacity(3 + 44);
        signature.push_str("v1,");
        STANDARD.encode_string(mac.finalize().into_bytes(), &mut signature);
        signature
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// The signature header value for a delivery: one signature per secret, space-separated.
pub fn signature_header(
    secrets: &[&WebhookSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `webhook-id` of a message: `msg_` and the message's id in hex (no `.`, as the scheme requires).
pub fn message_id(id: uuid::Uuid) -> String {
    format!("msg_{}", id.simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_whsec(text: &str) -> WebhookSecret {
        let bytes = STANDARD
            .decode(text.strip_prefix(SECRET_PREFIX).unwrap_or(text))
            .unwrap_or_default();
        // The published test vector's key is 24 bytes.
        WebhookSecret::from_bytes(&bytes).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn signs_the_published_standard_webhooks_vector() {
        // From svix-webhooks' server tests (and the Standard Webhooks spec's example).
        let secret = from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let signature = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_rotation_header_carries_both_signatures() {
        let old = from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let new = WebhookSecret::generate().unwrap_or_else(|e| panic!("{e}"));
        let header = signature_header(&[&new, &old], "msg_1", 1, b"{}");
        let parts: Vec<_> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], new.sign("msg_1", 1, b"{}"));
        assert_eq!(parts[1], old.sign("msg_1", 1, b"{}"));
        assert_ne!(parts[0], parts[1]);
    }

    #[test]
    fn generated_secrets_are_whsec_base64_of_32_bytes() {
        let secret = WebhookSecret::generate().unwrap_or_else(|e| panic!("{e}"));
        let text = secret.to_whsec();
        let encoded = text
            .expose_secret()
            .strip_prefix("whsec_")
            .unwrap_or_default();
        assert_eq!(STANDARD.decode(encoded).map(|b| b.len()), Ok(32));
        assert!(!format!("{secret:?}").contains(encoded));
    }

    #[test]
    fn event_types_round_trip_and_unknown_ones_are_refused() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
        }
        assert!("email.queued".parse::<EventType>().is_err());
        assert!("EMAIL.SENT".parse::<EventType>().is_err());
        for t in EventType::ALL {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), t);
        }
        assert!(serde_json::from_str::<EventType>("\"email.queued\"").is_err());
    }

    #[test]
    fn message_ids_have_no_dots() {
        let id = message_id(crate::new_id());
        assert!(id.starts_with("msg_") && !id.contains('.'));
    }
}
