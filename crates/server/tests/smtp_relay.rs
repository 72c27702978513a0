//! The SMTP submission relay over real sockets: STARTTLS and implicit TLS, AUTH with an API key, every
//! envelope recipient reached with Bcc hidden, the API's rules (From, quotas, idempotency), limits, and a
//! client gone before the end of its message. Real clients (Python's smtplib, swaks) run from here too.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{TestApp, free_port};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor, address::Envelope};
use opensend_core::Permission;
use reqwest::Method;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A certificate for `localhost` in PEM files the server reads, and a client that trusts it.
struct Certs {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    connector: TlsConnector,
}

fn certs() -> Certs {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(made.cert.der().clone()).unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Certs {
        _dir: dir,
        cert,
        key,
        connector: TlsConnector::from(Arc::new(config)),
    }
}

struct Relay {
    app: TestApp,
    certs: Certs,
    starttls: SocketAddr,
    implicit: SocketAddr,
}

/// A server with both relay ports on and `extra` settings.
async fn relay(extra: &[(&str, &str)]) -> Relay {
    let certs = certs();
    let (smtp, smtps) = (free_port().to_string(), free_port().to_string());
    let (cert, key) = (
        certs.cert.display().to_string(),
        certs.key.display().to_string(),
    );
    let mut vars = vec![
        ("SMTP_PORT", smtp.as_str()),
        ("SMTPS_PORT", smtps.as_str()),
        ("SMTP_TLS_CERT", cert.as_str()),
        ("SMTP_TLS_KEY", key.as_str()),
    ];
    vars.extend_from_slice(extra);
    let app = TestApp::spawn_with(&vars).await;
    let starttls = app.smtp.submission.expect("SMTP_PORT listens");
    let implicit = app.smtp.submission_tls.expect("SMTPS_PORT listens");
    Relay {
        app,
        certs,
        starttls,
        implicit,
    }
}

/// A bare SMTP client: each call sends what it is given and reads one reply.
struct Client {
    io: BufReader<Box<dyn Io>>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut client = Client {
            io: BufReader::new(Box::new(stream)),
        };
        assert_eq!(client.reply().await.0, 220);
        client
    }

    async fn connect_tls(addr: SocketAddr, certs: &Certs) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let tls = certs.connector.connect(name, stream).await.unwrap();
        let mut client = Client {
            io: BufReader::new(Box::new(tls)),
        };
        assert_eq!(client.reply().await.0, 220);
        client
    }

    /// EHLO, STARTTLS, and the handshake; the caller says EHLO again.
    async fn starttls(mut self, certs: &Certs) -> Self {
        assert_eq!(self.command("EHLO client.test").await.0, 250);
        assert_eq!(self.command("STARTTLS").await.0, 220);
        let name = ServerName::try_from("localhost").unwrap();
        let tls = certs
            .connector
            .connect(name, self.io.into_inner())
            .await
            .unwrap();
        Client {
            io: BufReader::new(Box::new(tls)),
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.io.get_mut().write_all(bytes).await.unwrap();
        self.io.get_mut().flush().await.unwrap();
    }

    async fn command(&mut self, line: &str) -> (u16, String) {
        self.write(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// One reply: its code and its lines' text joined by newlines. `(0, "")` once the server closed.
    async fn reply(&mut self) -> (u16, String) {
        let mut text = Vec::new();
        loop {
            let mut line = String::new();
            if self.io.read_line(&mut line).await.unwrap_or(0) == 0 {
                return (0, text.join("\n"));
            }
            let code = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            text.push(line.get(4..).unwrap_or("").trim_end().to_owned());
            if line.as_bytes().get(3) != Some(&b'-') {
                return (code, text.join("\n"));
            }
        }
    }

    /// EHLO and AUTH PLAIN with `token`.
    async fn login(&mut self, token: &str) -> (u16, String) {
        assert_eq!(self.command("EHLO client.test").await.0, 250);
        let plain = STANDARD.encode(format!("\0resend\0{token}"));
        self.command(&format!("AUTH PLAIN {plain}")).await
    }

    /// A whole transaction; the reply to the message.
    async fn send(&mut self, from: &str, to: &[&str], message: &str) -> (u16, String) {
        assert_eq!(self.command(&format!("MAIL FROM:<{from}>")).await.0, 250);
        for rcpt in to {
            let reply = self.command(&format!("RCPT TO:<{rcpt}>")).await;
            assert_eq!(reply.0, 250, "{reply:?}");
        }
        assert_eq!(self.command("DATA").await.0, 354);
        self.write(message.replace('\n', "\r\n").as_bytes()).await;
        self.command(".").await
    }
}

/// The id in a `250 2.0.0 OK id=…` reply.
fn id_of(reply: &(u16, String)) -> String {
    assert_eq!(reply.0, 250, "{reply:?}");
    reply
        .1
        .split("id=")
        .nth(1)
        .unwrap_or_else(|| panic!("no id in {reply:?}"))
        .trim()
        .to_owned()
}

async fn get_email(app: &TestApp, token: &str, id: &str) -> Value {
    let (status, email) = common::json(
        app.authed(Method::GET, &format!("/emails/{id}"), token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{email}");
    email
}

async fn email_count(app: &TestApp, token: &str) -> usize {
    let (status, list) = common::json(
        app.authed(Method::GET, "/emails?limit=100", token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    list["data"].as_array().unwrap().len()
}

const MESSAGE: &str = "From: Alice <alice@example.com>
To: Bob <bob@example.net>
Cc: carol@example.net
Bcc: dave@example.net
Subject: Over SMTP
X-Campaign: spring
Resend-Idempotency-Key: smtp-1
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hello over SMTP.
..a line that starts with a dot
";

#[tokio::test]
async fn starttls_auth_and_a_pipelined_message_reach_every_envelope_recipient_with_bcc_hidden() {
    let relay = relay(&[]).await;
    let (_, token) = relay.app.tenant().await;

    let mut client = Client::connect(relay.starttls).await;
    let (code, ehlo) = client.command("EHLO client.test").await;
    assert_eq!(code, 250);
    for offered in [
        "STARTTLS",
        "PIPELINING",
        "SIZE 41943040",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
    ] {
        assert!(ehlo.lines().any(|l| l == offered), "{offered} in {ehlo}");
    }
    assert!(!ehlo.contains("AUTH"), "no AUTH before TLS: {ehlo}");
    let plain = STANDARD.encode(format!("\0resend\0{token}"));
    let (code, text) = client.command(&format!("AUTH PLAIN {plain}")).await;
    assert_eq!(code, 538, "{text}");
    assert_eq!(client.command("MAIL FROM:<alice@example.com>").await.0, 530);

    let mut client = client.starttls(&relay.certs).await;
    let (code, ehlo) = client.command("EHLO client.test").await;
    assert_eq!(code, 250);
    assert!(ehlo.lines().any(|l| l == "AUTH PLAIN LOGIN"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    let (code, text) = client.command(&format!("AUTH PLAIN {plain}")).await;
    assert_eq!(code, 235, "{text}");

    // PIPELINING: the envelope and DATA in one write, then the replies in order.
    client
        .write(
            b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.net>\r\nRCPT TO:<carol@example.net>\r\n\
              RCPT TO:<dave@example.net>\r\nRCPT TO:<erin@example.org>\r\nDATA\r\n",
        )
        .await;
    for expected in [250, 250, 250, 250, 250, 354] {
        let reply = client.reply().await;
        assert_eq!(reply.0, expected, "{reply:?}");
    }
    client.write(MESSAGE.replace('\n', "\r\n").as_bytes()).await;
    let id = id_of(&client.command(".").await);

    let email = get_email(&relay.app, &token, &id).await;
    assert_eq!(email["from"], "Alice <alice@example.com>");
    assert_eq!(email["to"], serde_json::json!(["Bob <bob@example.net>"]));
    assert_eq!(email["cc"], serde_json::json!(["carol@example.net"]));
    // Envelope recipients named in neither To nor Cc are the blind copies, whatever the Bcc header said.
    assert_eq!(
        email["bcc"],
        serde_json::json!(["dave@example.net", "erin@example.org"])
    );
    assert_eq!(email["subject"], "Over SMTP");
    let sent = relay.app.wait_for_status(&token, &id, "sent").await;
    let raw = sent["raw"].as_str().expect("the captured message");
    assert!(!raw.to_ascii_lowercase().contains("bcc:"), "{raw}");
    assert!(!raw.contains("dave@") && !raw.contains("erin@"), "{raw}");
    assert!(!raw.to_ascii_lowercase().contains("idempotency"), "{raw}");
    assert!(raw.contains("X-Campaign: spring"), "{raw}");
    assert!(raw.contains(".a line that starts with a dot"), "{raw}");

    // The same message with the same idempotency key: the same id, nothing new stored.
    let again = client
        .send(
            "alice@example.com",
            &[
                "bob@example.net",
                "carol@example.net",
                "dave@example.net",
                "erin@example.org",
            ],
            MESSAGE,
        )
        .await;
    assert_eq!(id_of(&again), id);
    assert_eq!(email_count(&relay.app, &token).await, 1);
    assert_eq!(client.command("QUIT").await.0, 221);
}

#[tokio::test]
async fn lettre_sends_over_starttls_and_over_implicit_tls() {
    let relay = relay(&[]).await;
    let (_, token) = relay.app.tenant().await;
    let tls = TlsParameters::builder("localhost".to_owned())
        .dangerous_accept_invalid_certs(true)
        .build_rustls()
        .unwrap();
    let envelope = Envelope::new(
        Some("alice@example.com".parse::<Address>().unwrap()),
        vec!["bob@example.net".parse::<Address>().unwrap()],
    )
    .unwrap();
    let message =
        b"From: alice@example.com\r\nTo: bob@example.net\r\nSubject: lettre\r\n\r\nHi\r\n";
    for (addr, mode) in [
        (relay.starttls, Tls::Required(tls.clone())),
        (relay.implicit, Tls::Wrapper(tls.clone())),
    ] {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("localhost")
            .port(addr.port())
            .tls(mode)
            .credentials(Credentials::new("resend".to_owned(), token.clone()))
            .build();
        let response = transport.send_raw(&envelope, message).await.unwrap();
        assert_eq!(u16::from(response.code()), 250);
        let text: String = response.message().collect();
        let id = text.split("id=").nth(1).expect("an id").trim().to_owned();
        assert_eq!(
            get_email(&relay.app, &token, &id).await["subject"],
            "lettre"
        );
    }
    // A wrong password is a permanent refusal.
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("localhost")
        .port(relay.implicit.port())
        .tls(Tls::Wrapper(tls))
        .credentials(Credentials::new("resend".to_owned(), "os_wrong".to_owned()))
        .build();
    let error = transport.send_raw(&envelope, message).await.unwrap_err();
    assert!(error.is_permanent(), "{error}");
    assert_eq!(email_count(&relay.app, &token).await, 2);
}

#[tokio::test]
async fn failed_auth_is_refused_then_throttled_per_address() {
    let relay = relay(&[]).await;
    let (_, token) = relay.app.tenant().await;
    let mut client = Client::connect_tls(relay.implicit, &relay.certs).await;
    assert_eq!(client.command("EHLO client.test").await.0, 250);
    for attempt in 0..10 {
        let wrong = STANDARD.encode(format!("\0resend\0os_wrong_{attempt}"));
        let reply = client.command(&format!("AUTH PLAIN {wrong}")).await;
        assert_eq!(reply.0, 535, "attempt {attempt}: {reply:?}");
    }
    let wrong = STANDARD.encode("\0resend\0os_wrong_again");
    let reply = client.command(&format!("AUTH PLAIN {wrong}")).await;
    assert_eq!(reply.0, 454, "the eleventh failure: {reply:?}");
    // Another connection from the same address, even with the right key, waits now.
    let mut client = Client::connect_tls(relay.implicit, &relay.certs).await;
    let reply = client.login(&token).await;
    assert_eq!(reply.0, 454, "{reply:?}");
    assert!(reply.1.starts_with("4.7.0"), "{reply:?}");
    // A wrong user name with a right key fails like a wrong key; AUTH LOGIN is the same check.
    let relay = self::relay(&[]).await;
    let (_, token) = relay.app.tenant().await;
    let mut client = Client::connect_tls(relay.implicit, &relay.certs).await;
    assert_eq!(client.command("EHLO client.test").await.0, 250);
    let other_user = STANDARD.encode(format!("\0admin\0{token}"));
    assert_eq!(
        client.command(&format!("AUTH PLAIN {other_user}")).await.0,
        535
    );
    assert_eq!(client.command("AUTH LOGIN").await.0, 334);
    assert_eq!(client.command(&STANDARD.encode("resend")).await.0, 334);
    assert_eq!(client.command(&STANDARD.encode(&token)).await.0, 235);
    assert_eq!(
        client.command("AUTH PLAIN").await.0,
        503,
        "already authenticated"
    );
}

#[tokio::test]
async fn the_api_rules_apply_from_check_quota_recipients_and_size() {
    // Outside capture, an unverified From is refused for good.
    let relay = relay(&[
        ("DELIVERY", "smtp"),
        ("SMTP_URL", "smtp://127.0.0.1:9?tls=none"),
    ])
    .await;
    let (_, token) = relay.app.tenant().await;
    let mut client = Client::connect_tls(relay.implicit, &relay.certs).await;
    assert_eq!(client.login(&token).await.0, 235);
    let reply = client
        .send(
            "alice@example.com",
            &["bob@example.net"],
            "From: alice@example.com\nTo: bob@example.net\nSubject: x\n\nHi\n",
        )
        .await;
    assert_eq!(reply.0, 550, "{reply:?}");
    assert!(reply.1.starts_with("5.7.1"), "{reply:?}");

    // A daily quota of one: the second message is a temporary refusal, the monthly one permanent.
    let relay = self::relay(&[("QUOTA_DAILY_EMAILS", "1")]).await;
    let (_, token) = relay.app.tenant().await;
    let mut client = Client::connect_tls(relay.implicit, &relay.certs).await;
    assert_eq!(client.login(&token).await.0, 235);
    let message = "From: alice@example.com\nTo: bob@example.net\nSubject: x\n\nHi\n";
    id_of(
        &client
            .send("alice@example.com", &["bob@example.net"], message)
            .await,
    );
    let reply = client
        .send("alice@example.com", &["bob@example.net"], message)
        .await;
    assert_eq!(reply.0, 451, "{reply:?}");
    assert!(reply.1.starts_with("4.7.0"), "{reply:?}");
    let relay = self::relay(&[("QUOTA_MONTHLY_EMAILS", "1")]).await;
    let (_, token) = relay.app.tenant().await;
    let mut client = Client::connect_tls(relay.implicit, &relay.certs).await;
    assert_eq!(client.login(&token).await.0, 235);
    id_of(
        &client
            .send("alice@example.com", &["bob@example.net"], message)
            .await,
    );
    assert_eq!(
        client
            .send("alice@example.com", &["bob@example.net"], message)
            .await
            .0,
        550
    );

    // Limits: 50 recipients, a SIZE over 40 MiB, a message without a body the API would refuse.
    let relay = self::relay(&[]).await;
    let (_, token) = relay.app.tenant().await;
    let mut client = Client::connect_tls(relay.implicit, &relay.certs).await;
    assert_eq!(client.login(&token).await.0, 235);
    assert_eq!(
        client
            .command("MAIL FROM:<a@example.com> SIZE=41943041")
            .await
            .0,
        552
    );
    assert_eq!(
        client
            .command("MAIL FROM:<a@example.com> SIZE=1000")
            .await
            .0,
        250
    );
    for n in 0..50 {
        assert_eq!(
            client
                .command(&format!("RCPT TO:<r{n}@example.net>"))
                .await
                .0,
            250
        );
    }
    let reply = client.command("RCPT TO:<r50@example.net>").await;
    assert_eq!(reply.0, 452, "{reply:?}");
    assert_eq!(client.command("RCPT TO:<not an address>").await.0, 501);
    assert_eq!(client.command("RSET").await.0, 250);
    let reply = client
        .send(
            "a@example.com",
            &["bob@example.net"],
            "From: a@example.com\nTo: bob@example.net\nSubject: x\n\n",
        )
        .await;
    assert_eq!(reply.0, 554, "{reply:?}");
    assert!(reply.1.contains("body"), "{reply:?}");
    // A line over 64 KiB: the message is refused, the session goes on.
    let long = format!(
        "From: a@example.com\nTo: bob@example.net\nSubject: x\n\n{}\n",
        "x".repeat(70 * 1024)
    );
    assert_eq!(
        client
            .send("a@example.com", &["bob@example.net"], &long)
            .await
            .0,
        554
    );
    assert_eq!(client.command("NOOP").await.0, 250);
    assert_eq!(client.command("BOGUS").await.0, 500);
    assert_eq!(email_count(&relay.app, &token).await, 0);
}

#[tokio::test]
async fn a_sending_access_key_may_auth_and_is_held_to_the_from_rule() {
    let relay = relay(&[
        ("DELIVERY", "smtp"),
        ("SMTP_URL", "smtp://127.0.0.1:9?tls=none"),
    ])
    .await;
    let org = relay.app.organization("Restricted").await;
    let (_, token) = relay.app.key(org, Permission::SendingAccess).await;
    let mut client = Client::connect_tls(relay.implicit, &relay.certs).await;
    assert_eq!(client.login(&token).await.0, 235, "a sending key may AUTH");
    let reply = client
        .send(
            "x@unverified.example",
            &["bob@example.net"],
            "From: x@unverified.example\nTo: bob@example.net\nSubject: x\n\nHi\n",
        )
        .await;
    assert_eq!(reply.0, 550, "{reply:?}");
}

#[tokio::test]
async fn a_client_gone_before_the_final_dot_leaves_nothing_behind() {
    let relay = relay(&[]).await;
    let (_, token) = relay.app.tenant().await;
    let mut client = Client::connect_tls(relay.implicit, &relay.certs).await;
    assert_eq!(client.login(&token).await.0, 235);
    assert_eq!(client.command("MAIL FROM:<a@example.com>").await.0, 250);
    assert_eq!(client.command("RCPT TO:<bob@example.net>").await.0, 250);
    assert_eq!(client.command("DATA").await.0, 354);
    client
        .write(b"From: a@example.com\r\nTo: bob@example.net\r\nSubject: cut\r\n\r\nHalf a mess")
        .await;
    drop(client);
    // The server is still up and the next client's message is the only one stored.
    let mut client = Client::connect_tls(relay.implicit, &relay.certs).await;
    assert_eq!(client.login(&token).await.0, 235);
    let id = id_of(
        &client
            .send(
                "a@example.com",
                &["bob@example.net"],
                "From: a@example.com\nTo: bob@example.net\nSubject: whole\n\nHi\n",
            )
            .await,
    );
    assert_eq!(email_count(&relay.app, &token).await, 1);
    assert_eq!(get_email(&relay.app, &token, &id).await["subject"], "whole");
}

/// The real clients' scripts, run against this relay; `required` says whether a missing tool fails.
async fn run_script(script: &str, relay: &Relay, token: &str) -> Option<std::process::Output> {
    let path = format!("{}/../../tests/smtp/{script}", env!("CARGO_MANIFEST_DIR"));
    let program = if script.ends_with(".py") {
        "python3"
    } else {
        "bash"
    };
    // tokio's: the server answering the script runs on this test's runtime.
    let output = tokio::process::Command::new(program)
        .arg(&path)
        .env("SMTP_HOST", "127.0.0.1")
        .env("SMTP_PORT", relay.starttls.port().to_string())
        .env("SMTPS_PORT", relay.implicit.port().to_string())
        .env("SMTP_API_KEY", token)
        .env("SMTP_CA", &relay.certs.cert)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program} {path}: {e}"));
    // Exit code 3: the tool is not installed.
    if output.status.code() == Some(3) {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "{script}: tool missing under CI: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        eprintln!("skipped: {}", String::from_utf8_lossy(&output.stderr));
        return None;
    }
    assert!(
        output.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(output)
}

/// The ids a script printed, one `id=…` per line.
fn printed_ids(output: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("id=").map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn python_smtplib_sends_with_starttls_and_implicit_tls() {
    let relay = relay(&[]).await;
    let (_, token) = relay.app.tenant().await;
    let output = run_script("smtplib_client.py", &relay, &token)
        .await
        .expect("python3 is always there");
    let ids = printed_ids(&output);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let email = get_email(&relay.app, &token, &ids[0]).await;
    assert_eq!(email["bcc"], serde_json::json!(["hidden@example.org"]));
    let sent = relay.app.wait_for_status(&token, &ids[0], "sent").await;
    assert!(!sent["raw"].as_str().unwrap().contains("hidden@"));
    // Two printed ids, and the message `send_message` sent without showing its reply.
    assert_eq!(email_count(&relay.app, &token).await, 3);
}

#[tokio::test]
async fn swaks_sends_pipelines_and_is_refused_where_it_should_be() {
    let relay = relay(&[]).await;
    let (_, token) = relay.app.tenant().await;
    let Some(output) = run_script("swaks.sh", &relay, &token).await else {
        return;
    };
    let ids = printed_ids(&output);
    assert_eq!(ids.len(), 2, "{}", String::from_utf8_lossy(&output.stdout));
    let email = get_email(&relay.app, &token, &ids[0]).await;
    assert_eq!(email["bcc"], serde_json::json!(["blind@example.org"]));
    assert_eq!(email_count(&relay.app, &token).await, 2);
}

#[tokio::test]
async fn a_key_revoked_during_a_session_sends_no_more() {
    let relay = relay(&[]).await;
    let (org, admin) = relay.app.tenant().await;
    let (key_id, token) = relay.app.key(org, Permission::SendingAccess).await;
    let mut client = Client::connect_tls(relay.implicit, &relay.certs).await;
    assert_eq!(client.login(&token).await.0, 235);
    let message = "From: alice@example.com\nTo: bob@example.net\nSubject: x\n\nHi\n";
    id_of(
        &client
            .send("alice@example.com", &["bob@example.net"], message)
            .await,
    );
    let response = relay
        .app
        .authed(Method::DELETE, &format!("/api-keys/{key_id}"), &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply = client
        .send("alice@example.com", &["bob@example.net"], message)
        .await;
    assert_eq!(reply.0, 535, "{reply:?}");
    assert_eq!(email_count(&relay.app, &admin).await, 1);
}
