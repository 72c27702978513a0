//! `/topics` and a contact's topic subscriptions end to end: defaults, the immutable default subscription,
//! bad input, and tenant isolation.

mod common;

use common::{TestApp, call, expect_error};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

async fn topic(app: &TestApp, token: &str, body: Value) -> String {
    let (status, created) = call(app, token, Method::POST, "/topics", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["object"], "topic");
    created["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn topics_are_created_read_updated_and_deleted() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let id = topic(
        &app,
        &token,
        json!({"name": "Newsletter", "default_subscription": "opt_in", "description": "Monthly"}),
    )
    .await;
    let (status, got) = call(&app, &token, Method::GET, &format!("/topics/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(got["name"], "Newsletter");
    assert_eq!(got["description"], "Monthly");
    assert_eq!(got["default_subscription"], "opt_in");
    assert_eq!(got["visibility"], "private");
    let (status, updated) = call(&app, &token, Method::PATCH, &format!("/topics/{id}"), Some(json!({"id": id, "name": "News", "visibility": "public", "default_subscription": "opt_in"}))).await;
    assert_eq!(status, 200, "{updated}");
    let (_, got) = call(&app, &token, Method::GET, &format!("/topics/{id}"), None).await;
    assert_eq!(got["name"], "News");
    assert_eq!(got["visibility"], "public");
    expect_error(
        app.authed(Method::PATCH, &format!("/topics/{id}"), &token)
            .json(&json!({"default_subscription": "opt_out"}))
            .send()
            .await
            .unwrap(),
        422,
        "validation_error",
    )
    .await;
    let (_, list) = call(&app, &token, Method::GET, "/topics", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["default_subscription"], "opt_in");

    for (body, name) in [
        (json!({"name": "x"}), "missing_required_field"),
        (
            json!({"default_subscription": "opt_in"}),
            "missing_required_field",
        ),
        (
            json!({"name": "x".repeat(51), "default_subscription": "opt_in"}),
            "validation_error",
        ),
        (
            json!({"name": "x", "default_subscription": "opt_in", "description": "d".repeat(201)}),
            "validation_error",
        ),
        (
            json!({"name": "x", "default_subscription": "sometimes"}),
            "validation_error",
        ),
        (
            json!({"name": "x", "default_subscription": "opt_in", "visibility": "secret"}),
            "validation_error",
        ),
    ] {
        expect_error(
            app.authed(Method::POST, "/topics", &token)
                .json(&body)
                .send()
                .await
                .unwrap(),
            422,
            name,
        )
        .await;
    }
    let (_, list) = call(&app, &token, Method::GET, "/topics", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "nothing written");

    let (status, deleted) =
        call(&app, &token, Method::DELETE, &format!("/topics/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(deleted["deleted"], true);
    expect_error(
        app.authed(Method::GET, &format!("/topics/{id}"), &token)
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_contacts_subscriptions_start_at_the_defaults_and_change() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let news = topic(
        &app,
        &token,
        json!({"name": "News", "default_subscription": "opt_in"}),
    )
    .await;
    let offers = topic(
        &app,
        &token,
        json!({"name": "Offers", "default_subscription": "opt_out"}),
    )
    .await;
    let (_, created) = call(
        &app,
        &token,
        Method::POST,
        "/contacts",
        Some(
            json!({"email": "t@example.com", "topics": [{"id": offers, "subscription": "opt_in"}]}),
        ),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let subscriptions = |list: &Value| -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap().to_owned(),
                    t["subscription"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        all.sort();
        all
    };
    let (status, list) = call(
        &app,
        &token,
        Method::GET,
        &format!("/contacts/{id}/topics"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        subscriptions(&list),
        [
            ("News".into(), "opt_in".into()),
            ("Offers".into(), "opt_in".into())
        ]
    );

    // The list itself, as the SDKs send it, by address.
    let (status, updated) = call(
        &app,
        &token,
        Method::PATCH,
        "/contacts/T@example.com/topics",
        Some(json!([{"id": news, "subscription": "opt_out"}])),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["id"], id.as_str());
    assert_eq!(
        updated["topics"],
        json!([{"id": news, "subscription": "opt_out"}])
    );
    // Or wrapped in `topics`.
    let (status, _) = call(
        &app,
        &token,
        Method::PATCH,
        &format!("/contacts/{id}/topics"),
        Some(json!({"topics": [{"id": offers, "subscription": "opt_out"}]})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, list) = call(
        &app,
        &token,
        Method::GET,
        &format!("/contacts/{id}/topics"),
        None,
    )
    .await;
    assert_eq!(
        subscriptions(&list),
        [
            ("News".into(), "opt_out".into()),
            ("Offers".into(), "opt_out".into())
        ]
    );

    // All or nothing.
    for body in [
        json!([{"id": news, "subscription": "opt_in"}, {"id": Uuid::now_v7(), "subscription": "opt_in"}]),
        json!([{"id": news, "subscription": "maybe"}]),
        json!([{"id": "nope", "subscription": "opt_in"}]),
    ] {
        expect_error(
            app.authed(Method::PATCH, &format!("/contacts/{id}/topics"), &token)
                .json(&body)
                .send()
                .await
                .unwrap(),
            422,
            "validation_error",
        )
        .await;
    }
    expect_error(
        app.authed(Method::PATCH, &format!("/contacts/{id}/topics"), &token)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
        422,
        "missing_required_field",
    )
    .await;
    let (_, list) = call(
        &app,
        &token,
        Method::GET,
        &format!("/contacts/{id}/topics"),
        None,
    )
    .await;
    assert_eq!(subscriptions(&list)[0], ("News".into(), "opt_out".into()));

    // Another organization's topics cannot be used, nor seen.
    let (_, other) = app.tenant().await;
    let (_, theirs) = call(
        &app,
        &other,
        Method::POST,
        "/contacts",
        Some(json!({"email": "o@example.com"})),
    )
    .await;
    let theirs = theirs["id"].as_str().unwrap().to_owned();
    expect_error(
        app.authed(Method::PATCH, &format!("/contacts/{theirs}/topics"), &other)
            .json(&json!([{"id": news, "subscription": "opt_in"}]))
            .send()
            .await
            .unwrap(),
        422,
        "validation_error",
    )
    .await;
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        expect_error(
            app.authed(method, &format!("/topics/{news}"), &other)
                .json(&json!({"name": "x"}))
                .send()
                .await
                .unwrap(),
            404,
            "not_found",
        )
        .await;
    }
    let (_, list) = call(
        &app,
        &other,
        Method::GET,
        &format!("/contacts/{theirs}/topics"),
        None,
    )
    .await;
    assert_eq!(list["data"], json!([]));
    let (_, got) = call(&app, &token, Method::GET, &format!("/topics/{news}"), None).await;
    assert_eq!(got["name"], "News");
}
