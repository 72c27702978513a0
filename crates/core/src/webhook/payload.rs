//! What webhook messages say, in Resend's shapes: the `{"type", "created_at", "data"}` [`Envelope`] of every
//! message, and its `data` for email events ([`EmailEventData`], Resend's `OutboundEmailEventData`), received
//! emails ([`ReceivedEmailEventData`], `EmailReceivedEventData`), domain events ([`DomainEventData`]) and
//! contact events ([`ContactEventData`]).
//!
//! This is the one place payloads are shaped. The store fills them in the transaction of the change they
//! report; the server only contributes a domain's DNS records, which depend on its configuration.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::EventType;
use crate::dns_record::DnsRecordView;
use crate::email::{Header, Tag};
use crate::email_address::Mailbox;
use crate::status::DomainStatus;

/// Timestamps inside payloads: RFC 3339, UTC, milliseconds.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A whole message: the event's type, when it happened and its `data`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Envelope<D> {
    #[serde(rename = "type")]
    pub event: EventType,
    pub created_at: String,
    pub data: D,
}

impl<D: Serialize> Envelope<D> {
    pub fn new(event: EventType, at: DateTime<Utc>, data: D) -> Self {
        Self {
            event,
            created_at: timestamp(at),
            data,
        }
    }

    /// The request body, exactly as it is signed and sent.
    pub fn to_body(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

/// Resend's `OutboundEmailEventData`: the email's id, creation time, sender, recipients, subject, tags (as an
/// object) and custom headers (left out when there are none), with what the event adds beside them
/// ([`EmailEventData::describe`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EmailEventData {
    pub email_id: Uuid,
    pub created_at: String,
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    #[serde(serialize_with = "tags_object")]
    pub tags: Vec<Tag>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    /// The event's own fields (`failed`, `suppressed`, `bounce`, `click`, `scheduled_at`…).
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

/// The stored fields of an email an event is about.
#[derive(Clone, Copy, Debug)]
pub struct EmailFields<'a> {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub from: &'a Mailbox,
    pub to: &'a [Mailbox],
    pub subject: &'a str,
    pub tags: &'a [Tag],
    pub headers: &'a [Header],
}

impl EmailEventData {
    /// The fields every email event carries, addressed to the email's To recipients.
    pub fn new(email: EmailFields<'_>) -> Self {
        Self {
            email_id: email.id,
            created_at: timestamp(email.created_at),
            from: email.from.to_string(),
            to: email.to.iter().map(ToString::to_string).collect(),
            subject: email.subject.to_owned(),
            tags: email.tags.to_vec(),
            headers: email.headers.to_vec(),
            details: Map::new(),
        }
    }

    /// Adds what `event` reports, from the details recorded in the email's history (`email_events.data`):
    ///
    /// - a `recipients` list (the addresses a provider report is about) replaces `to`;
    /// - `email.sent` adds nothing (its transport details stay internal);
    /// - `email.failed` adds `failed: {reason}` from the recorded `error`;
    /// - `email.suppressed` adds `suppressed: {type, reason, message, diagnosticCode}`, the reason from
    ///   `listed_for`, why the recipients are on the suppression list (`bounce`, `complaint`, …);
    /// - any other event adds its details as recorded (`bounce`, `click`, `open`, `scheduled_at`…).
    pub fn describe(mut self, event: EventType, details: &Value, listed_for: Option<&str>) -> Self {
        if let Some(recipients) = recipients_of(details) {
            self.to = recipients;
        }
        match event {
            EventType::EmailSent => {}
            EventType::EmailFailed => {
                let reason = details.get("error").cloned().unwrap_or(Value::Null);
                self.details
                    .insert("failed".into(), json_object([("reason", reason)]));
            }
            EventType::EmailSuppressed => {
                let reason = match listed_for {
                    Some("bounce") => "previous_bounce",
                    Some("complaint") => "previous_complaint",
                    Some(other) => other,
                    None => "manual",
                };
                self.details.insert(
                    "suppressed".into(),
                    json_object([
                        ("type", Value::from("OnAccountSuppressionList")),
                        ("reason", Value::from(reason)),
                        (
                            "message",
                            Value::from("The recipient is on the organization's suppression list."),
                        ),
                        ("diagnosticCode", Value::Array(Vec::new())),
                    ]),
                );
            }
            _ => {
                if let Some(fields) = details.as_object() {
                    for (key, value) in fields {
                        if key != "recipients" {
                            self.details.insert(key.clone(), value.clone());
                        }
                    }
                }
            }
        }
        self
    }
}

/// The addresses an event's details name in `recipients`, if they name any.
pub fn recipients_of(details: &Value) -> Option<Vec<String>> {
    details.get("recipients")?.as_array().map(|list| {
        list.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
}

fn json_object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(
        fields
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    )
}

/// Tags as Resend's payloads carry them: an object of name → value (a repeated name keeps its last value).
fn tags_object<S: Serializer>(tags: &[Tag], serializer: S) -> Result<S::Ok, S::Error> {
    let object: BTreeMap<&str, &str> = tags
        .iter()
        .map(|t| (t.name.as_str(), t.value.as_str()))
        .collect();
    object.serialize(serializer)
}

/// Resend's `EmailReceivedEventData`: the received email's id, time, sender, recipients, subject,
/// `Message-ID` and attachment metadata.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReceivedEmailEventData {
    pub email_id: Uuid,
    pub created_at: String,
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    /// In angle brackets, or empty when the message had none.
    pub message_id: String,
    pub bcc: Vec<String>,
    pub cc: Vec<String>,
    pub attachments: Vec<ReceivedAttachmentData>,
}

/// One attachment of a received email, without its content (`filename` and `content_id` left out when the
/// part has none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReceivedAttachmentData {
    pub id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    pub content_type: String,
    /// `inline` or `attachment`.
    pub content_disposition: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
}

/// `Message-ID` as shown on the wire: in angle brackets, or empty when the message had none.
pub fn bracketed_message_id(message_id: Option<&str>) -> String {
    message_id.map(|m| format!("<{m}>")).unwrap_or_default()
}

/// Resend's `DomainEventData` for `domain.created`, `domain.updated` and `domain.deleted`: the domain with
/// its DNS records as the API shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DomainEventData {
    pub id: Uuid,
    pub name: String,
    pub status: DomainStatus,
    pub created_at: String,
    pub region: String,
    pub records: Vec<DnsRecordView>,
}

/// Resend's `ContactEventData` for `contact.created`, `contact.updated` and `contact.deleted`: the contact
/// as it is after the change (before it, for a deletion), with the segments it belongs to. `first_name` and
/// `last_name` are left out when unset; `unsubscribed` is true for a suppressed address too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContactEventData {
    pub id: Uuid,
    pub segment_ids: Vec<Uuid>,
    pub created_at: String,
    pub updated_at: String,
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    pub unsubscribed: bool,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::dns_record::{RECORD_TTL, RecordPurpose, RecordStatus, RecordType};

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 9, 30, 5).unwrap()
            + chrono::TimeDelta::microseconds(123_456)
    }

    fn mailbox(text: &str) -> Mailbox {
        Mailbox::parse(text).unwrap()
    }

    fn email_data(headers: &[Header]) -> EmailEventData {
        let from = mailbox("Acme <hello@acme.com>");
        let to = [
            mailbox("jane@example.com"),
            mailbox("\"Doe, Bob\" <bob@example.com>"),
        ];
        let tags = [Tag::new("category", "welcome"), Tag::new("plan", "pro")];
        EmailEventData::new(EmailFields {
            id: Uuid::nil(),
            created_at: at(),
            from: &from,
            to: &to,
            subject: "Hi",
            tags: &tags,
            headers,
        })
    }

    fn base(headers: Option<Value>) -> Value {
        let mut data = json!({
            "email_id": Uuid::nil(),
            "created_at": "2026-12-03T09:30:05.123Z",
            "from": "Acme <hello@acme.com>",
            "to": ["jane@example.com", "\"Doe, Bob\" <bob@example.com>"],
            "subject": "Hi",
            "tags": {"category": "welcome", "plan": "pro"},
        });
        if let Some(headers) = headers {
            data["headers"] = headers;
        }
        data
    }

    #[test]
    fn the_envelope_names_the_type_and_time() {
        let body = Envelope::new(EventType::EmailSent, at(), json!({"n": 1}))
            .to_body()
            .unwrap();
        let value: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            value,
            json!({"type": "email.sent", "created_at": "2026-12-03T09:30:05.123Z", "data": {"n": 1}})
        );
    }

    #[test]
    fn email_events_have_resends_shape() {
        // `email.sent`: the email's fields only; no headers key without headers.
        let sent = email_data(&[]).describe(
            EventType::EmailSent,
            &json!({"transport": "smtp", "provider_message_id": null, "rejected_recipients": []}),
            None,
        );
        assert_eq!(serde_json::to_value(&sent).unwrap(), base(None));

        // Custom headers are a list of {name, value}.
        let with_headers = email_data(&[Header::new("X-Campaign", "fall")]).describe(
            EventType::EmailSent,
            &json!({}),
            None,
        );
        assert_eq!(
            serde_json::to_value(&with_headers).unwrap(),
            base(Some(json!([{"name": "X-Campaign", "value": "fall"}])))
        );

        // `email.failed`: the recorded error as the reason.
        let failed = email_data(&[]).describe(
            EventType::EmailFailed,
            &json!({"error": "550 no such user"}),
            None,
        );
        let mut expected = base(None);
        expected["failed"] = json!({"reason": "550 no such user"});
        assert_eq!(serde_json::to_value(&failed).unwrap(), expected);

        // `email.suppressed`: addressed to the suppressed recipients, with why they are listed.
        let suppressed = email_data(&[]).describe(
            EventType::EmailSuppressed,
            &json!({"recipients": ["jane@example.com"]}),
            Some("bounce"),
        );
        let mut expected = base(None);
        expected["to"] = json!(["jane@example.com"]);
        expected["suppressed"] = json!({
            "type": "OnAccountSuppressionList",
            "reason": "previous_bounce",
            "message": "The recipient is on the organization's suppression list.",
            "diagnosticCode": [],
        });
        assert_eq!(serde_json::to_value(&suppressed).unwrap(), expected);
        let manual = email_data(&[]).describe(EventType::EmailSuppressed, &json!({}), None);
        assert_eq!(
            serde_json::to_value(&manual).unwrap()["suppressed"]["reason"],
            "manual"
        );

        // Provider reports: their details as recorded, to the recipients they are about.
        let bounce = json!({"type": "Permanent", "subType": "General", "message": "m", "diagnosticCode": []});
        let bounced = email_data(&[]).describe(
            EventType::EmailBounced,
            &json!({"bounce": bounce, "recipients": ["bob@example.com"]}),
            None,
        );
        let mut expected = base(None);
        expected["to"] = json!(["bob@example.com"]);
        expected["bounce"] = bounce;
        assert_eq!(serde_json::to_value(&bounced).unwrap(), expected);

        let scheduled = email_data(&[]).describe(
            EventType::EmailScheduled,
            &json!({"scheduled_at": "2026-12-04T00:00:00Z"}),
            None,
        );
        let mut expected = base(None);
        expected["scheduled_at"] = json!("2026-12-04T00:00:00Z");
        assert_eq!(serde_json::to_value(&scheduled).unwrap(), expected);
    }

    #[test]
    fn a_repeated_tag_keeps_its_last_value() {
        let mut data = email_data(&[]);
        data.tags.push(Tag::new("plan", "team"));
        assert_eq!(
            serde_json::to_value(&data).unwrap()["tags"],
            json!({"category": "welcome", "plan": "team"})
        );
    }

    #[test]
    fn received_emails_have_resends_shape() {
        let data = ReceivedEmailEventData {
            email_id: Uuid::nil(),
            created_at: timestamp(at()),
            from: "Sender <s@example.net>".into(),
            to: vec!["in@example.com".into()],
            subject: "Hello".into(),
            message_id: bracketed_message_id(Some("abc@example.net")),
            bcc: vec![],
            cc: vec!["cc@example.com".into()],
            attachments: vec![
                ReceivedAttachmentData {
                    id: Uuid::nil(),
                    filename: Some("a.pdf".into()),
                    content_type: "application/pdf".into(),
                    content_disposition: "attachment",
                    content_id: None,
                },
                ReceivedAttachmentData {
                    id: Uuid::nil(),
                    filename: None,
                    content_type: "image/png".into(),
                    content_disposition: "inline",
                    content_id: Some("logo".into()),
                },
            ],
        };
        assert_eq!(
            serde_json::to_value(&data).unwrap(),
            json!({
                "email_id": Uuid::nil(),
                "created_at": "2026-12-03T09:30:05.123Z",
                "from": "Sender <s@example.net>",
                "to": ["in@example.com"],
                "subject": "Hello",
                "message_id": "<abc@example.net>",
                "bcc": [],
                "cc": ["cc@example.com"],
                "attachments": [
                    {"id": Uuid::nil(), "filename": "a.pdf", "content_type": "application/pdf", "content_disposition": "attachment"},
                    {"id": Uuid::nil(), "content_type": "image/png", "content_disposition": "inline", "content_id": "logo"},
                ],
            })
        );
        assert_eq!(bracketed_message_id(None), "");
    }

    #[test]
    fn contact_events_have_resends_shape() {
        let data = ContactEventData {
            id: Uuid::nil(),
            segment_ids: vec![Uuid::nil()],
            created_at: timestamp(at()),
            updated_at: timestamp(at()),
            email: "jane@example.com".into(),
            first_name: Some("Jane".into()),
            last_name: None,
            unsubscribed: false,
        };
        assert_eq!(
            serde_json::to_value(&data).unwrap(),
            json!({
                "id": Uuid::nil(),
                "segment_ids": [Uuid::nil()],
                "created_at": "2026-12-03T09:30:05.123Z",
                "updated_at": "2026-12-03T09:30:05.123Z",
                "email": "jane@example.com",
                "first_name": "Jane",
                "unsubscribed": false,
            })
        );
    }

    #[test]
    fn domain_events_have_resends_shape() {
        let data = DomainEventData {
            id: Uuid::nil(),
            name: "example.com".into(),
            status: DomainStatus::NotStarted,
            created_at: timestamp(at()),
            region: "us-east-1".into(),
            records: vec![DnsRecordView {
                record: RecordPurpose::Dkim,
                name: "s._domainkey.example.com".into(),
                record_type: RecordType::Txt,
                ttl: RECORD_TTL,
                status: RecordStatus::NotStarted,
                value: "v=DKIM1; k=ed25519; p=AAAA".into(),
                priority: None,
                found: None,
                required: true,
            }],
        };
        assert_eq!(
            serde_json::to_value(&data).unwrap(),
            json!({
                "id": Uuid::nil(),
                "name": "example.com",
                "status": "not_started",
                "created_at": "2026-12-03T09:30:05.123Z",
                "region": "us-east-1",
                "records": [{
                    "record": "DKIM",
                    "name": "s._domainkey.example.com",
                    "type": "TXT",
                    "ttl": "Auto",
                    "status": "not_started",
                    "value": "v=DKIM1; k=ed25519; p=AAAA",
                    "required": true,
                }],
            })
        );
    }
}
