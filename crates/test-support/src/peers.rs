//! Starting the Python test peers (aiosmtpd sink, moto's server) as child processes on loopback.
//!
//! When a peer is not installed the test fails under `CI=true` and is skipped with a message otherwise
//! (`bash tests/peers/install.sh` installs them).

use base64::Engine as _;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers")
}

/// True when the Python modules are importable. Otherwise panics under CI, or prints why and returns
/// false so the caller can return early.
pub fn peer_available(test: &str, module: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        return true;
    }
    let message = format!(
        "{test}: Python module `{module}` is not installed; run `bash tests/peers/install.sh`"
    );
    let in_ci = std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"));
    if in_ci {
        panic!("{message}");
    }
    // Straight to the process's stderr: libtest would swallow eprintln! output of a passing test.
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED {message}");
    false
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A child process killed (by its own id) when the guard is dropped.
pub struct Peer {
    pub child: Child,
    pub port: u16,
    pub name: &'static str,
}

impl Peer {
    pub fn spawn(name: &'static str, mut command: Command, port: u16) -> Peer {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let mut peer = Peer { child, port, name };
        peer.wait_listening(Duration::from_secs(30));
        peer
    }

    fn wait_listening(&mut self, limit: Duration) {
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let started = Instant::now();
        loop {
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited before listening on {}: {status}",
                    self.name, self.port
                );
            }
            assert!(
                started.elapsed() < limit,
                "{} did not listen on port {} within {limit:?}",
                self.name,
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The aiosmtpd sink (`tests/peers/smtp_sink.py`): every accepted message lands as a JSON file.
pub struct SmtpSink {
    pub peer: Peer,
    dir: tempfile::TempDir,
    args: Vec<String>,
}

/// One message as the sink received it.
#[derive(Debug)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub data: Vec<u8>,
    pub mail_options: Vec<String>,
    pub auth_user: Option<String>,
    pub tls: bool,
}

impl SmtpSink {
    pub fn start(args: &[&str]) -> SmtpSink {
        let dir = tempfile::tempdir().expect("temp dir");
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let peer = Self::spawn(free_port(), &dir, &args);
        SmtpSink { peer, dir, args }
    }

    fn spawn(port: u16, dir: &tempfile::TempDir, args: &[String]) -> Peer {
        let mut command = Command::new("python3");
        command
            .arg(peers_dir().join("smtp_sink.py"))
            .arg("--port")
            .arg(port.to_string())
            .arg("--dir")
            .arg(dir.path().join("mail"))
            .args(args);
        Peer::spawn("smtp sink", command, port)
    }

    /// A sink that offers STARTTLS with a certificate from a throw-away CA (in `tls_dir()/ca.pem`).
    pub fn start_with_tls() -> SmtpSink {
        let dir = tempfile::tempdir().expect("temp dir");
        let tls_dir = dir.path().join("tls").display().to_string();
        let args = vec!["--starttls-dir".to_owned(), tls_dir];
        let peer = Self::spawn(free_port(), &dir, &args);
        SmtpSink { peer, dir, args }
    }

    /// Stops the server and starts a new one on the same port (the pool's connections die with it).
    pub fn restart(&mut self) {
        self.peer.stop();
        self.peer = Self::spawn(self.peer.port, &self.dir, &self.args);
    }

    pub fn url(&self, extra: &str) -> String {
        format!("smtp://127.0.0.1:{}?tls=none{extra}", self.peer.port)
    }

    pub fn tls_dir(&self) -> PathBuf {
        self.dir.path().join("tls")
    }

    pub fn messages(&self) -> Vec<Received> {
        let Ok(entries) = std::fs::read_dir(self.dir.path().join("mail")) else {
            return Vec::new();
        };
        let mut names: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path).expect("sink file");
                let v: serde_json::Value = serde_json::from_str(&text).expect("sink json");
                let strings = |key: &str| -> Vec<String> {
                    v[key]
                        .as_array()
                        .expect("array")
                        .iter()
                        .map(|s| s.as_str().expect("string").to_owned())
                        .collect()
                };
                Received {
                    mail_from: v["mail_from"].as_str().expect("mail_from").to_owned(),
                    rcpt_tos: strings("rcpt_tos"),
                    data: base64::engine::general_purpose::STANDARD
                        .decode(v["data_b64"].as_str().expect("data"))
                        .expect("base64"),
                    mail_options: strings("mail_options"),
                    auth_user: v["auth_user"].as_str().map(str::to_owned),
                    tls: v["tls"].as_bool().expect("tls"),
                }
            })
            .collect()
    }
}
