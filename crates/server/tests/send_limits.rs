//! The send routes' body limits: counts refused while the body is parsed (before the rest is read), nesting,
//! the batch body limit, large bodies parsed as they stream in (idempotency included), malformed emails of
//! a batch, and the custom headers that cannot be given.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use common::{TestApp, expect_error, json};
use opensend_server::api::emails::limits;
use reqwest::Method;
use serde_json::{Value, json};

fn simple(to: &str) -> Value {
    json!({
        "from": "Acme <hello@acme.test>",
        "to": to,
        "subject": "Hello",
        "html": "<p>Hi</p>",
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

/// A chunked body: `head`, then `tail` repeated until `total` bytes have been offered. `sent` counts the
/// bytes the client handed over.
fn streamed(head: &str, tail: &str, total: usize, sent: Arc<AtomicUsize>) -> reqwest::Body {
    let head = head.as_bytes().to_vec();
    let tail = tail.repeat((64 * 1024 / tail.len()).max(1)).into_bytes();
    let mut offered = 0;
    let chunks = std::iter::once(head)
        .chain(std::iter::repeat(tail))
        .take_while(move |chunk| {
            offered += chunk.len();
            offered <= total + chunk.len()
        })
        .map(move |chunk| {
            sent.fetch_add(chunk.len(), Ordering::Relaxed);
            Ok::<_, std::io::Error>(chunk)
        });
    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
}

/// `body` cut into `pieces` chunks, sent without a `Content-Length`.
fn chunked(body: &[u8], pieces: usize) -> reqwest::Body {
    let size = body.len().div_ceil(pieces);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(size).map(|c| Ok(c.to_vec())).collect();
    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
}

#[tokio::test]
async fn a_body_over_a_count_limit_is_refused_where_the_parser_reaches_it() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let head = r#"{"from": "a@acme.test", "subject": "s", "html": "h", "#;
    // Each body would go on to twice the route's limit: answered with the count's 422, not with the 413 a
    // server reading the whole body first would give.
    let cases = [
        (
            "/emails",
            format!(r#"{head}"to": ["#),
            r#""x@example.com","#,
            "`to` has more than 50 addresses.",
        ),
        (
            "/emails",
            format!(r#"{head}"headers": {{"#),
            r#""X-A": "v","#,
            "`headers` has more than 50 entries.",
        ),
        (
            "/emails",
            format!(r#"{head}"tags": ["#),
            r#"{"name": "n", "value": "v"},"#,
            "`tags` has more than 50 entries.",
        ),
        (
            "/emails",
            format!(r#"{head}"attachments": ["#),
            "{},",
            "At most 100 attachments per email.",
        ),
        (
            "/emails/batch",
            format!(r#"[{head}"to": "a@example.com", "cc": ["#),
            r#""x@example.com","#,
            "emails[0]: `cc` has more than 50 addresses.",
        ),
        (
            "/emails/batch",
            "[".to_owned(),
            r#"{"to": "a@example.com"},"#,
            "A batch holds at most 100 emails.",
        ),
    ];
    for (path, head, tail, message) in cases {
        let limit = if path == "/emails" {
            limits::BODY_BYTES
        } else {
            limits::BATCH_BODY_BYTES
        };
        let sent = Arc::new(AtomicUsize::new(0));
        let response = app
            .authed(Method::POST, path, &token)
            .header("content-type", "application/json")
            .body(streamed(&head, tail, 2 * limit, sent.clone()))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let (_, error) = json(response).await;
        assert_eq!(status, 422, "{path} {head}: {error}");
        assert_eq!(error["message"], message, "{path} {head}");
    }
    assert_eq!(email_count(&app, &token).await, 0, "nothing written");
}

/// A client that writes its whole request before reading the answer, as Python's `http.client` (under
/// `requests` and the Resend SDK) does, still gets the 422 of a body refused early: the server reads and drops
/// the rest instead of resetting the connection under it.
#[tokio::test]
async fn a_client_that_sends_everything_before_reading_gets_the_refusal() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    // `to` first (a `Value` would sort it after `html`): refused within the first kilobytes of 24 MiB.
    let to = json!(
        (0..51)
            .map(|i| format!("u{i}@example.com"))
            .collect::<Vec<_>>()
    );
    let body = format!(
        r#"{{"from": "a@acme.test", "subject": "s", "to": {to}, "html": "{}"}}"#,
        "x".repeat(24 * 1024 * 1024)
    );
    let address = app.api.trim_start_matches("http://").to_owned();
    let request = format!(
        "POST /emails HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // On a thread of its own, as a separate client process would be: write everything, then read.
    let answers = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        (0..3)
            .map(|_| {
                let mut stream = std::net::TcpStream::connect(&address).unwrap();
                stream
                    .write_all(request.as_bytes())
                    .expect("the server takes the whole body");
                let mut answer = Vec::new();
                stream.read_to_end(&mut answer).unwrap();
                String::from_utf8_lossy(&answer).into_owned()
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for answer in answers {
        assert!(answer.starts_with("HTTP/1.1 422"), "{answer}");
        assert!(
            answer.contains("`to` has more than 50 addresses."),
            "{answer}"
        );
    }
    assert_eq!(email_count(&app, &token).await, 0);
}

#[tokio::test]
async fn json_nested_too_deep_is_refused_wherever_it_is() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let nested = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
    let with_field = |field: &str, value: &str| {
        let mut body = simple("a@example.com").to_string();
        body.pop();
        format!(r#"{body}, "{field}": {value}}}"#)
    };
    // The email object is level 1: a field holding 31 nested arrays reaches the limit, 32 go over it.
    let at_limit = with_field("unknown", &nested(limits::JSON_DEPTH - 1));
    let response = app
        .authed(Method::POST, "/emails", &token)
        .header("content-type", "application/json")
        .body(at_limit)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let big_html = "x".repeat(2 * 1024 * 1024);
    for (field, value) in [
        ("unknown", nested(limits::JSON_DEPTH)),
        ("template", nested(100_000)),
        (
            "template",
            format!(r#"{{"id": "t", "variables": {}}}"#, nested(40)),
        ),
        ("headers", format!(r#"{{"X-A": {}}}"#, nested(40))),
    ] {
        // From memory, and streamed in after 2 MiB of HTML.
        let small = with_field(field, &value);
        let mut large =
            json!({"from": "a@acme.test", "to": "b@example.com", "subject": "s", "html": big_html})
                .to_string();
        large.pop();
        let large = format!(r#"{large}, "{field}": {value}}}"#);
        for body in [small, large] {
            let response = app
                .authed(Method::POST, "/emails", &token)
                .header("content-type", "application/json")
                .body(chunked(body.as_bytes(), 3))
                .send()
                .await
                .unwrap();
            let error = expect_error(response, 422, "validation_error").await;
            assert_eq!(
                error["message"],
                format!("The JSON nests deeper than {} levels.", limits::JSON_DEPTH),
                "{field}"
            );
        }
    }
    assert_eq!(email_count(&app, &token).await, 1);
}

#[tokio::test]
async fn batch_bodies_have_a_smaller_limit_enforced_while_reading() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let with_html = |to: &str, bytes: usize| {
        let mut email = simple(to);
        email["html"] = json!("x".repeat(bytes));
        email
    };
    // Three emails of 6 MiB each: under the single-send limit, over the batch body limit.
    let over = json!([
        with_html("a@example.com", 6 << 20),
        with_html("b@example.com", 6 << 20),
        with_html("c@example.com", 6 << 20),
    ])
    .to_string();
    assert!(over.len() > limits::BATCH_BODY_BYTES && over.len() < limits::BODY_BYTES);
    let declared = app
        .authed(Method::POST, "/emails/batch", &token)
        .header("content-type", "application/json")
        .body(over.clone())
        .send()
        .await
        .unwrap();
    let error = expect_error(declared, 413, "payload_too_large").await;
    assert!(
        error["message"].as_str().unwrap().contains("16 MiB"),
        "{error}"
    );
    let undeclared = app
        .authed(Method::POST, "/emails/batch", &token)
        .header("content-type", "application/json")
        .body(chunked(over.as_bytes(), 40))
        .send()
        .await
        .unwrap();
    expect_error(undeclared, 413, "payload_too_large").await;
    assert_eq!(email_count(&app, &token).await, 0, "nothing written");

    // Under it, a batch of large emails streams in and is sent.
    let under = json!([
        with_html("a@example.com", 5 << 20),
        with_html("b@example.com", 5 << 20),
    ])
    .to_string();
    let (status, body) = json(
        app.authed(Method::POST, "/emails/batch", &token)
            .header("content-type", "application/json")
            .body(chunked(under.as_bytes(), 20))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn large_bodies_stream_in_with_their_attachments_and_idempotency_intact() {
    let app = TestApp::spawn().await;
    let (org, token) = app.tenant().await;
    let file: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut email = simple("a@example.com");
    email["attachments"] = json!([
        {"filename": "big.bin", "content": base64::engine::general_purpose::STANDARD.encode(&file)},
        {"filename": "small.txt", "content": {"type": "Buffer", "data": [104, 105]}},
    ]);
    let body = email.to_string();
    assert!(body.len() > 4 * 1024 * 1024, "over the in-memory threshold");

    // Streamed without a length, then replayed with one: the same bytes, the same fingerprint.
    let first = app
        .authed(Method::POST, "/emails", &token)
        .header("Idempotency-Key", "large-1")
        .header("content-type", "application/json")
        .body(chunked(body.as_bytes(), 17))
        .send()
        .await
        .unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let (status, first) = json(first).await;
    assert_eq!(status, 200, "{first}");
    let id = first["id"].as_str().unwrap();
    let stored = app
        .store
        .emails()
        .attachments(id.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored[0].content == file, "the file arrives intact");
    assert_eq!(stored[1].content, b"hi");

    let again = app
        .authed(Method::POST, "/emails", &token)
        .header("Idempotency-Key", "large-1")
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(json(again).await.1["id"], id);

    // One byte different (still valid): another request.
    let mut other = email.clone();
    other["subject"] = json!("Hellp");
    let different = app
        .authed(Method::POST, "/emails", &token)
        .header("Idempotency-Key", "large-1")
        .header("content-type", "application/json")
        .body(chunked(other.to_string().as_bytes(), 5))
        .send()
        .await
        .unwrap();
    expect_error(different, 409, "invalid_idempotent_request").await;

    // The streamed fingerprint is the in-memory one: a claim made with it holds the key.
    app.store
        .idempotency()
        .claim(
            org,
            "large-2",
            opensend_server::idempotency::fingerprint("POST /emails", body.as_bytes()),
            chrono::TimeDelta::hours(1),
        )
        .await
        .unwrap();
    let busy = app
        .authed(Method::POST, "/emails", &token)
        .header("Idempotency-Key", "large-2")
        .header("content-type", "application/json")
        .body(chunked(body.as_bytes(), 9))
        .send()
        .await
        .unwrap();
    expect_error(busy, 409, "concurrent_idempotent_requests").await;
    assert_eq!(email_count(&app, &token).await, 1);
}

#[tokio::test]
async fn a_large_body_that_is_not_json_is_a_400() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let mut valid = simple("a@example.com");
    valid["html"] = json!("x".repeat(2 * 1024 * 1024));
    let valid = valid.to_string();
    for body in [
        valid[..valid.len() - 1].to_owned(),
        format!("{valid} trailing"),
        format!("{valid}{valid}"),
    ] {
        let response = app
            .authed(Method::POST, "/emails", &token)
            .header("content-type", "application/json")
            .body(chunked(body.as_bytes(), 4))
            .send()
            .await
            .unwrap();
        expect_error(response, 400, "invalid_json").await;
    }
    assert_eq!(email_count(&app, &token).await, 0);
}

#[tokio::test]
async fn malformed_emails_of_a_batch_are_reported_by_index() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let mut bad_header = simple("e@example.com");
    bad_header["headers"] = json!({"X-Num": 5});
    let mut bad_to = simple("c@example.com");
    bad_to["to"] = json!(5);
    let batch = json!([
        simple("a@example.com"),
        "hello",
        bad_to,
        null,
        simple("d@example.com"),
        bad_header,
        [1, 2, 3],
    ]);

    let strict = app
        .authed(Method::POST, "/emails/batch", &token)
        .json(&batch)
        .send()
        .await
        .unwrap();
    let error = expect_error(strict, 422, "validation_error").await;
    assert_eq!(
        error["message"],
        "emails[1]: An email must be a JSON object."
    );
    assert_eq!(email_count(&app, &token).await, 0);

    let (status, body) = json(
        app.authed(Method::POST, "/emails/batch", &token)
            .header("x-batch-validation", "permissive")
            .json(&batch)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    let errors = body["errors"].as_array().unwrap();
    let indices: Vec<_> = errors
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, [1, 2, 3, 5, 6]);
    assert_eq!(
        errors[1]["message"],
        "`to` must be an email address or an array of them."
    );
    assert_eq!(
        errors[3]["message"],
        "Header `X-Num` must have a string value."
    );
    assert_eq!(email_count(&app, &token).await, 2);

    // A limit refused inside one email refuses the batch, permissive or not; so does a body that is not
    // JSON.
    let mut too_many = simple("f@example.com");
    too_many["to"] = json!(
        (0..51)
            .map(|i| format!("u{i}@example.com"))
            .collect::<Vec<_>>()
    );
    let response = app
        .authed(Method::POST, "/emails/batch", &token)
        .header("x-batch-validation", "permissive")
        .json(&json!([simple("g@example.com"), too_many]))
        .send()
        .await
        .unwrap();
    let error = expect_error(response, 422, "validation_error").await;
    assert_eq!(
        error["message"],
        "emails[1]: `to` has more than 50 addresses."
    );
    let response = app
        .authed(Method::POST, "/emails/batch", &token)
        .header("x-batch-validation", "permissive")
        .header("content-type", "application/json")
        .body(r#"[{"to": "a@example.com"}, {"#)
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "invalid_json").await;
    assert_eq!(email_count(&app, &token).await, 2, "nothing more written");
}

#[tokio::test]
async fn reserved_and_repeated_custom_headers_are_refused() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let with_headers = |headers: Value| {
        let mut body = simple("a@example.com");
        body["headers"] = headers;
        body
    };
    for name in [
        "X-SES-CONFIGURATION-SET",
        "x-ses-source-arn",
        "X-SES-Message-Tags",
        "X-Ses-Anything-New",
        "Resent-From",
        "resent-message-id",
        "Authentication-Results",
        "ARC-Seal",
        "arc-message-signature",
        "ARC-Authentication-Results",
        "Received-SPF",
        "DKIM-Signature",
        "dkim-signature",
        "Return-Path",
        "RECEIVED",
        "Content-Transfer-Encoding",
    ] {
        let response = app
            .authed(Method::POST, "/emails", &token)
            .json(&with_headers(json!({ name: "x" })))
            .send()
            .await
            .unwrap();
        let error = expect_error(response, 422, "validation_error").await;
        assert!(
            error["message"].as_str().unwrap().contains(name),
            "{name}: {error}"
        );
    }
    for (first, second) in [("X-Foo", "x-foo"), ("List-Unsubscribe", "LIST-UNSUBSCRIBE")] {
        let body = format!(
            r#"{{"from": "a@acme.test", "to": "b@example.com", "subject": "s", "text": "t",
                "headers": {{"{first}": "1", "{second}": "2"}}}}"#
        );
        let response = app
            .authed(Method::POST, "/emails", &token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let error = expect_error(response, 422, "validation_error").await;
        assert!(
            error["message"].as_str().unwrap().contains(second),
            "{error}"
        );
    }
    // The same name twice in the JSON object is a repeat too (it used to keep the last one silently).
    let response = app
        .authed(Method::POST, "/emails", &token)
        .header("content-type", "application/json")
        .body(
            r#"{"from": "a@acme.test", "to": "b@example.com", "subject": "s", "text": "t",
                "headers": {"X-Foo": "1", "X-Foo": "2"}}"#,
        )
        .send()
        .await
        .unwrap();
    expect_error(response, 422, "validation_error").await;
    assert_eq!(email_count(&app, &token).await, 0);

    // Names that only look alike are fine.
    let (status, body) = app
        .send(
            &token,
            &with_headers(json!({
                "X-Entity-Ref-ID": "1",
                "X-Sesame": "2",
                "List-Unsubscribe": "<mailto:u@acme.test>",
                "X-Received-Note": "3",
                "Archive": "4",
            })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Large bodies are parsed a few at a time: while every place is held by a request whose body is still
/// arriving, another large request waits (its body unread), and it is answered once a place frees up.
#[tokio::test]
async fn only_a_few_large_bodies_are_parsed_at_once() {
    use opensend_server::state::LARGE_SEND_BODIES_AT_ONCE as LARGE_BODIES_AT_ONCE;

    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let body = json!({
        "from": "hello@acme.test", "to": "jane@example.com", "subject": "Large", "text": "x".repeat(3 << 20),
    })
    .to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let send = |body: reqwest::Body| {
        app.authed(Method::POST, "/emails", &token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // Requests that hold the places: half their body sent, the rest withheld.
    let mut holders = Vec::new();
    for _ in 0..LARGE_BODIES_AT_ONCE {
        let (more, rest) = futures::channel::mpsc::unbounded::<Result<Vec<u8>, std::io::Error>>();
        more.unbounded_send(Ok(head.as_bytes().to_vec())).unwrap();
        holders.push((more, tokio::spawn(send(reqwest::Body::wrap_stream(rest)))));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let waiting = tokio::spawn(send(reqwest::Body::from(body.clone())));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a large body is not parsed while every place is taken"
    );
    for (more, request) in holders {
        more.unbounded_send(Ok(tail.as_bytes().to_vec())).unwrap();
        more.close_channel();
        assert_eq!(request.await.unwrap().unwrap().status(), 200);
    }
    assert_eq!(waiting.await.unwrap().unwrap().status(), 200);
    assert_eq!(email_count(&app, &token).await, LARGE_BODIES_AT_ONCE + 1);
}
