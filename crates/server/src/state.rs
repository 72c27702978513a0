use std::sync::Arc;

use opensend_core::SecretBox;
use opensend_mail::DnsChecker;
use opensend_mail::sns::SnsVerifier;
use opensend_store::Store;
use secrecy::ExposeSecret;
use tokio::sync::{Notify, Semaphore};

use crate::config::Config;
use crate::outbound::OutboundPolicy;
use crate::rate_limit::RateLimiter;

/// Send requests of one process that read a body over 1 MiB (`api::emails::body::BUFFERED_BYTES`) at once.
/// Each holds up to about twice its body (40 MiB at most) while it is parsed and until it is answered, so two
/// keep a process under its 200 MiB aim; parsing takes a fraction of a second, so the wait of a third is
/// short.
pub const LARGE_SEND_BODIES_AT_ONCE: usize = 2;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    /// Seals secrets at rest (DKIM private keys, webhook signing secrets) under `WEBHOOK_SECRET_ENCRYPTION_KEY`.
    pub secrets: Arc<SecretBox>,
    /// Checks sending domains' DNS records.
    pub dns: DnsChecker,
    /// Rung when work for the delivery worker was queued, so an in-process worker starts at once instead
    /// of at its next poll.
    pub delivery_wakeup: Arc<Notify>,
    /// Rung when webhook deliveries were queued by this process, so an in-process dispatcher starts at once.
    pub webhook_wakeup: Arc<Notify>,
    pub rate_limiter: RateLimiter,
    /// Guards and makes the requests sent to URLs users give us (webhooks, attachments by `path`).
    pub outbound: OutboundPolicy,
    /// Verifies the SNS messages posted to `/events/ses` (one certificate cache for the process); `None`
    /// when `SES_EVENTS_SNS_TOPIC_ARN` is not set, and the route then refuses everything.
    pub ses_sns: Option<SnsVerifier>,
    /// Applies the SES events of `/events/ses` in batches.
    pub ses_events: Arc<crate::ses_event_writer::SesEventWriter>,
    /// DKIM keys opened for signing, kept by the delivery worker (see [`crate::signer_cache::SignerCache`]).
    pub signers: Arc<crate::signer_cache::SignerCache>,
    /// Places for send requests whose bodies are large enough to be parsed as they stream in
    /// ([`LARGE_SEND_BODIES_AT_ONCE`]), so many large sends at once cannot exhaust memory.
    pub large_send_bodies: Arc<Semaphore>,
    /// The queue of `GET /logs` entries and its writer (see [`crate::request_log`]).
    pub request_log: Arc<crate::request_log::RequestLog>,
    /// Signs and reads open and click tracking tokens; `None` without `AUTH_SECRET` (nothing is tracked).
    pub tracker: Option<Arc<crate::tracking::Tracker>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "WEBHOOK_SECRET_ENCRYPTION_KEY is not set (the startup checks should have generated or refused it)"
    )]
    MissingEncryptionKey,
    #[error("WEBHOOK_SECRET_ENCRYPTION_KEY: {0}")]
    EncryptionKey(opensend_core::secret_box::SecretBoxError),
    #[error("WEBHOOK_SECRET_ENCRYPTION_KEY_PREVIOUS: {0}")]
    PreviousEncryptionKey(opensend_core::secret_box::SecretBoxError),
    #[error(transparent)]
    Dns(#[from] opensend_mail::dns::DnsSetupError),
    #[error("rate limiting: {0}")]
    RateLimiter(String),
    #[error(transparent)]
    Outbound(#[from] crate::outbound::OutboundSetupError),
    #[error(transparent)]
    Sns(#[from] opensend_mail::sns::SnsConfigError),
}

impl AppState {
    /// Builds the shared state once, at startup, after the startup checks have run on `config`.
    pub fn new(store: Store, config: Config) -> Result<Self, StateError> {
        let secrets = secret_box(&config)?;
        let dns = DnsChecker::new(config.domains.dns_resolver, config.domains.dns_timeout)?;
        let outbound = OutboundPolicy::from_config(&config)?;
        let rate_limiter =
            RateLimiter::from_config(&config).map_err(|e| StateError::RateLimiter(e.0))?;
        rate_limiter.spawn_housekeeping();
        let ses_sns = config
            .ses_events
            .sns_settings()
            .map(SnsVerifier::new)
            .transpose()?;
        let tracker = crate::tracking::Tracker::from_config(&config).map(Arc::new);
        Ok(Self {
            ses_events: Arc::new(crate::ses_event_writer::SesEventWriter::new(store.clone())),
            store,
            config: Arc::new(config),
            secrets: Arc::new(secrets),
            dns,
            delivery_wakeup: Arc::new(Notify::new()),
            webhook_wakeup: Arc::new(Notify::new()),
            rate_limiter,
            outbound,
            ses_sns,
            large_send_bodies: Arc::new(Semaphore::new(LARGE_SEND_BODIES_AT_ONCE)),
            signers: Arc::default(),
            request_log: Arc::default(),
            tracker,
        })
    }
}

/// The box that seals and opens secrets at rest: `WEBHOOK_SECRET_ENCRYPTION_KEY`, plus
/// `WEBHOOK_SECRET_ENCRYPTION_KEY_PREVIOUS` during a key rotation.
pub fn secret_box(config: &Config) -> Result<SecretBox, StateError> {
    let key = config
        .secrets
        .webhook_secret_encryption_key
        .as_ref()
        .ok_or(StateError::MissingEncryptionKey)?;
    let mut secrets =
        SecretBox::from_hex(key.expose_secret()).map_err(StateError::EncryptionKey)?;
    if let Some(previous) = &config.secrets.webhook_secret_encryption_key_previous {
        secrets = secrets
            .with_previous(previous.expose_secret())
            .map_err(StateError::PreviousEncryptionKey)?;
    }
    Ok(secrets)
}
