//! `/suppressions`: the list, its batches, CSV export and import, tenancy, and its effect on sending.

mod common;

use std::collections::HashSet;

use common::{TestApp, expect_error, json};
use opensend_core::Permission;
use reqwest::Method;
use serde_json::{Value, json};

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    json(
        app.authed(Method::POST, path, token)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    json(app.authed(Method::GET, path, token).send().await.unwrap()).await
}

async fn delete(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    json(
        app.authed(Method::DELETE, path, token)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Every address on the list (walks all pages).
async fn listed(app: &TestApp, token: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            None => "/suppressions?limit=100".to_owned(),
            Some(id) => format!("/suppressions?limit=100&after={id}"),
        };
        let (status, page) = get(app, token, &path).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap().clone();
        after = data.last().map(|s| s["id"].as_str().unwrap().to_owned());
        all.extend(data);
        if page["has_more"] != true {
            return all;
        }
    }
}

async fn emails_listed(app: &TestApp, token: &str) -> Vec<String> {
    listed(app, token)
        .await
        .iter()
        .map(|s| s["email"].as_str().unwrap().to_owned())
        .collect()
}

async fn import(app: &TestApp, token: &str, csv: impl Into<String>) -> reqwest::Response {
    app.authed(Method::POST, "/suppressions/import", token)
        .header("content-type", "text/csv")
        .body(csv.into())
        .send()
        .await
        .unwrap()
}

/// Status, content type and body of `GET /suppressions/export`.
async fn export(app: &TestApp, token: &str) -> (u16, String, String) {
    let response = app
        .authed(Method::GET, "/suppressions/export", token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn add_get_and_remove_by_id_and_by_address() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;

    let (status, created) = post(
        &app,
        &token,
        "/suppressions",
        json!({"email": " jane@Example.COM "}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["object"], "suppression");
    assert_eq!(created["created"], true);
    let id = created["id"].as_str().unwrap().to_owned();

    // Adding it again, in any spelling of the domain, finds the same row and leaves it as it was.
    let (status, again) = post(
        &app,
        &token,
        "/suppressions",
        json!({"email": "jane@EXAMPLE.com", "reason": "bounce"}),
    )
    .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["id"], id.as_str());
    assert_eq!(again["created"], false);

    let (status, shown) = get(&app, &token, &format!("/suppressions/{id}")).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["object"], "suppression");
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["email"], "jane@example.com");
    assert_eq!(shown["origin"], "manual");
    assert_eq!(shown["reason"], "manual", "the first reason is kept");
    assert_eq!(shown["source_id"], Value::Null);
    assert!(
        shown["created_at"]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
        "{shown}"
    );

    // By address, in any case.
    for path in [
        "/suppressions/jane@example.com",
        "/suppressions/jane@EXAMPLE.COM",
        "/suppressions/jane%40Example.com",
        "/suppressions/Jane@example.com",
        "/api/suppressions/jane@example.com",
    ] {
        let (status, by_address) = get(&app, &token, path).await;
        assert_eq!(status, 200, "{path}: {by_address}");
        assert_eq!(by_address["id"], id.as_str(), "{path}");
    }
    expect_error(
        app.authed(Method::GET, "/suppressions/janet@example.com", &token)
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    expect_error(
        app.authed(Method::GET, "/suppressions/not-an-address", &token)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_parameter",
    )
    .await;

    let (status, removed) = delete(&app, &token, "/suppressions/jane@EXAMPLE.com").await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(
        removed,
        json!({"object": "suppression", "id": id, "deleted": true})
    );
    for path in [
        format!("/suppressions/{id}"),
        "/suppressions/jane@example.com".to_owned(),
    ] {
        for method in [Method::GET, Method::DELETE] {
            expect_error(
                app.authed(method, &path, &token).send().await.unwrap(),
                404,
                "not_found",
            )
            .await;
        }
    }

    // Removing by id.
    let (_, created) = post(
        &app,
        &token,
        "/suppressions",
        json!({"email": "bob@example.com", "reason": "complaint"}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let (_, shown) = get(&app, &token, "/suppressions/bob@example.com").await;
    assert_eq!(shown["origin"], "complaint");
    let (status, removed) = delete(&app, &token, &format!("/suppressions/{id}")).await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["deleted"], true);
    assert!(listed(&app, &token).await.is_empty());
}

#[tokio::test]
async fn bad_input_is_refused_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    for (body, status, name) in [
        (json!({}), 422, "missing_required_field"),
        (json!({"email": 42}), 422, "validation_error"),
        (json!({"email": "not an address"}), 422, "validation_error"),
        (json!({"email": "a@b"}), 422, "validation_error"),
        (
            json!({"email": "x@example.com", "reason": "spam"}),
            422,
            "validation_error",
        ),
        (
            json!({"email": "x@example.com", "reason": "Bounce"}),
            422,
            "validation_error",
        ),
    ] {
        let response = app
            .authed(Method::POST, "/suppressions", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(response, status, name).await;
    }
    let response = app
        .authed(Method::POST, "/suppressions", &token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "invalid_json").await;
    assert!(listed(&app, &token).await.is_empty());

    // A sending-only key cannot read or change the list.
    let org = app.organization("Senders").await;
    let (_, sending) = app.key(org, Permission::SendingAccess).await;
    for (method, path) in [
        (Method::GET, "/suppressions"),
        (Method::POST, "/suppressions"),
        (Method::GET, "/suppressions/export"),
    ] {
        let response = app
            .authed(method, path, &sending)
            .json(&json!({"email": "x@example.com"}))
            .send()
            .await
            .unwrap();
        expect_error(response, 401, "restricted_api_key").await;
    }
}

#[tokio::test]
async fn lists_newest_first_in_pages_and_filters_by_origin_and_reason() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let reasons = ["bounce", "complaint", "manual", "unsubscribe"];
    let mut added = Vec::new();
    for i in 0..25 {
        let reason = reasons[i % 4];
        let email = format!("user{i}@example.com");
        let (status, body) = post(
            &app,
            &token,
            "/suppressions",
            json!({"email": email, "reason": reason}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        added.push((body["id"].as_str().unwrap().to_owned(), email, reason));
    }
    let newest_first: Vec<&str> = added.iter().rev().map(|(id, _, _)| id.as_str()).collect();

    let (status, first) = get(&app, &token, "/suppressions?limit=10").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["object"], "list");
    assert_eq!(first["has_more"], true);
    let ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&first), newest_first[..10]);
    let item = &first["data"][0];
    assert_eq!(item["email"], "user24@example.com");
    assert_eq!(item["origin"], "bounce");
    for field in ["id", "email", "origin", "source_id", "created_at"] {
        assert!(item.get(field).is_some(), "{field} missing: {item}");
    }

    let last_of_first = &ids(&first)[9];
    let (_, second) = get(
        &app,
        &token,
        &format!("/suppressions?limit=10&after={last_of_first}"),
    )
    .await;
    assert_eq!(ids(&second), newest_first[10..20]);
    assert_eq!(second["has_more"], true);
    let (_, third) = get(
        &app,
        &token,
        &format!("/suppressions?limit=10&after={}", ids(&second)[9]),
    )
    .await;
    assert_eq!(ids(&third), newest_first[20..]);
    assert_eq!(third["has_more"], false);
    let (_, back) = get(
        &app,
        &token,
        &format!("/suppressions?limit=10&before={}", ids(&second)[0]),
    )
    .await;
    assert_eq!(ids(&back), newest_first[..10]);

    // Resend's `origin`: an unsubscribe is a manual origin, its exact reason in `reason`.
    let (_, bounces) = get(&app, &token, "/suppressions?origin=bounce&limit=100").await;
    let bounce_emails: HashSet<&str> = bounces["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["email"].as_str().unwrap())
        .collect();
    let expected: HashSet<&str> = added
        .iter()
        .filter(|(_, _, r)| *r == "bounce")
        .map(|(_, e, _)| e.as_str())
        .collect();
    assert_eq!(bounce_emails, expected);

    let (_, manual) = get(&app, &token, "/suppressions?origin=manual&limit=100").await;
    let manual = manual["data"].as_array().unwrap();
    assert_eq!(manual.len(), 12, "6 manual + 6 unsubscribe");
    assert!(manual.iter().all(|s| s["origin"] == "manual"));
    assert_eq!(
        manual
            .iter()
            .filter(|s| s["reason"] == "unsubscribe")
            .count(),
        6
    );

    let (_, unsubscribed) = get(&app, &token, "/suppressions?reason=unsubscribe").await;
    let unsubscribed = unsubscribed["data"].as_array().unwrap();
    assert_eq!(unsubscribed.len(), 6);
    assert!(unsubscribed.iter().all(|s| s["reason"] == "unsubscribe"));
    let (_, none) = get(&app, &token, "/suppressions?origin=bounce&reason=manual").await;
    assert_eq!(none["data"], json!([]));
    let (_, paged) = get(&app, &token, "/suppressions?origin=complaint&limit=2").await;
    assert_eq!(paged["data"].as_array().unwrap().len(), 2);
    assert_eq!(paged["has_more"], true);

    for query in [
        "origin=unsubscribe",
        "origin=BOUNCE",
        "reason=spam",
        "limit=0",
        "limit=101",
        "after=nope",
    ] {
        let response = app
            .authed(Method::GET, &format!("/suppressions?{query}"), &token)
            .send()
            .await
            .unwrap();
        expect_error(response, 422, "invalid_parameter").await;
    }
}

#[tokio::test]
async fn batches_add_and_remove_up_to_a_hundred_all_or_nothing() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;

    let hundred: Vec<String> = (0..100).map(|i| format!("b{i}@example.com")).collect();
    let (status, added) = post(
        &app,
        &token,
        "/suppressions/batch/add",
        json!({"emails": hundred}),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    let data = added["data"].as_array().unwrap();
    assert_eq!(data.len(), 100);
    assert!(
        data.iter()
            .all(|s| s["object"] == "suppression" && s["created"] == true)
    );
    assert_eq!(data[7]["email"], "b7@example.com");

    // Already listed, repeated, mixed case: one row per address, the existing ones reported as such.
    let (status, again) = post(
        &app,
        &token,
        "/suppressions/batch/add",
        json!({"emails": ["b0@EXAMPLE.com", "new@example.com", "new@example.com"], "reason": "bounce"}),
    )
    .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["data"][0]["id"], data[0]["id"]);
    assert_eq!(again["data"][0]["created"], false);
    assert_eq!(again["data"][1]["created"], true);
    assert_eq!(again["data"][2]["id"], again["data"][1]["id"]);
    assert_eq!(again["data"][2]["created"], false);
    let (_, new) = get(&app, &token, "/suppressions/new@example.com").await;
    assert_eq!(new["reason"], "bounce");
    assert_eq!(listed(&app, &token).await.len(), 101);

    // 101, empty, or one bad address among good ones: refused, nothing written.
    let too_many: Vec<String> = (0..101).map(|i| format!("c{i}@example.com")).collect();
    let bad_batches = [
        json!({"emails": too_many}),
        json!({"emails": []}),
        json!({}),
        json!({"emails": ["ok@example.com", "broken", "also@bad"]}),
        json!({"emails": ["ok@example.com"], "reason": "spam"}),
    ];
    for body in bad_batches {
        let response = app
            .authed(Method::POST, "/suppressions/batch/add", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, error) = json(response).await;
        assert_eq!(status, 422, "{body}: {error}");
        if body["emails"].get(1) == Some(&json!("broken")) {
            let message = error["message"].as_str().unwrap();
            assert!(message.contains("emails[1]"), "{message}");
            assert!(message.contains("emails[2]"), "{message}");
        }
    }
    assert_eq!(listed(&app, &token).await.len(), 101);

    // Remove by address (any domain case) and by id; what is not listed is skipped.
    let (status, removed) = post(
        &app,
        &token,
        "/suppressions/batch/remove",
        json!({"emails": ["b1@EXAMPLE.COM", "b2@example.com", "never@example.com"]}),
    )
    .await;
    assert_eq!(status, 200, "{removed}");
    let removed = removed["data"].as_array().unwrap();
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert_eq!(removed[0]["id"], data[1]["id"]);
    assert_eq!(removed[0]["deleted"], true);
    assert_eq!(removed[1]["email"], "b2@example.com");

    let ids: Vec<&str> = data[3..10]
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    let (status, removed) = post(
        &app,
        &token,
        "/suppressions/batch/remove",
        json!({"ids": ids}),
    )
    .await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["data"].as_array().unwrap().len(), 7);
    assert!(
        removed["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["deleted"] == true)
    );
    let remaining = emails_listed(&app, &token).await;
    assert_eq!(remaining.len(), 101 - 2 - 7);
    assert!(!remaining.contains(&"b5@example.com".to_owned()));
    assert!(remaining.contains(&"b10@example.com".to_owned()));

    let too_many_ids: Vec<String> = (0..101).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    for body in [
        json!({"emails": ["b10@example.com"], "ids": [data[10]["id"]]}),
        json!({}),
        json!({"ids": []}),
        json!({"ids": too_many_ids}),
        json!({"ids": [data[10]["id"], "not-a-uuid"]}),
        json!({"emails": ["b10@example.com", "bad"]}),
    ] {
        let response = app
            .authed(Method::POST, "/suppressions/batch/remove", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, error) = json(response).await;
        assert_eq!(status, 422, "{body}: {error}");
    }
    assert_eq!(listed(&app, &token).await.len(), 92, "nothing removed");
}

#[tokio::test]
async fn csv_export_and_import_round_trip() {
    let app = TestApp::spawn().await;
    let (_, token_a) = app.tenant().await;
    let (_, token_b) = app.tenant().await;

    let (status, content_type, body) = export(&app, &token_a).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    assert_eq!(body, "email,reason,created_at\n");

    // More rows than the export reads at once, so it is streamed in several chunks.
    let mut csv = String::from("email,reason\n");
    let reasons = ["bounce", "complaint", "manual", "unsubscribe", ""];
    for i in 0..2_345 {
        csv.push_str(&format!("user{i}@Example.com,{}\n", reasons[i % 5]));
    }
    let (status, outcome) = json(import(&app, &token_a, csv).await).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(
        outcome,
        json!({"object": "suppression_import", "rows": 2345, "added": 2345, "existing": 0})
    );
    let (_, shown) = get(&app, &token_a, "/suppressions/user4@example.com").await;
    assert_eq!(shown["reason"], "manual", "a blank reason is manual");
    let (_, shown) = get(&app, &token_a, "/suppressions/user3@example.com").await;
    assert_eq!(shown["reason"], "unsubscribe");

    let (status, _, exported) = export(&app, &token_a).await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = exported.lines().collect();
    assert_eq!(lines[0], "email,reason,created_at");
    assert_eq!(lines.len(), 2_346);
    assert!(
        lines[1].starts_with("user0@example.com,bounce,"),
        "oldest first: {}",
        lines[1]
    );
    let created_at = lines[1].rsplit(',').next().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(created_at).is_ok());

    // The export imports as it is into another organization, and gives the same list there.
    let (status, outcome) = json(import(&app, &token_b, exported.clone()).await).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["added"], 2345);
    let (_, _, exported_b) = export(&app, &token_b).await;
    let without_time = |csv: &str| -> Vec<String> {
        csv.lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_owned())
            .collect()
    };
    assert_eq!(without_time(&exported), without_time(&exported_b));

    // Importing again adds nothing and changes nothing.
    let (status, outcome) = json(import(&app, &token_b, exported).await).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["added"], 0);
    assert_eq!(outcome["existing"], 2345);

    // Under `/api` too.
    let response = app
        .authed(Method::POST, "/api/suppressions/import", &token_b)
        .header("content-type", "text/csv; charset=utf-8")
        .body("email\none-more@example.com\n")
        .send()
        .await
        .unwrap();
    let (status, outcome) = json(response).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["added"], 1);
}

#[tokio::test]
async fn a_bad_csv_is_refused_whole_with_every_bad_line() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;

    let csv = "email,reason\r\n\
               good@example.com,bounce\r\n\
               not-an-address,manual\r\n\
               \r\n\
               other@example.com,spam\r\n\
               ,complaint\r\n\
               fine@example.com\r\n\
               extra@example.com,manual,surplus\r\n";
    let response = import(&app, &token, csv).await;
    let error = expect_error(response, 422, "validation_error").await;
    let lines: Vec<u64> = error["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 5, 6, 8], "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("4 rows"), "{message}");
    assert!(message.contains("line 3:"), "{message}");
    assert!(message.contains("not-an-address"), "{message}");
    assert!(
        message.contains("line 5:") && message.contains("spam"),
        "{message}"
    );
    assert!(message.contains("nothing was imported"), "{message}");
    assert!(listed(&app, &token).await.is_empty(), "all or nothing");

    for bad in [
        "",
        "jane@example.com\nbob@example.com\n",
        "mail,reason\njane@example.com,manual\n",
    ] {
        let response = import(&app, &token, bad).await;
        let error = expect_error(response, 422, "validation_error").await;
        assert!(
            error["message"].as_str().unwrap().contains("header"),
            "{error}"
        );
    }

    let mut too_many = String::from("email\n");
    for i in 0..10_001 {
        too_many.push_str(&format!("r{i}@example.com\n"));
    }
    let error = expect_error(
        import(&app, &token, too_many).await,
        422,
        "validation_error",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("10000"),
        "{error}"
    );

    let mut too_big = String::from("email\n");
    while too_big.len() <= 2 * 1024 * 1024 {
        too_big.push_str("someone-with-a-long-address@example.com\n");
    }
    expect_error(
        import(&app, &token, too_big).await,
        413,
        "payload_too_large",
    )
    .await;

    let response = app
        .authed(Method::POST, "/suppressions/import", &token)
        .json(&json!({"email": "x@example.com"}))
        .send()
        .await
        .unwrap();
    expect_error(response, 415, "unsupported_media_type").await;
    let response = app
        .authed(Method::POST, "/suppressions/import", &token)
        .header("content-type", "text/csv")
        .body(b"email\nok@example.com\n\xff\xfe@example.com\n".to_vec())
        .send()
        .await
        .unwrap();
    let error = expect_error(response, 422, "validation_error").await;
    assert!(
        error["message"].as_str().unwrap().contains("line 3"),
        "{error}"
    );
    assert!(listed(&app, &token).await.is_empty());
}

#[tokio::test]
async fn another_organizations_suppressions_are_invisible() {
    let app = TestApp::spawn().await;
    let (_, token_a) = app.tenant().await;
    let (_, token_b) = app.tenant().await;
    let (_, created) = post(
        &app,
        &token_a,
        "/suppressions",
        json!({"email": "private@example.com"}),
    )
    .await;
    let id = created["id"].as_str().unwrap();

    for path in [
        format!("/suppressions/{id}"),
        "/suppressions/private@example.com".to_owned(),
    ] {
        for method in [Method::GET, Method::DELETE] {
            expect_error(
                app.authed(method, &path, &token_b).send().await.unwrap(),
                404,
                "not_found",
            )
            .await;
        }
    }
    let (_, list) = get(&app, &token_b, "/suppressions").await;
    assert_eq!(list["data"], json!([]));
    let (_, _, exported) = export(&app, &token_b).await;
    assert_eq!(exported, "email,reason,created_at\n");
    let (status, removed) = post(
        &app,
        &token_b,
        "/suppressions/batch/remove",
        json!({"ids": [id]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(removed["data"], json!([]));
    let (_, removed) = post(
        &app,
        &token_b,
        "/suppressions/batch/remove",
        json!({"emails": ["private@example.com"]}),
    )
    .await;
    assert_eq!(removed["data"], json!([]));

    // B may list the same address on its own list; A's row is untouched.
    let (status, own) = post(
        &app,
        &token_b,
        "/suppressions",
        json!({"email": "private@example.com", "reason": "bounce"}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(own["created"], true);
    assert_ne!(own["id"], id);
    let (status, still) = get(&app, &token_a, &format!("/suppressions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(still["reason"], "manual");
}

#[tokio::test]
async fn sending_skips_an_address_while_it_is_on_the_list() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let email = |to: &str| {
        json!({
            "from": "Acme <hello@acme.test>",
            "to": to,
            "subject": "Hello",
            "text": "Hi",
        })
    };

    let (status, _) = post(
        &app,
        &token,
        "/suppressions",
        json!({"email": "gone@Example.com"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, sent) = app.send(&token, &email("gone@EXAMPLE.COM")).await;
    assert_eq!(status, 200, "{sent}");
    let suppressed = app
        .wait_for_status(&token, sent["id"].as_str().unwrap(), "suppressed")
        .await;
    assert!(suppressed["raw"].is_null(), "nothing was sent");
    let recipients = app
        .store
        .emails()
        .recipients(sent["id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap();
    assert_eq!(recipients.len(), 1);
    assert_eq!(recipients[0].address.as_str(), "gone@example.com");
    assert_eq!(
        recipients[0].status,
        opensend_core::RecipientStatus::Suppressed
    );

    let (status, _) = delete(&app, &token, "/suppressions/gone@example.com").await;
    assert_eq!(status, 200);
    let (status, sent) = app.send(&token, &email("gone@example.com")).await;
    assert_eq!(status, 200, "{sent}");
    let id = sent["id"].as_str().unwrap();
    let (_, queued) = get(&app, &token, &format!("/emails/{id}")).await;
    assert!(
        queued["last_event"] == "queued" || queued["last_event"] == "sent",
        "{queued}"
    );
    app.wait_for_status(&token, id, "sent").await;
}

#[tokio::test]
async fn an_import_may_reach_its_limits() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    // 10,000 rows in more than the 1 MiB other routes accept (but under 2 MiB).
    let mut csv = String::from("email,reason\n");
    for i in 0..10_000 {
        csv.push_str(&format!(
            "{i:05}.{}@{}.example.com,bounce\n",
            "x".repeat(50),
            "y".repeat(60)
        ));
    }
    assert!(csv.len() > 1024 * 1024 && csv.len() < 2 * 1024 * 1024);
    let (status, outcome) = json(import(&app, &token, csv).await).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["added"], 10_000);
    let (_, first) = get(&app, &token, "/suppressions?limit=1").await;
    assert!(
        first["data"][0]["email"]
            .as_str()
            .unwrap()
            .starts_with("09999.")
    );
}

#[tokio::test]
async fn the_list_ignores_the_case_of_the_whole_address_everywhere() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let (status, created) = post(
        &app,
        &token,
        "/suppressions",
        json!({"email": "Alice@Example.COM"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();

    // Found by any case, shown as first given; adding another case finds it.
    let (status, shown) = get(&app, &token, "/suppressions/ALICE@example.com").await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["email"], "Alice@example.com");
    let (status, again) = post(
        &app,
        &token,
        "/suppressions",
        json!({"email": "alice@example.com"}),
    )
    .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(
        (again["id"].as_str(), again["created"].as_bool()),
        (Some(id.as_str()), Some(false))
    );
    let (status, batch) = post(
        &app,
        &token,
        "/suppressions/batch/add",
        json!({"emails": ["aLiCe@example.com", "Bob@example.com", "BOB@example.com"]}),
    )
    .await;
    assert_eq!(status, 201, "{batch}");
    let created: Vec<bool> = batch["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["created"].as_bool().unwrap())
        .collect();
    assert_eq!(created, [false, true, false]);
    assert_eq!(batch["data"][0]["id"], id.as_str());

    // The CSV import counts case variants as the same address.
    let (status, imported) = json(
        import(
            &app,
            &token,
            "email\nalice@EXAMPLE.com\nbob@example.com\nCarol@example.com\ncarol@example.com\n",
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{imported}");
    assert_eq!(
        (imported["added"].as_u64(), imported["existing"].as_u64()),
        (Some(1), Some(2))
    );
    let mut emails = emails_listed(&app, &token).await;
    emails.sort();
    assert_eq!(
        emails,
        ["Alice@example.com", "Bob@example.com", "Carol@example.com"]
    );

    // Sending to another case of a listed address is suppressed.
    let (status, sent) = app
        .send(
            &token,
            &json!({"from": "hello@acme.test", "to": "alice@example.com", "subject": "Hi", "text": "Hi"}),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    app.wait_for_status(&token, sent["id"].as_str().unwrap(), "suppressed")
        .await;

    // Removal by another case, single and in a batch.
    let (status, removed) = delete(&app, &token, "/suppressions/alice@EXAMPLE.com").await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["id"], id.as_str());
    let (status, removed) = post(
        &app,
        &token,
        "/suppressions/batch/remove",
        json!({"emails": ["bob@EXAMPLE.COM", "CAROL@example.com"]}),
    )
    .await;
    assert_eq!(status, 200, "{removed}");
    let gone: Vec<&str> = removed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["email"].as_str().unwrap())
        .collect();
    assert_eq!(gone, ["Bob@example.com", "Carol@example.com"]);
    assert!(emails_listed(&app, &token).await.is_empty());
}
