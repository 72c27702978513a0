//! Background work: every job OpenSend runs besides answering requests, and the one registry of them.
//!
//! Each job is a [`claim_loop::LeasedWork`]: it claims its items under a lease and [`claim_loop::ClaimLoop`]
//! runs it, continuously in the `serve`/`worker` processes, or one bounded pass at a time when
//! `POST /jobs/{name}` on the ingester is called (by a cron, or by `opensend scheduler`, which reads
//! [`JOBS`] for what to call and how often).
//!
//! | job | what one pass does | runs continuously in |
//! |---|---|---|
//! | `dispatch-scheduled` ([`delivery`]) | delivers due emails (new, scheduled ones that fell due, retries) | `serve`, `worker` |
//! | `retry-webhooks` ([`webhook_dispatch`]) | attempts due webhook deliveries | `serve`, `worker` |
//! | `verify-domains` ([`domain_checks`]) | re-checks the DNS of domains whose next check is due | `serve` |
//! | `import-contacts` ([`contact_imports`]) | processes queued contact imports (CSV uploads) | `serve`, `worker` |
//! | `send-broadcasts` ([`broadcasts`]) | writes the next chunk of each due broadcast's emails | `serve`, `worker` |
//! | `cleanup` ([`retention`]) | expired idempotency keys, and data older than `RETENTION_DAYS`; hourly | `serve` |

pub mod broadcasts;
pub mod claim_loop;
pub mod contact_imports;
pub mod delivery;
pub mod domain_checks;
pub mod retention;
pub mod scheduler;
pub mod webhook_dispatch;

use std::time::Duration;

use chrono::Utc;
use opensend_core::ErrorCode;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::AppState;

/// Items one pass of `dispatch-scheduled`, `retry-webhooks` or `verify-domains` takes at most.
pub const BATCH: usize = 500;

/// The jobs there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    DispatchScheduled,
    RetryWebhooks,
    VerifyDomains,
    ImportContacts,
    SendBroadcasts,
    Cleanup,
}

/// One background job, as the registry lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    pub kind: JobKind,
    /// Its name in `POST /jobs/{name}`.
    pub name: &'static str,
    pub what: &'static str,
    /// Least time between two passes triggered by `opensend scheduler`; `None`: every scheduler round.
    pub every: Option<Duration>,
}

/// Every job, in the order `opensend scheduler` triggers them.
pub const JOBS: [Job; 6] = [
    Job {
        kind: JobKind::DispatchScheduled,
        name: "dispatch-scheduled",
        what: "delivers due emails: scheduled ones that fell due, and retries whose time came",
        every: None,
    },
    Job {
        kind: JobKind::RetryWebhooks,
        name: "retry-webhooks",
        what: "attempts due webhook deliveries",
        every: None,
    },
    Job {
        kind: JobKind::VerifyDomains,
        name: "verify-domains",
        what: "re-checks the DNS of sending domains whose next check is due",
        every: None,
    },
    Job {
        kind: JobKind::ImportContacts,
        name: "import-contacts",
        what: "processes queued contact imports",
        every: None,
    },
    Job {
        kind: JobKind::SendBroadcasts,
        name: "send-broadcasts",
        what: "writes the next chunk of emails of each broadcast being sent",
        every: None,
    },
    Job {
        kind: JobKind::Cleanup,
        name: retention::NAME,
        what: "deletes expired idempotency keys and data older than RETENTION_DAYS",
        every: Some(retention::CLEANUP_EVERY),
    },
];

/// The job called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Job> {
    JOBS.iter().find(|job| job.name == name)
}

/// Runs one pass of job `name` and says what it did (`POST /jobs/{name}`).
pub async fn run_once(state: &AppState, name: &str) -> Result<Value, ApiError> {
    let Some(job) = find(name) else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "There is no job `{}`; the jobs are {}.",
                name.chars().take(64).collect::<String>(),
                JOBS.map(|j| j.name).join(", ")
            ),
        ));
    };
    match job.kind {
        JobKind::DispatchScheduled => {
            let worker =
                delivery::DeliveryWork::from_config(state.clone()).map_err(ApiError::internal)?;
            let delivered = worker.run_rounds(BATCH).await?;
            Ok(json!({"claimed": delivered}))
        }
        JobKind::RetryWebhooks => {
            let client = state.outbound.shared_client().clone();
            let attempted = webhook_dispatch::Dispatcher::new(state.clone(), client)
                .run_once(BATCH)
                .await?;
            Ok(json!({"attempted": attempted}))
        }
        JobKind::VerifyDomains => {
            let checked = domain_checks::run_due(state, Utc::now(), BATCH).await?;
            Ok(json!({"checked": checked}))
        }
        JobKind::ImportContacts => {
            let processed = contact_imports::run_due(state, BATCH).await?;
            Ok(json!({"processed": processed}))
        }
        JobKind::SendBroadcasts => {
            let chunks = broadcasts::run_due(state, BATCH).await?;
            Ok(json!({"chunks": chunks}))
        }
        JobKind::Cleanup => match retention::run_now(state).await? {
            Some(report) => Ok(json!(report)),
            None => Ok(json!({"skipped": "another run of cleanup is in progress"})),
        },
    }
}
