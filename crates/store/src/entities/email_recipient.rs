use sea_orm::entity::prelude::*;

/// One envelope recipient of an email and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_recipients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub email_id: Uuid,
    pub organization_id: Uuid,
    pub address: String,
    /// `to`, `cc` or `bcc`.
    pub kind: String,
    /// `pending`, `accepted`, `rejected`, `deferred` or `suppressed`.
    pub status: String,
    /// The receiving server's reply.
    pub response: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
