//! Broadcasts (Resend's `/broadcasts`): one email content sent to every contact of a segment.
//!
//! - `broadcasts`: the draft (content, segment, optional topic), its status, and while it is sent, the
//!   fan-out's progress: `cursor` (the last contact written, contacts are walked in id order), the counts,
//!   and a lease like every queue's (`next_attempt_at`, `lease_owner`, `lease_expires_at`).
//! - `broadcast_recipients`: one row per contact the fan-out reached, written in the transaction of its
//!   chunk: the email written for it (`email_id`) or why it was skipped. Unique per broadcast and contact, so
//!   a chunk can never be written twice.
//! - `broadcast_pacing`: per organization, when its next chunk may be written (`BROADCAST_RATE_PER_SECOND` is
//!   a rate per organization, shared by its broadcasts).

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
                    .table(Broadcasts::Table)
                    .col(pk_uuid(Broadcasts::Id))
                    .col(uuid(Broadcasts::OrganizationId))
                    .col(string_null(Broadcasts::Name))
                    .col(uuid_null(Broadcasts::SegmentId))
                    .col(uuid_null(Broadcasts::TopicId))
                    .col(text(Broadcasts::FromAddress))
                    .col(text(Broadcasts::Subject))
                    // JSON array of addresses.
                    .col(text(Broadcasts::ReplyTo))
                    .col(text_null(Broadcasts::PreviewText))
                    .col(text_null(Broadcasts::Html))
                    .col(text_null(Broadcasts::TextBody))
                    // `draft`, `scheduled`, `queued`, `sending`, `sent` or `canceled`.
                    .col(string(Broadcasts::Status))
                    .col(timestamp_with_time_zone_null(Broadcasts::ScheduledAt))
                    .col(timestamp_with_time_zone_null(Broadcasts::SentAt))
                    .col(uuid_null(Broadcasts::ApiKeyId))
                    .col(uuid_null(Broadcasts::SendingDomainId))
                    .col(boolean(Broadcasts::UnverifiedSender))
                    .col(uuid_null(Broadcasts::Cursor))
                    .col(big_integer(Broadcasts::Queued))
                    .col(big_integer(Broadcasts::Skipped))
                    .col(timestamp_with_time_zone_null(Broadcasts::NextAttemptAt))
                    .col(string_null(Broadcasts::LeaseOwner))
                    .col(timestamp_with_time_zone_null(Broadcasts::LeaseExpiresAt))
                    .col(timestamp_with_time_zone(Broadcasts::CreatedAt))
                    .col(timestamp_with_time_zone(Broadcasts::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Broadcasts::Table, Broadcasts::OrganizationId)
                            .to(Alias::new("organizations"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("broadcasts_organization_id_id_idx")
                    .table(Broadcasts::Table)
                    .col(Broadcasts::OrganizationId)
                    .col(Broadcasts::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("broadcasts_pending_next_attempt_at_idx")
                    .table(Broadcasts::Table)
                    .col(Broadcasts::NextAttemptAt)
                    .and_where(Expr::col(Broadcasts::NextAttemptAt).is_not_null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(BroadcastRecipients::Table)
                    .col(pk_uuid(BroadcastRecipients::Id))
                    .col(uuid(BroadcastRecipients::BroadcastId))
                    .col(uuid(BroadcastRecipients::OrganizationId))
                    .col(uuid(BroadcastRecipients::ContactId))
                    .col(string(BroadcastRecipients::Email))
                    // The email written for this contact; NULL when skipped.
                    .col(uuid_null(BroadcastRecipients::EmailId))
                    // `unsubscribed`, `suppressed` or `opted_out` when skipped.
                    .col(string_null(BroadcastRecipients::SkippedReason))
                    .col(timestamp_with_time_zone(BroadcastRecipients::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(BroadcastRecipients::Table, BroadcastRecipients::BroadcastId)
                            .to(Broadcasts::Table, Broadcasts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                BroadcastRecipients::Table,
                                BroadcastRecipients::OrganizationId,
                            )
                            .to(Alias::new("organizations"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("broadcast_recipients_broadcast_id_contact_id_key")
                    .table(BroadcastRecipients::Table)
                    .col(BroadcastRecipients::BroadcastId)
                    .col(BroadcastRecipients::ContactId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("broadcast_recipients_organization_id_broadcast_id_id_idx")
                    .table(BroadcastRecipients::Table)
                    .col(BroadcastRecipients::OrganizationId)
                    .col(BroadcastRecipients::BroadcastId)
                    .col(BroadcastRecipients::Id)
                    .to_owned(),
            )
            .await?;
        // Joining an email back to its broadcast (click tracking, per-broadcast reports).
        manager
            .create_index(
                Index::create()
                    .name("broadcast_recipients_email_id_idx")
                    .table(BroadcastRecipients::Table)
                    .col(BroadcastRecipients::EmailId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(BroadcastPacing::Table)
                    .col(pk_uuid(BroadcastPacing::OrganizationId))
                    .col(timestamp_with_time_zone(BroadcastPacing::NextAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(BroadcastPacing::Table, BroadcastPacing::OrganizationId)
                            .to(Alias::new("organizations"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Broadcasts {
    Table,
    Id,
    OrganizationId,
    Name,
    SegmentId,
    TopicId,
    FromAddress,
    Subject,
    ReplyTo,
    PreviewText,
    Html,
    TextBody,
    Status,
    ScheduledAt,
    SentAt,
    ApiKeyId,
    SendingDomainId,
    UnverifiedSender,
    Cursor,
    Queued,
    Skipped,
    NextAttemptAt,
    LeaseOwner,
    LeaseExpiresAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BroadcastRecipients {
    Table,
    Id,
    BroadcastId,
    OrganizationId,
    ContactId,
    Email,
    EmailId,
    SkippedReason,
    CreatedAt,
}

#[derive(DeriveIden)]
enum BroadcastPacing {
    Table,
    OrganizationId,
    NextAt,
}
