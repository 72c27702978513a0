//! The request log: one row per API request made with a key (`GET /logs`), bodies redacted before they are
//! written (see the server's `request_log`).

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
                    .table(RequestLogs::Table)
                    .col(pk_uuid(RequestLogs::Id))
                    .col(uuid(RequestLogs::OrganizationId))
                    // No foreign key: a revoked key's requests stay in the log under its id.
                    .col(uuid_null(RequestLogs::ApiKeyId))
                    .col(string(RequestLogs::Method))
                    .col(text(RequestLogs::Endpoint))
                    .col(integer(RequestLogs::ResponseStatus))
                    .col(text_null(RequestLogs::UserAgent))
                    // JSON text, redacted and cut to 64 KiB before it is stored.
                    .col(text_null(RequestLogs::RequestBody))
                    .col(text_null(RequestLogs::ResponseBody))
                    .col(timestamp_with_time_zone(RequestLogs::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RequestLogs::Table, RequestLogs::OrganizationId)
                            .to(Alias::new("organizations"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Lists page by id within one organization (ids are UUIDv7, so this is creation order too, and
        // no separate index on `created_at` per organization is needed).
        manager
            .create_index(
                Index::create()
                    .name("request_logs_organization_id_id_idx")
                    .table(RequestLogs::Table)
                    .col(RequestLogs::OrganizationId)
                    .col(RequestLogs::Id)
                    .to_owned(),
            )
            .await?;
        // The cleanup job deletes across organizations by age.
        manager
            .create_index(
                Index::create()
                    .name("request_logs_created_at_idx")
                    .table(RequestLogs::Table)
                    .col(RequestLogs::CreatedAt)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum RequestLogs {
    Table,
    Id,
    OrganizationId,
    ApiKeyId,
    Method,
    Endpoint,
    ResponseStatus,
    UserAgent,
    RequestBody,
    ResponseBody,
    CreatedAt,
}
