//! Per-organization and per-API-key rate-limit overrides (`opensend admin set-rate-limit`): both columns of
//! a pair are set together or both are null (null = the deployment's default from the environment).
//! Per-organization email quotas (`opensend admin set-quota`) and the counters they are checked against:
//! one row per organization and day (`d:2026-11-27`) or month (`m:2026-11`), UTC.

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
        for column in [Quota::DailyEmailQuota, Quota::MonthlyEmailQuota] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Organizations::Table)
                        .add_column(big_integer_null(column))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(EmailQuotaUsage::Table)
                    .col(uuid(EmailQuotaUsage::OrganizationId))
                    .col(string(EmailQuotaUsage::Period))
                    .col(big_integer(EmailQuotaUsage::Emails))
                    .primary_key(
                        Index::create()
                            .col(EmailQuotaUsage::OrganizationId)
                            .col(EmailQuotaUsage::Period),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(EmailQuotaUsage::Table, EmailQuotaUsage::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Quota {
    DailyEmailQuota,
    MonthlyEmailQuota,
}

#[derive(DeriveIden)]
enum EmailQuotaUsage {
    Table,
    OrganizationId,
    Period,
    Emails,
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
    Id,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
}
