//! SMTP delivery to a smarthost (`DELIVERY=smtp`, `SMTP_URL`).
//!
//! The transaction is driven command by command on lettre's protocol client rather than through
//! lettre's high-level transport, because that one gives up on the first refused `RCPT TO` and reports
//! nothing per recipient. Here every recipient gets its own reply:
//!
//! - Each `RCPT TO` is answered on its own. Refused recipients are reported `accepted: false` with the
//!   server's reply; the message still goes to the accepted ones.
//! - Nobody accepted: if any refusal was 4xx the send is [`TransportError::Temporary`] (a retry may
//!   succeed for those), otherwise [`TransportError::Permanent`].
//! - Some accepted, some refused with 4xx: the send succeeds; the 4xx recipients are `accepted: false`
//!   and [`super::RecipientOutcome::is_temporary_failure`] is true for them, so the worker can retry just
//!   those later. Retrying the whole message would deliver it twice to the accepted ones.
//! - `MAIL FROM` or `DATA` refused: 4xx → temporary, 5xx → permanent. Connection refused, TLS or
//!   authentication failures and timeouts are temporary: they say nothing about the message, and a
//!   configuration mistake must not fail every queued email at once.
//!
//! Connections are pooled (at most `max_connections`, idle ones closed after `idle_timeout`). A pooled
//! connection that the server has meanwhile closed is detected at `MAIL FROM` and the transaction is
//! replayed once on a fresh connection, so a stale connection never turns into a failure of the message.
//! A connection whose state is unknown (timeout, I/O error mid-command) is never reused.
//!
//! The message goes out byte for byte (dot-stuffing is undone by the server). Bare CR or LF, which SMTP
//! cannot carry and which are the raw material of SMTP smuggling, are normalised to CRLF first.
//!
//! `settings` holds the configuration and its `SMTP_URL` spelling, `pool` the reuse of connections,
//! `session` one conversation with the server.

mod pool;
mod session;
mod settings;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

pub use pool::MAX_MESSAGES_PER_CONNECTION;
pub use settings::{
    DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DATA_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS, SmtpConfigError, SmtpCredentials, SmtpSettings, SmtpTls,
};

use super::{Envelope, SendOutcome, Transport, TransportError};
use pool::{Pool, PooledConnection};
use session::{After, Smarthost, normalise_line_endings};

/// Delivers through one smarthost over a small pool of connections. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct SmtpTransport {
    inner: Arc<Inner>,
}

struct Inner {
    smarthost: Smarthost,
    pool: Pool,
}

impl fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("settings", self.settings())
            .finish_non_exhaustive()
    }
}

impl SmtpTransport {
    /// Builds the transport; opens no connection yet (the first send does).
    pub fn new(settings: SmtpSettings) -> Result<Self, SmtpConfigError> {
        let pool = Pool::new(
            settings.max_connections,
            settings.idle_timeout,
            settings.command_timeout,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                smarthost: Smarthost::new(settings)?,
                pool,
            }),
        })
    }

    /// Parses `SMTP_URL` and builds the transport.
    pub fn from_url(url: &str) -> Result<Self, SmtpConfigError> {
        Self::new(SmtpSettings::from_url(url)?)
    }

    pub fn settings(&self) -> &SmtpSettings {
        &self.inner.smarthost.settings
    }

    /// Closes idle connections politely (`QUIT`). Connections in use are closed when their send ends.
    pub async fn close_idle(&self) {
        self.inner.pool.close_idle().await;
    }
}

#[async_trait]
impl Transport for SmtpTransport {
    fn name(&self) -> &'static str {
        "smtp"
    }

    async fn send(
        &self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<SendOutcome, TransportError> {
        if envelope.recipients.is_empty() {
            return Err(TransportError::Permanent("smtp: no recipients".to_owned()));
        }
        let message = normalise_line_endings(message);
        let Inner { smarthost, pool } = &*self.inner;
        let _permit = pool.permit().await?;

        let (mut pooled, mut reused) = match pool.take_idle().await {
            Some(p) => (p, true),
            None => (PooledConnection::new(smarthost.open().await?), false),
        };
        loop {
            match smarthost
                .transaction(&mut pooled.connection, envelope, &message)
                .await
            {
                Ok(outcome) => {
                    pooled.count_message();
                    pool.put_idle(pooled).await;
                    return Ok(outcome);
                }
                Err(failure) => {
                    let stale = reused && failure.is_stale_connection();
                    match failure.connection {
                        // A refused command may leave a transaction open; RSET closes it so the next
                        // message starts clean. If even that fails, the connection is not worth keeping.
                        After::Reusable => {
                            if smarthost.reset(&mut pooled.connection).await {
                                pool.put_idle(pooled).await;
                            } else {
                                pooled.connection.abort().await;
                            }
                        }
                        After::Broken => pooled.connection.abort().await,
                    }
                    if stale {
                        tracing::debug!(
                            "pooled SMTP connection was closed by the server; reconnecting"
                        );
                        pooled = PooledConnection::new(smarthost.open().await?);
                        reused = false;
                        continue;
                    }
                    return Err(failure.error);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let settings = SmtpSettings::from_url("smtp://user:hunter2@h.example").unwrap();
        let transport = SmtpTransport::new(settings).unwrap();
        let shown = format!("{transport:?}");
        assert!(shown.contains("user"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
