//! Three changes that make the store hold up under real traffic:
//!
//! - `email_provider_messages`: every id the provider gave an email. Amazon SES takes at most 50 recipients
//!   per call, so one email sent to more is several messages there, each with its own id, and a bounce names
//!   the id of the message its recipient was in. Unique per transport and id. `emails.provider_message_id`
//!   keeps the first id, and is still how emails sent before this table existed are found.
//! - `suppressions.address_key`: the whole address lower-cased, unique per organization, so the list matches
//!   an address whatever the case of its local part (`Alice@example.com` and `alice@example.com` are one
//!   entry). `address` keeps the address as it was first given. Rows that differ only by case are merged
//!   here, keeping the earliest (its reason and source are the first cause, the one worth knowing). The
//!   key is a plain column rather than an index on `lower(address)` so both backends look it up, and
//!   resolve `ON CONFLICT`, through an ordinary unique index, and so the key is computed in one place.
//! - An index of pending webhook deliveries by organization and due time, for the claim that shares each
//!   batch among organizations (finished deliveries, whose `next_attempt_at` is NULL, are left out of it).

use sea_orm::DbBackend;
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
                    .table(EmailProviderMessages::Table)
                    .col(pk_uuid(EmailProviderMessages::Id))
                    .col(uuid(EmailProviderMessages::OrganizationId))
                    .col(uuid(EmailProviderMessages::EmailId))
                    // The transport that sent it (`ses`, `smtp`, …), as in `emails.transport`.
                    .col(string(EmailProviderMessages::Transport))
                    .col(string(EmailProviderMessages::ProviderMessageId))
                    .col(timestamp_with_time_zone(EmailProviderMessages::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                EmailProviderMessages::Table,
                                EmailProviderMessages::OrganizationId,
                            )
                            .to(Alias::new("organizations"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(EmailProviderMessages::Table, EmailProviderMessages::EmailId)
                            .to(Alias::new("emails"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Provider events find their email by this.
        manager
            .create_index(
                Index::create()
                    .name("email_provider_messages_transport_provider_message_id_key")
                    .table(EmailProviderMessages::Table)
                    .col(EmailProviderMessages::Transport)
                    .col(EmailProviderMessages::ProviderMessageId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("email_provider_messages_organization_id_email_id_idx")
                    .table(EmailProviderMessages::Table)
                    .col(EmailProviderMessages::OrganizationId)
                    .col(EmailProviderMessages::EmailId)
                    .to_owned(),
            )
            .await?;
        // Deleting an email (retention) cascades here.
        manager
            .create_index(
                Index::create()
                    .name("email_provider_messages_email_id_idx")
                    .table(EmailProviderMessages::Table)
                    .col(EmailProviderMessages::EmailId)
                    .to_owned(),
            )
            .await?;

        // SQLite adds a NOT NULL column only with a default; every row gets its real key just below.
        manager
            .alter_table(
                Table::alter()
                    .table(Suppressions::Table)
                    .add_column(string(Suppressions::AddressKey).default(""))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        // Stored addresses are ASCII (`EmailAddress` refuses anything else), so `lower()` is exact on both
        // backends and equals the key the repository computes.
        db.execute_unprepared(
            "DELETE FROM suppressions WHERE id IN (\
               SELECT id FROM (\
                 SELECT id, row_number() OVER (\
                   PARTITION BY organization_id, lower(address) ORDER BY created_at, id\
                 ) AS position FROM suppressions\
               ) ranked WHERE position > 1\
             )",
        )
        .await?;
        db.execute_unprepared("UPDATE suppressions SET address_key = lower(address)")
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            // A row written without its key must fail, not share the empty one. (SQLite cannot drop a
            // column default; there the repository is the only writer.)
            db.execute_unprepared("ALTER TABLE suppressions ALTER COLUMN address_key DROP DEFAULT")
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("suppressions_organization_id_address_key")
                    .table(Suppressions::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("suppressions_organization_id_address_key_key")
                    .table(Suppressions::Table)
                    .col(Suppressions::OrganizationId)
                    .col(Suppressions::AddressKey)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_pending_organization_id_next_attempt_at_idx")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::OrganizationId)
                    .col(WebhookDeliveries::NextAttemptAt)
                    .and_where(Expr::col(WebhookDeliveries::NextAttemptAt).is_not_null())
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum EmailProviderMessages {
    Table,
    Id,
    OrganizationId,
    EmailId,
    Transport,
    ProviderMessageId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Suppressions {
    Table,
    OrganizationId,
    AddressKey,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    OrganizationId,
    NextAttemptAt,
}
