//! Webhook endpoints and their outbox: the events (messages) to send, one delivery per endpoint and event,
//! and every attempt made for a delivery. Also the organization's event log, where the platform tells an
//! organization about things it did on its own (an endpoint disabled after failing for days).

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
                    .table(Webhooks::Table)
                    .col(pk_uuid(Webhooks::Id))
                    .col(uuid(Webhooks::OrganizationId))
                    .col(text(Webhooks::Endpoint))
                    // JSON array of event type names.
                    .col(text(Webhooks::EventTypes))
                    // `enabled` or `disabled`.
                    .col(string(Webhooks::Status))
                    .col(text_null(Webhooks::DisabledReason))
                    // The signing secret's 32 bytes sealed with AES-256-GCM; never stored in clear.
                    .col(blob(Webhooks::SecretSealed))
                    // After a rotation, the previous secret keeps signing alongside the new one until it expires.
                    .col(blob_null(Webhooks::PreviousSecretSealed))
                    .col(timestamp_with_time_zone_null(
                        Webhooks::PreviousSecretExpiresAt,
                    ))
                    // Start of the current run of failed attempts; cleared by any success.
                    .col(timestamp_with_time_zone_null(Webhooks::FailingSince))
                    .col(timestamp_with_time_zone(Webhooks::CreatedAt))
                    .col(timestamp_with_time_zone(Webhooks::UpdatedAt))
                    .foreign_key(&mut organization_fk("webhooks"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhooks_organization_id_status_idx")
                    .table(Webhooks::Table)
                    .col(Webhooks::OrganizationId)
                    .col(Webhooks::Status)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(WebhookMessages::Table)
                    .col(pk_uuid(WebhookMessages::Id))
                    .col(uuid(WebhookMessages::OrganizationId))
                    .col(string(WebhookMessages::EventType))
                    // The exact body every delivery of this event sends, byte for byte.
                    .col(text(WebhookMessages::Payload))
                    .col(timestamp_with_time_zone(WebhookMessages::CreatedAt))
                    .foreign_key(&mut organization_fk("webhook_messages"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_messages_organization_id_id_idx")
                    .table(WebhookMessages::Table)
                    .col(WebhookMessages::OrganizationId)
                    .col(WebhookMessages::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_messages_created_at_idx")
                    .table(WebhookMessages::Table)
                    .col(WebhookMessages::CreatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(pk_uuid(WebhookDeliveries::Id))
                    .col(uuid(WebhookDeliveries::OrganizationId))
                    .col(uuid(WebhookDeliveries::WebhookId))
                    .col(uuid(WebhookDeliveries::MessageId))
                    // `pending`, `succeeded` or `failed`.
                    .col(string(WebhookDeliveries::Status))
                    // Attempts claimed so far, including one in flight.
                    .col(integer(WebhookDeliveries::Attempts))
                    // When the next attempt is due; NULL once the delivery is finished.
                    .col(timestamp_with_time_zone_null(
                        WebhookDeliveries::NextAttemptAt,
                    ))
                    .col(string_null(WebhookDeliveries::LeaseOwner))
                    .col(timestamp_with_time_zone_null(
                        WebhookDeliveries::LeaseExpiresAt,
                    ))
                    .col(integer_null(WebhookDeliveries::LastStatusCode))
                    .col(text_null(WebhookDeliveries::LastError))
                    .col(timestamp_with_time_zone_null(
                        WebhookDeliveries::LastAttemptAt,
                    ))
                    // The delivery this one replays, when it was created by a replay.
                    .col(uuid_null(WebhookDeliveries::ReplayOf))
                    .col(timestamp_with_time_zone(WebhookDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone(WebhookDeliveries::UpdatedAt))
                    .foreign_key(&mut organization_fk("webhook_deliveries"))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookDeliveries::Table, WebhookDeliveries::WebhookId)
                            .to(Webhooks::Table, Webhooks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookDeliveries::Table, WebhookDeliveries::MessageId)
                            .to(WebhookMessages::Table, WebhookMessages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The dispatcher's claim scans due deliveries in time order.
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_next_attempt_at_idx")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_organization_id_webhook_id_id_idx")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::OrganizationId)
                    .col(WebhookDeliveries::WebhookId)
                    .col(WebhookDeliveries::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_message_id_idx")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::MessageId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_webhook_id_idx")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::WebhookId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempts::Table)
                    .col(pk_uuid(WebhookAttempts::Id))
                    .col(uuid(WebhookAttempts::OrganizationId))
                    .col(uuid(WebhookAttempts::DeliveryId))
                    .col(integer(WebhookAttempts::Attempt))
                    .col(boolean(WebhookAttempts::Succeeded))
                    .col(integer_null(WebhookAttempts::StatusCode))
                    // At most 1 KiB of the response body.
                    .col(text_null(WebhookAttempts::Response))
                    .col(text_null(WebhookAttempts::Error))
                    .col(integer(WebhookAttempts::DurationMs))
                    .col(timestamp_with_time_zone_null(
                        WebhookAttempts::NextAttemptAt,
                    ))
                    .col(timestamp_with_time_zone(WebhookAttempts::CreatedAt))
                    .foreign_key(&mut organization_fk("webhook_attempts"))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookAttempts::Table, WebhookAttempts::DeliveryId)
                            .to(WebhookDeliveries::Table, WebhookDeliveries::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_attempts_organization_id_delivery_id_idx")
                    .table(WebhookAttempts::Table)
                    .col(WebhookAttempts::OrganizationId)
                    .col(WebhookAttempts::DeliveryId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_attempts_delivery_id_idx")
                    .table(WebhookAttempts::Table)
                    .col(WebhookAttempts::DeliveryId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(OrganizationEvents::Table)
                    .col(pk_uuid(OrganizationEvents::Id))
                    .col(uuid(OrganizationEvents::OrganizationId))
                    .col(string(OrganizationEvents::Kind))
                    .col(text(OrganizationEvents::Message))
                    // JSON object with the ids the message is about.
                    .col(text(OrganizationEvents::Data))
                    .col(timestamp_with_time_zone(OrganizationEvents::CreatedAt))
                    .foreign_key(&mut organization_fk("organization_events"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("organization_events_organization_id_id_idx")
                    .table(OrganizationEvents::Table)
                    .col(OrganizationEvents::OrganizationId)
                    .col(OrganizationEvents::Id)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    OrganizationId,
    Endpoint,
    EventTypes,
    Status,
    DisabledReason,
    SecretSealed,
    PreviousSecretSealed,
    PreviousSecretExpiresAt,
    FailingSince,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookMessages {
    Table,
    Id,
    OrganizationId,
    EventType,
    Payload,
    CreatedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    OrganizationId,
    WebhookId,
    MessageId,
    Status,
    Attempts,
    NextAttemptAt,
    LeaseOwner,
    LeaseExpiresAt,
    LastStatusCode,
    LastError,
    LastAttemptAt,
    ReplayOf,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookAttempts {
    Table,
    Id,
    OrganizationId,
    DeliveryId,
    Attempt,
    Succeeded,
    StatusCode,
    Response,
    Error,
    DurationMs,
    NextAttemptAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OrganizationEvents {
    Table,
    Id,
    OrganizationId,
    Kind,
    Message,
    Data,
    CreatedAt,
}
