use sea_orm::entity::prelude::*;

/// One security-relevant change or sign-in (see `repos::audit_log`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Null for what belongs to no organization (sign-ins).
    pub organization_id: Option<Uuid>,
    /// `user`, `api_key`, `operator` or `anonymous`.
    pub actor_type: String,
    pub actor_id: Option<Uuid>,
    /// The actor as it was at the time (an address, a key's name and prefix).
    pub actor_label: String,
    /// A dotted name, e.g. `api_key.created`.
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<Uuid>,
    /// JSON object with what else the entry is about.
    pub detail: String,
    pub client_ip: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
