use std::sync::Arc;

use opensend_store::Store;
use tokio::sync::Notify;

use crate::config::Config;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    /// Rung when work for the delivery worker was queued, so an in-process worker starts at once instead
    /// of at its next poll.
    pub delivery_wakeup: Arc<Notify>,
}

impl AppState {
    pub fn new(store: Store, config: Config) -> Self {
        Self {
            store,
            config: Arc::new(config),
            delivery_wakeup: Arc::new(Notify::new()),
        }
    }
}
