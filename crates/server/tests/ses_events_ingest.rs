//! `POST /events/ses` end to end: SNS messages signed in the test with a certificate it makes, served from a
//! loopback "SNS" that `SNS_TEST_CERT_URL_PREFIX` allows; emails sent through the API (capture delivery) and
//! given the SES message id a real send would have recorded (or recorded sent as an SES send in several
//! calls records it); effects read back through the API, the database and a webhook receiver.

mod common;
#[path = "../../mail/tests/sns_support/mod.rs"]
mod sns_support;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::{TestApp, json};
use opensend_store::entities::{
    delivery_job, email, email_event, email_recipient, provider_event, suppression,
    webhook_delivery, webhook_message,
};
use opensend_store::repos::delivery_queue::{RecipientResult, SentRecord};
use opensend_test_support::webhook_receiver::WebhookReceiver;
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, Database, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder,
};
use serde_json::{Value, json};
use sns_support::{FakeSns, KEY, TOPIC, confirmation, notification, timestamp};
use uuid::Uuid;

/// The shared fixture: an SNS notification carrying an identity-notification Permanent bounce of
/// `bounce@example.com`.
const FIXTURE: &str = include_str!("../../mail/tests/fixtures/ses-event.json");
const WAIT: Duration = Duration::from_secs(20);

struct Setup {
    app: TestApp,
    sns: FakeSns,
    token: String,
    db: DatabaseConnection,
}

async fn setup() -> Setup {
    let sns = FakeSns::start(KEY.cert_pem.clone()).await;
    let app = TestApp::spawn_with(&[
        ("SES_EVENTS_SNS_TOPIC_ARN", TOPIC),
        ("SNS_TEST_CERT_URL_PREFIX", &sns.prefix),
        ("ALLOW_PRIVATE_WEBHOOK_URLS", "true"),
        ("WEBHOOK_RETRY_DELAYS_SECONDS", "0,0,0"),
    ])
    .await;
    let (_, token) = app.tenant().await;
    let db = Database::connect(app.db.url()).await.expect("connect");
    Setup {
        app,
        sns,
        token,
        db,
    }
}

impl Setup {
    /// Sends an email to `to` through the API, waits until it is `sent`, and gives it `ses_id` as SES's
    /// message id (what the SES transport records). Returns the email's id.
    async fn sent_email(&self, to: &[&str], ses_id: &str) -> String {
        let (status, body) = self
            .app
            .send(
                &self.token,
                &json!({
                    "from": "Acme <hello@acme.test>",
                    "to": to,
                    "subject": "Hello",
                    "text": "Hi",
                    "tags": [{"name": "campaign", "value": "welcome"}],
                }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        self.app.wait_for_status(&self.token, &id, "sent").await;
        email::Entity::update_many()
            .col_expr(email::Column::ProviderMessageId, Expr::value(Some(ses_id)))
            .filter(email::Column::Id.eq(Uuid::parse_str(&id).unwrap()))
            .exec(&self.db)
            .await
            .unwrap();
        id
    }

    /// Sends an email to every address of `calls` through the API, and records it sent as SES records an
    /// email it sent in several calls: `calls` gives each recipient and the SES message id of its call. The
    /// email is scheduled for later, so the worker leaves it alone, and its job is leased here instead.
    /// Returns the email's id.
    async fn sent_in_calls(&self, calls: &[(&str, &str)]) -> String {
        let to: Vec<&str> = calls.iter().map(|(address, _)| *address).collect();
        let later = timestamp(Utc::now() + TimeDelta::days(1));
        let (status, body) = self
            .app
            .send(
                &self.token,
                &json!({"from": "hello@acme.test", "to": to, "subject": "Hello", "text": "Hi",
                        "scheduled_at": later}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        let email_id = Uuid::parse_str(&id).unwrap();
        let queue = self.app.store.delivery_queue();
        let job = queue.job_for(email_id).await.unwrap().expect("job");
        delivery_job::Entity::update_many()
            .col_expr(delivery_job::Column::LeaseOwner, Expr::value(Some("test")))
            .col_expr(
                delivery_job::Column::LeaseExpiresAt,
                Expr::value(Some(Utc::now() + TimeDelta::hours(1))),
            )
            .filter(delivery_job::Column::Id.eq(job.id))
            .exec(&self.db)
            .await
            .unwrap();
        let job = queue.job_for(email_id).await.unwrap().expect("job");
        let recorded = queue
            .record_sent(
                &job,
                "test",
                SentRecord {
                    transport: "ses".to_owned(),
                    provider_message_id: calls.first().map(|(_, ses_id)| ses_id.to_string()),
                    raw_mime: None,
                    recipients: calls
                        .iter()
                        .map(|(address, ses_id)| RecipientResult {
                            address: address.to_string(),
                            accepted: true,
                            response: "250 Ok".to_owned(),
                            provider_message_id: Some(ses_id.to_string()),
                        })
                        .collect(),
                },
            )
            .await
            .unwrap();
        assert!(recorded);
        id
    }

    async fn email(&self, id: &str) -> Value {
        let (status, body) = json(
            self.app
                .authed(Method::GET, &format!("/emails/{id}"), &self.token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn last_event(&self, id: &str) -> String {
        self.email(id).await["last_event"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Registers `receiver` for `events`.
    async fn webhook(&self, receiver: &WebhookReceiver, events: &[&str]) {
        let (status, body) = json(
            self.app
                .authed(Method::POST, "/webhooks", &self.token)
                .json(&json!({"endpoint": receiver.url(), "events": events}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }

    /// A notification from the fake SNS carrying `ses_event`, with a fresh `MessageId`, signed.
    fn signed(&self, ses_event: &Value) -> Value {
        let mut message = notification(&self.sns.url("cert.pem"), &ses_event.to_string());
        message["MessageId"] = Uuid::new_v4().to_string().into();
        KEY.sign(&mut message, "2");
        message
    }

    async fn post_raw(&self, body: Vec<u8>, kind: Option<&str>) -> (u16, Value) {
        let mut request = self
            .app
            .client
            .post(format!("{}/events/ses", self.app.ingester))
            .header("content-type", "text/plain; charset=UTF-8")
            .body(body);
        if let Some(kind) = kind {
            request = request.header("x-amz-sns-message-type", kind);
        }
        json(request.send().await.unwrap()).await
    }

    async fn post(&self, message: &Value) -> (u16, Value) {
        let kind = message["Type"].as_str().map(str::to_owned);
        self.post_raw(serde_json::to_vec(message).unwrap(), kind.as_deref())
            .await
    }

    /// Posts and expects the event to be applied.
    async fn apply(&self, message: &Value) -> Value {
        let (status, body) = self.post(message).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"], "applied", "{body}");
        body
    }

    async fn recipient(&self, email_id: &str, address: &str) -> email_recipient::Model {
        email_recipient::Entity::find()
            .filter(email_recipient::Column::EmailId.eq(Uuid::parse_str(email_id).unwrap()))
            .filter(email_recipient::Column::Address.eq(address))
            .one(&self.db)
            .await
            .unwrap()
            .expect("recipient row")
    }

    async fn event_types(&self, email_id: &str) -> Vec<String> {
        email_event::Entity::find()
            .filter(email_event::Column::EmailId.eq(Uuid::parse_str(email_id).unwrap()))
            .order_by_asc(email_event::Column::Id)
            .all(&self.db)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }

    async fn suppression(&self, address: &str) -> Option<suppression::Model> {
        suppression::Entity::find()
            .filter(suppression::Column::Address.eq(address))
            .one(&self.db)
            .await
            .unwrap()
    }

    /// Everything an SES event could write: row counts and every email's and recipient's status.
    async fn snapshot(&self) -> Value {
        let db = &self.db;
        json!({
            "provider_events": provider_event::Entity::find().count(db).await.unwrap(),
            "email_events": email_event::Entity::find().count(db).await.unwrap(),
            "suppressions": suppression::Entity::find().count(db).await.unwrap(),
            "webhook_messages": webhook_message::Entity::find().count(db).await.unwrap(),
            "webhook_deliveries": webhook_delivery::Entity::find().count(db).await.unwrap(),
            "emails": email::Entity::find().order_by_asc(email::Column::Id).all(db).await.unwrap()
                .into_iter().map(|e| format!("{} {} {}", e.id, e.status, e.updated_at)).collect::<Vec<_>>(),
            "recipients": email_recipient::Entity::find().order_by_asc(email_recipient::Column::Id).all(db).await.unwrap()
                .into_iter().map(|r| format!("{} {} {:?}", r.address, r.status, r.response)).collect::<Vec<_>>(),
        })
    }
}

/// A refused message: what is wrong with it, the body, its type header, the status and refusal code expected.
type Case = (
    &'static str,
    Vec<u8>,
    Option<&'static str>,
    u16,
    &'static str,
);

/// An SES event-publishing document of `kind` about SES message `ses_id`, sent to `destination`, with the
/// kind's sub-object `details` under `field`.
fn ses_event(kind: &str, ses_id: &str, destination: &[&str], field: &str, details: Value) -> Value {
    let mut event = json!({
        "eventType": kind,
        "mail": {
            "timestamp": timestamp(Utc::now() - TimeDelta::seconds(5)),
            "source": "hello@acme.test",
            "messageId": ses_id,
            "destination": destination,
            "headersTruncated": false,
        },
    });
    event[field] = details;
    event
}

fn delivery(ses_id: &str, to: &str) -> Value {
    ses_event(
        "Delivery",
        ses_id,
        &[to],
        "delivery",
        json!({
            "timestamp": timestamp(Utc::now()),
            "processingTimeMillis": 546,
            "recipients": [to],
            "smtpResponse": "250 2.6.0 Message received",
            "reportingMTA": "a8-70.smtp-out.amazonses.com",
        }),
    )
}

fn bounce(ses_id: &str, to: &str, bounce_type: &str) -> Value {
    ses_event(
        "Bounce",
        ses_id,
        &[to],
        "bounce",
        json!({
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [{
                "emailAddress": to,
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }],
            "timestamp": timestamp(Utc::now()),
            "feedbackId": "0100017c-feedback",
        }),
    )
}

fn complaint(ses_id: &str, to: &str) -> Value {
    ses_event(
        "Complaint",
        ses_id,
        &[to],
        "complaint",
        json!({
            "complainedRecipients": [{"emailAddress": to}],
            "complaintFeedbackType": "abuse",
            "timestamp": timestamp(Utc::now()),
            "feedbackId": "0100017c-complaint",
        }),
    )
}

/// The fixture's SES event, about `ses_id` instead of the id it was written with.
fn fixture_event(ses_id: &str) -> Value {
    let envelope: Value = serde_json::from_str(FIXTURE).unwrap();
    let mut event: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    event["mail"]["messageId"] = ses_id.into();
    event
}

#[tokio::test]
async fn fixture_bounce_suppresses_the_recipient_and_fires_email_bounced() {
    let s = setup().await;
    let receiver = WebhookReceiver::start(vec![]).await;
    s.webhook(&receiver, &["email.bounced"]).await;
    let ses_id = "0100018f-fixture-bounce-000000";
    let id = s.sent_email(&["bounce@example.com"], ses_id).await;

    // The fixture's envelope, re-signed: its own MessageId and Subject, a fresh Timestamp, our certificate.
    let mut message: Value = serde_json::from_str(FIXTURE).unwrap();
    message["Message"] = fixture_event(ses_id).to_string().into();
    message["Timestamp"] = timestamp(Utc::now()).into();
    message["SigningCertURL"] = s.sns.url("cert.pem").into();
    KEY.sign(&mut message, "1");
    let body = s.apply(&message).await;
    assert_eq!(body["email_id"], id.as_str());
    assert_eq!(body["last_event"], "bounced");
    assert_eq!(body["message_id"], "a6c4e2f0-1b2a-4c3d-8e9f-0a1b2c3d4e5f");

    assert_eq!(s.last_event(&id).await, "bounced");
    let recipient = s.recipient(&id, "bounce@example.com").await;
    assert_eq!(recipient.status, "bounced");
    assert_eq!(
        recipient.response.as_deref(),
        Some("smtp; 550 5.1.1 The email account that you tried to reach does not exist.")
    );

    // On the organization's list, through the API, with the email as its source.
    let (status, listed) = json(
        s.app
            .authed(Method::GET, "/suppressions/bounce@example.com", &s.token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["reason"], "bounce");
    assert_eq!(listed["origin"], "bounce");
    assert_eq!(listed["source_id"], id.as_str());

    let delivered = receiver.wait_for(1, WAIT).await;
    let payload = delivered[0].json();
    assert_eq!(payload["type"], "email.bounced", "{payload}");
    let data = &payload["data"];
    assert_eq!(data["email_id"], id.as_str());
    assert_eq!(data["from"], "Acme <hello@acme.test>");
    assert_eq!(data["to"], json!(["bounce@example.com"]));
    assert_eq!(data["subject"], "Hello");
    assert_eq!(data["tags"], json!({"campaign": "welcome"}));
    assert_eq!(
        data["bounce"],
        json!({
            "type": "Permanent",
            "subType": "General",
            "message": "The recipient's mail server permanently rejected the email.",
            "diagnosticCode": ["smtp; 550 5.1.1 The email account that you tried to reach does not exist."],
        })
    );
    assert!(data.get("recipients").is_none(), "{data}");

    // The next email to the address is not sent.
    let (status, body) = s
        .app
        .send(
            &s.token,
            &json!({"from": "hello@acme.test", "to": "bounce@example.com", "subject": "Again", "text": "Hi"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        s.last_event(body["id"].as_str().unwrap()).await,
        "suppressed"
    );
}

#[tokio::test]
async fn refused_messages_change_nothing() {
    let s = setup().await;
    let receiver = WebhookReceiver::start(vec![]).await;
    s.webhook(&receiver, &["email.bounced", "email.delivered"])
        .await;
    let ses_id = "0100018f-refusals-000000";
    let id = s.sent_email(&["bounce@example.com"], ses_id).await;
    let good = s.signed(&fixture_event(ses_id));
    let before = s.snapshot().await;

    let resign = |mut message: Value| {
        KEY.sign(&mut message, "2");
        message
    };
    let mut wrong_topic = good.clone();
    wrong_topic["TopicArn"] = "arn:aws:sns:us-east-1:123456789012:SomebodyElse".into();
    let mut old = good.clone();
    old["Timestamp"] = timestamp(Utc::now() - TimeDelta::hours(2)).into();
    let port = s
        .sns
        .prefix
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let mut other_host = good.clone();
    other_host["SigningCertURL"] = format!("http://localhost:{port}/cert.pem").into();
    let mut public_host = good.clone();
    public_host["SigningCertURL"] =
        "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem".into();
    let mut plain_http = good.clone();
    plain_http["SigningCertURL"] =
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc123.pem".into();
    let mut unavailable = good.clone();
    unavailable["SigningCertURL"] = s.sns.url("unavailable.pem").into();
    let subscribe_off_host = resign(confirmation(
        "SubscriptionConfirmation",
        &s.sns.url("cert.pem"),
        "https://evil.example/?Action=ConfirmSubscription&Token=abc",
    ));
    let subscribe_other_port = resign(confirmation(
        "SubscriptionConfirmation",
        &s.sns.url("cert.pem"),
        &format!(
            "http://127.0.0.1:{}/confirm",
            port.parse::<u16>().unwrap().wrapping_add(1)
        ),
    ));

    // The valid message with one byte changed: `…example.com` → `…example.con` inside the signed Message.
    let tampered = serde_json::to_string(&good)
        .unwrap()
        .replacen("bounce@example.com", "bounce@example.con", 1)
        .into_bytes();

    // (what, body, x-amz-sns-message-type, status, refusal code)
    let cases: Vec<Case> = vec![
        (
            "one byte changed",
            tampered,
            Some("Notification"),
            403,
            "bad_signature",
        ),
        (
            "wrong topic",
            serde_json::to_vec(&resign(wrong_topic)).unwrap(),
            Some("Notification"),
            403,
            "topic_not_allowed",
        ),
        (
            "two hours old",
            serde_json::to_vec(&resign(old)).unwrap(),
            Some("Notification"),
            403,
            "too_old",
        ),
        (
            "certificate on another host",
            serde_json::to_vec(&resign(other_host)).unwrap(),
            Some("Notification"),
            403,
            "cert_url_not_allowed",
        ),
        (
            "certificate on a look-alike host",
            serde_json::to_vec(&resign(public_host)).unwrap(),
            Some("Notification"),
            403,
            "cert_url_not_allowed",
        ),
        (
            "http:// without the test prefix",
            serde_json::to_vec(&resign(plain_http)).unwrap(),
            Some("Notification"),
            403,
            "cert_url_not_allowed",
        ),
        (
            "SubscribeURL off SNS",
            serde_json::to_vec(&subscribe_off_host).unwrap(),
            Some("SubscriptionConfirmation"),
            403,
            "subscribe_url_not_allowed",
        ),
        (
            "SubscribeURL on another port",
            serde_json::to_vec(&subscribe_other_port).unwrap(),
            Some("SubscriptionConfirmation"),
            403,
            "subscribe_url_not_allowed",
        ),
        (
            "type header disagrees",
            serde_json::to_vec(&good).unwrap(),
            Some("SubscriptionConfirmation"),
            400,
            "type_header_mismatch",
        ),
        (
            "not JSON",
            b"{\"Type\": \"Notification\"".to_vec(),
            None,
            400,
            "malformed",
        ),
        (
            "unsigned",
            serde_json::to_vec(&{
                let mut m = good.clone();
                m["Signature"] = "".into();
                m
            })
            .unwrap(),
            None,
            403,
            "bad_signature",
        ),
        (
            "certificate unavailable",
            serde_json::to_vec(&resign(unavailable)).unwrap(),
            Some("Notification"),
            503,
            "cert_unavailable",
        ),
    ];
    for (what, body, kind, status, code) in cases {
        let (actual, answer) = s.post_raw(body, kind).await;
        assert_eq!(actual, status, "{what}: {answer}");
        assert_eq!(answer["statusCode"], status, "{what}: {answer}");
        let name = if status == 503 {
            "service_unavailable"
        } else {
            "validation_error"
        };
        assert_eq!(answer["name"], name, "{what}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains(&format!("({code})")),
            "{what}: {answer}"
        );
        assert_eq!(s.snapshot().await, before, "{what} changed the database");
    }
    assert_eq!(s.sns.confirm_hits(), 0, "no SubscribeURL was fetched");
    assert_eq!(s.last_event(&id).await, "sent");

    // The untouched message is accepted: each refusal above was for its one change.
    s.apply(&good).await;
    assert_eq!(s.last_event(&id).await, "bounced");
    receiver.wait_for(1, WAIT).await;
}

#[tokio::test]
async fn without_a_topic_the_route_refuses_everything() {
    let sns = FakeSns::start(KEY.cert_pem.clone()).await;
    let app = TestApp::spawn().await;
    let mut message = notification(&sns.url("cert.pem"), &fixture_event("x").to_string());
    KEY.sign(&mut message, "1");
    let response = app
        .client
        .post(format!("{}/events/ses", app.ingester))
        .body(serde_json::to_vec(&message).unwrap())
        .send()
        .await
        .unwrap();
    let body = common::expect_error(response, 403, "validation_error").await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("SES_EVENTS_SNS_TOPIC_ARN is not set"),
        "{body}"
    );
    assert_eq!(sns.cert_hits(), 0);
}

#[tokio::test]
async fn a_repeated_message_id_is_acknowledged_without_effect() {
    let s = setup().await;
    let receiver = WebhookReceiver::start(vec![]).await;
    s.webhook(&receiver, &["email.bounced"]).await;
    let ses_id = "0100018f-duplicate-000000";
    let id = s.sent_email(&["bounce@example.com"], ses_id).await;
    let message = s.signed(&bounce(ses_id, "bounce@example.com", "Permanent"));

    s.apply(&message).await;
    let after_first = s.snapshot().await;
    for _ in 0..3 {
        let (status, body) = s.post(&message).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"], "duplicate", "{body}");
    }
    assert_eq!(s.snapshot().await, after_first);
    let bounced = s
        .event_types(&id)
        .await
        .into_iter()
        .filter(|t| t == "email.bounced")
        .count();
    assert_eq!(bounced, 1);
    receiver.wait_for(1, WAIT).await;

    // The same message delivered several times at once (SNS retrying while the first is in flight) is
    // applied by exactly one of them.
    let again = s.signed(&complaint(ses_id, "bounce@example.com"));
    let answers = futures::future::join_all((0..8).map(|_| s.post(&again))).await;
    let results: Vec<&str> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            body["result"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        results.iter().filter(|r| **r == "applied").count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|r| **r == "duplicate").count(),
        7,
        "{results:?}"
    );
    let complained = s
        .event_types(&id)
        .await
        .into_iter()
        .filter(|t| t == "email.complained")
        .count();
    assert_eq!(complained, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "one email.bounced webhook only"
    );
}

#[tokio::test]
async fn a_message_whose_processing_failed_is_processed_when_it_comes_again() {
    let s = setup().await;
    let ses_id = "0100018f-retry-000000";
    let id = s.sent_email(&["bounce@example.com"], ses_id).await;
    let message = s.signed(&bounce(ses_id, "bounce@example.com", "Permanent"));

    // Make the suppression insert fail, half-way through the event's transaction.
    let (create, drop) = if s.app.db.is_postgres() {
        (
            vec![
                "CREATE FUNCTION opensend_test_fail() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'test failure'; END; $$ LANGUAGE plpgsql",
                "CREATE TRIGGER opensend_test_fail BEFORE INSERT ON suppressions FOR EACH ROW EXECUTE FUNCTION opensend_test_fail()",
            ],
            "DROP TRIGGER opensend_test_fail ON suppressions",
        )
    } else {
        (
            vec![
                "CREATE TRIGGER opensend_test_fail BEFORE INSERT ON suppressions BEGIN SELECT RAISE(ABORT, 'test failure'); END",
            ],
            "DROP TRIGGER opensend_test_fail",
        )
    };
    for sql in create {
        s.db.execute_unprepared(sql).await.unwrap();
    }
    let before = s.snapshot().await;
    let (status, body) = s.post(&message).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["name"], "internal_server_error");
    assert_eq!(
        s.snapshot().await,
        before,
        "a failed event leaves nothing behind"
    );

    s.db.execute_unprepared(drop).await.unwrap();
    s.apply(&message).await;
    assert_eq!(s.last_event(&id).await, "bounced");
    let listed = s
        .suppression("bounce@example.com")
        .await
        .expect("suppressed");
    assert_eq!(listed.reason, "bounce");
    assert_eq!(listed.source_id, Some(Uuid::parse_str(&id).unwrap()));
}

#[tokio::test]
async fn a_late_delivery_after_a_bounce_does_not_undo_it() {
    let s = setup().await;
    let receiver = WebhookReceiver::start(vec![]).await;
    s.webhook(&receiver, &["email.delivered", "email.bounced"])
        .await;
    let ses_id = "0100018f-order-000000";
    let to = "jane@example.net";
    let id = s.sent_email(&[to], ses_id).await;

    s.apply(&s.signed(&delivery(ses_id, to))).await;
    assert_eq!(s.last_event(&id).await, "delivered");
    let recipient = s.recipient(&id, to).await;
    assert_eq!(recipient.status, "delivered");
    assert_eq!(
        recipient.response.as_deref(),
        Some("250 2.6.0 Message received")
    );

    // A soft bounce: the email bounced, the address is not suppressed.
    let body = s.apply(&s.signed(&bounce(ses_id, to, "Transient"))).await;
    assert_eq!(body["last_event"], "bounced");
    assert_eq!(s.recipient(&id, to).await.status, "bounced");
    assert!(
        s.suppression(to).await.is_none(),
        "transient bounces do not suppress"
    );

    // A Delivery delivered late (another MessageId) is recorded and announced, but the status stays.
    let body = s.apply(&s.signed(&delivery(ses_id, to))).await;
    assert_eq!(body["last_event"], "bounced");
    assert_eq!(s.last_event(&id).await, "bounced");
    assert_eq!(s.recipient(&id, to).await.status, "bounced");
    let types = s.event_types(&id).await;
    assert_eq!(
        types
            .iter()
            .filter(|t| t.starts_with("email.delivered") || t.starts_with("email.bounced"))
            .collect::<Vec<_>>(),
        vec!["email.delivered", "email.bounced", "email.delivered"]
    );
    let delivered = receiver.wait_for(3, WAIT).await;
    let mut kinds: Vec<String> = delivered
        .iter()
        .map(|d| d.json()["type"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["email.bounced", "email.delivered", "email.delivered"]
    );
    let bounced = delivered
        .iter()
        .map(|d| d.json())
        .find(|p| p["type"] == "email.bounced")
        .unwrap();
    assert_eq!(bounced["data"]["bounce"]["type"], "Transient");
    assert_eq!(bounced["data"]["to"], json!([to]));
}

#[tokio::test]
async fn a_complaint_suppresses_with_reason_complaint() {
    let s = setup().await;
    let receiver = WebhookReceiver::start(vec![]).await;
    s.webhook(&receiver, &["email.complained"]).await;
    let ses_id = "0100018f-complaint-000000";
    let id = s
        .sent_email(&["angry@example.net", "happy@example.net"], ses_id)
        .await;

    s.apply(&s.signed(&delivery(ses_id, "angry@example.net")))
        .await;
    let body = s
        .apply(&s.signed(&complaint(ses_id, "angry@example.net")))
        .await;
    assert_eq!(body["last_event"], "complained");
    assert_eq!(s.last_event(&id).await, "complained");

    let listed = s
        .suppression("angry@example.net")
        .await
        .expect("suppressed");
    assert_eq!(listed.reason, "complaint");
    assert_eq!(listed.source_id, Some(Uuid::parse_str(&id).unwrap()));
    assert!(s.suppression("happy@example.net").await.is_none());
    assert_eq!(
        s.recipient(&id, "angry@example.net").await.status,
        "complained"
    );
    assert_eq!(
        s.recipient(&id, "happy@example.net").await.status,
        "accepted"
    );

    let payload = receiver.wait_for(1, WAIT).await[0].json();
    assert_eq!(payload["type"], "email.complained");
    assert_eq!(payload["data"]["email_id"], id.as_str());
    assert_eq!(payload["data"]["to"], json!(["angry@example.net"]));
    assert_eq!(payload["data"]["complaint"]["feedbackType"], "abuse");
}

/// SES sends an email to more than 50 recipients in several calls, each with its own message id, and reports
/// a bounce under the id of the call its recipient was in: the third call's id reaches the email too.
#[tokio::test]
async fn a_bounce_under_any_of_an_emails_ses_message_ids_reaches_its_recipient() {
    let s = setup().await;
    let receiver = WebhookReceiver::start(vec![]).await;
    s.webhook(&receiver, &["email.bounced"]).await;
    let id = s
        .sent_in_calls(&[
            ("first@example.net", "0100018f-call-1"),
            ("second@example.net", "0100018f-call-2"),
            ("third@example.net", "0100018f-call-3"),
        ])
        .await;
    assert_eq!(s.last_event(&id).await, "sent");

    let body = s
        .apply(&s.signed(&bounce("0100018f-call-3", "third@example.net", "Permanent")))
        .await;
    assert_eq!(body["email_id"], id.as_str());
    assert_eq!(body["last_event"], "bounced");
    assert_eq!(
        s.recipient(&id, "third@example.net").await.status,
        "bounced"
    );
    assert_eq!(
        s.recipient(&id, "first@example.net").await.status,
        "accepted"
    );
    assert_eq!(
        s.recipient(&id, "second@example.net").await.status,
        "accepted"
    );
    let listed = s
        .suppression("third@example.net")
        .await
        .expect("suppressed");
    assert_eq!(listed.reason, "bounce");
    assert_eq!(listed.source_id, Some(Uuid::parse_str(&id).unwrap()));
    assert!(s.suppression("first@example.net").await.is_none());
    let payload = receiver.wait_for(1, WAIT).await[0].json();
    assert_eq!(payload["type"], "email.bounced");
    assert_eq!(payload["data"]["email_id"], id.as_str());
}

#[tokio::test]
async fn delays_opens_clicks_and_rejections_follow_the_status_order() {
    let s = setup().await;
    let receiver = WebhookReceiver::start(vec![]).await;
    s.webhook(
        &receiver,
        &[
            "email.delivery_delayed",
            "email.opened",
            "email.clicked",
            "email.failed",
            "email.sent",
        ],
    )
    .await;
    let ses_id = "0100018f-engagement-000000";
    let to = "reader@example.net";
    let id = s.sent_email(&[to], ses_id).await;

    // SES's Send repeats what the worker announced when SES took the message: nothing new.
    let body = s
        .apply(&s.signed(&ses_event("Send", ses_id, &[to], "send", json!({}))))
        .await;
    assert_eq!(body["last_event"], "sent");

    s.apply(&s.signed(&ses_event(
        "DeliveryDelay",
        ses_id,
        &[to],
        "deliveryDelay",
        json!({
            "delayType": "MailboxFull",
            "expirationTime": timestamp(Utc::now() + TimeDelta::hours(6)),
            "delayedRecipients": [{"emailAddress": to, "status": "4.2.2", "diagnosticCode": "smtp; 452 4.2.2 mailbox full"}],
            "timestamp": timestamp(Utc::now()),
        }),
    )))
    .await;
    assert_eq!(s.last_event(&id).await, "delivery_delayed");
    assert_eq!(s.recipient(&id, to).await.status, "delivery_delayed");

    s.apply(&s.signed(&delivery(ses_id, to))).await;
    s.apply(&s.signed(&ses_event(
        "Click",
        ses_id,
        &[to],
        "click",
        json!({"ipAddress": "192.0.2.1", "link": "https://acme.test/welcome", "linkTags": {},
               "timestamp": "2026-05-29T10:05:00.000Z", "userAgent": "Mozilla/5.0"}),
    )))
    .await;
    assert_eq!(s.last_event(&id).await, "clicked");
    // An open reported after the click does not move the status back.
    s.apply(&s.signed(&ses_event(
        "Open",
        ses_id,
        &[to],
        "open",
        json!({"ipAddress": "192.0.2.1", "timestamp": "2026-05-29T10:04:00.000Z", "userAgent": "Mozilla/5.0"}),
    )))
    .await;
    assert_eq!(s.last_event(&id).await, "clicked");
    // A rejection is final.
    s.apply(&s.signed(&ses_event(
        "Reject",
        ses_id,
        &[to],
        "reject",
        json!({"reason": "Bad content"}),
    )))
    .await;
    assert_eq!(s.last_event(&id).await, "failed");
    assert_eq!(s.recipient(&id, to).await.status, "failed");

    receiver.wait_for(5, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let payloads: Vec<Value> = receiver.received().iter().map(|d| d.json()).collect();
    let of = |kind: &str| {
        payloads
            .iter()
            .find(|p| p["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {payloads:?}"))
            .clone()
    };
    assert_eq!(
        of("email.delivery_delayed")["data"]["delivery_delayed"]["reason"],
        "MailboxFull"
    );
    assert_eq!(
        of("email.clicked")["data"]["click"],
        json!({"ipAddress": "192.0.2.1", "link": "https://acme.test/welcome",
               "timestamp": "2026-05-29T10:05:00.000Z", "userAgent": "Mozilla/5.0"})
    );
    assert_eq!(
        of("email.opened")["data"]["open"],
        json!({"ipAddress": "192.0.2.1", "timestamp": "2026-05-29T10:04:00.000Z", "userAgent": "Mozilla/5.0"})
    );
    assert_eq!(
        of("email.failed")["data"]["failed"]["reason"],
        "Amazon SES rejected the email: Bad content"
    );
    // The worker's email.sent only: SES's Send added none.
    let sent = payloads
        .iter()
        .filter(|p| p["type"] == "email.sent")
        .count();
    assert_eq!(sent, 1, "{payloads:?}");
    assert_eq!(payloads.len(), 5, "{payloads:?}");
}

#[tokio::test]
async fn events_about_unknown_emails_are_acknowledged_and_dropped() {
    let s = setup().await;
    let to = "jane@example.net";
    let id = s.sent_email(&[to], "0100018f-known-000000").await;
    let before = s.snapshot().await;
    let message = s.signed(&delivery("0100018f-someone-elses", to));
    let (status, body) = s.post(&message).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], "unknown_email");
    assert_eq!(s.snapshot().await, before);

    // Nothing was recorded for it, so once the id is known the same message applies.
    email::Entity::update_many()
        .col_expr(
            email::Column::ProviderMessageId,
            Expr::value(Some("0100018f-someone-elses")),
        )
        .filter(email::Column::Id.eq(Uuid::parse_str(&id).unwrap()))
        .exec(&s.db)
        .await
        .unwrap();
    s.apply(&message).await;
    assert_eq!(s.last_event(&id).await, "delivered");

    // Kinds that say nothing about an email are acknowledged too.
    let notice =
        s.signed(&json!({"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "ok"}));
    let (status, body) = s.post(&notice).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], "ignored");
    // A verified notification whose Message is not an SES event is refused, and writes nothing.
    let before = s.snapshot().await;
    let garbage = s.signed(&json!({"eventType": "Bounce", "mail": {"messageId": "m"}}));
    let (status, body) = s.post(&garbage).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["name"], "validation_error");
    assert_eq!(s.snapshot().await, before);
}

#[tokio::test]
async fn subscription_confirmation_fetches_the_subscribe_url_once() {
    let s = setup().await;
    let mut message = confirmation(
        "SubscriptionConfirmation",
        &s.sns.url("cert.pem"),
        &s.sns
            .url("confirm?Action=ConfirmSubscription&Token=2336412f37fb"),
    );
    KEY.sign(&mut message, "1");
    let (status, body) = s.post(&message).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], "subscription_confirmed");
    assert_eq!(s.sns.confirm_hits(), 1);

    let mut unsubscribed = confirmation(
        "UnsubscribeConfirmation",
        &s.sns.url("cert.pem"),
        &s.sns
            .url("confirm?Action=ConfirmSubscription&Token=2336412f37fb"),
    );
    KEY.sign(&mut unsubscribed, "2");
    let (status, body) = s.post(&unsubscribed).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], "unsubscribe_acknowledged");
    assert_eq!(
        s.sns.confirm_hits(),
        1,
        "an unsubscribe does not re-subscribe"
    );
    assert_eq!(
        s.sns.cert_hits(),
        1,
        "the certificate was fetched once and cached"
    );
}
