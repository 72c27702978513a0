use sea_orm::entity::prelude::*;

/// A row of an import that could not be imported.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_import_errors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub import_id: Uuid,
    /// The row's line in the file (the header is line 1).
    #[sea_orm(primary_key, auto_increment = false)]
    pub line: i64,
    pub message: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
