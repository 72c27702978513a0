//! SES event documents (the `Message` of SNS notifications from SES), in both formats SES publishes.

use chrono::{DateTime, Utc};
use opensend_mail::ses_events::{
    BounceType, SesEvent, SesEventDetails, SesEventError, SesEventFormat, SesNotification,
    parse_ses_event,
};
use serde_json::{Value, json};

const FIXTURE: &str = include_str!("fixtures/ses-event.json");

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn event(doc: &Value) -> SesEvent {
    match parse_ses_event(&doc.to_string()) {
        Ok(SesNotification::Event(event)) => *event,
        other => panic!("not an event: {other:?}"),
    }
}

fn mail() -> Value {
    json!({
        "timestamp": "2026-05-29T09:59:58.000Z",
        "source": "sender@yourdomain.com",
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/yourdomain.com",
        "sendingAccountId": "123456789012",
        "messageId": "0100018f-ses-message-id-000000",
        "destination": ["one@example.com", "two@example.com"],
        "headersTruncated": false,
        "headers": [{"name": "Subject", "value": "Hi"}],
        "commonHeaders": {"subject": "Hi"},
        "tags": {"ses:configuration-set": ["opensend-domain-1"]}
    })
}

#[test]
fn the_fixture_identity_bounce() {
    let envelope: Value = serde_json::from_str(FIXTURE).unwrap();
    let event = event(&serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap());
    assert_eq!(event.format, SesEventFormat::IdentityNotification);
    assert_eq!(event.kind(), "Bounce");
    assert_eq!(
        event.mail.message_id,
        "01000182a1b2c3d4-e5f60718-9012-3456-789a-bcdef0123456-000000"
    );
    assert_eq!(event.mail.timestamp, at("2026-05-29T09:59:58Z"));
    assert_eq!(event.mail.source, "sender@yourdomain.com");
    assert_eq!(event.mail.destination, ["bounce@example.com"]);
    let SesEventDetails::Bounce(bounce) = &event.details else {
        panic!("a bounce: {:?}", event.details)
    };
    assert_eq!(bounce.bounce_type, BounceType::Permanent);
    assert_eq!(bounce.sub_type.as_deref(), Some("General"));
    assert_eq!(bounce.timestamp, Some(at("2026-05-29T10:00:00Z")));
    assert_eq!(bounce.bounced_recipients.len(), 1);
    let recipient = &bounce.bounced_recipients[0];
    assert_eq!(recipient.email_address, "bounce@example.com");
    assert_eq!(recipient.action.as_deref(), Some("failed"));
    assert_eq!(recipient.status.as_deref(), Some("5.1.1"));
    assert_eq!(
        recipient.diagnostic_code.as_deref(),
        Some("smtp; 550 5.1.1 The email account that you tried to reach does not exist.")
    );
    // The raw sub-object is the whole `bounce`, fields we do not type included.
    assert_eq!(event.raw["reportingMTA"], "dns; amazonses.com");
    assert_eq!(event.raw["bouncedRecipients"][0]["status"], "5.1.1");
}

#[test]
fn event_publishing_bounce_transient() {
    let event = event(&json!({
        "eventType": "Bounce",
        "bounce": {
            "bounceType": "Transient",
            "bounceSubType": "MailboxFull",
            "bouncedRecipients": [{"emailAddress": "one@example.com"}],
            "timestamp": "2026-05-29T10:00:00.000Z",
            "feedbackId": "f"
        },
        "mail": mail()
    }));
    assert_eq!(event.format, SesEventFormat::EventPublishing);
    let SesEventDetails::Bounce(bounce) = &event.details else {
        panic!("a bounce")
    };
    assert_eq!(bounce.bounce_type, BounceType::Transient);
    assert_eq!(bounce.sub_type.as_deref(), Some("MailboxFull"));
    assert_eq!(bounce.bounced_recipients[0].action, None);
}

#[test]
fn delivery() {
    let event = event(&json!({
        "eventType": "Delivery",
        "mail": mail(),
        "delivery": {
            "timestamp": "2026-05-29T10:00:02.123Z",
            "processingTimeMillis": 546,
            "recipients": ["one@example.com"],
            "smtpResponse": "250 2.6.0 Message received",
            "reportingMTA": "a8-70.smtp-out.amazonses.com",
            "remoteMtaIp": "127.0.2.0"
        }
    }));
    assert_eq!(event.mail.message_id, "0100018f-ses-message-id-000000");
    assert_eq!(
        event.mail.destination,
        ["one@example.com", "two@example.com"]
    );
    let SesEventDetails::Delivery(delivery) = &event.details else {
        panic!("a delivery")
    };
    assert_eq!(delivery.recipients, ["one@example.com"]);
    assert_eq!(
        delivery.smtp_response.as_deref(),
        Some("250 2.6.0 Message received")
    );
    assert_eq!(delivery.timestamp, Some(at("2026-05-29T10:00:02.123Z")));
    assert_eq!(event.raw["processingTimeMillis"], 546);
}

#[test]
fn complaint() {
    let event = event(&json!({
        "eventType": "Complaint",
        "complaint": {
            "feedbackId": "0100",
            "complaintSubType": null,
            "complainedRecipients": [{"emailAddress": "two@example.com"}],
            "timestamp": "2026-05-29T11:00:00Z",
            "userAgent": "Mozilla/5.0",
            "complaintFeedbackType": "abuse",
            "arrivalDate": "2026-05-29T10:59:00Z"
        },
        "mail": mail()
    }));
    let SesEventDetails::Complaint(complaint) = &event.details else {
        panic!("a complaint")
    };
    assert_eq!(
        complaint.complained_recipients[0].email_address,
        "two@example.com"
    );
    assert_eq!(complaint.complaint_feedback_type.as_deref(), Some("abuse"));
    assert_eq!(complaint.timestamp, Some(at("2026-05-29T11:00:00Z")));

    // Identity notifications use the same object; the feedback type may be absent.
    let event = self::event(&json!({
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": "two@example.com"}], "timestamp": "2026-05-29T11:00:00Z"},
        "mail": mail()
    }));
    assert_eq!(event.format, SesEventFormat::IdentityNotification);
    let SesEventDetails::Complaint(complaint) = &event.details else {
        panic!("a complaint")
    };
    assert_eq!(complaint.complaint_feedback_type, None);
}

#[test]
fn delivery_delay() {
    let event = event(&json!({
        "eventType": "DeliveryDelay",
        "mail": mail(),
        "deliveryDelay": {
            "timestamp": "2026-05-29T10:05:00Z",
            "delayType": "TransientCommunicationFailure",
            "expirationTime": "2026-05-30T10:00:00Z",
            "delayedRecipients": [{
                "emailAddress": "one@example.com",
                "status": "4.4.1",
                "diagnosticCode": "smtp; 421 4.4.1 Unable to connect"
            }]
        }
    }));
    let SesEventDetails::DeliveryDelay(delay) = &event.details else {
        panic!("a delay")
    };
    assert_eq!(
        delay.delay_type.as_deref(),
        Some("TransientCommunicationFailure")
    );
    assert_eq!(delay.expiration_time, Some(at("2026-05-30T10:00:00Z")));
    assert_eq!(delay.delayed_recipients[0].status.as_deref(), Some("4.4.1"));
    assert_eq!(event.kind(), "DeliveryDelay");
}

#[test]
fn open_and_click() {
    let event = event(&json!({
        "eventType": "Open",
        "mail": mail(),
        "open": {"ipAddress": "192.0.2.1", "timestamp": "2026-05-29T12:00:00Z", "userAgent": "Mail/1.0"}
    }));
    let SesEventDetails::Open(open) = &event.details else {
        panic!("an open")
    };
    assert_eq!(open.ip_address.as_deref(), Some("192.0.2.1"));
    assert_eq!(open.user_agent.as_deref(), Some("Mail/1.0"));
    assert_eq!(open.timestamp, Some(at("2026-05-29T12:00:00Z")));

    let event = self::event(&json!({
        "eventType": "Click",
        "mail": mail(),
        "click": {
            "ipAddress": "192.0.2.2",
            "link": "https://example.com/offer",
            "linkTags": {"campaign": ["may"]},
            "timestamp": "2026-05-29T12:01:00Z",
            "userAgent": "Browser/2.0"
        }
    }));
    let SesEventDetails::Click(click) = &event.details else {
        panic!("a click")
    };
    assert_eq!(click.link.as_deref(), Some("https://example.com/offer"));
    assert_eq!(click.ip_address.as_deref(), Some("192.0.2.2"));
    assert_eq!(click.user_agent.as_deref(), Some("Browser/2.0"));
    assert_eq!(click.timestamp, Some(at("2026-05-29T12:01:00Z")));
    assert_eq!(event.raw["linkTags"]["campaign"][0], "may");
}

#[test]
fn send_reject_rendering_failure_and_subscription() {
    let send = event(&json!({"eventType": "Send", "mail": mail(), "send": {}}));
    assert_eq!(send.details, SesEventDetails::Send);
    assert_eq!(send.raw, json!({}));

    let reject =
        event(&json!({"eventType": "Reject", "mail": mail(), "reject": {"reason": "Bad content"}}));
    let SesEventDetails::Reject(details) = &reject.details else {
        panic!("a reject")
    };
    assert_eq!(details.reason.as_deref(), Some("Bad content"));

    let failure = event(&json!({
        "eventType": "Rendering Failure",
        "mail": mail(),
        "failure": {"errorMessage": "Attribute 'name' is not present", "templateName": "welcome"}
    }));
    assert_eq!(failure.kind(), "Rendering Failure");
    let SesEventDetails::RenderingFailure(details) = &failure.details else {
        panic!("a rendering failure")
    };
    assert_eq!(details.template_name.as_deref(), Some("welcome"));
    assert_eq!(
        details.error_message.as_deref(),
        Some("Attribute 'name' is not present")
    );

    let subscription = event(&json!({
        "eventType": "Subscription",
        "mail": mail(),
        "subscription": {"contactList": "news", "timestamp": "2026-05-29T12:00:00Z", "source": "UnsubscribeHeader"}
    }));
    let SesEventDetails::Subscription(details) = &subscription.details else {
        panic!("a subscription")
    };
    assert_eq!(details.contact_list.as_deref(), Some("news"));
}

#[test]
fn unknown_kinds_are_unsupported_not_errors() {
    for doc in [
        json!({"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "You have successfully subscribed"}),
        json!({"eventType": "Teleport", "mail": mail()}),
        json!({"notificationType": "Send", "mail": mail(), "send": {}}),
    ] {
        assert!(
            matches!(
                parse_ses_event(&doc.to_string()),
                Ok(SesNotification::Unsupported { .. })
            ),
            "{doc}"
        );
    }
}

#[test]
fn broken_documents_are_errors() {
    let no_id = json!({"eventType": "Delivery", "mail": {"timestamp": "2026-05-29T10:00:00Z"}, "delivery": {}});
    assert!(matches!(
        parse_ses_event(&no_id.to_string()),
        Err(SesEventError::BadMail { .. })
    ));
    let no_details = json!({"eventType": "Delivery", "mail": mail()});
    assert!(matches!(
        parse_ses_event(&no_details.to_string()),
        Err(SesEventError::BadDetails {
            field: "delivery",
            ..
        })
    ));
    let wrong_type = json!({"eventType": "Delivery", "mail": mail(), "delivery": {"recipients": "one@example.com"}});
    assert!(matches!(
        parse_ses_event(&wrong_type.to_string()),
        Err(SesEventError::BadDetails { .. })
    ));
    for doc in [
        "",
        "{",
        "null",
        "[]",
        "\"Bounce\"",
        "{\"eventType\":\"Bounce\"",
        "{\"eventType\":[\"Bounce\"]}",
    ] {
        assert!(parse_ses_event(doc).is_err(), "{doc}");
    }
    // Every truncation of the fixture's document is an error, never a panic.
    let envelope: Value = serde_json::from_str(FIXTURE).unwrap();
    let message = envelope["Message"].as_str().unwrap();
    for end in (0..message.len()).filter(|&i| message.is_char_boundary(i)) {
        assert!(parse_ses_event(&message[..end]).is_err(), "cut at {end}");
    }
}
