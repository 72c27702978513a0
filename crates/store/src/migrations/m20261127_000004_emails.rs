//! Emails, their recipients and events, the delivery queue, idempotency records and the suppression list.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let organization_fk = |table: Alias| {
            ForeignKey::create()
                .from(table, Alias::new("organization_id"))
                .to(Alias::new("organizations"), Alias::new("id"))
                .on_delete(ForeignKeyAction::Cascade)
                .to_owned()
        };
        let email_fk = |table: Alias| {
            ForeignKey::create()
                .from(table, Alias::new("email_id"))
                .to(Emails::Table, Emails::Id)
                .on_delete(ForeignKeyAction::Cascade)
                .to_owned()
        };

        manager
            .create_table(
                Table::create()
                    .table(Emails::Table)
                    .col(pk_uuid(Emails::Id))
                    .col(uuid(Emails::OrganizationId))
                    .col(uuid_null(Emails::ApiKeyId))
                    .col(string(Emails::FromAddress))
                    // JSON arrays of mailbox strings, as the client sent them (normalised).
                    .col(text(Emails::ToAddresses))
                    .col(text(Emails::CcAddresses))
                    .col(text(Emails::BccAddresses))
                    .col(text(Emails::ReplyTo))
                    .col(text(Emails::Subject))
                    .col(text_null(Emails::Html))
                    .col(text_null(Emails::TextBody))
                    // JSON object of custom headers and JSON array of {name, value} tags.
                    .col(text(Emails::Headers))
                    .col(text(Emails::Tags))
                    .col(string(Emails::Status))
                    .col(timestamp_with_time_zone_null(Emails::ScheduledAt))
                    .col(string(Emails::MessageId))
                    .col(uuid_null(Emails::SendingDomainId))
                    .col(boolean(Emails::UnverifiedSender))
                    .col(string_null(Emails::Transport))
                    .col(string_null(Emails::ProviderMessageId))
                    .col(text_null(Emails::LastError))
                    // The message as sent, kept only by the capture transport.
                    .col(blob_null(Emails::RawMime))
                    .col(timestamp_with_time_zone(Emails::CreatedAt))
                    .col(timestamp_with_time_zone(Emails::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Emails::SentAt))
                    .foreign_key(&mut organization_fk(Alias::new("emails")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("emails_organization_id_id_idx")
                    .table(Emails::Table)
                    .col(Emails::OrganizationId)
                    .col(Emails::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("emails_provider_message_id_idx")
                    .table(Emails::Table)
                    .col(Emails::ProviderMessageId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EmailAttachments::Table)
                    .col(pk_uuid(EmailAttachments::Id))
                    .col(uuid(EmailAttachments::EmailId))
                    .col(uuid(EmailAttachments::OrganizationId))
                    .col(integer(EmailAttachments::Position))
                    .col(string(EmailAttachments::Filename))
                    .col(string(EmailAttachments::ContentType))
                    .col(string_null(EmailAttachments::ContentId))
                    .col(blob(EmailAttachments::Content))
                    .foreign_key(&mut email_fk(Alias::new("email_attachments")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("email_attachments_email_id_idx")
                    .table(EmailAttachments::Table)
                    .col(EmailAttachments::EmailId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EmailRecipients::Table)
                    .col(pk_uuid(EmailRecipients::Id))
                    .col(uuid(EmailRecipients::EmailId))
                    .col(uuid(EmailRecipients::OrganizationId))
                    .col(string(EmailRecipients::Address))
                    .col(string(EmailRecipients::Kind))
                    .col(string(EmailRecipients::Status))
                    .col(text_null(EmailRecipients::Response))
                    .col(timestamp_with_time_zone(EmailRecipients::UpdatedAt))
                    .foreign_key(&mut email_fk(Alias::new("email_recipients")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("email_recipients_email_id_idx")
                    .table(EmailRecipients::Table)
                    .col(EmailRecipients::EmailId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EmailEvents::Table)
                    .col(pk_uuid(EmailEvents::Id))
                    .col(uuid(EmailEvents::OrganizationId))
                    .col(uuid(EmailEvents::EmailId))
                    .col(string(EmailEvents::EventType))
                    .col(text(EmailEvents::Data))
                    .col(timestamp_with_time_zone(EmailEvents::CreatedAt))
                    .foreign_key(&mut email_fk(Alias::new("email_events")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("email_events_email_id_idx")
                    .table(EmailEvents::Table)
                    .col(EmailEvents::EmailId)
                    .to_owned(),
            )
            .await?;

        // The delivery queue: one row per email still to be delivered. Workers lease rows; a lease that runs
        // out (crashed worker) makes the row claimable again.
        manager
            .create_table(
                Table::create()
                    .table(DeliveryJobs::Table)
                    .col(pk_uuid(DeliveryJobs::Id))
                    .col(uuid_uniq(DeliveryJobs::EmailId))
                    .col(uuid(DeliveryJobs::OrganizationId))
                    .col(timestamp_with_time_zone(DeliveryJobs::RunAt))
                    .col(integer(DeliveryJobs::Attempts))
                    .col(string_null(DeliveryJobs::LeaseOwner))
                    .col(timestamp_with_time_zone_null(DeliveryJobs::LeaseExpiresAt))
                    .col(text_null(DeliveryJobs::LastError))
                    .col(timestamp_with_time_zone(DeliveryJobs::CreatedAt))
                    .foreign_key(&mut email_fk(Alias::new("delivery_jobs")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("delivery_jobs_run_at_idx")
                    .table(DeliveryJobs::Table)
                    .col(DeliveryJobs::RunAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(pk_uuid(IdempotencyKeys::Id))
                    .col(uuid(IdempotencyKeys::OrganizationId))
                    .col(string(IdempotencyKeys::Key))
                    .col(blob(IdempotencyKeys::RequestHash))
                    .col(integer_null(IdempotencyKeys::ResponseStatus))
                    .col(text_null(IdempotencyKeys::ResponseBody))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .col(timestamp_with_time_zone(IdempotencyKeys::ExpiresAt))
                    .foreign_key(&mut organization_fk(Alias::new("idempotency_keys")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idempotency_keys_organization_id_key_key")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::OrganizationId)
                    .col(IdempotencyKeys::Key)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Suppressions::Table)
                    .col(pk_uuid(Suppressions::Id))
                    .col(uuid(Suppressions::OrganizationId))
                    .col(string(Suppressions::Address))
                    .col(string(Suppressions::Reason))
                    .col(timestamp_with_time_zone(Suppressions::CreatedAt))
                    .foreign_key(&mut organization_fk(Alias::new("suppressions")))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("suppressions_organization_id_address_key")
                    .table(Suppressions::Table)
                    .col(Suppressions::OrganizationId)
                    .col(Suppressions::Address)
                    .unique()
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Emails {
    Table,
    Id,
    OrganizationId,
    ApiKeyId,
    FromAddress,
    ToAddresses,
    CcAddresses,
    BccAddresses,
    ReplyTo,
    Subject,
    Html,
    TextBody,
    Headers,
    Tags,
    Status,
    ScheduledAt,
    MessageId,
    SendingDomainId,
    UnverifiedSender,
    Transport,
    ProviderMessageId,
    LastError,
    RawMime,
    CreatedAt,
    UpdatedAt,
    SentAt,
}

#[derive(DeriveIden)]
enum EmailAttachments {
    Table,
    Id,
    EmailId,
    OrganizationId,
    Position,
    Filename,
    ContentType,
    ContentId,
    Content,
}

#[derive(DeriveIden)]
enum EmailRecipients {
    Table,
    Id,
    EmailId,
    OrganizationId,
    Address,
    Kind,
    Status,
    Response,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum EmailEvents {
    Table,
    Id,
    OrganizationId,
    EmailId,
    EventType,
    Data,
    CreatedAt,
}

#[derive(DeriveIden)]
enum DeliveryJobs {
    Table,
    Id,
    EmailId,
    OrganizationId,
    RunAt,
    Attempts,
    LeaseOwner,
    LeaseExpiresAt,
    LastError,
    CreatedAt,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Id,
    OrganizationId,
    Key,
    RequestHash,
    ResponseStatus,
    ResponseBody,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Suppressions {
    Table,
    Id,
    OrganizationId,
    Address,
    Reason,
    CreatedAt,
}
