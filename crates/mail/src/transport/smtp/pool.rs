//! Connections to the smarthost kept open between sends: at most `max_connections` at once, idle ones
//! closed after `idle_timeout`, each replaced after [`MAX_MESSAGES_PER_CONNECTION`] messages.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::transport::smtp::client::AsyncSmtpConnection;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

use crate::transport::TransportError;

/// Messages sent over one connection before it is replaced (servers commonly cap this at 100 or so).
pub const MAX_MESSAGES_PER_CONNECTION: u32 = 100;

/// An open session, with what the pool needs to know about it.
pub(super) struct PooledConnection {
    pub(super) connection: AsyncSmtpConnection,
    idle_since: Instant,
    messages_sent: u32,
}

impl PooledConnection {
    pub(super) fn new(connection: AsyncSmtpConnection) -> Self {
        Self {
            connection,
            idle_since: Instant::now(),
            messages_sent: 0,
        }
    }

    /// Counts a message the server accepted over this connection.
    pub(super) fn count_message(&mut self) {
        self.messages_sent += 1;
    }

    /// Says goodbye (`QUIT`), waiting at most `timeout` for the answer.
    async fn quit(mut self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.connection.quit()).await;
    }
}

pub(super) struct Pool {
    idle: Mutex<Vec<PooledConnection>>,
    /// One permit per send in progress. A send opens a connection only when none is idle, so open
    /// connections (in use plus idle) never exceed the number of permits.
    permits: Arc<Semaphore>,
    idle_timeout: Duration,
    /// How long `QUIT` may take when a connection is closed politely.
    quit_timeout: Duration,
}

impl Pool {
    pub(super) fn new(
        max_connections: usize,
        idle_timeout: Duration,
        quit_timeout: Duration,
    ) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
            idle_timeout,
            quit_timeout,
        }
    }

    /// Waits for a free slot; hold the permit for the whole send.
    pub(super) async fn permit(&self) -> Result<OwnedSemaphorePermit, TransportError> {
        Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| TransportError::Temporary("smtp: transport closed".to_owned()))
    }

    /// The most recently used idle connection that has not expired, if any.
    pub(super) async fn take_idle(&self) -> Option<PooledConnection> {
        let mut idle = self.idle.lock().await;
        // Most recently used first: it is the least likely to have been closed by the server.
        while let Some(pooled) = idle.pop() {
            if pooled.idle_since.elapsed() < self.idle_timeout {
                return Some(pooled);
            }
            // Expired: dropping closes the socket. No QUIT, to keep the lock short.
        }
        None
    }

    /// Keeps a connection in a known state for the next send, or closes it once it has carried its share.
    pub(super) async fn put_idle(&self, mut pooled: PooledConnection) {
        if pooled.messages_sent >= MAX_MESSAGES_PER_CONNECTION {
            pooled.quit(self.quit_timeout).await;
            return;
        }
        pooled.idle_since = Instant::now();
        let mut idle = self.idle.lock().await;
        // Drop what expired while we were sending, so a quiet pool does not keep sockets open.
        idle.retain(|p| p.idle_since.elapsed() < self.idle_timeout);
        idle.push(pooled);
    }

    /// Closes every idle connection politely (`QUIT`).
    pub(super) async fn close_idle(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().await);
        for pooled in idle {
            pooled.quit(self.quit_timeout).await;
        }
    }
}
