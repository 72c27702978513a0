//! Connecting to the database.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgConnectOptions, PgSslMode};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, TransactionTrait};
use sea_orm_migration::MigratorTrait;

use std::sync::Arc;

use crate::StoreError;
use crate::caches::{CacheSettings, Caches};
use crate::migrations::Migrator;
use crate::repos::accept_writer::AcceptWriter;
use crate::repos::webhook_outbox::ClaimCursor;
use crate::repos::{
    ApiKeys, DeliveryQueue, Domains, EmailQuotas, Emails, Idempotency, JobRuns, Organizations,
    Retention, Suppressions, WebhookQueue, Webhooks,
};

/// How long a SQLite writer waits for another process's write lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Advisory lock id held while migrating PostgreSQL ("opensend" in ASCII, as a number).
const MIGRATION_LOCK_KEY: i64 = 0x6f70_656e_7365_6e64;
/// How long a request waits for a pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// How many group writers the accept path gets (see [`AcceptWriter::new`]): SQLite takes one writer at a
    /// time, so a second would only queue; PostgreSQL commits several groups in parallel.
    fn accept_writers(self) -> usize {
        match self {
            Backend::Sqlite => 1,
            Backend::Postgres => 4,
        }
    }
}

/// Handle to the database, cheap to clone.
///
/// SQLite allows one writer at a time, so on SQLite the store keeps a single-connection pool for writes (callers
/// in this process queue for it instead of failing with `SQLITE_BUSY`) and a pool of readers that WAL mode lets
/// run beside it. On PostgreSQL both are the same pool.
#[derive(Clone)]
pub struct Store {
    read: DatabaseConnection,
    write: DatabaseConnection,
    backend: Backend,
    /// Where the webhook queue's last claim left off among organizations (see [`WebhookQueue::claim`]).
    webhook_claims: ClaimCursor,
    /// API keys and webhook endpoints read on every request (see [`crate::caches`]).
    caches: Arc<Caches>,
    /// Writes the emails of concurrent send requests in shared transactions (see [`AcceptWriter`]).
    accept_writer: Arc<AcceptWriter>,
}

impl Store {
    /// Connects to `url` (`sqlite://path`, `sqlite::memory:`, `postgres://…`). For SQLite, the file and its
    /// directory are created when missing.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Self::connect_sqlite(url, max_connections).await,
            "postgres" | "postgresql" => {
                let mut options = ConnectOptions::new(url);
                options
                    .max_connections(max_connections)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_timeout(ACQUIRE_TIMEOUT)
                    .sqlx_logging(false);
                if !names_tls_mode(url, std::env::var_os("PGSSLMODE").is_some()) {
                    options.map_sqlx_postgres_opts(plain_on_loopback);
                }
                let pool = Database::connect(options).await?;
                Ok(Self::assemble(pool.clone(), pool, Backend::Postgres))
            }
            other => Err(StoreError::UnsupportedScheme(other.to_owned())),
        }
    }

    async fn connect_sqlite(url: &str, max_readers: u32) -> Result<Self, StoreError> {
        // Validate the URL once up front so a typo is an error message, not a panic inside the pool.
        SqliteConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory {
            create_parent_directory(url)?;
        }
        let pool = |connections: u32| {
            let mut options = ConnectOptions::new(url);
            options
                .max_connections(connections)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .sqlx_logging(false)
                .map_sqlx_sqlite_opts(|o| {
                    o.create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal)
                        .busy_timeout(SQLITE_BUSY_TIMEOUT)
                        .foreign_keys(true)
                });
            options
        };
        let write = Database::connect(pool(1)).await?;
        // An in-memory database exists once per connection, so readers must share the writer's connection.
        let read = if in_memory {
            write.clone()
        } else {
            Database::connect(pool(max_readers.max(1))).await?
        };
        Ok(Self::assemble(read, write, Backend::Sqlite))
    }

    fn assemble(read: DatabaseConnection, write: DatabaseConnection, backend: Backend) -> Self {
        Self {
            accept_writer: Arc::new(AcceptWriter::new(write.clone(), backend.accept_writers())),
            read,
            write,
            backend,
            webhook_claims: ClaimCursor::default(),
            caches: Arc::new(Caches::new(CacheSettings::default())),
        }
    }

    /// The same store with its caches set up by `settings` (and emptied). Meant for startup, before the
    /// store is shared.
    pub fn with_cache_settings(mut self, settings: CacheSettings) -> Self {
        self.caches = Arc::new(Caches::new(settings));
        self
    }

    pub fn cache_settings(&self) -> CacheSettings {
        self.caches.settings()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies every embedded migration that has not run yet.
    ///
    /// Safe to run from several processes at once. On PostgreSQL all pending migrations run in one
    /// transaction that first takes an advisory lock; on SQLite, in one transaction whose first statement
    /// is a write, which takes the database's write lock (a second process waits for it, up to the busy
    /// timeout). Either way the second process then finds nothing to do.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        // Nearly every start finds the schema current: one read says so, without the lock and the
        // transaction (which cost PostgreSQL several round trips and serialise concurrent starts).
        if self.all_migrations_applied().await {
            return Ok(());
        }
        match self.backend {
            Backend::Postgres => {
                let transaction = self.write.begin().await?;
                transaction
                    .execute_unprepared(&format!(
                        "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
                    ))
                    .await?;
                Migrator::up(&transaction, None).await?;
                transaction.commit().await?;
            }
            Backend::Sqlite => {
                self.write
                    .execute_unprepared(
                        "CREATE TABLE IF NOT EXISTS opensend_migration_lock (id INTEGER PRIMARY KEY)",
                    )
                    .await?;
                let transaction = self.write.begin().await?;
                transaction
                    .execute_unprepared(
                        "INSERT OR REPLACE INTO opensend_migration_lock (id) VALUES (1)",
                    )
                    .await?;
                Migrator::up(&transaction, None).await?;
                transaction.commit().await?;
            }
        }
        Ok(())
    }

    /// One round trip to the database, for health checks.
    /// Whether every embedded migration is recorded as applied. Any error (a fresh database has no
    /// migrations table) counts as "no", so the full, locked path runs.
    async fn all_migrations_applied(&self) -> bool {
        use sea_orm::{FromQueryResult, Statement};

        #[derive(FromQueryResult)]
        struct Applied {
            version: String,
        }
        let applied = Applied::find_by_statement(Statement::from_string(
            self.write.get_database_backend(),
            "SELECT version FROM seaql_migrations",
        ))
        .all(&self.write)
        .await;
        let Ok(applied) = applied else {
            return false;
        };
        let applied: std::collections::HashSet<String> =
            applied.into_iter().map(|a| a.version).collect();
        Migrator::migrations()
            .iter()
            .all(|m| applied.contains(m.name()))
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read.execute_unprepared("SELECT 1").await?;
        Ok(())
    }

    /// Closes both pools, waiting for connections in use to be returned.
    pub async fn close(self) {
        // Errors on close only mean the pool was already gone.
        let _ = self.read.close().await;
        if self.backend == Backend::Sqlite {
            let _ = self.write.close().await;
        }
    }

    pub fn organizations(&self) -> Organizations<'_> {
        Organizations::new(&self.read, &self.write, &self.caches)
    }

    pub fn api_keys(&self) -> ApiKeys<'_> {
        ApiKeys::new(&self.read, &self.write, &self.caches)
    }

    pub fn emails(&self) -> Emails<'_> {
        Emails::new(&self.read, &self.write, &self.accept_writer)
    }

    pub fn delivery_queue(&self) -> DeliveryQueue<'_> {
        DeliveryQueue::new(&self.read, &self.write)
    }

    pub fn idempotency(&self) -> Idempotency<'_> {
        Idempotency::new(&self.write)
    }

    pub fn suppressions(&self) -> Suppressions<'_> {
        Suppressions::new(&self.read, &self.write)
    }

    pub fn domains(&self) -> Domains<'_> {
        Domains::new(&self.read, &self.write, &self.caches)
    }

    pub fn job_runs(&self) -> JobRuns<'_> {
        JobRuns::new(&self.read, &self.write)
    }

    pub fn request_logs(&self) -> crate::repos::RequestLogs<'_> {
        crate::repos::RequestLogs::new(&self.read, &self.write)
    }

    pub fn retention(&self) -> Retention<'_> {
        Retention::new(&self.write)
    }

    pub fn webhooks(&self) -> Webhooks<'_> {
        Webhooks::new(&self.read, &self.write)
    }

    pub fn webhook_queue(&self) -> WebhookQueue<'_> {
        WebhookQueue::new(&self.read, &self.write, &self.webhook_claims)
    }

    pub fn email_quotas(&self) -> EmailQuotas<'_> {
        EmailQuotas::new(&self.write)
    }

    pub fn received_emails(&self) -> crate::repos::ReceivedEmails<'_> {
        crate::repos::ReceivedEmails::new(&self.read, &self.write)
    }

    pub fn broadcasts(&self) -> crate::repos::Broadcasts<'_> {
        crate::repos::Broadcasts::new(&self.read, &self.write)
    }

    pub fn contacts(&self) -> crate::repos::Contacts<'_> {
        crate::repos::Contacts::new(&self.read, &self.write)
    }

    pub fn contact_imports(&self) -> crate::repos::ContactImports<'_> {
        crate::repos::ContactImports::new(&self.read, &self.write)
    }

    pub fn contact_properties(&self) -> crate::repos::ContactProperties<'_> {
        crate::repos::ContactProperties::new(&self.read, &self.write)
    }

    pub fn segments(&self) -> crate::repos::Segments<'_> {
        crate::repos::Segments::new(&self.read, &self.write)
    }

    pub fn templates(&self) -> crate::repos::Templates<'_> {
        crate::repos::Templates::new(&self.read, &self.write)
    }

    pub fn topics(&self) -> crate::repos::Topics<'_> {
        crate::repos::Topics::new(&self.read, &self.write)
    }

    pub fn users(&self) -> crate::repos::Users<'_> {
        crate::repos::Users::new(&self.read, &self.write)
    }

    pub fn members(&self) -> crate::repos::Members<'_> {
        crate::repos::Members::new(&self.read, &self.write)
    }

    pub fn invitations(&self) -> crate::repos::Invitations<'_> {
        crate::repos::Invitations::new(&self.read, &self.write)
    }

    pub fn audit_log(&self) -> crate::repos::AuditLog<'_> {
        crate::repos::AuditLog::new(&self.read, &self.write)
    }

    pub fn engagements(&self) -> crate::repos::Engagements<'_> {
        crate::repos::Engagements::new(&self.read, &self.write)
    }

    pub fn provider_events(&self) -> crate::repos::ProviderEvents<'_> {
        crate::repos::ProviderEvents::new(&self.write)
    }
}

/// Whether the operator chose how PostgreSQL connections use TLS: `sslmode` (or `ssl-mode`) in the URL, or
/// `PGSSLMODE` in the environment. Then their choice stands.
fn names_tls_mode(url: &str, pgsslmode_set: bool) -> bool {
    pgsslmode_set
        || url.split_once('?').is_some_and(|(_, query)| {
            query.split('&').any(|pair| {
                let key = pair.split('=').next().unwrap_or_default();
                key.eq_ignore_ascii_case("sslmode") || key.eq_ignore_ascii_case("ssl-mode")
            })
        })
}

/// With no TLS mode chosen, a server on this machine (loopback address, `localhost` or a Unix socket) is
/// reached without TLS: its bytes never leave the host, so TLS protects nothing there, and its handshake is
/// most of a cold start (about 190 of 270 ms here, two connections) and a cost on every new pooled
/// connection. Any other host keeps the driver's default, `prefer`. Documented with `DATABASE_URL` in
/// docs/configuration.md.
fn plain_on_loopback(options: PgConnectOptions) -> PgConnectOptions {
    if is_local_host(options.get_host()) {
        options.ssl_mode(PgSslMode::Disable)
    } else {
        options
    }
}

fn is_local_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.starts_with('/')
        || bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `sqlite://./data/opensend.db?mode=rwc` → creates `./data`.
fn create_parent_directory(url: &str) -> Result<(), StoreError> {
    let without_scheme = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = without_scheme.split('?').next().unwrap_or_default();
    if let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDirectory {
            path: parent.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chosen_tls_mode_is_kept() {
        assert!(names_tls_mode("postgres://u@db/x?sslmode=require", false));
        assert!(names_tls_mode(
            "postgres://u@127.0.0.1/x?a=1&SSL-MODE=prefer",
            false
        ));
        assert!(names_tls_mode("postgres://u@127.0.0.1/x", true));
        assert!(!names_tls_mode("postgres://u@127.0.0.1/x", false));
        assert!(!names_tls_mode(
            "postgres://u@127.0.0.1/x?application_name=a",
            false
        ));
    }

    #[test]
    fn only_servers_on_this_machine_go_without_tls() {
        let mode =
            |url: &str| plain_on_loopback(PgConnectOptions::from_str(url).unwrap()).get_ssl_mode();
        for local in [
            "postgres://u@127.0.0.1:5432/x",
            "postgres://u@127.3.4.5/x",
            "postgres://u@localhost/x",
            "postgres://u@[::1]:5432/x",
            "postgres://u@%2Fvar%2Frun%2Fpostgresql/x",
        ] {
            assert!(matches!(mode(local), PgSslMode::Disable), "{local}");
        }
        for remote in [
            "postgres://u@db.internal/x",
            "postgres://u@10.0.0.5/x",
            "postgres://u@[2001:db8::1]/x",
        ] {
            assert!(!matches!(mode(remote), PgSslMode::Disable), "{remote}");
        }
    }
}
