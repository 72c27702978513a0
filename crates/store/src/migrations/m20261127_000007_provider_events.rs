//! Provider events applied to emails (Amazon SES events arriving through SNS): one row per report, keyed by
//! the provider and the report's own id, written in the same transaction as the report's effects. A report
//! whose row exists has been applied; one whose transaction rolled back left no row and is applied when it
//! comes again.

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
                    .table(ProviderEvents::Table)
                    .col(pk_uuid(ProviderEvents::Id))
                    .col(uuid(ProviderEvents::OrganizationId))
                    // `ses`.
                    .col(string(ProviderEvents::Provider))
                    // The report's id at the provider (SNS `MessageId`).
                    .col(string(ProviderEvents::EventId))
                    .col(uuid(ProviderEvents::EmailId))
                    // The provider's name for what happened (`Bounce`, `Delivery`, …).
                    .col(string(ProviderEvents::Kind))
                    .col(timestamp_with_time_zone(ProviderEvents::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ProviderEvents::Table, ProviderEvents::OrganizationId)
                            .to(Alias::new("organizations"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ProviderEvents::Table, ProviderEvents::EmailId)
                            .to(Alias::new("emails"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("provider_events_provider_event_id_key")
                    .table(ProviderEvents::Table)
                    .col(ProviderEvents::Provider)
                    .col(ProviderEvents::EventId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("provider_events_organization_id_id_idx")
                    .table(ProviderEvents::Table)
                    .col(ProviderEvents::OrganizationId)
                    .col(ProviderEvents::Id)
                    .to_owned(),
            )
            .await?;
        // Deleting an email (retention) cascades here.
        manager
            .create_index(
                Index::create()
                    .name("provider_events_email_id_idx")
                    .table(ProviderEvents::Table)
                    .col(ProviderEvents::EmailId)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum ProviderEvents {
    Table,
    Id,
    OrganizationId,
    Provider,
    EventId,
    EmailId,
    Kind,
    CreatedAt,
}
