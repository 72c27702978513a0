//! `/templates` end to end: the draft and its published versions, lookup by alias, duplication, what a
//! template may hold, tenant isolation, and sending with a template (single and batch), with the
//! variables' rules and escaping.

mod common;

use common::{TestApp, call, expect_error};
use opensend_store::repos::templates::TemplateKey;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

async fn create(app: &TestApp, token: &str, body: Value) -> String {
    let (status, created) = call(app, token, Method::POST, "/templates", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["object"], "template");
    created["id"].as_str().unwrap().to_owned()
}

async fn publish(app: &TestApp, token: &str, id: &str) {
    let (status, body) = call(
        app,
        token,
        Method::POST,
        &format!("/templates/{id}/publish"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "template");
}

fn order_template() -> Value {
    json!({
        "name": "Order confirmation",
        "alias": "order-confirmation",
        "from": "Acme <orders@acme.test>",
        "subject": "Your {{{PRODUCT}}}",
        "reply_to": ["support@acme.test"],
        "html": "<p>{{{PRODUCT}}} costs {{{PRICE}}} {{{CURRENCY|EUR}}}</p>",
        "text": "{{{PRODUCT}}} costs {{{PRICE}}}",
        "variables": [
            {"key": "PRODUCT", "type": "string"},
            {"key": "PRICE", "type": "number", "fallback_value": 25},
            {"key": "CURRENCY", "type": "string", "fallback_value": "EUR"},
        ],
    })
}

/// Sends through `POST /emails` and returns the status and answer.
async fn send(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    app.send(token, &body).await
}

async fn email(app: &TestApp, token: &str, id: &str) -> Value {
    let (status, email) = call(app, token, Method::GET, &format!("/emails/{id}"), None).await;
    assert_eq!(status, 200, "{email}");
    email
}

#[tokio::test]
async fn templates_are_created_read_by_id_or_alias_listed_updated_and_deleted() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let id = create(&app, &token, order_template()).await;

    let (status, got) = call(&app, &token, Method::GET, &format!("/templates/{id}"), None).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["object"], "template");
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["name"], "Order confirmation");
    assert_eq!(got["alias"], "order-confirmation");
    assert_eq!(got["from"], "Acme <orders@acme.test>");
    assert_eq!(got["subject"], "Your {{{PRODUCT}}}");
    assert_eq!(got["reply_to"], json!(["support@acme.test"]));
    assert_eq!(got["status"], "draft");
    assert_eq!(got["published_at"], Value::Null);
    assert_eq!(got["has_unpublished_versions"], false);
    assert_eq!(
        got["variables"],
        json!([
            {"key": "PRODUCT", "type": "string"},
            {"key": "PRICE", "type": "number", "fallback_value": 25},
            {"key": "CURRENCY", "type": "string", "fallback_value": "EUR"},
        ])
    );
    assert!(got["current_version_id"].as_str().is_some());
    let (status, by_alias) = call(
        &app,
        &token,
        Method::GET,
        "/templates/order-confirmation",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(by_alias, got);

    // The Node SDK's spelling of the fallback is accepted too.
    let second = create(
        &app,
        &token,
        json!({"name": "Second", "html": "<p>{{{N}}}</p>",
               "variables": [{"key": "N", "type": "string", "fallbackValue": "you"}]}),
    )
    .await;
    let (_, list) = call(&app, &token, Method::GET, "/templates", None).await;
    assert_eq!(list["object"], "list");
    assert_eq!(list["has_more"], false);
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["id"], second.as_str(), "newest first");
    assert_eq!(data[1]["alias"], "order-confirmation");
    assert_eq!(data[1]["status"], "draft");
    assert!(data[1].get("html").is_none());
    let (_, page) = call(&app, &token, Method::GET, "/templates?limit=1", None).await;
    assert_eq!(page["has_more"], true);
    assert_eq!(page["data"].as_array().unwrap().len(), 1);

    let (status, updated) = call(
        &app,
        &token,
        Method::PATCH,
        "/templates/order-confirmation",
        Some(json!({"name": "Orders", "alias": "orders", "reply_to": null, "text": null})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated, json!({"id": id, "object": "template"}));
    let (_, got) = call(&app, &token, Method::GET, "/templates/orders", None).await;
    assert_eq!(got["name"], "Orders");
    assert_eq!(got["reply_to"], Value::Null);
    assert!(got.get("text").is_none());
    let (status, _) = call(
        &app,
        &token,
        Method::GET,
        "/templates/order-confirmation",
        None,
    )
    .await;
    assert_eq!(status, 404, "the old alias is free");

    let (status, removed) = call(&app, &token, Method::DELETE, "/templates/orders", None).await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(
        removed,
        json!({"object": "template", "id": id, "deleted": true})
    );
    let (status, _) = call(&app, &token, Method::GET, &format!("/templates/{id}"), None).await;
    assert_eq!(status, 404);
    expect_error(
        app.authed(Method::DELETE, &format!("/templates/{id}"), &token)
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn publishing_keeps_versions_and_sends_use_the_published_one() {
    let app = TestApp::spawn().await;
    let (org, token) = app.tenant().await;
    let id = create(&app, &token, order_template()).await;
    let send_body = json!({
        "to": "jane@example.com",
        "template": {"id": "order-confirmation", "variables": {"PRODUCT": "Lamp"}},
    });

    // A draft cannot be sent.
    let refused = expect_error(
        app.authed(Method::POST, "/emails", &token)
            .json(&send_body)
            .send()
            .await
            .unwrap(),
        422,
        "validation_error",
    )
    .await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("has not been published"),
        "{refused}"
    );

    publish(&app, &token, &id).await;
    let (_, got) = call(&app, &token, Method::GET, &format!("/templates/{id}"), None).await;
    assert_eq!(got["status"], "published");
    assert!(got["published_at"].as_str().is_some());
    assert_eq!(got["has_unpublished_versions"], false);
    let first_version = got["current_version_id"].clone();

    let (status, sent) = send(&app, &token, send_body.clone()).await;
    assert_eq!(status, 200, "{sent}");
    let first = email(&app, &token, sent["id"].as_str().unwrap()).await;
    assert_eq!(first["subject"], "Your Lamp");
    assert_eq!(first["from"], "Acme <orders@acme.test>");
    assert_eq!(first["reply_to"], json!(["support@acme.test"]));
    assert_eq!(first["html"], "<p>Lamp costs 25 EUR</p>");
    assert_eq!(first["text"], "Lamp costs 25");

    // An edit changes the draft only: sends keep the published version until the next publish.
    let (status, _) = call(
        &app,
        &token,
        Method::PATCH,
        &format!("/templates/{id}"),
        Some(json!({"html": "<h1>{{{PRODUCT}}}</h1>"})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, got) = call(&app, &token, Method::GET, &format!("/templates/{id}"), None).await;
    assert_eq!(got["has_unpublished_versions"], true);
    assert_eq!(got["status"], "published");
    assert_ne!(got["current_version_id"], first_version);
    assert_eq!(got["html"], "<h1>{{{PRODUCT}}}</h1>");
    let (_, sent) = send(&app, &token, send_body.clone()).await;
    let still = email(&app, &token, sent["id"].as_str().unwrap()).await;
    assert_eq!(still["html"], "<p>Lamp costs 25 EUR</p>");

    publish(&app, &token, &id).await;
    let (_, got) = call(&app, &token, Method::GET, &format!("/templates/{id}"), None).await;
    assert_eq!(got["has_unpublished_versions"], false);
    let (_, sent) = send(&app, &token, send_body.clone()).await;
    let now = email(&app, &token, sent["id"].as_str().unwrap()).await;
    assert_eq!(now["html"], "<h1>Lamp</h1>");

    // Publishing an unchanged draft adds no version; both published versions are kept, in order.
    publish(&app, &token, &id).await;
    let id = Uuid::parse_str(&id).unwrap();
    let versions = app.store.templates().versions(org, id).await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(
        versions[0].content.html,
        "<p>{{{PRODUCT}}} costs {{{PRICE}}} {{{CURRENCY|EUR}}}</p>"
    );
    assert_eq!(versions[1].content.html, "<h1>{{{PRODUCT}}}</h1>");
    assert_eq!(versions[0].id.to_string(), first_version.as_str().unwrap());
}

#[tokio::test]
async fn a_duplicate_is_a_new_draft_with_the_same_content() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let id = create(&app, &token, order_template()).await;
    publish(&app, &token, &id).await;
    let (status, copy) = call(
        &app,
        &token,
        Method::POST,
        "/templates/order-confirmation/duplicate",
        None,
    )
    .await;
    assert_eq!(status, 200, "{copy}");
    assert_eq!(copy["object"], "template");
    let copy_id = copy["id"].as_str().unwrap();
    assert_ne!(copy_id, id);
    let (_, original) = call(&app, &token, Method::GET, &format!("/templates/{id}"), None).await;
    let (_, got) = call(
        &app,
        &token,
        Method::GET,
        &format!("/templates/{copy_id}"),
        None,
    )
    .await;
    assert_eq!(got["name"], "Order confirmation (Copy)");
    assert!(got.get("alias").is_none(), "aliases are unique: {got}");
    assert_eq!(got["status"], "draft");
    for field in ["html", "text", "subject", "from", "reply_to", "variables"] {
        assert_eq!(got[field], original[field], "{field}");
    }
}

#[tokio::test]
async fn what_a_template_may_hold_is_checked() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let html = |vars: Value| json!({"name": "T", "html": "<p>{{{A}}}</p>", "variables": vars});
    let many: Vec<Value> = (0..51)
        .map(|i| json!({"key": format!("V{i}"), "type": "string"}))
        .collect();
    let cases = [
        (
            json!({"html": "<p>x</p>"}),
            "missing_required_field",
            "name",
        ),
        (json!({"name": "T"}), "missing_required_field", "html"),
        (
            json!({"name": "T", "html": "<p>{{{A}}}</p>"}),
            "validation_error",
            "`A` is used in `html`",
        ),
        (
            json!({"name": "T", "html": "<p>x</p>", "subject": "{{{S}}}"}),
            "validation_error",
            "`S` is used in `subject`",
        ),
        (
            json!({"name": "T", "html": "<p>x</p>", "text": "{{{S}}}"}),
            "validation_error",
            "`S` is used in `text`",
        ),
        (
            html(json!([{"key": "A", "type": "number", "fallback_value": "x"}])),
            "validation_error",
            "must be a number",
        ),
        (
            html(json!([{"key": "A", "type": "string", "fallback_value": 3}])),
            "validation_error",
            "must be a string",
        ),
        (
            html(json!([{"key": "A", "type": "boolean"}])),
            "validation_error",
            "`string` or `number`",
        ),
        (
            html(json!([{"key": "A"}])),
            "validation_error",
            "needs a `type`",
        ),
        (
            html(json!([{"key": "A", "type": "string"}, {"key": "A", "type": "string"}])),
            "validation_error",
            "more than once",
        ),
        (
            html(json!([{"key": "A", "type": "string"}, {"key": "EMAIL", "type": "string"}])),
            "validation_error",
            "reserved",
        ),
        (
            html(
                json!([{"key": "A", "type": "string"}, {"key": "contact.name", "type": "string"}]),
            ),
            "validation_error",
            "reserved",
        ),
        (
            html(json!([{"key": "A", "type": "string"}, {"key": "bad key", "type": "string"}])),
            "validation_error",
            "must be 1 to",
        ),
        (html(Value::Array(many)), "validation_error", "at most 50"),
        (
            json!({"name": "T", "html": "<p>x</p>", "alias": Uuid::now_v7().to_string()}),
            "validation_error",
            "cannot be a UUID",
        ),
        (
            json!({"name": "T", "html": "<p>x</p>", "alias": "a b"}),
            "validation_error",
            "`alias`",
        ),
        (
            json!({"name": "T", "html": "<p>x</p>", "from": "not an address"}),
            "validation_error",
            "`from`",
        ),
        (
            json!({"name": "T", "html": "<p>x</p>", "subject": "a\nb"}),
            "validation_error",
            "line breaks",
        ),
        (
            json!({"name": "T", "html": "x".repeat(512 * 1024 + 1)}),
            "validation_error",
            "`html` is longer",
        ),
    ];
    for (body, name, needle) in cases {
        let error = expect_error(
            app.authed(Method::POST, "/templates", &token)
                .json(&body)
                .send()
                .await
                .unwrap(),
            422,
            name,
        )
        .await;
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(needle), "{needle}: {message}");
    }
    // Reserved names may be used without being declared.
    create(
        &app,
        &token,
        json!({"name": "R", "html": "<p>{{{FIRST_NAME|there}}} {{{contact.last_name|}}} {{{RESEND_UNSUBSCRIBE_URL|#}}}</p>"}),
    )
    .await;

    // The alias is unique per organization, on create and on update.
    create(
        &app,
        &token,
        json!({"name": "A", "html": "<p>x</p>", "alias": "taken"}),
    )
    .await;
    let other = create(&app, &token, json!({"name": "B", "html": "<p>x</p>"})).await;
    for request in [
        app.authed(Method::POST, "/templates", &token)
            .json(&json!({"name": "C", "html": "<p>x</p>", "alias": "taken"})),
        app.authed(Method::PATCH, &format!("/templates/{other}"), &token)
            .json(&json!({"alias": "taken"})),
    ] {
        let error = expect_error(request.send().await.unwrap(), 422, "validation_error").await;
        assert!(error["message"].as_str().unwrap().contains("already used"));
    }
    // An update is checked against the whole draft: removing a declared variable still used is refused.
    let used = create(&app, &token, html(json!([{"key": "A", "type": "string"}]))).await;
    expect_error(
        app.authed(Method::PATCH, &format!("/templates/{used}"), &token)
            .json(&json!({"variables": []}))
            .send()
            .await
            .unwrap(),
        422,
        "validation_error",
    )
    .await;
}

#[tokio::test]
async fn templates_are_invisible_to_other_organizations() {
    let app = TestApp::spawn().await;
    let (org_a, token_a) = app.tenant().await;
    let (_, token_b) = app.tenant().await;
    let id = create(&app, &token_a, order_template()).await;
    publish(&app, &token_a, &id).await;
    for path in [
        format!("/templates/{id}"),
        "/templates/order-confirmation".to_owned(),
    ] {
        for (method, suffix) in [
            (Method::GET, ""),
            (Method::PATCH, ""),
            (Method::DELETE, ""),
            (Method::POST, "/publish"),
            (Method::POST, "/duplicate"),
        ] {
            let mut request = app.authed(method.clone(), &format!("{path}{suffix}"), &token_b);
            if method == Method::PATCH {
                request = request.json(&json!({"name": "mine"}));
            }
            expect_error(request.send().await.unwrap(), 404, "not_found").await;
        }
    }
    let (_, list) = call(&app, &token_b, Method::GET, "/templates", None).await;
    assert_eq!(list["data"], json!([]));
    // B may use the same alias; and cannot send A's template.
    create(
        &app,
        &token_b,
        json!({"name": "B's", "html": "<p>b</p>", "alias": "order-confirmation"}),
    )
    .await;
    let error = expect_error(
        app.authed(Method::POST, "/emails", &token_b)
            .json(
                &json!({"to": "x@example.com", "from": "b@acme.test", "subject": "s",
                          "template": {"id": id, "variables": {"PRODUCT": "x"}}}),
            )
            .send()
            .await
            .unwrap(),
        422,
        "validation_error",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("no template"));
    // A's template is intact.
    let got = app
        .store
        .templates()
        .get(org_a, &TemplateKey::Alias("order-confirmation".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.name, "Order confirmation");
}

#[tokio::test]
async fn sending_with_a_template_checks_variables_and_escapes_html_only() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let id = create(&app, &token, order_template()).await;
    publish(&app, &token, &id).await;
    let with = |variables: Value| json!({"to": "jane@example.com", "template": {"id": id, "variables": variables}});

    // Escaping: a value is HTML-escaped in html, literal in text and subject.
    let (status, sent) = send(
        &app,
        &token,
        with(json!({"PRODUCT": "<b>&\"", "PRICE": 4.5})),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    let got = email(&app, &token, sent["id"].as_str().unwrap()).await;
    assert_eq!(got["html"], "<p>&lt;b&gt;&amp;&quot; costs 4.5 EUR</p>");
    assert_eq!(got["text"], "<b>&\" costs 4.5");
    assert_eq!(got["subject"], "Your <b>&\"");

    // The request's own from, subject and reply_to win over the template's.
    let mut own = with(json!({"PRODUCT": "Desk"}));
    own["from"] = json!("Shop <shop@acme.test>");
    own["subject"] = json!("Own subject");
    own["reply_to"] = json!("help@acme.test");
    let (status, sent) = send(&app, &token, own).await;
    assert_eq!(status, 200, "{sent}");
    let got = email(&app, &token, sent["id"].as_str().unwrap()).await;
    assert_eq!(got["from"], "Shop <shop@acme.test>");
    assert_eq!(got["subject"], "Own subject");
    assert_eq!(got["reply_to"], json!(["help@acme.test"]));
    assert_eq!(got["html"], "<p>Desk costs 25 EUR</p>");

    let refusals = [
        (with(json!({})), "validation_error", "`PRODUCT`"),
        (with(json!({"PRICE": 3})), "validation_error", "`PRODUCT`"),
        (
            with(json!({"PRODUCT": 3})),
            "validation_error",
            "`PRODUCT` must be a string",
        ),
        (
            with(json!({"PRODUCT": "x", "PRICE": "3"})),
            "validation_error",
            "`PRICE` must be a number",
        ),
        (
            with(json!({"PRODUCT": true})),
            "validation_error",
            "must be a string or a number",
        ),
        (
            json!({"to": "jane@example.com", "html": "<p>x</p>", "template": {"id": id}}),
            "validation_error",
            "cannot be given with `template`",
        ),
        (
            json!({"to": "jane@example.com", "text": "x", "template": {"id": id}}),
            "validation_error",
            "cannot be given with `template`",
        ),
        (
            json!({"to": "jane@example.com", "template": {"variables": {}}}),
            "missing_required_field",
            "template.id",
        ),
        (
            json!({"to": "jane@example.com", "template": {"id": "nope"}}),
            "validation_error",
            "no template",
        ),
    ];
    for (body, name, needle) in refusals {
        let error = expect_error(
            app.authed(Method::POST, "/emails", &token)
                .json(&body)
                .send()
                .await
                .unwrap(),
            422,
            name,
        )
        .await;
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(needle), "{needle}: {message}");
    }

    // A template without `from` needs the request's.
    let bare = create(
        &app,
        &token,
        json!({"name": "Bare", "subject": "Hi", "html": "<p>hi</p>"}),
    )
    .await;
    publish(&app, &token, &bare).await;
    expect_error(
        app.authed(Method::POST, "/emails", &token)
            .json(&json!({"to": "jane@example.com", "template": {"id": bare}}))
            .send()
            .await
            .unwrap(),
        422,
        "missing_required_field",
    )
    .await;
}

#[tokio::test]
async fn a_batch_sends_templates_and_reports_each_refusal() {
    let app = TestApp::spawn().await;
    let (_, token) = app.tenant().await;
    let id = create(&app, &token, order_template()).await;
    publish(&app, &token, &id).await;
    let item = |product: &str| {
        json!({"to": "jane@example.com",
               "template": {"id": "order-confirmation", "variables": {"PRODUCT": product}}})
    };
    let (status, sent) = call(
        &app,
        &token,
        Method::POST,
        "/emails/batch",
        Some(json!([item("A"), item("B"), {"to": "x@example.com", "from": "a@acme.test", "subject": "s", "html": "<p>plain</p>"}])),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    let ids: Vec<&str> = sent["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(
        email(&app, &token, ids[0]).await["html"],
        "<p>A costs 25 EUR</p>"
    );
    assert_eq!(email(&app, &token, ids[1]).await["subject"], "Your B");
    assert_eq!(email(&app, &token, ids[2]).await["html"], "<p>plain</p>");

    // Strict: one missing variable refuses the batch, naming the email and the variable.
    let missing = json!({"to": "jane@example.com", "template": {"id": id}});
    let error = expect_error(
        app.authed(Method::POST, "/emails/batch", &token)
            .json(&json!([item("A"), missing]))
            .send()
            .await
            .unwrap(),
        422,
        "validation_error",
    )
    .await;
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("emails[1]: ") && message.contains("`PRODUCT`"),
        "{message}"
    );

    // Permissive: the others are sent.
    let (status, partly) = common::json(
        app.authed(Method::POST, "/emails/batch", &token)
            .header("x-batch-validation", "permissive")
            .json(&json!([item("A"), missing, {"to": "j@example.com", "template": {"id": "nope"}}]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{partly}");
    assert_eq!(partly["data"].as_array().unwrap().len(), 1);
    let errors = partly["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["index"], 1);
    assert_eq!(errors[1]["index"], 2);
}
