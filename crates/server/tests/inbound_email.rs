//! Inbound email end to end: real MIME samples pushed to the ingester's `POST /events/inbound`, routed by
//! envelope recipient to the organizations receiving for those domains, read back through
//! `/emails/receiving`, announced as `email.received`, and purged by the `cleanup` job. Also the bearer
//! tokens of the machine routes (`/events/inbound`, `/jobs/*`).

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{TimeDelta, Utc};
use common::{TestApp, expect_error, json};
use opensend_store::entities::{domain, received_attachment, received_email, webhook_message};
use opensend_store::repos::NewDomain;
use opensend_test_support::webhook_receiver::WebhookReceiver;
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Database, EntityTrait, PaginatorTrait, QueryFilter};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../mail/tests/fixtures/inbound/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn app() -> TestApp {
    TestApp::spawn_with(&[
        ("ALLOW_PRIVATE_WEBHOOK_URLS", "true"),
        ("WEBHOOK_RETRY_DELAYS_SECONDS", "0,0,0"),
    ])
    .await
}

fn inbound_token(app: &TestApp) -> String {
    app.state
        .config
        .secrets
        .ingester_inbound_token
        .as_ref()
        .expect("a local deployment has a generated inbound token")
        .expose_secret()
        .to_owned()
}

fn job_token(app: &TestApp) -> String {
    app.state
        .config
        .secrets
        .ingester_job_token
        .as_ref()
        .expect("job token")
        .expose_secret()
        .to_owned()
}

/// Adds `name` to `organization` with receiving enabled and, when `verified`, marks it verified (as a
/// successful DNS check would).
async fn receiving_domain(
    app: &TestApp,
    organization: Uuid,
    name: &str,
    verified: bool,
    allow_subdomains: bool,
) -> Uuid {
    let (created, _) = app
        .store
        .domains()
        .create(
            NewDomain {
                organization_id: organization,
                name: name.to_owned(),
                region: "us-east-1".to_owned(),
                custom_return_path: "send".to_owned(),
                open_tracking: false,
                click_tracking: false,
                tracking_subdomain: None,
                tls: "opportunistic".to_owned(),
                sending_enabled: true,
                receiving_enabled: true,
                allow_subdomains,
            },
            Vec::new(),
            &|_, _| Vec::new(),
        )
        .await
        .expect("domain");
    if verified {
        set_domain(app, created.id, domain::Column::Status, "verified").await;
    }
    created.id
}

async fn set_domain(
    app: &TestApp,
    id: Uuid,
    column: domain::Column,
    value: impl Into<sea_orm::Value>,
) {
    let db = Database::connect(app.db.url()).await.unwrap();
    domain::Entity::update_many()
        .col_expr(column, Expr::value(value))
        .filter(domain::Column::Id.eq(id))
        .exec(&db)
        .await
        .unwrap();
    let _ = db.close().await;
}

/// `POST /events/inbound` with a raw message and `X-Envelope-To`.
fn push_raw(app: &TestApp, raw: Vec<u8>, envelope_to: &str) -> reqwest::RequestBuilder {
    app.client
        .post(format!("{}/events/inbound", app.ingester))
        .bearer_auth(inbound_token(app))
        .header("content-type", "message/rfc822")
        .header("x-envelope-to", envelope_to)
        .body(raw)
}

/// Pushes `raw` for `envelope_to` and expects it stored: returns the answer.
async fn deliver(app: &TestApp, raw: Vec<u8>, envelope_to: &str) -> Value {
    let (status, body) = json(push_raw(app, raw, envelope_to).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    json(app.authed(Method::GET, path, token).send().await.unwrap()).await
}

async fn count_rows(app: &TestApp) -> (u64, u64) {
    let db = Database::connect(app.db.url()).await.unwrap();
    let emails = received_email::Entity::find().count(&db).await.unwrap();
    let attachments = received_attachment::Entity::find()
        .count(&db)
        .await
        .unwrap();
    let _ = db.close().await;
    (emails, attachments)
}

fn is_string_list(value: &Value) -> bool {
    value
        .as_array()
        .is_some_and(|items| items.iter().all(Value::is_string))
}

#[tokio::test]
async fn a_multipart_message_with_attachments_is_stored_and_read_back() {
    let app = app().await;
    let (org, token) = app.tenant().await;
    receiving_domain(&app, org, "inbound.example", true, false).await;

    let answer = deliver(
        &app,
        fixture("mixed_attachments.eml"),
        "accounts@inbound.example",
    )
    .await;
    assert_eq!(answer["accepted"], 1, "{answer}");
    assert_eq!(answer["ignored"], json!([]));
    let id = answer["emails"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        answer["emails"][0]["recipients"],
        json!(["accounts@inbound.example"])
    );

    // The list, at the root and under /api.
    for prefix in ["", "/api"] {
        let (status, list) = get(&app, &token, &format!("{prefix}/emails/receiving")).await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["object"], "list");
        assert_eq!(list["has_more"], false);
        let items = list["data"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{list}");
        let item = &items[0];
        assert_eq!(item["id"], id.as_str());
        assert_eq!(item["from"], "Billing <billing@vendor.example>");
        assert_eq!(item["to"], json!(["accounts@inbound.example"]));
        assert_eq!(item["subject"], "Invoice INV-2026-0117");
        assert_eq!(item["message_id"], "<inv-2026-0117@vendor.example>");
        assert_eq!(item["attachments"].as_array().unwrap().len(), 2);
        assert!(item.get("html").is_none(), "lists carry no bodies: {item}");
    }

    let (status, email) = get(&app, &token, &format!("/emails/receiving/{id}")).await;
    assert_eq!(status, 200, "{email}");
    assert_eq!(email["object"], "email");
    assert_eq!(email["id"], id.as_str());
    assert_eq!(email["from"], "Billing <billing@vendor.example>");
    assert_eq!(email["to"], json!(["accounts@inbound.example"]));
    assert_eq!(email["cc"], json!([]));
    assert_eq!(email["bcc"], json!([]));
    assert_eq!(email["reply_to"], json!([]));
    assert_eq!(
        email["envelope_recipients"],
        json!(["accounts@inbound.example"])
    );
    assert!(
        email["text"]
            .as_str()
            .unwrap()
            .contains("Amount due: 120.00 EUR"),
        "{email}"
    );
    assert!(
        email["html"]
            .as_str()
            .unwrap()
            .contains("cid:logo.png@vendor.example"),
        "{email}"
    );
    assert_eq!(email["headers"]["Subject"], "Invoice INV-2026-0117");
    assert_eq!(
        email["headers"]["Message-ID"],
        "<inv-2026-0117@vendor.example>"
    );
    let created = chrono::DateTime::parse_from_rfc3339(email["created_at"].as_str().unwrap())
        .expect("created_at is RFC 3339");
    assert!((Utc::now() - created.to_utc()).num_seconds().abs() < 60);

    let attachments = email["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2, "{email}");
    let logo = &attachments[0];
    assert_eq!(logo["filename"], "logo.png");
    assert_eq!(logo["content_type"], "image/png");
    assert_eq!(logo["content_id"], "logo.png@vendor.example");
    assert_eq!(logo["content_disposition"], "inline");
    assert_eq!(logo["size"], 66);
    let pdf = &attachments[1];
    assert_eq!(pdf["filename"], "INV-2026-0117.pdf");
    assert_eq!(pdf["content_type"], "application/pdf");
    assert_eq!(pdf["content_disposition"], "attachment");
    assert!(pdf.get("content_id").is_none(), "absent, not null: {pdf}");

    // Attachments: the list, a page of one, and each with its content.
    let (status, listed) = get(&app, &token, &format!("/emails/receiving/{id}/attachments")).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["object"], "list");
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    assert_eq!(listed["data"][0]["id"], logo["id"]);
    let (_, first) = get(
        &app,
        &token,
        &format!("/emails/receiving/{id}/attachments?limit=1"),
    )
    .await;
    assert_eq!(first["has_more"], true);
    assert_eq!(first["data"][0]["id"], logo["id"]);
    let (_, second) = get(
        &app,
        &token,
        &format!(
            "/emails/receiving/{id}/attachments?limit=1&after={}",
            logo["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(second["has_more"], false);
    assert_eq!(second["data"][0]["id"], pdf["id"]);

    let (status, png) = get(
        &app,
        &token,
        &format!(
            "/api/emails/receiving/{id}/attachments/{}",
            logo["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(status, 200, "{png}");
    assert_eq!(png["object"], "attachment");
    assert_eq!(png["filename"], "logo.png");
    assert_eq!(png["size"], 66);
    let bytes = STANDARD.decode(png["content"].as_str().unwrap()).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(bytes.len(), 66);
    let (_, pdf_file) = get(
        &app,
        &token,
        &format!(
            "/emails/receiving/{id}/attachments/{}",
            pdf["id"].as_str().unwrap()
        ),
    )
    .await;
    let bytes = STANDARD
        .decode(pdf_file["content"].as_str().unwrap())
        .unwrap();
    assert!(bytes.starts_with(b"%PDF-1.4\n") && bytes.ends_with(b"%%EOF\n"));

    // An attachment id under another email is not found.
    let (status, _) = get(
        &app,
        &token,
        &format!(
            "/emails/receiving/{}/attachments/{}",
            Uuid::now_v7(),
            logo["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn addresses_repeated_headers_and_blind_copies_are_shown_as_received() {
    let app = app().await;
    let (org, token) = app.tenant().await;
    receiving_domain(&app, org, "inbound.example", true, false).await;

    // `alternative.eml` is addressed To jane@ and ops@, Cc john@; the envelope also names audit@, which the
    // headers do not: a blind copy.
    let answer = deliver(
        &app,
        fixture("alternative.eml"),
        "jane@inbound.example, <audit@inbound.example>",
    )
    .await;
    let id = answer["emails"][0]["id"].as_str().unwrap();
    let (_, email) = get(&app, &token, &format!("/emails/receiving/{id}")).await;
    assert_eq!(email["from"], "Acme Support <support@acme.example>");
    assert_eq!(
        email["to"],
        json!(["Jane Doe <jane@inbound.example>", "ops@inbound.example"])
    );
    assert_eq!(email["cc"], json!(["\"Doe, John\" <john@inbound.example>"]));
    assert_eq!(
        email["reply_to"],
        json!(["Acme Help Desk <help@acme.example>"])
    );
    assert_eq!(email["bcc"], json!(["audit@inbound.example"]));
    assert_eq!(
        email["envelope_recipients"],
        json!(["jane@inbound.example", "audit@inbound.example"])
    );
    assert_eq!(email["subject"], "Your order #1042 has shipped");
    assert!(email["text"].as_str().unwrap().contains("Café au lait"));
    assert!(email["html"].as_str().unwrap().contains("Café au lait"));
    assert_eq!(email["attachments"], json!([]));
    // Header values are kept raw; a repeated field would be a list, a single one is a string.
    assert_eq!(email["headers"]["X-Mailer"], "Acme Mailer 3.2");
    assert!(email["headers"]["Received"].is_string());

    // A field that occurs twice becomes a list, in order.
    let twice = b"Received: from a.example by mx\r\nReceived: from b.example by a.example\r\n\
From: x@sender.example\r\nTo: jane@inbound.example\r\nSubject: hops\r\n\r\nbody\r\n"
        .to_vec();
    let answer = deliver(&app, twice, "jane@inbound.example").await;
    let id = answer["emails"][0]["id"].as_str().unwrap();
    let (_, email) = get(&app, &token, &format!("/emails/receiving/{id}")).await;
    assert_eq!(
        email["headers"]["Received"],
        json!(["from a.example by mx", "from b.example by a.example"])
    );
    assert_eq!(email["text"], "body\r\n", "the body as it arrived");
    assert_eq!(email["html"], Value::Null);
    assert_eq!(
        email["message_id"], "",
        "no Message-ID: an empty string, never null"
    );
}

#[tokio::test]
async fn messages_in_other_charsets_are_decoded_and_json_bodies_work_too() {
    let app = app().await;
    let (org, token) = app.tenant().await;
    receiving_domain(&app, org, "inbound.example", true, false).await;

    let cases = [
        (
            "latin1.eml",
            "guest@inbound.example",
            "Réservation confirmée à Montréal",
            "Votre réservation à Montréal est confirmée",
        ),
        (
            "windows1252.eml",
            "fan@inbound.example",
            "€ 49 – “Early bird”",
            "",
        ),
        (
            "shift_jis.eml",
            "yamada@inbound.example",
            "会議の議事録",
            "山田様",
        ),
    ];
    for (file, recipient, subject, text) in cases {
        // As JSON: base64, wrapped the MIME way.
        let encoded = STANDARD.encode(fixture(file));
        let wrapped: Vec<String> = encoded
            .as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        let (status, answer) = json(
            app.client
                .post(format!("{}/events/inbound", app.ingester))
                .bearer_auth(inbound_token(&app))
                .json(&json!({"raw": wrapped.join("\r\n"), "recipients": [recipient]}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{file}: {answer}");
        let id = answer["emails"][0]["id"].as_str().unwrap();
        let (_, email) = get(&app, &token, &format!("/emails/receiving/{id}")).await;
        assert_eq!(email["subject"], subject, "{file}: {email}");
        if text.is_empty() {
            assert_eq!(email["text"], Value::Null, "{file}: HTML only");
            assert!(
                email["html"]
                    .as_str()
                    .unwrap()
                    .contains("“Early bird” tickets: €49 –"),
                "{email}"
            );
        } else {
            assert!(
                email["text"].as_str().unwrap().contains(text),
                "{file}: {email}"
            );
        }
    }
    // The sender's name, in Shift_JIS encoded words, decoded too.
    let (_, list) = get(&app, &token, "/emails/receiving").await;
    assert_eq!(list["data"][0]["from"], "佐藤 花子 <hanako@kaisha.example>");
}

#[tokio::test]
async fn malformed_messages_are_kept_as_far_as_they_can_be_read() {
    let app = app().await;
    let (org, token) = app.tenant().await;
    receiving_domain(&app, org, "inbound.example", true, false).await;

    for file in ["broken_boundary.eml", "truncated.eml", "no_blank_line.eml"] {
        let answer = deliver(&app, fixture(file), "inbox@inbound.example").await;
        assert_eq!(answer["accepted"], 1, "{file}: {answer}");
    }
    let (_, list) = get(&app, &token, "/emails/receiving").await;
    let subjects: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["no separator", "cut off", "broken boundaries"]);
    let truncated = list["data"][1]["id"].as_str().unwrap();
    let (_, email) = get(&app, &token, &format!("/emails/receiving/{truncated}")).await;
    assert!(
        email["text"]
            .as_str()
            .unwrap()
            .contains("Body before the cut.")
    );
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_stored() {
    let app = app().await;
    let (org, token) = app.tenant().await;
    receiving_domain(&app, org, "inbound.example", true, false).await;
    let url = format!("{}/events/inbound", app.ingester);
    let authed = || app.client.post(&url).bearer_auth(inbound_token(&app));

    // Not a message at all.
    let response = push_raw(
        &app,
        b"\r\nJust a body after a blank line.".to_vec(),
        "a@inbound.example",
    )
    .send()
    .await
    .unwrap();
    expect_error(response, 422, "validation_error").await;
    // No envelope recipients.
    let response = authed()
        .header("content-type", "message/rfc822")
        .body(fixture("alternative.eml"))
        .send()
        .await
        .unwrap();
    let error = expect_error(response, 422, "missing_required_field").await;
    assert!(error["message"].as_str().unwrap().contains("X-Envelope-To"));
    let response = push_raw(&app, fixture("alternative.eml"), " , ")
        .send()
        .await
        .unwrap();
    expect_error(response, 422, "missing_required_field").await;
    // A recipient that is not an address.
    let response = push_raw(
        &app,
        fixture("alternative.eml"),
        "jane@inbound.example, not-an-address",
    )
    .send()
    .await
    .unwrap();
    let error = expect_error(response, 422, "validation_error").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not-an-address")
    );
    // JSON: bad base64, missing fields, empty recipients, not JSON.
    for (body, name) in [
        (
            json!({"raw": "%%% not base64 %%%", "recipients": ["a@inbound.example"]}),
            "validation_error",
        ),
        (
            json!({"recipients": ["a@inbound.example"]}),
            "missing_required_field",
        ),
        (
            json!({"raw": STANDARD.encode(fixture("alternative.eml"))}),
            "missing_required_field",
        ),
        (
            json!({"raw": STANDARD.encode(fixture("alternative.eml")), "recipients": []}),
            "validation_error",
        ),
        (
            json!({"raw": STANDARD.encode(fixture("alternative.eml")), "recipients": "a@inbound.example"}),
            "validation_error",
        ),
    ] {
        let response = authed().json(&body).send().await.unwrap();
        expect_error(response, 422, name).await;
    }
    let response = authed()
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "invalid_json").await;
    // Neither format.
    let response = authed()
        .header("content-type", "text/plain")
        .body(fixture("alternative.eml"))
        .send()
        .await
        .unwrap();
    expect_error(response, 415, "unsupported_media_type").await;
    // Over 40 MiB.
    let mut huge =
        b"From: a@sender.example\r\nTo: a@inbound.example\r\nSubject: big\r\n\r\n".to_vec();
    huge.resize(40 * 1024 * 1024 + 1, b'a');
    let response = push_raw(&app, huge, "a@inbound.example")
        .send()
        .await
        .unwrap();
    let error = expect_error(response, 413, "payload_too_large").await;
    assert!(
        error["message"].as_str().unwrap().contains("41943041"),
        "{error}"
    );
    // Far over the body limit: refused before it is read whole.
    let response = push_raw(&app, vec![b'a'; 60 * 1024 * 1024], "a@inbound.example")
        .send()
        .await;
    if let Ok(response) = response {
        expect_error(response, 413, "payload_too_large").await;
    }

    assert_eq!(count_rows(&app).await, (0, 0));
    let (_, list) = get(&app, &token, "/emails/receiving").await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn the_email_received_webhook_is_delivered_with_resend_shaped_data() {
    let app = app().await;
    let (org, token) = app.tenant().await;
    receiving_domain(&app, org, "inbound.example", true, false).await;
    let receiver = WebhookReceiver::start(Vec::new()).await;
    let (status, created) = json(
        app.authed(Method::POST, "/webhooks", &token)
            .json(&json!({"endpoint": receiver.url(), "events": ["email.received"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");

    let answer = deliver(
        &app,
        fixture("mixed_attachments.eml"),
        "accounts@inbound.example, hidden@inbound.example",
    )
    .await;
    let id = answer["emails"][0]["id"].as_str().unwrap().to_owned();
    let delivered = receiver.wait_for(1, WAIT).await;
    let event = delivered[0].json();
    assert!(!delivered[0].header("svix-signature").is_empty());
    assert_eq!(event["type"], "email.received", "{event}");
    assert!(event["created_at"].is_string());
    let data = &event["data"];
    for field in [
        "email_id",
        "created_at",
        "from",
        "to",
        "subject",
        "message_id",
        "bcc",
        "cc",
        "attachments",
    ] {
        assert!(data.get(field).is_some(), "`{field}` is required: {data}");
    }
    assert_eq!(data["email_id"], id.as_str());
    assert_eq!(data["from"], "Billing <billing@vendor.example>");
    assert_eq!(data["to"], json!(["accounts@inbound.example"]));
    assert_eq!(data["subject"], "Invoice INV-2026-0117");
    assert_eq!(data["message_id"], "<inv-2026-0117@vendor.example>");
    assert_eq!(data["cc"], json!([]));
    assert_eq!(data["bcc"], json!(["hidden@inbound.example"]));
    assert!(
        is_string_list(&data["to"]) && is_string_list(&data["cc"]) && is_string_list(&data["bcc"])
    );
    let attachments = data["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2);
    assert_eq!(attachments[0]["filename"], "logo.png");
    assert_eq!(attachments[0]["content_type"], "image/png");
    assert_eq!(attachments[0]["content_disposition"], "inline");
    assert_eq!(attachments[0]["content_id"], "logo.png@vendor.example");
    assert_eq!(attachments[1]["filename"], "INV-2026-0117.pdf");
    assert_eq!(attachments[1]["content_disposition"], "attachment");
    assert!(attachments[1].get("content_id").is_none());
    // The ids are those the API serves.
    let (_, email) = get(&app, &token, &format!("/emails/receiving/{id}")).await;
    assert_eq!(attachments[0]["id"], email["attachments"][0]["id"]);
    assert_eq!(data["created_at"], email["created_at"]);
}

#[tokio::test]
async fn routing_follows_the_envelope_never_the_to_header() {
    let app = app().await;
    let (alpha, alpha_token) = app.tenant().await;
    let (beta, beta_token) = app.tenant().await;
    receiving_domain(&app, alpha, "inbound.example", true, false).await;
    receiving_domain(&app, beta, "beta.example", true, false).await;
    let beta_hook = WebhookReceiver::start(Vec::new()).await;
    let (status, _) = json(
        app.authed(Method::POST, "/webhooks", &beta_token)
            .json(&json!({"endpoint": beta_hook.url(), "events": ["email.received"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);

    // The headers claim beta's address; the envelope says alpha's.
    let spoofed = b"From: mallory@evil.example\r\nTo: ceo@beta.example\r\nCc: cfo@beta.example\r\n\
Subject: wire the money\r\nMessage-ID: <spoof@evil.example>\r\n\r\nNow.\r\n"
        .to_vec();
    let answer = deliver(&app, spoofed, "catchall@inbound.example").await;
    assert_eq!(answer["accepted"], 1);
    let id = answer["emails"][0]["id"].as_str().unwrap().to_owned();

    let (_, beta_list) = get(&app, &beta_token, "/emails/receiving").await;
    assert_eq!(beta_list["data"], json!([]), "beta never gets it");
    let db = Database::connect(app.db.url()).await.unwrap();
    let beta_messages = webhook_message::Entity::find()
        .filter(webhook_message::Column::OrganizationId.eq(beta))
        .count(&db)
        .await
        .unwrap();
    let _ = db.close().await;
    assert_eq!(beta_messages, 0, "nothing announced to beta");

    let (_, alpha_list) = get(&app, &alpha_token, "/emails/receiving").await;
    assert_eq!(alpha_list["data"][0]["id"], id.as_str());
    let (_, email) = get(&app, &alpha_token, &format!("/emails/receiving/{id}")).await;
    assert_eq!(
        email["to"],
        json!(["ceo@beta.example"]),
        "the headers as written"
    );
    assert_eq!(
        email["envelope_recipients"],
        json!(["catchall@inbound.example"])
    );
    assert_eq!(email["bcc"], json!(["catchall@inbound.example"]));

    // Tenant isolation: beta cannot read alpha's email or its attachments.
    for path in [
        format!("/emails/receiving/{id}"),
        format!("/emails/receiving/{id}/attachments"),
        format!("/emails/receiving/{id}/attachments/{}", Uuid::now_v7()),
    ] {
        let response = app
            .authed(Method::GET, &path, &beta_token)
            .send()
            .await
            .unwrap();
        expect_error(response, 404, "not_found").await;
    }

    // An envelope naming beta goes to beta only.
    let answer = deliver(&app, fixture("alternative.eml"), "ceo@beta.example").await;
    let beta_id = answer["emails"][0]["id"].as_str().unwrap();
    let (_, beta_list) = get(&app, &beta_token, "/emails/receiving").await;
    assert_eq!(beta_list["data"][0]["id"], beta_id);
    let (_, alpha_list) = get(&app, &alpha_token, "/emails/receiving").await;
    assert_eq!(alpha_list["data"].as_array().unwrap().len(), 1);
    beta_hook.wait_for(1, WAIT).await;
}

#[tokio::test]
async fn only_verified_receiving_domains_receive_and_subdomains_need_allow_subdomains() {
    let app = app().await;
    let (alpha, alpha_token) = app.tenant().await;
    let (beta, beta_token) = app.tenant().await;
    let (gamma, gamma_token) = app.tenant().await;
    receiving_domain(&app, alpha, "inbound.example", true, false).await;
    // Beta claims the same domain but never verified it: it gets nothing.
    receiving_domain(&app, beta, "inbound.example", false, false).await;
    // Gamma verified a domain but turned receiving off.
    let off = receiving_domain(&app, gamma, "quiet.example", true, false).await;
    set_domain(&app, off, domain::Column::ReceivingEnabled, false).await;

    let response = push_raw(
        &app,
        fixture("alternative.eml"),
        "a@quiet.example, b@nowhere.example",
    )
    .send()
    .await
    .unwrap();
    let error = expect_error(response, 422, "validation_error").await;
    assert!(
        error["message"].as_str().unwrap().contains("receiving"),
        "{error}"
    );

    // Mixed: alpha's recipient is kept, the others are ignored and named.
    let answer = deliver(
        &app,
        fixture("alternative.eml"),
        "jane@inbound.example, a@quiet.example, x@sub.inbound.example",
    )
    .await;
    assert_eq!(answer["accepted"], 1);
    assert_eq!(
        answer["emails"][0]["recipients"],
        json!(["jane@inbound.example"])
    );
    assert_eq!(
        answer["ignored"],
        json!(["a@quiet.example", "x@sub.inbound.example"])
    );
    for token in [&beta_token, &gamma_token] {
        let (_, list) = get(&app, token, "/emails/receiving").await;
        assert_eq!(list["data"], json!([]));
    }

    // With allow_subdomains, a subdomain's mail is received too; the domain part is compared without case.
    let (delta, delta_token) = app.tenant().await;
    receiving_domain(&app, delta, "delta.example", true, true).await;
    let answer = deliver(&app, fixture("alternative.eml"), "Ops@Mail.Delta.Example").await;
    assert_eq!(
        answer["emails"][0]["recipients"],
        json!(["Ops@mail.delta.example"])
    );
    let (_, list) = get(&app, &delta_token, "/emails/receiving").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (_, list) = get(&app, &alpha_token, "/emails/receiving").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_domain_verified_by_two_organizations_delivers_a_copy_to_each() {
    let app = app().await;
    let (alpha, alpha_token) = app.tenant().await;
    let (beta, beta_token) = app.tenant().await;
    receiving_domain(&app, alpha, "shared.example", true, false).await;
    receiving_domain(&app, beta, "shared.example", true, false).await;

    let answer = deliver(
        &app,
        fixture("mixed_attachments.eml"),
        "team@shared.example",
    )
    .await;
    assert_eq!(answer["accepted"], 2, "{answer}");
    let ids: Vec<&str> = answer["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_ne!(ids[0], ids[1]);
    let mut seen = Vec::new();
    for token in [&alpha_token, &beta_token] {
        let (_, list) = get(&app, token, "/emails/receiving").await;
        assert_eq!(list["data"].as_array().unwrap().len(), 1);
        let id = list["data"][0]["id"].as_str().unwrap().to_owned();
        assert!(ids.contains(&id.as_str()));
        let (_, email) = get(&app, token, &format!("/emails/receiving/{id}")).await;
        assert_eq!(email["attachments"].as_array().unwrap().len(), 2);
        seen.push(id);
    }
    assert_ne!(seen[0], seen[1]);
    assert_eq!(count_rows(&app).await, (2, 4));
}

#[tokio::test]
async fn receiving_routes_are_not_taken_for_sent_email_ids() {
    let app = app().await;
    let (org, token) = app.tenant().await;
    receiving_domain(&app, org, "inbound.example", true, false).await;

    let (status, list) = get(&app, &token, "/emails/receiving").await;
    assert_eq!(status, 200, "`receiving` is not an email id: {list}");
    assert_eq!(list["object"], "list");

    let answer = deliver(&app, fixture("alternative.eml"), "jane@inbound.example").await;
    let received = answer["emails"][0]["id"].as_str().unwrap().to_owned();
    let (status, sent) = app
        .send(
            &token,
            &json!({"from": "me@inbound.example", "to": ["x@example.net"], "subject": "s", "text": "t"}),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    let sent = sent["id"].as_str().unwrap();

    // Each kind is found only under its own routes.
    let (status, _) = get(&app, &token, &format!("/emails/{sent}")).await;
    assert_eq!(status, 200);
    let (status, _) = get(&app, &token, &format!("/emails/receiving/{received}")).await;
    assert_eq!(status, 200);
    let response = app
        .authed(Method::GET, &format!("/emails/{received}"), &token)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
    let response = app
        .authed(Method::GET, &format!("/emails/receiving/{sent}"), &token)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
    let response = app
        .authed(Method::GET, "/emails/receiving/not-a-uuid", &token)
        .send()
        .await
        .unwrap();
    expect_error(response, 422, "invalid_parameter").await;

    // Pagination.
    deliver(&app, fixture("latin1.eml"), "guest@inbound.example").await;
    let (_, page) = get(&app, &token, "/emails/receiving?limit=1").await;
    assert_eq!(page["has_more"], true);
    let newest = page["data"][0]["id"].as_str().unwrap();
    assert_ne!(newest, received);
    let (_, page) = get(
        &app,
        &token,
        &format!("/emails/receiving?limit=1&after={newest}"),
    )
    .await;
    assert_eq!(page["data"][0]["id"], received.as_str());
    assert_eq!(page["has_more"], false);
    let response = app
        .authed(Method::GET, "/emails/receiving?limit=500", &token)
        .send()
        .await
        .unwrap();
    expect_error(response, 422, "invalid_parameter").await;

    // A sending-only key cannot read received mail.
    let (_, sending) = app.key(org, opensend_core::Permission::SendingAccess).await;
    let response = app
        .authed(Method::GET, "/emails/receiving", &sending)
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "restricted_api_key").await;
    // Without a key at all.
    let response = app
        .request(Method::GET, "/emails/receiving")
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "missing_api_key").await;
}

/// Wrong bearer tokens for a route whose real token is `right`: none, garbage, the right start with a
/// wrong end, a cut-off token and a token with something added.
fn wrong_tokens(right: &str) -> Vec<Option<String>> {
    let half = right.len() / 2;
    let flipped: String = right[half..]
        .chars()
        .map(|c| if c == 'a' { 'b' } else { 'a' })
        .collect();
    vec![
        None,
        Some("nope".to_owned()),
        Some(format!("{}{flipped}", &right[..half])),
        Some(right[..right.len() - 1].to_owned()),
        Some(format!("{right}x")),
        Some(right.to_uppercase()),
    ]
}

#[tokio::test]
async fn the_inbound_route_refuses_missing_and_wrong_tokens() {
    let app = app().await;
    let (org, _) = app.tenant().await;
    receiving_domain(&app, org, "inbound.example", true, false).await;
    let right = inbound_token(&app);
    let url = format!("{}/events/inbound", app.ingester);

    for wrong in wrong_tokens(&right) {
        if wrong.as_deref() == Some(right.as_str()) {
            continue;
        }
        let mut request = app
            .client
            .post(&url)
            .header("content-type", "message/rfc822")
            .header("x-envelope-to", "jane@inbound.example")
            .body(fixture("alternative.eml"));
        if let Some(token) = &wrong {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        expect_error(response, 401, "unauthorized").await;
    }
    // The job token is not the inbound token.
    let response = app
        .client
        .post(&url)
        .bearer_auth(job_token(&app))
        .header("content-type", "message/rfc822")
        .header("x-envelope-to", "jane@inbound.example")
        .body(fixture("alternative.eml"))
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "unauthorized").await;
    // Not even the token in another scheme.
    let response = app
        .client
        .post(&url)
        .header("authorization", format!("Basic {right}"))
        .header("content-type", "message/rfc822")
        .header("x-envelope-to", "jane@inbound.example")
        .body(fixture("alternative.eml"))
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "unauthorized").await;
    assert_eq!(count_rows(&app).await, (0, 0));

    deliver(&app, fixture("alternative.eml"), "jane@inbound.example").await;
    assert_eq!(count_rows(&app).await.0, 1);
}

/// A production deployment (public `APP_URL`) with every required secret set.
async fn production(extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("APP_URL", "https://mail.opensend.example"),
        ("AUTH_SECRET", "auth-secret-for-tests-0123456789abcdef"),
        (
            "WEBHOOK_SECRET_ENCRYPTION_KEY",
            "8f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
        ),
        ("INGESTER_JOB_TOKEN", "job-token-for-tests-0123456789abcdef"),
    ];
    vars.extend_from_slice(extra);
    TestApp::spawn_with(&vars).await
}

#[tokio::test]
async fn in_production_without_an_inbound_token_every_inbound_request_is_refused() {
    let app = production(&[]).await;
    assert!(app.state.config.is_production());
    assert!(app.state.config.secrets.ingester_inbound_token.is_none());
    let (org, _) = app.tenant().await;
    receiving_domain(&app, org, "inbound.example", true, false).await;

    for token in [
        Some("some-token-someone-might-guess-0123456789"),
        Some("job-token-for-tests-0123456789abcdef"),
        Some(""),
        None,
    ] {
        let mut request = app
            .client
            .post(format!("{}/events/inbound", app.ingester))
            .header("content-type", "message/rfc822")
            .header("x-envelope-to", "jane@inbound.example")
            .body(fixture("alternative.eml"));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.send().await.unwrap();
        expect_error(response, 401, "unauthorized").await;
    }
    assert_eq!(count_rows(&app).await, (0, 0));
}

#[tokio::test]
async fn in_production_with_an_inbound_token_only_that_token_is_accepted() {
    let inbound = "inbound-token-for-tests-0123456789abcdef";
    let app = production(&[("INGESTER_INBOUND_TOKEN", inbound)]).await;
    let (org, token) = app.tenant().await;
    receiving_domain(&app, org, "inbound.example", true, false).await;
    for wrong in wrong_tokens(inbound) {
        let mut request = app
            .client
            .post(format!("{}/events/inbound", app.ingester))
            .header("content-type", "message/rfc822")
            .header("x-envelope-to", "jane@inbound.example")
            .body(fixture("alternative.eml"));
        if let Some(t) = &wrong {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.unwrap();
        expect_error(response, 401, "unauthorized").await;
    }
    assert_eq!(count_rows(&app).await, (0, 0));
    let answer = deliver(&app, fixture("alternative.eml"), "jane@inbound.example").await;
    assert_eq!(answer["accepted"], 1);
    let (_, list) = get(&app, &token, "/emails/receiving").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn job_routes_refuse_missing_and_wrong_tokens() {
    let app = app().await;
    let right = job_token(&app);
    let url = format!("{}/jobs/cleanup", app.ingester);
    let mut wrong = wrong_tokens(&right);
    wrong.push(Some(inbound_token(&app)));
    for token in wrong {
        let mut request = app.client.post(&url);
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        expect_error(response, 401, "unauthorized").await;
    }
    let (status, body) = json(
        app.client
            .post(&url)
            .bearer_auth(&right)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "job_run");
    assert_eq!(body["job"], "cleanup");
}

#[tokio::test]
async fn cleanup_deletes_received_emails_older_than_the_retention_period() {
    let app = TestApp::spawn_with(&[("RETENTION_DAYS", "7")]).await;
    let (org, token) = app.tenant().await;
    receiving_domain(&app, org, "inbound.example", true, false).await;
    let old = deliver(
        &app,
        fixture("mixed_attachments.eml"),
        "accounts@inbound.example",
    )
    .await;
    let old = old["emails"][0]["id"]
        .as_str()
        .unwrap()
        .parse::<Uuid>()
        .unwrap();
    let recent = deliver(
        &app,
        fixture("mixed_attachments.eml"),
        "accounts@inbound.example",
    )
    .await;
    let recent = recent["emails"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(count_rows(&app).await, (2, 4));

    let db = Database::connect(app.db.url()).await.unwrap();
    received_email::Entity::update_many()
        .col_expr(
            received_email::Column::CreatedAt,
            Expr::value(Utc::now() - TimeDelta::days(8)),
        )
        .filter(received_email::Column::Id.eq(old))
        .exec(&db)
        .await
        .unwrap();
    let _ = db.close().await;

    let (status, body) = json(
        app.client
            .post(format!("{}/jobs/cleanup", app.ingester))
            .bearer_auth(job_token(&app))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["deleted"]["received_emails"], 1, "{body}");

    assert_eq!(
        count_rows(&app).await,
        (1, 2),
        "its attachments went with it"
    );
    let response = app
        .authed(Method::GET, &format!("/emails/receiving/{old}"), &token)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
    let (status, _) = get(&app, &token, &format!("/emails/receiving/{recent}")).await;
    assert_eq!(status, 200);
}
