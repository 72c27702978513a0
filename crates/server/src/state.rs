use std::sync::Arc;

use opensend_store::Store;

use crate::config::Config;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
}
