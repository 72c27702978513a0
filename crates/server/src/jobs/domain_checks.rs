//! Re-verifying sending domains in the background: every domain whose next check is due (see
//! `domains::next_check`) is claimed for [`CHECK_LEASE`] and its DNS looked up again. Safe on any number of
//! processes at once (each domain is claimed before it is checked) and to run again (a checked domain is no
//! longer due).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use opensend_store::StoreError;
use opensend_store::records::DomainRecord;

use crate::domains::verify;
use crate::jobs::claim_loop::{ClaimLoop, LeasedWork, Pace};
use crate::state::AppState;

/// How often the continuous job looks for domains due a check.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(60);
/// How long a claimed domain is left to its claimer before another process may check it.
pub const CHECK_LEASE: TimeDelta = TimeDelta::minutes(5);
/// Domains checked at once: each check is a handful of concurrent DNS queries.
const CONCURRENCY: usize = 8;

/// The domain re-check's work.
pub struct DomainChecks {
    state: AppState,
    /// The time checks are made as of: `None` is now (tests move it forward).
    at: Option<DateTime<Utc>>,
}

impl DomainChecks {
    pub fn new(state: AppState) -> ClaimLoop<Self> {
        ClaimLoop::new(Self { state, at: None })
    }

    fn at(&self) -> DateTime<Utc> {
        self.at.unwrap_or_else(Utc::now)
    }
}

impl LeasedWork for DomainChecks {
    type Item = DomainRecord;

    fn kind(&self) -> &'static str {
        "domain-checks"
    }

    fn pace(&self) -> Pace {
        Pace::new(CONCURRENCY, CHECK_INTERVAL)
    }

    async fn claim(&self, _owner: &str, limit: usize) -> Result<Vec<DomainRecord>, StoreError> {
        self.state
            .store
            .domains()
            .claim_due(self.at(), limit as u64, CHECK_LEASE)
            .await
    }

    async fn process(&self, _owner: &str, domain: DomainRecord) {
        // The claim's lease brings the domain back later; one bad domain must not stop the others.
        if let Err(e) = verify(&self.state, &domain, self.at()).await {
            tracing::warn!(domain_id = %domain.id, error = %e, "domain check failed");
        }
    }
}

/// Checks every domain due at `at`, up to `limit`, and returns how many were claimed (the
/// `verify-domains` job, and tests that move time forward).
pub async fn run_due(
    state: &AppState,
    at: DateTime<Utc>,
    limit: usize,
) -> Result<usize, StoreError> {
    ClaimLoop::new(DomainChecks {
        state: state.clone(),
        at: Some(at),
    })
    .run_rounds(limit)
    .await
}
