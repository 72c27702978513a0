//! Starting the Python test peers (aiosmtpd sink, moto's server) as child processes on loopback.
//!
//! When a peer is not installed the test fails under `CI=true` and is skipped with a message otherwise
//! (`bash tests/peers/install.sh` installs them).

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opensend_core::EmailAddress;
use opensend_mail::transport::Envelope;

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

pub fn address(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("test address")
}

pub fn envelope(from: &str, to: &[&str]) -> Envelope {
    Envelope {
        mail_from: address(from),
        recipients: to.iter().map(|a| address(a)).collect(),
    }
}
