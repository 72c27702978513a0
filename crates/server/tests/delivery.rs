//! Delivery through SMTP into a real server on loopback (aiosmtpd), from a domain verified against a DNS
//! server the test controls: envelope, MIME, and DKIM signatures checked by two verifiers (mail-auth and
//! dkimpy).

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{TestApp, json};
use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};
use opensend_core::RecipientStatus;
use opensend_server::serve::Roles;
use opensend_test_support::dns::TestDns;
use opensend_test_support::peers::{SmtpSink, peer_available, peers_dir};
use reqwest::Method;
use serde_json::{Value, json};

/// A deployment delivering over SMTP to `sink`, resolving DNS through `dns`, with a verified
/// `example.com`. Returns the app, a key, and the published TXT records.
async fn verified_sender(
    dns: &TestDns,
    sink: &SmtpSink,
    extra: &[(&str, &str)],
) -> (TestApp, String, BTreeMap<String, String>) {
    let resolver = dns.addr().to_string();
    let smtp = sink.url("");
    let mut vars = vec![
        ("DNS_RESOLVER", resolver.as_str()),
        ("DNS_TIMEOUT_SECONDS", "1"),
        ("DELIVERY", "smtp"),
        ("SMTP_URL", smtp.as_str()),
        ("SPF_INCLUDE", "ip4:127.0.0.1"),
        ("RETURN_PATH_MX", "bounces.example.net"),
    ];
    vars.extend_from_slice(extra);
    let app = TestApp::spawn_with(&vars).await;
    let (_, token) = app.tenant().await;
    let (status, domain) = json(
        app.authed(Method::POST, "/domains", &token)
            .json(&json!({"name": "example.com"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{domain}");
    let mut txt = BTreeMap::new();
    for record in domain["records"].as_array().unwrap() {
        let name = record["name"].as_str().unwrap();
        let value = record["value"].as_str().unwrap();
        match record["type"].as_str().unwrap() {
            "TXT" => {
                dns.set_txt(name, &[value]);
                txt.insert(name.to_owned(), value.to_owned());
            }
            "MX" => dns.set_mx(name, 10, value),
            "CNAME" => dns.set_cname(name, value),
            other => panic!("unexpected record type {other}"),
        }
    }
    let id = domain["id"].as_str().unwrap();
    let (status, verified) = json(
        app.authed(Method::POST, &format!("/domains/{id}/verify"), &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, verified["status"].as_str()),
        (200, Some("verified")),
        "{verified}"
    );
    (app, token, txt)
}

#[tokio::test]
async fn signed_mail_reaches_every_envelope_recipient() {
    if !peer_available("signed_mail_reaches_every_envelope_recipient", "aiosmtpd")
        || !peer_available("signed_mail_reaches_every_envelope_recipient", "dkim")
    {
        return;
    }
    let dns = TestDns::start().await;
    let sink = SmtpSink::start(&[]);
    let (app, token, txt) = verified_sender(&dns, &sink, &[]).await;

    let (status, sent) = app
        .send(
            &token,
            &json!({
                "from": "Example Sender <hello@example.com>",
                "to": ["jane@receiver.test"],
                "cc": "carol@receiver.test",
                "bcc": "audit@receiver.test",
                "subject": "Überraschung",
                "html": "<p>Hello</p>",
                "text": "Hello",
                "attachments": [{"filename": "a.txt", "content": "aGVsbG8="}],
            }),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    let id = sent["id"].as_str().unwrap();
    let email = app.wait_for_status(&token, id, "sent").await;
    assert_eq!(email["unverified_sender"], false);
    assert!(email["raw"].is_null(), "only capture keeps the message");

    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    let received = &messages[0];
    assert_eq!(received.mail_from, "hello@example.com");
    let mut rcpt = received.rcpt_tos.clone();
    rcpt.sort();
    assert_eq!(
        rcpt,
        [
            "audit@receiver.test",
            "carol@receiver.test",
            "jane@receiver.test"
        ]
    );
    let text = String::from_utf8_lossy(&received.data);
    assert!(
        !text.to_ascii_lowercase().contains("audit@receiver.test"),
        "Bcc is envelope only"
    );
    assert!(text.contains("Subject: =?utf-8?"));
    assert_eq!(
        text.matches("DKIM-Signature:").count(),
        2,
        "RSA and Ed25519"
    );
    assert!(text.contains("d=example.com"));

    // mail-auth, resolving through the test's DNS server.
    let mut ns = NameServerConfig::udp_and_tcp(dns.addr().ip());
    for connection in &mut ns.connections {
        connection.port = dns.addr().port();
    }
    let authenticator = MessageAuthenticator::new(
        ResolverConfig::from_parts(None, vec![], vec![ns]),
        ResolverOpts::default(),
    )
    .unwrap();
    let parsed = AuthenticatedMessage::parse(&received.data).unwrap();
    let results = authenticator.verify_dkim(&parsed).await;
    assert_eq!(results.len(), 2);
    for result in &results {
        assert_eq!(result.result(), &DkimResult::Pass, "{result:?}");
    }

    // dkimpy, an independent implementation, with the published records.
    let dir = tempfile::tempdir().unwrap();
    let message_path = dir.path().join("message.eml");
    let records_path = dir.path().join("records.json");
    std::fs::write(&message_path, &received.data).unwrap();
    std::fs::write(&records_path, serde_json::to_vec(&txt).unwrap()).unwrap();
    let output = Command::new("python3")
        .arg(peers_dir().join("dkim_verify.py"))
        .arg(&message_path)
        .arg(&records_path)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "dkimpy: {report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report.matches("pass").count(), 2, "{report}");

    // A tampered copy fails both ways.
    let tampered = String::from_utf8_lossy(&received.data).replace("Hello", "Hullo");
    std::fs::write(&message_path, tampered.as_bytes()).unwrap();
    let output = Command::new("python3")
        .arg(peers_dir().join("dkim_verify.py"))
        .arg(&message_path)
        .arg(&records_path)
        .output()
        .unwrap();
    assert!(!output.status.success());

    // Recipient results are recorded.
    let recipients = app
        .store
        .emails()
        .recipients(id.parse().unwrap())
        .await
        .unwrap();
    assert!(
        recipients
            .iter()
            .all(|r| r.status == RecipientStatus::Accepted
                && r.response.as_deref().is_some_and(|s| s.starts_with("250"))),
        "{recipients:?}"
    );
}

#[tokio::test]
async fn refused_and_unreachable_recipients() {
    if !peer_available("refused_and_unreachable_recipients", "aiosmtpd") {
        return;
    }
    let dns = TestDns::start().await;
    let sink = SmtpSink::start(&[]);
    let (app, token, _) = verified_sender(&dns, &sink, &[]).await;

    // One recipient refused with 550: the other still gets it; the refusal is recorded.
    let (_, partly) = app
        .send(&token, &json!({"from": "hello@example.com", "to": ["ok@receiver.test", "reject-550@receiver.test"], "subject": "s", "text": "t"}))
        .await;
    let id = partly["id"].as_str().unwrap();
    app.wait_for_status(&token, id, "sent").await;
    let recipients = app
        .store
        .emails()
        .recipients(id.parse().unwrap())
        .await
        .unwrap();
    let of = |a: &str| {
        recipients
            .iter()
            .find(|r| r.address.as_str() == a)
            .unwrap()
            .clone()
    };
    assert_eq!(of("ok@receiver.test").status, RecipientStatus::Accepted);
    assert_eq!(
        of("reject-550@receiver.test").status,
        RecipientStatus::Rejected
    );
    assert!(
        of("reject-550@receiver.test")
            .response
            .unwrap()
            .starts_with("550")
    );

    // Every recipient refused permanently: the email fails at once, with an event.
    let (_, refused) = app
        .send(&token, &json!({"from": "hello@example.com", "to": "reject-550@receiver.test", "subject": "s", "text": "t"}))
        .await;
    let id = refused["id"].as_str().unwrap();
    app.wait_for_status(&token, id, "failed").await;
    let org = app
        .store
        .emails()
        .get_for_delivery(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .summary
        .organization_id;
    let events: Vec<String> = app
        .store
        .emails()
        .events(org, id.parse().unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(events, ["email.queued", "email.failed"]);

    // Deferred (450): stays queued, retried later with the error noted.
    let (_, deferred) = app
        .send(&token, &json!({"from": "hello@example.com", "to": "defer-450@receiver.test", "subject": "s", "text": "t"}))
        .await;
    let id: uuid::Uuid = deferred["id"].as_str().unwrap().parse().unwrap();
    let mut job = None;
    for _ in 0..100 {
        job = app.store.delivery_queue().job_for(id).await.unwrap();
        if job.as_ref().is_some_and(|j| j.last_error.is_some()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let job = job.expect("still queued");
    assert!(
        job.last_error.as_deref().unwrap().contains("450"),
        "{job:?}"
    );
    assert!(
        job.run_at > chrono::Utc::now() + chrono::TimeDelta::seconds(20),
        "retried later: {job:?}"
    );
    assert_eq!(job.attempts, 1);
    let email: Value = json(
        app.authed(Method::GET, &format!("/emails/{id}"), &token)
            .send()
            .await
            .unwrap(),
    )
    .await
    .1;
    assert_eq!(email["last_event"], "queued");
}

/// The events of email `id`, oldest first, with their data.
async fn events_of(app: &TestApp, id: &str) -> Vec<(String, String)> {
    let id: uuid::Uuid = id.parse().unwrap();
    let email = app
        .store
        .emails()
        .get_for_delivery(id)
        .await
        .unwrap()
        .unwrap();
    app.store
        .emails()
        .events(email.summary.organization_id, id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.event_type, e.data.to_string()))
        .collect()
}

/// An `api` process configured for capture accepts mail from a domain nobody verified (as capture allows);
/// a worker of the same deployment with a real transport must not send it: the email fails with the reason
/// and nothing reaches the relay. The same holds for a deployment switched from capture to SMTP with such
/// mail still queued, which is the same situation seen from the queue.
#[tokio::test]
async fn a_real_transport_never_delivers_mail_accepted_without_a_verified_domain() {
    if !peer_available(
        "a_real_transport_never_delivers_mail_accepted_without_a_verified_domain",
        "aiosmtpd",
    ) {
        return;
    }
    let sink = SmtpSink::start(&[]);
    let app = TestApp::spawn_roles(Roles::API, &[("DELIVERY", "capture")]).await;
    let (_, token) = app.tenant().await;
    let (status, sent) = app
        .send(
            &token,
            &json!({"from": "hello@never-verified.test", "to": "jane@receiver.test", "subject": "s", "text": "t"}),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    let id = sent["id"].as_str().unwrap();
    let (_, email) = json(
        app.authed(Method::GET, &format!("/emails/{id}"), &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(email["unverified_sender"], true, "{email}");
    assert_eq!(
        email["last_event"], "queued",
        "no worker in the api process"
    );

    let smtp = sink.url("");
    let _worker = app
        .another_node_with(
            Roles::WORKER,
            &[("DELIVERY", "smtp"), ("SMTP_URL", smtp.as_str())],
        )
        .await;
    app.wait_for_status(&token, id, "failed").await;
    assert!(sink.messages().is_empty(), "nothing may leave unsigned");
    let events = events_of(&app, id).await;
    let (kind, data) = events.last().unwrap();
    assert_eq!(kind, "email.failed");
    assert!(
        data.contains("never-verified.test domain is not verified"),
        "{data}"
    );
}

/// A verified domain whose signing keys are gone (damaged or hand-edited data) sends nothing unsigned.
#[tokio::test]
async fn a_real_transport_never_sends_unsigned_mail() {
    if !peer_available("a_real_transport_never_sends_unsigned_mail", "aiosmtpd") {
        return;
    }
    use sea_orm::ConnectionTrait;
    let dns = TestDns::start().await;
    let sink = SmtpSink::start(&[]);
    let (app, token, _) = verified_sender(&dns, &sink, &[]).await;
    let db = sea_orm::Database::connect(app.db.url()).await.unwrap();
    db.execute_unprepared("DELETE FROM domain_dkim_keys")
        .await
        .unwrap();
    db.close().await.unwrap();

    let (status, sent) = app
        .send(
            &token,
            &json!({"from": "hello@example.com", "to": "jane@receiver.test", "subject": "s", "text": "t"}),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    let id = sent["id"].as_str().unwrap();
    app.wait_for_status(&token, id, "failed").await;
    assert!(sink.messages().is_empty());
    let events = events_of(&app, id).await;
    assert!(
        events.last().is_some_and(
            |(kind, data)| kind == "email.failed" && data.contains("no active DKIM key")
        ),
        "{events:?}"
    );
}
