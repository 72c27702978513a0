//! Binding the SMTP ports of a process (`SMTP_PORT`, `SMTPS_PORT`, `MX_PORT` on `BIND_ADDRESS`) and
//! serving each connection in its own task, at most `MAX_CONCURRENT_REQUESTS` at once per port (one more is
//! answered `421 4.7.0` and closed). On stop, a listener stops accepting, idle sessions are told
//! `421 4.3.2`, and a message being read or accepted is finished first.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::session::{self, Listener, Mode};
use super::tls;
use crate::state::AppState;

/// Where the SMTP listeners of this process listen (`None`: off).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SmtpAddrs {
    pub submission: Option<SocketAddr>,
    pub submission_tls: Option<SocketAddr>,
    pub mx: Option<SocketAddr>,
}

impl SmtpAddrs {
    /// The listeners that are on, named for the start log.
    pub fn named(&self) -> Vec<(&'static str, SocketAddr)> {
        [
            ("SMTP submission (STARTTLS)", self.submission),
            ("SMTP submission (implicit TLS)", self.submission_tls),
            ("SMTP inbound (MX)", self.mx),
        ]
        .into_iter()
        .filter_map(|(what, addr)| addr.map(|a| (what, a)))
        .collect()
    }
}

/// Binds the SMTP listeners the configuration turns on and spawns them into `tasks`.
pub async fn start(
    state: &AppState,
    stopped: &watch::Receiver<bool>,
    tasks: &mut JoinSet<std::io::Result<()>>,
) -> std::io::Result<SmtpAddrs> {
    let listen = &state.config.listen;
    let (smtp_port, smtps_port) = relay_ports(&state.config);
    let relay_on = smtp_port.is_some() || smtps_port.is_some();
    if !relay_on && listen.mx_port.is_none() {
        return Ok(SmtpAddrs::default());
    }
    let invalid = |e: tls::TlsError| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    // The relay cannot work without TLS (AUTH is only offered over it); the MX can, without STARTTLS.
    let tls = tls::acceptor(&state.config, relay_on).map_err(invalid)?;
    if let Some((_, tls::Source::SelfSigned)) = &tls {
        tracing::warn!(
            "SMTP listeners use a self-signed certificate made at start (local deployment); set \
             SMTP_TLS_CERT and SMTP_TLS_KEY for one clients trust"
        );
    }
    let acceptor = tls.map(|(acceptor, _)| acceptor);
    let hostname = state
        .config
        .app_url
        .host_str()
        .unwrap_or("localhost")
        .to_owned();
    let listener = |mode, implicit_tls| Listener {
        state: state.clone(),
        mode,
        tls: acceptor.clone(),
        implicit_tls,
        hostname: hostname.clone(),
    };
    let mut addrs = SmtpAddrs::default();
    if let Some(port) = smtp_port {
        addrs.submission =
            Some(bind(port, listener(Mode::Submission, false), stopped, tasks).await?);
    }
    if let Some(port) = smtps_port {
        addrs.submission_tls =
            Some(bind(port, listener(Mode::Submission, true), stopped, tasks).await?);
    }
    if let Some(port) = listen.mx_port {
        addrs.mx = Some(bind(port, listener(Mode::Inbound, false), stopped, tasks).await?);
    }
    Ok(addrs)
}

/// The relay's ports that are on. A production deployment without certificate files that never set
/// `SMTP_PORT` or `SMTPS_PORT` runs without the relay (with a warning) instead of refusing to start: the relay's
/// default ports must not make an upgrade fail. Asked for explicitly, the missing certificate is an error
/// (see [`tls::acceptor`]).
fn relay_ports(config: &crate::config::Config) -> (Option<u16>, Option<u16>) {
    let listen = &config.listen;
    let on = listen.smtp_port.is_some() || listen.smtps_port.is_some();
    if on && listen.smtp_tls.is_none() && config.is_production() && !listen.smtp_relay_requested {
        tracing::warn!(
            "the SMTP submission relay is off: a production deployment needs SMTP_TLS_CERT and \
             SMTP_TLS_KEY for it (set them, or set SMTP_PORT/SMTPS_PORT to make their absence an error)"
        );
        return (None, None);
    }
    (listen.smtp_port, listen.smtps_port)
}

async fn bind(
    port: u16,
    listener: Listener,
    stopped: &watch::Receiver<bool>,
    tasks: &mut JoinSet<std::io::Result<()>>,
) -> std::io::Result<SocketAddr> {
    let ip = listener.state.config.listen.bind_address;
    let socket = TcpListener::bind(SocketAddr::new(ip, port))
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {ip}:{port}: {e}")))?;
    let addr = socket.local_addr()?;
    let mut stop = stopped.clone();
    let sessions_stop = stopped.clone();
    let slots = Arc::new(Semaphore::new(
        listener.state.config.listen.max_concurrent_requests,
    ));
    tasks.spawn(async move {
        let mut sessions = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                accepted = socket.accept() => accepted,
                _ = stop.wait_for(|stop| *stop) => break,
            };
            // Reap finished sessions so the set does not grow with the connections ever made.
            while sessions.try_join_next().is_some() {}
            let (mut stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "SMTP accept failed");
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                sessions.spawn(async move {
                    let _ = stream
                        .write_all(b"421 4.7.0 Too many connections; try again later.\r\n")
                        .await;
                });
                continue;
            };
            let listener = listener.clone();
            let stop = sessions_stop.clone();
            sessions.spawn(async move {
                session::serve(listener, stream, peer, stop).await;
                drop(slot);
            });
        }
        while sessions.join_next().await.is_some() {}
        Ok(())
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Vars};

    #[test]
    fn production_without_a_certificate_leaves_the_relay_off_unless_it_was_asked_for() {
        let production = [("APP_URL", "https://mail.example.com")];
        let config = Config::from_vars(&Vars::from_pairs(production)).unwrap();
        assert_eq!(relay_ports(&config), (None, None));
        let asked = Config::from_vars(&Vars::from_pairs([
            ("APP_URL", "https://mail.example.com"),
            ("SMTPS_PORT", "465"),
        ]))
        .unwrap();
        assert_eq!(relay_ports(&asked), (Some(2587), Some(465)));
        let local = Config::from_vars(&Vars::default()).unwrap();
        assert_eq!(relay_ports(&local), (Some(2587), Some(2465)));
    }
}
