//! Received (inbound) email: one row per message and organization it was routed to, and the message's
//! attachments, decoded. Deleted with its organization, and by the retention purge.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let organization_fk = |table: &str| {
            ForeignKey::create()
                .from(Alias::new(table), Alias::new("organization_id"))
                .to(Alias::new("organizations"), Alias::new("id"))
                .on_delete(ForeignKeyAction::Cascade)
                .to_owned()
        };

        manager
            .create_table(
                Table::create()
                    .table(ReceivedEmails::Table)
                    .col(pk_uuid(ReceivedEmails::Id))
                    .col(uuid(ReceivedEmails::OrganizationId))
                    // The first From mailbox as display text (`Name <address>`); empty when the message had none.
                    .col(text(ReceivedEmails::FromAddress))
                    // JSON arrays of mailbox strings from the message's headers.
                    .col(text(ReceivedEmails::ToAddresses))
                    .col(text(ReceivedEmails::CcAddresses))
                    .col(text(ReceivedEmails::ReplyTo))
                    // JSON array: the envelope recipients named in neither To nor Cc (blind copies).
                    .col(text(ReceivedEmails::BccAddresses))
                    // JSON array: the envelope recipients this organization received the message for.
                    .col(text(ReceivedEmails::EnvelopeRecipients))
                    .col(text_null(ReceivedEmails::Subject))
                    .col(text_null(ReceivedEmails::Html))
                    .col(text_null(ReceivedEmails::TextBody))
                    // JSON array of [name, raw value] pairs: every top-level header field, in order.
                    .col(text(ReceivedEmails::Headers))
                    // `Message-ID` without angle brackets.
                    .col(text_null(ReceivedEmails::MessageId))
                    .col(big_integer(ReceivedEmails::RawSize))
                    .col(timestamp_with_time_zone(ReceivedEmails::CreatedAt))
                    .foreign_key(&mut organization_fk("received_emails"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("received_emails_organization_id_id_idx")
                    .table(ReceivedEmails::Table)
                    .col(ReceivedEmails::OrganizationId)
                    .col(ReceivedEmails::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("received_emails_created_at_idx")
                    .table(ReceivedEmails::Table)
                    .col(ReceivedEmails::CreatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ReceivedAttachments::Table)
                    .col(pk_uuid(ReceivedAttachments::Id))
                    .col(uuid(ReceivedAttachments::OrganizationId))
                    .col(uuid(ReceivedAttachments::ReceivedEmailId))
                    .col(integer(ReceivedAttachments::Position))
                    .col(text_null(ReceivedAttachments::Filename))
                    .col(string(ReceivedAttachments::ContentType))
                    .col(text_null(ReceivedAttachments::ContentId))
                    .col(boolean(ReceivedAttachments::Inline))
                    .col(big_integer(ReceivedAttachments::Size))
                    .col(blob(ReceivedAttachments::Content))
                    .foreign_key(&mut organization_fk("received_attachments"))
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                ReceivedAttachments::Table,
                                ReceivedAttachments::ReceivedEmailId,
                            )
                            .to(ReceivedEmails::Table, ReceivedEmails::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("received_attachments_organization_id_email_idx")
                    .table(ReceivedAttachments::Table)
                    .col(ReceivedAttachments::OrganizationId)
                    .col(ReceivedAttachments::ReceivedEmailId)
                    .to_owned(),
            )
            .await?;
        // Cascading deletes look attachments up by their email.
        manager
            .create_index(
                Index::create()
                    .name("received_attachments_received_email_id_idx")
                    .table(ReceivedAttachments::Table)
                    .col(ReceivedAttachments::ReceivedEmailId)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum ReceivedEmails {
    Table,
    Id,
    OrganizationId,
    FromAddress,
    ToAddresses,
    CcAddresses,
    ReplyTo,
    BccAddresses,
    EnvelopeRecipients,
    Subject,
    Html,
    TextBody,
    Headers,
    MessageId,
    RawSize,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ReceivedAttachments {
    Table,
    Id,
    OrganizationId,
    ReceivedEmailId,
    Position,
    Filename,
    ContentType,
    ContentId,
    Inline,
    Size,
    Content,
}
