//! `/api-keys` end to end: creation, listing, renaming, deletion, authentication and tenancy.

mod common;

use common::{TestApp, expect_error, json};
use opensend_core::Permission;
use reqwest::Method;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::json;

async fn count_keys(app: &TestApp) -> i64 {
    let db = Database::connect(app.db.url()).await.unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM api_keys",
        ))
        .await
        .unwrap()
        .unwrap();
    let n = row.try_get::<i64>("", "n").unwrap();
    let _ = db.close().await;
    n
}

#[tokio::test]
async fn created_token_is_shown_once_and_never_stored() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;

    for prefix in ["", "/api"] {
        let response = app
            .authed(Method::POST, &format!("{prefix}/api-keys"), &token)
            .json(&json!({"name": "Production"}))
            .send()
            .await
            .unwrap();
        let (status, body) = json(response).await;
        assert_eq!(status, 201, "{body}");
        let new_token = body["token"].as_str().unwrap().to_owned();
        assert!(
            new_token.starts_with("os_") && new_token.len() == 46,
            "{new_token}"
        );
        assert_eq!(
            body.as_object().unwrap().len(),
            2,
            "only id and token: {body}"
        );

        // The new key works, and no later response repeats its token.
        let (status, list) = json(
            app.authed(Method::GET, "/api-keys", &new_token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        assert!(!list.to_string().contains(&new_token[3..]));
        let created = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == body["id"])
            .expect("listed");
        assert_eq!(created["name"], "Production");
        assert_eq!(created["permission"], "full_access");
        assert!(created["created_at"].as_str().unwrap().ends_with('Z'));

        // Nothing in the database holds the token or its random part, in any column.
        let db = Database::connect(app.db.url()).await.unwrap();
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT * FROM api_keys",
            ))
            .await
            .unwrap();
        let dump = format!("{rows:?}");
        assert!(
            !dump.contains(&new_token[3..]),
            "token found in the database"
        );
        assert!(
            !dump.contains(&new_token[12..30]),
            "token body found in the database"
        );
        let _ = db.close().await;
    }
}

#[tokio::test]
async fn lists_page_with_cursors_newest_first() {
    let app = TestApp::spawn().await;
    let (org, token) = app.tenant().await;
    for _ in 0..4 {
        app.key(org, Permission::SendingAccess).await;
    }
    // Five keys in all; the bootstrap key is the oldest.
    let get = |query: String| {
        let request = app.authed(Method::GET, &format!("/api-keys{query}"), &token);
        async move { json(request.send().await.unwrap()).await }
    };
    let (_, all) = get(String::new()).await;
    let ids: Vec<String> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 5);
    assert_eq!(all["has_more"], false);
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");

    let (_, first) = get("?limit=2".into()).await;
    assert_eq!(first["object"], "list");
    assert_eq!(first["has_more"], true);
    assert_eq!(first["data"][0]["id"], ids[0]);
    assert_eq!(first["data"][1]["id"], ids[1]);

    let (_, second) = get(format!("?limit=2&after={}", ids[1])).await;
    assert_eq!(second["has_more"], true);
    assert_eq!(second["data"][0]["id"], ids[2]);
    assert_eq!(second["data"][1]["id"], ids[3]);

    let (_, last) = get(format!("?limit=2&after={}", ids[3])).await;
    assert_eq!(last["has_more"], false);
    assert_eq!(last["data"].as_array().unwrap().len(), 1);
    assert_eq!(last["data"][0]["id"], ids[4]);

    let (_, back) = get(format!("?limit=2&before={}", ids[3])).await;
    assert_eq!(back["has_more"], true);
    assert_eq!(back["data"][0]["id"], ids[1]);
    assert_eq!(back["data"][1]["id"], ids[2]);

    for bad in [
        "?limit=0".to_owned(),
        "?limit=101".to_owned(),
        "?limit=ten".to_owned(),
        "?after=not-an-id".to_owned(),
        format!("?after={}&before={}", ids[0], ids[1]),
    ] {
        let response = app
            .authed(Method::GET, &format!("/api-keys{bad}"), &token)
            .send()
            .await
            .unwrap();
        expect_error(response, 422, "invalid_parameter").await;
    }
    let (status, max) = get("?limit=100".into()).await;
    assert_eq!((status, max["data"].as_array().unwrap().len()), (200, 5));
}

#[tokio::test]
async fn deleting_a_key_revokes_it_on_the_next_request() {
    let app = TestApp::spawn().await;
    let (org, admin_token) = app.tenant().await;
    let (victim_id, victim_token) = app.key(org, Permission::FullAccess).await;

    let ok = app
        .authed(Method::GET, "/api-keys", &victim_token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    let (status, body) = json(
        app.authed(
            Method::DELETE,
            &format!("/api-keys/{victim_id}"),
            &admin_token,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"object": "api_key", "id": victim_id, "deleted": true})
    );

    let response = app
        .authed(Method::GET, "/api-keys", &victim_token)
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "invalid_api_key").await;

    // Gone from the list, and a second delete finds nothing.
    let (_, list) = json(
        app.authed(Method::GET, "/api-keys", &admin_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(!list.to_string().contains(&victim_id.to_string()));
    let again = app
        .authed(
            Method::DELETE,
            &format!("/api-keys/{victim_id}"),
            &admin_token,
        )
        .send()
        .await
        .unwrap();
    expect_error(again, 404, "not_found").await;

    // Operator revocation works the same way.
    let (other_id, other_token) = app.key(org, Permission::FullAccess).await;
    opensend_server::admin::revoke_api_key(&app.store, other_id)
        .await
        .unwrap();
    let response = app
        .authed(Method::GET, "/api-keys", &other_token)
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "invalid_api_key").await;
}

#[tokio::test]
async fn renaming_a_key() {
    let app = TestApp::spawn().await;
    let (org, token) = app.tenant().await;
    let (id, _) = app.key(org, Permission::SendingAccess).await;
    let (status, body) = json(
        app.authed(Method::PATCH, &format!("/api/api-keys/{id}"), &token)
            .json(&json!({"name": "  Renamed  "}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"object": "api_key", "id": id}));
    let (_, list) = json(
        app.authed(Method::GET, "/api-keys", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let renamed = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == json!(id))
        .unwrap();
    assert_eq!(renamed["name"], "Renamed");
    assert_eq!(renamed["permission"], "sending_access");
}

#[tokio::test]
async fn another_organizations_keys_are_invisible() {
    let app = TestApp::spawn().await;
    let (org_a, token_a) = app.tenant().await;
    let (_, token_b) = app.tenant().await;
    let (key_a, _) = app.key(org_a, Permission::FullAccess).await;

    let (_, list_b) = json(
        app.authed(Method::GET, "/api-keys", &token_b)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list_b["data"].as_array().unwrap().len(), 1, "{list_b}");
    assert!(!list_b.to_string().contains(&key_a.to_string()));

    let delete = app
        .authed(Method::DELETE, &format!("/api-keys/{key_a}"), &token_b)
        .send()
        .await
        .unwrap();
    expect_error(delete, 404, "not_found").await;
    let rename = app
        .authed(Method::PATCH, &format!("/api-keys/{key_a}"), &token_b)
        .json(&json!({"name": "stolen"}))
        .send()
        .await
        .unwrap();
    expect_error(rename, 404, "not_found").await;

    // Still there and unchanged for its owner.
    let (_, list_a) = json(
        app.authed(Method::GET, "/api-keys", &token_a)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let key = list_a["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == json!(key_a))
        .expect("still listed");
    assert_eq!(key["name"], "test key");
}

#[tokio::test]
async fn authentication_errors_use_resends_codes() {
    let app = TestApp::spawn().await;
    let (org, full) = app.tenant().await;
    let (_, sending) = app.key(org, Permission::SendingAccess).await;

    let none = app.request(Method::GET, "/api-keys").send().await.unwrap();
    expect_error(none, 401, "missing_api_key").await;
    let basic = app
        .request(Method::GET, "/api-keys")
        .header("authorization", format!("Basic {full}"))
        .send()
        .await
        .unwrap();
    expect_error(basic, 401, "missing_api_key").await;
    let empty = app
        .request(Method::GET, "/api-keys")
        .header("authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    expect_error(empty, 401, "missing_api_key").await;

    // Malformed, well-formed but unknown, and a real key with one character changed.
    let mut altered = full.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'a' { b'b' } else { b'a' };
    let altered = String::from_utf8(altered).unwrap();
    let unknown = format!("os_{}", "A".repeat(43));
    for bad in ["nonsense", "re_123", unknown.as_str(), altered.as_str()] {
        let response = app
            .authed(Method::GET, "/api-keys", bad)
            .send()
            .await
            .unwrap();
        expect_error(response, 403, "invalid_api_key").await;
    }

    for (method, path) in [
        (Method::GET, "/api-keys"),
        (Method::POST, "/api-keys"),
        (
            Method::DELETE,
            "/api-keys/0191b6a4-7c0e-7000-8000-000000000000",
        ),
    ] {
        let response = app
            .authed(method, path, &sending)
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        expect_error(response, 401, "restricted_api_key").await;
    }
    assert_eq!(
        count_keys(&app).await,
        2,
        "nothing written by refused requests"
    );
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let before = count_keys(&app).await;

    let cases: Vec<(serde_json::Value, u16, &str)> = vec![
        (json!({}), 422, "missing_required_field"),
        (json!({"name": 7}), 422, "validation_error"),
        (json!({"name": ""}), 422, "validation_error"),
        (json!({"name": "   "}), 422, "validation_error"),
        (json!({"name": "x".repeat(51)}), 422, "validation_error"),
        (json!({"name": "tab\there"}), 422, "validation_error"),
        (
            json!({"name": "k", "permission": "admin"}),
            422,
            "validation_error",
        ),
        (
            json!({"name": "k", "permission": "FULL_ACCESS"}),
            422,
            "validation_error",
        ),
        (
            json!({"name": "k", "permission": null, "domain_id": "0191b6a4-7c0e-7000-8000-000000000000"}),
            422,
            "validation_error",
        ),
        (
            json!({"name": "k", "permission": "sending_access", "domain_id": "example.com"}),
            422,
            "validation_error",
        ),
        (json!(["name"]), 422, "validation_error"),
    ];
    for (body, status, name) in cases {
        let response = app
            .authed(Method::POST, "/api-keys", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let error = expect_error(response, status, name).await;
        assert!(!error["message"].as_str().unwrap().is_empty(), "{body}");
    }
    for raw in ["{\"name\":", "name=x", "{\"name\": \"a\"} trailing"] {
        let response = app
            .authed(Method::POST, "/api-keys", &token)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        expect_error(response, 400, "invalid_json").await;
    }
    for path in ["/api-keys/not-a-uuid", "/api-keys/..%2F..%2Fetc"] {
        let response = app
            .authed(Method::DELETE, path, &token)
            .send()
            .await
            .unwrap();
        expect_error(response, 422, "invalid_parameter").await;
    }
    let missing = app
        .authed(
            Method::DELETE,
            "/api-keys/0191b6a4-7c0e-7000-8000-000000000000",
            &token,
        )
        .send()
        .await
        .unwrap();
    expect_error(missing, 404, "not_found").await;
    assert_eq!(count_keys(&app).await, before);

    // Fifty characters is within the limit, and the name is stored trimmed.
    let ok = app
        .authed(Method::POST, "/api-keys", &token)
        .json(&json!({"name": format!(" {} ", "é".repeat(50)), "permission": "sending_access"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 201);
}

#[tokio::test]
async fn last_used_at_is_recorded() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let mut seen = serde_json::Value::Null;
    // The use is recorded in the background; give it a moment without depending on timing for the result.
    for _ in 0..50 {
        let (_, list) = json(
            app.authed(Method::GET, "/api-keys", &token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        seen = list["data"][0]["last_used_at"].clone();
        if seen.is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(seen.is_string(), "last_used_at stayed {seen}");
}

/// Another node caches the keys it has seen (with a TTL far longer than the test), so only the cache epoch
/// bumped by the deletion can make it refuse the key: it must, for every request that starts more than
/// `CACHE_EPOCH_CHECK_INTERVAL_MS` after the deletion was answered.
#[tokio::test]
async fn a_key_deleted_through_one_node_is_refused_by_another_within_the_epoch_interval() {
    const INTERVAL_MS: u64 = 200;
    let app = TestApp::spawn().await;
    let interval = INTERVAL_MS.to_string();
    let other = app
        .another_node(&[
            ("AUTH_CACHE_TTL_MS", "3600000"),
            ("CACHE_EPOCH_CHECK_INTERVAL_MS", interval.as_str()),
        ])
        .await;
    let (org, admin_token) = app.tenant().await;
    let (victim_id, victim_token) = app.key(org, Permission::FullAccess).await;
    let (_, bystander_token) = app.key(org, Permission::FullAccess).await;
    let on_other = |token: &str| {
        app.client
            .get(format!("{}/api-keys", other.api))
            .bearer_auth(token)
            .send()
    };
    // Both keys are now in the other node's cache.
    for token in [&victim_token, &bystander_token] {
        for _ in 0..2 {
            assert_eq!(on_other(token).await.unwrap().status(), 200);
        }
    }

    let deleted = app
        .authed(
            Method::DELETE,
            &format!("/api-keys/{victim_id}"),
            &admin_token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    // The bound, and nothing more.
    tokio::time::sleep(std::time::Duration::from_millis(INTERVAL_MS)).await;

    expect_error(
        on_other(&victim_token).await.unwrap(),
        403,
        "invalid_api_key",
    )
    .await;
    // The other keys still work there (read again under the new epoch).
    assert_eq!(on_other(&bystander_token).await.unwrap().status(), 200);
    // And on the node that deleted it, at once (the existing test covers that in detail).
    expect_error(
        app.authed(Method::GET, "/api-keys", &victim_token)
            .send()
            .await
            .unwrap(),
        403,
        "invalid_api_key",
    )
    .await;
}
