//! SES events: the JSON document in the `Message` of an SNS notification from SES.
//!
//! Two formats reach us. Event publishing (a configuration set's SNS destination) names the kind in
//! `eventType` (`Send`, `Delivery`, `Bounce`, `Complaint`, `DeliveryDelay`, `Reject`, `Rendering Failure`,
//! `Open`, `Click`, `Subscription`); identity notifications name it in `notificationType` (`Bounce`,
//! `Complaint`, `Delivery`, and the `AmazonSnsSubscriptionSucceeded` notice). Both carry a `mail` object whose
//! `messageId` is the id SES returned when the message was sent, which is how the caller finds the email,
//! and one sub-object with the kind's details (`bounce`, `delivery`, …).
//!
//! [`parse_ses_event`] reads both into [`SesEvent`]: the typed fields the server acts on, plus the raw
//! sub-object to forward (webhooks carry it as `data`). A kind we do not know yields
//! [`SesNotification::Unsupported`] rather than an error, so the caller can acknowledge and drop it.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// Largest event document read (the SNS `Message` limit).
pub const MAX_SES_EVENT_BYTES: usize = 256 * 1024;

/// What a `Message` from SES turned out to be.
#[derive(Clone, Debug, PartialEq)]
pub enum SesNotification {
    Event(Box<SesEvent>),
    /// A well-formed document of a kind we do not handle (e.g. `AmazonSnsSubscriptionSucceeded`). `kind` is
    /// the `eventType`/`notificationType` as sent.
    Unsupported {
        kind: String,
    },
}

/// Which SES feature produced the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SesEventFormat {
    /// Configuration-set event publishing (`eventType`).
    EventPublishing,
    /// Identity feedback notifications (`notificationType`).
    IdentityNotification,
}

/// One SES event about one sent message.
#[derive(Clone, Debug, PartialEq)]
pub struct SesEvent {
    pub format: SesEventFormat,
    pub mail: SesMail,
    pub details: SesEventDetails,
    /// The kind's sub-object as SES sent it (`bounce`, `delivery`, `failure`, …), `Null` if SES sent none.
    pub raw: Value,
}

impl SesEvent {
    /// The kind's name as SES writes it in event publishing (`"Rendering Failure"` included).
    pub fn kind(&self) -> &'static str {
        self.details.kind()
    }
}

/// The `mail` object: the message the event is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SesMail {
    /// SES's id of the message (`SendEmail`'s `MessageId`).
    pub message_id: String,
    /// When SES accepted the message.
    pub timestamp: DateTime<Utc>,
    /// The envelope sender (empty if SES left it out).
    pub source: String,
    /// The envelope recipients.
    pub destination: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SesEventDetails {
    Send,
    Delivery(Delivery),
    Bounce(Bounce),
    Complaint(Complaint),
    DeliveryDelay(DeliveryDelay),
    Reject(Reject),
    RenderingFailure(RenderingFailure),
    Open(Open),
    Click(Click),
    Subscription(Subscription),
}

impl SesEventDetails {
    pub fn kind(&self) -> &'static str {
        match self {
            SesEventDetails::Send => "Send",
            SesEventDetails::Delivery(_) => "Delivery",
            SesEventDetails::Bounce(_) => "Bounce",
            SesEventDetails::Complaint(_) => "Complaint",
            SesEventDetails::DeliveryDelay(_) => "DeliveryDelay",
            SesEventDetails::Reject(_) => "Reject",
            SesEventDetails::RenderingFailure(_) => "Rendering Failure",
            SesEventDetails::Open(_) => "Open",
            SesEventDetails::Click(_) => "Click",
            SesEventDetails::Subscription(_) => "Subscription",
        }
    }
}

/// `bounceType`. Values SES may add later are kept as [`BounceType::Other`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BounceType {
    /// Hard bounce: stop sending to these recipients.
    Permanent,
    /// Soft bounce: the address may work later.
    Transient,
    Undetermined,
    Other(String),
}

impl<'de> Deserialize<'de> for BounceType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "Permanent" => BounceType::Permanent,
            "Transient" => BounceType::Transient,
            "Undetermined" => BounceType::Undetermined,
            _ => BounceType::Other(s),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bounce {
    pub bounce_type: BounceType,
    /// `bounceSubType` (`General`, `NoEmail`, `Suppressed`, `MailboxFull`, …).
    #[serde(rename = "bounceSubType", default)]
    pub sub_type: Option<String>,
    #[serde(default)]
    pub bounced_recipients: Vec<BouncedRecipient>,
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BouncedRecipient {
    pub email_address: String,
    pub action: Option<String>,
    pub status: Option<String>,
    pub diagnostic_code: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Complaint {
    #[serde(default)]
    pub complained_recipients: Vec<ComplainedRecipient>,
    /// From the recipient's feedback report when there was one (`abuse`, `fraud`, …).
    pub complaint_feedback_type: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComplainedRecipient {
    pub email_address: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    #[serde(default)]
    pub recipients: Vec<String>,
    #[serde(rename = "smtpResponse")]
    pub smtp_response: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDelay {
    #[serde(default)]
    pub delayed_recipients: Vec<DelayedRecipient>,
    /// `InternalFailure`, `General`, `MailboxFull`, `SpamDetected`, `RecipientServerError`, …
    pub delay_type: Option<String>,
    /// When SES stops trying.
    pub expiration_time: Option<DateTime<Utc>>,
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DelayedRecipient {
    pub email_address: String,
    pub status: Option<String>,
    pub diagnostic_code: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reject {
    /// `Bad content` when SES found a virus.
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderingFailure {
    pub error_message: Option<String>,
    pub template_name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Open {
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Click {
    pub link: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub contact_list: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum SesEventError {
    #[error("the SES event is over {limit} bytes")]
    TooLarge { limit: usize },
    #[error("not an SES event: {0}")]
    Malformed(String),
    #[error("the SES event has neither eventType nor notificationType")]
    NoKind,
    #[error("the SES {kind} event has no usable mail object: {reason}")]
    BadMail { kind: String, reason: String },
    #[error("the SES {kind} event's {field} object is missing or malformed: {reason}")]
    BadDetails {
        kind: String,
        field: &'static str,
        reason: String,
    },
}

/// The document's top level. The sub-objects are kept as `Value`s (only the event's own is normally
/// present); of `mail` only the fields we keep are read, the rest (notably `headers`) is skipped unbuilt.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    event_type: Option<String>,
    notification_type: Option<String>,
    mail: Option<WireMail>,
    bounce: Option<Value>,
    complaint: Option<Value>,
    delivery: Option<Value>,
    send: Option<Value>,
    reject: Option<Value>,
    failure: Option<Value>,
    delivery_delay: Option<Value>,
    open: Option<Value>,
    click: Option<Value>,
    subscription: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMail {
    message_id: Option<String>,
    timestamp: Option<String>,
    source: Option<String>,
    destination: Option<Vec<String>>,
}

impl WireMail {
    fn into_mail(self) -> Result<SesMail, String> {
        let message_id = self
            .message_id
            .filter(|id| !id.is_empty())
            .ok_or("no messageId")?;
        let timestamp = self.timestamp.ok_or("no timestamp")?;
        let timestamp = DateTime::parse_from_rfc3339(&timestamp)
            .map_err(|e| format!("timestamp: {e}"))?
            .with_timezone(&Utc);
        Ok(SesMail {
            message_id,
            timestamp,
            source: self.source.unwrap_or_default(),
            destination: self.destination.unwrap_or_default(),
        })
    }
}

/// Parses the `Message` of an SES notification.
pub fn parse_ses_event(message: &str) -> Result<SesNotification, SesEventError> {
    if message.len() > MAX_SES_EVENT_BYTES {
        return Err(SesEventError::TooLarge {
            limit: MAX_SES_EVENT_BYTES,
        });
    }
    let mut wire: Wire =
        serde_json::from_str(message).map_err(|e| SesEventError::Malformed(e.to_string()))?;
    let (format, kind) = match (wire.event_type.take(), wire.notification_type.take()) {
        (Some(kind), _) => (SesEventFormat::EventPublishing, kind),
        (None, Some(kind)) => (SesEventFormat::IdentityNotification, kind),
        (None, None) => return Err(SesEventError::NoKind),
    };

    let (field, raw) = match (format, kind.as_str()) {
        (_, "Bounce") => ("bounce", wire.bounce.take()),
        (_, "Complaint") => ("complaint", wire.complaint.take()),
        (_, "Delivery") => ("delivery", wire.delivery.take()),
        (SesEventFormat::EventPublishing, "Send") => ("send", wire.send.take()),
        (SesEventFormat::EventPublishing, "Reject") => ("reject", wire.reject.take()),
        (SesEventFormat::EventPublishing, "Rendering Failure") => ("failure", wire.failure.take()),
        (SesEventFormat::EventPublishing, "DeliveryDelay") => {
            ("deliveryDelay", wire.delivery_delay.take())
        }
        (SesEventFormat::EventPublishing, "Open") => ("open", wire.open.take()),
        (SesEventFormat::EventPublishing, "Click") => ("click", wire.click.take()),
        (SesEventFormat::EventPublishing, "Subscription") => {
            ("subscription", wire.subscription.take())
        }
        _ => return Ok(SesNotification::Unsupported { kind }),
    };

    let mail = wire
        .mail
        .ok_or_else(|| "missing".to_owned())
        .and_then(WireMail::into_mail)
        .map_err(|reason| SesEventError::BadMail {
            kind: kind.clone(),
            reason,
        })?;
    let raw = raw.unwrap_or(Value::Null);
    let bad = |reason: String| SesEventError::BadDetails {
        kind: kind.clone(),
        field,
        reason,
    };
    let typed = |raw: &Value| -> Result<SesEventDetails, serde_json::Error> {
        Ok(match field {
            "bounce" => SesEventDetails::Bounce(Bounce::deserialize(raw)?),
            "complaint" => SesEventDetails::Complaint(Complaint::deserialize(raw)?),
            "delivery" => SesEventDetails::Delivery(Delivery::deserialize(raw)?),
            "reject" => SesEventDetails::Reject(Reject::deserialize(raw)?),
            "failure" => SesEventDetails::RenderingFailure(RenderingFailure::deserialize(raw)?),
            "deliveryDelay" => SesEventDetails::DeliveryDelay(DeliveryDelay::deserialize(raw)?),
            "open" => SesEventDetails::Open(Open::deserialize(raw)?),
            "click" => SesEventDetails::Click(Click::deserialize(raw)?),
            "subscription" => SesEventDetails::Subscription(Subscription::deserialize(raw)?),
            _ => SesEventDetails::Send,
        })
    };
    // `send` is an empty object; every other kind needs its sub-object.
    let details = if field == "send" {
        SesEventDetails::Send
    } else if raw.is_object() {
        typed(&raw).map_err(|e| bad(e.to_string()))?
    } else {
        return Err(bad("missing".to_owned()));
    };
    Ok(SesNotification::Event(Box::new(SesEvent {
        format,
        mail,
        details,
        raw,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_kinds_are_unsupported() {
        let parsed = parse_ses_event(
            r#"{"notificationType":"AmazonSnsSubscriptionSucceeded","message":"x"}"#,
        );
        assert_eq!(
            parsed,
            Ok(SesNotification::Unsupported {
                kind: "AmazonSnsSubscriptionSucceeded".to_owned()
            })
        );
        // Kinds only event publishing has are not accepted as identity notifications.
        let parsed = parse_ses_event(r#"{"notificationType":"Open","mail":{}}"#);
        assert!(matches!(parsed, Ok(SesNotification::Unsupported { .. })));
    }

    #[test]
    fn malformed_documents_are_errors() {
        type Check = fn(&SesEventError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, SesEventError::Malformed(_))),
            ("[1]", |e| matches!(e, SesEventError::Malformed(_))),
            ("{}", |e| matches!(e, SesEventError::NoKind)),
            (r#"{"eventType":5}"#, |e| {
                matches!(e, SesEventError::Malformed(_))
            }),
            (r#"{"eventType":"Bounce"}"#, |e| {
                matches!(e, SesEventError::BadMail { .. })
            }),
            (
                r#"{"eventType":"Bounce","mail":{"messageId":"m","timestamp":"yesterday"}}"#,
                |e| matches!(e, SesEventError::BadMail { .. }),
            ),
            (
                r#"{"eventType":"Bounce","mail":{"messageId":"m","timestamp":"2026-05-29T10:00:00Z"}}"#,
                |e| {
                    matches!(
                        e,
                        SesEventError::BadDetails {
                            field: "bounce",
                            ..
                        }
                    )
                },
            ),
            (
                r#"{"eventType":"Bounce","bounce":{"bounceType":7},"mail":{"messageId":"m","timestamp":"2026-05-29T10:00:00Z"}}"#,
                |e| matches!(e, SesEventError::BadDetails { .. }),
            ),
        ];
        for (doc, check) in cases {
            let e = parse_ses_event(doc).expect_err(doc);
            assert!(check(&e), "{doc}: {e:?}");
        }
        let huge = format!("{{\"eventType\":\"{}\"}}", "x".repeat(MAX_SES_EVENT_BYTES));
        assert!(matches!(
            parse_ses_event(&huge),
            Err(SesEventError::TooLarge { .. })
        ));
        let deep = "[".repeat(10_000);
        assert!(matches!(
            parse_ses_event(&deep),
            Err(SesEventError::Malformed(_))
        ));
    }

    #[test]
    fn unknown_bounce_types_are_kept() {
        let doc = r#"{"eventType":"Bounce","bounce":{"bounceType":"Novel","bouncedRecipients":[]},
            "mail":{"messageId":"m","timestamp":"2026-05-29T10:00:00Z"}}"#;
        let Ok(SesNotification::Event(event)) = parse_ses_event(doc) else {
            panic!("parses")
        };
        let SesEventDetails::Bounce(bounce) = &event.details else {
            panic!("a bounce")
        };
        assert_eq!(bounce.bounce_type, BounceType::Other("Novel".to_owned()));
    }
}
