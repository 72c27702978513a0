//! Webhooks end to end: endpoints registered through the API, events written by sending and by domain
//! changes, signed deliveries to a receiver on loopback, retries, `Retry-After`, `410 Gone`, replays,
//! secret rotation and the endpoint disabled after failing for too long.
//!
//! The official verifiers (`svix`, `standardwebhooks`) check these deliveries in `tests/compat/`.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};
use common::{TestApp, expect_error, json};
use opensend_core::webhook::WebhookSecret;
use opensend_store::entities::webhook;
use opensend_test_support::webhook_receiver::{Delivered, Reply, WebhookReceiver};
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Database, EntityTrait, QueryFilter};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// An app that may call loopback endpoints and retries at once (tests set their own schedule otherwise).
async fn app_with(extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("ALLOW_PRIVATE_WEBHOOK_URLS", "true"),
        ("WEBHOOK_RETRY_DELAYS_SECONDS", "0,0,0"),
    ];
    for (name, value) in extra {
        vars.retain(|(n, _)| n != name);
        vars.push((name, value));
    }
    TestApp::spawn_with(&vars).await
}

/// Registers `url` for `events`; returns (id, whsec secret).
async fn register(app: &TestApp, token: &str, url: &str, events: &[&str]) -> (String, String) {
    let (status, body) = json(
        app.authed(Method::POST, "/webhooks", token)
            .json(&json!({"endpoint": url, "events": events}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["object"], "webhook");
    (
        body["id"].as_str().unwrap().to_owned(),
        body["signing_secret"].as_str().unwrap().to_owned(),
    )
}

async fn send_one(app: &TestApp, token: &str) -> String {
    let (status, body) = app
        .send(
            token,
            &json!({
                "from": "Acme <hello@acme.test>",
                "to": ["someone@example.net"],
                "subject": "Hello",
                "text": "Hi",
                "tags": [{"name": "campaign", "value": "welcome"}],
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

fn secret(whsec: &str) -> WebhookSecret {
    let bytes = STANDARD
        .decode(whsec.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 secret");
    WebhookSecret::from_bytes(&bytes).expect("secret length")
}

/// The signatures of a delivery that `whsec` produces; what a verifier recomputes.
fn expected_signature(whsec: &str, delivered: &Delivered) -> String {
    let timestamp: i64 = delivered.header("webhook-timestamp").parse().unwrap();
    secret(whsec).sign(delivered.header("webhook-id"), timestamp, &delivered.body)
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let (status, body) = json(app.authed(Method::GET, path, token).send().await.unwrap()).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Polls the endpoint's deliveries until `check` holds for the newest one.
async fn wait_for_delivery(
    app: &TestApp,
    token: &str,
    webhook_id: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        let list = get(app, token, &format!("/webhooks/{webhook_id}/deliveries")).await;
        if let Some(newest) = list["data"].as_array().and_then(|d| d.first()) {
            if check(newest) {
                return newest.clone();
            }
            last = newest.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the delivery never reached the expected state; last seen: {last}");
}

#[tokio::test]
async fn endpoints_are_created_listed_read_changed_and_deleted() {
    let app = app_with(&[]).await;
    let (_, token) = app.tenant().await;
    let receiver = WebhookReceiver::start(vec![]).await;
    let (id, whsec) = register(
        &app,
        &token,
        &receiver.url(),
        &["email.sent", "email.sent", "domain.created"],
    )
    .await;
    assert!(whsec.starts_with("whsec_"));
    assert_eq!(STANDARD.decode(&whsec[6..]).unwrap().len(), 32);

    let listed = get(&app, &token, "/webhooks").await;
    assert_eq!(listed["object"], "list");
    assert_eq!(listed["data"][0]["id"], id.as_str());
    assert_eq!(
        listed["data"][0]["events"],
        json!(["email.sent", "domain.created"])
    );
    assert_eq!(listed["data"][0]["status"], "enabled");
    assert!(listed["data"][0].get("signing_secret").is_none());

    let shown = get(&app, &token, &format!("/webhooks/{id}")).await;
    assert_eq!(shown["object"], "webhook");
    assert_eq!(shown["endpoint"], receiver.url());
    assert_eq!(shown["signing_secret"], whsec.as_str());
    assert_eq!(shown["recent_deliveries"], json!([]));

    // The `url` / `event_types` aliases, and a status change.
    let (status, body) = json(
        app.authed(Method::PATCH, &format!("/webhooks/{id}"), &token)
            .json(&json!({"event_types": ["email.bounced"], "status": "disabled"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, &body["id"]), (200, &json!(id)), "{body}");
    let shown = get(&app, &token, &format!("/webhooks/{id}")).await;
    assert_eq!(shown["events"], json!(["email.bounced"]));
    assert_eq!(shown["status"], "disabled");

    let (status, body) = json(
        app.authed(Method::DELETE, &format!("/webhooks/{id}"), &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"object": "webhook", "id": id, "deleted": true})
    );
    expect_error(
        app.authed(Method::GET, &format!("/webhooks/{id}"), &token)
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn bad_registrations_are_refused_and_nothing_is_written() {
    let app = app_with(&[]).await;
    let (_, token) = app.tenant().await;
    let cases = [
        (
            json!({"events": ["email.sent"]}),
            422,
            "missing_required_field",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:9/hook"}),
            422,
            "missing_required_field",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:9/hook", "events": []}),
            422,
            "validation_error",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:9/hook", "events": ["email.queued"]}),
            422,
            "validation_error",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:9/hook", "events": ["EMAIL.SENT"]}),
            422,
            "validation_error",
        ),
        (
            json!({"endpoint": "ftp://example.com/hook", "events": ["email.sent"]}),
            422,
            "validation_error",
        ),
        (
            json!({"endpoint": "not a url", "events": ["email.sent"]}),
            422,
            "validation_error",
        ),
        (
            json!({"endpoint": format!("http://127.0.0.1:9/{}", "a".repeat(3000)), "events": ["email.sent"]}),
            422,
            "validation_error",
        ),
        (
            json!({"endpoint": 5, "events": ["email.sent"]}),
            422,
            "validation_error",
        ),
    ];
    for (body, status, name) in cases {
        let error = expect_error(
            app.authed(Method::POST, "/webhooks", &token)
                .json(&body)
                .send()
                .await
                .unwrap(),
            status,
            name,
        )
        .await;
        assert!(!error["message"].as_str().unwrap().is_empty());
    }
    let error = expect_error(
        app.authed(Method::POST, "/webhooks", &token)
            .json(&json!({"endpoint": "http://127.0.0.1:9/hook", "events": ["email.sent", "email.nope"]}))
            .send()
            .await
            .unwrap(),
        422,
        "validation_error",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("email.nope"),
        "{error}"
    );
    assert_eq!(get(&app, &token, "/webhooks").await["data"], json!([]));
}

#[tokio::test]
async fn a_sent_email_is_announced_signed_with_resend_shaped_data() {
    let app = app_with(&[]).await;
    let (_, token) = app.tenant().await;
    let receiver = WebhookReceiver::start(vec![]).await;
    let (_, whsec) = register(&app, &token, &receiver.url(), &["email.sent"]).await;
    let email_id = send_one(&app, &token).await;

    let delivered = receiver.wait_for(1, WAIT).await.remove(0);
    let payload = delivered.json();
    assert_eq!(payload["type"], "email.sent", "{payload}");
    assert!(DateTime::parse_from_rfc3339(payload["created_at"].as_str().unwrap()).is_ok());
    let data = &payload["data"];
    assert_eq!(data["email_id"], email_id.as_str());
    assert_eq!(data["from"], "Acme <hello@acme.test>");
    assert_eq!(data["to"], json!(["someone@example.net"]));
    assert_eq!(data["subject"], "Hello");
    assert_eq!(data["tags"], json!({"campaign": "welcome"}));
    let mut fields: Vec<&str> = data
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["created_at", "email_id", "from", "subject", "tags", "to"],
        "no headers key without custom headers, and nothing internal"
    );

    // Both header sets, the same values in each, and a signature the secret reproduces.
    for name in ["id", "timestamp", "signature"] {
        assert_eq!(
            delivered.header(&format!("svix-{name}")),
            delivered.header(&format!("webhook-{name}"))
        );
    }
    assert!(delivered.header("webhook-id").starts_with("msg_"));
    assert_eq!(delivered.header("content-type"), "application/json");
    assert_eq!(
        delivered.header("webhook-signature"),
        expected_signature(&whsec, &delivered)
    );
    let timestamp: i64 = delivered.header("webhook-timestamp").parse().unwrap();
    assert!((Utc::now().timestamp() - timestamp).abs() < 300);

    // Only subscribed types: `email.queued` never goes out, and nothing else was delivered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn failures_are_retried_with_the_same_message_id_until_one_succeeds() {
    let app = app_with(&[]).await;
    let (org, token) = app.tenant().await;
    let receiver = WebhookReceiver::start(vec![
        Reply::status(500).body("down for\0maintenance"),
        Reply::status(302),
    ])
    .await;
    let (webhook_id, _) = register(&app, &token, &receiver.url(), &["email.sent"]).await;
    send_one(&app, &token).await;

    let requests = receiver.wait_for(3, WAIT).await;
    let ids: Vec<&str> = requests.iter().map(|r| r.header("svix-id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(
        requests.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 302, 200]
    );

    let delivery =
        wait_for_delivery(&app, &token, &webhook_id, |d| d["status"] == "succeeded").await;
    assert_eq!(delivery["attempts"], 3);
    assert_eq!(delivery["message_id"], ids[0]);
    assert_eq!(delivery["event_type"], "email.sent");
    assert_eq!(delivery["status_code"], 200);
    let history = delivery["history"].as_array().unwrap();
    assert_eq!(
        history
            .iter()
            .map(|a| a["status_code"].clone())
            .collect::<Vec<_>>(),
        [json!(500), json!(302), json!(200)]
    );
    // NUL (which PostgreSQL text refuses) is replaced, not allowed to sink the record.
    assert_eq!(history[0]["response"], "down for\u{FFFD}maintenance");
    assert_eq!(history[0]["succeeded"], false);
    assert!(history[0]["next_attempt_at"].is_string());
    assert_eq!(history[2]["succeeded"], true);
    assert!(history[2]["duration_ms"].is_number());

    // The endpoint recovered: no failure streak is left to disable it.
    let endpoint = app
        .store
        .webhooks()
        .get(org, webhook_id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(endpoint.failing_since.is_none());
}

#[tokio::test]
async fn a_delivery_gives_up_after_its_attempts_and_keeps_1_kib_of_the_answer() {
    let app = app_with(&[("WEBHOOK_RETRY_DELAYS_SECONDS", "0")]).await;
    let (_, token) = app.tenant().await;
    let long = "é".repeat(2000);
    let receiver = WebhookReceiver::start(vec![
        Reply::status(500).body(&long),
        Reply::status(500).body(&long),
        Reply::status(500),
    ])
    .await;
    let (webhook_id, _) = register(&app, &token, &receiver.url(), &["email.sent"]).await;
    send_one(&app, &token).await;
    let delivery = wait_for_delivery(&app, &token, &webhook_id, |d| d["status"] == "failed").await;
    assert_eq!(delivery["attempts"], 2);
    assert!(delivery["next_attempt_at"].is_null());
    let response = delivery["response"].as_str().unwrap();
    assert!(
        response.len() <= 1024 && response.len() >= 1022,
        "{}",
        response.len()
    );
    assert!(response.chars().all(|c| c == 'é'));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let app = app_with(&[]).await;
    let (_, token) = app.tenant().await;
    let receiver = WebhookReceiver::start(vec![Reply::status(429).retry_after("120")]).await;
    let (webhook_id, _) = register(&app, &token, &receiver.url(), &["email.sent"]).await;
    send_one(&app, &token).await;
    let delivery = wait_for_delivery(&app, &token, &webhook_id, |d| {
        d["attempts"] == 1 && d["status_code"] == 429
    })
    .await;
    assert_eq!(delivery["status"], "pending");
    let last: DateTime<Utc> = delivery["last_attempt_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let next: DateTime<Utc> = delivery["next_attempt_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!((next - last).num_seconds(), 120, "{delivery}");
}

#[tokio::test]
async fn gone_disables_the_endpoint() {
    let app = app_with(&[]).await;
    let (_, token) = app.tenant().await;
    let receiver = WebhookReceiver::start(vec![Reply::status(410)]).await;
    let (webhook_id, _) = register(&app, &token, &receiver.url(), &["email.sent"]).await;
    send_one(&app, &token).await;
    let delivery = wait_for_delivery(&app, &token, &webhook_id, |d| d["status"] == "failed").await;
    assert_eq!(delivery["status_code"], 410);
    let shown = get(&app, &token, &format!("/webhooks/{webhook_id}")).await;
    assert_eq!(shown["status"], "disabled");
    assert!(shown["disabled_reason"].as_str().unwrap().contains("410"));

    // A disabled endpoint gets nothing more, and its deliveries cannot be replayed until it is enabled.
    send_one(&app, &token).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.received().len(), 1);
    let delivery_id = delivery["id"].as_str().unwrap();
    expect_error(
        app.authed(
            Method::POST,
            &format!("/webhooks/{webhook_id}/deliveries/{delivery_id}/replay"),
            &token,
        )
        .send()
        .await
        .unwrap(),
        422,
        "validation_error",
    )
    .await;
}

#[tokio::test]
async fn an_endpoint_failing_for_too_long_is_disabled_and_the_organization_is_told() {
    let app = app_with(&[
        ("WEBHOOK_DISABLE_AFTER_HOURS", "1"),
        ("WEBHOOK_RETRY_DELAYS_SECONDS", "0,0,0,0,0,0,0,0,0,0"),
    ])
    .await;
    let (_, token) = app.tenant().await;
    let receiver = WebhookReceiver::start((0..20).map(|_| Reply::status(503)).collect()).await;
    let (webhook_id, _) = register(&app, &token, &receiver.url(), &["email.sent"]).await;
    // As if every attempt had been failing for two hours already.
    set_column(
        &app,
        &webhook_id,
        webhook::Column::FailingSince,
        Utc::now() - TimeDelta::hours(2),
    )
    .await;
    send_one(&app, &token).await;
    receiver.wait_for(1, WAIT).await;

    let shown = wait_until_disabled(&app, &token, &webhook_id).await;
    assert!(
        shown["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("failed"),
        "{shown}"
    );
    let log = get(&app, &token, "/event-log").await;
    let entries = log["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(entries[0]["kind"], "webhook.disabled");
    assert_eq!(entries[0]["data"]["webhook_id"], webhook_id.as_str());
    assert!(
        entries[0]["message"]
            .as_str()
            .unwrap()
            .contains(&webhook_id)
    );
    // Another organization's log does not show it.
    let (_, other) = app.tenant().await;
    assert_eq!(get(&app, &other, "/event-log").await["data"], json!([]));
}

/// Moves a timestamp of an endpoint, as time passing would.
async fn set_column(app: &TestApp, webhook_id: &str, column: webhook::Column, at: DateTime<Utc>) {
    let db = Database::connect(app.db.url()).await.unwrap();
    webhook::Entity::update_many()
        .col_expr(column, Expr::value(Some(at)))
        .filter(webhook::Column::Id.eq(webhook_id.parse::<uuid::Uuid>().unwrap()))
        .exec(&db)
        .await
        .unwrap();
    let _ = db.close().await;
}

async fn wait_until_disabled(app: &TestApp, token: &str, webhook_id: &str) -> Value {
    for _ in 0..400 {
        let shown = get(app, token, &format!("/webhooks/{webhook_id}")).await;
        if shown["status"] == "disabled" {
            return shown;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the endpoint was never disabled");
}

#[tokio::test]
async fn a_replay_sends_the_same_message_again() {
    let app = app_with(&[]).await;
    let (_, token) = app.tenant().await;
    let receiver = WebhookReceiver::start(vec![]).await;
    let (webhook_id, whsec) = register(&app, &token, &receiver.url(), &["email.sent"]).await;
    send_one(&app, &token).await;
    let first = receiver.wait_for(1, WAIT).await.remove(0);
    let delivery =
        wait_for_delivery(&app, &token, &webhook_id, |d| d["status"] == "succeeded").await;
    let delivery_id = delivery["id"].as_str().unwrap();

    let (status, body) = json(
        app.authed(
            Method::POST,
            &format!("/webhooks/{webhook_id}/deliveries/{delivery_id}/replay"),
            &token,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["replay_of"], delivery_id);
    let replayed = receiver.wait_for(2, WAIT).await.remove(1);
    assert_eq!(replayed.header("svix-id"), first.header("svix-id"));
    assert_eq!(replayed.body, first.body);
    assert_eq!(
        replayed.header("webhook-signature"),
        expected_signature(&whsec, &replayed)
    );
    let newest = wait_for_delivery(&app, &token, &webhook_id, |d| {
        d["status"] == "succeeded" && d["replay_of"] == delivery_id
    })
    .await;
    assert_eq!(newest["id"], body["id"]);

    // A delivery of another endpoint, or an unknown one, is not found.
    expect_error(
        app.authed(
            Method::POST,
            &format!(
                "/webhooks/{webhook_id}/deliveries/{}/replay",
                uuid::Uuid::now_v7()
            ),
            &token,
        )
        .send()
        .await
        .unwrap(),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn after_a_rotation_both_secrets_sign_until_the_old_one_expires() {
    let app = app_with(&[]).await;
    let (_, token) = app.tenant().await;
    let receiver = WebhookReceiver::start(vec![]).await;
    let (webhook_id, old) = register(&app, &token, &receiver.url(), &["email.sent"]).await;
    let (status, body) = json(
        app.authed(
            Method::POST,
            &format!("/webhooks/{webhook_id}/rotate-secret"),
            &token,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let new = body["signing_secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let until: DateTime<Utc> = body["previous_secret_expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (until - Utc::now() - TimeDelta::hours(24))
            .num_seconds()
            .abs()
            < 60
    );
    assert_eq!(
        get(&app, &token, &format!("/webhooks/{webhook_id}")).await["signing_secret"],
        new.as_str()
    );

    send_one(&app, &token).await;
    let delivered = receiver.wait_for(1, WAIT).await.remove(0);
    let signatures: Vec<&str> = delivered.header("webhook-signature").split(' ').collect();
    assert_eq!(
        signatures,
        [
            expected_signature(&new, &delivered),
            expected_signature(&old, &delivered)
        ]
    );

    // Once the overlap is over, only the new secret signs.
    set_column(
        &app,
        &webhook_id,
        webhook::Column::PreviousSecretExpiresAt,
        Utc::now() - TimeDelta::seconds(1),
    )
    .await;
    send_one(&app, &token).await;
    let delivered = receiver.wait_for(2, WAIT).await.remove(1);
    assert_eq!(
        delivered.header("webhook-signature"),
        expected_signature(&new, &delivered)
    );
}

#[tokio::test]
async fn the_database_holds_no_plaintext_secret() {
    let app = app_with(&[]).await;
    let (_, token) = app.tenant().await;
    let (webhook_id, whsec) =
        register(&app, &token, "http://127.0.0.1:9/in", &["email.sent"]).await;
    let raw = STANDARD.decode(&whsec[6..]).unwrap();
    let stored = webhook::Entity::find_by_id(webhook_id.parse::<uuid::Uuid>().unwrap())
        .one(&Database::connect(app.db.url()).await.unwrap())
        .await
        .unwrap()
        .unwrap();
    let everything = format!("{stored:?}");
    assert!(!everything.contains(&whsec));
    assert!(!everything.contains(&whsec[6..]));
    assert!(
        !stored
            .secret_sealed
            .windows(raw.len())
            .any(|w| w == raw.as_slice())
    );
    assert!(stored.secret_sealed.len() > raw.len());
}

#[tokio::test]
async fn other_organizations_cannot_see_or_touch_an_endpoint() {
    let app = app_with(&[]).await;
    let (_, token) = app.tenant().await;
    let (_, intruder) = app.tenant().await;
    let (webhook_id, _) = register(&app, &token, "http://127.0.0.1:9/in", &["email.sent"]).await;
    let delivery = uuid::Uuid::now_v7();
    for (method, path) in [
        (Method::GET, format!("/webhooks/{webhook_id}")),
        (Method::PATCH, format!("/webhooks/{webhook_id}")),
        (Method::DELETE, format!("/webhooks/{webhook_id}")),
        (
            Method::POST,
            format!("/webhooks/{webhook_id}/rotate-secret"),
        ),
        (Method::GET, format!("/webhooks/{webhook_id}/deliveries")),
        (
            Method::GET,
            format!("/webhooks/{webhook_id}/deliveries/{delivery}"),
        ),
        (
            Method::POST,
            format!("/webhooks/{webhook_id}/deliveries/{delivery}/replay"),
        ),
    ] {
        expect_error(
            app.authed(method, &path, &intruder)
                .json(&json!({"status": "disabled"}))
                .send()
                .await
                .unwrap(),
            404,
            "not_found",
        )
        .await;
    }
    assert_eq!(get(&app, &intruder, "/webhooks").await["data"], json!([]));
    assert_eq!(
        get(&app, &token, &format!("/webhooks/{webhook_id}")).await["status"],
        "enabled"
    );
}

#[tokio::test]
async fn a_slow_endpoint_does_not_hold_up_the_others() {
    let app = app_with(&[("WEBHOOK_ENDPOINT_CONCURRENCY", "2")]).await;
    let (_, token) = app.tenant().await;
    let slow = WebhookReceiver::start(
        (0..20)
            .map(|_| Reply::status(200).delay(Duration::from_millis(500)))
            .collect(),
    )
    .await;
    let fast = WebhookReceiver::start(vec![]).await;
    register(&app, &token, &slow.url(), &["email.sent"]).await;
    register(&app, &token, &fast.url(), &["email.sent"]).await;
    for _ in 0..12 {
        send_one(&app, &token).await;
    }
    fast.wait_for(12, WAIT).await;
    // Two at a time, half a second each: the slow endpoint is far from done when the fast one is.
    assert!(slow.received().len() < 12, "{}", slow.received().len());
    slow.wait_for(12, Duration::from_secs(60)).await;
}

#[tokio::test]
async fn domain_changes_are_announced() {
    let app = app_with(&[]).await;
    let (_, token) = app.tenant().await;
    let receiver = WebhookReceiver::start(vec![]).await;
    register(
        &app,
        &token,
        &receiver.url(),
        &["domain.created", "domain.deleted"],
    )
    .await;
    let (status, domain) = json(
        app.authed(Method::POST, "/domains", &token)
            .json(&json!({"name": "example.org"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{domain}");
    let id = domain["id"].as_str().unwrap();
    app.authed(Method::DELETE, &format!("/domains/{id}"), &token)
        .send()
        .await
        .unwrap();
    let delivered = receiver.wait_for(2, WAIT).await;
    let mut types: Vec<Value> = delivered.iter().map(|d| d.json()["type"].clone()).collect();
    types.sort_by_key(|t| t.to_string());
    assert_eq!(types, [json!("domain.created"), json!("domain.deleted")]);
    let created = delivered
        .iter()
        .map(Delivered::json)
        .find(|p| p["type"] == "domain.created")
        .unwrap();
    assert_eq!(created["data"]["id"], id);
    assert_eq!(created["data"]["name"], "example.org");
    assert_eq!(created["data"]["status"], "not_started");
    assert!(created["data"]["records"].as_array().unwrap().len() >= 3);
    assert!(created["data"]["records"][0]["record"].is_string());
    // Resend's `DomainEventData`, its records exactly as the API shows them; the deletion describes what
    // was deleted.
    let expected = json!({
        "id": id,
        "name": "example.org",
        "status": "not_started",
        "created_at": domain["created_at"],
        "region": "us-east-1",
        "records": domain["records"],
    });
    assert_eq!(created["data"], expected);
    let deleted = delivered
        .iter()
        .map(Delivered::json)
        .find(|p| p["type"] == "domain.deleted")
        .unwrap();
    assert_eq!(deleted["data"], expected);
}

#[tokio::test]
async fn endpoints_on_private_addresses_are_refused_without_naming_them() {
    let dns = opensend_test_support::dns::TestDns::start().await;
    dns.set_a("internal.example.com", "10.1.2.3".parse().unwrap());
    dns.set_a("metadata.example.com", "169.254.169.254".parse().unwrap());
    let resolver = dns.addr().to_string();
    let app = TestApp::spawn_with(&[
        ("DNS_RESOLVER", resolver.as_str()),
        ("DNS_TIMEOUT_SECONDS", "1"),
    ])
    .await;
    let (_, token) = app.tenant().await;
    const NOT_PUBLIC: &str =
        "`endpoint` is not a public address; webhooks can only be delivered to public addresses";
    for (endpoint, expected) in [
        ("http://127.0.0.1/hook", NOT_PUBLIC),
        ("http://[::1]/hook", NOT_PUBLIC),
        ("https://10.0.0.8/hook", NOT_PUBLIC),
        ("http://169.254.169.254/latest/meta-data", NOT_PUBLIC),
        ("http://[::ffff:127.0.0.1]/hook", NOT_PUBLIC),
        ("https://internal.example.com/hook", NOT_PUBLIC),
        ("https://metadata.example.com/hook", NOT_PUBLIC),
        (
            "https://user:pw@hooks.example.com/hook",
            "`endpoint` must not contain a user name or password",
        ),
    ] {
        let error = expect_error(
            app.authed(Method::POST, "/webhooks", &token)
                .json(&json!({"endpoint": endpoint, "events": ["email.sent"]}))
                .send()
                .await
                .unwrap(),
            422,
            "validation_error",
        )
        .await;
        let message = error["message"].as_str().unwrap();
        assert_eq!(message, expected, "{endpoint}");
        // Nothing of what the name resolved to, nor of the address's kind, reaches the tenant.
        for hidden in [
            "10.1.2.3",
            "169.254",
            "127.0.0.1",
            "loopback",
            "private address",
            "link-local",
        ] {
            assert!(!message.contains(hidden), "{endpoint}: {message}");
        }
    }
    assert_eq!(get(&app, &token, "/webhooks").await["data"], json!([]));
}

#[tokio::test]
async fn an_organization_registers_at_most_its_limit_of_endpoints() {
    let app = app_with(&[("WEBHOOK_MAX_ENDPOINTS_PER_ORG", "3")]).await;
    let (_, token) = app.tenant().await;
    let receiver = WebhookReceiver::start(vec![]).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            register(&app, &token, &receiver.url(), &["email.sent"])
                .await
                .0,
        );
    }
    let error = expect_error(
        app.authed(Method::POST, "/webhooks", &token)
            .json(&json!({"endpoint": receiver.url(), "events": ["email.sent"]}))
            .send()
            .await
            .unwrap(),
        422,
        "validation_error",
    )
    .await;
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("3 webhook endpoints")
            && message.contains("WEBHOOK_MAX_ENDPOINTS_PER_ORG"),
        "{message}"
    );
    let listed = get(&app, &token, "/webhooks").await;
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        3,
        "nothing written"
    );

    // Another organization has a limit of its own; and a deleted endpoint makes room.
    let (_, other) = app.tenant().await;
    register(&app, &other, &receiver.url(), &["email.sent"]).await;
    let (status, body) = json(
        app.authed(Method::DELETE, &format!("/webhooks/{}", ids[0]), &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    register(&app, &token, &receiver.url(), &["email.sent"]).await;

    // Many at once: exactly the limit is registered, the rest are refused.
    let (_, racer) = app.tenant().await;
    let answers = futures::future::join_all((0..12).map(|_| async {
        app.authed(Method::POST, "/webhooks", &racer)
            .json(&json!({"endpoint": receiver.url(), "events": ["email.sent"]}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }))
    .await;
    assert_eq!(
        answers.iter().filter(|s| **s == 201).count(),
        3,
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|s| **s == 422).count(),
        9,
        "{answers:?}"
    );
    let listed = get(&app, &racer, "/webhooks").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 3);
}

/// One tenant's backlog does not hold up another's webhooks: the dispatcher shares every claim among the
/// organizations with due deliveries.
#[tokio::test]
async fn a_tenants_backlog_does_not_hold_up_another_tenants_webhooks() {
    const BACKLOG: usize = 200;
    // Four requests at a time, each answered after a few milliseconds, so the backlog takes a while.
    let app = app_with(&[("WEBHOOK_CONCURRENCY", "4")]).await;
    let receiver = WebhookReceiver::start(
        (0..=BACKLOG)
            .map(|_| Reply::status(200).delay(Duration::from_millis(5)))
            .collect(),
    )
    .await;
    let (busy, busy_token) = app.tenant().await;
    let (quiet, quiet_token) = app.tenant().await;
    register(&app, &busy_token, &receiver.url(), &["email.sent"]).await;
    register(&app, &quiet_token, &receiver.url(), &["email.sent"]).await;

    let queue = app.store.webhook_queue();
    let backlog = (0..BACKLOG)
        .map(|n| json!({"tenant": "busy", "n": n}))
        .collect();
    queue
        .publish(busy, opensend_core::webhook::EventType::EmailSent, backlog)
        .await
        .unwrap();
    queue
        .publish(
            quiet,
            opensend_core::webhook::EventType::EmailSent,
            vec![json!({"tenant": "quiet"})],
        )
        .await
        .unwrap();
    app.state.webhook_wakeup.notify_one();

    let delivered = receiver.wait_for(BACKLOG + 1, WAIT).await;
    let tenants: Vec<String> = delivered
        .iter()
        .map(|d| {
            d.json()["data"]["tenant"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let quiet_at = tenants
        .iter()
        .position(|t| t == "quiet")
        .expect("the quiet tenant's webhook arrived");
    // It was queued a moment after the whole backlog; sharing the claims, it goes out with the first few.
    assert!(
        quiet_at < BACKLOG / 4,
        "the quiet tenant's webhook arrived after {quiet_at} of the busy tenant's {BACKLOG}"
    );
    assert_eq!(tenants.iter().filter(|t| *t == "busy").count(), BACKLOG);
}
