//! Queries, one repository per resource. Methods on tenant data take the organization id first.

mod api_keys;
pub mod delivery_queue;
mod domains;
pub mod emails;
pub mod idempotency;
mod organizations;
mod suppressions;

pub use api_keys::{ApiKeys, NewApiKey};
pub use delivery_queue::DeliveryQueue;
pub use domains::{
    CheckOutcome, DomainChanges, Domains, KEY_ACTIVE, KEY_NEXT, KEY_RETIRED, NewDkimKey, NewDomain,
};
pub use emails::Emails;
pub use idempotency::Idempotency;
pub use organizations::Organizations;
pub use suppressions::Suppressions;

use chrono::{DateTime, SubsecRound, Utc};

/// The current time at the precision every backend stores (microseconds), so a value read back equals the
/// value written.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
