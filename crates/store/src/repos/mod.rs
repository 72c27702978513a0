//! Queries, one repository per resource. Methods on tenant data take the organization id first.

mod api_keys;
mod organizations;

pub use api_keys::{ApiKeys, NewApiKey};
pub use organizations::Organizations;

use chrono::{DateTime, SubsecRound, Utc};

/// The current time at the precision every backend stores (microseconds), so a value read back equals the
/// value written.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
