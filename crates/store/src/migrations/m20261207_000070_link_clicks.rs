//! Open and click tracking: each counted click on a tracked link, by email (what a broadcast's
//! `clicked-links` adds up). Opens and clicks are also email events (`email.opened`, `email.clicked`).

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
                    .table(LinkClicks::Table)
                    .col(pk_uuid(LinkClicks::Id))
                    .col(uuid(LinkClicks::OrganizationId))
                    .col(uuid(LinkClicks::EmailId))
                    // The link as the email had it, before it was rewritten.
                    .col(text(LinkClicks::Url))
                    .col(timestamp_with_time_zone(LinkClicks::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(LinkClicks::Table, LinkClicks::OrganizationId)
                            .to(Alias::new("organizations"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(LinkClicks::Table, LinkClicks::EmailId)
                            .to(Alias::new("emails"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Clicks are read by email (one email's, or a broadcast's emails').
        manager
            .create_index(
                Index::create()
                    .name("link_clicks_email_id_idx")
                    .table(LinkClicks::Table)
                    .col(LinkClicks::EmailId)
                    .col(LinkClicks::CreatedAt)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum LinkClicks {
    Table,
    Id,
    OrganizationId,
    EmailId,
    Url,
    CreatedAt,
}
