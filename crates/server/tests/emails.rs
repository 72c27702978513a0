//! `/emails` end to end in capture delivery: accept, queue, deliver, read back.

mod common;

use common::{TestApp, expect_error, json};
use opensend_core::{EmailAddress, Permission, RecipientStatus};
use opensend_store::repos::suppressions::Reason;
use reqwest::Method;
use serde_json::{Value, json};

fn simple(to: &str) -> Value {
    json!({
        "from": "Acme <hello@acme.test>",
        "to": to,
        "subject": "Hello",
        "html": "<p>Hi <b>there</b></p>",
    })
}

async fn email_count(app: &TestApp, token: &str) -> usize {
    let (_, list) = json(
        app.authed(Method::GET, "/emails?limit=100", token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    list["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_sent_email_is_captured_with_correct_mime() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let (status, body) = app
        .send(
            &token,
            &json!({
                "from": "Acme Café <hello@acme.test>",
                "to": ["jane@example.com", "Bob <bob@example.com>"],
                "cc": "carol@example.com",
                "bcc": ["secret@example.com"],
                "reply_to": "support@acme.test",
                "subject": "Grüße",
                "html": "<p>Hello <img src=\"cid:logo\"></p>",
                "headers": {"X-Entity-Ref-ID": "ref-1"},
                "tags": [{"name": "category", "value": "welcome"}],
                "attachments": [
                    {"filename": "logo.png", "content": "iVBORw0KGgo=", "content_id": "logo"},
                    {"filename": "notes.txt", "content": [104, 105]},
                ],
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1, "only the id: {body}");
    let id = body["id"].as_str().unwrap();

    let email = app.wait_for_status(&token, id, "sent").await;
    assert_eq!(email["object"], "email");
    assert_eq!(email["from"], "Acme Café <hello@acme.test>");
    assert_eq!(
        email["to"],
        json!(["jane@example.com", "Bob <bob@example.com>"])
    );
    assert_eq!(email["bcc"], json!(["secret@example.com"]));
    assert_eq!(
        email["tags"],
        json!([{"name": "category", "value": "welcome"}])
    );
    assert_eq!(email["unverified_sender"], true);
    assert_eq!(email["scheduled_at"], Value::Null);

    let raw = email["raw"].as_str().expect("captured message");
    assert!(
        raw.contains(&format!("Message-ID: <{id}@acme.test>")),
        "{raw}"
    );
    assert!(raw.contains("Subject: =?utf-8?"), "RFC 2047 subject");
    assert!(raw.contains("X-Entity-Ref-ID: ref-1"));
    assert!(raw.contains("multipart/mixed"));
    assert!(raw.contains("multipart/related"));
    assert!(
        raw.contains("multipart/alternative"),
        "text part derived from html"
    );
    assert!(raw.contains("Content-ID: <logo>"));
    assert!(
        !raw.to_ascii_lowercase().contains("secret@example.com"),
        "Bcc never in headers"
    );

    // Every recipient, Bcc included, is in the envelope and was accepted; the history records the send.
    let recipients = app
        .store
        .emails()
        .recipients(id.parse().unwrap())
        .await
        .unwrap();
    let mut addresses: Vec<_> = recipients.iter().map(|r| r.address.as_str()).collect();
    addresses.sort();
    assert_eq!(
        addresses,
        [
            "bob@example.com",
            "carol@example.com",
            "jane@example.com",
            "secret@example.com"
        ]
    );
    assert!(
        recipients
            .iter()
            .all(|r| r.status == RecipientStatus::Accepted)
    );
}

#[tokio::test]
async fn both_mounts_and_sending_keys() {
    let app = TestApp::spawn().await;
    let (org, full) = app.tenant().await;
    let (_, sending) = app.key(org, Permission::SendingAccess).await;
    let (status, body) = json(
        app.authed(Method::POST, "/api/emails", &sending)
            .json(&simple("a@example.com"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // A sending key sends but cannot read.
    let id = body["id"].as_str().unwrap();
    let read = app
        .authed(Method::GET, &format!("/emails/{id}"), &sending)
        .send()
        .await
        .unwrap();
    expect_error(read, 401, "restricted_api_key").await;
    app.wait_for_status(&full, id, "sent").await;
}

#[tokio::test]
async fn batch_strict_and_permissive() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let good = simple("a@example.com");
    let bad = json!({"from": "not an address", "to": "b@example.com", "subject": "x", "text": "y"});

    let strict = app
        .authed(Method::POST, "/emails/batch", &token)
        .json(&json!([good, bad]))
        .send()
        .await
        .unwrap();
    let error = expect_error(strict, 422, "validation_error").await;
    assert!(
        error["message"].as_str().unwrap().starts_with("emails[1]:"),
        "{error}"
    );
    assert_eq!(
        email_count(&app, &token).await,
        0,
        "strict: nothing accepted"
    );

    let (status, body) = json(
        app.authed(Method::POST, "/emails/batch", &token)
            .header("x-batch-validation", "permissive")
            .json(&json!([good, bad, simple("c@example.com")]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert_eq!(body["errors"][0]["index"], 1);
    for item in body["data"].as_array().unwrap() {
        app.wait_for_status(&token, item["id"].as_str().unwrap(), "sent")
            .await;
    }

    let (status, body) = json(
        app.authed(Method::POST, "/emails/batch", &token)
            .json(&json!([simple("d@example.com"), simple("e@example.com")]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "strict answers data only: {body}"
    );

    // Batch items may not attach or schedule; 101 items are too many.
    let mut attached = simple("f@example.com");
    attached["attachments"] = json!([{"filename": "a.txt", "content": "aGk="}]);
    let response = app
        .authed(Method::POST, "/emails/batch", &token)
        .json(&json!([attached]))
        .send()
        .await
        .unwrap();
    expect_error(response, 422, "invalid_attachment").await;
    let many: Vec<Value> = (0..101)
        .map(|i| simple(&format!("u{i}@example.com")))
        .collect();
    let response = app
        .authed(Method::POST, "/emails/batch", &token)
        .json(&many)
        .send()
        .await
        .unwrap();
    expect_error(response, 422, "validation_error").await;
    let response = app
        .authed(Method::POST, "/emails/batch", &token)
        .json(&json!({"not": "an array"}))
        .send()
        .await
        .unwrap();
    expect_error(response, 422, "validation_error").await;
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_and_guard() {
    let app = TestApp::spawn().await;
    let (org, token) = app.tenant().await;
    let send = |key: &str, body: Value| {
        app.authed(Method::POST, "/emails", &token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first = send("order-1", simple("a@example.com")).await.unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let (_, first) = json(first).await;
    let again = send("order-1", simple("a@example.com")).await.unwrap();
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    let (status, again) = json(again).await;
    assert_eq!(status, 200);
    assert_eq!(again["id"], first["id"], "same response, same email");
    assert_eq!(email_count(&app, &token).await, 1);

    let different = send("order-1", simple("other@example.com")).await.unwrap();
    expect_error(different, 409, "invalid_idempotent_request").await;

    // A first request still in flight.
    let raw = simple("a@example.com").to_string();
    let claim = app
        .store
        .idempotency()
        .claim(
            org,
            "order-2",
            opensend_server::idempotency::fingerprint("POST /emails", raw.as_bytes()),
            chrono::TimeDelta::hours(1),
        )
        .await
        .unwrap();
    assert!(matches!(
        claim,
        opensend_store::repos::idempotency::Claim::Proceed(_)
    ));
    let busy = app
        .authed(Method::POST, "/emails", &token)
        .header("Idempotency-Key", "order-2")
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    expect_error(busy, 409, "concurrent_idempotent_requests").await;

    // A refused request does not use its key up.
    let refused = send("order-3", json!({"to": "a@example.com"}))
        .await
        .unwrap();
    expect_error(refused, 422, "missing_required_field").await;
    let ok = send("order-3", simple("a@example.com")).await.unwrap();
    assert_eq!(ok.status(), 200);

    for bad in ["".to_owned(), "x".repeat(257)] {
        let response = send(&bad, simple("a@example.com")).await.unwrap();
        expect_error(response, 400, "invalid_idempotency_key").await;
    }

    // Keys are per organization.
    let (_, other) = app.tenant().await;
    let (status, theirs) = json(
        app.authed(Method::POST, "/emails", &other)
            .header("Idempotency-Key", "order-1")
            .json(&simple("a@example.com"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_ne!(theirs["id"], first["id"]);

    // Batch: same rules.
    let batch = |key: &str| {
        app.authed(Method::POST, "/emails/batch", &token)
            .header("Idempotency-Key", key)
            .json(&json!([simple("b@example.com")]))
            .send()
    };
    let (_, b1) = json(batch("batch-1").await.unwrap()).await;
    let (_, b2) = json(batch("batch-1").await.unwrap()).await;
    assert_eq!(b1, b2);
}

/// A request whose process died between claiming its key and committing (here: a claim made and never
/// completed) holds the key only for `IDEMPOTENCY_IN_FLIGHT_SECONDS`; the retry after that is accepted, once.
#[tokio::test]
async fn an_abandoned_idempotency_key_is_taken_over() {
    let app = TestApp::spawn_with(&[("IDEMPOTENCY_IN_FLIGHT_SECONDS", "1")]).await;
    let (org, token) = app.tenant().await;
    let raw = simple("a@example.com").to_string();
    app.store
        .idempotency()
        .claim(
            org,
            "died",
            opensend_server::idempotency::fingerprint("POST /emails", raw.as_bytes()),
            chrono::TimeDelta::hours(1),
        )
        .await
        .unwrap();
    let retry = || {
        app.authed(Method::POST, "/emails", &token)
            .header("Idempotency-Key", "died")
            .header("content-type", "application/json")
            .body(raw.clone())
            .send()
    };
    expect_error(
        retry().await.unwrap(),
        409,
        "concurrent_idempotent_requests",
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let (status, taken) = json(retry().await.unwrap()).await;
    assert_eq!(status, 200, "{taken}");
    let again = retry().await.unwrap();
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    let (_, again) = json(again).await;
    assert_eq!(again["id"], taken["id"]);
    assert_eq!(email_count(&app, &token).await, 1);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_make_one_email() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let mut handles = Vec::new();
    for _ in 0..8 {
        let request = app
            .authed(Method::POST, "/emails", &token)
            .header("Idempotency-Key", "race")
            .json(&simple("a@example.com"));
        handles.push(tokio::spawn(async move {
            request.send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for handle in handles {
        statuses.push(handle.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&200));
    assert_eq!(email_count(&app, &token).await, 1, "{statuses:?}");
}

#[tokio::test]
async fn scheduling_rescheduling_and_cancelling() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let in_an_hour = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let mut body = simple("a@example.com");
    body["scheduled_at"] = json!(in_an_hour);
    let (status, created) = app.send(&token, &body).await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let email = app.wait_for_status(&token, &id, "scheduled").await;
    assert!(email["scheduled_at"].is_string());

    // Bring it forward to almost now: it goes out.
    let soon = (chrono::Utc::now() + chrono::TimeDelta::milliseconds(300)).to_rfc3339();
    let (status, patched) = json(
        app.authed(Method::PATCH, &format!("/emails/{id}"), &token)
            .json(&json!({"scheduled_at": soon}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["object"], "email");
    app.wait_for_status(&token, &id, "sent").await;
    let late = app
        .authed(Method::POST, &format!("/emails/{id}/cancel"), &token)
        .send()
        .await
        .unwrap();
    expect_error(late, 422, "validation_error").await;

    // A scheduled email can be cancelled and then never goes out.
    let (_, created) = app.send(&token, &body).await;
    let id = created["id"].as_str().unwrap();
    let (status, canceled) = json(
        app.authed(Method::POST, &format!("/emails/{id}/cancel"), &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{canceled}");
    assert_eq!(canceled["last_event"], "canceled");
    assert!(
        app.store
            .delivery_queue()
            .job_for(id.parse().unwrap())
            .await
            .unwrap()
            .is_none()
    );

    // Times in the past, too far ahead or unreadable are refused.
    for bad in [
        (chrono::Utc::now() - chrono::TimeDelta::minutes(1)).to_rfc3339(),
        (chrono::Utc::now() + chrono::TimeDelta::days(31)).to_rfc3339(),
        "tomorrow".to_owned(),
        "2026-13-01T00:00:00Z".to_owned(),
    ] {
        let mut body = simple("a@example.com");
        body["scheduled_at"] = json!(bad);
        let response = app
            .authed(Method::POST, "/emails", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(response, 422, "validation_error").await;
    }
}

#[tokio::test]
async fn suppressed_recipients_are_not_sent_to() {
    let app = TestApp::spawn().await;
    let (org, token) = app.tenant().await;
    app.store
        .suppressions()
        .add(
            org,
            &EmailAddress::parse("bounced@example.com").unwrap(),
            Reason::Bounce,
            None,
        )
        .await
        .unwrap();
    // The address is matched after normalising the domain's case.
    let (_, only) = app.send(&token, &simple("bounced@EXAMPLE.com")).await;
    let email = app
        .wait_for_status(&token, only["id"].as_str().unwrap(), "suppressed")
        .await;
    assert!(email["raw"].is_null(), "nothing was sent");

    let mut mixed = simple("bounced@example.com");
    mixed["to"] = json!(["bounced@example.com", "fine@example.com"]);
    let (_, partly) = app.send(&token, &mixed).await;
    let id = partly["id"].as_str().unwrap();
    app.wait_for_status(&token, id, "sent").await;
    let recipients = app
        .store
        .emails()
        .recipients(id.parse().unwrap())
        .await
        .unwrap();
    let status_of = |a: &str| {
        recipients
            .iter()
            .find(|r| r.address.as_str() == a)
            .unwrap()
            .status
    };
    assert_eq!(
        status_of("bounced@example.com"),
        RecipientStatus::Suppressed
    );
    assert_eq!(status_of("fine@example.com"), RecipientStatus::Accepted);
}

#[tokio::test]
async fn another_organizations_emails_are_invisible() {
    let app = TestApp::spawn().await;
    let (_, token_a) = app.tenant().await;
    let (_, token_b) = app.tenant().await;
    let mut body = simple("a@example.com");
    body["scheduled_at"] = json!((chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339());
    let (_, created) = app.send(&token_a, &body).await;
    let id = created["id"].as_str().unwrap();
    for (method, path, body) in [
        (Method::GET, format!("/emails/{id}"), None),
        (Method::POST, format!("/emails/{id}/cancel"), None),
        (
            Method::PATCH,
            format!("/emails/{id}"),
            Some(
                json!({"scheduled_at": (chrono::Utc::now() + chrono::TimeDelta::hours(2)).to_rfc3339()}),
            ),
        ),
    ] {
        let mut request = app.authed(method, &path, &token_b);
        if let Some(body) = body {
            request = request.json(&body);
        }
        expect_error(request.send().await.unwrap(), 404, "not_found").await;
    }
    assert_eq!(email_count(&app, &token_b).await, 0);
    assert_eq!(email_count(&app, &token_a).await, 1);
    app.wait_for_status(&token_a, id, "scheduled").await;
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let with = |field: &str, value: Value| {
        let mut body = simple("a@example.com");
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = simple("a@example.com");
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let many = |n: usize| {
        Value::from(
            (0..n)
                .map(|i| format!("u{i}@example.com"))
                .collect::<Vec<_>>(),
        )
    };
    let cases: Vec<(Value, &str)> = vec![
        (without("from"), "missing_required_field"),
        (without("to"), "missing_required_field"),
        (without("subject"), "missing_required_field"),
        (
            json!({"from": "a@acme.test", "to": "b@example.com", "subject": "s"}),
            "missing_required_field",
        ),
        (with("from", json!("acme.test")), "validation_error"),
        (
            with("from", json!("Evil\r\nBcc: x@y.com <a@acme.test>")),
            "validation_error",
        ),
        (with("to", json!("not-an-address")), "validation_error"),
        (with("to", json!([])), "missing_required_field"),
        (with("to", many(51)), "validation_error"),
        (with("cc", many(51)), "validation_error"),
        (
            with("bcc", json!(["ok@example.com", "bad@"])),
            "validation_error",
        ),
        (with("to", json!(5)), "validation_error"),
        (
            with("subject", json!("Hi\r\nBcc: victim@example.com")),
            "validation_error",
        ),
        (with("subject", json!("x".repeat(999))), "validation_error"),
        (
            with("headers", json!({"Bcc": "x@y.com"})),
            "validation_error",
        ),
        (
            with("headers", json!({"From": "ceo@bank.com"})),
            "validation_error",
        ),
        (
            with("headers", json!({"Content-Type": "text/plain"})),
            "validation_error",
        ),
        (
            with("headers", json!({"DKIM-Signature": "v=1"})),
            "validation_error",
        ),
        (
            with("headers", json!({"X-Ok": "a\r\nBcc: x@y.com"})),
            "validation_error",
        ),
        (
            with("headers", json!({"Bad Name": "v"})),
            "validation_error",
        ),
        (with("headers", json!({"X-Num": 5})), "validation_error"),
        (
            with("tags", json!([{"name": "has space", "value": "v"}])),
            "validation_error",
        ),
        (
            with("tags", json!([{"name": "n", "value": "x".repeat(257)}])),
            "validation_error",
        ),
        (
            with(
                "attachments",
                json!([{"filename": "a.txt", "content": "%%%not base64"}]),
            ),
            "invalid_attachment",
        ),
        (
            with("attachments", json!([{"content": "aGk="}])),
            "invalid_attachment",
        ),
        (
            with(
                "attachments",
                json!([{"filename": "../etc/passwd", "content": "aGk="}]),
            ),
            "invalid_attachment",
        ),
        (
            with(
                "attachments",
                json!([{"filename": "a.txt", "path": "http://169.254.169.254/latest"}]),
            ),
            "invalid_attachment",
        ),
        (
            with(
                "attachments",
                json!([{"filename": "a.txt", "content": "aGk=", "content_type": "text"}]),
            ),
            "invalid_attachment",
        ),
        (with("template", json!({"id": "t"})), "validation_error"),
    ];
    for (body, name) in cases {
        let response = app
            .authed(Method::POST, "/emails", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let error = json(response).await.1;
        assert_eq!(
            (status, error["name"].as_str().unwrap()),
            (422, name),
            "{body}: {error}"
        );
    }
    let malformed = app
        .authed(Method::POST, "/emails", &token)
        .header("content-type", "application/json")
        .body("{\"from\": ")
        .send()
        .await
        .unwrap();
    expect_error(malformed, 400, "invalid_json").await;
    assert_eq!(email_count(&app, &token).await, 0, "nothing written");

    // Unknown fields are ignored.
    let mut extra = simple("a@example.com");
    extra["topic_id"] = json!("ignored");
    extra["something_new"] = json!({"nested": true});
    assert_eq!(app.send(&token, &extra).await.0, 200);
}

#[tokio::test]
async fn bodies_over_the_send_limit_are_413() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let mut body = simple("a@example.com");
    body["html"] = json!("x".repeat(41 * 1024 * 1024));
    let response = app
        .authed(Method::POST, "/emails", &token)
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_error(response, 413, "payload_too_large").await;
    // Over the encoded-size limit while under the body limit.
    let mut body = simple("a@example.com");
    body["html"] = json!("x".repeat(30 * 1024 * 1024));
    let response = app
        .authed(Method::POST, "/emails", &token)
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_error(response, 422, "validation_error").await;
    assert_eq!(email_count(&app, &token).await, 0);
}

#[tokio::test]
async fn outside_capture_an_unverified_sender_is_refused() {
    let app = TestApp::spawn_with(&[
        ("DELIVERY", "smtp"),
        ("SMTP_URL", "smtp://127.0.0.1:9?tls=none"),
    ])
    .await;
    let (_, token) = app.tenant().await;
    let response = app
        .authed(Method::POST, "/emails", &token)
        .json(&simple("a@example.com"))
        .send()
        .await
        .unwrap();
    let error = expect_error(response, 422, "invalid_from_address").await;
    assert!(error["message"].as_str().unwrap().contains("acme.test"));
}

#[tokio::test]
async fn sends_count_toward_quotas_and_batches_count_per_email() {
    let app = TestApp::spawn_with(&[
        ("QUOTA_DAILY_EMAILS", "3"),
        ("RATE_LIMIT_ORG_PER_SECOND", "1"),
        ("RATE_LIMIT_ORG_BURST", "40"),
    ])
    .await;
    let (_, token) = app.tenant().await;
    // A replay of an idempotent request does not count again.
    for _ in 0..3 {
        let response = app
            .authed(Method::POST, "/emails", &token)
            .header("Idempotency-Key", "same")
            .json(&simple("a@example.com"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let (status, _) = app.send(&token, &simple("b@example.com")).await;
    assert_eq!(status, 200);
    let batch = app
        .authed(Method::POST, "/emails/batch", &token)
        .json(&json!([simple("c@example.com"), simple("d@example.com")]))
        .send()
        .await
        .unwrap();
    let error = expect_error(batch, 429, "daily_quota_exceeded").await;
    assert!(error["message"].is_string());
    let (status, _) = app.send(&token, &simple("c@example.com")).await;
    assert_eq!(status, 200, "the third email of the day");
    let over = app
        .authed(Method::POST, "/emails", &token)
        .json(&simple("d@example.com"))
        .send()
        .await
        .unwrap();
    assert!(over.headers().get("retry-after").is_some());
    expect_error(over, 429, "daily_quota_exceeded").await;
    assert_eq!(email_count(&app, &token).await, 3);

    // A batch larger than the burst can never pass: refused with a message that says so.
    let (_, other) = app.tenant().await;
    let many: Vec<Value> = (0..41)
        .map(|i| simple(&format!("u{i}@example.com")))
        .collect();
    let response = app
        .authed(Method::POST, "/emails/batch", &other)
        .json(&many)
        .send()
        .await
        .unwrap();
    expect_error(response, 429, "rate_limit_exceeded").await;
}

/// Accepting reads only the sending domain: its DKIM keys are read and opened by delivery, so a key that
/// cannot be opened (here: a damaged sealed column) does not make accepting fail.
#[tokio::test]
async fn accepting_does_not_open_the_domains_dkim_keys() {
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let (status, domain) = json(
        app.authed(Method::POST, "/domains", &token)
            .json(&json!({"name": "acme.test"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{domain}");
    let db = Database::connect(app.db.url()).await.unwrap();
    let backend = db.get_database_backend();
    db.execute_unprepared("UPDATE domains SET status = 'verified'")
        .await
        .unwrap();
    let damage = match backend {
        DbBackend::Postgres => "UPDATE domain_dkim_keys SET private_key_sealed = $1",
        _ => "UPDATE domain_dkim_keys SET private_key_sealed = ?",
    };
    let damaged = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            damage,
            [vec![0u8; 3].into()],
        ))
        .await
        .unwrap();
    assert!(damaged.rows_affected() > 0, "the domain has DKIM keys");
    let _ = db.close().await;

    let (status, sent) = app.send(&token, &simple("jane@example.com")).await;
    assert_eq!(status, 200, "{sent}");
    let (_, email) = json(
        app.authed(
            Method::GET,
            &format!("/emails/{}", sent["id"].as_str().unwrap()),
            &token,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(email["unverified_sender"], false, "{email}");
}
