//! SES events per second through `POST /events/ses`: signed SNS notifications posted concurrently to the
//! ingester over loopback HTTP, each verified (RSA-2048 signature, certificate from the cache) and applied in
//! its own transaction (dedupe row, status, recipient, email event, webhook outbox). The figure
//! `docs/benchmarks.md` reports.
//!
//! ```sh
//! cargo build --release -p opensend-server --example ses_ingest_throughput
//! $CARGO_TARGET_DIR/release/examples/ses_ingest_throughput sqlite 5000 32
//! $CARGO_TARGET_DIR/release/examples/ses_ingest_throughput postgres://postgres@127.0.0.1:5432/postgres 5000 32
//! ```
//!
//! Arguments: `sqlite` (a fresh file in a temporary directory) or a PostgreSQL server URL (a fresh database is
//! created on it and dropped afterwards); how many notifications (one per email, SES `Delivery` events in
//! event-publishing form, like the ones SES sends most); how many requests in flight at once. The emails are
//! written beforehand as sent, with an SES message id each; the organization has one webhook endpoint
//! subscribed to `email.delivered`, so every event also writes its outbox message and delivery (nothing
//! dispatches them: only the ingester runs). Every notification is signed before the clock starts, and one
//! warm-up request puts the certificate in the cache. The client runs in the same process, on the same cores.

#[path = "../../mail/tests/sns_support/mod.rs"]
mod sns_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use opensend_core::webhook::EventType;
use opensend_core::webhook::WebhookSecret;
use opensend_core::{EmailAddress, Mailbox, RecipientKind, Tag};
use opensend_server::app::Application;
use opensend_server::config::{Config, Vars};
use opensend_server::serve::Roles;
use opensend_store::entities::email;
use opensend_store::repos::emails::NewEmail;
use opensend_store::repos::{CreateWebhookOutcome, NewWebhook};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, Database, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::{Value, json};
use sns_support::{FakeSns, KEY, TOPIC, notification, timestamp};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "sqlite".to_owned());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(5_000);
    let concurrency: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(32);

    let dir = tempfile::tempdir()?;
    let (url, cleanup) = if backend == "sqlite" {
        (format!("sqlite://{}/bench.db", dir.path().display()), None)
    } else {
        let name = format!("opensend_bench_{}", uuid::Uuid::now_v7().simple());
        let admin = Database::connect(&backend).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        let mut url = url::Url::parse(&backend)?;
        url.set_path(&name);
        (url.to_string(), Some((admin, name)))
    };

    let sns = FakeSns::start(KEY.cert_pem.clone()).await;
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k == "DATABASE_MAX_CONNECTIONS")
        .collect();
    for (name, value) in [
        ("DATABASE_URL", url.as_str()),
        ("BIND_ADDRESS", "127.0.0.1"),
        ("INGESTER_PORT", "0"),
        ("SES_EVENTS_SNS_TOPIC_ARN", TOPIC),
        ("SNS_TEST_CERT_URL_PREFIX", sns.prefix.as_str()),
        ("RATE_LIMIT_INGESTER_PER_SECOND", "1000000"),
        ("RATE_LIMIT_INGESTER_BURST", "1000000"),
        ("ALLOW_PRIVATE_WEBHOOK_URLS", "true"),
    ] {
        vars.push((name.to_owned(), value.to_owned()));
    }
    vars.push((
        "DATA_DIR".into(),
        dir.path().join("data").display().to_string(),
    ));
    let config = Config::from_vars(&Vars::from_pairs(vars)).map_err(|e| e.to_string())?;
    let app = Application::build(config, Roles::INGESTER).await?;
    let state = app.state().clone();
    let store = state.store.clone();

    // The emails, already sent through SES, and one webhook endpoint that wants their deliveries.
    let org = store.organizations().create("Bench").await?;
    let created = store
        .webhooks()
        .create(
            NewWebhook {
                organization_id: org.id,
                endpoint: "http://127.0.0.1:9/hook".to_owned(),
                event_types: vec![EventType::EmailDelivered],
                secret_sealed: opensend_server::webhooks::seal(
                    &state.secrets,
                    &WebhookSecret::generate()?,
                )?,
            },
            state.config.webhooks.max_endpoints_per_org,
        )
        .await?;
    let CreateWebhookOutcome::Created(_) = created else {
        return Err("the endpoint was not registered".into());
    };
    let mut ids = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
        let emails: Vec<NewEmail> = chunk
            .iter()
            .map(|i| {
                let to = EmailAddress::parse(&format!("reader{i}@example.net"))
                    .expect("a valid address");
                NewEmail {
                    id: opensend_core::new_id(),
                    organization_id: org.id,
                    api_key_id: None,
                    from: Mailbox::parse("Acme <hello@acme.test>").expect("a valid mailbox"),
                    to: vec![Mailbox {
                        name: None,
                        address: to.clone(),
                    }],
                    cc: vec![],
                    bcc: vec![],
                    reply_to: vec![],
                    subject: "Welcome to Acme".to_owned(),
                    html: None,
                    text: Some("Hello".to_owned()),
                    headers: vec![],
                    tags: vec![Tag::new("campaign", "welcome")],
                    attachments: vec![],
                    scheduled_at: None,
                    message_id: format!("{i}@acme.test"),
                    sending_domain_id: None,
                    unverified_sender: true,
                    recipients: vec![(to, RecipientKind::To)],
                }
            })
            .collect();
        for accepted in store.emails().accept(emails, None).await? {
            ids.push(accepted.id);
        }
    }
    let db = Database::connect(&url).await?;
    let txn = db.begin().await?;
    for (i, id) in ids.iter().enumerate() {
        email::Entity::update_many()
            .col_expr(email::Column::Status, Expr::value("sent"))
            .col_expr(
                email::Column::ProviderMessageId,
                Expr::value(Some(ses_id(i))),
            )
            .filter(email::Column::Id.eq(*id))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    db.execute_unprepared("DELETE FROM delivery_jobs").await?;
    let _ = db.close().await;

    let cert = sns.url("cert.pem");
    let started_signing = Instant::now();
    let bodies: Vec<Vec<u8>> = (0..count)
        .map(|i| {
            let mut message = notification(&cert, &delivery(i).to_string());
            message["MessageId"] = uuid::Uuid::new_v4().to_string().into();
            KEY.sign(&mut message, "1");
            serde_json::to_vec(&message).expect("json")
        })
        .collect();
    eprintln!(
        "{count} emails and notifications ready on {backend} (signing took {:.1} s); posting {concurrency} at a time",
        started_signing.elapsed().as_secs_f64()
    );

    let endpoint = format!(
        "http://{}/events/ses",
        app.ingester_addr().expect("ingester")
    );
    let stop = app.stop_handle();
    let server = tokio::spawn(app.wait());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;

    // Warm-up: the certificate is fetched once and cached; an event about no email writes nothing.
    let mut warm = notification(&cert, &delivery(count).to_string());
    KEY.sign(&mut warm, "1");
    let answer: Value = client
        .post(&endpoint)
        .header("x-amz-sns-message-type", "Notification")
        .body(serde_json::to_vec(&warm)?)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(answer["result"], "unknown_email", "{answer}");

    let client = Arc::new(client);
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(bodies)
        .map(|body| {
            let (client, endpoint) = (client.clone(), endpoint.clone());
            async move {
                let sent = Instant::now();
                let response = client
                    .post(&endpoint)
                    .header("x-amz-sns-message-type", "Notification")
                    .body(body)
                    .send()
                    .await
                    .expect("request");
                let status = response.status();
                let answer: Value = response.json().await.expect("json");
                assert!(
                    status.is_success() && answer["result"] == "applied",
                    "{status}: {answer}"
                );
                sent.elapsed()
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    latencies.sort();
    let percentile = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };
    println!(
        "{backend}: {count} notifications in {:.2} s = {:.0} events/s at {concurrency} in flight \
         (latency p50 {:.1} ms, p99 {:.1} ms; certificate fetches: {})",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        percentile(0.50),
        percentile(0.99),
        sns.cert_hits()
    );

    let applied = store.webhook_queue().pending().await?;
    assert_eq!(applied as usize, count, "one webhook delivery per event");
    stop.stop();
    let _ = server.await;
    store.close().await;
    if let Some((admin, name)) = cleanup {
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
    }
    Ok(())
}

fn ses_id(i: usize) -> String {
    format!("0100018f-bench-{i:08}-000000")
}

/// An event-publishing `Delivery` of email `i`.
fn delivery(i: usize) -> Value {
    let to = format!("reader{i}@example.net");
    json!({
        "eventType": "Delivery",
        "mail": {
            "timestamp": timestamp(Utc::now()),
            "source": "hello@acme.test",
            "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/acme.test",
            "sendingAccountId": "123456789012",
            "messageId": ses_id(i),
            "destination": [to],
            "headersTruncated": false,
            "commonHeaders": {"from": ["Acme <hello@acme.test>"], "to": [to], "subject": "Welcome to Acme"},
        },
        "delivery": {
            "timestamp": timestamp(Utc::now()),
            "processingTimeMillis": 546,
            "recipients": [to],
            "smtpResponse": "250 2.6.0 Message received",
            "reportingMTA": "a8-70.smtp-out.amazonses.com",
        },
    })
}
