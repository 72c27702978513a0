//! Inbound mail over SMTP (`MX_PORT`): recipients only at verified receiving domains (never an open relay),
//! no AUTH, and a message that goes through the receiving pipeline and fires `email.received`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{TestApp, free_port, json};
use opensend_store::entities::domain;
use opensend_store::repos::NewDomain;
use opensend_test_support::webhook_receiver::WebhookReceiver;
use reqwest::Method;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Database, EntityTrait, QueryFilter};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

/// Adds `name` to `organization` with receiving enabled, marked verified when `verified` (as a successful
/// DNS check would).
async fn receiving_domain(app: &TestApp, organization: Uuid, name: &str, verified: bool) {
    let (created, _) = app
        .store
        .domains()
        .create(
            NewDomain {
                organization_id: organization,
                name: name.to_owned(),
                region: "us-east-1".to_owned(),
                custom_return_path: "send".to_owned(),
                open_tracking: false,
                click_tracking: false,
                tracking_subdomain: None,
                tls: "opportunistic".to_owned(),
                sending_enabled: true,
                receiving_enabled: true,
                allow_subdomains: false,
            },
            Vec::new(),
            &|_, _| Vec::new(),
        )
        .await
        .expect("domain");
    if verified {
        let db = Database::connect(app.db.url()).await.unwrap();
        domain::Entity::update_many()
            .col_expr(domain::Column::Status, Expr::value("verified"))
            .filter(domain::Column::Id.eq(created.id))
            .exec(&db)
            .await
            .unwrap();
        let _ = db.close().await;
    }
}

struct Client {
    io: BufReader<TcpStream>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        let mut client = Client {
            io: BufReader::new(TcpStream::connect(addr).await.unwrap()),
        };
        assert_eq!(client.reply().await.0, 220);
        client
    }

    async fn command(&mut self, line: &str) -> (u16, String) {
        let stream = self.io.get_mut();
        stream
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        stream.flush().await.unwrap();
        self.reply().await
    }

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
}

#[tokio::test]
async fn the_mx_takes_mail_only_for_verified_receiving_domains_and_announces_it() {
    let port = free_port().to_string();
    let app = TestApp::spawn_with(&[
        ("MX_PORT", port.as_str()),
        ("ALLOW_PRIVATE_WEBHOOK_URLS", "true"),
        ("WEBHOOK_RETRY_DELAYS_SECONDS", "0,0,0"),
    ])
    .await;
    let mx = app.smtp.mx.expect("MX_PORT listens");
    assert!(
        app.smtp.submission.is_none(),
        "the relay is off in tests unless asked"
    );
    let (org, token) = app.tenant().await;
    receiving_domain(&app, org, "inbound.example", true).await;
    receiving_domain(&app, org, "pending.example", false).await;
    let receiver = WebhookReceiver::start(Vec::new()).await;
    let (status, created) = json(
        app.authed(Method::POST, "/webhooks", &token)
            .json(&json!({"endpoint": receiver.url(), "events": ["email.received"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");

    let mut client = Client::connect(mx).await;
    let (code, ehlo) = client.command("EHLO sender.example").await;
    assert_eq!(code, 250);
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    assert!(ehlo.lines().any(|l| l == "STARTTLS"), "{ehlo}");
    assert_eq!(client.command("AUTH PLAIN AHJlc2VuZAB4").await.0, 502);
    assert_eq!(
        client.command("MAIL FROM:<billing@vendor.example>").await.0,
        250
    );
    // Never an open relay: a domain nobody receives for, and one not verified, are refused.
    for elsewhere in [
        "someone@gmail.com",
        "a@pending.example",
        "a@sub.inbound.example",
    ] {
        let reply = client.command(&format!("RCPT TO:<{elsewhere}>")).await;
        assert_eq!(reply.0, 550, "{elsewhere}: {reply:?}");
    }
    assert_eq!(
        client.command("RCPT TO:<accounts@inbound.example>").await.0,
        250
    );
    assert_eq!(
        client.command("RCPT TO:<hidden@inbound.example>").await.0,
        250
    );
    assert_eq!(client.command("DATA").await.0, 354);
    let stream = client.io.get_mut();
    stream
        .write_all(
            b"From: Billing <billing@vendor.example>\r\nTo: accounts@inbound.example\r\n\
              Subject: Invoice\r\nMessage-ID: <inv-1@vendor.example>\r\n\r\nPlease pay.\r\n",
        )
        .await
        .unwrap();
    let reply = client.command(".").await;
    assert_eq!(reply.0, 250, "{reply:?}");
    let id = reply.1.split("id=").nth(1).unwrap().trim().to_owned();
    assert_eq!(client.command("QUIT").await.0, 221);

    let delivered = receiver.wait_for(1, WAIT).await;
    let event = delivered[0].json();
    assert_eq!(event["type"], "email.received", "{event}");
    assert_eq!(event["data"]["email_id"], id.as_str());
    assert_eq!(event["data"]["to"], json!(["accounts@inbound.example"]));
    assert_eq!(event["data"]["bcc"], json!(["hidden@inbound.example"]));
    let (status, email) = json(
        app.authed(Method::GET, &format!("/emails/receiving/{id}"), &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{email}");
    assert_eq!(email["subject"], "Invoice");
}
