//! A broadcast's fan-out survives its worker being killed: `opensend worker` processes are SIGKILLed
//! mid-fan-out (twice), a new one finishes once the dead one's lease ran out, and every contact of the
//! segment ends with exactly one email and one recipient row. Runs on SQLite, and on PostgreSQL when
//! `OPENSEND_TEST_DATABASE_URL` is set.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use opensend_store::entities::{broadcast_recipient, email};
use opensend_store::repos::contacts::NewContact;
use opensend_test_support::TestDatabase;
use sea_orm::{ColumnTrait, Database, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};
use serde_json::{Value, json};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_opensend");
const CONTACTS: usize = 2000;

fn opensend(dir: &Path, vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command.current_dir(dir).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    command.env("SMTP_PORT", "0").env("SMTPS_PORT", "0");
    for (k, v) in vars {
        command.env(k, v);
    }
    command
}

fn last_line(dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> String {
    let output = opensend(dir, vars)
        .args(args)
        .output()
        .expect("run opensend");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

/// A process of one role with its stderr collected; killed when dropped.
struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Process {
    fn spawn(dir: &Path, vars: &[(&str, &str)], role: &str) -> Self {
        let mut child = opensend(dir, vars)
            .arg(role)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn opensend");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    fn wait_for(&mut self, needle: &str) -> String {
        let mut seen = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("`{needle}` never logged:\n{}", seen.join("\n")),
            }
        }
    }

    /// SIGKILL: nothing is finished, nothing is released.
    fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn queued(store: &opensend_store::Store, org: Uuid, id: Uuid) -> (i64, String) {
    let b = store.broadcasts().get(org, id).await.unwrap().unwrap();
    (b.queued + b.skipped, b.status)
}

/// Waits until the fan-out has written more than `at_least` recipients (and is not done).
async fn wait_past(store: &opensend_store::Store, org: Uuid, id: Uuid, at_least: i64) -> i64 {
    for _ in 0..1200 {
        let (done, status) = queued(store, org, id).await;
        assert_ne!(
            status, "sent",
            "the fan-out finished before the worker could be killed"
        );
        if done > at_least {
            return done;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the fan-out never passed {at_least} recipients");
}

#[tokio::test]
async fn a_worker_killed_mid_fan_out_loses_and_duplicates_nothing() {
    let db = TestDatabase::new().await;
    let dir = db.dir();
    let data = db.path("data").display().to_string();
    let vars = [
        ("DATABASE_URL", db.url()),
        ("DATA_DIR", data.as_str()),
        ("PORT", "0"),
        ("INGESTER_PORT", "0"),
        ("RATE_LIMIT_ORG_PER_SECOND", "100000"),
        ("RATE_LIMIT_ORG_BURST", "100000"),
        // 200 emails a second: 2,000 contacts take ten seconds, in chunks of 200.
        ("BROADCAST_RATE_PER_SECOND", "200"),
        ("WORKER_LEASE_SECONDS", "2"),
        ("WORKER_POLL_INTERVAL_MS", "50"),
    ];
    let org_text = last_line(dir, &vars, &["admin", "create-org", "Crash"]);
    let token = last_line(
        dir,
        &vars,
        &["admin", "create-key", "--org", &org_text, "--name", "k"],
    );
    let org: Uuid = org_text.parse().unwrap();

    let mut api = Process::spawn(dir, &vars, "api");
    let line = api.wait_for("API listening on http://");
    let base = format!(
        "http://{}",
        line.split("http://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap()
    )
    .replace("0.0.0.0", "127.0.0.1");

    // The segment and its contacts, written straight to the store (the API would take longer).
    let store = opensend_store::Store::connect(db.url(), 2).await.unwrap();
    let segment = store.segments().create(org, "All", None).await.unwrap().id;
    for i in 0..CONTACTS {
        store
            .contacts()
            .create(
                org,
                NewContact {
                    email: format!("c{i:05}@example.com"),
                    first_name: Some(format!("C{i}")),
                    segments: vec![segment],
                    ..NewContact::default()
                },
            )
            .await
            .unwrap();
    }

    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{base}/broadcasts"))
        .bearer_auth(&token)
        .json(&json!({
            "segment_id": segment,
            "from": "news@acme.test",
            "subject": "Hi {{{contact.first_name}}}",
            "text": "Hello {{{contact.first_name}}}, {{{RESEND_UNSUBSCRIBE_URL}}}",
            "send": true,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id: Uuid = created["id"].as_str().expect("created").parse().unwrap();

    // Two workers are killed partway, each after the fan-out moved on.
    let mut past = 0;
    for _ in 0..2 {
        let worker = Process::spawn(dir, &vars, "worker");
        wait_past(&store, org, id, past).await;
        worker.crash();
        let (after, status) = queued(&store, org, id).await;
        assert!(
            (after as usize) < CONTACTS && status != "sent",
            "killed mid-fan-out: {after} written, {status}"
        );
        past = after;
    }

    // A new worker finishes once the dead one's lease has run out.
    let _worker = Process::spawn(dir, &vars, "worker");
    let mut status = String::new();
    for _ in 0..1200 {
        status = queued(&store, org, id).await.1;
        if status == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "sent");

    let conn = Database::connect(db.url()).await.unwrap();
    let recipients = broadcast_recipient::Entity::find()
        .filter(broadcast_recipient::Column::BroadcastId.eq(id))
        .all(&conn)
        .await
        .unwrap();
    assert_eq!(recipients.len(), CONTACTS, "one recipient row per contact");
    let contacts: HashSet<Uuid> = recipients.iter().map(|r| r.contact_id).collect();
    assert_eq!(contacts.len(), CONTACTS);
    assert!(recipients.iter().all(|r| r.email_id.is_some()));

    let emails = email::Entity::find()
        .filter(email::Column::OrganizationId.eq(org))
        .count(&conn)
        .await
        .unwrap();
    assert_eq!(emails as usize, CONTACTS, "exactly one email per contact");
    let addresses: Vec<String> = email::Entity::find()
        .select_only()
        .column(email::Column::ToAddresses)
        .filter(email::Column::OrganizationId.eq(org))
        .into_tuple()
        .all(&conn)
        .await
        .unwrap();
    let distinct: HashSet<&String> = addresses.iter().collect();
    assert_eq!(distinct.len(), CONTACTS, "no address mailed twice");
    let b = store.broadcasts().get(org, id).await.unwrap().unwrap();
    assert_eq!(b.queued as usize, CONTACTS);
    assert_eq!(b.skipped, 0);
    drop(api);
}
