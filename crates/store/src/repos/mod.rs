//! Queries, one repository per resource. Methods on tenant data take the organization id first.

pub mod accept_writer;
mod api_keys;
pub mod audit_log;
pub mod broadcasts;
pub mod contact_imports;
pub mod contact_properties;
pub mod contacts;
pub mod delivery_queue;
mod domains;
mod email_quotas;
pub mod emails;
pub mod engagement;
pub mod idempotency;
pub mod invitations;
mod job_runs;
pub mod members;
pub mod new_email;
mod organizations;
pub mod provider_events;
pub mod received_emails;
pub mod request_logs;
pub mod retention;
pub mod segments;
pub mod suppressions;
pub mod templates;
pub mod topics;
pub mod users;
pub mod webhook_outbox;
mod webhooks;

pub use api_keys::{ApiKeys, NewApiKey};
pub use audit_log::{Actor, AuditContext, AuditEvent, AuditLog};
pub use broadcasts::Broadcasts;
pub use contact_imports::ContactImports;
pub use contact_properties::ContactProperties;
pub use contacts::Contacts;
pub use delivery_queue::DeliveryQueue;
pub use domains::{CheckOutcome, DomainChanges, DomainRecordsOf, Domains, NewDkimKey, NewDomain};
pub use email_quotas::{EmailQuotas, QuotaWindow, Reservation};
pub use emails::Emails;
pub use engagement::Engagements;
pub use idempotency::Idempotency;
pub use invitations::{Acceptance, Invitations, Invitee, NewInvitation};
pub use job_runs::JobRuns;
pub use members::{MemberChange, MemberRecord, Members};
pub use organizations::Organizations;
pub use provider_events::ProviderEvents;
pub use received_emails::ReceivedEmails;
pub use request_logs::{NewRequestLog, RequestLogSummary, RequestLogs};
pub use retention::{PurgeReport, Retention};
pub use segments::Segments;
pub use suppressions::Suppressions;
pub use templates::Templates;
pub use topics::Topics;
pub use users::{NewSession, NewUser, Users};
pub use webhook_outbox::WebhookQueue;
pub use webhooks::{
    CreateWebhookOutcome, NewWebhook, ReplayOutcome, SealedWebhookSecrets, WebhookChanges, Webhooks,
};

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
