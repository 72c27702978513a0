//! `/logs` end to end: what is recorded (and what is not), redaction, Resend's shapes, pagination, tenancy,
//! retention, and the queue's writer (batches, flush, overflow).

mod common;

use chrono::{TimeDelta, Utc};
use common::{TestApp, call, expect_error, json};
use opensend_server::request_log::{QUEUE_ENTRIES, RequestLog};
use opensend_server::serve::Roles;
use opensend_store::repos::NewRequestLog;
use reqwest::Method;
use sea_orm::{ConnectionTrait, Database, Statement};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

/// Polls `GET /logs` until an entry for `method endpoint` shows up (the log is written off the request
/// path), and returns it as the list shows it. Panics with the last list seen if it never does.
async fn wait_for_log(app: &TestApp, token: &str, method: &str, endpoint: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        let (status, list) = call(app, token, Method::GET, "/logs?limit=100", None).await;
        assert_eq!(status, 200, "{list}");
        if let Some(entry) = list["data"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["method"] == method && e["endpoint"] == endpoint)
        {
            return entry.clone();
        }
        last = list;
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no log of {method} {endpoint}; last list: {last}");
}

async fn count_logs(app: &TestApp) -> i64 {
    count_logs_where(app, "1 = 1").await
}

async fn count_logs_where(app: &TestApp, condition: &str) -> i64 {
    let db = Database::connect(app.db.url()).await.unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM request_logs WHERE {condition}"),
        ))
        .await
        .unwrap()
        .unwrap();
    let n = row.try_get::<i64>("", "n").unwrap();
    let _ = db.close().await;
    n
}

fn entry(organization_id: Uuid, created_at: chrono::DateTime<Utc>) -> NewRequestLog {
    NewRequestLog {
        id: Uuid::now_v7(),
        organization_id,
        api_key_id: None,
        method: "GET".to_owned(),
        endpoint: "/domains".to_owned(),
        response_status: 200,
        user_agent: None,
        request_body: None,
        response_body: Some(r#"{"object":"list"}"#.to_owned()),
        created_at,
    }
}

#[tokio::test]
async fn a_keyed_request_is_logged_with_its_bodies_redacted() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let (status, created) = json(
        app.authed(Method::POST, "/api-keys", &token)
            .header("user-agent", "logs-test/1.0")
            .json(&json!({"name": "ci"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let new_token = created["token"].as_str().unwrap().to_owned();

    let summary = wait_for_log(&app, &token, "POST", "/api-keys").await;
    assert_eq!(summary["response_status"], 201, "{summary}");
    assert_eq!(summary["user_agent"], "logs-test/1.0", "{summary}");
    assert!(summary["created_at"].as_str().is_some(), "{summary}");
    assert!(
        summary.get("request_body").is_none(),
        "lists leave bodies out: {summary}"
    );
    let id = summary["id"].as_str().unwrap();
    assert!(Uuid::try_parse(id).is_ok(), "{summary}");

    let (status, log) = call(&app, &token, Method::GET, &format!("/logs/{id}"), None).await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(log["object"], "log", "{log}");
    assert_eq!(log["id"], id, "{log}");
    assert_eq!(log["method"], "POST", "{log}");
    assert_eq!(log["endpoint"], "/api-keys", "{log}");
    assert_eq!(log["request_body"], json!({"name": "ci"}), "{log}");
    assert_eq!(log["response_body"]["id"], created["id"], "{log}");
    assert_eq!(log["response_body"]["token"], "[redacted]", "{log}");
    assert!(!log.to_string().contains(&new_token), "{log}");
    assert!(!log.to_string().contains(&token), "{log}");
}

#[tokio::test]
async fn attachment_content_and_token_shaped_text_never_reach_the_log() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let leaked = format!("whsec_{}", "c2VjcmV0".repeat(4));
    let (status, _) = call(
        &app,
        &token,
        Method::POST,
        "/emails",
        Some(json!({
            "from": "a@unverified.test",
            "to": "r@example.com",
            "subject": format!("the secret is {leaked}"),
            "text": "t",
            "attachments": [{"filename": "a.txt", "content": "c2VjcmV0IGZpbGU="}],
        })),
    )
    .await;
    assert!((200..500).contains(&status), "{status}");
    let summary = wait_for_log(&app, &token, "POST", "/emails").await;
    assert_eq!(summary["response_status"], status);
    let id = summary["id"].as_str().unwrap();
    let (_, log) = call(&app, &token, Method::GET, &format!("/logs/{id}"), None).await;
    let body = &log["request_body"];
    assert_eq!(body["attachments"][0]["filename"], "a.txt", "{log}");
    assert_eq!(body["attachments"][0]["content"], "[redacted]", "{log}");
    assert_eq!(body["subject"], "the secret is [redacted]", "{log}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_cut_and_answered_as_null() {
    let app = TestApp::spawn().await;
    let (org, token) = app.tenant().await;
    let secret = format!("os_{}", "k".repeat(40));
    // The secret sits past the cut, the password's value before it: neither may be kept.
    let body = format!(
        r#"{{"password": "hunter2", "name": "{}", "note": "{secret}"}}"#,
        "n".repeat(100 * 1024)
    );
    let response = app
        .authed(Method::POST, "/api-keys", &token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    expect_error(response, 422, "validation_error").await;
    let summary = wait_for_log(&app, &token, "POST", "/api-keys").await;
    let id = summary["id"].as_str().unwrap();
    let (_, log) = call(&app, &token, Method::GET, &format!("/logs/{id}"), None).await;
    assert_eq!(
        log["request_body"],
        Value::Null,
        "not a whole object once cut"
    );
    assert_eq!(log["response_body"]["name"], "validation_error", "{log}");

    let stored = app
        .store
        .request_logs()
        .get(org, Uuid::try_parse(id).unwrap())
        .await
        .unwrap()
        .expect("the entry");
    let text = stored.request_body.expect("the cut body is kept");
    // A JSON string of at most 64 KiB of text (escaping its quotes adds a few bytes).
    assert!(text.len() < 65 * 1024, "{} bytes kept", text.len());
    assert!(
        text.contains(r#"\"password\": \"[redacted]\""#),
        "{}",
        &text[..200]
    );
    assert!(!text.contains("hunter2") && !text.contains(&secret));
}

#[tokio::test]
async fn requests_without_a_valid_key_are_not_logged() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let response = app.request(Method::GET, "/domains").send().await.unwrap();
    expect_error(response, 401, "missing_api_key").await;
    let response = app
        .authed(Method::GET, "/domains", "os_not-a-key")
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "invalid_api_key").await;
    // A keyed request afterwards: once it is written, the ones before it would have been too.
    let (status, _) = call(&app, &token, Method::GET, "/webhooks", None).await;
    assert_eq!(status, 200);
    wait_for_log(&app, &token, "GET", "/webhooks").await;
    assert_eq!(count_logs_where(&app, "endpoint = '/domains'").await, 0);
}

#[tokio::test]
async fn with_the_request_log_off_nothing_is_recorded() {
    let app = TestApp::spawn_with(&[("REQUEST_LOG", "false")]).await;
    let (_, token) = app.tenant().await;
    let (status, _) = call(&app, &token, Method::GET, "/webhooks", None).await;
    assert_eq!(status, 200);
    let (status, _) = call(&app, &token, Method::GET, "/domains", None).await;
    assert_eq!(status, 200);
    // Whatever had been queued is written by now.
    app.state.request_log.flush().await;
    assert_eq!(count_logs(&app).await, 0);
    let (status, body) = call(&app, &token, Method::GET, "/logs", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], json!([]));
}

#[tokio::test]
async fn another_organizations_logs_are_invisible() {
    let app = TestApp::spawn().await;
    let (_, token_a) = app.tenant().await;
    let (_, token_b) = app.tenant().await;
    let (status, _) = call(&app, &token_a, Method::GET, "/domains", None).await;
    assert_eq!(status, 200);
    let a_log = wait_for_log(&app, &token_a, "GET", "/domains").await;
    let id = a_log["id"].as_str().unwrap();

    let response = app
        .authed(Method::GET, &format!("/logs/{id}"), &token_b)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
    let (status, list) = call(&app, &token_b, Method::GET, "/logs?limit=100", None).await;
    assert_eq!(status, 200);
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["id"] != id),
        "{list}"
    );
    let (status, mine) = call(&app, &token_a, Method::GET, &format!("/logs/{id}"), None).await;
    assert_eq!(status, 200, "{mine}");
}

#[tokio::test]
async fn logs_page_newest_first_with_cursors() {
    let app = TestApp::spawn().await;
    let (org, token) = app.tenant().await;
    let now = Utc::now();
    let entries: Vec<_> = (0..3)
        .map(|i| entry(org, now - TimeDelta::minutes(3 - i)))
        .collect();
    let ids: Vec<String> = entries.iter().map(|e| e.id.to_string()).collect();
    app.store.request_logs().insert_many(entries).await.unwrap();
    // Before any request of this test was logged, the list holds the three entries written above; the
    // `/logs` reads themselves are newer, so page past them.
    let (status, first) = call(&app, &token, Method::GET, "/logs?limit=1", None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["object"], "list");
    assert_eq!(first["has_more"], true);
    assert_eq!(first["data"].as_array().unwrap().len(), 1);

    let after = &ids[2];
    let (_, page) = call(
        &app,
        &token,
        Method::GET,
        &format!("/logs?limit=1&after={after}"),
        None,
    )
    .await;
    assert_eq!(page["data"][0]["id"], ids[1].as_str(), "{page}");
    assert_eq!(page["has_more"], true, "{page}");
    let (_, page) = call(
        &app,
        &token,
        Method::GET,
        &format!("/logs?after={}", ids[1]),
        None,
    )
    .await;
    assert_eq!(page["data"][0]["id"], ids[0].as_str(), "{page}");
    assert_eq!(page["has_more"], false, "{page}");
    let (_, page) = call(
        &app,
        &token,
        Method::GET,
        &format!("/logs?limit=1&before={}", ids[0]),
        None,
    )
    .await;
    assert_eq!(page["data"][0]["id"], ids[1].as_str(), "{page}");

    for bad in ["/logs?limit=0", "/logs?limit=abc", "/logs?after=nope"] {
        let response = app.authed(Method::GET, bad, &token).send().await.unwrap();
        expect_error(response, 422, "invalid_parameter").await;
    }
    let response = app
        .authed(Method::GET, "/logs/not-a-uuid", &token)
        .send()
        .await
        .unwrap();
    expect_error(response, 422, "invalid_parameter").await;
    let response = app
        .authed(Method::GET, &format!("/logs/{}", Uuid::now_v7()), &token)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
}

#[tokio::test]
async fn logs_need_a_full_access_key() {
    let app = TestApp::spawn().await;
    let (org, _) = app.tenant().await;
    let (_, sending) = app.key(org, opensend_core::Permission::SendingAccess).await;
    let response = app
        .authed(Method::GET, "/logs", &sending)
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "restricted_api_key").await;
}

#[tokio::test]
async fn cleanup_deletes_logs_older_than_the_retention_period() {
    // No scheduled cleanup (it runs at start in a full process and would hold the job's lease).
    let roles = Roles {
        api: true,
        ingester: true,
        worker: false,
        smtp: false,
    };
    let app = TestApp::spawn_roles(roles, &[("RETENTION_DAYS", "7")]).await;
    let (org, token) = app.tenant().await;
    let old = entry(org, Utc::now() - TimeDelta::days(8));
    let recent = entry(org, Utc::now() - TimeDelta::days(6));
    let (old_id, recent_id) = (old.id, recent.id);
    app.store
        .request_logs()
        .insert_many(vec![old, recent])
        .await
        .unwrap();

    let job_token = app
        .state
        .config
        .secrets
        .ingester_job_token
        .as_ref()
        .expect("job token")
        .expose_secret()
        .to_owned();
    let (status, body) = json(
        app.client
            .post(format!("{}/jobs/cleanup", app.ingester))
            .bearer_auth(job_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["deleted"]["request_logs"], 1, "{body}");
    let response = app
        .authed(Method::GET, &format!("/logs/{old_id}"), &token)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
    let (status, _) = call(
        &app,
        &token,
        Method::GET,
        &format!("/logs/{recent_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn flush_writes_everything_queued_in_batches() {
    let app = TestApp::spawn().await;
    let (org, _) = app.tenant().await;
    let before = count_logs(&app).await;
    let log = Arc::new(RequestLog::default());
    // More than one insert's worth, queued before the writer starts, so flushing is what writes them.
    for _ in 0..600 {
        log.queue(entry(org, Utc::now()));
    }
    log.start(app.store.clone());
    log.flush().await;
    assert_eq!(count_logs(&app).await - before, 600);
    assert_eq!(log.dropped(), 0);
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_instead_of_waiting() {
    let app = TestApp::spawn().await;
    let (org, _) = app.tenant().await;
    let log = RequestLog::default();
    for _ in 0..QUEUE_ENTRIES + 10 {
        log.queue(entry(org, Utc::now()));
    }
    assert_eq!(log.dropped(), 10);
}
