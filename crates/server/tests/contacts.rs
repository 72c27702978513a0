//! `/contacts` and `/contact-properties` end to end: creation with properties, segments and topics, reads
//! by id and by address in any case, updates, deletion, pagination, the suppression list showing as
//! `unsubscribed`, bad input (422/404, nothing written), tenant isolation and `contact.*` webhooks.

mod common;

use std::time::Duration;

use common::{TestApp, call, expect_error};
use opensend_store::entities::{contact, webhook_message};
use opensend_test_support::webhook_receiver::{Delivered, WebhookReceiver};
use reqwest::Method;
use sea_orm::{Database, EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

async fn create(app: &TestApp, token: &str, body: Value) -> String {
    let (status, created) = call(app, token, Method::POST, "/contacts", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["object"], "contact");
    created["id"].as_str().unwrap().to_owned()
}

async fn property(
    app: &TestApp,
    token: &str,
    key: &str,
    value_type: &str,
    fallback: Value,
) -> String {
    let (status, body) = call(
        app,
        token,
        Method::POST,
        "/contact-properties",
        Some(json!({"key": key, "type": value_type, "fallback_value": fallback})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["object"], "contact_property");
    body["id"].as_str().unwrap().to_owned()
}

async fn segment(app: &TestApp, token: &str, name: &str) -> String {
    let (status, body) = call(
        app,
        token,
        Method::POST,
        "/segments",
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn contact_rows(app: &TestApp) -> u64 {
    let db = Database::connect(app.db.url()).await.unwrap();
    contact::Entity::find().count(&db).await.unwrap()
}

#[tokio::test]
async fn a_contact_is_created_read_updated_and_deleted_by_id_or_address() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    property(&app, &token, "plan", "string", json!("free")).await;
    property(&app, &token, "seats", "number", Value::Null).await;
    let id = create(
        &app,
        &token,
        json!({
            "email": "Jane.Doe@Example.com",
            "first_name": "Jane",
            "last_name": "Doe",
            "properties": {"plan": "pro", "seats": 3},
        }),
    )
    .await;

    let (status, got) = call(&app, &token, Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["object"], "contact");
    assert_eq!(got["email"], "Jane.Doe@example.com");
    assert_eq!(got["first_name"], "Jane");
    assert_eq!(got["last_name"], "Doe");
    assert_eq!(got["unsubscribed"], false);
    assert_eq!(
        got["properties"],
        json!({"plan": {"type": "string", "value": "pro"}, "seats": {"type": "number", "value": 3}})
    );
    assert!(got["created_at"].as_str().unwrap().ends_with('Z'));

    // By address, in any case.
    let (status, by_email) = call(
        &app,
        &token,
        Method::GET,
        "/contacts/jane.doe@EXAMPLE.COM",
        None,
    )
    .await;
    assert_eq!(status, 200, "{by_email}");
    assert_eq!(by_email["id"], id.as_str());

    // The same address in another case is the same contact.
    let (status, dup) = call(
        &app,
        &token,
        Method::POST,
        "/contacts",
        Some(json!({"email": "JANE.DOE@example.com"})),
    )
    .await;
    assert_eq!(status, 422, "{dup}");
    assert_eq!(dup["name"], "validation_error");

    let (status, updated) = call(
        &app,
        &token,
        Method::PATCH,
        "/contacts/jane.doe@example.com",
        Some(json!({"first_name": "Janet", "last_name": null, "unsubscribed": true, "properties": {"seats": null}})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated, json!({"object": "contact", "id": id}));
    let (_, got) = call(&app, &token, Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!(got["first_name"], "Janet");
    assert_eq!(got["last_name"], Value::Null);
    assert_eq!(got["unsubscribed"], true);
    assert_eq!(
        got["properties"],
        json!({"plan": {"type": "string", "value": "pro"}})
    );

    let (status, deleted) = call(
        &app,
        &token,
        Method::DELETE,
        &format!("/contacts/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["deleted"], true);
    assert_eq!(deleted["id"], id.as_str());
    expect_error(
        app.authed(Method::GET, &format!("/contacts/{id}"), &token)
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    expect_error(
        app.authed(Method::DELETE, &format!("/contacts/{id}"), &token)
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    property(&app, &token, "seats", "number", Value::Null).await;
    let cases = [
        (json!({}), 422, "missing_required_field"),
        (json!({"email": "not an address"}), 422, "validation_error"),
        (
            json!({"email": "a@example.com", "properties": {"seats": "three"}}),
            422,
            "validation_error",
        ),
        (
            json!({"email": "a@example.com", "properties": {"nope": 1}}),
            422,
            "validation_error",
        ),
        (
            json!({"email": "a@example.com", "segments": ["not-an-id"]}),
            422,
            "validation_error",
        ),
        (
            json!({"email": "a@example.com", "segments": [{"id": uuid::Uuid::now_v7()}]}),
            422,
            "validation_error",
        ),
        (
            json!({"email": "a@example.com", "topics": [{"id": uuid::Uuid::now_v7(), "subscription": "opt_in"}]}),
            422,
            "validation_error",
        ),
        (
            json!({"email": "a@example.com", "topics": [{"id": uuid::Uuid::now_v7(), "subscription": "maybe"}]}),
            422,
            "validation_error",
        ),
        (
            json!({"email": "a@example.com", "first_name": "x".repeat(256)}),
            422,
            "validation_error",
        ),
        (
            json!({"email": "a@example.com", "unsubscribed": "yes"}),
            422,
            "validation_error",
        ),
    ];
    for (body, status, name) in cases {
        let error = expect_error(
            app.authed(Method::POST, "/contacts", &token)
                .json(&body)
                .send()
                .await
                .unwrap(),
            status,
            name,
        )
        .await;
        if body["properties"].get("seats").is_some() {
            assert!(
                error["message"].as_str().unwrap().contains("seats"),
                "{error}"
            );
        }
        if body["properties"].get("nope").is_some() {
            assert!(
                error["message"].as_str().unwrap().contains("nope"),
                "{error}"
            );
        }
    }
    assert_eq!(contact_rows(&app).await, 0);

    let id = create(&app, &token, json!({"email": "b@example.com"})).await;
    expect_error(
        app.authed(Method::PATCH, &format!("/contacts/{id}"), &token)
            .json(&json!({"first_name": "B", "properties": {"seats": "many"}}))
            .send()
            .await
            .unwrap(),
        422,
        "validation_error",
    )
    .await;
    let (_, got) = call(&app, &token, Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!(got["first_name"], Value::Null, "nothing written: {got}");
    expect_error(
        app.authed(Method::GET, "/contacts/neither-id-nor-address", &token)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_parameter",
    )
    .await;
    expect_error(
        app.authed(Method::GET, "/contacts?limit=0", &token)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_parameter",
    )
    .await;
    expect_error(
        app.authed(Method::GET, "/contacts?segment_id=nope", &token)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_parameter",
    )
    .await;
}

#[tokio::test]
async fn lists_page_newest_first_and_filter_by_segment() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let vip = segment(&app, &token, "VIP").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let segments = if i % 2 == 0 { json!([vip]) } else { json!([]) };
        ids.push(
            create(
                &app,
                &token,
                json!({"email": format!("c{i}@example.com"), "segments": segments}),
            )
            .await,
        );
    }
    let (status, page) = call(&app, &token, Method::GET, "/contacts?limit=2", None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["object"], "list");
    assert_eq!(page["has_more"], true);
    let first: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(first, [ids[4].as_str(), ids[3].as_str()]);
    assert_eq!(page["data"][0]["email"], "c4@example.com");
    assert!(page["data"][0].get("unsubscribed").is_some());
    let (_, next) = call(
        &app,
        &token,
        Method::GET,
        &format!("/contacts?limit=2&after={}", ids[3]),
        None,
    )
    .await;
    let second: Vec<&str> = next["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(second, [ids[2].as_str(), ids[1].as_str()]);

    for path in [
        format!("/contacts?segment_id={vip}"),
        format!("/segments/{vip}/contacts"),
    ] {
        let (status, members) = call(&app, &token, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{members}");
        let got: Vec<&str> = members["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            got,
            [ids[4].as_str(), ids[2].as_str(), ids[0].as_str()],
            "{path}"
        );
    }
    let missing = uuid::Uuid::now_v7();
    expect_error(
        app.authed(
            Method::GET,
            &format!("/contacts?segment_id={missing}"),
            &token,
        )
        .send()
        .await
        .unwrap(),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_suppressed_address_reads_as_unsubscribed() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let id = create(&app, &token, json!({"email": "Bounced@example.com"})).await;
    let (status, _) = call(
        &app,
        &token,
        Method::POST,
        "/suppressions",
        Some(json!({"email": "bounced@EXAMPLE.com"})),
    )
    .await;
    assert_eq!(status, 201);
    let (_, got) = call(&app, &token, Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!(got["unsubscribed"], true, "{got}");
    let (_, list) = call(&app, &token, Method::GET, "/contacts", None).await;
    assert_eq!(list["data"][0]["unsubscribed"], true, "{list}");
    // Re-subscribing does not override the suppression list.
    call(
        &app,
        &token,
        Method::PATCH,
        &format!("/contacts/{id}"),
        Some(json!({"unsubscribed": false})),
    )
    .await;
    let (_, got) = call(&app, &token, Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!(got["unsubscribed"], true, "{got}");
    // Another organization's suppression list is its own.
    let (_, other) = app.tenant().await;
    let theirs = create(&app, &other, json!({"email": "bounced@example.com"})).await;
    let (_, got) = call(
        &app,
        &other,
        Method::GET,
        &format!("/contacts/{theirs}"),
        None,
    )
    .await;
    assert_eq!(got["unsubscribed"], false, "{got}");
}

#[tokio::test]
async fn another_organizations_contacts_are_missing_ones() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.tenant().await;
    let (_, bob) = app.tenant().await;
    let id = create(&app, &alice, json!({"email": "shared@example.com"})).await;
    // The same address is a different contact in another organization.
    let bobs = create(&app, &bob, json!({"email": "shared@example.com"})).await;
    assert_ne!(id, bobs);
    let bob_segment = segment(&app, &bob, "Bob's").await;
    let alice_segment = segment(&app, &alice, "Alice's").await;
    for (method, path) in [
        (Method::GET, format!("/contacts/{id}")),
        (Method::PATCH, format!("/contacts/{id}")),
        (Method::DELETE, format!("/contacts/{id}")),
        (Method::GET, format!("/contacts/{id}/segments")),
        (Method::GET, format!("/contacts/{id}/topics")),
        (Method::PATCH, format!("/contacts/{id}/topics")),
        (
            Method::POST,
            format!("/contacts/{id}/segments/{bob_segment}"),
        ),
        (
            Method::DELETE,
            format!("/contacts/{id}/segments/{bob_segment}"),
        ),
        (
            Method::POST,
            format!("/contacts/{bobs}/segments/{alice_segment}"),
        ),
        (Method::GET, format!("/segments/{alice_segment}/contacts")),
        (Method::GET, format!("/contacts?segment_id={alice_segment}")),
    ] {
        let body = if method == Method::PATCH {
            json!({"first_name": "X", "topics": []})
        } else {
            json!({})
        };
        expect_error(
            app.authed(method.clone(), &path, &bob)
                .json(&body)
                .send()
                .await
                .unwrap(),
            404,
            "not_found",
        )
        .await;
    }
    expect_error(
        app.authed(Method::POST, "/contacts", &bob)
            .json(&json!({"email": "new@example.com", "segments": [alice_segment]}))
            .send()
            .await
            .unwrap(),
        422,
        "validation_error",
    )
    .await;
    let (_, list) = call(&app, &bob, Method::GET, "/contacts", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    let (_, still) = call(&app, &alice, Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!(still["first_name"], Value::Null);
    let (_, members) = call(
        &app,
        &alice,
        Method::GET,
        &format!("/contacts/{id}/segments"),
        None,
    )
    .await;
    assert_eq!(members["data"], json!([]));
}

#[tokio::test]
async fn contact_properties_are_typed_and_keyed() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let id = property(&app, &token, "company_name", "string", json!("Acme")).await;
    let (status, got) = call(
        &app,
        &token,
        Method::GET,
        &format!("/contact-properties/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["key"], "company_name");
    assert_eq!(got["type"], "string");
    assert_eq!(got["fallback_value"], "Acme");
    assert_eq!(got["object"], "contact_property");

    for body in [
        json!({"key": "company_name", "type": "string"}),
        json!({"key": "x".repeat(51), "type": "string"}),
        json!({"key": "has space", "type": "string"}),
        json!({"key": "ok", "type": "boolean"}),
        json!({"key": "ok", "type": "number", "fallback_value": "ten"}),
    ] {
        expect_error(
            app.authed(Method::POST, "/contact-properties", &token)
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
        app.authed(Method::POST, "/contact-properties", &token)
            .json(&json!({"type": "string"}))
            .send()
            .await
            .unwrap(),
        422,
        "missing_required_field",
    )
    .await;
    property(&app, &token, &"k".repeat(50), "number", json!(1.5)).await;

    let (status, _) = call(
        &app,
        &token,
        Method::PATCH,
        &format!("/contact-properties/{id}"),
        Some(json!({"fallback_value": "Initech"})),
    )
    .await;
    assert_eq!(status, 200);
    expect_error(
        app.authed(Method::PATCH, &format!("/contact-properties/{id}"), &token)
            .json(&json!({"fallback_value": 3}))
            .send()
            .await
            .unwrap(),
        422,
        "validation_error",
    )
    .await;
    expect_error(
        app.authed(Method::PATCH, &format!("/contact-properties/{id}"), &token)
            .json(&json!({"type": "number"}))
            .send()
            .await
            .unwrap(),
        422,
        "validation_error",
    )
    .await;
    let (_, got) = call(
        &app,
        &token,
        Method::GET,
        &format!("/contact-properties/{id}"),
        None,
    )
    .await;
    assert_eq!(got["fallback_value"], "Initech");

    let (_, list) = call(&app, &token, Method::GET, "/contact-properties", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2, "{list}");

    // Deleting a property deletes the contacts' values of it.
    let contact = create(
        &app,
        &token,
        json!({"email": "p@example.com", "properties": {"company_name": "Globex"}}),
    )
    .await;
    let (status, deleted) = call(
        &app,
        &token,
        Method::DELETE,
        &format!("/contact-properties/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(deleted["deleted"], true);
    let (_, got) = call(
        &app,
        &token,
        Method::GET,
        &format!("/contacts/{contact}"),
        None,
    )
    .await;
    assert_eq!(got["properties"], json!({}));

    // Another organization sees none of it.
    let (_, other) = app.tenant().await;
    let remaining = list["data"][0]["id"].as_str().unwrap();
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        expect_error(
            app.authed(method, &format!("/contact-properties/{remaining}"), &other)
                .json(&json!({}))
                .send()
                .await
                .unwrap(),
            404,
            "not_found",
        )
        .await;
    }
    expect_error(
        app.authed(Method::POST, "/contacts", &other)
            .json(&json!({"email": "o@example.com", "properties": {"kkkkk": 1}}))
            .send()
            .await
            .unwrap(),
        422,
        "validation_error",
    )
    .await;
}

#[tokio::test]
async fn contact_changes_are_announced() {
    let app = TestApp::spawn_with(&[
        ("ALLOW_PRIVATE_WEBHOOK_URLS", "true"),
        ("WEBHOOK_RETRY_DELAYS_SECONDS", "0,0,0"),
    ])
    .await;
    let (_, token) = app.tenant().await;
    let receiver = WebhookReceiver::start(vec![]).await;
    let (status, hook) = call(
        &app,
        &token,
        Method::POST,
        "/webhooks",
        Some(json!({"endpoint": receiver.url(), "events": ["contact.created", "contact.updated", "contact.deleted"]})),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    let vip = segment(&app, &token, "VIP").await;
    let id = create(
        &app,
        &token,
        json!({"email": "hook@example.com", "first_name": "Hook", "segments": [vip]}),
    )
    .await;
    call(
        &app,
        &token,
        Method::PATCH,
        &format!("/contacts/{id}"),
        Some(json!({"unsubscribed": true})),
    )
    .await;
    call(
        &app,
        &token,
        Method::DELETE,
        &format!("/contacts/{id}"),
        None,
    )
    .await;
    // A refused change announces nothing.
    call(
        &app,
        &token,
        Method::POST,
        "/contacts",
        Some(json!({"email": "bad"})),
    )
    .await;

    let delivered = receiver.wait_for(3, Duration::from_secs(20)).await;
    let payloads: Vec<Value> = delivered.iter().map(Delivered::json).collect();
    let of = |t: &str| {
        payloads
            .iter()
            .find(|p| p["type"] == t)
            .cloned()
            .unwrap_or_else(|| panic!("no {t}: {payloads:?}"))
    };
    let created = of("contact.created");
    assert_eq!(created["data"]["id"], id.as_str());
    assert_eq!(created["data"]["email"], "hook@example.com");
    assert_eq!(created["data"]["first_name"], "Hook");
    assert_eq!(created["data"]["unsubscribed"], false);
    assert_eq!(created["data"]["segment_ids"], json!([vip]));
    assert!(created["data"]["created_at"].is_string() && created["data"]["updated_at"].is_string());
    assert_eq!(of("contact.updated")["data"]["unsubscribed"], true);
    assert_eq!(of("contact.deleted")["data"]["id"], id.as_str());

    let db = Database::connect(app.db.url()).await.unwrap();
    assert_eq!(webhook_message::Entity::find().count(&db).await.unwrap(), 3);
}
