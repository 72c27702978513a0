//! The deployment-wide cache epoch: one row whose counter is bumped, in the same transaction, by every
//! change that in-process caches must not outlive (a key revoked or its rate limit changed, an
//! organization's limits or quotas changed, a webhook endpoint added, changed or removed). Each process
//! compares it with the epoch its cached rows were read under (see `crate::caches`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CacheEpoch::Table)
                    // Always 1: the table has exactly one row.
                    .col(integer(CacheEpoch::Id).primary_key())
                    .col(big_integer(CacheEpoch::Epoch))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("INSERT INTO cache_epoch (id, epoch) VALUES (1, 0)")
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum CacheEpoch {
    Table,
    Id,
    Epoch,
}
