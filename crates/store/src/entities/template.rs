use sea_orm::entity::prelude::*;

/// A template and its draft (the content edits change).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "templates")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    /// Unique per organization when set.
    pub alias: Option<String>,
    pub from_address: Option<String>,
    pub subject: Option<String>,
    /// JSON array of addresses, or NULL.
    pub reply_to: Option<String>,
    pub html: String,
    pub text_body: Option<String>,
    /// JSON array of `{key, type, fallback_value}`.
    pub variables: String,
    /// The id of the draft's content; it is the id of a version once that content is published.
    pub current_version_id: Uuid,
    pub published_version_id: Option<Uuid>,
    pub published_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
