//! One-click unsubscribe (RFC 8058) and the hosted preference page: the link from a real broadcast email
//! posted by a plain HTTP client (no cookies, no login), topic broadcasts, the page and its form, refused
//! tokens, and the `contact.updated` webhooks every change emits.

mod common;

use std::time::Duration;

use common::{TestApp, call};
use opensend_server::unsubscribe::{LinkClaims, UnsubscribeLinks};
use opensend_test_support::webhook_receiver::{Delivered, WebhookReceiver};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> String {
    let (status, created) = call(app, token, Method::POST, path, Some(body)).await;
    assert_eq!(status, 201, "{path}: {created}");
    created["id"].as_str().unwrap().to_owned()
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let (status, body) = call(app, token, Method::GET, path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// A client that keeps no cookies and sends no credentials, as a mail provider's one-click request.
fn stranger() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The path of the `List-Unsubscribe` URL of the broadcast email sent to `contact`.
async fn link_from_email(app: &TestApp, token: &str, broadcast: &str, contact: &str) -> String {
    let mut email_id = None;
    for _ in 0..400 {
        let list = get(app, token, &format!("/broadcasts/{broadcast}/recipients")).await;
        if let Some(row) = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["contact_id"] == contact)
        {
            email_id = row["email_id"].as_str().map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let email_id = email_id.expect("the contact got an email");
    let email = app.wait_for_status(token, &email_id, "sent").await;
    let raw = email["raw"].as_str().expect("capture keeps the message");
    let unfolded = raw.replace("\r\n ", " ");
    let header = unfolded
        .lines()
        .find(|l| l.starts_with("List-Unsubscribe:"))
        .unwrap_or_else(|| panic!("no List-Unsubscribe: {raw}"));
    let start = header.find("/unsubscribe/").unwrap();
    let end = header[start..].find('>').unwrap() + start;
    header[start..end].to_owned()
}

fn signer(app: &TestApp) -> UnsubscribeLinks {
    UnsubscribeLinks::from_state(&app.state).expect("AUTH_SECRET is set")
}

fn token_for(app: &TestApp, org: Uuid, contact: &str, topic: Option<&str>) -> String {
    signer(app).sign(&LinkClaims {
        organization_id: org,
        contact_id: Uuid::parse_str(contact).unwrap(),
        broadcast_id: Uuid::now_v7(),
        topic_id: topic.map(|t| Uuid::parse_str(t).unwrap()),
    })
}

async fn subscription(app: &TestApp, token: &str, contact: &str, topic: &str) -> String {
    let topics = get(app, token, &format!("/contacts/{contact}/topics")).await;
    topics["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == topic)
        .map(|t| t["subscription"].as_str().unwrap().to_owned())
        .unwrap()
}

#[tokio::test]
async fn one_click_from_a_real_email_unsubscribes_without_login_and_announces_it() {
    let app = TestApp::spawn_with(&[
        ("BROADCAST_RATE_PER_SECOND", "1000"),
        ("ALLOW_PRIVATE_WEBHOOK_URLS", "true"),
        ("WEBHOOK_RETRY_DELAYS_SECONDS", "0,0,0"),
    ])
    .await;
    let (_, token) = app.tenant().await;
    let receiver = WebhookReceiver::start(vec![]).await;
    post(
        &app,
        &token,
        "/webhooks",
        json!({"endpoint": receiver.url(), "events": ["contact.updated"]}),
    )
    .await;
    let seg = post(&app, &token, "/segments", json!({"name": "All"})).await;
    let ann = post(
        &app,
        &token,
        "/contacts",
        json!({"email": "ann@example.com", "segments": [seg]}),
    )
    .await;
    let broadcast = post(
        &app,
        &token,
        "/broadcasts",
        json!({"segment_id": seg, "from": "news@example.com", "subject": "News", "text": "Hello", "send": true}),
    )
    .await;
    let path = link_from_email(&app, &token, &broadcast, &ann).await;

    let response = stranger()
        .post(format!("{}{path}", app.api))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers().get("set-cookie").is_none());
    let got = get(&app, &token, &format!("/contacts/{ann}")).await;
    assert_eq!(got["unsubscribed"], true, "{got}");

    let delivered = receiver.wait_for(1, Duration::from_secs(20)).await;
    let payloads: Vec<Value> = delivered.iter().map(Delivered::json).collect();
    assert_eq!(payloads[0]["type"], "contact.updated");
    assert_eq!(payloads[0]["data"]["id"], ann.as_str());
    assert_eq!(payloads[0]["data"]["unsubscribed"], true);

    // The next broadcast skips her.
    let next = post(
        &app,
        &token,
        "/broadcasts",
        json!({"segment_id": seg, "from": "news@example.com", "subject": "More", "text": "Hello", "send": true}),
    )
    .await;
    for _ in 0..400 {
        if get(&app, &token, &format!("/broadcasts/{next}")).await["status"] == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list = get(&app, &token, &format!("/broadcasts/{next}/recipients")).await;
    assert_eq!(list["data"][0]["skipped_reason"], "unsubscribed", "{list}");
}

#[tokio::test]
async fn a_topic_link_opts_out_of_that_topic_only() {
    let app = TestApp::spawn().await;
    let (org, token) = app.tenant().await;
    let topic = post(
        &app,
        &token,
        "/topics",
        json!({"name": "Product", "default_subscription": "opt_in", "visibility": "public"}),
    )
    .await;
    let bob = post(
        &app,
        &token,
        "/contacts",
        json!({"email": "bob@example.com"}),
    )
    .await;
    let link = token_for(&app, org, &bob, Some(&topic));
    let response = stranger()
        .post(format!("{}/unsubscribe/{link}", app.api))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(subscription(&app, &token, &bob, &topic).await, "opt_out");
    let got = get(&app, &token, &format!("/contacts/{bob}")).await;
    assert_eq!(got["unsubscribed"], false, "only the topic: {got}");
}

#[tokio::test]
async fn the_preference_page_shows_and_saves_choices_without_javascript() {
    let app = TestApp::spawn().await;
    let (org, token) = app.tenant().await;
    let public = post(
        &app,
        &token,
        "/topics",
        json!({"name": "Product <news>", "default_subscription": "opt_in", "visibility": "public", "description": "Monthly"}),
    )
    .await;
    let hidden = post(
        &app,
        &token,
        "/topics",
        json!({"name": "Internal", "default_subscription": "opt_out", "visibility": "private"}),
    )
    .await;
    let offers = post(
        &app,
        &token,
        "/topics",
        json!({"name": "Offers", "default_subscription": "opt_out", "visibility": "public"}),
    )
    .await;
    let cat = post(
        &app,
        &token,
        "/contacts",
        json!({"email": "cat@example.com"}),
    )
    .await;
    let link = token_for(&app, org, &cat, None);

    let response = stranger()
        .get(format!("{}/unsubscribe/{link}", app.api))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    let page = response.text().await.unwrap();
    assert!(page.contains("cat@example.com"), "{page}");
    assert!(
        page.contains(&format!("action=\"/unsubscribe/{link}/preferences\"")),
        "{page}"
    );
    assert!(page.contains("name=\"unsubscribe_all\""), "{page}");
    assert!(page.contains("Product &lt;news&gt;"), "escaped: {page}");
    assert!(
        page.contains(&format!("value=\"{public}\" checked")),
        "{page}"
    );
    assert!(
        page.contains(&format!("value=\"{offers}\">")),
        "unchecked: {page}"
    );
    assert!(
        !page.contains(&hidden),
        "a private topic it is not in stays hidden: {page}"
    );
    assert!(!page.contains("<script"), "{page}");

    // Save: out of Product, into Offers, not unsubscribed from everything.
    let response = stranger()
        .post(format!("{}/unsubscribe/{link}/preferences", app.api))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("topic={offers}&topic={hidden}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.text().await.unwrap().contains("saved"));
    assert_eq!(subscription(&app, &token, &cat, &public).await, "opt_out");
    assert_eq!(subscription(&app, &token, &cat, &offers).await, "opt_in");
    assert_eq!(
        subscription(&app, &token, &cat, &hidden).await,
        "opt_out",
        "a topic the page did not show is not changed by the form"
    );
    assert_eq!(
        get(&app, &token, &format!("/contacts/{cat}")).await["unsubscribed"],
        false
    );

    let response = stranger()
        .post(format!("{}/unsubscribe/{link}/preferences", app.api))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("unsubscribe_all=on")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        get(&app, &token, &format!("/contacts/{cat}")).await["unsubscribed"],
        true
    );
}

#[tokio::test]
async fn tampered_or_foreign_tokens_change_nothing() {
    let app = TestApp::spawn_with(&[
        ("ALLOW_PRIVATE_WEBHOOK_URLS", "true"),
        ("WEBHOOK_RETRY_DELAYS_SECONDS", "0,0,0"),
    ])
    .await;
    let (org, token) = app.tenant().await;
    let receiver = WebhookReceiver::start(vec![]).await;
    post(
        &app,
        &token,
        "/webhooks",
        json!({"endpoint": receiver.url(), "events": ["contact.updated"]}),
    )
    .await;
    let dan = post(
        &app,
        &token,
        "/contacts",
        json!({"email": "dan@example.com"}),
    )
    .await;
    let good = token_for(&app, org, &dan, None);

    // One character changed, a token signed with another secret, a token of another organization, garbage.
    let mut tampered = good.clone().into_bytes();
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let foreign = UnsubscribeLinks::new(&secrecy::SecretString::from(
        "some-other-deployment-secret-0123456789".to_owned(),
    ))
    .sign(&LinkClaims {
        organization_id: org,
        contact_id: Uuid::parse_str(&dan).unwrap(),
        broadcast_id: Uuid::now_v7(),
        topic_id: None,
    });
    let (other_org, _) = app.tenant().await;
    let wrong_org = token_for(&app, other_org, &dan, None);
    for bad in [tampered, foreign, wrong_org, "not-a-token".to_owned()] {
        for (method, path) in [
            (Method::POST, format!("/unsubscribe/{bad}")),
            (Method::GET, format!("/unsubscribe/{bad}")),
            (Method::POST, format!("/unsubscribe/{bad}/preferences")),
        ] {
            let response = stranger()
                .request(method, format!("{}{path}", app.api))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("unsubscribe_all=on")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 404, "{path}");
            assert!(response.text().await.unwrap().contains("not valid"));
        }
    }
    assert_eq!(
        get(&app, &token, &format!("/contacts/{dan}")).await["unsubscribed"],
        false
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.received().is_empty(), "nothing announced");

    // The good one still works.
    let response = stranger()
        .post(format!("{}/unsubscribe/{good}", app.api))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        get(&app, &token, &format!("/contacts/{dan}")).await["unsubscribed"],
        true
    );
}
