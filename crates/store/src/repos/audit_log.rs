//! The audit log: security-relevant changes (API keys, domains, webhooks, members, roles, invitations) and
//! sign-ins, with who made them, from where and when.
//!
//! A change made through a repository that was given an [`AuditContext`] (`store.api_keys().by(&who)`) is
//! recorded in the transaction of the change itself, so the log never tells of a change that rolled back and
//! never misses one that committed. Sign-ins and other events that write nothing else are recorded with
//! [`AuditLog::record`].

use sea_orm::sea_query::{Condition, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set,
};
use serde_json::Value;
use uuid::Uuid;

use crate::entities::{audit_entry, membership};
use crate::pagination::paginate;
use crate::repos::now;
use crate::{Page, PageRequest, StoreError};

/// Who made a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A person signed in to the dashboard.
    User { id: Uuid, email: String },
    /// A request authenticated with an API key (`label`: the key's name and token prefix).
    ApiKey { id: Uuid, label: String },
    /// `opensend admin` on the command line.
    Operator,
    /// Nobody known: a failed sign-in to an address that has no account.
    Anonymous { label: String },
}

impl Actor {
    fn kind(&self) -> &'static str {
        match self {
            Actor::User { .. } => "user",
            Actor::ApiKey { .. } => "api_key",
            Actor::Operator => "operator",
            Actor::Anonymous { .. } => "anonymous",
        }
    }

    fn id(&self) -> Option<Uuid> {
        match self {
            Actor::User { id, .. } | Actor::ApiKey { id, .. } => Some(*id),
            Actor::Operator | Actor::Anonymous { .. } => None,
        }
    }

    fn label(&self) -> String {
        let label = match self {
            Actor::User { email, .. } => email.as_str(),
            Actor::ApiKey { label, .. } | Actor::Anonymous { label } => label.as_str(),
            Actor::Operator => "opensend admin",
        };
        label.chars().take(320).collect()
    }
}

/// Who is acting and from which address: what a repository needs to record a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditContext {
    pub actor: Actor,
    /// The client address as the rate limiter sees it (`TRUSTED_PROXY_HOPS`); none on the command line.
    pub client_ip: Option<String>,
}

impl AuditContext {
    pub fn operator() -> Self {
        Self {
            actor: Actor::Operator,
            client_ip: None,
        }
    }
}

/// What happened.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    /// `None` for what belongs to no organization (sign-ins, a deleted organization).
    pub organization_id: Option<Uuid>,
    /// A dotted name, e.g. `api_key.created`.
    pub action: &'static str,
    pub target_type: Option<&'static str>,
    pub target_id: Option<Uuid>,
    /// A JSON object with what else identifies the change (names, roles); never a secret.
    pub detail: Value,
}

impl AuditEvent {
    pub fn new(organization_id: Uuid, action: &'static str, target: (&'static str, Uuid)) -> Self {
        Self {
            organization_id: Some(organization_id),
            action,
            target_type: Some(target.0),
            target_id: Some(target.1),
            detail: Value::Object(Default::default()),
        }
    }

    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

/// Writes one entry with `db` (the caller's transaction, when there is a change to go with it).
pub(crate) async fn record_in<C: ConnectionTrait>(
    db: &C,
    context: &AuditContext,
    event: AuditEvent,
) -> Result<(), StoreError> {
    audit_entry::ActiveModel {
        id: Set(opensend_core::new_id()),
        organization_id: Set(event.organization_id),
        actor_type: Set(context.actor.kind().to_owned()),
        actor_id: Set(context.actor.id()),
        actor_label: Set(context.actor.label()),
        action: Set(event.action.to_owned()),
        target_type: Set(event.target_type.map(str::to_owned)),
        target_id: Set(event.target_id),
        detail: Set(event.detail.to_string()),
        client_ip: Set(context.client_ip.clone()),
        created_at: Set(now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Records `event` in `db` when there is someone to attribute it to.
pub(crate) async fn maybe_record_in<C: ConnectionTrait>(
    db: &C,
    context: Option<&AuditContext>,
    event: impl FnOnce() -> AuditEvent,
) -> Result<(), StoreError> {
    match context {
        Some(context) => record_in(db, context, event()).await,
        None => Ok(()),
    }
}

pub struct AuditLog<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
}

impl<'a> AuditLog<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self { read, write }
    }

    /// Records an event that comes with no other write (a sign-in, a failed one).
    pub async fn record(
        &self,
        context: &AuditContext,
        event: AuditEvent,
    ) -> Result<(), StoreError> {
        record_in(self.write, context, event).await
    }

    /// What an organization's admins read, newest first: the organization's entries and the sign-ins (and
    /// failed sign-ins) of its current members.
    pub async fn list(
        &self,
        organization_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<audit_entry::Model>, StoreError> {
        let members = Query::select()
            .column(membership::Column::UserId)
            .from(membership::Entity)
            .and_where(membership::Column::OrganizationId.eq(organization_id))
            .to_owned();
        let select = audit_entry::Entity::find().filter(
            Condition::any()
                .add(audit_entry::Column::OrganizationId.eq(organization_id))
                .add(
                    Condition::all()
                        .add(audit_entry::Column::OrganizationId.is_null())
                        .add(audit_entry::Column::ActorId.in_subquery(members.clone()))
                        .add(audit_entry::Column::Action.starts_with("session.")),
                )
                .add(
                    Condition::all()
                        .add(audit_entry::Column::OrganizationId.is_null())
                        .add(audit_entry::Column::TargetId.in_subquery(members))
                        .add(audit_entry::Column::Action.eq("session.sign_in_failed")),
                ),
        );
        paginate(self.read, select, audit_entry::Column::Id, page).await
    }

    /// Every entry of a user's sign-ins, newest first (for tests and operators).
    pub async fn of_actor(
        &self,
        actor_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<audit_entry::Model>, StoreError> {
        let select = audit_entry::Entity::find().filter(audit_entry::Column::ActorId.eq(actor_id));
        paginate(self.read, select, audit_entry::Column::Id, page).await
    }
}
