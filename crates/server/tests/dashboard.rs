//! The dashboard over HTTP: accounts, sessions and their cookies, CSRF, sign-in throttling, organizations,
//! roles (403), invitations (single use, expiry), and that no page shows or changes another organization's
//! data (404). On SQLite by default, on PostgreSQL with `OPENSEND_TEST_DATABASE_URL`.

mod common;
mod dashboard_support;

use common::TestApp;
use dashboard_support::{Browser, PASSWORD};
use reqwest::StatusCode;
use uuid::Uuid;

async fn app() -> TestApp {
    TestApp::spawn_with(&[("SIGNUP", "open")]).await
}

/// A signed-up user with an organization of their own; returns the browser and the organization's id.
async fn owner(app: &TestApp, email: &str, organization: &str) -> (Browser, Uuid) {
    let mut browser = Browser::new(&app.api);
    let page = browser.sign_up(email, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    browser
        .create_organization(organization)
        .await
        .shows(organization);
    let user = app
        .store
        .users()
        .find_by_email_key(email)
        .await
        .unwrap()
        .unwrap();
    let organizations = app.store.members().organizations_of(user.id).await.unwrap();
    let id = organizations
        .iter()
        .find(|(o, _)| o.name == organization)
        .unwrap()
        .0
        .id;
    (browser, id)
}

#[tokio::test]
async fn sign_up_sign_in_and_sign_out_with_safe_cookies() {
    let app = app().await;
    let mut browser = Browser::new(&app.api);

    // Signed out, every page leads to the sign-in page; `/` leads to the dashboard.
    let root = browser.get("/").await;
    assert_eq!(root.location.as_deref(), Some("/dashboard"));
    let page = browser.get("/dashboard/emails").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location.as_deref(), Some("/dashboard/sign-in"));
    let sign_in = browser.get("/dashboard/sign-in").await;
    assert_eq!(sign_in.status, StatusCode::OK);
    let csp = app
        .client
        .get(format!("{}/dashboard/sign-in", app.api))
        .send()
        .await
        .unwrap();
    let headers = csp.headers();
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"));
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    // Sign up: a session cookie, HttpOnly and SameSite=Lax (not Secure: APP_URL is http here).
    let page = browser.sign_up("Ada@Example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        page.location.as_deref(),
        Some("/dashboard/organizations/new")
    );
    let cookie = page
        .set_cookies
        .iter()
        .find(|c| c.starts_with("opensend_session="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "{cookie}");
    // Only the token's hash is stored.
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("opensend_session=");
    assert_eq!(token.len(), 43);

    // No organization yet: the dashboard asks for one.
    let page = browser.get("/dashboard").await;
    assert_eq!(
        page.location.as_deref(),
        Some("/dashboard/organizations/new")
    );
    browser
        .create_organization("Analytical Engines")
        .await
        .shows("Analytical Engines")
        .shows("Ada@example.com");

    // The same address again, in any case, is refused.
    let mut other = Browser::new(&app.api);
    other
        .sign_up("ADA@example.com", PASSWORD)
        .await
        .shows("exists already");
    // A short password is refused.
    other
        .sign_up("bob@example.com", "short")
        .await
        .shows("10 to 200 characters");

    // Sign out: the cookie is cleared and the session is gone from the database.
    browser.get("/dashboard/settings").await;
    let page = browser.post("/dashboard/sign-out", &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(
        page.set_cookies
            .iter()
            .any(|c| c.starts_with("opensend_session=;") && c.contains("Max-Age=0"))
    );
    let after = browser.get("/dashboard").await;
    assert_eq!(
        after.status,
        StatusCode::SEE_OTHER,
        "{:?} {}",
        after.set_cookies,
        after.body
    );
    // The old token no longer works even if replayed.
    let replay = Browser::new(&app.api)
        .client
        .get(format!("{}/dashboard", app.api))
        .header("cookie", format!("opensend_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);

    // Wrong password: refused with the same words as an unknown address.
    let wrong = browser.sign_in("ada@example.com", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    wrong.shows("The email or the password is wrong.");
    let unknown = browser
        .sign_in("nobody@example.com", "not the password")
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    unknown.shows("The email or the password is wrong.");
    let page = browser.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    browser
        .visit("/dashboard")
        .await
        .shows("Analytical Engines");
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_session() {
    let app = app().await;
    let (mut first, _) = owner(&app, "grace@example.com", "Navy").await;
    let mut second = Browser::new(&app.api);
    second.sign_in("grace@example.com", PASSWORD).await;
    second.visit("/dashboard").await.shows("Navy");
    first.get("/dashboard/settings").await;
    let page = first.post("/dashboard/sign-out-everywhere", &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(second.get("/dashboard").await.status, StatusCode::SEE_OTHER);
    assert_eq!(first.get("/dashboard").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn session_cookies_are_secure_when_app_url_is_https() {
    let app = TestApp::spawn_with(&[("SIGNUP", "open"), ("APP_URL", "https://127.0.0.1")]).await;
    // An https APP_URL that is loopback stays a local deployment; the cookie must still be Secure.
    let mut browser = Browser::new(&app.api);
    let page = browser.get("/dashboard/sign-up").await;
    let visitor = page
        .set_cookies
        .iter()
        .find(|c| c.contains("opensend_visitor="))
        .unwrap();
    assert!(
        visitor.starts_with("__Host-opensend_visitor=") && visitor.contains("Secure"),
        "{visitor}"
    );
    // reqwest's cookie store does not send Secure cookies over http: post the form with the cookie by hand.
    let token = visitor.split(';').next().unwrap().to_owned();
    let response = browser
        .client
        .post(format!("{}/dashboard/sign-up", app.api))
        .header("cookie", token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "email=secure%40example.com&password=a+long+enough+password&_csrf={}",
            page.csrf().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let session = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.contains("opensend_session="))
        .unwrap();
    assert!(
        session.starts_with("__Host-opensend_session=")
            && session.contains("Secure")
            && session.contains("HttpOnly"),
        "{session}"
    );
}

#[tokio::test]
async fn forms_without_the_sessions_csrf_token_are_refused() {
    let app = app().await;
    let (mut ada, _) = owner(&app, "ada@example.com", "Ada Org").await;
    let (mut eve, _) = owner(&app, "eve@example.com", "Eve Org").await;

    // No token, a made-up one, and another session's valid token: all refused, nothing created.
    for token in ["", "0000", eve.csrf.as_str()] {
        let page = ada
            .post(
                "/dashboard/organizations",
                &[("name", "Forged"), ("_csrf", token)],
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "token {token:?}");
        page.shows("Form expired");
    }
    let user = app
        .store
        .users()
        .find_by_email_key("ada@example.com")
        .await
        .unwrap()
        .unwrap();
    let organizations = app.store.members().organizations_of(user.id).await.unwrap();
    assert_eq!(organizations.len(), 1);

    // Sign-out and sign-in forms are bound too.
    let page = ada.post("/dashboard/sign-out", &[("_csrf", "")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let mut fresh = Browser::new(&app.api);
    let page = fresh
        .post(
            "/dashboard/sign-in",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("_csrf", "x"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let _ = eve.get("/dashboard").await;
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_address_and_per_client() {
    let app = app().await;
    let (mut ada, _) = owner(&app, "ada@example.com", "Ada Org").await;
    ada.post("/dashboard/sign-out", &[]).await;

    let mut attacker = Browser::new(&app.api);
    attacker.get("/dashboard/sign-in").await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let page = attacker
            .post(
                "/dashboard/sign-in",
                &[
                    ("email", "ada@example.com"),
                    ("password", "guess guess guess"),
                ],
            )
            .await;
        statuses.push(page.status);
    }
    assert_eq!(
        &statuses[..5],
        &[StatusCode::UNAUTHORIZED; 5],
        "{statuses:?}"
    );
    assert_eq!(statuses[6], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    // Now even the right password waits.
    let page = attacker.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    page.shows("Too many failed attempts");

    // The failures are in the audit log, attributed to the address tried and aimed at the user.
    let user = app
        .store
        .users()
        .find_by_email_key("ada@example.com")
        .await
        .unwrap()
        .unwrap();
    let organization = app.store.members().organizations_of(user.id).await.unwrap()[0]
        .0
        .id;
    let log = app
        .store
        .audit_log()
        .list(
            organization,
            opensend_store::PageRequest::new(100, None).unwrap(),
        )
        .await
        .unwrap();
    let failures = log
        .items
        .iter()
        .filter(|e| e.action == "session.sign_in_failed")
        .count();
    assert!(failures >= 5, "{:?}", log.items);
    assert!(
        log.items
            .iter()
            .all(|e| e.client_ip.as_deref() == Some("127.0.0.1"))
    );

    // Per client address: other addresses from the same client run out too (20 failures, give or take what
    // refills while the test runs), and then stay refused.
    let mut statuses = Vec::new();
    for n in 0..30 {
        let email = format!("user{n}@example.com");
        let page = attacker
            .post(
                "/dashboard/sign-in",
                &[("email", &email), ("password", "guess guess guess")],
            )
            .await;
        statuses.push(page.status);
    }
    let first = statuses
        .iter()
        .position(|s| *s == StatusCode::TOO_MANY_REQUESTS)
        .unwrap_or_else(|| panic!("never throttled: {statuses:?}"));
    assert!(first >= 10, "{statuses:?}");
    assert!(
        statuses[first..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn sign_up_follows_the_signup_setting() {
    let app = TestApp::spawn_with(&[("SIGNUP", "invite")]).await;
    let mut browser = Browser::new(&app.api);
    assert_eq!(
        browser.get("/dashboard/sign-up").await.status,
        StatusCode::FORBIDDEN
    );
    let app = TestApp::spawn_with(&[("SIGNUP", "closed")]).await;
    let mut browser = Browser::new(&app.api);
    let page = browser.get("/dashboard/sign-up").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    page.shows("operator creates accounts");
    // The operator's way still works, with an organization to own.
    let org = app.organization("Operated").await;
    let (user, created) = opensend_server::admin::create_user(
        &app.store,
        "op@example.com",
        secrecy::SecretString::from(PASSWORD),
        Some(org),
    )
    .await
    .unwrap();
    assert!(created);
    assert_eq!(
        app.store.members().role(org, user.id).await.unwrap(),
        Some(opensend_core::Role::Owner)
    );
    let page = browser.sign_in("op@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    browser.visit("/dashboard").await.shows("Operated");
}

/// Invites `email` as `role` from `admin`'s organization; returns the link read from the captured email.
async fn invite(
    app: &TestApp,
    admin: &mut Browser,
    organization: Uuid,
    email: &str,
    role: &str,
) -> String {
    admin.get("/dashboard/settings").await;
    let page = admin
        .post(
            "/dashboard/settings/invitations",
            &[("email", email), ("role", role)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    invitation_link(app, organization, email).await
}

async fn invitation_link(app: &TestApp, organization: Uuid, email: &str) -> String {
    let page = app
        .store
        .emails()
        .list(organization, opensend_store::PageRequest::default())
        .await
        .unwrap();
    let summary = page
        .items
        .iter()
        .find(|e| e.to.iter().any(|m| m.address.as_str() == email))
        .expect("the invitation email was accepted");
    let email = app
        .store
        .emails()
        .get(organization, summary.id)
        .await
        .unwrap()
        .unwrap();
    let text = email.text.unwrap();
    let start = text.find("http").unwrap();
    let link = text[start..].split_whitespace().next().unwrap().to_owned();
    link.trim_start_matches("http://localhost:3015").to_owned()
}

#[tokio::test]
async fn invitations_work_once_and_expire() {
    let app = app().await;
    let (mut ada, org) = owner(&app, "ada@example.com", "Ada Org").await;
    let link = invite(&app, &mut ada, org, "bob@example.com", "member").await;
    assert!(link.starts_with("/dashboard/invitations/"), "{link}");
    // The token is stored only hashed.
    let token = link.trim_start_matches("/dashboard/invitations/");
    let open = app
        .store
        .invitations()
        .open(org, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    assert_ne!(open[0].token_hash, token.as_bytes());

    // Bob creates his account from the link and lands in Ada's organization as a member.
    let mut bob = Browser::new(&app.api);
    bob.get(&link)
        .await
        .shows("bob@example.com")
        .shows("member");
    let page = bob
        .post(&link, &[("mode", "sign-up"), ("password", PASSWORD)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    bob.visit("/dashboard")
        .await
        .shows("Ada Org")
        .shows("bob@example.com (member)");

    // A second use of the link is refused, signed in or not.
    let again = bob.get(&link).await;
    assert_eq!(again.status, StatusCode::GONE);
    again.shows("used already");
    let mut carol = Browser::new(&app.api);
    carol.get("/dashboard/sign-in").await;
    let page = carol.get(&link).await;
    assert_eq!(page.status, StatusCode::GONE);
    let page = carol
        .post(&link, &[("mode", "sign-up"), ("password", PASSWORD)])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);

    // An expired invitation cannot be accepted.
    let expiring = invite(&app, &mut ada, org, "dave@example.com", "member").await;
    expire_invitations(&app).await;
    let mut dave = Browser::new(&app.api);
    dave.get("/dashboard/sign-in").await;
    let page = dave.get(&expiring).await;
    assert_eq!(page.status, StatusCode::GONE);
    page.shows("expired");
    let page = dave
        .post(&expiring, &[("mode", "sign-up"), ("password", PASSWORD)])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        app.store
            .users()
            .find_by_email_key("dave@example.com")
            .await
            .unwrap()
            .is_none()
    );

    // A made-up link is a 404.
    let page = dave
        .get("/dashboard/invitations/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);

    // The audit log tells the story.
    let log = app
        .store
        .audit_log()
        .list(org, opensend_store::PageRequest::new(100, None).unwrap())
        .await
        .unwrap();
    let actions: Vec<&str> = log.items.iter().map(|e| e.action.as_str()).collect();
    for action in [
        "invitation.created",
        "invitation.accepted",
        "member.added",
        "organization.created",
        "session.signed_in",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
}

async fn expire_invitations(app: &TestApp) {
    use sea_orm::{ConnectionTrait, Database};
    let db = Database::connect(app.db.url()).await.unwrap();
    db.execute_unprepared("UPDATE invitations SET expires_at = created_at")
        .await
        .unwrap();
}

#[tokio::test]
async fn an_existing_user_accepts_by_signing_in_and_a_wrong_account_cannot() {
    let app = app().await;
    let (mut ada, org) = owner(&app, "ada@example.com", "Ada Org").await;
    let (mut bob, _) = owner(&app, "bob@example.com", "Bob Org").await;
    let link = invite(&app, &mut ada, org, "bob@example.com", "admin").await;
    // Eve, signed in, cannot take Bob's invitation.
    let (mut eve, _) = owner(&app, "eve@example.com", "Eve Org").await;
    eve.get(&link)
        .await
        .shows("this invitation is for bob@example.com");
    let page = eve.post(&link, &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // Bob, signed in, accepts; he now has two organizations and works in Ada's.
    bob.get(&link).await;
    let page = bob.post(&link, &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    bob.visit("/dashboard")
        .await
        .shows("Ada Org")
        .shows("bob@example.com (admin)");
}

#[tokio::test]
async fn members_cannot_do_what_admins_and_owners_do() {
    let app = app().await;
    let (mut ada, org) = owner(&app, "ada@example.com", "Ada Org").await;
    let member_link = invite(&app, &mut ada, org, "mem@example.com", "member").await;
    let admin_link = invite(&app, &mut ada, org, "adm@example.com", "admin").await;
    let mut member = Browser::new(&app.api);
    member.get(&member_link).await;
    member
        .post(&member_link, &[("mode", "sign-up"), ("password", PASSWORD)])
        .await;
    let mut admin = Browser::new(&app.api);
    admin.get(&admin_link).await;
    admin
        .post(&admin_link, &[("mode", "sign-up"), ("password", PASSWORD)])
        .await;
    let ada_id = app
        .store
        .users()
        .find_by_email_key("ada@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;
    let admin_id = app
        .store
        .users()
        .find_by_email_key("adm@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;

    // A member: settings readable, no invitation form, every admin action 403.
    member
        .visit("/dashboard/settings")
        .await
        .shows("ada@example.com")
        .hides("invite-form");
    for (path, fields) in [
        (
            "/dashboard/settings/invitations".to_owned(),
            vec![("email", "x@example.com"), ("role", "member")],
        ),
        (
            format!("/dashboard/settings/members/{admin_id}/role"),
            vec![("role", "member")],
        ),
        (
            format!("/dashboard/settings/members/{admin_id}/remove"),
            vec![],
        ),
        (
            "/dashboard/settings/rename".to_owned(),
            vec![("name", "Mine now")],
        ),
        (
            "/dashboard/organizations/delete".to_owned(),
            vec![("confirm_name", "Ada Org")],
        ),
    ] {
        let page = member.post(&path, &fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    let page = member.get("/dashboard/audit").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);

    // An admin: may invite members and admins, not owners; may not touch the owner; may not delete.
    admin.get("/dashboard/settings").await;
    let page = admin
        .post(
            "/dashboard/settings/invitations",
            &[("email", "own@example.com"), ("role", "owner")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = admin
        .post(
            &format!("/dashboard/settings/members/{ada_id}/role"),
            &[("role", "member")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = admin
        .post(&format!("/dashboard/settings/members/{ada_id}/remove"), &[])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = admin
        .post(
            "/dashboard/organizations/delete",
            &[("confirm_name", "Ada Org")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let mem_id = app
        .store
        .users()
        .find_by_email_key("mem@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;
    let page = admin
        .post(
            &format!("/dashboard/settings/members/{mem_id}/role"),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);

    // The owner cannot leave the organization ownerless, and can delete it.
    ada.get("/dashboard/settings").await;
    let page = ada
        .post(
            &format!("/dashboard/settings/members/{ada_id}/role"),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    page.shows("at least one owner");
    let page = ada
        .post(
            "/dashboard/organizations/delete",
            &[("confirm_name", "Ada Org")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(app.store.organizations().get(org).await.unwrap().is_none());
}

#[tokio::test]
async fn another_organizations_ids_are_not_found() {
    let app = app().await;
    let (mut ada, ada_org) = owner(&app, "ada@example.com", "Ada Org").await;
    let (mut eve, eve_org) = owner(&app, "eve@example.com", "Eve Org").await;
    let link = invite(&app, &mut eve, eve_org, "someone@example.com", "member").await;
    let _ = link;
    let eve_id = app
        .store
        .users()
        .find_by_email_key("eve@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;
    let eve_invitation = app
        .store
        .invitations()
        .open(eve_org, chrono::Utc::now())
        .await
        .unwrap()[0]
        .id;
    ada.get("/dashboard/settings").await;
    // Switching into an organization one does not belong to.
    let page = ada
        .post(
            "/dashboard/organizations/switch",
            &[("organization_id", &eve_org.to_string())],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    // Eve's member and invitation, acted on from Ada's organization.
    for path in [
        format!("/dashboard/settings/members/{eve_id}/role"),
        format!("/dashboard/settings/members/{eve_id}/remove"),
        format!("/dashboard/settings/invitations/{eve_invitation}/revoke"),
    ] {
        let page = ada.post(&path, &[("role", "member")]).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        app.store.members().role(eve_org, eve_id).await.unwrap(),
        Some(opensend_core::Role::Owner)
    );
    assert_eq!(
        app.store
            .invitations()
            .open(eve_org, chrono::Utc::now())
            .await
            .unwrap()
            .len(),
        1
    );
    // Ada's pages never show Eve's organization.
    ada.visit("/dashboard/settings")
        .await
        .hides("Eve Org")
        .hides("eve@example.com")
        .hides("someone@example.com");
    let _ = ada_org;
}

/// Everything an organization can have, made through the API with its key: (kind, id) pairs and the
/// delivery of its webhook.
struct Resources {
    email: String,
    domain: String,
    webhook: String,
    delivery: String,
    key: Uuid,
    token: String,
    suppression: String,
    contact: String,
    segment: String,
    topic: String,
}

async fn resources(app: &TestApp, org: Uuid, receiver: &str) -> Resources {
    use common::call;
    use reqwest::Method;
    use serde_json::json;
    let (key, token) = app.key(org, opensend_core::Permission::FullAccess).await;
    let (status, domain) = call(
        app,
        &token,
        Method::POST,
        "/domains",
        Some(json!({"name": "eve.test"})),
    )
    .await;
    assert_eq!(status, 201, "{domain}");
    let (status, webhook) = call(
        app,
        &token,
        Method::POST,
        "/webhooks",
        Some(json!({"endpoint": receiver, "events": ["email.sent"]})),
    )
    .await;
    assert_eq!(status, 201, "{webhook}");
    let webhook = webhook["id"].as_str().unwrap().to_owned();
    let (status, sent) = app
        .send(&token, &json!({"from": "eve@eve.test", "to": "friend@example.net", "subject": "Eve's secret plan", "html": "<p>plan</p>"}))
        .await;
    assert_eq!(status, 200, "{sent}");
    let email = sent["id"].as_str().unwrap().to_owned();
    app.wait_for_status(&token, &email, "sent").await;
    let mut delivery = None;
    for _ in 0..200 {
        let (_, list) = call(
            app,
            &token,
            Method::GET,
            &format!("/webhooks/{webhook}/deliveries"),
            None,
        )
        .await;
        if let Some(id) = list["data"][0]["id"].as_str() {
            delivery = Some(id.to_owned());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (_, suppression) = call(
        app,
        &token,
        Method::POST,
        "/suppressions",
        Some(json!({"email": "blocked@eve.test"})),
    )
    .await;
    let (_, contact) = call(
        app,
        &token,
        Method::POST,
        "/contacts",
        Some(json!({"email": "contact@eve.test"})),
    )
    .await;
    let (_, segment) = call(
        app,
        &token,
        Method::POST,
        "/segments",
        Some(json!({"name": "Eve segment"})),
    )
    .await;
    let (_, topic) = call(
        app,
        &token,
        Method::POST,
        "/topics",
        Some(json!({"name": "Eve topic", "default_subscription": "opt_in"})),
    )
    .await;
    Resources {
        email,
        domain: domain["id"].as_str().unwrap().to_owned(),
        webhook,
        delivery: delivery.expect("a webhook delivery"),
        key,
        token,
        suppression: suppression["id"].as_str().unwrap().to_owned(),
        contact: contact["id"].as_str().unwrap().to_owned(),
        segment: segment["id"].as_str().unwrap().to_owned(),
        topic: topic["id"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test]
async fn another_organizations_resources_are_not_found_and_never_shown() {
    let app =
        TestApp::spawn_with(&[("SIGNUP", "open"), ("ALLOW_PRIVATE_WEBHOOK_URLS", "true")]).await;
    let receiver = opensend_test_support::webhook_receiver::WebhookReceiver::start(vec![]).await;
    let (mut ada, _) = owner(&app, "ada@example.com", "Ada Org").await;
    let (mut eve, eve_org) = owner(&app, "eve@example.com", "Eve Org").await;
    let r = resources(&app, eve_org, &receiver.url()).await;

    // Eve sees her own things.
    eve.visit(&format!("/dashboard/emails/{}", r.email))
        .await
        .shows("Eve&#39;s secret plan")
        .shows("email.sent");
    eve.visit(&format!("/dashboard/domains/{}", r.domain))
        .await
        .shows("eve.test");
    eve.visit(&format!("/dashboard/webhooks/{}", r.webhook))
        .await
        .shows("email.sent");

    // Ada, given Eve's ids, finds nothing: every page that takes an id.
    let random = Uuid::now_v7();
    for path in [
        format!("/dashboard/emails/{}", r.email),
        format!("/dashboard/emails/{}/preview", r.email),
        format!("/dashboard/domains/{}", r.domain),
        format!("/dashboard/webhooks/{}", r.webhook),
        format!("/dashboard/contacts/{}", r.contact),
        format!("/dashboard/segments/{}", r.segment),
        format!("/dashboard/topics/{}", r.topic),
        format!("/dashboard/receiving/{random}"),
        "/dashboard/emails/not-an-id".to_owned(),
    ] {
        let page = ada.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        page.hides("eve.test").hides("secret plan");
    }
    ada.get("/dashboard/settings").await;
    for path in [
        format!("/dashboard/domains/{}/verify", r.domain),
        format!("/dashboard/domains/{}/rotate-dkim", r.domain),
        format!("/dashboard/domains/{}/delete", r.domain),
        format!("/dashboard/webhooks/{}/status", r.webhook),
        format!("/dashboard/webhooks/{}/rotate-secret", r.webhook),
        format!(
            "/dashboard/webhooks/{}/deliveries/{}/replay",
            r.webhook, r.delivery
        ),
        format!("/dashboard/webhooks/{}/delete", r.webhook),
        format!("/dashboard/api-keys/{}/revoke", r.key),
        format!("/dashboard/suppressions/{}/remove", r.suppression),
    ] {
        let page = ada.post(&path, &[("status", "disabled")]).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}: {}", page.body);
    }
    // Nothing of Eve's changed: her key works, her domain and endpoint are there and enabled.
    let (status, webhook) = common::call(
        &app,
        &r.token,
        reqwest::Method::GET,
        &format!("/webhooks/{}", r.webhook),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(webhook["status"], "enabled");
    let (status, _) = common::call(
        &app,
        &r.token,
        reqwest::Method::GET,
        &format!("/domains/{}", r.domain),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = common::call(
        &app,
        &r.token,
        reqwest::Method::GET,
        &format!("/suppressions/{}", r.suppression),
        None,
    )
    .await;
    assert_eq!(status, 200);

    // No list of Ada's shows any of it.
    for path in [
        "/dashboard",
        "/dashboard/emails",
        "/dashboard/emails?q=eve",
        "/dashboard/domains",
        "/dashboard/webhooks",
        "/dashboard/api-keys",
        "/dashboard/suppressions",
        "/dashboard/receiving",
        "/dashboard/contacts",
        "/dashboard/segments",
        "/dashboard/topics",
        "/dashboard/settings",
        "/dashboard/audit",
    ] {
        let page = ada.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        for secret in [
            "eve.test",
            "secret plan",
            "Eve segment",
            "Eve topic",
            "Eve Org",
            "eve@example.com",
            &receiver.url(),
        ] {
            page.hides(secret);
        }
    }
    // And Eve's lists do show them (so the hides above are about the filter, not empty pages).
    eve.get("/dashboard/emails").await.shows("secret plan");
    eve.get("/dashboard/suppressions")
        .await
        .shows("blocked@eve.test");
    eve.get("/dashboard/contacts")
        .await
        .shows("contact@eve.test");
    eve.get("/dashboard/segments").await.shows("Eve segment");
    eve.get("/dashboard/topics").await.shows("Eve topic");
    eve.get("/dashboard").await.shows("<b>1</b>sent");
}

#[tokio::test]
async fn pages_manage_keys_domains_webhooks_and_show_emails() {
    let app =
        TestApp::spawn_with(&[("SIGNUP", "open"), ("ALLOW_PRIVATE_WEBHOOK_URLS", "true")]).await;
    let receiver = opensend_test_support::webhook_receiver::WebhookReceiver::start(vec![]).await;
    let (mut ada, org) = owner(&app, "ada@example.com", "Ada Org").await;

    // A key: its token on the answer to the form, never again; it works; revoking it stops it.
    ada.get("/dashboard/api-keys").await;
    let page = ada
        .post(
            "/dashboard/api-keys",
            &[("name", "deploy"), ("permission", "full_access")],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let start = page.body.find("id=\"token\">").unwrap() + "id=\"token\">".len();
    let token = page.body[start..start + 46].to_owned();
    assert!(token.starts_with("os_"), "{token}");
    let list = ada.get("/dashboard/api-keys").await;
    list.shows("deploy").hides(&token);
    let (status, _) = common::call(&app, &token, reqwest::Method::GET, "/domains", None).await;
    assert_eq!(status, 200);
    let page = ada.post("/dashboard/api-keys", &[("name", "")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A domain: its records, with what the copy buttons copy.
    ada.get("/dashboard/domains").await;
    let page = ada
        .submit(
            "/dashboard/domains",
            &[("name", "ada.test"), ("region", "us-east-1")],
        )
        .await;
    page.shows("ada.test")
        .shows("DNS records")
        .shows("data-copy=\"send.ada.test\"")
        .shows("v=DKIM1");
    let page = ada
        .submit("/dashboard/domains", &[("name", "not a domain")])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A webhook, an email through the API, and its delivery replayed from the dashboard.
    ada.get("/dashboard/webhooks").await;
    let page = ada
        .post(
            "/dashboard/webhooks",
            &[
                ("endpoint", &receiver.url()),
                ("events", "email.sent"),
                ("events", "email.delivered"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.shows("whsec_").shows("email.sent, email.delivered");
    let (status, sent) = app
        .send(&token, &serde_json::json!({"from": "ada@ada.test", "to": "reader@example.net", "subject": "Quarterly <report>", "html": "<p onclick=\"x()\">Hi</p><script>alert(1)</script>"}))
        .await;
    assert_eq!(status, 200);
    let id = sent["id"].as_str().unwrap();
    app.wait_for_status(&token, id, "sent").await;
    receiver
        .wait_for(1, std::time::Duration::from_secs(20))
        .await;
    let webhooks = app
        .store
        .webhooks()
        .list(org, opensend_store::PageRequest::default())
        .await
        .unwrap();
    let webhook = webhooks.items[0].id;
    // The attempt is recorded just after the receiver has its answer.
    let path = format!("/dashboard/webhooks/{webhook}");
    let mut page = ada.get(&path).await;
    for _ in 0..100 {
        if page.body.contains("HTTP 200") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        page = ada.get(&path).await;
    }
    page.shows("email.sent").shows("HTTP 200");
    let start = page.body.find("/deliveries/").unwrap();
    let delivery = page.body[start + "/deliveries/".len()..]
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let page = ada
        .submit(
            &format!("/dashboard/webhooks/{webhook}/deliveries/{delivery}/replay"),
            &[],
        )
        .await;
    page.shows("Delivery queued again.");
    receiver
        .wait_for(2, std::time::Duration::from_secs(20))
        .await;
    let page = ada
        .submit(&format!("/dashboard/webhooks/{webhook}/rotate-secret"), &[])
        .await;
    page.shows("New signing secret");

    // The email: listed (filters too), its detail escaped, its preview under its own sandboxing policy.
    ada.get("/dashboard/emails")
        .await
        .shows("Quarterly &#60;report&#62;");
    ada.get("/dashboard/emails?status=sent&q=Quarterly")
        .await
        .shows("Quarterly &#60;report&#62;");
    ada.get("/dashboard/emails?status=bounced")
        .await
        .hides("Quarterly");
    ada.get("/dashboard/emails?q=nothing-like-it")
        .await
        .hides("Quarterly");
    let page = ada.get(&format!("/dashboard/emails/{id}")).await;
    page.shows("email.sent")
        .shows("reader@example.net")
        .shows("sandbox src=")
        .shows("Raw message")
        .hides("<script>alert");
    let preview = ada
        .client
        .get(format!("{}/dashboard/emails/{id}/preview", app.api))
        .send()
        .await
        .unwrap();
    let policy = preview.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("sandbox")
            && policy.contains("default-src 'none'")
            && policy.contains("frame-ancestors 'self'"),
        "{policy}"
    );
    assert_eq!(preview.headers()["x-frame-options"], "SAMEORIGIN");
    assert!(
        preview.text().await.unwrap().contains("<script>"),
        "the preview is the email's own HTML, made inert by its policy"
    );

    // The overview counts it.
    ada.get("/dashboard").await.shows("<b>1</b>sent");

    // Every change above is in the audit log, by Ada from 127.0.0.1.
    let log = app
        .store
        .audit_log()
        .list(org, opensend_store::PageRequest::new(100, None).unwrap())
        .await
        .unwrap();
    for action in [
        "api_key.created",
        "domain.created",
        "webhook.created",
        "webhook.delivery_replayed",
        "webhook.secret_rotated",
    ] {
        let entry = log
            .items
            .iter()
            .find(|e| e.action == action)
            .unwrap_or_else(|| panic!("{action} missing"));
        assert_eq!(entry.actor_type, "user");
        assert_eq!(entry.actor_label, "ada@example.com");
        assert_eq!(entry.client_ip.as_deref(), Some("127.0.0.1"));
    }
    ada.get("/dashboard/audit")
        .await
        .shows("api_key.created")
        .shows("webhook.secret_rotated");
}

#[tokio::test]
async fn the_rest_api_records_its_key_domain_and_webhook_changes() {
    use common::call;
    use reqwest::Method;
    use serde_json::json;
    let app = TestApp::spawn_with(&[("ALLOW_PRIVATE_WEBHOOK_URLS", "true")]).await;
    let receiver = opensend_test_support::webhook_receiver::WebhookReceiver::start(vec![]).await;
    let (org, token) = app.tenant().await;
    let (_, key) = call(
        &app,
        &token,
        Method::POST,
        "/api-keys",
        Some(json!({"name": "second"})),
    )
    .await;
    let (status, _) = call(
        &app,
        &token,
        Method::DELETE,
        &format!("/api-keys/{}", key["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (_, domain) = call(
        &app,
        &token,
        Method::POST,
        "/domains",
        Some(json!({"name": "api.test"})),
    )
    .await;
    let domain = domain["id"].as_str().unwrap();
    call(
        &app,
        &token,
        Method::POST,
        &format!("/domains/{domain}/rotate-dkim"),
        None,
    )
    .await;
    call(
        &app,
        &token,
        Method::DELETE,
        &format!("/domains/{domain}"),
        None,
    )
    .await;
    let (_, webhook) = call(
        &app,
        &token,
        Method::POST,
        "/webhooks",
        Some(json!({"endpoint": receiver.url(), "events": ["email.sent"]})),
    )
    .await;
    let webhook = webhook["id"].as_str().unwrap();
    call(
        &app,
        &token,
        Method::PATCH,
        &format!("/webhooks/{webhook}"),
        Some(json!({"status": "disabled"})),
    )
    .await;
    call(
        &app,
        &token,
        Method::POST,
        &format!("/webhooks/{webhook}/rotate-secret"),
        None,
    )
    .await;
    call(
        &app,
        &token,
        Method::DELETE,
        &format!("/webhooks/{webhook}"),
        None,
    )
    .await;
    // A refused change records nothing.
    let (status, _) = call(
        &app,
        &token,
        Method::DELETE,
        &format!("/domains/{}", Uuid::now_v7()),
        None,
    )
    .await;
    assert_eq!(status, 404);

    let log = app
        .store
        .audit_log()
        .list(org, opensend_store::PageRequest::new(100, None).unwrap())
        .await
        .unwrap();
    let mut entries = log.items.clone();
    entries.reverse();
    // The first key was made by the operator (`admin create-key`, as `tenant()` does).
    let operator = entries.remove(0);
    assert_eq!(
        (operator.action.as_str(), operator.actor_type.as_str()),
        ("api_key.created", "operator")
    );
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "api_key.created",
            "api_key.revoked",
            "domain.created",
            "domain.dkim_rotated",
            "domain.deleted",
            "webhook.created",
            "webhook.updated",
            "webhook.secret_rotated",
            "webhook.deleted",
        ]
    );
    for entry in &entries {
        assert_eq!(entry.actor_type, "api_key");
        assert!(
            entry.actor_label.starts_with("test key (os_"),
            "{}",
            entry.actor_label
        );
        assert_eq!(entry.client_ip.as_deref(), Some("127.0.0.1"));
        assert!(!entry.detail.contains("whsec_"), "{}", entry.detail);
    }
}
