//! One row per deployment-wide periodic job (the `cleanup` job): who runs it now (a lease, so one process at
//! a time does) and when it last finished (so it runs once per period however many processes schedule it).

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
                    .table(JobRuns::Table)
                    // The job's name in the registry (`cleanup`).
                    .col(string(JobRuns::Name).primary_key())
                    .col(string_null(JobRuns::LeaseOwner))
                    .col(timestamp_with_time_zone_null(JobRuns::LeaseExpiresAt))
                    .col(timestamp_with_time_zone_null(JobRuns::LastStartedAt))
                    .col(timestamp_with_time_zone_null(JobRuns::LastFinishedAt))
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum JobRuns {
    Table,
    Name,
    LeaseOwner,
    LeaseExpiresAt,
    LastStartedAt,
    LastFinishedAt,
}
