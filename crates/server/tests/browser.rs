//! The dashboard in a real browser: Debian's Chromium, headless, driven over WebDriver (chromedriver) with
//! fantoccini. One scenario walks what a new team does: sign up, create an organization, invite a second
//! person who accepts from the captured email, add a domain and read its records, create an API key and
//! see its token once, send through the API with it and find the email and its detail, replay a webhook
//! delivery; then the refusals: another organization's email (404), a member on an admin page (403), a
//! form with a forged CSRF token (403). A screenshot of every page is saved under
//! `tests/browser/artifacts/` (or `OPENSEND_BROWSER_ARTIFACTS`).
//!
//! Needs `chromium` and `chromium-driver` (`bash tests/browser/install.sh`). Without chromedriver the test
//! says it was skipped, unless `OPENSEND_BROWSER_TESTS=1` or `CI=true`, which make its absence a failure.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::TestApp;
use fantoccini::{Client, ClientBuilder, Locator};
use opensend_test_support::webhook_receiver::WebhookReceiver;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const PASSWORD: &str = "a long enough password";

fn required() -> bool {
    std::env::var("OPENSEND_BROWSER_TESTS").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true")
}

fn chromedriver() -> Option<PathBuf> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn artifacts() -> PathBuf {
    let dir = std::env::var_os("OPENSEND_BROWSER_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/artifacts")
        });
    std::fs::create_dir_all(&dir).expect("artifacts directory");
    dir
}

/// A chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn start_driver(path: &PathBuf) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if reqwest::get(format!("{url}/status")).await.is_ok() {
            return Driver { child, url };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer on {url}");
}

/// A headless Chromium with a profile of its own (so two are two different people).
async fn browser(driver: &Driver, profile: &tempfile::TempDir) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session")
}

struct Person {
    client: Client,
    base: String,
    name: &'static str,
}

impl Person {
    async fn go(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("{}: cannot open {path}: {e}", self.name));
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.ok();
        field.send_keys(text).await.expect("typing");
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{}: no {css} on the page: {e}", self.name))
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("click");
    }

    /// The page's text. A click that submits a form replaces the page while it is read: a body gone stale
    /// is read again from the page that replaced it.
    async fn text(&self) -> String {
        for _ in 0..50 {
            if let Ok(text) = self.find("body").await.text().await {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{}: the page never settled", self.name);
    }

    /// Panics unless the page shows `expected` within a few seconds (the answer to a form may still be
    /// loading).
    async fn sees(&self, expected: &str) {
        let mut text = String::new();
        for _ in 0..50 {
            text = self.text().await;
            if text.contains(expected) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{}: expected {expected:?} on {:?}:\n{text}",
            self.name,
            self.client.current_url().await.map(|u| u.to_string())
        );
    }

    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(artifacts().join(format!("{name}.png")), png).expect("save screenshot");
    }
}

async fn invitation_link(app: &TestApp, org: uuid::Uuid, to: &str) -> String {
    let page = app
        .store
        .emails()
        .list(org, opensend_store::PageRequest::default())
        .await
        .unwrap();
    let summary = page
        .items
        .iter()
        .find(|e| e.to.iter().any(|m| m.address.as_str() == to))
        .expect("an invitation email was captured");
    let email = app
        .store
        .emails()
        .get(org, summary.id)
        .await
        .unwrap()
        .unwrap();
    let text = email.text.unwrap();
    let start = text.find("/dashboard/invitations/").unwrap();
    text[start..].split_whitespace().next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_works_in_the_dashboard_in_a_real_browser() {
    let Some(driver_path) = chromedriver() else {
        assert!(
            !required(),
            "chromedriver is missing: run `bash tests/browser/install.sh`"
        );
        eprintln!("skipped: no chromedriver (bash tests/browser/install.sh installs it)");
        return;
    };
    let app =
        TestApp::spawn_with(&[("SIGNUP", "open"), ("ALLOW_PRIVATE_WEBHOOK_URLS", "true")]).await;
    let driver = start_driver(&driver_path).await;
    let profiles = [
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    ];
    let ada = Person {
        client: browser(&driver, &profiles[0]).await,
        base: app.api.clone(),
        name: "ada",
    };

    // Sign up and create an organization.
    ada.go("/dashboard/sign-up").await;
    ada.shot("01-sign-up").await;
    ada.fill("#email", "ada@example.test").await;
    ada.fill("#password", PASSWORD).await;
    ada.click("#sign-up").await;
    ada.fill("#name", "Analytical Engines").await;
    ada.shot("02-new-organization").await;
    ada.click("#create-organization").await;
    ada.sees("Organization created.").await;
    ada.sees("bounce rate").await;
    ada.shot("03-overview").await;
    let user = app
        .store
        .users()
        .find_by_email_key("ada@example.test")
        .await
        .unwrap()
        .unwrap();
    let org = app.store.members().organizations_of(user.id).await.unwrap()[0]
        .0
        .id;

    // Invite Bob; he accepts from the link in the captured email, in his own browser.
    ada.go("/dashboard/settings").await;
    ada.fill("#invite-email", "bob@example.test").await;
    ada.click("#invite").await;
    ada.sees("Invitation sent.").await;
    ada.sees("bob@example.test").await;
    ada.shot("04-settings-invited").await;
    let link = invitation_link(&app, org, "bob@example.test").await;
    let bob = Person {
        client: browser(&driver, &profiles[1]).await,
        base: app.api.clone(),
        name: "bob",
    };
    bob.go(&link).await;
    bob.sees("Join Analytical Engines").await;
    bob.shot("05-invitation").await;
    bob.fill("#password", PASSWORD).await;
    bob.click("#accept").await;
    bob.sees("Invitation accepted").await;
    bob.sees("bob@example.test (member)").await;
    // The link works once.
    bob.go(&link).await;
    bob.sees("used already").await;

    // Add a domain and read its records.
    ada.go("/dashboard/domains").await;
    ada.fill("#domain-name", "example.test").await;
    ada.click("#add-domain-button").await;
    ada.sees("DNS records").await;
    let records = ada.find("#records").await.text().await.unwrap();
    for expected in ["DKIM", "SPF", "TXT", "MX", "_domainkey.example.test"] {
        assert!(
            records.contains(expected),
            "{expected} missing from {records}"
        );
    }
    ada.shot("06-domain-records").await;

    // A webhook endpoint for email events (a receiver on this machine).
    let receiver = WebhookReceiver::start(vec![]).await;
    ada.go("/dashboard/webhooks").await;
    ada.fill("#endpoint", &receiver.url()).await;
    ada.click("input[value='email.sent']").await;
    ada.click("#add-webhook-button").await;
    ada.sees("whsec_").await;
    ada.shot("07-webhooks").await;

    // An API key: its token shown once.
    ada.go("/dashboard/api-keys").await;
    ada.fill("#key-name", "ci").await;
    ada.click("#create-key-button").await;
    let token = ada.find("#token").await.text().await.unwrap();
    assert!(token.starts_with("os_"), "{token}");
    ada.shot("08-api-key-created").await;
    ada.go("/dashboard/api-keys").await;
    let page = ada.text().await;
    assert!(!page.contains(&token) && page.contains("ci"), "{page}");

    // Send through the API with that key; the email shows in the list and its detail.
    let (status, sent) = app
        .send(
            &token,
            &json!({"from": "Ada <ada@example.test>", "to": "reader@example.net", "subject": "Hello from the engine", "html": "<p>Hi <b>there</b></p>"}),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    let id = sent["id"].as_str().unwrap().to_owned();
    app.wait_for_status(&token, &id, "sent").await;
    receiver.wait_for(1, Duration::from_secs(20)).await;
    ada.go("/dashboard/emails").await;
    ada.sees("Hello from the engine").await;
    ada.shot("09-emails").await;
    ada.click("#emails a").await;
    ada.sees("email.sent").await;
    ada.sees("reader@example.net").await;
    ada.find("iframe.preview").await;
    ada.sees("Raw message").await;
    ada.shot("10-email-detail").await;

    // Replay the webhook delivery.
    ada.go("/dashboard/webhooks").await;
    ada.click("#webhooks a").await;
    ada.sees("email.sent").await;
    ada.click("button.replay").await;
    ada.sees("Delivery queued again.").await;
    receiver.wait_for(2, Duration::from_secs(20)).await;
    ada.go("/dashboard/webhooks").await;
    ada.click("#webhooks a").await;
    ada.sees("replay").await;
    ada.shot("11-webhook-replayed").await;

    // The audit log, for the owner.
    ada.go("/dashboard/audit").await;
    ada.sees("api_key.created").await;
    ada.sees("invitation.accepted").await;
    ada.shot("12-audit").await;

    // Refusals: Bob is a member (no audit log, 403); Eve, of another organization, cannot open Ada's
    // email (404); a form with a forged CSRF token is refused (403).
    bob.go("/dashboard/audit").await;
    bob.sees("Not allowed").await;
    bob.shot("13-member-refused").await;
    let eve = Person {
        client: browser(&driver, &profiles[2]).await,
        base: app.api.clone(),
        name: "eve",
    };
    eve.go("/dashboard/sign-up").await;
    eve.fill("#email", "eve@example.test").await;
    eve.fill("#password", PASSWORD).await;
    eve.click("#sign-up").await;
    eve.fill("#name", "Eve's").await;
    eve.click("#create-organization").await;
    // The form's answer lands first; a navigation started before it could be overtaken by it.
    eve.sees("Organization created.").await;
    eve.go(&format!("/dashboard/emails/{id}")).await;
    eve.sees("Not found").await;
    eve.shot("14-other-organization").await;
    eve.go("/dashboard/api-keys").await;
    let forged: Value = eve
        .client
        .execute(
            "document.querySelector('#create-key input[name=_csrf]').value = 'forged'; return 1;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(forged, json!(1));
    eve.fill("#key-name", "forged").await;
    eve.click("#create-key-button").await;
    eve.sees("Form expired").await;
    eve.shot("15-csrf-refused").await;

    for person in [ada, bob, eve] {
        person.client.close().await.ok();
    }
}
