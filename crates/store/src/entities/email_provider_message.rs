use sea_orm::entity::prelude::*;

/// One id the provider gave an email when it was sent. An email sent in several provider calls (Amazon SES
/// takes at most 50 recipients per call) has one per call; `(transport, provider_message_id)` is unique.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_provider_messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub email_id: Uuid,
    /// The transport that sent it (`ses`, `smtp`, …), as in `emails.transport`.
    pub transport: String,
    pub provider_message_id: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
