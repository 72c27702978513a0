use sea_orm::entity::prelude::*;

/// A published version of a template, kept as it was published.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "template_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub template_id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub from_address: Option<String>,
    pub subject: Option<String>,
    pub reply_to: Option<String>,
    pub html: String,
    pub text_body: Option<String>,
    pub variables: String,
    pub published_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
