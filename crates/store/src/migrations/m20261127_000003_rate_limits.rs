//! Per-organization and per-API-key rate-limit overrides (`opensend admin set-rate-limit`). Both columns of a
//! pair are set together or both are null (null = the deployment's default from the environment).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite accepts one column per ALTER TABLE, so each column is its own statement.
        for column in [RateLimit::RateLimitPerSecond, RateLimit::RateLimitBurst] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Organizations::Table)
                        .add_column(integer_null(column))
                        .to_owned(),
                )
                .await?;
            manager
                .alter_table(
                    Table::alter()
                        .table(ApiKeys::Table)
                        .add_column(integer_null(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// The same two columns on both tables.
#[derive(DeriveIden, Clone, Copy)]
enum RateLimit {
    RateLimitPerSecond,
    RateLimitBurst,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
}
