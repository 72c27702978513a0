//! The SNS HTTP message as it arrives: parsing the untrusted body and building the string AWS signed.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::SnsRefusal;

/// Largest body accepted. SNS caps the `Message` at 256 KiB; an SES event is a few kilobytes.
pub const MAX_SNS_BODY_BYTES: usize = 256 * 1024;

/// The three kinds of message SNS posts to an HTTP(S) subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SnsMessageType {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

impl SnsMessageType {
    /// The name as SNS writes it in `Type` and in the `x-amz-sns-message-type` header.
    pub fn as_str(self) -> &'static str {
        match self {
            SnsMessageType::Notification => "Notification",
            SnsMessageType::SubscriptionConfirmation => "SubscriptionConfirmation",
            SnsMessageType::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "Notification" => Some(SnsMessageType::Notification),
            "SubscriptionConfirmation" => Some(SnsMessageType::SubscriptionConfirmation),
            "UnsubscribeConfirmation" => Some(SnsMessageType::UnsubscribeConfirmation),
            _ => None,
        }
    }
}

/// `SignatureVersion`: which digest goes under the RSA PKCS#1 v1.5 signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureVersion {
    /// `"1"`: SHA1withRSA.
    V1Sha1,
    /// `"2"`: SHA256withRSA.
    V2Sha256,
}

impl SignatureVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureVersion::V1Sha1 => "1",
            SignatureVersion::V2Sha256 => "2",
        }
    }
}

/// An SNS message, parsed but **not verified**: nothing in it can be trusted until
/// [`SnsVerifier::verify`](super::SnsVerifier::verify) has checked it and returned a
/// [`VerifiedSnsMessage`](super::VerifiedSnsMessage).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnsMessage {
    pub message_type: SnsMessageType,
    pub message_id: String,
    pub topic_arn: String,
    /// Only notifications published with a subject have one.
    pub subject: Option<String>,
    /// The payload: for SES events, a JSON document (see [`crate::ses_events`]).
    pub message: String,
    /// `Timestamp` exactly as sent (it is part of the signed text, so it is never reformatted).
    pub timestamp: String,
    /// `Timestamp` read as RFC 3339: when SNS published the message.
    pub published_at: DateTime<Utc>,
    pub signature_version: SignatureVersion,
    /// `Signature`, base64 as sent.
    pub signature: String,
    pub signing_cert_url: String,
    /// Confirmations only: the URL that confirms (or, after an unsubscribe, re-confirms) the subscription.
    pub subscribe_url: Option<String>,
    /// Confirmations only.
    pub token: Option<String>,
    /// Notifications only.
    pub unsubscribe_url: Option<String>,
}

/// The body's fields, as strings; `null` counts as absent. Unknown fields are ignored, a field given twice
/// is an error (two parsers could otherwise read two different messages from one body).
#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "Type")]
    message_type: String,
    #[serde(rename = "MessageId")]
    message_id: Option<String>,
    #[serde(rename = "TopicArn")]
    topic_arn: Option<String>,
    #[serde(rename = "Subject")]
    subject: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
    #[serde(rename = "Timestamp")]
    timestamp: Option<String>,
    #[serde(rename = "SignatureVersion")]
    signature_version: Option<String>,
    #[serde(rename = "Signature")]
    signature: Option<String>,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: Option<String>,
    #[serde(rename = "SubscribeURL")]
    subscribe_url: Option<String>,
    #[serde(rename = "Token")]
    token: Option<String>,
    #[serde(rename = "UnsubscribeURL")]
    unsubscribe_url: Option<String>,
}

fn required(value: Option<String>, name: &'static str) -> Result<String, SnsRefusal> {
    value.ok_or(SnsRefusal::MissingField(name))
}

impl SnsMessage {
    /// Parses an SNS HTTP POST body. Checks its shape only (size, JSON, type, required fields, timestamp and
    /// signature version syntax), not its authenticity.
    pub fn parse(body: &[u8]) -> Result<SnsMessage, SnsRefusal> {
        if body.len() > MAX_SNS_BODY_BYTES {
            return Err(SnsRefusal::BodyTooLarge {
                limit: MAX_SNS_BODY_BYTES,
            });
        }
        let wire: Wire =
            serde_json::from_slice(body).map_err(|e| SnsRefusal::Malformed(e.to_string()))?;
        let message_type = SnsMessageType::parse(&wire.message_type)
            .ok_or_else(|| SnsRefusal::UnknownType(truncated(&wire.message_type)))?;
        let confirmation = message_type != SnsMessageType::Notification;

        let timestamp = required(wire.timestamp, "Timestamp")?;
        let published_at = DateTime::parse_from_rfc3339(&timestamp)
            .map_err(|_| SnsRefusal::BadTimestamp(truncated(&timestamp)))?
            .with_timezone(&Utc);
        let signature_version = match required(wire.signature_version, "SignatureVersion")?.as_str()
        {
            "1" => SignatureVersion::V1Sha1,
            "2" => SignatureVersion::V2Sha256,
            other => return Err(SnsRefusal::UnsupportedSignatureVersion(truncated(other))),
        };
        let (subscribe_url, token) = if confirmation {
            (
                Some(required(wire.subscribe_url, "SubscribeURL")?),
                Some(required(wire.token, "Token")?),
            )
        } else {
            (wire.subscribe_url, wire.token)
        };
        Ok(SnsMessage {
            message_type,
            message_id: required(wire.message_id, "MessageId")?,
            topic_arn: required(wire.topic_arn, "TopicArn")?,
            subject: wire.subject,
            message: required(wire.message, "Message")?,
            timestamp,
            published_at,
            signature_version,
            signature: required(wire.signature, "Signature")?,
            signing_cert_url: required(wire.signing_cert_url, "SigningCertURL")?,
            subscribe_url,
            token,
            unsubscribe_url: wire.unsubscribe_url,
        })
    }

    /// The text SNS signed, as AWS documents it: `Name\nValue\n` for each field in a fixed order.
    /// Notification: Message, MessageId, Subject (only when present), Timestamp, TopicArn, Type.
    /// Confirmations: Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type.
    pub fn string_to_sign(&self) -> String {
        let mut fields: Vec<(&str, &str)> = Vec::with_capacity(7);
        fields.push(("Message", &self.message));
        fields.push(("MessageId", &self.message_id));
        match self.message_type {
            SnsMessageType::Notification => {
                if let Some(subject) = &self.subject {
                    fields.push(("Subject", subject));
                }
                fields.push(("Timestamp", &self.timestamp));
            }
            SnsMessageType::SubscriptionConfirmation | SnsMessageType::UnsubscribeConfirmation => {
                fields.push(("SubscribeURL", self.subscribe_url.as_deref().unwrap_or("")));
                fields.push(("Timestamp", &self.timestamp));
                fields.push(("Token", self.token.as_deref().unwrap_or("")));
            }
        }
        fields.push(("TopicArn", &self.topic_arn));
        fields.push(("Type", self.message_type.as_str()));

        let len = fields.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        let mut out = String::with_capacity(len);
        for (name, value) in fields {
            out.push_str(name);
            out.push('\n');
            out.push_str(value);
            out.push('\n');
        }
        out
    }
}

/// Echoes attacker-chosen text into an error message at a bounded length.
pub(super) fn truncated(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(subject: Option<&str>) -> SnsMessage {
        let mut body = serde_json::json!({
            "Type": "Notification",
            "MessageId": "id-1",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
            "Message": "hello\nworld",
            "Timestamp": "2026-05-29T10:00:01.000Z",
            "SignatureVersion": "1",
            "Signature": "c2ln",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/a.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        });
        if let Some(subject) = subject {
            body["Subject"] = subject.into();
        }
        SnsMessage::parse(body.to_string().as_bytes()).expect("valid notification")
    }

    #[test]
    fn notification_string_to_sign_with_subject() {
        assert_eq!(
            notification(Some("Hi")).string_to_sign(),
            "Message\nhello\nworld\nMessageId\nid-1\nSubject\nHi\nTimestamp\n2026-05-29T10:00:01.000Z\n\
             TopicArn\narn:aws:sns:us-east-1:123456789012:t\nType\nNotification\n"
        );
    }

    #[test]
    fn notification_string_to_sign_leaves_out_absent_subject() {
        assert_eq!(
            notification(None).string_to_sign(),
            "Message\nhello\nworld\nMessageId\nid-1\nTimestamp\n2026-05-29T10:00:01.000Z\n\
             TopicArn\narn:aws:sns:us-east-1:123456789012:t\nType\nNotification\n"
        );
    }

    #[test]
    fn null_subject_counts_as_absent() {
        let body = r#"{"Type":"Notification","MessageId":"m","TopicArn":"t","Subject":null,"Message":"x",
            "Timestamp":"2026-05-29T10:00:01Z","SignatureVersion":"2","Signature":"s","SigningCertURL":"u"}"#;
        let parsed = SnsMessage::parse(body.as_bytes()).expect("parses");
        assert_eq!(parsed.subject, None);
        assert_eq!(parsed.signature_version, SignatureVersion::V2Sha256);
    }

    #[test]
    fn confirmation_string_to_sign() {
        let body = serde_json::json!({
            "Type": "SubscriptionConfirmation",
            "MessageId": "id-2",
            "Token": "tok",
            "TopicArn": "arn:t",
            "Message": "You have chosen to subscribe",
            "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=tok",
            "Timestamp": "2026-05-29T10:00:01.000Z",
            "SignatureVersion": "2",
            "Signature": "c2ln",
            "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/a.pem",
        });
        let parsed = SnsMessage::parse(body.to_string().as_bytes()).expect("parses");
        assert_eq!(
            parsed.string_to_sign(),
            "Message\nYou have chosen to subscribe\nMessageId\nid-2\n\
             SubscribeURL\nhttps://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=tok\n\
             Timestamp\n2026-05-29T10:00:01.000Z\nToken\ntok\nTopicArn\narn:t\nType\nSubscriptionConfirmation\n"
        );
    }

    #[test]
    fn confirmation_needs_subscribe_url_and_token() {
        let body = r#"{"Type":"SubscriptionConfirmation","MessageId":"m","TopicArn":"t","Message":"x","Token":"k",
            "Timestamp":"2026-05-29T10:00:01Z","SignatureVersion":"1","Signature":"s","SigningCertURL":"u"}"#;
        assert_eq!(
            SnsMessage::parse(body.as_bytes()),
            Err(SnsRefusal::MissingField("SubscribeURL"))
        );
    }

    #[test]
    fn refuses_what_is_not_an_sns_message() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "malformed"),
            (b"[]", "malformed"),
            (b"{\"Type\":1}", "malformed"),
            (
                b"{\"Type\":\"Notification\",\"Type\":\"Notification\"}",
                "malformed",
            ),
            (b"{\"Type\":\"Other\"}", "unknown_type"),
            (b"{\"Type\":\"Notification\"}", "missing_field"),
            (b"\xff\xfe{}", "malformed"),
        ];
        for (body, code) in cases {
            let refusal = SnsMessage::parse(body).expect_err("refused");
            assert_eq!(
                refusal.code(),
                *code,
                "{:?}: {refusal}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn truncated_keeps_char_boundaries() {
        let long = "é".repeat(100);
        let cut = truncated(&long);
        assert!(cut.len() <= 80 + "…".len());
        assert!(cut.ends_with('…'));
    }
}
