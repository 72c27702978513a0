//! `/broadcasts` end to end: drafts and their rules, sending and the fan-out (skips, personalisation, the
//! unsubscribe headers on the captured message), recipients, cancel, duplicate, and tenant isolation.

mod common;

use std::time::Duration;

use common::{TestApp, call, expect_error};
use reqwest::Method;
use serde_json::{Value, json};

/// A fast fan-out so tests do not wait on the default rate.
const FAST: &[(&str, &str)] = &[("BROADCAST_RATE_PER_SECOND", "1000")];

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> String {
    let (status, created) = call(app, token, Method::POST, path, Some(body)).await;
    assert_eq!(status, 201, "{path}: {created}");
    created["id"].as_str().unwrap().to_owned()
}

async fn segment(app: &TestApp, token: &str) -> String {
    post(app, token, "/segments", json!({"name": "Readers"})).await
}

async fn contact(app: &TestApp, token: &str, body: Value) -> String {
    post(app, token, "/contacts", body).await
}

async fn draft(app: &TestApp, token: &str, segment: &str, extra: Value) -> String {
    let mut body = json!({
        "name": "November news",
        "segment_id": segment,
        "from": "News <news@example.com>",
        "subject": "Hello {{{contact.first_name|there}}}",
        "html": "<p>Hi {{{FIRST_NAME|friend}}}</p><a href=\"{{{RESEND_UNSUBSCRIBE_URL}}}\">Unsubscribe</a>",
        "text": "Hi {{{contact.first_name|friend}}} at {{{contact.email}}}",
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, created) = call(app, token, Method::POST, "/broadcasts", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["object"], "broadcast");
    created["id"].as_str().unwrap().to_owned()
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let (status, body) = call(app, token, Method::GET, path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Polls the broadcast until its status is `status`.
async fn wait_for(app: &TestApp, token: &str, id: &str, status: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        last = get(app, token, &format!("/broadcasts/{id}")).await;
        if last["status"] == status {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("broadcast {id} never reached `{status}`; last seen: {last}");
}

async fn all_recipients(app: &TestApp, token: &str, id: &str, query: &str) -> Vec<Value> {
    let list = get(
        app,
        token,
        &format!("/broadcasts/{id}/recipients?limit=100{query}"),
    )
    .await;
    assert_eq!(list["object"], "list");
    list["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn drafts_are_created_read_listed_updated_duplicated_and_deleted() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let seg = segment(&app, &token).await;
    let topic = post(
        &app,
        &token,
        "/topics",
        json!({"name": "News", "default_subscription": "opt_in"}),
    )
    .await;
    let id = draft(
        &app,
        &token,
        &seg,
        json!({"topic_id": topic, "reply_to": "replies@example.com", "preview_text": "Our news"}),
    )
    .await;
    let got = get(&app, &token, &format!("/broadcasts/{id}")).await;
    assert_eq!(got["object"], "broadcast");
    assert_eq!(got["status"], "draft");
    assert_eq!(got["name"], "November news");
    assert_eq!(got["segment_id"], seg.as_str());
    assert_eq!(got["audience_id"], seg.as_str());
    assert_eq!(got["topic_id"], topic.as_str());
    assert_eq!(got["from"], "News <news@example.com>");
    assert_eq!(got["reply_to"], json!(["replies@example.com"]));
    assert_eq!(got["preview_text"], "Our news");
    assert!(got["created_at"].is_string());
    // Unset plain-string fields are left out, as Resend's schema types them (never `null`).
    let fields = got.as_object().unwrap();
    assert!(!fields.contains_key("sent_at") && !fields.contains_key("scheduled_at"));

    // The deprecated `audience_id` names a segment too.
    let legacy = draft(
        &app,
        &token,
        &seg,
        json!({"segment_id": null, "audience_id": seg}),
    )
    .await;
    assert_eq!(
        get(&app, &token, &format!("/broadcasts/{legacy}")).await["segment_id"],
        seg.as_str()
    );

    let (status, updated) = call(
        &app,
        &token,
        Method::PATCH,
        &format!("/broadcasts/{id}"),
        Some(json!({"subject": "Changed", "name": null, "topic_id": null})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated, json!({"object": "broadcast", "id": id}));
    let got = get(&app, &token, &format!("/broadcasts/{id}")).await;
    assert_eq!(got["subject"], "Changed");
    assert!(
        got.get("name").is_none() && got["topic_id"].is_null(),
        "{got}"
    );

    let list = get(&app, &token, "/broadcasts").await;
    assert_eq!(list["object"], "list");
    assert_eq!(list["has_more"], false);
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["id"], legacy.as_str(), "newest first");
    assert_eq!(data[1]["status"], "draft");

    let (status, copy) = call(
        &app,
        &token,
        Method::POST,
        &format!("/broadcasts/{id}/duplicate"),
        None,
    )
    .await;
    assert_eq!(status, 201, "{copy}");
    let copy_id = copy["id"].as_str().unwrap();
    assert_ne!(copy_id, id);
    let copied = get(&app, &token, &format!("/broadcasts/{copy_id}")).await;
    assert_eq!(copied["subject"], "Changed");
    assert_eq!(copied["status"], "draft");
    assert_eq!(copied["html"], got["html"]);

    let (status, deleted) = call(
        &app,
        &token,
        Method::DELETE,
        &format!("/broadcasts/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        deleted,
        json!({"object": "broadcast", "id": id, "deleted": true})
    );
    expect_error(
        app.authed(Method::GET, &format!("/broadcasts/{id}"), &token)
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn bad_input_is_refused_clearly() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let seg = segment(&app, &token).await;
    let good =
        json!({"segment_id": seg, "from": "a@example.com", "subject": "S", "html": "<p>x</p>"});
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = good.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    for (body, status, name) in [
        (without("segment_id"), 422, "missing_required_field"),
        (without("from"), 422, "missing_required_field"),
        (without("subject"), 422, "missing_required_field"),
        (
            with("from", json!("not an address")),
            422,
            "validation_error",
        ),
        (with("segment_id", json!("nope")), 422, "validation_error"),
        (
            with("segment_id", json!(uuid::Uuid::now_v7())),
            422,
            "validation_error",
        ),
        (
            with("topic_id", json!(uuid::Uuid::now_v7())),
            422,
            "validation_error",
        ),
        (
            with("scheduled_at", json!("in 5 minutes")),
            422,
            "validation_error",
        ),
        (
            {
                let mut b = with("send", json!(true));
                b["scheduled_at"] = json!("next blue moon");
                b
            },
            422,
            "validation_error",
        ),
        (
            {
                let mut b = with("send", json!(true));
                b["html"] = json!("{{{contact.nope}}}");
                b
            },
            422,
            "validation_error",
        ),
    ] {
        expect_error(
            app.authed(Method::POST, "/broadcasts", &token)
                .json(&body)
                .send()
                .await
                .unwrap(),
            status,
            name,
        )
        .await;
    }
    let (status, _) = call(&app, &token, Method::GET, "/broadcasts", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        get(&app, &token, "/broadcasts").await["data"],
        json!([]),
        "nothing refused was stored"
    );
    expect_error(
        app.authed(Method::GET, "/broadcasts/not-an-id", &token)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_parameter",
    )
    .await;
    // Content without a body cannot be sent.
    let empty = post(
        &app,
        &token,
        "/broadcasts",
        json!({"segment_id": seg, "from": "a@example.com", "subject": "S"}),
    )
    .await;
    expect_error(
        app.authed(Method::POST, &format!("/broadcasts/{empty}/send"), &token)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
        422,
        "validation_error",
    )
    .await;
    expect_error(
        app.authed(
            Method::GET,
            &format!("/broadcasts/{empty}/recipients?type=everyone"),
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
async fn a_sent_broadcast_reaches_each_contact_once_personalised_and_skips_the_rest() {
    let app = TestApp::spawn_with(FAST).await;
    let (_, token) = app.tenant().await;
    let seg = segment(&app, &token).await;
    let (status, _) = call(
        &app,
        &token,
        Method::POST,
        "/contact-properties",
        Some(json!({"key": "company", "type": "string", "fallback_value": "your team"})),
    )
    .await;
    assert_eq!(status, 201);
    let ann = contact(
        &app,
        &token,
        json!({"email": "ann@example.com", "first_name": "Ann <3", "segments": [seg], "properties": {"company": "Acme"}}),
    )
    .await;
    let bob = contact(
        &app,
        &token,
        json!({"email": "bob@example.com", "segments": [seg]}),
    )
    .await;
    let gone = contact(
        &app,
        &token,
        json!({"email": "gone@example.com", "unsubscribed": true, "segments": [seg]}),
    )
    .await;
    let bounced = contact(
        &app,
        &token,
        json!({"email": "Bounced@example.com", "segments": [seg]}),
    )
    .await;
    // Not in the segment: never reached.
    contact(&app, &token, json!({"email": "outside@example.com"})).await;
    let (status, _) = call(
        &app,
        &token,
        Method::POST,
        "/suppressions",
        Some(json!({"email": "bounced@example.com"})),
    )
    .await;
    assert_eq!(status, 201);

    let id = draft(
        &app,
        &token,
        &seg,
        json!({"preview_text": "Inside", "text": "Hi {{{contact.first_name|friend}}} from {{{contact.company}}}"}),
    )
    .await;
    let (status, sent) = call(
        &app,
        &token,
        Method::POST,
        &format!("/broadcasts/{id}/send"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent, json!({"id": id}));
    let done = wait_for(&app, &token, &id, "sent").await;
    assert!(done["sent_at"].is_string(), "{done}");

    // A sent broadcast is no longer a draft.
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/broadcasts/{id}"),
            Some(json!({"subject": "x"})),
        ),
        (Method::DELETE, format!("/broadcasts/{id}"), None),
        (
            Method::POST,
            format!("/broadcasts/{id}/send"),
            Some(json!({})),
        ),
        (Method::POST, format!("/broadcasts/{id}/cancel"), None),
    ] {
        let mut request = app.authed(method, &path, &token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let error = expect_error(request.send().await.unwrap(), 422, "validation_error").await;
        assert!(
            error["message"].as_str().unwrap().contains("`sent`"),
            "{error}"
        );
    }

    let recipients = all_recipients(&app, &token, &id, "").await;
    assert_eq!(recipients.len(), 4, "{recipients:?}");
    let of = |contact_id: &str| {
        recipients
            .iter()
            .find(|r| r["contact_id"] == contact_id)
            .unwrap_or_else(|| panic!("no recipient {contact_id}: {recipients:?}"))
            .clone()
    };
    assert_eq!(of(&gone)["status"], "skipped");
    assert_eq!(of(&gone)["skipped_reason"], "unsubscribed");
    assert!(of(&gone)["email_id"].is_null());
    assert_eq!(of(&bounced)["skipped_reason"], "suppressed");
    assert_eq!(of(&ann)["email"], "ann@example.com");
    assert!(of(&ann)["skipped_reason"].is_null());

    // Filters: Resend's `type`, and by address.
    let unsubscribed = all_recipients(&app, &token, &id, "&type=unsubscribed").await;
    assert_eq!(unsubscribed.len(), 1);
    assert_eq!(unsubscribed[0]["contact_id"], gone.as_str());
    let suppressed = all_recipients(&app, &token, &id, "&type=suppressed").await;
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0]["contact_id"], bounced.as_str());
    let by_address = all_recipients(&app, &token, &id, "&email=ANN@example.com").await;
    assert_eq!(by_address.len(), 1);
    assert_eq!(by_address[0]["contact_id"], ann.as_str());

    // Ann's email: personalised, escaped in HTML, with the one-click headers on the captured message.
    let ann_email = of(&ann)["email_id"].as_str().unwrap().to_owned();
    let email = app.wait_for_status(&token, &ann_email, "sent").await;
    assert_eq!(email["subject"], "Hello Ann <3");
    assert_eq!(email["to"], json!(["ann@example.com"]));
    assert_eq!(email["from"], "News <news@example.com>");
    let html = email["html"].as_str().unwrap();
    assert!(html.contains("<p>Hi Ann &lt;3</p>"), "{html}");
    assert!(
        html.contains("Inside"),
        "the preview text is in the HTML: {html}"
    );
    assert_eq!(email["text"], "Hi Ann <3 from Acme");
    let raw = email["raw"].as_str().expect("capture keeps the message");
    let unfolded = raw.replace("\r\n ", " ").replace("\r\n\t", " ");
    let header = unfolded
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("list-unsubscribe:"))
        .unwrap_or_else(|| panic!("no List-Unsubscribe in {raw}"));
    let url_start = header.find("<http").expect("an https? URL") + 1;
    let url = &header[url_start..header[url_start..].find('>').unwrap() + url_start];
    assert!(url.contains("/unsubscribe/"), "{header}");
    assert!(
        html.contains(url),
        "the HTML links the same page: {html}\n{header}\n{raw}"
    );
    assert!(
        unfolded
            .lines()
            .any(|l| l.eq_ignore_ascii_case("List-Unsubscribe-Post: List-Unsubscribe=One-Click")),
        "{raw}"
    );

    // Bob has no first name or company: the fallbacks.
    let bob_email = of(&bob)["email_id"].as_str().unwrap().to_owned();
    let email = get(&app, &token, &format!("/emails/{bob_email}")).await;
    assert_eq!(email["subject"], "Hello there");
    assert_eq!(email["text"], "Hi friend from your team");

    // Each contact got exactly one email.
    let emails = get(&app, &token, "/emails?limit=100").await;
    let to: Vec<&Value> = emails["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["to"])
        .collect();
    assert_eq!(to.len(), 2, "{emails}");
}

#[tokio::test]
async fn a_topic_broadcast_skips_contacts_opted_out_of_it() {
    let app = TestApp::spawn_with(FAST).await;
    let (_, token) = app.tenant().await;
    let seg = segment(&app, &token).await;
    let opt_in = post(
        &app,
        &token,
        "/topics",
        json!({"name": "Product", "default_subscription": "opt_in"}),
    )
    .await;
    let opt_out = post(
        &app,
        &token,
        "/topics",
        json!({"name": "Offers", "default_subscription": "opt_out"}),
    )
    .await;
    let default_in = contact(
        &app,
        &token,
        json!({"email": "a@example.com", "segments": [seg]}),
    )
    .await;
    let chose_out = contact(
        &app,
        &token,
        json!({"email": "b@example.com", "segments": [seg], "topics": [{"id": opt_in, "subscription": "opt_out"}]}),
    )
    .await;
    let chose_in = contact(
        &app,
        &token,
        json!({"email": "c@example.com", "segments": [seg], "topics": [{"id": opt_out, "subscription": "opt_in"}]}),
    )
    .await;

    let product = draft(
        &app,
        &token,
        &seg,
        json!({"topic_id": opt_in, "send": true}),
    )
    .await;
    wait_for(&app, &token, &product, "sent").await;
    let reached = all_recipients(&app, &token, &product, "").await;
    let reason = |rows: &[Value], id: &str| {
        rows.iter()
            .find(|r| r["contact_id"] == id)
            .map(|r| r["skipped_reason"].clone())
            .unwrap()
    };
    assert_eq!(reached.len(), 3);
    assert!(reason(&reached, &default_in).is_null());
    assert_eq!(reason(&reached, &chose_out), "opted_out");
    assert!(reason(&reached, &chose_in).is_null());

    let offers = draft(
        &app,
        &token,
        &seg,
        json!({"topic_id": opt_out, "send": true}),
    )
    .await;
    wait_for(&app, &token, &offers, "sent").await;
    let reached = all_recipients(&app, &token, &offers, "").await;
    assert_eq!(reason(&reached, &default_in), "opted_out");
    assert!(reason(&reached, &chose_in).is_null());
}

#[tokio::test]
async fn scheduled_broadcasts_cancel_back_to_draft_and_sending_ones_stop() {
    // One email a second: a broadcast of several contacts is still sending when it is canceled.
    let app = TestApp::spawn_with(&[("BROADCAST_RATE_PER_SECOND", "1")]).await;
    let (_, token) = app.tenant().await;
    let seg = segment(&app, &token).await;
    for i in 0..6 {
        contact(
            &app,
            &token,
            json!({"email": format!("r{i}@example.com"), "segments": [seg]}),
        )
        .await;
    }

    let later = draft(
        &app,
        &token,
        &seg,
        json!({"send": true, "scheduled_at": "in 1 hour"}),
    )
    .await;
    let got = get(&app, &token, &format!("/broadcasts/{later}")).await;
    assert_eq!(got["status"], "scheduled");
    assert!(got["scheduled_at"].is_string());
    let (status, canceled) = call(
        &app,
        &token,
        Method::POST,
        &format!("/broadcasts/{later}/cancel"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{canceled}");
    assert_eq!(canceled, json!({"object": "broadcast", "id": later}));
    let got = get(&app, &token, &format!("/broadcasts/{later}")).await;
    assert_eq!(
        got["status"], "draft",
        "a canceled schedule is a draft again"
    );
    assert!(got["scheduled_at"].is_null());
    // Scheduled again with an ISO 8601 time, then deleted (which cancels it).
    let at = (chrono::Utc::now() + chrono::TimeDelta::days(1)).to_rfc3339();
    let (status, _) = call(
        &app,
        &token,
        Method::POST,
        &format!("/broadcasts/{later}/send"),
        Some(json!({"scheduled_at": at})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        get(&app, &token, &format!("/broadcasts/{later}")).await["status"],
        "scheduled"
    );
    let (status, _) = call(
        &app,
        &token,
        Method::DELETE,
        &format!("/broadcasts/{later}"),
        None,
    )
    .await;
    assert_eq!(status, 200);

    let now = draft(&app, &token, &seg, json!({"send": true})).await;
    let (status, _) = call(
        &app,
        &token,
        Method::POST,
        &format!("/broadcasts/{now}/cancel"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        get(&app, &token, &format!("/broadcasts/{now}")).await["status"],
        "canceled"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let got = get(&app, &token, &format!("/broadcasts/{now}")).await;
    assert_eq!(got["status"], "canceled");
    let reached = all_recipients(&app, &token, &now, "").await;
    assert!(reached.len() < 6, "no chunk after the cancel: {reached:?}");
}

#[tokio::test]
async fn another_organization_sees_nothing() {
    let app = TestApp::spawn_with(FAST).await;
    let (_, token) = app.tenant().await;
    let (_, other) = app.tenant().await;
    let seg = segment(&app, &token).await;
    contact(
        &app,
        &token,
        json!({"email": "mine@example.com", "segments": [seg]}),
    )
    .await;
    let id = draft(&app, &token, &seg, json!({"send": true})).await;
    wait_for(&app, &token, &id, "sent").await;

    for (method, path) in [
        (Method::GET, format!("/broadcasts/{id}")),
        (Method::PATCH, format!("/broadcasts/{id}")),
        (Method::DELETE, format!("/broadcasts/{id}")),
        (Method::POST, format!("/broadcasts/{id}/send")),
        (Method::POST, format!("/broadcasts/{id}/cancel")),
        (Method::POST, format!("/broadcasts/{id}/duplicate")),
        (Method::GET, format!("/broadcasts/{id}/recipients")),
    ] {
        let mut request = app.authed(method.clone(), &path, &other);
        if method != Method::GET && method != Method::DELETE {
            request = request.json(&json!({}));
        }
        expect_error(request.send().await.unwrap(), 404, "not_found").await;
    }
    assert_eq!(get(&app, &other, "/broadcasts").await["data"], json!([]));
    // Another organization's segment cannot be named either.
    expect_error(
        app.authed(Method::POST, "/broadcasts", &other)
            .json(&json!({"segment_id": seg, "from": "a@example.com", "subject": "S"}))
            .send()
            .await
            .unwrap(),
        422,
        "validation_error",
    )
    .await;
}
