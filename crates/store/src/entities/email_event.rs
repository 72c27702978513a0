use sea_orm::entity::prelude::*;

/// Something that happened to an email (`email.sent`, `email.failed`, …): the history shown to users and
/// the source webhooks are made from.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub email_id: Uuid,
    pub event_type: String,
    /// JSON object with the event's details.
    pub data: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
