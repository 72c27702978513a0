use sea_orm::entity::prelude::*;

/// A person an organization writes to (Resend's contact).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contacts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    /// As given, normalised as `EmailAddress` does.
    pub email: String,
    /// The whole address lower-cased: unique per organization, and the key of `suppressions` too.
    pub email_key: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Set by the organization (or the contact); a suppressed address reads as unsubscribed as well.
    pub unsubscribed: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
