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
                    .table(Domains::Table)
                    .col(pk_uuid(Domains::Id))
                    .col(uuid(Domains::OrganizationId))
                    // Lower-case A-labels, as `opensend_core::DomainName` produces.
                    .col(string(Domains::Name))
                    .col(string(Domains::Status))
                    .col(string(Domains::Region))
                    .col(string(Domains::CustomReturnPath))
                    .col(boolean(Domains::OpenTracking))
                    .col(boolean(Domains::ClickTracking))
                    .col(string_null(Domains::TrackingSubdomain))
                    .col(string(Domains::Tls))
                    .col(boolean(Domains::SendingEnabled))
                    .col(boolean(Domains::ReceivingEnabled))
                    .col(boolean(Domains::AllowSubdomains))
                    // JSON: the last check's result per record (status and what was found).
                    .col(text_null(Domains::RecordChecks))
                    .col(timestamp_with_time_zone(Domains::CreatedAt))
                    .col(timestamp_with_time_zone(Domains::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Domains::LastCheckedAt))
                    // When the background job should look again; NULL until the first verify.
                    .col(timestamp_with_time_zone_null(Domains::NextCheckAt))
                    .col(integer(Domains::CheckAttempts).default(0))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Domains::Table, Domains::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("domains_organization_id_name_key")
                    .table(Domains::Table)
                    .col(Domains::OrganizationId)
                    .col(Domains::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("domains_organization_id_id_idx")
                    .table(Domains::Table)
                    .col(Domains::OrganizationId)
                    .col(Domains::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("domains_next_check_at_idx")
                    .table(Domains::Table)
                    .col(Domains::NextCheckAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DomainDkimKeys::Table)
                    .col(pk_uuid(DomainDkimKeys::Id))
                    .col(uuid(DomainDkimKeys::OrganizationId))
                    .col(uuid(DomainDkimKeys::DomainId))
                    .col(string(DomainDkimKeys::Selector))
                    .col(string(DomainDkimKeys::Algorithm))
                    .col(blob(DomainDkimKeys::PublicKey))
                    // PKCS#8 DER sealed with AES-256-GCM (opensend_core::SecretBox); never stored in clear.
                    .col(blob(DomainDkimKeys::PrivateKeySealed))
                    // `active` (signs), `next` (rotation waiting for its record), `retired`.
                    .col(string(DomainDkimKeys::State))
                    .col(timestamp_with_time_zone(DomainDkimKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(DomainDkimKeys::ActivatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(DomainDkimKeys::Table, DomainDkimKeys::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(DomainDkimKeys::Table, DomainDkimKeys::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("domain_dkim_keys_domain_id_selector_key")
                    .table(DomainDkimKeys::Table)
                    .col(DomainDkimKeys::DomainId)
                    .col(DomainDkimKeys::Selector)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("domain_dkim_keys_organization_id_domain_id_idx")
                    .table(DomainDkimKeys::Table)
                    .col(DomainDkimKeys::OrganizationId)
                    .col(DomainDkimKeys::DomainId)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Domains {
    Table,
    Id,
    OrganizationId,
    Name,
    Status,
    Region,
    CustomReturnPath,
    OpenTracking,
    ClickTracking,
    TrackingSubdomain,
    Tls,
    SendingEnabled,
    ReceivingEnabled,
    AllowSubdomains,
    RecordChecks,
    CreatedAt,
    UpdatedAt,
    LastCheckedAt,
    NextCheckAt,
    CheckAttempts,
}

#[derive(DeriveIden)]
enum DomainDkimKeys {
    Table,
    Id,
    OrganizationId,
    DomainId,
    Selector,
    Algorithm,
    PublicKey,
    PrivateKeySealed,
    State,
    CreatedAt,
    ActivatedAt,
}
