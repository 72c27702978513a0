//! Starting OpenSend: the one boot path every process and every test harness goes through.
//!
//! [`Application::build`] runs, in order: the startup checks (refusing a production start with every problem
//! listed, generating local secrets otherwise) → connect to the database → apply migrations → build the
//! shared state → check that the encryption keys open the secrets stored at rest → bind the listeners and
//! start the background jobs of the requested roles. Tests call it exactly as `opensend serve` does, so they
//! run the same checks as production.

use std::net::SocketAddr;

use opensend_store::{Store, StoreError};

use crate::config::Config;
use crate::secrets_at_rest::{self, SealedSecretsError};
use crate::serve::{self, Roles, Running, StopHandle};
use crate::startup_checks::{self, StartupError};
use crate::state::{AppState, StateError};

/// Exit code of a process that refuses its configuration (as opposed to failing at something).
pub const EXIT_CONFIG: u8 = 2;

/// Why the application did not start.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Checks(#[from] StartupError),
    #[error("cannot open the database {url}: {source}")]
    Database { url: String, source: StoreError },
    #[error("cannot apply the database migrations: {0}")]
    Migrate(StoreError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    SealedSecrets(#[from] SealedSecretsError),
    #[error("{0}")]
    Listen(std::io::Error),
}

impl BootError {
    /// [`EXIT_CONFIG`] for a configuration the operator must change, 1 for anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            BootError::Checks(StartupError::Refused(_))
            | BootError::SealedSecrets(SealedSecretsError::CannotOpen { .. }) => EXIT_CONFIG,
            // The SMTP listeners' certificate is missing or unreadable: the operator sets the files.
            BootError::Listen(e)
                if e.get_ref()
                    .is_some_and(|inner| inner.is::<crate::smtp::tls::TlsError>()) =>
            {
                EXIT_CONFIG
            }
            _ => 1,
        }
    }
}

/// A running OpenSend: listeners accepting connections and background jobs at work.
pub struct Application {
    state: AppState,
    running: Running,
}

impl Application {
    /// Boots the roles of `roles` with `config` (see the module docs for the order of the steps).
    pub async fn build(mut config: Config, roles: Roles) -> Result<Self, BootError> {
        let findings = startup_checks::run(&mut config)?;
        for name in &findings.generated {
            tracing::warn!(
                "{name} was not set: generated one for this local deployment and kept it in {}",
                config
                    .data_dir
                    .join(startup_checks::GENERATED_SECRETS_FILE)
                    .display()
            );
        }
        for warning in &findings.warnings {
            tracing::warn!("{warning} (allowed only because APP_URL is local)");
        }
        for advisory in &findings.advisories {
            tracing::warn!("{advisory}");
        }
        let store = connect(&config).await?;
        store.migrate().await.map_err(BootError::Migrate)?;
        let state = AppState::new(store, config)?;
        if let Err(e) = secrets_at_rest::check(&state.store, &state.secrets).await {
            state.store.close().await;
            return Err(e.into());
        }
        log_settings(&state, roles);
        let running = serve::start(state.clone(), roles)
            .await
            .map_err(BootError::Listen)?;
        if let Some(addr) = running.api_addr {
            tracing::info!(
                "API listening on http://{addr} (public URL {})",
                state.config.app_url
            );
        }
        if let Some(addr) = running.ingester_addr {
            tracing::info!("ingester listening on http://{addr}");
        }
        for (what, addr) in running.smtp.named() {
            tracing::info!("{what} listening on {addr}");
        }
        tracing::info!(database = %state.config.database.url.redacted(), "ready");
        Ok(Self { state, running })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Where the public API listens, when this process serves it.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.running.api_addr
    }

    /// Where the ingester listens, when this process serves it.
    pub fn ingester_addr(&self) -> Option<SocketAddr> {
        self.running.ingester_addr
    }

    /// Where the SMTP listeners listen (those that are on).
    pub fn smtp_addrs(&self) -> &crate::smtp::listener::SmtpAddrs {
        &self.running.smtp
    }

    /// Tells the application to stop accepting and finish what it has; [`Application::wait`] returns then.
    pub fn stop_handle(&self) -> StopHandle {
        self.running.stop_handle()
    }

    /// Waits until everything has stopped (after [`StopHandle::stop`]): requests in flight answered,
    /// background jobs finished with their current items. Then closes the database.
    pub async fn wait(self) -> std::io::Result<()> {
        let result = self.running.wait().await;
        self.state.request_log.flush().await;
        self.state.store.close().await;
        result
    }
}

/// Connects to `DATABASE_URL` (creating a SQLite file and its directory when missing).
pub async fn connect(config: &Config) -> Result<Store, BootError> {
    Store::connect(
        config.database.url.expose(),
        config.database.max_connections,
    )
    .await
    .map(|store| store.with_cache_settings(config.database.caches))
    .map_err(|source| BootError::Database {
        url: config.database.url.redacted(),
        source,
    })
}

/// What the operator should see at start, beyond the listening addresses.
fn log_settings(state: &AppState, roles: Roles) {
    let config = &state.config;
    if roles.worker && config.delivery.mode == crate::config::Delivery::Capture {
        tracing::info!(
            "DELIVERY=capture: messages are stored, not sent; no mail leaves this machine"
        );
    }
    tracing::info!(
        backend = ?config.rate_limits.backend,
        organization = %config.rate_limits.limits.organization,
        client_ip = %config.rate_limits.limits.client_ip,
        trusted_proxy_hops = config.rate_limits.trusted_proxy_hops,
        "rate limiting"
    );
}
