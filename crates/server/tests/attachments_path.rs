//! Attachments given by `path`: fetched through the outbound guard when the email is accepted.
//!
//! The files come from a real HTTP server on loopback, so every test that expects a fetch to succeed runs
//! with `ALLOW_PRIVATE_WEBHOOK_URLS=true`; the default (private addresses refused) is tested on its own.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use common::{TestApp, expect_error, json};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, RecordType};
use opensend_test_support::dns::{Answer, TestDns};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const ALLOW_PRIVATE: (&str, &str) = ("ALLOW_PRIVATE_WEBHOOK_URLS", "true");

/// A file server on loopback; counts every request it answers.
struct Files {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Files {
    async fn start() -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let router = Router::new()
            .route(
                "/files/report%20Q1.txt",
                get(|| async {
                    (
                        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                        "hello from path",
                    )
                }),
            )
            .route(
                "/files/logo.png",
                get(|| async {
                    (
                        [(header::CONTENT_TYPE, "application/octet-stream")],
                        Bytes::from_static(b"\x89PNG\r\n\x1a\n-not-really"),
                    )
                }),
            )
            .route(
                "/files/{n}",
                get(
                    |axum::extract::Path(n): axum::extract::Path<String>| async move {
                        format!("file {n}")
                    },
                ),
            )
            .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
            .route(
                "/redirect",
                get(|| async {
                    (
                        StatusCode::FOUND,
                        [(header::LOCATION, "http://169.254.169.254/latest/meta-data")],
                    )
                }),
            )
            .route("/endless", get(endless))
            .route("/declared-huge", get(declared_huge))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "too late"
                }),
            )
            .layer(axum::middleware::from_fn_with_state(hits.clone(), count));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { addr, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn count(
    State(hits): State<Arc<AtomicUsize>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    hits.fetch_add(1, Ordering::SeqCst);
    next.run(request).await
}

/// A body that never ends, without a declared length.
async fn endless() -> impl IntoResponse {
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let stream = futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
    Body::from_stream(stream)
}

/// A body whose declared length alone is over the limit.
async fn declared_huge() -> impl IntoResponse {
    Body::from(vec![0u8; 30 * 1024 * 1024])
}

fn email_with(attachments: Value) -> Value {
    json!({
        "from": "Acme <hello@acme.test>",
        "to": "jane@example.com",
        "subject": "Your files",
        "text": "Attached.",
        "attachments": attachments,
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

/// Sends, expects a 422 `invalid_attachment`, and returns its message.
async fn refused(app: &TestApp, token: &str, attachments: Value) -> String {
    let response = app
        .authed(Method::POST, "/emails", token)
        .json(&email_with(attachments))
        .send()
        .await
        .unwrap();
    let body = expect_error(response, 422, "invalid_attachment").await;
    body["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn files_at_a_path_are_fetched_and_attached_in_order() {
    let files = Files::start().await;
    let app = TestApp::spawn_with(&[ALLOW_PRIVATE]).await;
    let (_, token) = app.tenant().await;
    let mut attachments = vec![
        json!({"path": files.url("/files/report%20Q1.txt")}),
        json!({"filename": "inline.txt", "content": "aGk="}),
        json!({"path": files.url("/files/logo.png"), "content_id": "logo"}),
        json!({"path": files.url("/files/logo.png"), "filename": "brand.bin", "content_type": "image/x-brand"}),
    ];
    // More files than are fetched at once, so the fetches overlap and must keep their order.
    for n in 0..6 {
        attachments.push(json!({"path": files.url(&format!("/files/{n}.txt"))}));
    }
    let (status, body) = app.send(&token, &email_with(json!(attachments))).await;
    assert_eq!(status, 200, "{body}");
    let id: Uuid = body["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(files.hits(), 9);

    let stored = app.store.emails().attachments(id).await.unwrap();
    let summary: Vec<(&str, &str, Option<&str>)> = stored
        .iter()
        .map(|a| {
            (
                a.filename.as_str(),
                a.content_type.as_str(),
                a.content_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary[..4],
        [
            ("report Q1.txt", "text/plain", None),
            ("inline.txt", "text/plain", None),
            ("logo.png", "image/png", Some("logo")),
            ("brand.bin", "image/x-brand", None),
        ]
    );
    assert_eq!(stored[0].content, b"hello from path");
    assert_eq!(stored[1].content, b"hi");
    assert_eq!(stored[2].content, b"\x89PNG\r\n\x1a\n-not-really");
    for n in 0..6 {
        assert_eq!(stored[4 + n].filename, format!("{n}.txt"));
        assert_eq!(stored[4 + n].content, format!("file {n}.txt").as_bytes());
    }

    // The captured message carries the fetched file.
    let email = app.wait_for_status(&token, &id.to_string(), "sent").await;
    let raw = email["raw"].as_str().unwrap();
    assert!(
        raw.contains("filename=\"report Q1.txt\"") && raw.contains("hello from path"),
        "{raw}"
    );
    let png = base64::engine::general_purpose::STANDARD.encode(&stored[2].content);
    assert!(raw.contains(&png), "{raw}");
}

#[tokio::test]
async fn private_addresses_are_refused_by_default() {
    let files = Files::start().await;
    let dns = TestDns::start().await;
    dns.set(
        "files.example.test",
        RecordType::A,
        Answer::Records(vec![RData::A(A(Ipv4Addr::LOCALHOST))]),
    );
    let resolver = dns.addr().to_string();
    let app = TestApp::spawn_with(&[("DNS_RESOLVER", resolver.as_str())]).await;
    let (_, token) = app.tenant().await;

    let message = refused(
        &app,
        &token,
        json!([{"path": files.url("/files/report%20Q1.txt")}]),
    )
    .await;
    assert_eq!(
        message,
        "attachments[0]: `path` is not a public address; attachments can only be fetched from public addresses."
    );

    let port = files.addr.port();
    let message = refused(
        &app,
        &token,
        json!([
            {"filename": "ok.txt", "content": "aGk="},
            {"path": format!("http://files.example.test:{port}/files/report%20Q1.txt")},
        ]),
    )
    .await;
    assert_eq!(
        message,
        "attachments[1]: `path` is not a public address; attachments can only be fetched from public addresses."
    );

    let message = refused(
        &app,
        &token,
        json!([{"path": "http://169.254.169.254/latest/meta-data/iam"}]),
    )
    .await;
    assert_eq!(
        message,
        "attachments[0]: `path` is not a public address; attachments can only be fetched from public addresses."
    );

    assert_eq!(files.hits(), 0, "nothing was fetched");
    assert_eq!(email_count(&app, &token).await, 0, "nothing written");
}

#[tokio::test]
async fn failed_fetches_are_refused_and_write_nothing() {
    let files = Files::start().await;
    let app = TestApp::spawn_with(&[ALLOW_PRIVATE]).await;
    let (_, token) = app.tenant().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };

    let cases = [
        (
            json!([{"path": files.url("/missing")}]),
            "attachments[0]: fetching `path` answered HTTP 404 Not Found; only a 2xx answer is accepted.",
        ),
        (
            json!([{"filename": "a.txt", "content": "aGk="}, {"path": files.url("/redirect")}]),
            "attachments[1]: fetching `path` answered HTTP 302 Found; only a 2xx answer is accepted (redirects are not followed).",
        ),
        (
            json!([{"path": files.url("/endless")}]),
            "attachments[0]: the file at `path` is too large: the message would be over 40 MiB once encoded.",
        ),
        (
            json!([{"path": files.url("/declared-huge")}]),
            "attachments[0]: the file at `path` is too large: the message would be over 40 MiB once encoded.",
        ),
        (
            json!([{"path": "ftp://files.example.test/a.txt"}]),
            "attachments[0]: `path` must be an http:// or https:// URL, not `ftp:`.",
        ),
        (
            json!([{"path": "http://user:secret@127.0.0.1/a.txt"}]),
            "attachments[0]: `path` must not contain a user name or password.",
        ),
        (
            json!([{"path": files.url("/")}]),
            "attachments[0]: `filename` is required: the `path` URL does not end in a usable file name.",
        ),
    ];
    for (attachments, expected) in cases {
        let message = refused(&app, &token, attachments.clone()).await;
        assert_eq!(message, expected, "{attachments}");
    }
    // One good file and one failing: the whole email is refused.
    let message = refused(
        &app,
        &token,
        json!([
            {"path": files.url("/files/1.txt")},
            {"path": format!("http://127.0.0.1:{closed}/gone.txt")},
        ]),
    )
    .await;
    assert!(
        message.starts_with("attachments[1]: fetching `path` failed: could not connect"),
        "{message}"
    );
    // What the connection attempt met is told without the address and port it was made to.
    let after_url = message.rsplit("failed:").next().unwrap_or_default();
    assert!(
        !after_url.contains("127.0.0.1") && !after_url.contains(&closed.to_string()),
        "{message}"
    );
    assert_eq!(email_count(&app, &token).await, 0, "nothing written");
}

#[tokio::test]
async fn a_fetch_that_takes_too_long_is_refused() {
    let files = Files::start().await;
    let app = TestApp::spawn_with(&[ALLOW_PRIVATE]).await;
    let (_, token) = app.tenant().await;
    let message = refused(&app, &token, json!([{"path": files.url("/slow")}])).await;
    assert_eq!(
        message,
        "attachments[0]: fetching `path` took longer than 10 seconds."
    );
    assert_eq!(email_count(&app, &token).await, 0);
}

#[tokio::test]
async fn an_idempotent_retry_does_not_fetch_again() {
    let files = Files::start().await;
    let app = TestApp::spawn_with(&[ALLOW_PRIVATE]).await;
    let (_, token) = app.tenant().await;
    let body = email_with(json!([{"path": files.url("/files/once.txt")}]));
    let send = || {
        app.authed(Method::POST, "/emails", &token)
            .header("idempotency-key", "fetch-once")
            .json(&body)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 200);
    let second = send().await.unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(files.hits(), 1);
    assert_eq!(email_count(&app, &token).await, 1);
}
