//! Contact imports (`POST /contacts/imports`), processed in the background:
//!
//! - `contact_imports`: one per upload, with its options (JSON), counts, where processing got to
//!   (`rows_done`, so an import taken over after a crash goes on where the last committed batch ended) and
//!   a lease like every queue's.
//! - `contact_import_chunks`: the uploaded CSV in pieces of at most 1 MiB, in order, so neither the upload
//!   nor the processing ever holds the whole file, and any process of the deployment can process it.
//! - `contact_import_errors`: every row that could not be imported, by line, with why.

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
                    .table(ContactImports::Table)
                    .col(pk_uuid(ContactImports::Id))
                    .col(uuid(ContactImports::OrganizationId))
                    // `uploading`, `queued`, `in_progress`, `completed` or `failed`.
                    .col(string(ContactImports::Status))
                    // The parsed options (column map, on_conflict, segments, topics) as JSON.
                    .col(text(ContactImports::Options))
                    .col(big_integer(ContactImports::RowsDone))
                    .col(big_integer(ContactImports::Created))
                    .col(big_integer(ContactImports::Updated))
                    .col(big_integer(ContactImports::Skipped))
                    .col(big_integer(ContactImports::Failed))
                    .col(string_null(ContactImports::Error))
                    .col(timestamp_with_time_zone_null(ContactImports::NextAttemptAt))
                    .col(string_null(ContactImports::LeaseOwner))
                    .col(timestamp_with_time_zone_null(
                        ContactImports::LeaseExpiresAt,
                    ))
                    .col(timestamp_with_time_zone(ContactImports::CreatedAt))
                    .col(timestamp_with_time_zone_null(ContactImports::CompletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ContactImports::Table, ContactImports::OrganizationId)
                            .to(Alias::new("organizations"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("contact_imports_organization_id_id_idx")
                    .table(ContactImports::Table)
                    .col(ContactImports::OrganizationId)
                    .col(ContactImports::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("contact_imports_pending_next_attempt_at_idx")
                    .table(ContactImports::Table)
                    .col(ContactImports::NextAttemptAt)
                    .and_where(Expr::col(ContactImports::NextAttemptAt).is_not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ContactImportChunks::Table)
                    .col(uuid(ContactImportChunks::ImportId))
                    .col(integer(ContactImportChunks::Seq))
                    .col(blob(ContactImportChunks::Data))
                    .primary_key(
                        Index::create()
                            .col(ContactImportChunks::ImportId)
                            .col(ContactImportChunks::Seq),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ContactImportChunks::Table, ContactImportChunks::ImportId)
                            .to(ContactImports::Table, ContactImports::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ContactImportErrors::Table)
                    .col(uuid(ContactImportErrors::ImportId))
                    .col(big_integer(ContactImportErrors::Line))
                    .col(text(ContactImportErrors::Message))
                    .primary_key(
                        Index::create()
                            .col(ContactImportErrors::ImportId)
                            .col(ContactImportErrors::Line),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ContactImportErrors::Table, ContactImportErrors::ImportId)
                            .to(ContactImports::Table, ContactImports::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum ContactImports {
    Table,
    Id,
    OrganizationId,
    Status,
    Options,
    RowsDone,
    Created,
    Updated,
    Skipped,
    Failed,
    Error,
    NextAttemptAt,
    LeaseOwner,
    LeaseExpiresAt,
    CreatedAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum ContactImportChunks {
    Table,
    ImportId,
    Seq,
    Data,
}

#[derive(DeriveIden)]
enum ContactImportErrors {
    Table,
    ImportId,
    Line,
    Message,
}
