use std::sync::Arc;

use opensend_store::Store;

use crate::config::Config;
use crate::rate_limit::{RateLimiter, StoreUnavailable};

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub rate_limiter: RateLimiter,
}

impl AppState {
    /// The state for `config`, with the rate limiter it asks for (Redis is connected on first use). Must run
    /// inside the Tokio runtime: it starts the limiter's housekeeping task.
    pub fn new(store: Store, config: Config) -> Result<Self, StoreUnavailable> {
        let rate_limiter = RateLimiter::from_config(&config)?;
        rate_limiter.spawn_housekeeping();
        Ok(Self {
            store,
            config: Arc::new(config),
            rate_limiter,
        })
    }
}
