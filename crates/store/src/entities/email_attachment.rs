use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_attachments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub email_id: Uuid,
    pub organization_id: Uuid,
    pub position: i32,
    pub filename: String,
    pub content_type: String,
    /// Set for inline parts referenced as `cid:…` from the HTML.
    pub content_id: Option<String>,
    pub content: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
