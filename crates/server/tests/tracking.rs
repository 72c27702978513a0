//! Open and click tracking end to end: a domain with tracking on, an email sent from it, the captured
//! message's links and pixel followed by a real HTTP client; statuses, `email.opened`/`email.clicked`
//! webhooks, the signed-link refusals (no open redirect), and what is not counted (HEAD, prefetchers,
//! scanners, repeats).

mod common;

use std::time::Duration;

use common::{TestApp, call};
use opensend_test_support::dns::TestDns;
use opensend_test_support::webhook_receiver::WebhookReceiver;
use reqwest::Method;
use reqwest::redirect::Policy;
use serde_json::{Value, json};

/// The test's app and the DNS server its domains are verified against (kept alive with the app).
struct Tracked {
    app: TestApp,
    dns: TestDns,
}

async fn app() -> Tracked {
    let dns = TestDns::start().await;
    let resolver = dns.addr().to_string();
    let app = TestApp::spawn_with(&[
        ("DNS_RESOLVER", resolver.as_str()),
        ("DNS_TIMEOUT_SECONDS", "1"),
        ("ALLOW_PRIVATE_WEBHOOK_URLS", "true"),
        ("WEBHOOK_RETRY_DELAYS_SECONDS", "0,0,0"),
    ])
    .await;
    Tracked { app, dns }
}

/// A verified domain of the tenant with `tracking` (`open_tracking`, `click_tracking`…) set: its records
/// published on the test's DNS server, then checked. Tracking applies to mail from verified domains.
async fn domain(t: &Tracked, token: &str, name: &str, tracking: Value) -> String {
    let mut body = json!({"name": name});
    body.as_object_mut()
        .unwrap()
        .extend(tracking.as_object().unwrap().clone());
    let (status, created) = call(&t.app, token, Method::POST, "/domains", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    for r in created["records"].as_array().unwrap() {
        let (name, value) = (r["name"].as_str().unwrap(), r["value"].as_str().unwrap());
        match r["type"].as_str().unwrap() {
            "TXT" => t.dns.set_txt(name, &[value]),
            "MX" => t.dns.set_mx(name, 10, value),
            "CNAME" => t.dns.set_cname(name, value),
            other => panic!("unexpected record type {other}"),
        }
    }
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, verified) = call(
        &t.app,
        token,
        Method::POST,
        &format!("/domains/{id}/verify"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["status"], "verified", "{verified}");
    id
}

/// Sends an HTML email from `from` and returns its id and the HTML body of the message as captured.
async fn send_and_capture(app: &TestApp, token: &str, from: &str, html: &str) -> (String, String) {
    let (status, sent) = app
        .send(
            token,
            &json!({"from": from, "to": "reader@example.com", "subject": "Hi", "html": html}),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    let id = sent["id"].as_str().unwrap().to_owned();
    let email = app.wait_for_status(token, &id, "sent").await;
    let raw = email["raw"].as_str().expect("captured message");
    let message = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .expect("a message");
    let html = message.body_html(0).expect("an HTML part").into_owned();
    (id, html)
}

/// Every `{prefix}…` URL in `html`, up to its closing quote.
fn urls(html: &str, prefix: &str) -> Vec<String> {
    html.match_indices(prefix)
        .map(|(at, _)| {
            let rest = &html[at..];
            rest[..rest.find('"').unwrap()].replace("&amp;", "&")
        })
        .collect()
}

/// Where tracked links point (`APP_URL`).
fn base(app: &TestApp) -> String {
    app.state
        .config
        .app_url
        .as_str()
        .trim_end_matches('/')
        .to_owned()
}

/// A tracked URL as this test reaches it: the same path on the test server's own address.
fn local(app: &TestApp, url: &str) -> String {
    let path = url::Url::parse(url).unwrap();
    let path = &url[url.find(path.path()).unwrap()..];
    format!("{}{path}", app.api)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn clicks_and_opens_are_tracked_and_announced() {
    let t = app().await;
    let app = &t.app;
    let (_, token) = app.tenant().await;
    let receiver = WebhookReceiver::start(vec![]).await;
    let (status, _) = call(
        app,
        &token,
        Method::POST,
        "/webhooks",
        Some(json!({"endpoint": receiver.url(), "events": ["email.opened", "email.clicked"]})),
    )
    .await;
    assert_eq!(status, 201);
    domain(
        &t,
        &token,
        "acme.test",
        json!({"open_tracking": true, "click_tracking": true}),
    )
    .await;

    let (id, html) = send_and_capture(
        app,
        &token,
        "news@acme.test",
        r#"<html><body><p><a href="https://example.com/offer?a=1&amp;b=2">Offer</a>
<a href="mailto:help@acme.test">Help</a></p></body></html>"#,
    )
    .await;
    let base = base(app);
    let links = urls(&html, &format!("{base}/t/c/"));
    assert_eq!(links.len(), 1, "one web link is tracked: {html}");
    assert!(!html.contains("https://example.com/offer"), "{html}");
    assert!(html.contains(r#"href="mailto:help@acme.test""#), "{html}");
    let pixels = urls(&html, &format!("{base}/t/o/"));
    assert_eq!(pixels.len(), 1, "{html}");

    // The pixel: a GIF, never cached; the email is opened.
    let pixel = client().get(local(app, &pixels[0])).send().await.unwrap();
    assert_eq!(pixel.status(), 200);
    assert_eq!(pixel.headers()["content-type"], "image/gif");
    assert!(
        pixel.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("no-store")
    );
    assert!(pixel.bytes().await.unwrap().starts_with(b"GIF89a"));
    app.wait_for_status(&token, &id, "opened").await;

    // The link: a redirect to where the email said; the email is clicked.
    let click = client()
        .get(local(app, &links[0]))
        .header("user-agent", "Mozilla/5.0 (a reader)")
        .send()
        .await
        .unwrap();
    assert_eq!(click.status(), 302);
    assert_eq!(
        click.headers()["location"],
        "https://example.com/offer?a=1&b=2"
    );
    app.wait_for_status(&token, &id, "clicked").await;

    // Both announced, with the reader's details.
    let mut events = Vec::new();
    for _ in 0..200 {
        events = receiver
            .received()
            .iter()
            .map(|d| d.json())
            .collect::<Vec<_>>();
        if events.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["email.opened", "email.clicked"], "{events:#?}");
    assert_eq!(events[0]["data"]["email_id"], id.as_str());
    let clicked = &events[1]["data"]["click"];
    assert_eq!(clicked["link"], "https://example.com/offer?a=1&b=2");
    assert_eq!(clicked["userAgent"], "Mozilla/5.0 (a reader)");
    assert_eq!(clicked["ipAddress"], "127.0.0.1");

    // A second click at once is a repeat: redirected, not recorded again.
    let again = client().get(local(app, &links[0])).send().await.unwrap();
    assert_eq!(again.status(), 302);
    let clicks = app
        .store
        .engagements()
        .clicked_links(app_org(app, &token, &id).await, &[id.parse().unwrap()])
        .await
        .unwrap();
    assert_eq!(clicks.len(), 1);
    assert_eq!(clicks[0].url, "https://example.com/offer?a=1&b=2");
    assert_eq!(clicks[0].clicks, 1);
}

/// The organization of email `id` (as the API shows it to `token`'s organization).
async fn app_org(app: &TestApp, token: &str, id: &str) -> uuid::Uuid {
    let (_, email) = call(app, token, Method::GET, &format!("/emails/{id}"), None).await;
    assert_eq!(email["id"], id);
    let record = app
        .store
        .emails()
        .get_for_delivery(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    record.summary.organization_id
}

#[tokio::test]
async fn unsigned_altered_and_foreign_links_are_refused() {
    let t = app().await;
    let app = &t.app;
    let (_, token) = app.tenant().await;
    domain(
        &t,
        &token,
        "acme.test",
        json!({"open_tracking": true, "click_tracking": true}),
    )
    .await;
    let (id, html) = send_and_capture(
        app,
        &token,
        "news@acme.test",
        r#"<a href="https://example.com/">x</a>"#,
    )
    .await;
    let base = base(app);
    let link = urls(&html, &format!("{base}/t/c/")).remove(0);
    let pixel = urls(&html, &format!("{base}/t/o/")).remove(0);
    let token_of = |url: &str| url.rsplit('/').next().unwrap().to_owned();
    let (payload, tag) = token_of(&link)
        .split_once('.')
        .map(|(p, t)| (p.to_owned(), t.to_owned()))
        .unwrap();
    use base64::Engine;
    let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"https://evil.example/");
    for forged in [
        // Another destination under the real signature.
        format!("{base}/t/c/{evil}.{tag}"),
        // The signature cut or missing.
        format!("{base}/t/c/{payload}.{}", &tag[2..]),
        format!("{base}/t/c/{payload}"),
        // An open token is not a click token, and the other way round.
        format!("{base}/t/c/{}", token_of(&pixel)),
        format!("{base}/t/o/{}", token_of(&link)),
        // A URL handed in the request is never followed.
        format!("{base}/t/c/https%3A%2F%2Fevil.example%2F"),
        format!("{base}/t/c/x?url=https://evil.example/"),
    ] {
        let response = client().get(local(app, &forged)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{forged}");
        assert!(response.headers().get("location").is_none(), "{forged}");
    }
    // Nothing was counted.
    let (_, email) = call(app, &token, Method::GET, &format!("/emails/{id}"), None).await;
    assert_eq!(email["last_event"], "sent");
}

#[tokio::test]
async fn head_requests_prefetches_and_scanners_are_not_counted() {
    let t = app().await;
    let app = &t.app;
    let (_, token) = app.tenant().await;
    domain(
        &t,
        &token,
        "acme.test",
        json!({"open_tracking": true, "click_tracking": true}),
    )
    .await;
    let (id, html) = send_and_capture(
        app,
        &token,
        "news@acme.test",
        r#"<a href="https://example.com/">x</a>"#,
    )
    .await;
    let base = base(app);
    let link = urls(&html, &format!("{base}/t/c/")).remove(0);
    let pixel = urls(&html, &format!("{base}/t/o/")).remove(0);

    let head = client().head(local(app, &link)).send().await.unwrap();
    assert_eq!(head.status(), 302, "HEAD is answered like GET");
    for (name, value) in [
        ("purpose", "prefetch"),
        ("sec-purpose", "prefetch;prerender"),
        ("x-moz", "prefetch"),
        ("user-agent", "Slackbot-LinkExpanding 1.0"),
        (
            "user-agent",
            "Mozilla/5.0 (compatible; Microsoft Office/16.0)",
        ),
        ("user-agent", "Mozilla/5.0 (compatible; BingPreview/1.0b)"),
    ] {
        for url in [&link, &pixel] {
            let response = client()
                .get(local(app, url))
                .header(name, value)
                .send()
                .await
                .unwrap();
            assert!(
                response.status().is_success() || response.status() == 302,
                "{name}: {value}"
            );
        }
    }
    let head = client().head(local(app, &pixel)).send().await.unwrap();
    assert_eq!(head.status(), 200);
    let (_, email) = call(app, &token, Method::GET, &format!("/emails/{id}"), None).await;
    assert_eq!(email["last_event"], "sent", "nothing counted");
}

#[tokio::test]
async fn a_domain_without_tracking_sends_its_links_unchanged() {
    let t = app().await;
    let app = &t.app;
    let (_, token) = app.tenant().await;
    domain(&t, &token, "plain.test", json!({})).await;
    let original = r#"<a href="https://example.com/">x</a>"#;
    let (_, html) = send_and_capture(app, &token, "news@plain.test", original).await;
    assert!(html.contains(original), "{html}");
    assert!(!html.contains("/t/o/"), "{html}");
    // Turned on later: the next email is tracked.
    let (_, domains) = call(app, &token, Method::GET, "/domains", None).await;
    let domain_id = domains["data"][0]["id"].as_str().unwrap().to_owned();
    let (status, updated) = call(
        app,
        &token,
        Method::PATCH,
        &format!("/domains/{domain_id}"),
        Some(json!({"click_tracking": true})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    let (_, html) = send_and_capture(app, &token, "news@plain.test", original).await;
    assert!(html.contains("/t/c/"), "{html}");
    assert!(!html.contains("/t/o/"), "opens stay off: {html}");
}

#[tokio::test]
async fn a_tracking_subdomain_hosts_the_links() {
    let t = app().await;
    let app = &t.app;
    let (_, token) = app.tenant().await;
    domain(
        &t,
        &token,
        "acme.test",
        json!({"click_tracking": true, "tracking_subdomain": "links"}),
    )
    .await;
    let (_, html) = send_and_capture(
        app,
        &token,
        "news@acme.test",
        r#"<a href="https://example.com/">x</a>"#,
    )
    .await;
    let app_url = &app.state.config.app_url;
    let host = match app_url.port() {
        Some(port) => format!("links.acme.test:{port}"),
        None => "links.acme.test".to_owned(),
    };
    let prefix = format!("{}://{host}/t/c/", app_url.scheme());
    let link = urls(&html, &prefix).remove(0);
    // The CNAME points at this deployment: the same path, asked for under that host, redirects.
    let response = client()
        .get(local(app, &link))
        .header("host", host)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], "https://example.com/");
}
