//! The ingester's job routes: what one run of each job does. (Who may call them: `inbound_email.rs`.)

mod common;

use chrono::{TimeDelta, Utc};
use common::{TestApp, expect_error, json};
use opensend_store::entities::{email, webhook_message};
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Database, EntityTrait, QueryFilter};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

async fn run_job(app: &TestApp, name: &str) -> (u16, Value) {
    let token = app
        .state
        .config
        .secrets
        .ingester_job_token
        .as_ref()
        .expect("a generated job token")
        .expose_secret()
        .to_owned();
    json(
        app.client
            .post(format!("{}/jobs/{name}", app.ingester))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn cleanup_deletes_what_is_older_than_the_retention_period() {
    let app = TestApp::spawn_with(&[
        ("RETENTION_DAYS", "30"),
        ("ALLOW_PRIVATE_WEBHOOK_URLS", "true"),
    ])
    .await;
    let (_, token) = app.tenant().await;
    let receiver = opensend_test_support::webhook_receiver::WebhookReceiver::start(vec![]).await;
    let (status, _) = json(
        app.authed(Method::POST, "/webhooks", &token)
            .json(&json!({"endpoint": receiver.url(), "events": ["email.sent"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, sent) = app
            .send(
                &token,
                &json!({"from": "a@acme.test", "to": "r@example.com", "subject": "s", "text": "t"}),
            )
            .await;
        assert_eq!(status, 200, "{sent}");
        let id = sent["id"].as_str().unwrap().to_owned();
        app.wait_for_status(&token, &id, "sent").await;
        ids.push(id);
    }
    receiver
        .wait_for(2, std::time::Duration::from_secs(20))
        .await;

    // The first email and every webhook message are 31 days old.
    let db = Database::connect(app.db.url()).await.unwrap();
    let old = Utc::now() - TimeDelta::days(31);
    email::Entity::update_many()
        .col_expr(email::Column::CreatedAt, Expr::value(old))
        .filter(email::Column::Id.eq(ids[0].parse::<uuid::Uuid>().unwrap()))
        .exec(&db)
        .await
        .unwrap();
    webhook_message::Entity::update_many()
        .col_expr(webhook_message::Column::CreatedAt, Expr::value(old))
        .exec(&db)
        .await
        .unwrap();

    let (status, body) = run_job(&app, "cleanup").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["job"], "cleanup");
    assert_eq!(body["result"]["deleted"]["emails"], 1, "{body}");
    assert_eq!(body["result"]["deleted"]["webhook_messages"], 2, "{body}");
    let gone = app
        .authed(Method::GET, &format!("/emails/{}", ids[0]), &token)
        .send()
        .await
        .unwrap();
    expect_error(gone, 404, "not_found").await;
    let (status, _) = json(
        app.authed(Method::GET, &format!("/emails/{}", ids[1]), &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);

    // Nothing is left to delete: a second run is harmless.
    let (_, body) = run_job(&app, "cleanup").await;
    assert_eq!(body["result"]["deleted"]["emails"], 0, "{body}");
    let _ = db.close().await;
}

#[tokio::test]
async fn every_job_runs_and_unknown_ones_are_not_found() {
    let app = TestApp::spawn().await;
    for job in [
        "dispatch-scheduled",
        "retry-webhooks",
        "verify-domains",
        "cleanup",
    ] {
        let (status, body) = run_job(&app, job).await;
        assert_eq!(status, 200, "{job}: {body}");
        assert_eq!(body["object"], "job_run");
    }
    let (status, body) = run_job(&app, "no-such-job").await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("dispatch-scheduled")
    );
    // Jobs are not on the public API port.
    let response = app
        .client
        .post(format!("{}/jobs/cleanup", app.api))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn cleanup_keeps_webhook_messages_still_being_retried() {
    let app = TestApp::spawn_with(&[
        ("RETENTION_DAYS", "1"),
        ("ALLOW_PRIVATE_WEBHOOK_URLS", "true"),
        ("WEBHOOK_RETRY_DELAYS_SECONDS", "3600"),
    ])
    .await;
    let (_, token) = app.tenant().await;
    let receiver = opensend_test_support::webhook_receiver::WebhookReceiver::start(vec![
        opensend_test_support::webhook_receiver::Reply::status(500),
    ])
    .await;
    let (_, created) = json(
        app.authed(Method::POST, "/webhooks", &token)
            .json(&json!({"endpoint": receiver.url(), "events": ["email.sent"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let (_, sent) = app
        .send(
            &token,
            &json!({"from": "a@acme.test", "to": "r@example.com", "subject": "s", "text": "t"}),
        )
        .await;
    app.wait_for_status(&token, sent["id"].as_str().unwrap(), "sent")
        .await;
    receiver
        .wait_for(1, std::time::Duration::from_secs(20))
        .await;
    let db = Database::connect(app.db.url()).await.unwrap();
    webhook_message::Entity::update_many()
        .col_expr(
            webhook_message::Column::CreatedAt,
            Expr::value(Utc::now() - TimeDelta::days(3)),
        )
        .exec(&db)
        .await
        .unwrap();
    let (_, body) = run_job(&app, "cleanup").await;
    assert_eq!(body["result"]["deleted"]["webhook_messages"], 0, "{body}");
    let (_, deliveries) = json(
        app.authed(
            Method::GET,
            &format!("/webhooks/{}/deliveries", created["id"].as_str().unwrap()),
            &token,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(deliveries["data"][0]["status"], "pending", "{deliveries}");
    let _ = db.close().await;
}
