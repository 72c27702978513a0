//! The `opensend` binary as a user runs it: setup, admin commands, startup checks, serve and shutdown.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use opensend_test_support::TestDatabase;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_opensend");

/// `opensend` in `dir` with an empty environment apart from `vars`.
fn opensend(dir: &Path, vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command.current_dir(dir).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    // The SMTP relay's default ports are fixed (2587, 2465): servers started side by side would collide,
    // and a production-like one would need a certificate. A test of the relay sets its own.
    command.env("SMTP_PORT", "0").env("SMTPS_PORT", "0");
    for (k, v) in vars {
        command.env(k, v);
    }
    command
}

fn run(dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    opensend(dir, vars)
        .args(args)
        .output()
        .expect("run opensend")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn last_line(output: &Output) -> String {
    stdout(output).lines().last().unwrap_or_default().to_owned()
}

#[test]
fn help_explains_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let top = stdout(&run(dir.path(), &[], &["--help"]));
    for command in [
        "serve",
        "api",
        "ingester",
        "worker",
        "scheduler",
        "migrate",
        "setup",
        "admin",
    ] {
        assert!(top.contains(command), "{command} missing from:\n{top}");
    }
    let admin = stdout(&run(dir.path(), &[], &["admin", "--help"]));
    for command in [
        "create-org",
        "create-key",
        "revoke-key",
        "set-rate-limit",
        "set-quota",
        "rotate-encryption-key",
    ] {
        assert!(admin.contains(command), "{command} missing from:\n{admin}");
    }
    let key = stdout(&run(dir.path(), &[], &["admin", "create-key", "--help"]));
    for flag in ["--org", "--name", "--permission", "--json"] {
        assert!(key.contains(flag), "{flag} missing from:\n{key}");
    }
}

#[test]
fn setup_writes_a_private_env_file_and_never_overwrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(dir.path(), &[], &["setup"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let env = dir.path().join(".env");
    let text = std::fs::read_to_string(&env).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&env).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let mut values = Vec::new();
    for name in [
        "AUTH_SECRET",
        "WEBHOOK_SECRET_ENCRYPTION_KEY",
        "INGESTER_JOB_TOKEN",
        "INGESTER_INBOUND_TOKEN",
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"));
        let value = line.split_once('=').unwrap().1.to_owned();
        assert_eq!(value.len(), 64);
        assert!(value.bytes().all(|b| b.is_ascii_hexdigit()));
        values.push(value);
    }
    values.sort();
    values.dedup();
    assert_eq!(values.len(), 4, "every secret is different");

    let again = run(dir.path(), &[], &["setup"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(&env).unwrap(), text, "untouched");

    let forced = run(dir.path(), &[], &["setup", "--force"]);
    assert!(forced.status.success());
    assert_ne!(std::fs::read_to_string(&env).unwrap(), text, "replaced");

    // The written file is a configuration the production checks accept.
    let db = format!("sqlite://{}/db.sqlite", dir.path().display());
    let migrate = run(
        dir.path(),
        &[
            ("DATABASE_URL", &db),
            ("APP_URL", "https://mail.example.com"),
        ],
        &["migrate"],
    );
    assert!(migrate.status.success(), "{}", stderr(&migrate));
}

#[tokio::test]
async fn admin_commands_print_what_they_created_on_the_last_line() {
    let db = TestDatabase::new().await;
    let vars = [("DATABASE_URL", db.url())];
    let dir = db.dir();

    let org = run(dir, &vars, &["admin", "create-org", "Acme Inc"]);
    assert!(org.status.success(), "{}", stderr(&org));
    let org_id = last_line(&org);
    assert!(uuid::Uuid::try_parse(&org_id).is_ok(), "{}", stdout(&org));

    let json_org = run(dir, &vars, &["admin", "create-org", "Beta", "--json"]);
    let value: Value = serde_json::from_str(stdout(&json_org).trim()).unwrap();
    assert_eq!(value["name"], "Beta");
    assert!(uuid::Uuid::try_parse(value["id"].as_str().unwrap()).is_ok());

    let key = run(
        dir,
        &vars,
        &["admin", "create-key", "--org", &org_id, "--name", "ci"],
    );
    assert!(key.status.success(), "{}", stderr(&key));
    let token = last_line(&key);
    assert!(token.starts_with("os_") && token.len() == 46, "{token}");

    let json_key = run(
        dir,
        &vars,
        &[
            "admin",
            "create-key",
            "--org",
            &org_id,
            "--name",
            "sender",
            "--permission",
            "sending_access",
            "--json",
        ],
    );
    let value: Value = serde_json::from_str(stdout(&json_key).trim()).unwrap();
    assert_eq!(value["permission"], "sending_access");
    assert!(value["token"].as_str().unwrap().starts_with("os_"));
    let key_id = value["id"].as_str().unwrap().to_owned();

    let revoke = run(dir, &vars, &["admin", "revoke-key", &key_id]);
    assert!(revoke.status.success(), "{}", stderr(&revoke));
    assert_eq!(last_line(&revoke), key_id);
    let again = run(dir, &vars, &["admin", "revoke-key", &key_id, "--json"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("no live API key"),
        "{}",
        stderr(&again)
    );

    // Bad input: clear message, non-zero exit, nothing created.
    let bad_permission = run(
        dir,
        &vars,
        &[
            "admin",
            "create-key",
            "--org",
            &org_id,
            "--name",
            "x",
            "--permission",
            "admin",
        ],
    );
    assert_eq!(bad_permission.status.code(), Some(2));
    assert!(stderr(&bad_permission).contains("full_access"));
    let bad_org = run(
        dir,
        &vars,
        &["admin", "create-key", "--org", "acme", "--name", "x"],
    );
    assert_eq!(bad_org.status.code(), Some(2));
    let unknown_org = run(
        dir,
        &vars,
        &[
            "admin",
            "create-key",
            "--org",
            "0191b6a4-7c0e-7000-8000-000000000000",
            "--name",
            "x",
        ],
    );
    assert_eq!(unknown_org.status.code(), Some(1));
    assert!(stderr(&unknown_org).contains("no organization"));
    let unknown_domain = run(
        dir,
        &vars,
        &[
            "admin",
            "create-key",
            "--org",
            &org_id,
            "--name",
            "x",
            "--permission",
            "sending_access",
            "--domain-id",
            "0191b6a4-7c0e-7000-8000-000000000000",
        ],
    );
    assert_eq!(unknown_domain.status.code(), Some(1));
    assert!(
        stderr(&unknown_domain).contains("has no domain"),
        "{}",
        stderr(&unknown_domain)
    );
    let empty_name = run(dir, &vars, &["admin", "create-org", "  "]);
    assert_eq!(empty_name.status.code(), Some(1));
}

#[test]
fn production_refuses_to_start_and_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        dir.path(),
        &[
            ("APP_URL", "https://mail.example.com"),
            (
                "AUTH_SECRET",
                "local-dev-better-auth-secret-replace-before-production",
            ),
            ("WEBHOOK_SECRET_ENCRYPTION_KEY", "not-hex"),
            ("INGESTER_JOB_TOKEN", "short"),
            ("INGESTER_INBOUND_TOKEN", "short"),
            ("PORT", "0"),
            ("INGESTER_PORT", "0"),
        ],
        &["serve"],
    );
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    for problem in [
        "AUTH_SECRET is a published placeholder value",
        "WEBHOOK_SECRET_ENCRYPTION_KEY must be 32 bytes written as 64 hex characters",
        "INGESTER_JOB_TOKEN is shorter than 32 characters",
        "INGESTER_INBOUND_TOKEN is shorter than 32 characters",
        "INGESTER_JOB_TOKEN and INGESTER_INBOUND_TOKEN have the same value",
    ] {
        assert!(err.contains(problem), "missing `{problem}` in:\n{err}");
    }
    assert!(
        !err.contains("local-dev-better-auth"),
        "secret values are not echoed"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing written before refusing"
    );

    // An existing OpenSend .env (original names) is read and judged the same way, by every serving role.
    std::fs::write(
        dir.path().join(".env"),
        "BETTER_AUTH_URL=https://mail.example.com\n\
         BETTER_AUTH_SECRET=local-dev-better-auth-secret-replace-before-production\n",
    )
    .unwrap();
    for role in ["serve", "api", "ingester"] {
        let output = run(dir.path(), &[], &[role]);
        assert_eq!(output.status.code(), Some(2), "{role}");
        let err = stderr(&output);
        assert!(
            err.contains("AUTH_SECRET is a published placeholder value"),
            "{err}"
        );
        assert!(
            err.contains("WEBHOOK_SECRET_ENCRYPTION_KEY is not set"),
            "{err}"
        );
    }
}

#[test]
fn invalid_settings_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        dir.path(),
        &[("PORT", "http"), ("DELIVERY", "pigeon")],
        &["serve"],
    );
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("PORT") && err.contains("DELIVERY"), "{err}");
}

/// A running `opensend serve` whose stderr is collected line by line.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Server {
    fn start(dir: &Path, vars: &[(&str, &str)]) -> (Self, String) {
        let mut server = Self::spawn(dir, vars, "serve");
        let base = listening_url(&mut server);
        (server, base)
    }

    /// `opensend ROLE` with its stderr collected.
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
        Server {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// SIGKILL: no chance to finish anything.
    fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn wait_for(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "`{needle}` never logged; log so far:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// Sends SIGTERM without waiting for the process to end.
    fn send_sigterm(&self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
    }

    /// SIGTERM, then the exit code and the rest of the log.
    fn terminate(self) -> (Option<i32>, Vec<String>) {
        self.send_sigterm();
        self.exit()
    }

    /// Waits for the process to end; its exit code and the rest of the log.
    fn exit(mut self) -> (Option<i32>, Vec<String>) {
        let status = self.child.wait().expect("wait");
        self.log.extend(self.lines.try_iter());
        (status.code(), std::mem::take(&mut self.log))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test]
async fn serve_with_no_configuration_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let vars = [
        ("PORT", "0"),
        ("INGESTER_PORT", "0"),
        ("LOG_FORMAT", "json"),
    ];
    let (server, base) = Server::start(path, &vars);
    let client = reqwest::Client::new();

    let health: Value = client
        .get(format!("{base}/api/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert!(
        path.join("data/opensend.db").exists(),
        "SQLite under ./data/"
    );
    let secrets_file = path.join("data/secrets.env");
    let secrets = std::fs::read_to_string(&secrets_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secrets_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A key made on the command line works against the running server, and its revocation too.
    let org = last_line(&run(path, &[], &["admin", "create-org", "Laptop"]));
    let key = run(
        path,
        &[],
        &[
            "admin",
            "create-key",
            "--org",
            &org,
            "--name",
            "dev",
            "--json",
        ],
    );
    let key: Value = serde_json::from_str(stdout(&key).trim()).unwrap();
    let token = key["token"].as_str().unwrap().to_owned();
    let list = client
        .get(format!("{base}/api-keys"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    // The default organization limit, and an override set on the command line that the running server
    // applies to requests that start more than the cache epoch check interval after it (the CLI is another
    // process; see docs/configuration.md, "In-process caches").
    assert_eq!(list.headers()["ratelimit-limit"], "20");
    let limited = run(
        path,
        &[],
        &[
            "admin",
            "set-rate-limit",
            "--org",
            &org,
            "--per-second",
            "1",
            "--burst",
            "1",
        ],
    );
    assert!(limited.status.success(), "{}", stderr(&limited));
    tokio::time::sleep(opensend_store::CacheSettings::DEFAULT_EPOCH_CHECK_INTERVAL).await;
    let get = || {
        client
            .get(format!("{base}/api-keys"))
            .bearer_auth(&token)
            .send()
    };
    let first = get().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["ratelimit-limit"], "1");
    let second = get().await.unwrap();
    assert_eq!(second.status(), 429);
    assert!(second.headers().contains_key("retry-after"));
    let revoke = run(
        path,
        &[],
        &["admin", "revoke-key", key["id"].as_str().unwrap()],
    );
    assert!(revoke.status.success());
    tokio::time::sleep(opensend_store::CacheSettings::DEFAULT_EPOCH_CHECK_INTERVAL).await;
    let refused = client
        .get(format!("{base}/api-keys"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);

    let (code, log) = server.terminate();
    assert_eq!(code, Some(0), "graceful exit:\n{}", log.join("\n"));
    // JSON logs, one object per line, and no secret or token in any of them.
    for line in &log {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok(), "not JSON: {line}");
        assert!(!line.contains(&token[3..]), "token logged: {line}");
        for secret in secrets
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(_, v)| v)
        {
            assert!(!line.contains(secret), "secret logged: {line}");
        }
    }

    // A restart keeps the generated secrets instead of making new ones.
    let (server, _) = Server::start(path, &vars);
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
    assert_eq!(std::fs::read_to_string(&secrets_file).unwrap(), secrets);
}

#[tokio::test]
async fn migrate_applies_the_schema_and_reports_where() {
    let db = TestDatabase::new().await;
    let output = run(db.dir(), &[("DATABASE_URL", db.url())], &["migrate"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("migrations applied"));
    let again = run(db.dir(), &[("DATABASE_URL", db.url())], &["migrate"]);
    assert!(again.status.success());
}

#[tokio::test]
async fn set_rate_limit_changes_an_organization_or_a_key_and_refuses_bad_values() {
    let db = TestDatabase::new().await;
    let vars = [("DATABASE_URL", db.url())];
    let dir = db.dir();
    let org = last_line(&run(dir, &vars, &["admin", "create-org", "Acme"]));
    let key: Value = serde_json::from_str(
        stdout(&run(
            dir,
            &vars,
            &[
                "admin",
                "create-key",
                "--org",
                &org,
                "--name",
                "ci",
                "--json",
            ],
        ))
        .trim(),
    )
    .unwrap();
    let key_id = key["id"].as_str().unwrap().to_owned();

    let set = run(
        dir,
        &vars,
        &[
            "admin",
            "set-rate-limit",
            "--org",
            &org,
            "--per-second",
            "50",
            "--burst",
            "100",
        ],
    );
    assert!(set.status.success(), "{}", stderr(&set));
    assert!(stdout(&set).contains("50/s, burst 100"), "{}", stdout(&set));
    assert_eq!(last_line(&set), org);

    let json = run(
        dir,
        &vars,
        &[
            "admin",
            "set-rate-limit",
            "--key",
            &key_id,
            "--per-second",
            "1",
            "--burst",
            "5",
            "--json",
        ],
    );
    let value: Value = serde_json::from_str(stdout(&json).trim()).unwrap();
    assert_eq!(value["object"], "api_key");
    assert_eq!(value["rate_limit"]["burst"], 5);

    let cleared = run(
        dir,
        &vars,
        &[
            "admin",
            "set-rate-limit",
            "--org",
            &org,
            "--clear",
            "--json",
        ],
    );
    let value: Value = serde_json::from_str(stdout(&cleared).trim()).unwrap();
    assert!(value["rate_limit"].is_null(), "{value}");

    // Bad input: a clear message and exit code 2; an unknown target: exit code 1.
    for args in [
        vec!["--org", org.as_str(), "--per-second", "0", "--burst", "1"],
        vec!["--org", org.as_str(), "--per-second", "5"],
        vec!["--per-second", "5", "--burst", "5"],
        vec!["--org", org.as_str(), "--key", key_id.as_str(), "--clear"],
    ] {
        let mut full = vec!["admin", "set-rate-limit"];
        full.extend(args.iter().copied());
        let output = run(dir, &vars, &full);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).is_empty());
    }

    let quota = run(
        dir,
        &vars,
        &[
            "admin",
            "set-quota",
            "--org",
            &org,
            "--daily",
            "1000",
            "--json",
        ],
    );
    assert!(quota.status.success(), "{}", stderr(&quota));
    let value: Value = serde_json::from_str(stdout(&quota).trim()).unwrap();
    assert_eq!(value["daily_email_quota"], 1000);
    assert!(value["monthly_email_quota"].is_null());
    let bad_quota = run(
        dir,
        &vars,
        &["admin", "set-quota", "--org", &org, "--monthly", "0"],
    );
    assert_eq!(bad_quota.status.code(), Some(2), "{}", stderr(&bad_quota));

    let unknown = run(
        dir,
        &vars,
        &[
            "admin",
            "set-rate-limit",
            "--org",
            &uuid::Uuid::nil().to_string(),
            "--clear",
        ],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("no organization"),
        "{}",
        stderr(&unknown)
    );
}

/// Workers are separate processes sharing the queue; one killed mid-batch loses nothing, and after a
/// restart every accepted email is delivered exactly once (capture delivery records each delivery once).
#[tokio::test]
async fn a_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice() {
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
        ("WORKER_CONCURRENCY", "1"),
        ("WORKER_LEASE_SECONDS", "2"),
        ("WORKER_POLL_INTERVAL_MS", "50"),
    ];
    let org = last_line(&run(dir, &vars, &["admin", "create-org", "Crash"]));
    let token = last_line(&run(
        dir,
        &vars,
        &["admin", "create-key", "--org", &org, "--name", "k"],
    ));

    // Accept 300 emails through an API-only process: nothing is delivered yet.
    let mut api = Server::spawn(dir, &vars, "api");
    let base = listening_url(&mut api);
    let client = reqwest::Client::new();
    for batch in 0..3 {
        let emails: Vec<Value> = (0..100)
            .map(|i| serde_json::json!({"from": "a@acme.test", "to": format!("r{batch}-{i}@example.com"), "subject": "s", "text": "t"}))
            .collect();
        let response = client
            .post(format!("{base}/emails/batch"))
            .bearer_auth(&token)
            .json(&emails)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let store = opensend_store::Store::connect(db.url(), 2).await.unwrap();
    assert_eq!(store.delivery_queue().depth().await.unwrap(), 300);

    // A worker starts delivering and is killed partway.
    let worker = Server::spawn(dir, &vars, "worker");
    let mut depth = 300;
    for _ in 0..2000 {
        depth = store.delivery_queue().depth().await.unwrap();
        if depth <= 280 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    worker.crash();
    let left = store.delivery_queue().depth().await.unwrap();
    assert!(
        left > 0 && left < 300,
        "killed mid-batch: {depth} then {left} jobs left"
    );

    // A new worker finishes the rest once the dead worker's lease has run out.
    let worker = Server::spawn(dir, &vars, "worker");
    for _ in 0..400 {
        if store.delivery_queue().depth().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        store.delivery_queue().depth().await.unwrap(),
        0,
        "every job done"
    );
    let _ = worker.terminate();
    let _ = api.terminate();

    let org: uuid::Uuid = org.parse().unwrap();
    let mut after = None;
    let mut sent = 0;
    loop {
        let page = store
            .emails()
            .list(
                org,
                opensend_store::PageRequest::new(100, after.map(opensend_store::Cursor::After))
                    .unwrap(),
            )
            .await
            .unwrap();
        for email in &page.items {
            assert_eq!(
                email.status,
                opensend_core::EmailStatus::Sent,
                "{}",
                email.id
            );
            let events = store.emails().events(org, email.id).await.unwrap();
            let deliveries = events
                .iter()
                .filter(|e| e.event_type == "email.sent")
                .count();
            assert_eq!(
                deliveries, 1,
                "email {} delivered {deliveries} times",
                email.id
            );
            sent += 1;
        }
        if !page.has_more {
            break;
        }
        after = page.items.last().map(|e| e.id);
    }
    assert_eq!(sent, 300);
}

/// A request whose body is still arriving when SIGTERM comes is read to the end and answered before the
/// process exits, and the process then exits cleanly.
#[tokio::test]
async fn a_request_in_flight_during_sigterm_completes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let db = TestDatabase::new().await;
    let dir = db.dir();
    let vars = [
        ("DATABASE_URL", db.url()),
        ("BIND_ADDRESS", "127.0.0.1"),
        ("PORT", "0"),
        ("INGESTER_PORT", "0"),
    ];
    let org = last_line(&run(dir, &vars, &["admin", "create-org", "Acme"]));
    let token = last_line(&run(
        dir,
        &vars,
        &["admin", "create-key", "--org", &org, "--name", "k"],
    ));
    let (mut server, base) = Server::start(dir, &vars);
    let address = base.trim_start_matches("http://").to_owned();

    let body = serde_json::json!({
        "from": "hello@example.com", "to": "jane@example.net", "subject": "In flight", "text": "t",
    })
    .to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut connection = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /emails HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    connection.write_all(head.as_bytes()).await.unwrap();
    connection.write_all(first.as_bytes()).await.unwrap();
    connection.flush().await.unwrap();
    // The request is in the server's hands (its body half read) when the signal arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.send_sigterm();
    server.wait_for("shutting down");
    connection.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    connection.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"id\""), "{answer}");
    let (code, log) = server.exit();
    assert_eq!(code, Some(0), "{}", log.join("\n"));
}

/// The base URL an `api` or `serve` process logged.
fn listening_url(server: &mut Server) -> String {
    let line = server.wait_for("API listening on http://");
    format!(
        "http://{}",
        line.split("http://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap()
    )
    .replace("0.0.0.0", "127.0.0.1")
}

/// A dispatcher killed while its request is in flight loses nothing: once its lease runs out another
/// dispatcher delivers the same message (same `webhook-id`) and records it.
#[tokio::test]
async fn a_dispatcher_killed_mid_attempt_leaves_the_delivery_to_be_retried() {
    use opensend_test_support::webhook_receiver::{Reply, WebhookReceiver};
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
        ("ALLOW_PRIVATE_WEBHOOK_URLS", "true"),
        ("WORKER_POLL_INTERVAL_MS", "50"),
        ("WEBHOOK_TIMEOUT_SECONDS", "30"),
        ("WEBHOOK_LEASE_SECONDS", "31"),
    ];
    let org = last_line(&run(dir, &vars, &["admin", "create-org", "Crash"]));
    let token = last_line(&run(
        dir,
        &vars,
        &["admin", "create-key", "--org", &org, "--name", "k"],
    ));
    // The first request hangs far longer than the test; the next is answered at once.
    let receiver =
        WebhookReceiver::start(vec![Reply::status(200).delay(Duration::from_secs(600))]).await;

    let mut server = Server::spawn(dir, &vars, "serve");
    let base = listening_url(&mut server);
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{base}/webhooks"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"endpoint": receiver.url(), "events": ["email.sent"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let webhook_id = created["id"].as_str().expect("webhook created").to_owned();
    let response = client
        .post(format!("{base}/emails"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"from": "a@acme.test", "to": "r@example.com", "subject": "s", "text": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The request reaches the endpoint (it hangs there) and the process dies.
    for _ in 0..400 {
        if !receiver.received().is_empty() || receiver_busy(&receiver) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let store = opensend_store::Store::connect(db.url(), 2).await.unwrap();
    let org_id: uuid::Uuid = org.parse().unwrap();
    let webhook: uuid::Uuid = webhook_id.parse().unwrap();
    let deliveries = |store: opensend_store::Store| async move {
        store
            .webhooks()
            .deliveries(org_id, webhook, opensend_store::PageRequest::default())
            .await
            .unwrap()
            .items
    };
    let mut leased = false;
    for _ in 0..400 {
        if deliveries(store.clone())
            .await
            .first()
            .is_some_and(|d| d.lease_owner.is_some())
        {
            leased = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(leased, "the delivery was never claimed");
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.crash();

    // Another process with a short lease picks the delivery up and finishes it.
    let mut restarted_vars = vars.to_vec();
    restarted_vars.retain(|(k, _)| !k.starts_with("WEBHOOK_"));
    restarted_vars.push(("WEBHOOK_TIMEOUT_SECONDS", "2"));
    restarted_vars.push(("WEBHOOK_LEASE_SECONDS", "3"));
    // Make the dead process's lease expire now rather than in 31 s, as time passing would.
    expire_leases(db.url()).await;
    let worker = Server::spawn(dir, &restarted_vars, "worker");
    let delivered = receiver.wait_for(1, Duration::from_secs(30)).await;
    let mut finished = None;
    for _ in 0..400 {
        let list = deliveries(store.clone()).await;
        if list
            .first()
            .is_some_and(|d| d.status == opensend_core::DeliveryStatus::Succeeded)
        {
            finished = list.into_iter().next();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let finished = finished.expect("the delivery succeeded after the restart");
    assert_eq!(finished.attempts, 2, "the crashed attempt counts");
    assert_eq!(
        delivered[0].header("webhook-id"),
        format!("msg_{}", finished.message_id.simple())
    );
    let _ = worker.terminate();
}

/// Whether the receiver is holding a request (it records a request only once it has answered it).
fn receiver_busy(receiver: &opensend_test_support::webhook_receiver::WebhookReceiver) -> bool {
    receiver.in_flight() > 0
}

async fn expire_leases(url: &str) {
    use opensend_store::entities::webhook_delivery;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, Database, EntityTrait, QueryFilter};
    let db = Database::connect(url).await.unwrap();
    webhook_delivery::Entity::update_many()
        .col_expr(
            webhook_delivery::Column::LeaseExpiresAt,
            Expr::value(Some(chrono::Utc::now() - chrono::TimeDelta::seconds(1))),
        )
        .filter(webhook_delivery::Column::LeaseOwner.is_not_null())
        .exec(&db)
        .await
        .unwrap();
    let _ = db.close().await;
}

/// A process started with another encryption key than the stored secrets were sealed with refuses to
/// start and says why; `admin rotate-encryption-key` moves every secret to the new key.
#[tokio::test]
async fn a_wrong_encryption_key_stops_the_start_and_rotation_moves_to_a_new_one() {
    let db = TestDatabase::new().await;
    let dir = db.dir();
    let data = db.path("data").display().to_string();
    let old_key = "11".repeat(32);
    let new_key = "22".repeat(32);
    let base_vars = [
        ("DATABASE_URL", db.url()),
        ("DATA_DIR", data.as_str()),
        ("PORT", "0"),
        ("INGESTER_PORT", "0"),
    ];
    let with_key = |current: &str, previous: Option<&str>| {
        let mut vars: Vec<(String, String)> = base_vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.push(("WEBHOOK_SECRET_ENCRYPTION_KEY".into(), current.to_owned()));
        if let Some(previous) = previous {
            vars.push((
                "WEBHOOK_SECRET_ENCRYPTION_KEY_PREVIOUS".into(),
                previous.to_owned(),
            ));
        }
        vars
    };
    let as_refs = |vars: &Vec<(String, String)>| -> Vec<(String, String)> { vars.clone() };
    let old = as_refs(&with_key(&old_key, None));
    let old: Vec<(&str, &str)> = old.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let org = last_line(&run(dir, &old, &["admin", "create-org", "Keys"]));
    let token = last_line(&run(
        dir,
        &old,
        &["admin", "create-key", "--org", &org, "--name", "k"],
    ));
    let (server, base) = Server::start(dir, &old);
    let created = reqwest::Client::new()
        .post(format!("{base}/domains"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "keys.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let _ = server.terminate();

    // The new key alone cannot open what the old one sealed: refused at start, exit code 2.
    let new_only = with_key(&new_key, None);
    let new_only: Vec<(&str, &str)> = new_only
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let refused = opensend(dir, &new_only).arg("serve").output().unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("rotate-encryption-key"),
        "{}",
        stderr(&refused)
    );

    // With the old key as previous, rotation re-seals everything; then the new key alone starts.
    let rotating = with_key(&new_key, Some(&old_key));
    let rotating: Vec<(&str, &str)> = rotating
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let rotated = run(
        dir,
        &rotating,
        &["admin", "rotate-encryption-key", "--json"],
    );
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let report: Value = serde_json::from_str(&last_line(&rotated)).unwrap();
    assert_eq!(report["dkim_keys"], 2, "{report}");
    let again = run(
        dir,
        &rotating,
        &["admin", "rotate-encryption-key", "--json"],
    );
    let report: Value = serde_json::from_str(&last_line(&again)).unwrap();
    assert_eq!(
        report["dkim_keys"], 0,
        "a second run has nothing left to do: {report}"
    );
    let (server, _) = Server::start(dir, &new_only);
    let (code, log) = server.terminate();
    assert_eq!(code, Some(0), "{}", log.join("\n"));
}

/// Roles split across processes, with no worker: the scheduler triggers the ingester's jobs, and the
/// `dispatch-scheduled` job delivers what the API accepted. A scheduler with the wrong token gets nothing
/// done.
#[tokio::test]
async fn the_scheduler_drives_the_jobs_through_the_ingester() {
    let db = TestDatabase::new().await;
    let dir = db.dir();
    let data = db.path("data").display().to_string();
    let port = opensend_test_support::peers::free_port().to_string();
    let token = "a-job-token-that-is-long-enough-0123456789";
    let vars = [
        ("DATABASE_URL", db.url()),
        ("DATA_DIR", data.as_str()),
        ("PORT", "0"),
        ("INGESTER_PORT", port.as_str()),
        ("INGESTER_JOB_TOKEN", token),
        ("INGESTER_SCHEDULER_INTERVAL_SECONDS", "10"),
    ];
    let org = last_line(&run(dir, &vars, &["admin", "create-org", "Jobs"]));
    let key = last_line(&run(
        dir,
        &vars,
        &["admin", "create-key", "--org", &org, "--name", "k"],
    ));
    let mut api = Server::spawn(dir, &vars, "api");
    let base = listening_url(&mut api);
    let mut ingester = Server::spawn(dir, &vars, "ingester");
    ingester.wait_for("ingester listening");
    let client = reqwest::Client::new();
    let sent: Value = client
        .post(format!("{base}/emails"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"from": "a@acme.test", "to": "r@example.com", "subject": "s", "text": "t"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = sent["id"].as_str().unwrap().to_owned();
    let status = || async {
        let email: Value = client
            .get(format!("{base}/emails/{id}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        email["last_event"].as_str().unwrap_or_default().to_owned()
    };

    // A scheduler holding the wrong token is refused; the email stays queued.
    let mut wrong_vars = vars.to_vec();
    wrong_vars.retain(|(k, _)| *k != "INGESTER_JOB_TOKEN");
    wrong_vars.push((
        "INGESTER_JOB_TOKEN",
        "not-the-token-but-just-as-long-0123456789",
    ));
    let mut wrong = Server::spawn(dir, &wrong_vars, "scheduler");
    let refused = wrong.wait_for("refused or failed");
    assert!(refused.contains("401"), "{refused}");
    let _ = wrong.terminate();
    assert_eq!(status().await, "queued");

    let mut scheduler = Server::spawn(dir, &vars, "scheduler");
    scheduler.wait_for("job dispatch-scheduled ran");
    let mut last = String::new();
    for _ in 0..200 {
        last = status().await;
        if last == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last, "sent");
    let (code, _) = scheduler.terminate();
    assert_eq!(code, Some(0));
    let _ = ingester.terminate();
    let _ = api.terminate();
}

#[tokio::test]
async fn create_user_makes_owners_with_a_piped_or_generated_password() {
    use std::io::Write;
    let db = TestDatabase::new().await;
    let vars = [("DATABASE_URL", db.url())];
    let dir = db.dir();
    let org = last_line(&run(dir, &vars, &["admin", "create-org", "Acme Inc"]));

    // A password piped in is used and never printed.
    let mut child = opensend(dir, &vars)
        .args([
            "admin",
            "create-user",
            "--email",
            "Ops@Acme.test",
            "--org",
            &org,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped in password\n")
        .unwrap();
    let piped = child.wait_with_output().unwrap();
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert!(
        stdout(&piped).contains("as owner of organization"),
        "{}",
        stdout(&piped)
    );
    assert!(!stdout(&piped).contains("piped in password"));
    assert!(
        uuid::Uuid::try_parse(&last_line(&piped)).is_ok(),
        "{}",
        stdout(&piped)
    );

    // Nothing on stdin: a password is generated and printed once, on the last line.
    let generated = run(
        dir,
        &vars,
        &[
            "admin",
            "create-user",
            "--email",
            "second@acme.test",
            "--json",
        ],
    );
    assert!(generated.status.success(), "{}", stderr(&generated));
    let value: Value = serde_json::from_str(stdout(&generated).trim()).unwrap();
    assert_eq!(value["created"], true);
    assert_eq!(value["password"].as_str().unwrap().len(), 24);

    // An existing user is made owner of another organization, their password untouched.
    let other = last_line(&run(dir, &vars, &["admin", "create-org", "Other"]));
    let again = run(
        dir,
        &vars,
        &[
            "admin",
            "create-user",
            "--email",
            "ops@acme.test",
            "--org",
            &other,
            "--json",
        ],
    );
    assert!(again.status.success(), "{}", stderr(&again));
    let value: Value = serde_json::from_str(stdout(&again).trim()).unwrap();
    assert_eq!(
        (value["created"].clone(), value["role"].clone()),
        (Value::Bool(false), Value::from("owner"))
    );
    assert!(value["password"].is_null());

    // A bad address is a configuration error (exit code 2).
    let bad = run(
        dir,
        &vars,
        &["admin", "create-user", "--email", "not an address"],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));

    let store = opensend_store::Store::connect(db.url(), 2).await.unwrap();
    let user = store
        .users()
        .find_by_email_key("ops@acme.test")
        .await
        .unwrap()
        .unwrap();
    let organizations = store.members().organizations_of(user.id).await.unwrap();
    assert_eq!(organizations.len(), 2);
    assert!(
        organizations
            .iter()
            .all(|(_, role)| *role == opensend_core::Role::Owner)
    );
    assert!(
        opensend_server::accounts::verify_password(
            secrecy::SecretString::from("piped in password"),
            Some(user.password_hash)
        )
        .await
    );
}

#[tokio::test]
async fn set_password_replaces_the_password_and_signs_the_user_out() {
    use std::io::Write;
    let db = TestDatabase::new().await;
    let vars = [("DATABASE_URL", db.url())];
    let dir = db.dir();
    let mut child = opensend(dir, &vars)
        .args(["admin", "create-user", "--email", "ops@acme.test"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"the first password\n")
        .unwrap();
    let created = child.wait_with_output().unwrap();
    assert!(created.status.success(), "{}", stderr(&created));

    let store = opensend_store::Store::connect(db.url(), 2).await.unwrap();
    let user = store
        .users()
        .find_by_email_key("ops@acme.test")
        .await
        .unwrap()
        .unwrap();
    let token = opensend_core::OpaqueToken::generate().unwrap();
    store
        .users()
        .open_session(opensend_store::repos::NewSession {
            user_id: user.id,
            token_hash: token.hash(),
            organization_id: None,
            client_ip: None,
            expires_at: chrono::Utc::now() + chrono::TimeDelta::days(1),
        })
        .await
        .unwrap();

    // Nothing on stdin: a new password is generated, printed once, and is the only one that works.
    let reset = run(
        dir,
        &vars,
        &[
            "admin",
            "set-password",
            "--email",
            "OPS@acme.test",
            "--json",
        ],
    );
    assert!(reset.status.success(), "{}", stderr(&reset));
    let value: Value = serde_json::from_str(stdout(&reset).trim()).unwrap();
    let password = value["password"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), 24);
    let hash = store
        .users()
        .get(user.id)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(
        opensend_server::accounts::verify_password(
            secrecy::SecretString::from(password),
            Some(hash.clone())
        )
        .await
    );
    assert!(
        !opensend_server::accounts::verify_password(
            secrecy::SecretString::from("the first password"),
            Some(hash)
        )
        .await
    );
    // The session opened with the old password is gone.
    assert!(
        store
            .users()
            .session_by_hash(&token.hash(), chrono::Utc::now())
            .await
            .unwrap()
            .is_none()
    );

    // An unknown address is an error that names it; a bad address is a configuration error.
    let unknown = run(
        dir,
        &vars,
        &["admin", "set-password", "--email", "nobody@acme.test"],
    );
    assert_eq!(unknown.status.code(), Some(1), "{}", stderr(&unknown));
    assert!(stderr(&unknown).contains("nobody@acme.test"));
    let bad = run(
        dir,
        &vars,
        &["admin", "set-password", "--email", "not an address"],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
}

/// A production start with the SMTP relay on and no certificate files is refused with exit code 2 and says
/// what to set; with the relay off it would start.
#[test]
fn a_production_smtp_relay_without_a_certificate_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let setup = run(dir.path(), &[], &["setup"]);
    assert!(setup.status.success(), "{}", stderr(&setup));
    let db = format!("sqlite://{}/db.sqlite", dir.path().display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
        .to_string();
    let output = run(
        dir.path(),
        &[
            ("DATABASE_URL", &db),
            ("APP_URL", "https://mail.example.com"),
            ("BIND_ADDRESS", "127.0.0.1"),
            ("PORT", "0"),
            ("INGESTER_PORT", "0"),
            ("DELIVERY", "smtp"),
            ("SMTP_URL", "smtp://127.0.0.1:9?tls=none"),
            ("SMTP_PORT", &port),
        ],
        &["smtp"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("SMTP_TLS_CERT"),
        "{}",
        stderr(&output)
    );
}
