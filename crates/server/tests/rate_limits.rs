//! Rate limits end to end: per organization, per key, per client address (before the key lookup), on the
//! ingester, behind proxies, and through Redis shared by several nodes or missing altogether.
//!
//! Tests that need Redis use `OPENSEND_TEST_REDIS_URL`, else `redis://127.0.0.1:6379`. When neither
//! answers they are skipped, unless `CI` is set: there a missing Redis fails them.

mod common;

/// A valid key for states built without the startup checks.
const TEST_ENCRYPTION_KEY: &str =
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

use std::time::{Duration, Instant};

use common::{TestApp, expect_error, json, unique_redis_prefix};
use opensend_core::Permission;
use opensend_server::AppState;
use opensend_server::admin::{self, RateLimitTarget};
use opensend_server::auth::ApiKeyContext;
use opensend_server::config::{Config, Vars};
use opensend_server::quota::reserve_emails;
use opensend_server::rate_limit::middleware::charge_additional;
use reqwest::{Method, Response};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

const LOCAL_REDIS: &str = "redis://127.0.0.1:6379";

/// The Redis to test against, or `None` to skip (never under CI).
async fn redis_url() -> Option<String> {
    let url = common::test_redis_url().unwrap_or_else(|| LOCAL_REDIS.to_owned());
    let reachable = match redis::Client::open(url.as_str()) {
        Ok(client) => tokio::time::timeout(
            Duration::from_secs(2),
            client.get_multiplexed_async_connection(),
        )
        .await
        .is_ok_and(|c| c.is_ok()),
        Err(_) => false,
    };
    if reachable {
        return Some(url);
    }
    if std::env::var("CI").is_ok_and(|v| !v.trim().is_empty()) {
        panic!("CI is set but Redis at {url} is unreachable");
    }
    eprintln!("skipping: Redis at {url} is unreachable (set CI to make this a failure)");
    None
}

/// Settings for each backend to run a test on: memory always, Redis when there is one.
async fn backends() -> Vec<Vec<(&'static str, String)>> {
    let mut all = vec![vec![("RATE_LIMIT_BACKEND", "memory".to_owned())]];
    if let Some(url) = redis_url().await {
        all.push(vec![
            ("RATE_LIMIT_BACKEND", "redis".to_owned()),
            ("REDIS_URL", url),
            ("RATE_LIMIT_REDIS_PREFIX", unique_redis_prefix()),
        ]);
    }
    all
}

fn with<'a>(
    base: &'a [(&'static str, String)],
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut vars: Vec<(&str, &str)> = base.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.extend_from_slice(extra);
    vars
}

fn header(response: &Response, name: &str) -> Option<u64> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Asserts a 429 in our envelope with the rate-limit headers and a retry-after of at least a second.
async fn expect_too_many(response: Response) {
    assert!(
        header(&response, "retry-after").is_some_and(|s| s >= 1),
        "{:?}",
        response.headers()
    );
    assert_eq!(header(&response, "ratelimit-remaining"), Some(0));
    assert!(header(&response, "ratelimit-limit").is_some());
    assert!(response.headers().contains_key("x-request-id"));
    expect_error(response, 429, "rate_limit_exceeded").await;
}

#[tokio::test]
async fn burst_is_exact_under_concurrent_requests() {
    for backend in backends().await {
        let app = TestApp::spawn_with(&with(
            &backend,
            &[
                ("RATE_LIMIT_ORG_PER_SECOND", "1"),
                ("RATE_LIMIT_ORG_BURST", "20"),
            ],
        ))
        .await;
        let (_, token) = app.tenant().await;
        let started = Instant::now();
        let mut requests = JoinSet::new();
        for _ in 0..60 {
            let request = app.authed(Method::GET, "/api-keys", &token);
            requests.spawn(async move { request.send().await.unwrap() });
        }
        let mut remaining_seen = Vec::new();
        let mut refused = 0;
        while let Some(response) = requests.join_next().await {
            let response = response.unwrap();
            match response.status().as_u16() {
                200 => {
                    assert_eq!(header(&response, "ratelimit-limit"), Some(20));
                    remaining_seen.push(header(&response, "ratelimit-remaining").unwrap());
                }
                429 => {
                    refused += 1;
                    expect_too_many(response).await;
                }
                other => panic!("unexpected status {other}"),
            }
        }
        let elapsed = started.elapsed();
        // One request a second comes back; within the first second exactly the burst passes.
        let refilled = elapsed.as_secs();
        let allowed = remaining_seen.len() as u64;
        assert!(
            (20..=20 + refilled).contains(&allowed),
            "{backend:?}: {allowed} allowed in {elapsed:?}"
        );
        assert_eq!(allowed + refused, 60);
        if refilled == 0 {
            remaining_seen.sort_unstable();
            assert_eq!(remaining_seen, (0..20).collect::<Vec<_>>(), "{backend:?}");
        }
    }
}

#[tokio::test]
async fn headers_count_down_and_reset_advances() {
    for backend in backends().await {
        let app = TestApp::spawn_with(&with(
            &backend,
            &[
                ("RATE_LIMIT_ORG_PER_SECOND", "1"),
                ("RATE_LIMIT_ORG_BURST", "3"),
            ],
        ))
        .await;
        let (_, token) = app.tenant().await;
        for (remaining, reset) in [(2, 1), (1, 2), (0, 3)] {
            let response = app
                .authed(Method::GET, "/api-keys", &token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(header(&response, "ratelimit-limit"), Some(3), "{backend:?}");
            assert_eq!(
                header(&response, "ratelimit-remaining"),
                Some(remaining),
                "{backend:?}"
            );
            assert_eq!(
                header(&response, "ratelimit-reset"),
                Some(reset),
                "{backend:?}"
            );
            assert!(!response.headers().contains_key("retry-after"));
        }
        let refused = app
            .authed(Method::GET, "/api-keys", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(header(&refused, "retry-after"), Some(1), "{backend:?}");
        assert_eq!(header(&refused, "ratelimit-reset"), Some(3), "{backend:?}");
        expect_too_many(refused).await;

        // Two seconds later two requests' worth has come back, and the bucket is closer to full.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let response = app
            .authed(Method::GET, "/api-keys", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{backend:?}");
        assert!(header(&response, "ratelimit-remaining").is_some_and(|r| r >= 1));
        assert!(header(&response, "ratelimit-reset").is_some_and(|r| r < 3));
    }
}

#[tokio::test]
async fn organizations_have_separate_buckets_and_overrides() {
    let app = TestApp::spawn_with(&[
        ("RATE_LIMIT_ORG_PER_SECOND", "1"),
        ("RATE_LIMIT_ORG_BURST", "5"),
    ])
    .await;
    let (busy, busy_token) = app.tenant().await;
    let (_, calm_token) = app.tenant().await;
    admin::set_rate_limit(
        &app.store,
        RateLimitTarget::Organization(busy),
        Some((1, 2)),
    )
    .await
    .unwrap();
    for _ in 0..2 {
        let response = app
            .authed(Method::GET, "/api-keys", &busy_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "ratelimit-limit"), Some(2));
    }
    expect_too_many(
        app.authed(Method::GET, "/api-keys", &busy_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    // Another organization is untouched and has the deployment default.
    let response = app
        .authed(Method::GET, "/api-keys", &calm_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "ratelimit-limit"), Some(5));
    assert_eq!(header(&response, "ratelimit-remaining"), Some(4));

    // Clearing the override returns the organization to the default on the next request.
    admin::set_rate_limit(&app.store, RateLimitTarget::Organization(busy), None)
        .await
        .unwrap();
    let response = app
        .authed(Method::GET, "/api-keys", &busy_token)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&response, "ratelimit-limit"), Some(5));
}

#[tokio::test]
async fn a_key_with_its_own_limit_is_held_to_it() {
    let app = TestApp::spawn().await;
    let org = app.organization("Keys").await;
    let (tight_id, tight) = app.key(org, Permission::FullAccess).await;
    let (_, free) = app.key(org, Permission::FullAccess).await;
    admin::set_rate_limit(&app.store, RateLimitTarget::ApiKey(tight_id), Some((1, 1)))
        .await
        .unwrap();
    let response = app
        .authed(Method::GET, "/api-keys", &tight)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "ratelimit-limit"), Some(1));
    expect_too_many(
        app.authed(Method::GET, "/api-keys", &tight)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let response = app
        .authed(Method::GET, "/api-keys", &free)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Out-of-range values are refused by the operator command.
    assert!(matches!(
        admin::set_rate_limit(&app.store, RateLimitTarget::ApiKey(tight_id), Some((0, 1))).await,
        Err(admin::AdminError::InvalidRateLimit)
    ));
}

#[tokio::test]
async fn routes_can_charge_a_request_as_several() {
    // What a batch send route does: the middleware counted the request as one, the route adds the rest.
    let app = TestApp::spawn().await;
    let org = app.organization("Batch").await;
    let vars = Vars::from_pairs([
        ("DATABASE_URL", app.db.url()),
        ("DATA_DIR", app.db.path("charge").to_str().unwrap()),
        ("WEBHOOK_SECRET_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY),
        ("RATE_LIMIT_ORG_PER_SECOND", "1"),
        ("RATE_LIMIT_ORG_BURST", "5"),
    ]);
    let state = AppState::new(app.store.clone(), Config::from_vars(&vars).unwrap()).unwrap();
    let context = ApiKeyContext {
        key_id: uuid::Uuid::now_v7(),
        organization_id: org,
        permission: Permission::SendingAccess,
        domain_id: None,
        key_rate_limit: None,
        organization_rate_limit: None,
        organization_daily_email_quota: None,
        organization_monthly_email_quota: None,
        key_label: "test key".to_owned(),
    };
    assert!(
        charge_additional(&state, &context, 0)
            .await
            .unwrap()
            .is_none()
    );
    let decision = charge_additional(&state, &context, 4)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((decision.limit, decision.remaining), (5, 1));
    let refused = charge_additional(&state, &context, 2).await.unwrap_err();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    // Larger than the whole burst: waiting would not help, and the message says so.
    let too_big = charge_additional(&state, &context, 9).await.unwrap_err();
    assert_eq!(too_big.status(), 429);
    let body = axum::body::to_bytes(too_big.into_body(), 4096)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["name"], "rate_limit_exceeded");
    assert!(
        body["message"].as_str().unwrap().contains("counts as 10"),
        "{body}"
    );
}

#[tokio::test]
async fn email_quotas_refuse_with_their_own_names_and_organizations_can_have_their_own() {
    let app = TestApp::spawn().await;
    let org = app.organization("Quota").await;
    let vars = Vars::from_pairs([
        ("DATABASE_URL", app.db.url()),
        ("DATA_DIR", app.db.path("quota").to_str().unwrap()),
        ("WEBHOOK_SECRET_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY),
        ("QUOTA_DAILY_EMAILS", "10"),
        ("QUOTA_MONTHLY_EMAILS", "15"),
    ]);
    let state = AppState::new(app.store.clone(), Config::from_vars(&vars).unwrap()).unwrap();
    let mut context = ApiKeyContext {
        key_id: uuid::Uuid::now_v7(),
        organization_id: org,
        permission: Permission::SendingAccess,
        domain_id: None,
        key_rate_limit: None,
        organization_rate_limit: None,
        organization_daily_email_quota: None,
        organization_monthly_email_quota: None,
        key_label: "test key".to_owned(),
    };
    reserve_emails(&state, &context, 8).await.unwrap();
    let refused = reserve_emails(&state, &context, 3).await.unwrap_err();
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry), "{retry}");
    let body = axum::body::to_bytes(refused.into_body(), 4096)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["name"], "daily_quota_exceeded", "{body}");
    reserve_emails(&state, &context, 2).await.unwrap();

    // The organization's own quota wins over the default (as authentication reads it from the row).
    admin::set_email_quotas(&app.store, org, Some(100), Some(12))
        .await
        .unwrap();
    let row = app.store.organizations().get(org).await.unwrap().unwrap();
    context.organization_daily_email_quota = row.daily_email_quota;
    context.organization_monthly_email_quota = row.monthly_email_quota;
    reserve_emails(&state, &context, 2).await.unwrap();
    let refused = reserve_emails(&state, &context, 1).await.unwrap_err();
    let body = axum::body::to_bytes(refused.into_body(), 4096)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["name"], "monthly_quota_exceeded", "{body}");
    assert_eq!(body["statusCode"], 429);

    // Without any quota configured nothing is counted or refused.
    let unlimited = AppState::new(
        app.store.clone(),
        Config::from_vars(&Vars::from_pairs([
            ("DATA_DIR", app.db.path("none").to_str().unwrap()),
            ("WEBHOOK_SECRET_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY),
        ]))
        .unwrap(),
    )
    .unwrap();
    context.organization_daily_email_quota = None;
    context.organization_monthly_email_quota = None;
    reserve_emails(&unlimited, &context, 1_000_000)
        .await
        .unwrap();
    assert!(matches!(
        admin::set_email_quotas(&app.store, org, Some(0), None).await,
        Err(admin::AdminError::InvalidQuota)
    ));
}

#[tokio::test]
async fn invented_keys_are_refused_before_the_database() {
    for backend in backends().await {
        let app = TestApp::spawn_with(&with(
            &backend,
            &[
                ("RATE_LIMIT_IP_PER_SECOND", "1"),
                ("RATE_LIMIT_IP_BURST", "3"),
                // So the test can speak from several addresses.
                ("TRUSTED_PROXY_HOPS", "1"),
            ],
        ))
        .await;
        let invented = format!("os_{}", "Z".repeat(43));
        let from = |ip: &str| {
            app.authed(Method::GET, "/api-keys", &invented)
                .header("x-forwarded-for", ip.to_owned())
        };
        for _ in 0..3 {
            let response = from("198.51.100.1").send().await.unwrap();
            assert_eq!(header(&response, "ratelimit-limit"), Some(3));
            expect_error(response, 403, "invalid_api_key").await;
        }
        expect_too_many(from("198.51.100.1").send().await.unwrap()).await;

        // With the database gone, a request that reached it would be a 503: the refused address gets its
        // 429 without getting that far, while a fresh address does reach it.
        app.store.clone().close().await;
        for _ in 0..5 {
            expect_too_many(from("198.51.100.1").send().await.unwrap()).await;
        }
        expect_error(
            from("198.51.100.2").send().await.unwrap(),
            503,
            "service_unavailable",
        )
        .await;
    }
}

#[tokio::test]
async fn valid_keys_do_not_draw_from_the_address_bucket() {
    let app = TestApp::spawn_with(&[
        ("RATE_LIMIT_IP_PER_SECOND", "1"),
        ("RATE_LIMIT_IP_BURST", "1"),
    ])
    .await;
    let (_, token) = app.tenant().await;
    for _ in 0..5 {
        let response = app
            .authed(Method::GET, "/api-keys", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    // Requests without a key do.
    let response = app.request(Method::GET, "/api-keys").send().await.unwrap();
    assert_eq!(header(&response, "ratelimit-limit"), Some(1));
    expect_error(response, 401, "missing_api_key").await;
    expect_too_many(app.request(Method::GET, "/nowhere").send().await.unwrap()).await;
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_trusted_proxies() {
    let limits = [
        ("RATE_LIMIT_IP_PER_SECOND", "1"),
        ("RATE_LIMIT_IP_BURST", "1"),
    ];
    // No trusted proxy: the header is the client's own words, and every request is the socket peer's.
    let app = TestApp::spawn_with(&limits).await;
    let send = |app: &TestApp, xff: &str| {
        app.request(Method::GET, "/api-keys")
            .header("x-forwarded-for", xff.to_owned())
            .send()
    };
    expect_error(
        send(&app, "192.0.2.1").await.unwrap(),
        401,
        "missing_api_key",
    )
    .await;
    expect_too_many(send(&app, "192.0.2.2").await.unwrap()).await;

    // One appending proxy: the last entry is the client; forged entries to its left change nothing.
    let mut one_hop = limits.to_vec();
    one_hop.push(("TRUSTED_PROXY_HOPS", "1"));
    let app = TestApp::spawn_with(&one_hop).await;
    expect_error(
        send(&app, "6.6.6.6, 203.0.113.9").await.unwrap(),
        401,
        "missing_api_key",
    )
    .await;
    expect_too_many(send(&app, "7.7.7.7, 203.0.113.9").await.unwrap()).await;
    expect_error(
        send(&app, "6.6.6.6, 203.0.113.10").await.unwrap(),
        401,
        "missing_api_key",
    )
    .await;

    // Two proxies: the second entry from the right.
    let mut two_hops = limits.to_vec();
    two_hops.push(("TRUSTED_PROXY_HOPS", "2"));
    let app = TestApp::spawn_with(&two_hops).await;
    expect_error(
        send(&app, "6.6.6.6, 203.0.113.9, 10.0.0.1").await.unwrap(),
        401,
        "missing_api_key",
    )
    .await;
    expect_too_many(send(&app, "203.0.113.9, 10.0.0.2").await.unwrap()).await;
    expect_error(
        send(&app, "203.0.113.9, 203.0.113.11, 10.0.0.1")
            .await
            .unwrap(),
        401,
        "missing_api_key",
    )
    .await;
}

#[tokio::test]
async fn the_ingester_limits_each_source_address() {
    let app = TestApp::spawn_with(&[
        ("RATE_LIMIT_INGESTER_PER_SECOND", "1"),
        ("RATE_LIMIT_INGESTER_BURST", "2"),
    ])
    .await;
    let url = format!("{}/health", app.ingester);
    for remaining in [1, 0] {
        let response = app.client.get(&url).send().await.unwrap();
        assert_eq!(header(&response, "ratelimit-remaining"), Some(remaining));
        assert_eq!(json(response).await.0, 200);
    }
    expect_too_many(app.client.get(&url).send().await.unwrap()).await;
    // The public API's buckets are separate.
    let response = app.request(Method::GET, "/health").send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn two_nodes_share_one_limit_through_redis() {
    let Some(url) = redis_url().await else { return };
    let prefix = unique_redis_prefix();
    let settings = [
        ("RATE_LIMIT_BACKEND", "redis"),
        ("REDIS_URL", url.as_str()),
        ("RATE_LIMIT_REDIS_PREFIX", prefix.as_str()),
        ("RATE_LIMIT_ORG_PER_SECOND", "1"),
        ("RATE_LIMIT_ORG_BURST", "6"),
    ];
    let app = TestApp::spawn_with(&settings).await;
    let other = app.another_node(&settings).await;
    let (_, token) = app.tenant().await;
    let mut allowed = 0;
    let started = Instant::now();
    for i in 0..12 {
        let base = if i % 2 == 0 { &app.api } else { &other.api };
        let response = app
            .client
            .get(format!("{base}/api-keys"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            allowed += 1;
        } else {
            expect_too_many(response).await;
        }
    }
    let refilled = started.elapsed().as_secs();
    assert!(
        (6..=6 + refilled).contains(&allowed),
        "{allowed} allowed across two nodes"
    );

    // The same two nodes with memory limits would each have allowed 6: the sharing is Redis's doing.
    let mut memory = settings.to_vec();
    memory[0] = ("RATE_LIMIT_BACKEND", "memory");
    let app = TestApp::spawn_with(&memory).await;
    let other = app.another_node(&memory).await;
    let (_, token) = app.tenant().await;
    let mut allowed = 0;
    for i in 0..12 {
        let base = if i % 2 == 0 { &app.api } else { &other.api };
        let response = app
            .client
            .get(format!("{base}/api-keys"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        allowed += u32::from(response.status() == 200);
    }
    assert_eq!(allowed, 12);
}

/// A port where nothing listens.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// A server that accepts connections and never answers: a Redis that hangs.
async fn silent_server() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0u8; 1024];
            let _ = socket.read(&mut buffer).await;
            held.push(socket);
        }
    });
    (port, task)
}

#[tokio::test]
async fn unreachable_redis_fails_closed_quickly() {
    let (silent, _server) = silent_server().await;
    for url in [
        format!("redis://127.0.0.1:{}", closed_port().await),
        format!("redis://127.0.0.1:{silent}"),
    ] {
        let app = TestApp::spawn_with(&[
            ("RATE_LIMIT_BACKEND", "redis"),
            ("REDIS_URL", url.as_str()),
            ("RATE_LIMIT_REDIS_TIMEOUT_MS", "150"),
        ])
        .await;
        let (_, token) = app.tenant().await;
        for _ in 0..3 {
            let started = Instant::now();
            let response = app
                .authed(Method::GET, "/api-keys", &token)
                .send()
                .await
                .unwrap();
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{url}: took {:?}",
                started.elapsed()
            );
            assert_eq!(header(&response, "retry-after"), Some(1), "{url}");
            expect_error(response, 503, "rate_limit_unavailable").await;
        }
        let response = app.request(Method::GET, "/api-keys").send().await.unwrap();
        expect_error(response, 503, "rate_limit_unavailable").await;
    }
}

#[tokio::test]
async fn unreachable_redis_fails_open_to_memory_limits() {
    let url = format!("redis://127.0.0.1:{}", closed_port().await);
    let app = TestApp::spawn_with(&[
        ("RATE_LIMIT_BACKEND", "redis"),
        ("REDIS_URL", url.as_str()),
        ("RATE_LIMIT_FAILURE_MODE", "open"),
        ("RATE_LIMIT_ORG_PER_SECOND", "1"),
        ("RATE_LIMIT_ORG_BURST", "2"),
    ])
    .await;
    let (_, token) = app.tenant().await;
    for remaining in [1, 0] {
        let response = app
            .authed(Method::GET, "/api-keys", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "ratelimit-remaining"), Some(remaining));
    }
    expect_too_many(
        app.authed(Method::GET, "/api-keys", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
}

/// A TCP relay to Redis that can be cut, to stop "Redis" in the middle of a test without touching the
/// real one other tests use.
struct CuttableRelay {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl CuttableRelay {
    async fn to(upstream: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { port, task }
    }

    /// Closes the listener and every relayed connection (the relay's tasks are dropped with it).
    fn cut(&self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn redis_stopping_mid_test_gives_the_failure_mode() {
    let Some(url) = redis_url().await else { return };
    if !url.starts_with("redis://127.0.0.1:") && !url.starts_with("redis://localhost:") {
        eprintln!("skipping the relay test: it needs a plain loopback Redis URL, not {url}");
        return;
    }
    for mode in ["closed", "open"] {
        let relay = CuttableRelay::to(&url).await;
        let relayed = format!("redis://127.0.0.1:{}", relay.port);
        let prefix = unique_redis_prefix();
        let app = TestApp::spawn_with(&[
            ("RATE_LIMIT_BACKEND", "redis"),
            ("REDIS_URL", relayed.as_str()),
            ("RATE_LIMIT_REDIS_PREFIX", prefix.as_str()),
            ("RATE_LIMIT_FAILURE_MODE", mode),
            ("RATE_LIMIT_REDIS_TIMEOUT_MS", "150"),
        ])
        .await;
        let (_, token) = app.tenant().await;
        let response = app
            .authed(Method::GET, "/api-keys", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{mode}: Redis is up");
        relay.cut();
        for _ in 0..3 {
            let started = Instant::now();
            let response = app
                .authed(Method::GET, "/api-keys", &token)
                .send()
                .await
                .unwrap();
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{mode}: {:?}",
                started.elapsed()
            );
            match mode {
                "closed" => {
                    expect_error(response, 503, "rate_limit_unavailable").await;
                }
                _ => assert_eq!(json(response).await.0, 200, "{mode}"),
            }
        }
    }
}

/// Amazon SNS drops a message answered with any 4xx, so a throttled `/events/ses` answers 503 (which SNS
/// retries), keeping `retry-after`; other ingester routes answer 429.
#[tokio::test]
async fn throttled_ses_events_are_503_so_sns_retries_them() {
    let app = TestApp::spawn_with(&[
        ("RATE_LIMIT_INGESTER_PER_SECOND", "1"),
        ("RATE_LIMIT_INGESTER_BURST", "1"),
    ])
    .await;
    let post = |path: &str| {
        app.client
            .post(format!("{}{path}", app.ingester))
            .body("{}")
            .send()
    };
    let first = post("/events/ses").await.unwrap();
    assert_ne!(first.status(), 429);
    assert_ne!(first.status(), 503);
    let throttled = post("/events/ses").await.unwrap();
    assert_eq!(throttled.status(), 503);
    assert!(throttled.headers().contains_key("retry-after"));
    let body: serde_json::Value = throttled.json().await.unwrap();
    assert_eq!(body["statusCode"], 503);
    assert_eq!(post("/jobs/cleanup").await.unwrap().status(), 429);
}
