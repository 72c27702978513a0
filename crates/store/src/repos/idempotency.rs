//! `Idempotency-Key` records: the first request with a key does the work and its response is stored with
//! it (in the same transaction as the work, see `Emails::accept`); later requests with the same key and the
//! same body get that response again for 24 hours.
//!
//! A claim without a response yet is *in flight*. A process killed while holding one (between the claim and
//! the commit of its work) never answers it, so an in-flight claim older than the caller's
//! `abandoned_after` may be taken over by the next request with the key. Taking over is safe even if the
//! first request was only slow: the response is recorded only while none is (`accept_writer::complete_key`),
//! in the transaction of the work, so whichever of the two commits first is the one answer and the other
//! writes nothing.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set, SqlErr,
};
use uuid::Uuid;

use crate::StoreError;
use crate::entities::idempotency_key;
use crate::repos::now;

/// How long a key is remembered.
pub const KEY_LIFETIME: TimeDelta = TimeDelta::hours(24);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This request goes ahead; record its response under this id.
    Proceed(Uuid),
    /// Same key, same request, already answered: answer the same.
    Replay { status: u16, body: String },
    /// Same key, different request.
    Mismatch,
    /// Same key, the first request is still being processed.
    InFlight,
}

pub struct Idempotency<'a> {
    write: &'a DatabaseConnection,
}

impl<'a> Idempotency<'a> {
    pub(crate) fn new(write: &'a DatabaseConnection) -> Self {
        Self { write }
    }

    /// Claims `key` for a request whose fingerprint is `request_hash`. Safe under races: the unique index on
    /// (organization, key) decides which of two simultaneous requests proceeds. An unanswered claim older
    /// than `abandoned_after` is taken over (see the module's documentation).
    pub async fn claim(
        &self,
        organization_id: Uuid,
        key: &str,
        request_hash: [u8; 32],
        abandoned_after: TimeDelta,
    ) -> Result<Claim, StoreError> {
        // Two rounds at most: the second follows the removal of an expired record.
        for _ in 0..2 {
            let at = now();
            let record = idempotency_key::ActiveModel {
                id: Set(opensend_core::new_id()),
                organization_id: Set(organization_id),
                key: Set(key.to_owned()),
                request_hash: Set(request_hash.to_vec()),
                response_status: Set(None),
                response_body: Set(None),
                created_at: Set(at),
                expires_at: Set(at + KEY_LIFETIME),
            };
            match record.insert(self.write).await {
                Ok(inserted) => return Ok(Claim::Proceed(inserted.id)),
                Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {}
                Err(e) => return Err(e.into()),
            }
            let Some(existing) = idempotency_key::Entity::find()
                .filter(idempotency_key::Column::OrganizationId.eq(organization_id))
                .filter(idempotency_key::Column::Key.eq(key))
                .one(self.write)
                .await?
            else {
                continue;
            };
            if existing.expires_at <= at {
                idempotency_key::Entity::delete_by_id(existing.id)
                    .exec(self.write)
                    .await?;
                continue;
            }
            if existing.request_hash != request_hash {
                return Ok(Claim::Mismatch);
            }
            if let (Some(status), Some(body)) = (existing.response_status, existing.response_body) {
                return Ok(Claim::Replay {
                    status: u16::try_from(status).unwrap_or(200),
                    body,
                });
            }
            if existing.created_at <= at - abandoned_after
                && self.take_over(existing.id, existing.created_at, at).await?
            {
                return Ok(Claim::Proceed(existing.id));
            }
            return Ok(Claim::InFlight);
        }
        Ok(Claim::InFlight)
    }

    /// Forgets an unfinished claim, so the client may retry with the same key (after a 4xx or a failure).
    pub async fn release(&self, id: Uuid) -> Result<(), StoreError> {
        idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::Id.eq(id))
            .filter(idempotency_key::Column::ResponseStatus.is_null())
            .exec(self.write)
            .await?;
        Ok(())
    }

    /// Deletes expired records; returns how many.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let result = idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::ExpiresAt.lte(now()))
            .exec(self.write)
            .await?;
        Ok(result.rows_affected)
    }

    async fn take_over(
        &self,
        id: Uuid,
        seen_created_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let updated = idempotency_key::Entity::update_many()
            .col_expr(idempotency_key::Column::CreatedAt, Expr::value(at))
            .filter(idempotency_key::Column::Id.eq(id))
            .filter(idempotency_key::Column::CreatedAt.eq(seen_created_at))
            .filter(idempotency_key::Column::ResponseStatus.is_null())
            .exec(self.write)
            .await?;
        Ok(updated.rows_affected == 1)
    }
}
