//! What every listener does to each request, whatever the route: a client that stalls while sending its body
//! is cut off (`BODY_READ_TIMEOUT_SECONDS`), a request that takes too long is answered 408
//! (`REQUEST_TIMEOUT_SECONDS`), and requests beyond `MAX_CONCURRENT_REQUESTS` are answered 503 at once.
//! Driven over raw TCP, because only a raw client can send half a request and then wait.

mod common;

use std::time::Duration;

use common::TestApp;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The first line of the answer and its JSON body, read until the server closes the connection.
async fn answer(connection: &mut (impl AsyncReadExt + Unpin)) -> (String, Value) {
    let mut raw = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(30), connection.read_to_end(&mut raw)).await;
    assert!(read.is_ok(), "the server never answered or closed");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    // A chunked body arrives as `size\r\nJSON\r\n0\r\n\r\n`; a sized one as the JSON alone.
    let json = body
        .lines()
        .find(|line| line.starts_with('{'))
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

/// Opens a connection and sends a `POST /emails` whose body is announced at `length` bytes but not sent.
async fn half_sent_request(app: &TestApp, token: &str, length: usize) -> TcpStream {
    let address = app.api.trim_start_matches("http://").to_owned();
    let mut connection = TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /emails HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n{{\"from\""
    );
    connection.write_all(head.as_bytes()).await.unwrap();
    connection.flush().await.unwrap();
    connection
}

#[tokio::test]
async fn a_client_that_stalls_while_sending_its_body_is_cut_off() {
    let app = TestApp::spawn_with(&[("BODY_READ_TIMEOUT_SECONDS", "1")]).await;
    let (_, token) = app.tenant().await;
    // Announces 500 bytes, sends a few, then nothing: the server must not wait for the rest forever.
    let mut connection = half_sent_request(&app, &token, 500).await;
    let (status, body) = answer(&mut connection).await;
    assert!(status.starts_with("HTTP/1.1 4"), "{status} {body}");
    assert!(body["name"].is_string(), "our error shape: {body}");
    // Nothing was accepted.
    let (_, list) = common::json(
        app.authed(reqwest::Method::GET, "/emails", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(0), "{list}");
}

#[tokio::test]
async fn a_request_that_takes_too_long_is_answered_408() {
    let app = TestApp::spawn_with(&[
        ("REQUEST_TIMEOUT_SECONDS", "1"),
        ("BODY_READ_TIMEOUT_SECONDS", "30"),
    ])
    .await;
    let (_, token) = app.tenant().await;
    // Keeps sending (so the body-read timeout never fires) but never finishes within the request timeout.
    let connection = half_sent_request(&app, &token, 10_000).await;
    let (mut reader, mut writer) = connection.into_split();
    let dribble = tokio::spawn(async move {
        for _ in 0..100 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let (status, body) = answer(&mut reader).await;
    dribble.abort();
    assert!(status.starts_with("HTTP/1.1 408"), "{status} {body}");
    assert_eq!(body["name"], "request_timeout", "{body}");
}

#[tokio::test]
async fn requests_beyond_the_concurrency_limit_are_answered_503_at_once() {
    let app = TestApp::spawn_with(&[
        ("MAX_CONCURRENT_REQUESTS", "1"),
        ("BODY_READ_TIMEOUT_SECONDS", "30"),
    ])
    .await;
    let (_, token) = app.tenant().await;
    // One request holds the only slot while its body is awaited.
    let held = half_sent_request(&app, &token, 500).await;
    let mut refused = None;
    for _ in 0..50 {
        let response = app
            .authed(reqwest::Method::GET, "/api-keys", &token)
            .send()
            .await
            .unwrap();
        if response.status() == 503 {
            refused = Some(response);
            break;
        }
        // The held request may not have reached the handler yet.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = refused.expect("a second request while the slot is held is refused");
    common::expect_error(refused, 503, "service_unavailable").await;
    drop(held);
    // Once the slot is free again, requests pass.
    let mut passed = false;
    for _ in 0..100 {
        let status = app
            .authed(reqwest::Method::GET, "/api-keys", &token)
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            passed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(passed, "the slot is given back");
}
