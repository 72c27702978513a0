//! Templates (Resend's `/templates`):
//!
//! - `templates`: the template and its draft, the content edits change (`from_address`, `subject`,
//!   `reply_to` as a JSON array, `html`, `text_body`, `variables` as a JSON array of
//!   `{key, type, fallback_value}`). `alias` is unique per organization (NULLs are distinct on both
//!   backends). `current_version_id` names the draft's content; `published_version_id` the version sends use.
//! - `template_versions`: every published version, kept as it was published (a version's id is the
//!   `current_version_id` the draft had when it was published). Removed with their template.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn cascade<T: IntoIden + Copy + 'static>(
    table: T,
    column: T,
    to: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, column)
        .to(Alias::new(to), Alias::new("id"))
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden + Copy + 'static,
    columns: &[&'static str],
    unique: bool,
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(table);
    for column in columns {
        index.col(Alias::new(*column));
    }
    if unique {
        index.unique();
    }
    manager.create_index(index.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Templates::Table)
                    .col(pk_uuid(Templates::Id))
                    .col(uuid(Templates::OrganizationId))
                    .col(string(Templates::Name))
                    .col(string_null(Templates::Alias))
                    .col(text_null(Templates::FromAddress))
                    .col(text_null(Templates::Subject))
                    .col(text_null(Templates::ReplyTo))
                    .col(text(Templates::Html))
                    .col(text_null(Templates::TextBody))
                    .col(text(Templates::Variables))
                    .col(uuid(Templates::CurrentVersionId))
                    .col(uuid_null(Templates::PublishedVersionId))
                    .col(timestamp_with_time_zone_null(Templates::PublishedAt))
                    .col(timestamp_with_time_zone(Templates::CreatedAt))
                    .col(timestamp_with_time_zone(Templates::UpdatedAt))
                    .foreign_key(&mut cascade(
                        Templates::Table,
                        Templates::OrganizationId,
                        "organizations",
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "templates_organization_id_alias_key",
            Templates::Table,
            &["organization_id", "alias"],
            true,
        )
        .await?;
        index(
            manager,
            "templates_organization_id_id_idx",
            Templates::Table,
            &["organization_id", "id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(TemplateVersions::Table)
                    .col(pk_uuid(TemplateVersions::Id))
                    .col(uuid(TemplateVersions::TemplateId))
                    .col(uuid(TemplateVersions::OrganizationId))
                    .col(string(TemplateVersions::Name))
                    .col(text_null(TemplateVersions::FromAddress))
                    .col(text_null(TemplateVersions::Subject))
                    .col(text_null(TemplateVersions::ReplyTo))
                    .col(text(TemplateVersions::Html))
                    .col(text_null(TemplateVersions::TextBody))
                    .col(text(TemplateVersions::Variables))
                    .col(timestamp_with_time_zone(TemplateVersions::PublishedAt))
                    .foreign_key(&mut cascade(
                        TemplateVersions::Table,
                        TemplateVersions::TemplateId,
                        "templates",
                    ))
                    .foreign_key(&mut cascade(
                        TemplateVersions::Table,
                        TemplateVersions::OrganizationId,
                        "organizations",
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "template_versions_organization_id_template_id_idx",
            TemplateVersions::Table,
            &["organization_id", "template_id"],
            false,
        )
        .await?;
        index(
            manager,
            "template_versions_template_id_idx",
            TemplateVersions::Table,
            &["template_id"],
            false,
        )
        .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Templates {
    Table,
    Id,
    OrganizationId,
    Name,
    Alias,
    FromAddress,
    Subject,
    ReplyTo,
    Html,
    TextBody,
    Variables,
    CurrentVersionId,
    PublishedVersionId,
    PublishedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum TemplateVersions {
    Table,
    Id,
    TemplateId,
    OrganizationId,
    Name,
    FromAddress,
    Subject,
    ReplyTo,
    Html,
    TextBody,
    Variables,
    PublishedAt,
}
