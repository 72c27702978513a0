//! Where a suppression came from: `source_id`, the email whose bounce or complaint put the address on the list
//! (null for manual entries, imports and unsubscribes). And an index for listing an organization's
//! suppressions newest first.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Suppressions::Table)
                    .add_column(uuid_null(Suppressions::SourceId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("suppressions_organization_id_id_idx")
                    .table(Suppressions::Table)
                    .col(Suppressions::OrganizationId)
                    .col(Suppressions::Id)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Suppressions {
    Table,
    Id,
    OrganizationId,
    SourceId,
}
