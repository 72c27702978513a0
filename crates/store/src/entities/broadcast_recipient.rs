use sea_orm::entity::prelude::*;

/// One contact a broadcast's fan-out reached: the email written for it, or why it was skipped.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "broadcast_recipients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub broadcast_id: Uuid,
    pub organization_id: Uuid,
    pub contact_id: Uuid,
    pub email: String,
    pub email_id: Option<Uuid>,
    /// `unsubscribed`, `suppressed` or `opted_out`.
    pub skipped_reason: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
