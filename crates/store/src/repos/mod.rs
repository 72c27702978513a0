//! Queries, one repository per resource. Methods on tenant data take the organization id first.

mod api_keys;
mod domains;
mod organizations;

pub use api_keys::{ApiKeys, NewApiKey};
pub use domains::{
    CheckOutcome, DomainChanges, Domains, KEY_ACTIVE, KEY_NEXT, KEY_RETIRED, NewDkimKey, NewDomain,
};
pub use organizations::Organizations;

use chrono::{DateTime, SubsecRound, Utc};

/// The current time at the precision every backend stores (microseconds), so a value read back equals the
/// value written.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
