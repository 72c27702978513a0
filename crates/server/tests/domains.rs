//! `/domains` end to end, against a DNS server on loopback that the tests control.

mod common;

use chrono::{TimeDelta, Utc};
use common::{TestApp, expect_error, json};
use hickory_proto::rr::RecordType;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};
use opensend_core::{Permission, SecretBox};
use opensend_mail::dkim::{self, DkimAlgorithm};
use opensend_server::domains::{self, Refusal, SendAsError};
use opensend_server::serve::Roles;
use opensend_store::entities::{dkim_key, domain};
use opensend_test_support::dns::{Answer, TestDns};
use reqwest::Method;
use sea_orm::{Database, EntityTrait};
use serde_json::{Value, json};

const KEY: &str = "5f2b6c1d9e8a7b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4";

async fn spawn(dns: &TestDns, extra: &[(&str, &str)]) -> TestApp {
    let resolver = dns.addr().to_string();
    let mut vars = vec![
        ("DNS_RESOLVER", resolver.as_str()),
        ("DNS_TIMEOUT_SECONDS", "1"),
        ("WEBHOOK_SECRET_ENCRYPTION_KEY", KEY),
        ("DELIVERY", "smtp"),
        ("SMTP_URL", "smtp://127.0.0.1:9?tls=none"),
        ("SPF_INCLUDE", "include:_spf.relay.test"),
        ("RETURN_PATH_MX", "bounces.relay.test"),
        ("TRACKING_CNAME_TARGET", "track.opensend.test"),
        ("DMARC_RUA", "dmarc@opensend.test"),
    ];
    for (k, v) in extra {
        vars.retain(|(name, _)| name != k);
        vars.push((k, v));
    }
    TestApp::spawn_with(&vars).await
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.authed(method, path, token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    json(request.send().await.unwrap()).await
}

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, domain) = call(app, Method::POST, "/domains", token, Some(body)).await;
    assert_eq!(status, 201, "{domain}");
    domain
}

fn records<'a>(domain: &'a Value, kind: &str, record_type: &str) -> Vec<&'a Value> {
    domain["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["record"] == kind && r["type"] == record_type)
        .collect()
}

fn record<'a>(domain: &'a Value, kind: &str, record_type: &str) -> &'a Value {
    let found = records(domain, kind, record_type);
    assert_eq!(found.len(), 1, "{kind} {record_type} in {domain}");
    found[0]
}

/// Publishes every record of `domain` with the value it asks for.
fn publish(dns: &TestDns, domain: &Value) {
    for r in domain["records"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        let value = r["value"].as_str().unwrap();
        match r["type"].as_str().unwrap() {
            "TXT" => dns.set_txt(name, &[value]),
            "MX" => dns.set_mx(name, 10, value),
            "CNAME" => dns.set_cname(name, value),
            other => panic!("unexpected type {other}"),
        }
    }
}

async fn verify(app: &TestApp, token: &str, id: &str) -> Value {
    let (status, domain) = call(
        app,
        Method::POST,
        &format!("/domains/{id}/verify"),
        token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{domain}");
    domain
}

async fn count<E: EntityTrait>(app: &TestApp, _entity: E) -> u64 {
    let db = Database::connect(app.db.url()).await.unwrap();
    let n = E::find().all(&db).await.unwrap().len() as u64;
    let _ = db.close().await;
    n
}

#[tokio::test]
async fn create_returns_the_records_to_publish() {
    let dns = TestDns::start().await;
    let app = spawn(&dns, &[]).await;
    let (_, token) = app.tenant().await;
    let domain = create(
        &app,
        &token,
        json!({"name": " Example.COM. ", "tracking_subdomain": "Links"}),
    )
    .await;

    assert_eq!(domain["object"], "domain");
    assert_eq!(domain["name"], "example.com");
    assert_eq!(domain["status"], "not_started");
    assert_eq!(domain["region"], "us-east-1");
    assert_eq!(domain["open_tracking"], false);
    assert_eq!(domain["click_tracking"], false);
    assert_eq!(domain["tracking_subdomain"], "links");
    assert_eq!(domain["custom_return_path"], "send");
    assert_eq!(domain["tls"], "opportunistic");
    assert_eq!(
        domain["capabilities"],
        json!({"sending": "enabled", "receiving": "disabled"})
    );
    assert!(domain["created_at"].as_str().unwrap().ends_with('Z'));

    let dkim = records(&domain, "DKIM", "TXT");
    assert_eq!(dkim.len(), 2, "{domain}");
    let rsa = dkim[0];
    let ed = dkim[1];
    let selector = rsa["name"]
        .as_str()
        .unwrap()
        .strip_suffix("._domainkey.example.com")
        .unwrap();
    assert!(
        selector.starts_with("os") && selector.len() == 10,
        "{selector}"
    );
    assert_eq!(ed["name"], format!("{selector}e._domainkey.example.com"));
    assert!(
        rsa["value"]
            .as_str()
            .unwrap()
            .starts_with("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIB")
    );
    assert!(
        ed["value"]
            .as_str()
            .unwrap()
            .starts_with("v=DKIM1; k=ed25519; p=")
    );

    let spf = record(&domain, "SPF", "TXT");
    assert_eq!(spf["name"], "send.example.com");
    assert_eq!(spf["value"], "v=spf1 include:_spf.relay.test ~all");
    let mx = record(&domain, "SPF", "MX");
    assert_eq!(mx["name"], "send.example.com");
    assert_eq!(mx["value"], "bounces.relay.test");
    assert_eq!(mx["priority"], 10);
    let dmarc = record(&domain, "DMARC", "TXT");
    assert_eq!(dmarc["name"], "_dmarc.example.com");
    assert_eq!(
        dmarc["value"],
        "v=DMARC1; p=none; rua=mailto:dmarc@opensend.test;"
    );
    assert_eq!(dmarc["required"], false);
    let tracking = record(&domain, "Tracking", "CNAME");
    assert_eq!(tracking["name"], "links.example.com");
    assert_eq!(tracking["value"], "track.opensend.test");
    for r in domain["records"].as_array().unwrap() {
        assert_eq!(r["status"], "not_started", "{r}");
        assert_eq!(r["ttl"], "Auto");
    }

    // GET shows the same, and the list has Resend's list item shape.
    let id = domain["id"].as_str().unwrap();
    let (status, fetched) = call(
        &app,
        Method::GET,
        &format!("/api/domains/{id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(fetched["records"], domain["records"]);
    let (_, list) = call(&app, Method::GET, "/domains", &token, None).await;
    assert_eq!(list["object"], "list");
    assert_eq!(list["has_more"], false);
    assert_eq!(list["data"][0]["id"], domain["id"]);
    assert_eq!(list["data"][0]["name"], "example.com");
    assert!(list["data"][0].get("records").is_none());

    // SES delivery: SPF includes amazonses.com and bounces go to the region's feedback host.
    let ses = spawn(
        &dns,
        &[
            ("DELIVERY", "ses"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "not-a-real-secret"),
            ("SPF_INCLUDE", ""),
            ("RETURN_PATH_MX", ""),
        ],
    )
    .await;
    let (_, ses_token) = ses.tenant().await;
    let domain = create(
        &ses,
        &ses_token,
        json!({"name": "example.org", "region": "eu-west-1", "custom_return_path": "bounce"}),
    )
    .await;
    assert_eq!(
        record(&domain, "SPF", "TXT")["value"],
        "v=spf1 include:amazonses.com ~all"
    );
    assert_eq!(record(&domain, "SPF", "TXT")["name"], "bounce.example.org");
    assert_eq!(
        record(&domain, "SPF", "MX")["value"],
        "feedback-smtp.eu-west-1.amazonses.com"
    );
    assert!(records(&domain, "Tracking", "CNAME").is_empty());
}

#[tokio::test]
async fn verification_reports_each_record_and_the_domain_status() {
    let dns = TestDns::start().await;
    let app = spawn(&dns, &[]).await;
    let (_, token) = app.tenant().await;
    let domain = create(
        &app,
        &token,
        json!({"name": "example.com", "tracking_subdomain": "links"}),
    )
    .await;
    let id = domain["id"].as_str().unwrap().to_owned();

    // Nothing published yet.
    let checked = verify(&app, &token, &id).await;
    assert_eq!(checked["status"], "pending", "{checked}");
    for r in checked["records"].as_array().unwrap() {
        assert_eq!(r["status"], "pending", "{r}");
    }

    // Everything published but a wrong SPF and a missing tracking CNAME.
    publish(&dns, &domain);
    dns.set_txt("send.example.com", &["v=spf1 include:elsewhere.test ~all"]);
    dns.remove("links.example.com", RecordType::CNAME);
    let checked = verify(&app, &token, &id).await;
    assert_eq!(checked["status"], "failed", "{checked}");
    let spf = record(&checked, "SPF", "TXT");
    assert_eq!(spf["status"], "failed");
    assert_eq!(spf["found"], "found: v=spf1 include:elsewhere.test ~all");
    assert_eq!(record(&checked, "Tracking", "CNAME")["status"], "pending");
    assert_eq!(record(&checked, "SPF", "MX")["status"], "verified");
    for dkim in records(&checked, "DKIM", "TXT") {
        assert_eq!(dkim["status"], "verified", "{dkim}");
    }

    // Fixed, and DMARC (a recommendation) left out: verified all the same.
    publish(&dns, &domain);
    dns.remove("_dmarc.example.com", RecordType::TXT);
    let checked = verify(&app, &token, &id).await;
    assert_eq!(checked["status"], "verified", "{checked}");
    assert_eq!(record(&checked, "DMARC", "TXT")["status"], "pending");
    assert!(checked["last_checked_at"].as_str().is_some());
    let (_, fetched) = call(&app, Method::GET, &format!("/domains/{id}"), &token, None).await;
    assert_eq!(fetched["status"], "verified");
    assert_eq!(fetched["records"], checked["records"]);

    // A DNS outage does not unverify a verified domain, but is shown per record.
    let mx_name = "send.example.com";
    dns.set(mx_name, RecordType::MX, Answer::ServFail);
    let checked = verify(&app, &token, &id).await;
    assert_eq!(checked["status"], "verified");
    assert_eq!(record(&checked, "SPF", "MX")["status"], "temporary_failure");

    // The DKIM record disappears: a verified domain goes to failed.
    publish(&dns, &domain);
    let rsa_name = records(&domain, "DKIM", "TXT")[0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    dns.remove(&rsa_name, RecordType::TXT);
    let checked = verify(&app, &token, &id).await;
    assert_eq!(checked["status"], "failed", "{checked}");
    assert_eq!(records(&checked, "DKIM", "TXT")[0]["status"], "pending");

    // A new domain whose lookups fail or time out is in temporary failure.
    let other = create(&app, &token, json!({"name": "other.example"})).await;
    let other_id = other["id"].as_str().unwrap();
    publish(&dns, &other);
    dns.set("send.other.example", RecordType::MX, Answer::ServFail);
    let checked = verify(&app, &token, other_id).await;
    assert_eq!(checked["status"], "temporary_failure", "{checked}");
    dns.set("send.other.example", RecordType::MX, Answer::Silence);
    let checked = verify(&app, &token, other_id).await;
    assert_eq!(checked["status"], "temporary_failure", "{checked}");
    assert_eq!(record(&checked, "SPF", "MX")["status"], "temporary_failure");
    publish(&dns, &other);
    assert_eq!(verify(&app, &token, other_id).await["status"], "verified");
}

const MESSAGE: &str = "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: Keys\r\nDate: Fri, 27 Nov 2026 09:00:00 +0000\r\nMessage-ID: <k@example.com>\r\n\r\nSigned with the stored key.\r\n";

#[tokio::test]
async fn the_stored_private_keys_sign_mail_that_the_published_records_verify() {
    let dns = TestDns::start().await;
    let app = spawn(&dns, &[]).await;
    let (org, token) = app.tenant().await;
    let domain = create(&app, &token, json!({"name": "example.com"})).await;
    let id = domain["id"].as_str().unwrap().to_owned();

    // Unverified: the send-time rule refuses it.
    let refused = domains::may_send_as(&app.state, org, "alice@example.com", None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &refused,
            SendAsError::Refused(Refusal::NotVerified {
                status: opensend_core::DomainStatus::NotStarted,
                ..
            })
        ),
        "{refused:?}"
    );
    publish(&dns, &domain);
    assert_eq!(verify(&app, &token, &id).await["status"], "verified");

    let identity = domains::may_send_as(&app.state, org, "alice@example.com", None)
        .await
        .unwrap();
    assert_eq!(identity.domain.as_deref(), Some("example.com"));
    assert!(identity.verified_domain);
    assert_eq!(identity.keys.len(), 2);
    assert_eq!(identity.keys[0].algorithm, DkimAlgorithm::RsaSha256);
    assert_eq!(identity.keys[1].algorithm, DkimAlgorithm::Ed25519Sha256);

    let mut headers = String::new();
    for key in &identity.keys {
        let signature = match key.algorithm {
            DkimAlgorithm::RsaSha256 => {
                DkimSigner::from_key(dkim::load_rsa(&key.private_key).unwrap())
                    .domain("example.com")
                    .selector(key.selector.as_str())
                    .headers(["From", "To", "Subject", "Date", "Message-ID"])
                    .sign(MESSAGE.as_bytes())
                    .unwrap()
            }
            DkimAlgorithm::Ed25519Sha256 => {
                DkimSigner::from_key(dkim::load_ed25519(&key.private_key).unwrap())
                    .domain("example.com")
                    .selector(key.selector.as_str())
                    .headers(["From", "To", "Subject", "Date", "Message-ID"])
                    .sign(MESSAGE.as_bytes())
                    .unwrap()
            }
        };
        headers.push_str(&signature.to_header());
    }
    let signed = format!("{headers}{MESSAGE}");
    let mut ns = NameServerConfig::udp_and_tcp(dns.addr().ip());
    for connection in &mut ns.connections {
        connection.port = dns.addr().port();
    }
    let authenticator = MessageAuthenticator::new(
        ResolverConfig::from_parts(None, vec![], vec![ns]),
        ResolverOpts::default(),
    )
    .unwrap();
    let message = AuthenticatedMessage::parse(signed.as_bytes()).unwrap();
    let results = authenticator.verify_dkim(&message).await;
    assert_eq!(results.len(), 2);
    for result in &results {
        assert_eq!(result.result(), &DkimResult::Pass, "{result:?}");
    }

    // No column of any key row holds the private key in clear; the sealed form names our key and opens only
    // with it.
    let db = Database::connect(app.db.url()).await.unwrap();
    let rows = dkim_key::Entity::find().all(&db).await.unwrap();
    assert_eq!(rows.len(), 2);
    let secrets = SecretBox::from_hex(KEY).unwrap();
    let wrong = SecretBox::from_hex(&KEY.replace('5', "6")).unwrap();
    for row in &rows {
        let plain = secrets
            .open(domains::DKIM_SEAL_PURPOSE, &row.private_key_sealed)
            .unwrap();
        let plain = opensend_core::secret_box::expose(&plain).to_vec();
        assert!(plain.len() > 40);
        let plain_hex = hex_lower(&plain);
        // The sealed column shares no 32-byte run with the key (an RSA private key contains its public modulus,
        // so the public key column is only checked for the whole private key).
        assert!(
            !row.private_key_sealed
                .windows(32)
                .any(|w| plain.windows(32).any(|p| p == w)),
            "plaintext key bytes stored"
        );
        assert!(
            !row.public_key
                .windows(plain.len())
                .any(|w| w == plain.as_slice())
        );
        for text in [&row.selector, &row.algorithm, &row.state] {
            assert!(!text.contains(&plain_hex[..64]));
        }
        assert_eq!(&row.private_key_sealed[1..9], &secrets.key_id().0);
        assert!(
            wrong
                .open(domains::DKIM_SEAL_PURPOSE, &row.private_key_sealed)
                .is_err()
        );
    }
    let domain_rows = domain::Entity::find().all(&db).await.unwrap();
    for row in &domain_rows {
        assert!(!format!("{row:?}").contains("PRIVATE"));
    }
    let _ = db.close().await;
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn bad_input_is_a_422_and_writes_nothing() {
    let dns = TestDns::start().await;
    let app = spawn(&dns, &[]).await;
    let (_, token) = app.tenant().await;
    let long = format!("{}.com", "a".repeat(300));
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "missing_required_field"),
        (json!({"name": ""}), "validation_error"),
        (json!({"name": "localhost"}), "validation_error"),
        (json!({"name": "127.0.0.1"}), "validation_error"),
        (json!({"name": "[::1]"}), "validation_error"),
        (json!({"name": "../etc/passwd"}), "validation_error"),
        (json!({"name": "https://example.com/"}), "validation_error"),
        (json!({"name": "me@example.com"}), "validation_error"),
        (json!({"name": long}), "validation_error"),
        (json!({"name": "a..example.com"}), "validation_error"),
        (json!({"name": "exa_mple.com"}), "validation_error"),
        (json!({"name": "example.com.."}), "validation_error"),
        (json!({"name": 42}), "validation_error"),
        (
            json!({"name": "example.com", "region": "mars-1"}),
            "validation_error",
        ),
        (
            json!({"name": "example.com", "tls": "required"}),
            "validation_error",
        ),
        (
            json!({"name": "example.com", "custom_return_path": "a.b"}),
            "validation_error",
        ),
        (
            json!({"name": "example.com", "custom_return_path": "1st"}),
            "validation_error",
        ),
        (
            json!({"name": "example.com", "tracking_subdomain": "-x"}),
            "validation_error",
        ),
        (
            json!({"name": "example.com", "tracking_subdomain": "send"}),
            "validation_error",
        ),
        (
            json!({"name": "example.com", "capabilities": {"sending": "on"}}),
            "validation_error",
        ),
        (
            json!({"name": "example.com", "capabilities": {"sending": "disabled"}}),
            "validation_error",
        ),
        (
            json!({"name": "example.com", "open_tracking": "yes"}),
            "validation_error",
        ),
    ];
    for (body, name) in cases {
        let response = app
            .authed(Method::POST, "/domains", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let error = expect_error(response, 422, name).await;
        assert!(!error["message"].as_str().unwrap().is_empty(), "{body}");
    }
    let response = app
        .authed(Method::POST, "/domains", &token)
        .header("content-type", "application/json")
        .body("{\"name\":")
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "invalid_json").await;
    assert_eq!(count(&app, domain::Entity).await, 0);
    assert_eq!(count(&app, dkim_key::Entity).await, 0);

    // Unicode names are stored as A-labels; the same name again (in any spelling) is refused.
    let idn = create(&app, &token, json!({"name": "Bücher.Example"})).await;
    assert_eq!(idn["name"], "xn--bcher-kva.example");
    for again in [
        "xn--bcher-kva.example",
        "BÜCHER.example.",
        " bücher.example ",
    ] {
        let response = app
            .authed(Method::POST, "/domains", &token)
            .json(&json!({"name": again}))
            .send()
            .await
            .unwrap();
        let error = expect_error(response, 422, "validation_error").await;
        assert!(
            error["message"].as_str().unwrap().contains("already"),
            "{error}"
        );
    }
    assert_eq!(count(&app, domain::Entity).await, 1);
    assert_eq!(count(&app, dkim_key::Entity).await, 2);

    // Another organization may add the same name, with its own selector.
    let (_, other_token) = app.tenant().await;
    let theirs = create(&app, &other_token, json!({"name": "bücher.example"})).await;
    assert_ne!(theirs["id"], idn["id"]);
    assert_ne!(
        records(&theirs, "DKIM", "TXT")[0]["name"],
        records(&idn, "DKIM", "TXT")[0]["name"]
    );

    // PATCH validates too, and changes nothing on failure.
    let id = idn["id"].as_str().unwrap();
    for body in [
        json!({"tls": "sometimes"}),
        json!({"tracking_subdomain": "a b"}),
        json!({"capabilities": {"sending": "disabled"}}),
        json!({"click_tracking": 1}),
    ] {
        let response = app
            .authed(Method::PATCH, &format!("/domains/{id}"), &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(response, 422, "validation_error").await;
    }
    let (_, after) = call(&app, Method::GET, &format!("/domains/{id}"), &token, None).await;
    assert_eq!(after["tls"], "opportunistic");
    assert_eq!(after["capabilities"]["sending"], "enabled");

    let response = app
        .authed(Method::GET, "/domains/not-a-uuid", &token)
        .send()
        .await
        .unwrap();
    expect_error(response, 422, "invalid_parameter").await;
}

#[tokio::test]
async fn another_organizations_domain_is_not_found_in_every_route() {
    let dns = TestDns::start().await;
    let app = spawn(&dns, &[]).await;
    let (_, owner) = app.tenant().await;
    let (_, stranger) = app.tenant().await;
    let domain = create(&app, &owner, json!({"name": "example.com"})).await;
    let id = domain["id"].as_str().unwrap();
    let missing = uuid::Uuid::now_v7().to_string();
    for target in [id, missing.as_str()] {
        for (method, path, body) in [
            (Method::GET, format!("/domains/{target}"), None),
            (
                Method::PATCH,
                format!("/domains/{target}"),
                Some(json!({"open_tracking": true})),
            ),
            (Method::DELETE, format!("/domains/{target}"), None),
            (Method::POST, format!("/domains/{target}/verify"), None),
            (Method::POST, format!("/domains/{target}/rotate-dkim"), None),
            (Method::GET, format!("/api/domains/{target}"), None),
        ] {
            let mut request = app.authed(method.clone(), &path, &stranger);
            if let Some(body) = body {
                request = request.json(&body);
            }
            expect_error(request.send().await.unwrap(), 404, "not_found").await;
        }
    }
    let (_, list) = call(&app, Method::GET, "/domains", &stranger, None).await;
    assert_eq!(list["data"], json!([]));
    // Untouched for its owner.
    let (status, still) = call(&app, Method::GET, &format!("/domains/{id}"), &owner, None).await;
    assert_eq!(status, 200);
    assert_eq!(still["open_tracking"], false);
    assert_eq!(still["status"], "not_started");
    assert_eq!(count(&app, dkim_key::Entity).await, 2);

    // A sending key cannot manage domains.
    let org = app.organization("Senders").await;
    let (_, sender) = app.key(org, Permission::SendingAccess).await;
    let response = app
        .authed(Method::GET, "/domains", &sender)
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "restricted_api_key").await;
}

#[tokio::test]
async fn update_delete_and_paging() {
    let dns = TestDns::start().await;
    let app = spawn(&dns, &[]).await;
    let (_, token) = app.tenant().await;
    let mut ids = Vec::new();
    for name in ["a.example", "b.example", "c.example"] {
        ids.push(
            create(&app, &token, json!({"name": name})).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let (_, page) = call(&app, Method::GET, "/domains?limit=2", &token, None).await;
    assert_eq!(page["has_more"], true);
    assert_eq!(page["data"][0]["id"], ids[2]);
    let (_, rest) = call(
        &app,
        Method::GET,
        &format!("/domains?limit=2&after={}", ids[1]),
        &token,
        None,
    )
    .await;
    assert_eq!(rest["has_more"], false);
    assert_eq!(rest["data"][0]["id"], ids[0]);

    let id = &ids[0];
    let (status, body) = call(
        &app,
        Method::PATCH,
        &format!("/domains/{id}"),
        &token,
        Some(json!({"open_tracking": true, "click_tracking": true, "tracking_subdomain": "t", "tls": "enforced", "capabilities": {"receiving": "enabled"}, "allow_subdomains": true})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"object": "domain", "id": id}));
    let (_, updated) = call(&app, Method::GET, &format!("/domains/{id}"), &token, None).await;
    assert_eq!(updated["open_tracking"], true);
    assert_eq!(updated["click_tracking"], true);
    assert_eq!(updated["tls"], "enforced");
    assert_eq!(updated["allow_subdomains"], true);
    assert_eq!(
        updated["capabilities"],
        json!({"sending": "enabled", "receiving": "enabled"})
    );
    assert_eq!(record(&updated, "Tracking", "CNAME")["name"], "t.a.example");

    call(
        &app,
        Method::PATCH,
        &format!("/domains/{id}"),
        &token,
        Some(json!({"tracking_subdomain": null})),
    )
    .await;
    let (_, updated) = call(&app, Method::GET, &format!("/domains/{id}"), &token, None).await;
    assert!(updated.get("tracking_subdomain").is_none(), "{updated}");
    assert!(records(&updated, "Tracking", "CNAME").is_empty());

    let (status, deleted) = call(
        &app,
        Method::DELETE,
        &format!("/domains/{id}"),
        &token,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        deleted,
        json!({"object": "domain", "id": id, "deleted": true})
    );
    let response = app
        .authed(Method::GET, &format!("/domains/{id}"), &token)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
    assert_eq!(
        count(&app, dkim_key::Entity).await,
        4,
        "the deleted domain's keys are gone"
    );
}

#[tokio::test]
async fn rotating_dkim_switches_keys_once_the_new_records_verify() {
    let dns = TestDns::start().await;
    let app = spawn(&dns, &[]).await;
    let (org, token) = app.tenant().await;
    let domain = create(&app, &token, json!({"name": "example.com"})).await;
    let id = domain["id"].as_str().unwrap().to_owned();
    publish(&dns, &domain);
    assert_eq!(verify(&app, &token, &id).await["status"], "verified");
    let old_selector = domains::may_send_as(&app.state, org, "a@example.com", None)
        .await
        .unwrap()
        .keys[0]
        .selector
        .clone();

    let (status, rotated) = call(
        &app,
        Method::POST,
        &format!("/domains/{id}/rotate-dkim"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let dkim = records(&rotated, "DKIM", "TXT");
    assert_eq!(dkim.len(), 4);
    assert_eq!(dkim.iter().filter(|r| r["required"] == false).count(), 2);
    let (status, again) = call(
        &app,
        Method::POST,
        &format!("/domains/{id}/rotate-dkim"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 422, "{again}");

    // Old records only: still verified, still signing with the old key.
    let checked = verify(&app, &token, &id).await;
    assert_eq!(checked["status"], "verified");
    let identity = domains::may_send_as(&app.state, org, "a@example.com", None)
        .await
        .unwrap();
    assert_eq!(identity.keys[0].selector, old_selector);

    // New records published: the new keys take over and the old records are no longer listed.
    publish(&dns, &rotated);
    let checked = verify(&app, &token, &id).await;
    assert_eq!(checked["status"], "verified");
    let identity = domains::may_send_as(&app.state, org, "a@example.com", None)
        .await
        .unwrap();
    assert_ne!(identity.keys[0].selector, old_selector);
    let dkim = records(&checked, "DKIM", "TXT");
    assert_eq!(dkim.len(), 2, "{checked}");
    assert!(dkim.iter().all(|r| {
        !r["name"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{old_selector}."))
    }));
}

#[tokio::test]
async fn the_background_job_rechecks_due_domains_once() {
    let dns = TestDns::start().await;
    let app = spawn(&dns, &[]).await;
    let (_, token) = app.tenant().await;
    let domain = create(&app, &token, json!({"name": "example.com"})).await;
    let id = domain["id"].as_str().unwrap().to_owned();
    // Never verified: the job leaves it alone.
    let later = Utc::now() + TimeDelta::days(30);
    assert_eq!(
        opensend_server::jobs::domain_checks::run_due(&app.state, later, 500)
            .await
            .unwrap(),
        0
    );

    publish(&dns, &domain);
    assert_eq!(verify(&app, &token, &id).await["status"], "verified");
    // Not due for a day.
    assert_eq!(
        opensend_server::jobs::domain_checks::run_due(&app.state, Utc::now(), 500)
            .await
            .unwrap(),
        0
    );

    // The DKIM record disappears; the daily check, run by two processes at once, checks it once.
    let rsa_name = records(&domain, "DKIM", "TXT")[0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    dns.remove(&rsa_name, RecordType::TXT);
    let tomorrow = Utc::now() + TimeDelta::hours(25);
    let (a, b) = tokio::join!(
        opensend_server::jobs::domain_checks::run_due(&app.state, tomorrow, 500),
        opensend_server::jobs::domain_checks::run_due(&app.state, tomorrow, 500)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    let (_, fetched) = call(&app, Method::GET, &format!("/domains/{id}"), &token, None).await;
    assert_eq!(fetched["status"], "failed", "{fetched}");
    assert_eq!(
        opensend_server::jobs::domain_checks::run_due(&app.state, tomorrow, 500)
            .await
            .unwrap(),
        0,
        "idempotent"
    );

    // Published again: the next due check (failed domains are re-checked every 6 hours) restores it.
    publish(&dns, &domain);
    let after = tomorrow + TimeDelta::hours(7);
    assert_eq!(
        opensend_server::jobs::domain_checks::run_due(&app.state, after, 500)
            .await
            .unwrap(),
        1
    );
    let (_, fetched) = call(&app, Method::GET, &format!("/domains/{id}"), &token, None).await;
    assert_eq!(fetched["status"], "verified");
}

#[tokio::test]
async fn sending_rules_for_subdomains_capture_and_restricted_keys() {
    let dns = TestDns::start().await;
    let app = spawn(&dns, &[]).await;
    let (org, token) = app.tenant().await;
    let domain = create(&app, &token, json!({"name": "example.com"})).await;
    let id = domain["id"].as_str().unwrap().to_owned();
    publish(&dns, &domain);
    verify(&app, &token, &id).await;

    let refusal = |r: Result<domains::SendingIdentity, SendAsError>| match r {
        Err(SendAsError::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(matches!(
        refusal(domains::may_send_as(&app.state, org, "a@news.example.com", None).await),
        Refusal::SubdomainNotAllowed { .. }
    ));
    assert!(matches!(
        refusal(domains::may_send_as(&app.state, org, "a@badexample.com", None).await),
        Refusal::UnknownDomain(_)
    ));
    assert!(matches!(
        refusal(domains::may_send_as(&app.state, org, "not-an-address", None).await),
        Refusal::InvalidAddress(_)
    ));
    let (other_org, _) = app.tenant().await;
    assert!(matches!(
        refusal(domains::may_send_as(&app.state, other_org, "a@example.com", None).await),
        Refusal::UnknownDomain(_)
    ));
    let other_domain = uuid::Uuid::now_v7();
    assert_eq!(
        refusal(domains::may_send_as(&app.state, org, "a@example.com", Some(other_domain)).await),
        Refusal::RestrictedKey
    );
    call(
        &app,
        Method::PATCH,
        &format!("/domains/{id}"),
        &token,
        Some(json!({"allow_subdomains": true})),
    )
    .await;
    let identity = domains::may_send_as(&app.state, org, "a@news.example.com", None)
        .await
        .unwrap();
    assert_eq!(identity.domain.as_deref(), Some("example.com"));
    let parsed_id: uuid::Uuid = id.parse().unwrap();
    assert_eq!(identity.domain_id, Some(parsed_id));

    // Capture delivery accepts any From, marked as an unverified domain.
    let capture = spawn(&dns, &[("DELIVERY", "capture")]).await;
    let (capture_org, _) = capture.tenant().await;
    let identity = domains::may_send_as(&capture.state, capture_org, "x@anything.example", None)
        .await
        .unwrap();
    assert!(!identity.verified_domain);
    assert!(identity.keys.is_empty());
    assert_eq!(identity.domain_id, None);
}

#[tokio::test]
async fn api_key_domain_restrictions_must_name_a_domain_of_the_organization() {
    let dns = TestDns::start().await;
    let app = spawn(&dns, &[]).await;
    let (org, token) = app.tenant().await;
    let (other_org, other_token) = app.tenant().await;
    let mine = create(&app, &token, json!({"name": "example.com"})).await;
    let theirs = create(&app, &other_token, json!({"name": "example.net"})).await;
    let keys_before = app
        .store
        .api_keys()
        .list(org, Default::default())
        .await
        .unwrap()
        .items
        .len();

    for domain_id in [theirs["id"].clone(), json!(uuid::Uuid::now_v7())] {
        let response = app
            .authed(Method::POST, "/api-keys", &token)
            .json(&json!({"name": "restricted", "permission": "sending_access", "domain_id": domain_id}))
            .send()
            .await
            .unwrap();
        expect_error(response, 422, "validation_error").await;
    }
    assert_eq!(
        app.store
            .api_keys()
            .list(org, Default::default())
            .await
            .unwrap()
            .items
            .len(),
        keys_before
    );
    let (status, created) = call(
        &app,
        Method::POST,
        "/api-keys",
        &token,
        Some(
            json!({"name": "restricted", "permission": "sending_access", "domain_id": mine["id"]}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");

    let theirs_id: uuid::Uuid = theirs["id"].as_str().unwrap().parse().unwrap();
    let error = opensend_server::admin::create_api_key(
        &app.store,
        org,
        "cli",
        Permission::SendingAccess,
        Some(theirs_id),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            error,
            opensend_server::admin::AdminError::NoSuchDomain { .. }
        ),
        "{error}"
    );
    opensend_server::admin::create_api_key(
        &app.store,
        other_org,
        "cli",
        Permission::SendingAccess,
        Some(theirs_id),
    )
    .await
    .unwrap();
}

/// Sending domains are cached per organization by every node (`Domains::sending_domains`). Another node
/// caching with a TTL far longer than the test must still refuse a domain deleted through the first node,
/// for every send that starts more than `CACHE_EPOCH_CHECK_INTERVAL_MS` after the deletion was answered,
/// and the node that deleted it at once.
#[tokio::test]
async fn a_domain_deleted_through_one_node_is_refused_by_another_within_the_epoch_interval() {
    const INTERVAL_MS: u64 = 200;
    let dns = TestDns::start().await;
    let app = spawn(&dns, &[]).await;
    let resolver = dns.addr().to_string();
    let interval = INTERVAL_MS.to_string();
    // An API node: two processes writing one SQLite file at once is not a deployment (SQLite is the
    // single-process default), and this one only needs to read.
    let other = app
        .another_node_with(
            Roles::API,
            &[
                ("DNS_RESOLVER", resolver.as_str()),
                ("WEBHOOK_SECRET_ENCRYPTION_KEY", KEY),
                ("DELIVERY", "smtp"),
                ("SMTP_URL", "smtp://127.0.0.1:9?tls=none"),
                ("AUTH_CACHE_TTL_MS", "3600000"),
                ("CACHE_EPOCH_CHECK_INTERVAL_MS", interval.as_str()),
            ],
        )
        .await;
    let (_, token) = app.tenant().await;
    let domain = create(&app, &token, json!({"name": "example.com"})).await;
    let id = domain["id"].as_str().unwrap().to_owned();
    publish(&dns, &domain);
    assert_eq!(verify(&app, &token, &id).await["status"], "verified");

    let email = json!({"from": "Alice <alice@example.com>", "to": "bob@example.net",
        "subject": "Hi", "text": "Hello"});
    let send_on = |api: &str| {
        app.client
            .post(format!("{api}/emails"))
            .bearer_auth(&token)
            .json(&email)
            .send()
    };
    // The domain is now in the other node's cache.
    for _ in 0..2 {
        let (status, body) = json(send_on(&other.api).await.unwrap()).await;
        assert_eq!(status, 200, "{body}");
    }

    let deleted = call(
        &app,
        Method::DELETE,
        &format!("/domains/{id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(deleted.0, 200, "{}", deleted.1);
    // On the node that deleted it, at once.
    expect_error(
        send_on(&app.api).await.unwrap(),
        422,
        "invalid_from_address",
    )
    .await;
    // On the other, after the bound and nothing more.
    tokio::time::sleep(std::time::Duration::from_millis(INTERVAL_MS)).await;
    expect_error(
        send_on(&other.api).await.unwrap(),
        422,
        "invalid_from_address",
    )
    .await;
}
