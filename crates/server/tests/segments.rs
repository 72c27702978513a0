//! `/segments`, `/audiences` (the deprecated alias, in its own shapes) and a contact's segments end to end:
//! bad input, 404s and tenant isolation of every id.

mod common;

use common::{TestApp, call, expect_error};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

async fn contact(app: &TestApp, token: &str, email: &str) -> String {
    let (status, body) = call(
        app,
        token,
        Method::POST,
        "/contacts",
        Some(json!({"email": email})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn segments_are_created_read_renamed_listed_and_deleted() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let (status, created) = call(
        &app,
        &token,
        Method::POST,
        "/segments",
        Some(json!({"name": "Active", "filter": {"plan": "pro"}})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["object"], "segment");
    assert_eq!(created["name"], "Active");
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, got) = call(&app, &token, Method::GET, &format!("/segments/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(got["name"], "Active");
    assert_eq!(got["filter"], json!({"plan": "pro"}));
    assert_eq!(got["object"], "segment");
    let (status, renamed) = call(
        &app,
        &token,
        Method::PATCH,
        &format!("/segments/{id}"),
        Some(json!({"name": "Very active"})),
    )
    .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["id"], id.as_str());
    let (_, got) = call(&app, &token, Method::GET, &format!("/segments/{id}"), None).await;
    assert_eq!(got["name"], "Very active");
    let (_, second) = call(
        &app,
        &token,
        Method::POST,
        "/segments",
        Some(json!({"name": "Second"})),
    )
    .await;
    let (_, list) = call(&app, &token, Method::GET, "/segments?limit=1", None).await;
    assert_eq!(ids(&list), [second["id"].as_str().unwrap()]);
    assert_eq!(list["has_more"], true);
    let (status, deleted) = call(
        &app,
        &token,
        Method::DELETE,
        &format!("/segments/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        deleted,
        json!({"object": "segment", "id": id, "deleted": true})
    );
    expect_error(
        app.authed(Method::GET, &format!("/segments/{id}"), &token)
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;

    for (method, path, body, status, name) in [
        (
            Method::POST,
            "/segments".to_owned(),
            json!({}),
            422,
            "missing_required_field",
        ),
        (
            Method::POST,
            "/segments".to_owned(),
            json!({"name": "  "}),
            422,
            "validation_error",
        ),
        (
            Method::POST,
            "/segments".to_owned(),
            json!({"name": "x".repeat(256)}),
            422,
            "validation_error",
        ),
        (
            Method::POST,
            "/segments".to_owned(),
            json!({"name": "x", "filter": [1]}),
            422,
            "validation_error",
        ),
        (
            Method::PATCH,
            format!("/segments/{}", second["id"].as_str().unwrap()),
            json!({"name": ""}),
            422,
            "validation_error",
        ),
        (
            Method::GET,
            "/segments/not-a-uuid".to_owned(),
            json!({}),
            422,
            "invalid_parameter",
        ),
        (
            Method::PATCH,
            format!("/segments/{}", Uuid::now_v7()),
            json!({"name": "x"}),
            404,
            "not_found",
        ),
        (
            Method::DELETE,
            format!("/segments/{}", Uuid::now_v7()),
            json!({}),
            404,
            "not_found",
        ),
    ] {
        expect_error(
            app.authed(method, &path, &token)
                .json(&body)
                .send()
                .await
                .unwrap(),
            status,
            name,
        )
        .await;
    }
    let (_, list) = call(&app, &token, Method::GET, "/segments", None).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "nothing written: {list}"
    );
}

#[tokio::test]
async fn contacts_join_and_leave_segments() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let (_, seg) = call(
        &app,
        &token,
        Method::POST,
        "/segments",
        Some(json!({"name": "News"})),
    )
    .await;
    let seg = seg["id"].as_str().unwrap().to_owned();
    let id = contact(&app, &token, "Member@example.com").await;
    // By address, in any case.
    let (status, added) = call(
        &app,
        &token,
        Method::POST,
        &format!("/contacts/member@EXAMPLE.com/segments/{seg}"),
        None,
    )
    .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["object"], "contact_segment");
    assert_eq!(added["contact_id"], id.as_str());
    assert_eq!(added["segment_id"], seg.as_str());
    // Again: nothing changes.
    let (status, _) = call(
        &app,
        &token,
        Method::POST,
        &format!("/contacts/{id}/segments/{seg}"),
        None,
    )
    .await;
    assert_eq!(status, 201);
    let (status, list) = call(
        &app,
        &token,
        Method::GET,
        &format!("/contacts/{id}/segments"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(ids(&list), [seg.as_str()]);
    assert_eq!(list["data"][0]["name"], "News");
    let (_, members) = call(
        &app,
        &token,
        Method::GET,
        &format!("/segments/{seg}/contacts"),
        None,
    )
    .await;
    assert_eq!(ids(&members), [id.as_str()]);

    let (status, removed) = call(
        &app,
        &token,
        Method::DELETE,
        &format!("/contacts/{id}/segments/{seg}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["deleted"], true);
    expect_error(
        app.authed(
            Method::DELETE,
            &format!("/contacts/{id}/segments/{seg}"),
            &token,
        )
        .send()
        .await
        .unwrap(),
        404,
        "not_found",
    )
    .await;
    let (_, list) = call(
        &app,
        &token,
        Method::GET,
        &format!("/contacts/{id}/segments"),
        None,
    )
    .await;
    assert_eq!(list["data"], json!([]));

    // Deleting a segment leaves its contacts.
    call(
        &app,
        &token,
        Method::POST,
        &format!("/contacts/{id}/segments/{seg}"),
        None,
    )
    .await;
    call(
        &app,
        &token,
        Method::DELETE,
        &format!("/segments/{seg}"),
        None,
    )
    .await;
    let (status, _) = call(&app, &token, Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!(status, 200);

    expect_error(
        app.authed(
            Method::POST,
            &format!("/contacts/{id}/segments/{}", Uuid::now_v7()),
            &token,
        )
        .send()
        .await
        .unwrap(),
        404,
        "not_found",
    )
    .await;
    expect_error(
        app.authed(
            Method::POST,
            &format!("/contacts/nobody@example.com/segments/{seg}"),
            &token,
        )
        .send()
        .await
        .unwrap(),
        404,
        "not_found",
    )
    .await;
    expect_error(
        app.authed(
            Method::POST,
            &format!("/contacts/{id}/segments/nope"),
            &token,
        )
        .send()
        .await
        .unwrap(),
        422,
        "invalid_parameter",
    )
    .await;
}

#[tokio::test]
async fn segment_ids_of_another_organization_are_missing_ones() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.tenant().await;
    let (_, bob) = app.tenant().await;
    let (_, seg) = call(
        &app,
        &alice,
        Method::POST,
        "/segments",
        Some(json!({"name": "Alice"})),
    )
    .await;
    let seg = seg["id"].as_str().unwrap().to_owned();
    let bobs_contact = contact(&app, &bob, "b@example.com").await;
    for (method, path) in [
        (Method::GET, format!("/segments/{seg}")),
        (Method::PATCH, format!("/segments/{seg}")),
        (Method::DELETE, format!("/segments/{seg}")),
        (Method::GET, format!("/segments/{seg}/contacts")),
        (Method::GET, format!("/audiences/{seg}")),
        (Method::DELETE, format!("/audiences/{seg}")),
        (Method::GET, format!("/audiences/{seg}/contacts")),
        (Method::POST, format!("/audiences/{seg}/contacts")),
        (
            Method::GET,
            format!("/audiences/{seg}/contacts/{bobs_contact}"),
        ),
        (
            Method::POST,
            format!("/contacts/{bobs_contact}/segments/{seg}"),
        ),
    ] {
        expect_error(
            app.authed(method, &path, &bob)
                .json(&json!({"name": "x", "email": "n@example.com"}))
                .send()
                .await
                .unwrap(),
            404,
            "not_found",
        )
        .await;
    }
    let (_, got) = call(&app, &alice, Method::GET, &format!("/segments/{seg}"), None).await;
    assert_eq!(got["name"], "Alice");
    let (_, list) = call(&app, &bob, Method::GET, "/contacts", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn audiences_are_segments_in_their_old_shapes() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let (status, created) = call(
        &app,
        &token,
        Method::POST,
        "/audiences",
        Some(json!({"name": "Registered"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["object"], "audience");
    assert_eq!(created["name"], "Registered");
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, got) = call(&app, &token, Method::GET, &format!("/audiences/{id}"), None).await;
    assert_eq!(got["object"], "audience");
    assert_eq!(got["name"], "Registered");
    assert!(got["created_at"].is_string());
    let (_, as_segment) = call(&app, &token, Method::GET, &format!("/segments/{id}"), None).await;
    assert_eq!(as_segment["name"], "Registered");
    let (_, list) = call(&app, &token, Method::GET, "/audiences", None).await;
    assert_eq!(list["object"], "list");
    assert_eq!(ids(&list), [id.as_str()]);

    // Contacts under an audience.
    let (status, c) = call(
        &app,
        &token,
        Method::POST,
        &format!("/audiences/{id}/contacts"),
        Some(json!({"email": "old@example.com", "first_name": "Old"})),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    let contact_id = c["id"].as_str().unwrap().to_owned();
    let outsider = contact(&app, &token, "outside@example.com").await;
    let (_, members) = call(
        &app,
        &token,
        Method::GET,
        &format!("/audiences/{id}/contacts"),
        None,
    )
    .await;
    assert_eq!(ids(&members), [contact_id.as_str()]);
    let (status, got) = call(
        &app,
        &token,
        Method::GET,
        &format!("/audiences/{id}/contacts/OLD@example.com"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["first_name"], "Old");
    expect_error(
        app.authed(
            Method::GET,
            &format!("/audiences/{id}/contacts/{outsider}"),
            &token,
        )
        .send()
        .await
        .unwrap(),
        404,
        "not_found",
    )
    .await;
    let (status, _) = call(
        &app,
        &token,
        Method::PATCH,
        &format!("/audiences/{id}/contacts/{contact_id}"),
        Some(json!({"last_name": "Timer"})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, got) = call(
        &app,
        &token,
        Method::GET,
        &format!("/contacts/{contact_id}"),
        None,
    )
    .await;
    assert_eq!(got["last_name"], "Timer");
    let (status, deleted) = call(
        &app,
        &token,
        Method::DELETE,
        &format!("/audiences/{id}/contacts/{contact_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(deleted["deleted"], true);
    expect_error(
        app.authed(Method::GET, &format!("/contacts/{contact_id}"), &token)
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;

    expect_error(
        app.authed(Method::POST, "/audiences", &token)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
        422,
        "missing_required_field",
    )
    .await;
    let (status, deleted) = call(
        &app,
        &token,
        Method::DELETE,
        &format!("/audiences/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        deleted,
        json!({"object": "audience", "id": id, "deleted": true})
    );
    expect_error(
        app.authed(Method::GET, &format!("/audiences/{id}"), &token)
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
}
