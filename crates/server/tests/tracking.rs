//! Open and click tracking end to end: a domain with tracking on, an email sent from it, the captured
//! message's links and pixel followed by a real HTTP client; statuses, `email.opened`/`email.clicked`
//! webhooks, the signed-link refusals (no open redirect), and what is not counted (HEAD, prefetchers,
//! scanners, repeats).

mod common;

use std::time::Duration;

use common::{TestApp, call};
use opensend_store::repos::engagement::ClickScope;
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
        .clicked_links(
            app_org(app, &token, &id).await,
            ClickScope::Emails(&[id.parse().unwrap()]),
        )
        .await
        .unwrap();
    assert_eq!(clicks.len(), 1);
    assert_eq!(clicks[0].url, "https://example.com/offer?a=1&b=2");
    assert_eq!(clicks[0].clicks, 1);
    assert_eq!(clicks[0].unique_clicks, 1);
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

/// An app with a verified domain that tracks opens and clicks, and one email sent from it with one link:
/// the app, the key, the email's id, its tracked link and its pixel.
async fn one_tracked_email() -> (Tracked, String, String, String, String) {
    let t = app().await;
    let (_, token) = t.app.tenant().await;
    domain(
        &t,
        &token,
        "acme.test",
        json!({"open_tracking": true, "click_tracking": true}),
    )
    .await;
    let (id, html) = send_and_capture(
        &t.app,
        &token,
        "news@acme.test",
        r#"<a href="https://example.com/">x</a>"#,
    )
    .await;
    let base = base(&t.app);
    let link = urls(&html, &format!("{base}/t/c/")).remove(0);
    let pixel = urls(&html, &format!("{base}/t/o/")).remove(0);
    (t, token, id, link, pixel)
}

#[tokio::test]
async fn unsigned_altered_and_foreign_links_are_refused() {
    let (t, token, id, link, pixel) = one_tracked_email().await;
    let app = &t.app;
    let base = base(app);
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
    let (t, token, id, link, pixel) = one_tracked_email().await;
    let app = &t.app;

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

/// A broadcast's emails are tracked like any other; `GET /broadcasts/{id}/clicked-links` adds up their clicks
/// per link (`clicks`, and `unique_clicks`: how many recipients), pages by opaque cursors, and the recipients
/// who clicked are found with `?type=clicked`. The unsubscribe link is never rewritten.
#[tokio::test]
async fn a_broadcasts_clicked_links_are_counted_per_link() {
    let dns = TestDns::start().await;
    let resolver = dns.addr().to_string();
    let app = TestApp::spawn_with(&[
        ("DNS_RESOLVER", resolver.as_str()),
        ("DNS_TIMEOUT_SECONDS", "1"),
        ("BROADCAST_RATE_PER_SECOND", "1000"),
    ])
    .await;
    let t = Tracked { app, dns };
    let app = &t.app;
    let (_, token) = app.tenant().await;
    domain(&t, &token, "acme.test", json!({"click_tracking": true})).await;
    let post = |path: &'static str, body: Value| {
        let token = token.clone();
        async move {
            let (status, created) = call(app, &token, Method::POST, path, Some(body)).await;
            assert_eq!(status, 201, "{path}: {created}");
            created["id"].as_str().unwrap().to_owned()
        }
    };
    let segment = post("/segments", json!({"name": "Readers"})).await;
    for email in ["ann@example.com", "bob@example.com"] {
        post("/contacts", json!({"email": email, "segments": [segment]})).await;
    }
    let broadcast = post(
        "/broadcasts",
        json!({
            "segment_id": segment,
            "from": "News <news@acme.test>",
            "subject": "News",
            "html": "<a href=\"https://example.com/a\">A</a> <a href=\"https://example.com/b\">B</a> <a href=\"{{{RESEND_UNSUBSCRIBE_URL}}}\">Unsubscribe</a>",
            "send": true,
        }),
    )
    .await;
    let mut recipients = Vec::new();
    for _ in 0..400 {
        let (_, got) = call(
            app,
            &token,
            Method::GET,
            &format!("/broadcasts/{broadcast}"),
            None,
        )
        .await;
        if got["status"] == "sent" {
            let (_, list) = call(
                app,
                &token,
                Method::GET,
                &format!("/broadcasts/{broadcast}/recipients"),
                None,
            )
            .await;
            recipients = list["data"].as_array().unwrap().clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(recipients.len(), 2, "the broadcast was sent to both");

    // Each recipient's message: the two links tracked, the unsubscribe link as it was.
    let base = base(app);
    let mut links_of = std::collections::BTreeMap::new();
    for recipient in &recipients {
        let id = recipient["email_id"].as_str().unwrap();
        let email = app.wait_for_status(&token, id, "sent").await;
        let message = mail_parser::MessageParser::default()
            .parse(email["raw"].as_str().unwrap().as_bytes())
            .unwrap();
        let html = message.body_html(0).unwrap().into_owned();
        assert!(
            html.contains(&format!("href=\"{base}/unsubscribe/")),
            "{html}"
        );
        let links = urls(&html, &format!("{base}/t/c/"));
        assert_eq!(links.len(), 2, "{html}");
        links_of.insert(recipient["email"].as_str().unwrap().to_owned(), links);
    }
    // Ann clicks both links, Bob the first.
    for (who, which) in [
        ("ann@example.com", 0),
        ("ann@example.com", 1),
        ("bob@example.com", 0),
    ] {
        let response = client()
            .get(local(app, &links_of[who][which]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
    }

    let (status, clicked) = call(
        app,
        &token,
        Method::GET,
        &format!("/broadcasts/{broadcast}/clicked-links"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{clicked}");
    assert_eq!(clicked["object"], "list");
    assert_eq!(clicked["has_more"], false);
    let rows: Vec<(String, u64, u64)> = clicked["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["url"].as_str().unwrap().to_owned(),
                r["clicks"].as_u64().unwrap(),
                r["unique_clicks"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("https://example.com/a".to_owned(), 2, 2),
            ("https://example.com/b".to_owned(), 1, 1)
        ]
    );
    // Paged: one row at a time, by the opaque ids.
    let (_, first) = call(
        app,
        &token,
        Method::GET,
        &format!("/broadcasts/{broadcast}/clicked-links?limit=1"),
        None,
    )
    .await;
    assert_eq!(first["has_more"], true);
    let cursor = first["data"][0]["id"].as_str().unwrap();
    let (_, second) = call(
        app,
        &token,
        Method::GET,
        &format!("/broadcasts/{broadcast}/clicked-links?limit=1&after={cursor}"),
        None,
    )
    .await;
    assert_eq!(second["data"][0]["url"], "https://example.com/b");
    assert_eq!(second["has_more"], false);

    // Who clicked.
    let (_, who) = call(
        app,
        &token,
        Method::GET,
        &format!("/broadcasts/{broadcast}/recipients?type=clicked"),
        None,
    )
    .await;
    assert_eq!(who["data"].as_array().unwrap().len(), 2, "{who}");

    // Another organization sees no such broadcast.
    let (_, other) = app.tenant().await;
    let (status, _) = call(
        app,
        &other,
        Method::GET,
        &format!("/broadcasts/{broadcast}/clicked-links"),
        None,
    )
    .await;
    assert_eq!(status, 404);
}
