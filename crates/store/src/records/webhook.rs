//! Webhook endpoints, their deliveries and messages, and the organization's event log, as the webhooks
//! repository and the webhook queue return them.

use chrono::{DateTime, Utc};
use opensend_core::webhook::EventType;
use opensend_core::{DeliveryStatus, WebhookStatus};
use serde_json::Value;
use uuid::Uuid;

use super::columns::Row;
use crate::StoreError;
use crate::entities::{organization_event, webhook, webhook_delivery, webhook_message};

/// An endpoint an organization registered to receive events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookRecord {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub endpoint: String,
    /// The event types it subscribes to, in the order given.
    pub events: Vec<EventType>,
    pub status: WebhookStatus,
    pub disabled_reason: Option<String>,
    /// The signing secret, sealed (`opensend_core::SecretBox`).
    pub secret_sealed: Vec<u8>,
    pub previous_secret_sealed: Option<Vec<u8>>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<webhook::Model> for WebhookRecord {
    type Error = StoreError;

    fn try_from(model: webhook::Model) -> Result<Self, StoreError> {
        let read = Row::new("webhooks", model.id);
        Ok(Self {
            events: read.values("event_types", &model.event_types)?,
            status: read.value("status", &model.status)?,
            id: model.id,
            organization_id: model.organization_id,
            endpoint: model.endpoint,
            disabled_reason: model.disabled_reason,
            secret_sealed: model.secret_sealed,
            previous_secret_sealed: model.previous_secret_sealed,
            previous_secret_expires_at: model.previous_secret_expires_at,
            failing_since: model.failing_since,
            created_at: model.created_at,
            updated_at: model.updated_at,
        })
    }
}

/// One message on its way to one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub webhook_id: Uuid,
    pub message_id: Uuid,
    pub status: DeliveryStatus,
    /// Attempts claimed so far, including one in flight.
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub replay_of: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<webhook_delivery::Model> for DeliveryRecord {
    type Error = StoreError;

    fn try_from(model: webhook_delivery::Model) -> Result<Self, StoreError> {
        Ok(Self {
            status: Row::new("webhook_deliveries", model.id).value("status", &model.status)?,
            id: model.id,
            organization_id: model.organization_id,
            webhook_id: model.webhook_id,
            message_id: model.message_id,
            attempts: model.attempts,
            next_attempt_at: model.next_attempt_at,
            lease_owner: model.lease_owner,
            lease_expires_at: model.lease_expires_at,
            last_status_code: model.last_status_code,
            last_error: model.last_error,
            last_attempt_at: model.last_attempt_at,
            replay_of: model.replay_of,
            created_at: model.created_at,
            updated_at: model.updated_at,
        })
    }
}

/// A webhook message as the API shows it: its payload as a JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookMessageRecord {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub event_type: EventType,
    /// `{"type", "created_at", "data"}`.
    pub payload: Value,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<webhook_message::Model> for WebhookMessageRecord {
    type Error = StoreError;

    fn try_from(model: webhook_message::Model) -> Result<Self, StoreError> {
        let read = Row::new("webhook_messages", model.id);
        Ok(Self {
            event_type: read.value("event_type", &model.event_type)?,
            payload: read.document("payload", &model.payload)?,
            id: model.id,
            organization_id: model.organization_id,
            created_at: model.created_at,
        })
    }
}

/// Something the platform did to an organization's resources on its own (`webhook.disabled`…).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrganizationEventRecord {
    pub id: Uuid,
    pub organization_id: Uuid,
    /// A dotted name, e.g. `webhook.disabled`.
    pub kind: String,
    pub message: String,
    /// A JSON object with the ids the message is about.
    pub data: Value,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<organization_event::Model> for OrganizationEventRecord {
    type Error = StoreError;

    fn try_from(model: organization_event::Model) -> Result<Self, StoreError> {
        Ok(Self {
            data: Row::new("organization_events", model.id).document("data", &model.data)?,
            id: model.id,
            organization_id: model.organization_id,
            kind: model.kind,
            message: model.message,
            created_at: model.created_at,
        })
    }
}
