use sea_orm::entity::prelude::*;

/// An API key. The token is not here: only its SHA-256 (`token_hash`) and its first characters.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub token_hash: Vec<u8>,
    pub token_prefix: String,
    /// `full_access` or `sending_access` (see `opensend_core::Permission`).
    pub permission: String,
    pub domain_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub last_used_at: Option<DateTimeUtc>,
    /// Set when the key is deleted; a revoked key never authenticates again and is hidden from lists.
    pub revoked_at: Option<DateTimeUtc>,
    /// Optional rate limit of this key on top of its organization's (requests per second and burst).
    pub rate_limit_per_second: Option<i32>,
    pub rate_limit_burst: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organization::Entity",
        from = "Column::OrganizationId",
        to = "super::organization::Column::Id",
        on_delete = "Cascade"
    )]
    Organization,
}

impl Related<super::organization::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
