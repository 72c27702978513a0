use sea_orm::entity::prelude::*;

/// One CSV upload of contacts and how far its processing got.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_imports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    /// `uploading`, `queued`, `in_progress`, `completed` or `failed`.
    pub status: String,
    /// JSON: `repos::contact_imports::ImportOptions`.
    pub options: String,
    /// Data rows processed (the next batch starts after them).
    pub rows_done: i64,
    pub created: i64,
    pub updated: i64,
    pub skipped: i64,
    pub failed: i64,
    /// Why the whole import failed, when it did.
    pub error: Option<String>,
    /// When a worker may take it; `NULL` once finished (or while uploading).
    pub next_attempt_at: Option<DateTimeUtc>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
