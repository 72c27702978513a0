//! The closed vocabularies of OpenSend's records: what became of an email and of each of its recipients, a
//! webhook endpoint's and a delivery's state, a DKIM key's state and a domain's status.
//!
//! Each value has one fixed name, the same in the database, in API responses and in webhook payloads
//! (`as_str`, `Display`, `FromStr` and serde all use it), so a value read back from storage or from a
//! request is one of the enum's variants or an [`UnknownValue`] error, never a string to compare.

/// A name that is not one of a vocabulary's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a known {what}")]
pub struct UnknownValue {
    /// The vocabulary, in words (`email status`).
    pub what: &'static str,
    /// The name that was given, cut to 64 characters.
    pub value: String,
}

impl UnknownValue {
    pub fn new(what: &'static str, value: &str) -> Self {
        Self {
            what,
            value: value.chars().take(64).collect(),
        }
    }
}

/// Declares an enum whose variants have fixed names: `ALL`, `as_str`, `Display`, `FromStr` (refusing any
/// other name with [`UnknownValue`]) and serde as those names.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$variant_meta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value's name, as stored and shown.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::status::UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    _ => Err($crate::status::UnknownValue::new($what, s)),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                name.parse().map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    };
}

pub(crate) use vocabulary;

vocabulary! {
    /// What became of an email (`emails.status`), in Resend's `last_event` vocabulary.
    pub enum EmailStatus ("email status") {
        /// Accepted, waiting for a delivery worker.
        Queued = "queued",
        /// Accepted with a `scheduled_at` in the future.
        Scheduled = "scheduled",
        /// At least one recipient's server (or the provider) accepted it.
        Sent = "sent",
        /// It could not be sent, for good.
        Failed = "failed",
        /// Canceled before it was sent.
        Canceled = "canceled",
        /// Every recipient is on the organization's suppression list: nothing was sent.
        Suppressed = "suppressed",
        // Reported by the provider after sending.
        DeliveryDelayed = "delivery_delayed",
        Delivered = "delivered",
        Opened = "opened",
        Clicked = "clicked",
        Bounced = "bounced",
        Complained = "complained",
    }
}

impl EmailStatus {
    /// The statuses of an email not sent yet, which may still be rescheduled or canceled.
    pub const WAITING: [EmailStatus; 2] = [EmailStatus::Queued, EmailStatus::Scheduled];

    /// Whether the email is still waiting to be sent (see [`EmailStatus::WAITING`]).
    pub fn is_waiting(self) -> bool {
        Self::WAITING.contains(&self)
    }
}

vocabulary! {
    /// What became of one envelope recipient of an email (`email_recipients.status`).
    pub enum RecipientStatus ("recipient status") {
        /// Not tried yet.
        Pending = "pending",
        /// The receiving server (or the provider) accepted it.
        Accepted = "accepted",
        /// The receiving server refused it.
        Rejected = "rejected",
        /// On the organization's suppression list: never sent to.
        Suppressed = "suppressed",
        // Reported by the provider after sending.
        DeliveryDelayed = "delivery_delayed",
        Delivered = "delivered",
        Bounced = "bounced",
        Complained = "complained",
        Failed = "failed",
    }
}

vocabulary! {
    /// Which header an envelope recipient was named in.
    pub enum RecipientKind ("recipient kind") {
        To = "to",
        Cc = "cc",
        Bcc = "bcc",
    }
}

vocabulary! {
    /// Whether a webhook endpoint receives deliveries (`webhooks.status`).
    pub enum WebhookStatus ("webhook status") {
        Enabled = "enabled",
        /// Through the API, or by the platform after failing for too long (`disabled_reason` says which).
        Disabled = "disabled",
    }
}

vocabulary! {
    /// Where one webhook delivery stands (`webhook_deliveries.status`).
    pub enum DeliveryStatus ("webhook delivery status") {
        /// Waiting for its next attempt, or in flight.
        Pending = "pending",
        Succeeded = "succeeded",
        /// Out of attempts, or its endpoint was disabled.
        Failed = "failed",
    }
}

vocabulary! {
    /// The state of a domain's DKIM key (`domain_dkim_keys.state`).
    pub enum DkimKeyState ("DKIM key state") {
        /// Signs outgoing mail.
        Active = "active",
        /// Published for a rotation; becomes active once its record verifies.
        Next = "next",
        /// Replaced by a rotation; kept, no longer published or used.
        Retired = "retired",
    }
}

vocabulary! {
    /// A sending domain's status (`domains.status`), in Resend's vocabulary.
    pub enum DomainStatus ("domain status") {
        /// Never checked.
        NotStarted = "not_started",
        /// A required record is missing.
        Pending = "pending",
        Verified = "verified",
        /// A required record has another value, or disappeared after the domain was verified.
        Failed = "failed",
        /// The last lookup itself failed (timeout, SERVFAIL).
        TemporaryFailure = "temporary_failure",
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;
    use std::str::FromStr;

    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::*;

    /// Every variant's name parses back to it, serialises as itself, and the names are distinct; other names
    /// (other case included) are refused.
    fn round_trips<T>(all: &[T], names: &[&str])
    where
        T: Copy + Debug + PartialEq + std::fmt::Display + FromStr<Err = UnknownValue>,
        T: Serialize + DeserializeOwned,
    {
        let shown: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(shown, names, "names in declaration order");
        for (value, name) in all.iter().zip(names) {
            assert_eq!(name.parse::<T>(), Ok(*value));
            let json = serde_json::to_string(value).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), *value);
            assert!(name.to_uppercase().parse::<T>().is_err());
        }
        let error = "no-such-value".parse::<T>().unwrap_err();
        assert_eq!(error.value, "no-such-value");
        assert!(serde_json::from_str::<T>("\"no-such-value\"").is_err());
    }

    #[test]
    fn every_vocabulary_round_trips_with_the_stored_names() {
        round_trips(
            EmailStatus::ALL,
            &[
                "queued",
                "scheduled",
                "sent",
                "failed",
                "canceled",
                "suppressed",
                "delivery_delayed",
                "delivered",
                "opened",
                "clicked",
                "bounced",
                "complained",
            ],
        );
        round_trips(
            RecipientStatus::ALL,
            &[
                "pending",
                "accepted",
                "rejected",
                "suppressed",
                "delivery_delayed",
                "delivered",
                "bounced",
                "complained",
                "failed",
            ],
        );
        round_trips(RecipientKind::ALL, &["to", "cc", "bcc"]);
        round_trips(WebhookStatus::ALL, &["enabled", "disabled"]);
        round_trips(DeliveryStatus::ALL, &["pending", "succeeded", "failed"]);
        round_trips(DkimKeyState::ALL, &["active", "next", "retired"]);
        round_trips(
            DomainStatus::ALL,
            &[
                "not_started",
                "pending",
                "verified",
                "failed",
                "temporary_failure",
            ],
        );
    }

    #[test]
    fn only_queued_and_scheduled_emails_are_waiting() {
        let waiting: Vec<EmailStatus> = EmailStatus::ALL
            .iter()
            .copied()
            .filter(|s| s.is_waiting())
            .collect();
        assert_eq!(waiting, [EmailStatus::Queued, EmailStatus::Scheduled]);
    }

    #[test]
    fn unknown_values_say_what_they_are_not() {
        let error = "sending".parse::<EmailStatus>().unwrap_err();
        assert_eq!(error.to_string(), "`sending` is not a known email status");
        let long = "x".repeat(500);
        assert_eq!(
            long.parse::<DomainStatus>().unwrap_err().value.len(),
            64,
            "cut for messages"
        );
    }
}
