//! Signed webhook deliveries per second, from the outbox to a receiver on loopback, with every attempt
//! recorded: the figure `docs/benchmarks.md` reports.
//!
//! ```sh
//! cargo build --release -p opensend-server --example webhook_throughput
//! $CARGO_TARGET_DIR/release/examples/webhook_throughput sqlite 20000 16
//! $CARGO_TARGET_DIR/release/examples/webhook_throughput postgres://postgres@127.0.0.1:5432/postgres 20000 16
//! ```
//!
//! The first argument is `sqlite` (a fresh file in a temporary directory) or a PostgreSQL server URL (a fresh
//! database is created on it and dropped afterwards); the second is how many deliveries to make; the third
//! (default 1) across how many endpoints (each event goes to all of them). The receiver is an HTTP server in the
//! same process answering `204` at once; the dispatcher runs with its defaults (`WEBHOOK_CONCURRENCY=128`,
//! `WEBHOOK_ENDPOINT_CONCURRENCY=16`) unless the environment says otherwise.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use opensend_core::webhook::{EventType, WebhookSecret};
use opensend_server::AppState;
use opensend_server::config::{Config, Vars};
use opensend_server::jobs::webhook_dispatch::Dispatcher;
use opensend_server::webhooks;
use opensend_store::Store;
use opensend_store::repos::{CreateWebhookOutcome, NewWebhook};
use sea_orm::{ConnectionTrait, Database};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "sqlite".to_owned());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let endpoints: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1).max(1);
    let events = count.div_ceil(endpoints);
    let count = events * endpoints;

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

    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let receiver = Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
            StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, receiver).await;
    });

    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("WEBHOOK_") || k == "DATABASE_MAX_CONNECTIONS")
        .collect();
    vars.push(("DATABASE_URL".into(), url.clone()));
    vars.push((
        "DATA_DIR".into(),
        dir.path().join("data").display().to_string(),
    ));
    vars.push(("ALLOW_PRIVATE_WEBHOOK_URLS".into(), "true".into()));
    let mut config = Config::from_vars(&Vars::from_pairs(vars)).map_err(|e| e.to_string())?;
    opensend_server::startup_checks::run(&mut config).map_err(|e| e.to_string())?;
    let store = Store::connect(&url, config.database.max_connections).await?;
    store.migrate().await?;
    let state = AppState::new(store.clone(), config)?;

    let org = store.organizations().create("Bench").await?;
    for n in 0..endpoints {
        let secret = WebhookSecret::generate()?;
        // No limit: the harness registers as many endpoints as it is asked to.
        let created = store
            .webhooks()
            .create(
                NewWebhook {
                    organization_id: org.id,
                    endpoint: format!("{endpoint}/{n}"),
                    event_types: vec![EventType::EmailSent],
                    secret_sealed: webhooks::seal(&state.secrets, &secret)?,
                },
                u64::MAX,
            )
            .await?;
        let CreateWebhookOutcome::Created(_) = created else {
            return Err("the endpoint was not registered".into());
        };
    }
    let payload = json!({
        "email_id": "01000182-a1b2-c3d4-e5f6-0718901234ab",
        "created_at": "2026-05-29T09:59:58.000Z",
        "from": "sender@yourdomain.com",
        "to": ["recipient@example.com"],
        "subject": "Welcome to OpenSend",
        "tags": {"campaign": "onboarding-2026-q2", "user_id": "usr_abc123def456"},
    });
    for chunk in (0..events).collect::<Vec<_>>().chunks(1000) {
        store
            .webhook_queue()
            .publish(
                org.id,
                EventType::EmailSent,
                vec![payload.clone(); chunk.len()],
            )
            .await?;
    }
    eprintln!(
        "{count} deliveries ({events} events to {endpoints} endpoints) queued on {backend}; dispatching"
    );

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let client = state.outbound.shared_client().clone();
    let started = Instant::now();
    let dispatcher = tokio::spawn(Dispatcher::new(state.clone(), client).run(stopped));
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if received.load(Ordering::Relaxed) >= count && store.webhook_queue().pending().await? == 0
        {
            break;
        }
    }
    let elapsed = started.elapsed();
    let _ = stop.send(true);
    let _ = dispatcher.await;
    println!(
        "{backend}, {endpoints} endpoints: {count} signed deliveries in {:.2} s = {:.0} deliveries/s (requests received: {})",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        received.load(Ordering::Relaxed)
    );
    store.close().await;
    if let Some((admin, name)) = cleanup {
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
    }
    Ok(())
}
