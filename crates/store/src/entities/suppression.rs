use sea_orm::entity::prelude::*;

/// An address the organization must not send to.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "suppressions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    /// As first given, normalised as `EmailAddress` does: domain lower-cased, local part as written.
    pub address: String,
    /// The whole address lower-cased (`repos::suppressions::address_key`): what lookups match, unique per
    /// organization.
    pub address_key: String,
    /// `bounce`, `complaint`, `manual` or `unsubscribe` (see `repos::suppressions::Reason`).
    pub reason: String,
    pub created_at: DateTimeUtc,
    /// The email whose bounce or complaint put the address on the list, when there is one.
    pub source_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
