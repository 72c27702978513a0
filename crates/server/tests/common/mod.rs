//! A real server on port 0 over a fresh database, driven over HTTP.

#![allow(dead_code)]

use opensend_core::Permission;
use opensend_server::AppState;
use opensend_server::admin;
use opensend_server::app::Application;
use opensend_server::config::{Config, Vars};
use opensend_server::serve::{Roles, StopHandle};
use opensend_server::smtp::listener::SmtpAddrs;
use opensend_store::Store;
use opensend_test_support::TestDatabase;
use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use uuid::Uuid;

pub struct TestApp {
    /// `http://127.0.0.1:PORT` of the public API.
    pub api: String,
    /// `http://127.0.0.1:PORT` of the ingester.
    pub ingester: String,
    /// The SMTP listeners that are on (off unless the test set `SMTP_PORT`, `SMTPS_PORT` or `MX_PORT`).
    pub smtp: SmtpAddrs,
    pub client: reqwest::Client,
    pub store: Store,
    /// The state the server runs with, for driving jobs and helpers directly.
    pub state: AppState,
    pub db: TestDatabase,
    node: Node,
}

/// One running server; stops when dropped.
pub struct Node {
    pub api: String,
    pub ingester: String,
    /// The SMTP listeners that are on.
    pub smtp: SmtpAddrs,
    stop: StopHandle,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

/// The test defaults: a private data directory, free ports, and rate limits generous enough never to get
/// in a test's way (tests of limiting set their own). When `OPENSEND_TEST_REDIS_URL` is set, limits live
/// in that Redis under a key prefix of this server's own; `extra` can name a shared one.
async fn start_node(
    db: &TestDatabase,
    roles: Roles,
    extra: &[(&str, &str)],
) -> (Store, AppState, Node) {
    let data_dir = db.path("data");
    let mut vars = vec![
        ("DATABASE_URL".to_owned(), db.url().to_owned()),
        ("DATABASE_MAX_CONNECTIONS".to_owned(), "4".to_owned()),
        ("BIND_ADDRESS".to_owned(), "127.0.0.1".to_owned()),
        ("PORT".to_owned(), "0".to_owned()),
        ("INGESTER_PORT".to_owned(), "0".to_owned()),
        // The SMTP listeners are off unless a test turns them on (their port 0 means off).
        ("SMTP_PORT".to_owned(), "0".to_owned()),
        ("SMTPS_PORT".to_owned(), "0".to_owned()),
        ("DATA_DIR".to_owned(), data_dir.display().to_string()),
        ("WORKER_POLL_INTERVAL_MS".to_owned(), "50".to_owned()),
    ];
    for name in [
        "RATE_LIMIT_ORG_PER_SECOND",
        "RATE_LIMIT_ORG_BURST",
        "RATE_LIMIT_IP_PER_SECOND",
        "RATE_LIMIT_IP_BURST",
        "RATE_LIMIT_INGESTER_PER_SECOND",
        "RATE_LIMIT_INGESTER_BURST",
    ] {
        vars.push((name.to_owned(), GENEROUS_RATE.to_owned()));
    }
    if let Some(url) = test_redis_url() {
        vars.push(("RATE_LIMIT_BACKEND".to_owned(), "redis".to_owned()));
        vars.push(("REDIS_URL".to_owned(), url));
        vars.push(("RATE_LIMIT_REDIS_PREFIX".to_owned(), unique_redis_prefix()));
        // The 200 ms production default is about an answer under normal load; a debug build sharing the
        // machine's cores with the rest of the suite can be slower than that, which would turn a test about
        // something else into a 503. Tests of Redis timeouts set their own.
        vars.push(("RATE_LIMIT_REDIS_TIMEOUT_MS".to_owned(), "5000".to_owned()));
    }
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::from_vars(&Vars::from_pairs(vars)).expect("test config");
    // The same boot path as `opensend serve`: startup checks, migrations, the secrets-at-rest check.
    let app = Application::build(config, roles)
        .await
        .expect("the application starts");
    // A node without a listener gets an address nothing answers on, so a test that wrongly talks to it fails.
    let url = |addr: Option<std::net::SocketAddr>| {
        addr.map_or_else(
            || "http://127.0.0.1:9".to_owned(),
            |a| format!("http://{a}"),
        )
    };
    let api = url(app.api_addr());
    let ingester = url(app.ingester_addr());
    let smtp = *app.smtp_addrs();
    let stop = app.stop_handle();
    let state = app.state().clone();
    let store = state.store.clone();
    tokio::spawn(app.wait());
    (
        store,
        state,
        Node {
            api,
            ingester,
            smtp,
            stop,
        },
    )
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Starts with extra environment settings on top of the test defaults.
    ///
    /// The defaults make rate limits generous enough never to get in a test's way (tests of limiting set
    /// their own). When `OPENSEND_TEST_REDIS_URL` is set, every app limits through that Redis, under a
    /// key prefix of its own.
    pub async fn spawn_with(extra: &[(&str, &str)]) -> Self {
        Self::spawn_roles(Roles::ALL, extra).await
    }

    /// Starts a process that runs only `roles` (e.g. an `api` node with no worker), with `extra` settings.
    pub async fn spawn_roles(roles: Roles, extra: &[(&str, &str)]) -> Self {
        let db = TestDatabase::new().await;
        let (store, state, node) = start_node(&db, roles, extra).await;
        Self {
            api: node.api.clone(),
            ingester: node.ingester.clone(),
            smtp: node.smtp,
            client: reqwest::Client::new(),
            store,
            state,
            db,
            node,
        }
    }

    /// Another server of the same deployment: same database, its own process state (and so its own
    /// in-memory rate limits), with `extra` settings on top of the test defaults.
    pub async fn another_node(&self, extra: &[(&str, &str)]) -> Node {
        self.another_node_with(Roles::ALL, extra).await
    }

    /// Another process of the same deployment running only `roles`.
    pub async fn another_node_with(&self, roles: Roles, extra: &[(&str, &str)]) -> Node {
        start_node(&self.db, roles, extra).await.2
    }

    pub async fn organization(&self, name: &str) -> Uuid {
        admin::create_organization(&self.store, name)
            .await
            .expect("organization")
            .id
    }

    /// A key for `organization`; returns (key id, token).
    pub async fn key(&self, organization: Uuid, permission: Permission) -> (Uuid, String) {
        let (key, token) =
            admin::create_api_key(&self.store, organization, "test key", permission, None)
                .await
                .expect("key");
        (key.id, token.expose().to_owned())
    }

    /// A new organization with a full-access key; returns (organization id, token).
    pub async fn tenant(&self) -> (Uuid, String) {
        let org = self.organization("Tenant").await;
        let (_, token) = self.key(org, Permission::FullAccess).await;
        (org, token)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{}", self.api, path))
    }

    pub fn authed(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.request(method, path).bearer_auth(token)
    }
}

impl TestApp {
    /// `POST /emails`; returns status and body.
    pub async fn send(&self, token: &str, body: &Value) -> (u16, Value) {
        json(
            self.authed(Method::POST, "/emails", token)
                .json(body)
                .send()
                .await
                .expect("send"),
        )
        .await
    }

    /// Polls `GET /emails/{id}` until `last_event` is `status` (the worker runs in the background), and
    /// returns the email. Panics with the last state seen if it never gets there.
    pub async fn wait_for_status(&self, token: &str, id: &str, status: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..200 {
            let (code, email) = json(
                self.authed(Method::GET, &format!("/emails/{id}"), token)
                    .send()
                    .await
                    .expect("get email"),
            )
            .await;
            assert_eq!(code, 200, "{email}");
            if email["last_event"] == status {
                return email;
            }
            last = email;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("email {id} never reached `{status}`; last seen: {last}");
    }
}

/// A port that was free a moment ago, for listeners whose port 0 means "off" (the SMTP ones).
///
/// Taken below the system's ephemeral range (32768 and up on Linux), where ports handed out for port 0 and for
/// outgoing connections come from: a port found free there could be taken by another test's connection before
/// the listener binds it. Here only this function hands ports out, in turn within the process (from a start
/// that differs between processes), skipping any that cannot be bound.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7_919) % COUNT,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..COUNT {
        let offset = NEXT.fetch_add(1, Ordering::SeqCst) % COUNT;
        let port = u16::try_from(FIRST + offset).expect("a port number");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {FIRST} and {}", FIRST + COUNT)
}

/// Rate and burst that no test reaches by accident.
pub const GENEROUS_RATE: &str = "1000000";

/// The variable that makes the whole suite limit through Redis.
pub const REDIS_VAR: &str = "OPENSEND_TEST_REDIS_URL";

/// `OPENSEND_TEST_REDIS_URL`, when set.
pub fn test_redis_url() -> Option<String> {
    std::env::var(REDIS_VAR)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// A Redis key prefix no other test (or run) uses.
pub fn unique_redis_prefix() -> String {
    format!("opensend-test:{}", Uuid::now_v7().simple())
}

/// One authenticated request with an optional JSON body: its status and JSON answer.
pub async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.authed(method, path, token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    json(request.send().await.unwrap()).await
}

/// Status and JSON body of a response, asserting the body is JSON with the right content type.
pub async fn json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("body");
    assert!(
        content_type.starts_with("application/json"),
        "status {status}: content-type {content_type:?}, body {text}"
    );
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, value)
}

/// Asserts the response is our error envelope with `status` and `name`.
pub async fn expect_error(response: reqwest::Response, status: u16, name: &str) -> Value {
    let (actual, body) = json(response).await;
    assert_eq!(actual, status, "{body}");
    assert_eq!(body["statusCode"], status, "{body}");
    assert_eq!(body["name"], name, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}
