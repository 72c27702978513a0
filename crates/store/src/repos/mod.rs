//! Queries, one repository per resource. Methods on tenant data take the organization id first.

mod api_keys;
mod email_quotas;
mod organizations;

pub use api_keys::{ApiKeys, NewApiKey};
pub use email_quotas::{EmailQuotas, QuotaWindow, Reservation};
pub use organizations::Organizations;

use chrono::{DateTime, SubsecRound, Utc};

/// A rate limit stored for an organization or an API key: requests per second and burst. The server
/// validates the values; the store keeps them as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitOverride {
    pub per_second: i32,
    pub burst: i32,
}

impl RateLimitOverride {
    /// Reads the pair of nullable columns: an override exists only when both are set.
    pub fn from_columns(per_second: Option<i32>, burst: Option<i32>) -> Option<Self> {
        Some(Self {
            per_second: per_second?,
            burst: burst?,
        })
    }
}

/// The current time at the precision every backend stores (microseconds), so a value read back equals the
/// value written.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
