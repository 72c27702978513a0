//! The `cleanup` job: expired idempotency keys and dashboard sessions, and whatever is older than
//! `RETENTION_DAYS`.
//!
//! Once per [`CLEANUP_EVERY`] for the whole deployment, however many processes run it: the run is claimed
//! through the `job_runs` table (a lease, and the time it last finished), so `serve` processes and
//! `opensend scheduler` can all schedule it without repeating each other's work. Triggered by hand
//! (`POST /jobs/cleanup`) it runs at once unless a run is already in progress.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use opensend_store::StoreError;
use opensend_store::repos::PurgeReport;
use serde::Serialize;
use tokio::sync::Mutex;

use crate::jobs::claim_loop::{ClaimLoop, LeasedWork, Pace};
use crate::state::AppState;

/// The job's name, in the registry and in `job_runs`.
pub const NAME: &str = "cleanup";
/// Least time between two scheduled runs.
pub const CLEANUP_EVERY: Duration = Duration::from_secs(3600);
/// How long one run may hold the job before another process may take it over.
const LEASE: TimeDelta = TimeDelta::minutes(30);

/// What one run removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CleanupReport {
    pub idempotency_keys: u64,
    /// Contact imports whose upload was cut off (see [`ABANDONED_UPLOAD_AFTER`]).
    pub abandoned_uploads: u64,
    /// Dashboard sessions past their expiry.
    pub expired_sessions: u64,
    pub retention_days: Option<u32>,
    /// `None` when `RETENTION_DAYS` is unset (everything is kept).
    pub deleted: Option<PurgeReport>,
}

/// One claimed run of the job.
pub struct Run;

/// An import still `uploading` this long after it began lost its request: no upload outlives the
/// listener's request timeout, which is far shorter.
const ABANDONED_UPLOAD_AFTER: TimeDelta = TimeDelta::hours(1);

/// The retention job's work.
pub struct Cleanup {
    state: AppState,
    /// Least time since the last run finished: [`CLEANUP_EVERY`] on a schedule, zero when triggered by hand.
    min_interval: Duration,
    /// What the last run of this loop removed, for the job route's answer.
    last: Mutex<Option<CleanupReport>>,
}

impl Cleanup {
    /// The hourly job `serve` runs in process.
    pub fn scheduled(state: AppState) -> ClaimLoop<Self> {
        Self::with_interval(state, CLEANUP_EVERY)
    }

    fn with_interval(state: AppState, min_interval: Duration) -> ClaimLoop<Self> {
        ClaimLoop::new(Self {
            state,
            min_interval,
            last: Mutex::new(None),
        })
    }

    async fn clean(&self, at: DateTime<Utc>) -> Result<CleanupReport, StoreError> {
        let idempotency_keys = self.state.store.idempotency().purge_expired().await?;
        let abandoned_uploads = self
            .state
            .store
            .contact_imports()
            .discard_abandoned_uploads(at - ABANDONED_UPLOAD_AFTER)
            .await?;
        let expired_sessions = self.state.store.users().purge_expired_sessions(at).await?;
        let retention_days = self.state.config.jobs.retention_days;
        let deleted = match retention_days {
            Some(days) => {
                let cutoff = at - TimeDelta::days(i64::from(days));
                Some(self.state.store.retention().purge_before(cutoff).await?)
            }
            None => None,
        };
        Ok(CleanupReport {
            idempotency_keys,
            abandoned_uploads,
            expired_sessions,
            retention_days,
            deleted,
        })
    }
}

impl LeasedWork for Cleanup {
    type Item = Run;

    fn kind(&self) -> &'static str {
        NAME
    }

    fn pace(&self) -> Pace {
        Pace::new(1, CLEANUP_EVERY)
    }

    async fn claim(&self, owner: &str, limit: usize) -> Result<Vec<Run>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let min_interval = TimeDelta::from_std(self.min_interval).unwrap_or(TimeDelta::hours(1));
        let claimed = self
            .state
            .store
            .job_runs()
            .claim(NAME, owner, LEASE, min_interval)
            .await?;
        Ok(if claimed { vec![Run] } else { Vec::new() })
    }

    async fn process(&self, owner: &str, _run: Run) {
        match self.clean(Utc::now()).await {
            Ok(report) => {
                tracing::debug!(?report, "cleanup ran");
                *self.last.lock().await = Some(report);
                if let Err(e) = self.state.store.job_runs().finish(NAME, owner).await {
                    tracing::warn!(error = %e, "cleanup ran but could not be recorded as finished");
                }
            }
            // The lease runs out and the next run tries again; nothing is half deleted (chunks are their own
            // transactions).
            Err(e) => tracing::warn!(error = %e, "cleanup failed; it will be tried again"),
        }
    }

    async fn next_due(&self) -> Option<DateTime<Utc>> {
        let last = self
            .state
            .store
            .job_runs()
            .last_finished(NAME)
            .await
            .ok()??;
        Some(last + TimeDelta::from_std(self.min_interval).unwrap_or(TimeDelta::hours(1)))
    }
}

/// Runs the job now (unless another run is in progress) and says what it removed; `None` when another
/// process holds the job.
pub async fn run_now(state: &AppState) -> Result<Option<CleanupReport>, StoreError> {
    let cleanup = Cleanup::with_interval(state.clone(), Duration::ZERO);
    cleanup.run_rounds(1).await?;
    Ok(*cleanup.work().last.lock().await)
}
