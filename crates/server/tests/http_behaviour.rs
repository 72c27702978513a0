//! What every route shares: JSON errors, body limits, request ids, health.

mod common;

use std::collections::HashSet;

use common::{TestApp, expect_error, json};
use reqwest::Method;

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_in_json() {
    let app = TestApp::spawn().await;
    for base in [&app.api, &app.ingester] {
        let response = app
            .client
            .get(format!("{base}/no-such-route"))
            .send()
            .await
            .unwrap();
        expect_error(response, 404, "not_found").await;
    }
    let response = app.request(Method::PUT, "/api-keys").send().await.unwrap();
    expect_error(response, 405, "method_not_allowed").await;
    let response = app
        .request(Method::DELETE, "/api/health")
        .send()
        .await
        .unwrap();
    expect_error(response, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn the_ingester_port_does_not_serve_the_api() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let response = app
        .client
        .get(format!("{}/api-keys", app.ingester))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
}

#[tokio::test]
async fn oversize_bodies_are_refused_with_413() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let name = "x".repeat(1024 * 1024 + 1);
    let response = app
        .authed(Method::POST, "/api-keys", &token)
        .json(&serde_json::json!({ "name": name }))
        .send()
        .await
        .unwrap();
    expect_error(response, 413, "payload_too_large").await;
}

#[tokio::test]
async fn json_bodies_on_get_and_delete_are_accepted() {
    // The Python SDK sends `{}` with every request.
    let app = TestApp::spawn().await;
    let (org, token) = app.tenant().await;
    let (id, _) = app.key(org, opensend_core::Permission::SendingAccess).await;
    let list = app
        .authed(Method::GET, "/api-keys", &token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(json(list).await.0, 200);
    let delete = app
        .authed(Method::DELETE, &format!("/api-keys/{id}"), &token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(json(delete).await.0, 200);
}

#[tokio::test]
async fn every_response_has_its_own_request_id() {
    let app = TestApp::spawn().await;
    let mut ids = HashSet::new();
    for path in ["/api/health", "/api-keys", "/nowhere"] {
        let response = app
            .request(Method::GET, path)
            .header("x-request-id", "client-chosen")
            .send()
            .await
            .unwrap();
        let id = response
            .headers()
            .get("x-request-id")
            .expect("x-request-id")
            .to_str()
            .unwrap()
            .to_owned();
        assert_ne!(id, "client-chosen");
        assert!(uuid::Uuid::try_parse(&id).is_ok(), "{id}");
        assert!(ids.insert(id));
    }
}

#[tokio::test]
async fn health_reports_the_database() {
    let app = TestApp::spawn().await;
    for url in [
        format!("{}/api/health", app.api),
        format!("{}/health", app.api),
        format!("{}/health", app.ingester),
    ] {
        let (status, body) = json(app.client.get(&url).send().await.unwrap()).await;
        assert_eq!(status, 200, "{url}");
        assert_eq!(body["status"], "ok");
    }
    // Closing the pool makes the database unreachable for the server too.
    app.store.clone().close().await;
    let (status, body) = json(
        app.client
            .get(format!("{}/api/health", app.api))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    // An authenticated route cannot look the key up either: a 503, not a 500 or a hang.
    let token = format!("os_{}", "B".repeat(43));
    let response = app
        .authed(Method::GET, "/api-keys", &token)
        .send()
        .await
        .unwrap();
    expect_error(response, 503, "service_unavailable").await;
}
