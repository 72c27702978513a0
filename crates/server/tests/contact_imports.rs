//! `POST /contacts/imports` and `GET /contacts/imports[/{id}]` end to end: a CSV upload processed by the
//! background job, counts, every bad row reported by line, `on_conflict`, segments and topics applied,
//! refused uploads leaving nothing behind, and tenant isolation.

mod common;

use std::time::Duration;

use common::{TestApp, call, expect_error, json};
use opensend_store::entities::contact_import;
use opensend_test_support::webhook_receiver::{Delivered, WebhookReceiver};
use reqwest::Method;
use sea_orm::{Database, EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

const BOUNDARY: &str = "opensend-test-boundary";

/// A `multipart/form-data` body with `file` (as `file_first` puts it, before or after the other fields).
fn form(csv: &str, fields: &[(&str, &str)], file_first: bool) -> Vec<u8> {
    let mut parts = Vec::new();
    let file = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"contacts.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n"
    );
    let others: String = fields
        .iter()
        .map(|(name, value)| {
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
        })
        .collect();
    if file_first {
        parts.push(file);
        parts.push(others);
    } else {
        parts.push(others);
        parts.push(file);
    }
    parts.push(format!("--{BOUNDARY}--\r\n"));
    parts.concat().into_bytes()
}

async fn upload(app: &TestApp, token: &str, body: Vec<u8>) -> (u16, Value) {
    json(
        app.authed(Method::POST, "/contacts/imports", token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn finished(app: &TestApp, token: &str, id: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        let (status, got) = call(
            app,
            token,
            Method::GET,
            &format!("/contacts/imports/{id}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{got}");
        if got["status"] == "completed" || got["status"] == "failed" {
            return got;
        }
        last = got;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("import {id} never finished: {last}");
}

async fn import_rows(app: &TestApp) -> u64 {
    let db = Database::connect(app.db.url()).await.unwrap();
    contact_import::Entity::find().count(&db).await.unwrap()
}

#[tokio::test]
async fn a_csv_is_imported_in_the_background_with_every_bad_row_reported() {
    let app = TestApp::spawn_with(&[("ALLOW_PRIVATE_WEBHOOK_URLS", "true")]).await;
    let (_, token) = app.tenant().await;
    let receiver = WebhookReceiver::start(vec![]).await;
    let (status, hook) = call(
        &app,
        &token,
        Method::POST,
        "/webhooks",
        Some(json!({"endpoint": receiver.url(), "events": ["contact.created", "contact.updated"]})),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    let (_, property) = call(
        &app,
        &token,
        Method::POST,
        "/contact-properties",
        Some(json!({"key": "seats", "type": "number"})),
    )
    .await;
    assert!(property["id"].is_string());
    let (_, segment) = call(
        &app,
        &token,
        Method::POST,
        "/segments",
        Some(json!({"name": "Imported"})),
    )
    .await;
    let segment = segment["id"].as_str().unwrap().to_owned();
    let (_, topic) = call(
        &app,
        &token,
        Method::POST,
        "/topics",
        Some(json!({"name": "News", "default_subscription": "opt_out"})),
    )
    .await;
    let topic = topic["id"].as_str().unwrap().to_owned();
    let existing = call(
        &app,
        &token,
        Method::POST,
        "/contacts",
        Some(json!({"email": "old@example.com", "first_name": "Before"})),
    )
    .await
    .1;

    let csv = "Email,First Name,Seats,Unsub\n\
               ann@example.com,Ann,3,false\n\
               not-an-address,Bob,1,false\n\
               quinn@example.com,\"Q, Uoted\",,\n\
               OLD@example.com,After,2,no\n\
               cid@example.com,Cid,many,false\n\
               dee@example.com,Dee,4,maybe\n";
    let column_map = json!({"email": "Email", "first_name": "First Name", "unsubscribed": "Unsub", "properties": {"seats": {"column": "Seats", "type": "number"}}}).to_string();
    let segments = json!([{"id": segment}]).to_string();
    let topics = json!([{"id": topic, "subscription": "opt_in"}]).to_string();
    let (status, created) = upload(
        &app,
        &token,
        form(
            csv,
            &[
                ("column_map", &column_map),
                ("segments", &segments),
                ("topics", &topics),
            ],
            true,
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["object"], "contact_import");
    let id = created["id"].as_str().unwrap().to_owned();
    let done = finished(&app, &token, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["counts"],
        json!({"total": 6, "created": 2, "updated": 0, "skipped": 1, "failed": 3}),
        "{done}"
    );
    assert!(done["completed_at"].is_string());
    let errors = done["errors"].as_array().unwrap();
    let lines: Vec<i64> = errors.iter().map(|e| e["line"].as_i64().unwrap()).collect();
    assert_eq!(lines, [3, 6, 7], "{done}");
    assert!(
        errors[1]["message"].as_str().unwrap().contains("seats"),
        "{done}"
    );

    let (_, ann) = call(&app, &token, Method::GET, "/contacts/ann@example.com", None).await;
    assert_eq!(ann["first_name"], "Ann");
    assert_eq!(ann["properties"]["seats"]["value"], 3);
    assert_eq!(ann["segment_ids"], json!([segment]));
    let (_, topics) = call(
        &app,
        &token,
        Method::GET,
        "/contacts/ann@example.com/topics",
        None,
    )
    .await;
    assert_eq!(topics["data"][0]["subscription"], "opt_in");
    let (status, quoted) = call(
        &app,
        &token,
        Method::GET,
        "/contacts/quinn@example.com",
        None,
    )
    .await;
    assert_eq!(status, 200, "{quoted}");
    assert_eq!(quoted["first_name"], "Q, Uoted");
    // `skip` (the default) leaves an existing contact as it was.
    let (_, old) = call(
        &app,
        &token,
        Method::GET,
        &format!("/contacts/{}", existing["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(old["first_name"], "Before");

    // `upsert` updates it, file after the options.
    let (status, again) = upload(
        &app,
        &token,
        form(
            "email,first_name\nold@example.com,After\nnew@example.com,New\n",
            &[("on_conflict", "upsert")],
            false,
        ),
    )
    .await;
    assert_eq!(status, 201, "{again}");
    let done = finished(&app, &token, again["id"].as_str().unwrap()).await;
    assert_eq!(
        done["counts"],
        json!({"total": 2, "created": 1, "updated": 1, "skipped": 0, "failed": 0}),
        "{done}"
    );
    assert_eq!(done["errors"], json!([]));
    let (_, old) = call(&app, &token, Method::GET, "/contacts/old@example.com", None).await;
    assert_eq!(old["first_name"], "After");
    // Every contact an import creates or updates is announced: the one created by hand, two created and
    // none updated by the first import, one created and one updated by the second.
    let delivered = receiver.wait_for(5, Duration::from_secs(20)).await;
    let mut announced: Vec<(String, String)> = delivered
        .iter()
        .map(Delivered::json)
        .map(|p| {
            (
                p["type"].as_str().unwrap().to_owned(),
                p["data"]["email"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    announced.sort();
    assert_eq!(
        announced,
        [
            ("contact.created".to_owned(), "ann@example.com".to_owned()),
            ("contact.created".to_owned(), "new@example.com".to_owned()),
            ("contact.created".to_owned(), "old@example.com".to_owned()),
            ("contact.created".to_owned(), "quinn@example.com".to_owned()),
            ("contact.updated".to_owned(), "old@example.com".to_owned()),
        ]
    );

    let (status, list) = call(
        &app,
        &token,
        Method::GET,
        "/contacts/imports?status=completed",
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(list["data"][0]["id"], again["id"]);

    // Another organization sees none of it.
    let (_, other) = app.tenant().await;
    expect_error(
        app.authed(Method::GET, &format!("/contacts/imports/{id}"), &other)
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    let (_, list) = call(&app, &other, Method::GET, "/contacts/imports", None).await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn refused_uploads_leave_nothing_behind() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let (_, other) = app.tenant().await;
    let (_, theirs) = call(
        &app,
        &other,
        Method::POST,
        "/segments",
        Some(json!({"name": "Theirs"})),
    )
    .await;
    let theirs = json!([theirs["id"]]).to_string();
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (form("name\nann\n", &[], true), 422, "validation_error"),
        (form("email\na@example.com\n", &[("on_conflict", "overwrite")], true), 422, "validation_error"),
        (form("email\na@example.com\n", &[("column_map", "{not json")], true), 422, "validation_error"),
        (form("email\na@example.com\n", &[("column_map", r#"{"properties": {"nope": "Nope"}}"#)], true), 422, "validation_error"),
        (form("email\na@example.com\n", &[("column_map", r#"{"email": "Mail"}"#)], true), 422, "validation_error"),
        (form("email\na@example.com\n", &[("segments", theirs.as_str())], true), 422, "validation_error"),
        (form("email\na@example.com\n", &[("topics", r#"[{"id": "x", "subscription": "opt_in"}]"#)], true), 422, "validation_error"),
        (format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"on_conflict\"\r\n\r\nskip\r\n--{BOUNDARY}--\r\n").into_bytes(), 422, "missing_required_field"),
    ];
    for (body, status, name) in cases {
        let response = app
            .authed(Method::POST, "/contacts/imports", &token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        expect_error(response, status, name).await;
    }
    expect_error(
        app.authed(Method::POST, "/contacts/imports", &token)
            .json(&json!({"file": "email\n"}))
            .send()
            .await
            .unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    assert_eq!(import_rows(&app).await, 0);
    expect_error(
        app.authed(Method::GET, "/contacts/imports?status=done", &token)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_parameter",
    )
    .await;
    expect_error(
        app.authed(Method::GET, "/contacts/imports/not-an-id", &token)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_parameter",
    )
    .await;
}
