use sea_orm::entity::prelude::*;

/// A sending domain of one organization. Its DKIM keys are in [`super::dkim_key`].
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "domains")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    /// `not_started`, `pending`, `verified`, `failed` or `temporary_failure`.
    pub status: String,
    pub region: String,
    pub custom_return_path: String,
    pub open_tracking: bool,
    pub click_tracking: bool,
    pub tracking_subdomain: Option<String>,
    pub tls: String,
    pub sending_enabled: bool,
    pub receiving_enabled: bool,
    /// Whether addresses at subdomains of this domain may be used as From once it is verified.
    pub allow_subdomains: bool,
    /// JSON array of the last check's per-record results.
    pub record_checks: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub last_checked_at: Option<DateTimeUtc>,
    pub next_check_at: Option<DateTimeUtc>,
    pub check_attempts: i32,
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
    #[sea_orm(has_many = "super::dkim_key::Entity")]
    DkimKeys,
}

impl Related<super::dkim_key::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::DkimKeys.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
