//! Deleting what is older than the retention period (`RETENTION_DAYS`): finished emails with everything
//! hanging off them (recipients, attachments, events, raw message), webhook messages with their deliveries
//! and attempts, received emails with their attachments, the organizations' event logs and the request log.
//!
//! Rows go in chunks of [`CHUNK`], each chunk its own short transaction, so a large backlog never holds the
//! writer for long and an interrupted run simply continues next time. Emails still waiting to be sent are
//! kept whatever their age, and so are webhook messages with a delivery still pending. Child rows go with their parents through `ON DELETE CASCADE`.

use chrono::{DateTime, Utc};
use opensend_core::{DeliveryStatus, EmailStatus};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::StoreError;
use crate::entities::{
    email, organization_event, received_email, webhook_delivery, webhook_message,
};

/// Rows deleted per transaction.
pub const CHUNK: u64 = 500;

/// What a purge removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    pub emails: u64,
    pub webhook_messages: u64,
    pub organization_events: u64,
    pub received_emails: u64,
    /// Entries of the request log (`GET /logs`).
    pub request_logs: u64,
}

pub struct Retention<'a> {
    write: &'a DatabaseConnection,
}

impl<'a> Retention<'a> {
    pub(crate) fn new(write: &'a DatabaseConnection) -> Self {
        Self { write }
    }

    /// Deletes what was created before `cutoff`.
    pub async fn purge_before(&self, cutoff: DateTime<Utc>) -> Result<PurgeReport, StoreError> {
        let mut report = PurgeReport::default();
        loop {
            let ids: Vec<Uuid> = email::Entity::find()
                .select_only()
                .column(email::Column::Id)
                .filter(email::Column::CreatedAt.lt(cutoff))
                .filter(
                    email::Column::Status.is_not_in(EmailStatus::WAITING.map(EmailStatus::as_str)),
                )
                .order_by_asc(email::Column::Id)
                .limit(CHUNK)
                .into_tuple()
                .all(self.write)
                .await?;
            if ids.is_empty() {
                break;
            }
            report.emails += email::Entity::delete_many()
                .filter(email::Column::Id.is_in(ids))
                .exec(self.write)
                .await?
                .rows_affected;
        }
        loop {
            let ids: Vec<Uuid> = webhook_message::Entity::find()
                .select_only()
                .column(webhook_message::Column::Id)
                .filter(webhook_message::Column::CreatedAt.lt(cutoff))
                // A message still being retried stays until its last delivery is finished.
                .filter(
                    webhook_message::Column::Id.not_in_subquery(
                        sea_orm::sea_query::Query::select()
                            .column(webhook_delivery::Column::MessageId)
                            .from(webhook_delivery::Entity)
                            .and_where(
                                webhook_delivery::Column::Status
                                    .eq(DeliveryStatus::Pending.as_str()),
                            )
                            .to_owned(),
                    ),
                )
                .order_by_asc(webhook_message::Column::Id)
                .limit(CHUNK)
                .into_tuple()
                .all(self.write)
                .await?;
            if ids.is_empty() {
                break;
            }
            report.webhook_messages += webhook_message::Entity::delete_many()
                .filter(webhook_message::Column::Id.is_in(ids))
                .exec(self.write)
                .await?
                .rows_affected;
        }
        loop {
            let ids: Vec<Uuid> = received_email::Entity::find()
                .select_only()
                .column(received_email::Column::Id)
                .filter(received_email::Column::CreatedAt.lt(cutoff))
                .order_by_asc(received_email::Column::Id)
                .limit(CHUNK)
                .into_tuple()
                .all(self.write)
                .await?;
            if ids.is_empty() {
                break;
            }
            // Attachments go with their email (`ON DELETE CASCADE`).
            report.received_emails += received_email::Entity::delete_many()
                .filter(received_email::Column::Id.is_in(ids))
                .exec(self.write)
                .await?
                .rows_affected;
        }
        report.request_logs = crate::repos::RequestLogs::new(self.write, self.write)
            .purge_before(cutoff)
            .await?;
        report.organization_events = organization_event::Entity::delete_many()
            .filter(organization_event::Column::CreatedAt.lt(cutoff))
            .exec(self.write)
            .await?
            .rows_affected;
        Ok(report)
    }
}
