use sea_orm::entity::prelude::*;

/// Something the platform did to an organization's resources on its own, recorded for the organization to
/// read (for example: a webhook endpoint disabled after failing for days).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organization_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    /// A dotted name, e.g. `webhook.disabled`.
    pub kind: String,
    pub message: String,
    /// JSON object with the ids the message is about.
    pub data: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
