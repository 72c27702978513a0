//! Webhook endpoints: registration, changes, secret rotation, and reading their deliveries and attempts.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DerivePartialModel, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use opensend_core::webhook::EventType;
use opensend_core::{DeliveryStatus, WebhookStatus};

use crate::entities::{
    organization, organization_event, webhook, webhook_attempt, webhook_delivery, webhook_message,
};
use crate::pagination::paginate;
use crate::records::columns::{Row, strings_text};
use crate::records::{
    DeliveryRecord, OrganizationEventRecord, WebhookMessageRecord, WebhookRecord,
};
use crate::repos::audit_log::{AuditContext, AuditEvent, maybe_record_in};
use crate::repos::now;
use crate::repos::webhook_outbox::fail_pending;
use crate::{Page, PageRequest, StoreError};

pub struct Webhooks<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
    /// Who makes the changes, when they are to be recorded in the audit log.
    audit: Option<&'a AuditContext>,
}

#[derive(Clone, Debug)]
pub struct NewWebhook {
    pub organization_id: Uuid,
    pub endpoint: String,
    pub event_types: Vec<EventType>,
    pub secret_sealed: Vec<u8>,
}

/// A `PATCH`: each `Some` replaces the stored value.
#[derive(Clone, Debug, Default)]
pub struct WebhookChanges {
    pub endpoint: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub status: Option<WebhookStatus>,
}

/// An endpoint's sealed signing secrets, for re-sealing under a new encryption key.
#[derive(Clone, Debug, PartialEq, Eq, DerivePartialModel)]
#[sea_orm(entity = "webhook::Entity")]
pub struct SealedWebhookSecrets {
    pub id: Uuid,
    pub secret_sealed: Vec<u8>,
    pub previous_secret_sealed: Option<Vec<u8>>,
}

fn event_names(events: &[EventType]) -> String {
    strings_text(&events.iter().map(|e| e.as_str()).collect::<Vec<_>>())
}

/// What [`Webhooks::create`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateWebhookOutcome {
    Created(Box<WebhookRecord>),
    /// The organization already has this many endpoints, the most it may have; nothing was written.
    LimitReached(u64),
}

/// Why a replay was not created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayOutcome {
    Created(Uuid),
    NotFound,
    EndpointDisabled,
}

impl<'a> Webhooks<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self {
            read,
            write,
            audit: None,
        }
    }

    /// The same repository, recording the changes it makes to endpoints (add, change, delete, secret
    /// rotation, replay) as made by `audit`'s actor, in their transactions.
    pub fn by(mut self, audit: &'a AuditContext) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Registers an endpoint, unless the organization already has `max_per_organization` of them (enabled
    /// or not).
    ///
    /// The count and the insert run in one transaction that first locks the organization's row (`SELECT …
    /// FOR UPDATE` on PostgreSQL), so concurrent creates for one organization take turns and cannot
    /// overshoot the limit together. On SQLite the single writer serialises them already.
    pub async fn create(
        &self,
        new: NewWebhook,
        max_per_organization: u64,
    ) -> Result<CreateWebhookOutcome, StoreError> {
        let txn = self.write.begin().await?;
        if organization::Entity::find_by_id(new.organization_id)
            .lock_exclusive()
            .one(&txn)
            .await?
            .is_none()
        {
            return Err(StoreError::MissingReference("organization"));
        }
        let existing = webhook::Entity::find()
            .filter(webhook::Column::OrganizationId.eq(new.organization_id))
            .count(&txn)
            .await?;
        if existing >= max_per_organization {
            txn.rollback().await?;
            return Ok(CreateWebhookOutcome::LimitReached(max_per_organization));
        }
        let at = now();
        let model = webhook::ActiveModel {
            id: Set(opensend_core::new_id()),
            organization_id: Set(new.organization_id),
            endpoint: Set(new.endpoint),
            event_types: Set(event_names(&new.event_types)),
            status: Set(WebhookStatus::Enabled.as_str().to_owned()),
            disabled_reason: Set(None),
            secret_sealed: Set(new.secret_sealed),
            previous_secret_sealed: Set(None),
            previous_secret_expires_at: Set(None),
            failing_since: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(&txn)
        .await?;
        maybe_record_in(&txn, self.audit, || {
            AuditEvent::new(
                model.organization_id,
                "webhook.created",
                ("webhook", model.id),
            )
            .with_detail(serde_json::json!({"endpoint": model.endpoint}))
        })
        .await?;
        txn.commit().await?;
        Ok(CreateWebhookOutcome::Created(Box::new(model.try_into()?)))
    }

    pub async fn list(
        &self,
        organization_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<WebhookRecord>, StoreError> {
        let select =
            webhook::Entity::find().filter(webhook::Column::OrganizationId.eq(organization_id));
        paginate::<_, webhook::Model, _>(self.read, select, webhook::Column::Id, page)
            .await?
            .into_records()
    }

    pub async fn get(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<Option<WebhookRecord>, StoreError> {
        webhook::Entity::find_by_id(id)
            .filter(webhook::Column::OrganizationId.eq(organization_id))
            .one(self.read)
            .await?
            .map(WebhookRecord::try_from)
            .transpose()
    }

    /// Applies `changes`; `None` when the organization has no such endpoint. Disabling fails the endpoint's
    /// pending deliveries; enabling clears the reason it was disabled and its failure streak.
    pub async fn update(
        &self,
        organization_id: Uuid,
        id: Uuid,
        changes: WebhookChanges,
    ) -> Result<Option<WebhookRecord>, StoreError> {
        let txn = self.write.begin().await?;
        let Some(existing) = webhook::Entity::find_by_id(id)
            .filter(webhook::Column::OrganizationId.eq(organization_id))
            .one(&txn)
            .await?
        else {
            return Ok(None);
        };
        let was: WebhookStatus = Row::new("webhooks", id).value("status", &existing.status)?;
        let mut model: webhook::ActiveModel = existing.into();
        if let Some(endpoint) = changes.endpoint {
            model.endpoint = Set(endpoint);
        }
        if let Some(types) = changes.event_types {
            model.event_types = Set(event_names(&types));
        }
        let mut disabling = false;
        if let Some(status) = changes.status
            && status != was
        {
            match status {
                WebhookStatus::Enabled => {
                    model.disabled_reason = Set(None);
                    model.failing_since = Set(None);
                }
                WebhookStatus::Disabled => {
                    model.disabled_reason = Set(Some("disabled through the API".to_owned()));
                    disabling = true;
                }
            }
            model.status = Set(status.as_str().to_owned());
        }
        model.updated_at = Set(now());
        let updated = model.update(&txn).await?;
        if disabling {
            fail_pending(&txn, id, "the endpoint is disabled").await?;
        }
        maybe_record_in(&txn, self.audit, || {
            AuditEvent::new(organization_id, "webhook.updated", ("webhook", id)).with_detail(
                serde_json::json!({"endpoint": updated.endpoint, "status": updated.status}),
            )
        })
        .await?;
        txn.commit().await?;
        Ok(Some(updated.try_into()?))
    }

    /// Deletes the endpoint with its deliveries and attempts; `false` when there is no such endpoint.
    pub async fn delete(&self, organization_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let txn = self.write.begin().await?;
        let deliveries: Vec<Uuid> = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::OrganizationId.eq(organization_id))
            .filter(webhook_delivery::Column::WebhookId.eq(id))
            .all(&txn)
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect();
        // SQLite enforces foreign keys only when asked, so the cascade is spelled out.
        for chunk in deliveries.chunks(500) {
            webhook_attempt::Entity::delete_many()
                .filter(webhook_attempt::Column::DeliveryId.is_in(chunk.to_vec()))
                .exec(&txn)
                .await?;
        }
        webhook_delivery::Entity::delete_many()
            .filter(webhook_delivery::Column::OrganizationId.eq(organization_id))
            .filter(webhook_delivery::Column::WebhookId.eq(id))
            .exec(&txn)
            .await?;
        let deleted = webhook::Entity::delete_many()
            .filter(webhook::Column::OrganizationId.eq(organization_id))
            .filter(webhook::Column::Id.eq(id))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if deleted {
            maybe_record_in(&txn, self.audit, || {
                AuditEvent::new(organization_id, "webhook.deleted", ("webhook", id))
            })
            .await?;
        }
        txn.commit().await?;
        Ok(deleted)
    }

    /// Installs a new secret; the current one keeps signing beside it until `previous_until`.
    pub async fn rotate_secret(
        &self,
        organization_id: Uuid,
        id: Uuid,
        new_sealed: Vec<u8>,
        previous_until: DateTime<Utc>,
    ) -> Result<Option<WebhookRecord>, StoreError> {
        let txn = self.write.begin().await?;
        let Some(existing) = webhook::Entity::find_by_id(id)
            .filter(webhook::Column::OrganizationId.eq(organization_id))
            .one(&txn)
            .await?
        else {
            return Ok(None);
        };
        let current = existing.secret_sealed.clone();
        let mut model: webhook::ActiveModel = existing.into();
        model.previous_secret_sealed = Set(Some(current));
        model.previous_secret_expires_at = Set(Some(previous_until));
        model.secret_sealed = Set(new_sealed);
        model.updated_at = Set(now());
        let updated = model.update(&txn).await?;
        maybe_record_in(&txn, self.audit, || {
            AuditEvent::new(organization_id, "webhook.secret_rotated", ("webhook", id))
        })
        .await?;
        txn.commit().await?;
        Ok(Some(updated.try_into()?))
    }

    /// The endpoint's deliveries, newest first.
    pub async fn deliveries(
        &self,
        organization_id: Uuid,
        webhook_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<DeliveryRecord>, StoreError> {
        let select = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::OrganizationId.eq(organization_id))
            .filter(webhook_delivery::Column::WebhookId.eq(webhook_id));
        paginate::<_, webhook_delivery::Model, _>(
            self.read,
            select,
            webhook_delivery::Column::Id,
            page,
        )
        .await?
        .into_records()
    }

    pub async fn delivery(
        &self,
        organization_id: Uuid,
        webhook_id: Uuid,
        delivery_id: Uuid,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        webhook_delivery::Entity::find_by_id(delivery_id)
            .filter(webhook_delivery::Column::OrganizationId.eq(organization_id))
            .filter(webhook_delivery::Column::WebhookId.eq(webhook_id))
            .one(self.read)
            .await?
            .map(DeliveryRecord::try_from)
            .transpose()
    }

    /// The attempts of some deliveries, oldest first.
    pub async fn attempts(
        &self,
        organization_id: Uuid,
        delivery_ids: Vec<Uuid>,
    ) -> Result<Vec<webhook_attempt::Model>, StoreError> {
        if delivery_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(webhook_attempt::Entity::find()
            .filter(webhook_attempt::Column::OrganizationId.eq(organization_id))
            .filter(webhook_attempt::Column::DeliveryId.is_in(delivery_ids))
            .order_by_asc(webhook_attempt::Column::Id)
            .all(self.read)
            .await?)
    }

    pub async fn message(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<Option<WebhookMessageRecord>, StoreError> {
        webhook_message::Entity::find_by_id(id)
            .filter(webhook_message::Column::OrganizationId.eq(organization_id))
            .one(self.read)
            .await?
            .map(WebhookMessageRecord::try_from)
            .transpose()
    }

    /// The event type of each of `message_ids` (their payloads are not read).
    pub async fn message_types(
        &self,
        organization_id: Uuid,
        message_ids: Vec<Uuid>,
    ) -> Result<Vec<(Uuid, EventType)>, StoreError> {
        if message_ids.is_empty() {
            return Ok(Vec::new());
        }
        let types: Vec<(Uuid, String)> = webhook_message::Entity::find()
            .select_only()
            .column(webhook_message::Column::Id)
            .column(webhook_message::Column::EventType)
            .filter(webhook_message::Column::OrganizationId.eq(organization_id))
            .filter(webhook_message::Column::Id.is_in(message_ids))
            .into_tuple()
            .all(self.read)
            .await?;
        types
            .into_iter()
            .map(|(id, name)| {
                let event = Row::new("webhook_messages", id).value("event_type", &name)?;
                Ok((id, event))
            })
            .collect()
    }

    /// Queues the message of a delivery again, as a new delivery due now: same message, so the same
    /// `webhook-id`, which lets receivers recognise it.
    pub async fn replay(
        &self,
        organization_id: Uuid,
        webhook_id: Uuid,
        delivery_id: Uuid,
    ) -> Result<ReplayOutcome, StoreError> {
        let txn = self.write.begin().await?;
        let Some(endpoint) = webhook::Entity::find_by_id(webhook_id)
            .filter(webhook::Column::OrganizationId.eq(organization_id))
            .one(&txn)
            .await?
        else {
            return Ok(ReplayOutcome::NotFound);
        };
        let Some(original) = webhook_delivery::Entity::find_by_id(delivery_id)
            .filter(webhook_delivery::Column::OrganizationId.eq(organization_id))
            .filter(webhook_delivery::Column::WebhookId.eq(webhook_id))
            .one(&txn)
            .await?
        else {
            return Ok(ReplayOutcome::NotFound);
        };
        if endpoint.status != WebhookStatus::Enabled.as_str() {
            return Ok(ReplayOutcome::EndpointDisabled);
        }
        let at = now();
        let id = opensend_core::new_id();
        webhook_delivery::ActiveModel {
            id: Set(id),
            organization_id: Set(organization_id),
            webhook_id: Set(webhook_id),
            message_id: Set(original.message_id),
            status: Set(DeliveryStatus::Pending.as_str().to_owned()),
            attempts: Set(0),
            next_attempt_at: Set(Some(at)),
            lease_owner: Set(None),
            lease_expires_at: Set(None),
            last_status_code: Set(None),
            last_error: Set(None),
            last_attempt_at: Set(None),
            replay_of: Set(Some(original.id)),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(&txn)
        .await?;
        maybe_record_in(&txn, self.audit, || {
            AuditEvent::new(
                organization_id,
                "webhook.delivery_replayed",
                ("webhook", webhook_id),
            )
            .with_detail(serde_json::json!({"delivery_id": original.id}))
        })
        .await?;
        txn.commit().await?;
        Ok(ReplayOutcome::Created(id))
    }

    /// The organization's event log, newest first.
    pub async fn organization_events(
        &self,
        organization_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<OrganizationEventRecord>, StoreError> {
        let select = organization_event::Entity::find()
            .filter(organization_event::Column::OrganizationId.eq(organization_id));
        paginate::<_, organization_event::Model, _>(
            self.read,
            select,
            organization_event::Column::Id,
            page,
        )
        .await?
        .into_records()
    }

    /// One endpoint's sealed secret, if any endpoint exists (the start-up key check).
    pub async fn first_sealed(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(webhook::Entity::find()
            .order_by_asc(webhook::Column::Id)
            .one(self.read)
            .await?
            .map(|w| w.secret_sealed))
    }

    /// Every endpoint's sealed secrets, for re-sealing under a new encryption key.
    pub async fn all_sealed(&self) -> Result<Vec<SealedWebhookSecrets>, StoreError> {
        Ok(webhook::Entity::find()
            .order_by_asc(webhook::Column::Id)
            .into_partial_model()
            .all(self.read)
            .await?)
    }

    /// Replaces an endpoint's sealed secrets with re-sealed copies of the same secrets, only if they are still
    /// the ones that were read (`seen`): a rotation that happened meanwhile is never undone. `false` when the
    /// row changed; read it again and retry.
    pub async fn reseal(
        &self,
        id: Uuid,
        seen: (&[u8], Option<&[u8]>),
        secret_sealed: Vec<u8>,
        previous_secret_sealed: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        let mut update = webhook::Entity::update_many()
            .col_expr(webhook::Column::SecretSealed, Expr::value(secret_sealed))
            .col_expr(
                webhook::Column::PreviousSecretSealed,
                Expr::value(previous_secret_sealed),
            )
            .filter(webhook::Column::Id.eq(id))
            .filter(webhook::Column::SecretSealed.eq(seen.0.to_vec()));
        update = match seen.1 {
            Some(previous) => {
                update.filter(webhook::Column::PreviousSecretSealed.eq(previous.to_vec()))
            }
            None => update.filter(webhook::Column::PreviousSecretSealed.is_null()),
        };
        Ok(update.exec(self.write).await?.rows_affected == 1)
    }

    /// One endpoint's sealed secrets, whatever its organization (re-sealing reads a row again after a
    /// concurrent rotation).
    pub async fn get_any(&self, id: Uuid) -> Result<Option<SealedWebhookSecrets>, StoreError> {
        Ok(webhook::Entity::find_by_id(id)
            .into_partial_model()
            .one(self.write)
            .await?)
    }
}
