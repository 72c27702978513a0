//! `GET /openapi.json` documents exactly the operations the API serves: every served route is in the
//! document, and every documented operation is served. Adding a route without `#[utoipa::path]` and
//! `routes!` fails here.
//!
//! The served paths are read from the API router itself (its debug form lists every path it matches);
//! which methods each path answers is then asked over HTTP, without a key: a method that is not served
//! is 405, a path that is not served is 404 `The requested endpoint does not exist.`, and anything else
//! (401 for want of a key, 200 for the public routes) means the route exists.

mod common;

use std::collections::BTreeSet;

use common::{TestApp, json};
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every path the API router matches (root and `/api` mounts), from its debug form.
fn served_paths(app: &TestApp) -> BTreeSet<String> {
    let router = opensend_server::api::routes(app.state.clone());
    let debug = format!("{router:?}");
    debug
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with('/'))
        // The fallback router's own entries (our 404 for everything else), not routes.
        .filter(|s| *s != "/" && !s.contains("__private__axum_fallback"))
        .map(str::to_owned)
        .collect()
}

fn documented_operations(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("paths");
    let mut operations = BTreeSet::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method).is_some() {
                operations.insert((method.to_owned(), path.clone()));
            }
        }
    }
    operations
}

/// `path` with every `{parameter}` replaced by a fresh id.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                Uuid::now_v7().to_string()
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn is_served(app: &TestApp, method: &str, path: &str) -> bool {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
    let response = app.request(method, &concrete(path)).send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    match status {
        405 => false,
        404 => body["message"] != "The requested endpoint does not exist.",
        _ => true,
    }
}

#[tokio::test]
async fn the_document_lists_exactly_the_served_operations() {
    let app = TestApp::spawn().await;
    let (status, document) = json(
        app.request(Method::GET, "/openapi.json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{document}");
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "{document}"
    );
    let documented = documented_operations(&document);

    let paths = served_paths(&app);
    let (mirrored, root): (BTreeSet<_>, BTreeSet<_>) =
        paths.iter().cloned().partition(|p| p.starts_with("/api/"));
    assert!(
        root.len() > 50,
        "the router's paths were not found: {paths:?}"
    );
    // The document describes the root mount; `/api` serves the same paths.
    let unmirrored: Vec<_> = root
        .iter()
        .filter(|p| !mirrored.contains(&format!("/api{p}")))
        .collect();
    assert!(
        unmirrored.is_empty(),
        "not served under /api: {unmirrored:?}"
    );
    assert_eq!(mirrored.len(), root.len(), "{mirrored:?}");

    let mut served = BTreeSet::new();
    for path in &root {
        for method in METHODS {
            if is_served(&app, method, path).await {
                served.insert((method.to_owned(), path.clone()));
            }
        }
    }
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in /openapi.json (add #[utoipa::path] and routes!): {undocumented:?}"
    );
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "in /openapi.json but not served: {unserved:?}"
    );
}

#[tokio::test]
async fn operations_have_unique_ids_and_declare_their_path_parameters() {
    let app = TestApp::spawn().await;
    let (_, document) = json(
        app.request(Method::GET, "/api/openapi.json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let mut ids = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        let wanted: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(ids.insert(id.to_owned()), "duplicate operationId {id:?}");
            let declared: BTreeSet<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert_eq!(declared, wanted, "{method} {path}");
        }
    }
    let components = &document["components"];
    // The request log is typed as Resend types it.
    for schema in ["Log", "LogSummary", "ListLogsResponse", "ErrorBody"] {
        assert!(
            components["schemas"][schema].is_object(),
            "{schema} missing: {components}"
        );
    }
    let log = &components["schemas"]["Log"]["properties"];
    for field in [
        "object",
        "id",
        "created_at",
        "endpoint",
        "method",
        "response_status",
        "user_agent",
        "request_body",
        "response_body",
    ] {
        assert!(log[field].is_object(), "Log.{field}: {log}");
    }
    assert!(
        components["securitySchemes"]["api_key"]["scheme"] == "bearer",
        "{components}"
    );
}
