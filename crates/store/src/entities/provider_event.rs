use sea_orm::entity::prelude::*;

/// A provider's report about an email (an SES event delivered by SNS) that has been applied. Its
/// `(provider, event_id)` is unique, so a report is applied once however often it is delivered.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "provider_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    /// `ses`.
    pub provider: String,
    /// The report's id at the provider (SNS `MessageId`).
    pub event_id: String,
    pub email_id: Uuid,
    /// The provider's name for what happened (`Bounce`, `Delivery`, …).
    pub kind: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
