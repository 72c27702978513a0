use sea_orm::entity::prelude::*;

/// A signed-in browser. The cookie carries a random token; only its SHA-256 is here.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub token_hash: Vec<u8>,
    pub user_id: Uuid,
    /// The organization the dashboard shows; checked against the user's memberships on every request.
    pub organization_id: Option<Uuid>,
    pub client_ip: Option<String>,
    pub created_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
