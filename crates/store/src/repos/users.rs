//! Dashboard users and their sessions.

use chrono::{DateTime, Utc};
use opensend_core::TokenHash;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set, SqlErr,
    TransactionTrait,
};
use uuid::Uuid;

use crate::StoreError;
use crate::entities::{session, user};
use crate::repos::audit_log::{self, AuditContext, AuditEvent};
use crate::repos::members::insert_membership;
use crate::repos::now;

/// A user to create: the address as given and lower-cased, and the argon2id hash of the password.
pub struct NewUser {
    pub email: String,
    pub email_key: String,
    pub password_hash: String,
}

/// A session to open: the token's hash only.
pub struct NewSession {
    pub user_id: Uuid,
    pub token_hash: TokenHash,
    pub organization_id: Option<Uuid>,
    pub client_ip: Option<String>,
    pub expires_at: DateTime<Utc>,
}

pub struct Users<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
}

impl<'a> Users<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self { read, write }
    }

    /// Creates a user, and with `membership` makes them a member of that organization with that role, in one
    /// transaction. [`StoreError::Duplicate`] when the address already has an account;
    /// [`StoreError::MissingReference`] when the organization does not exist.
    pub async fn create(
        &self,
        new: NewUser,
        membership: Option<(Uuid, opensend_core::Role)>,
        audit: &AuditContext,
    ) -> Result<user::Model, StoreError> {
        let txn = self.write.begin().await?;
        let user = insert_user(&txn, new).await?;
        if let Some((organization_id, role)) = membership {
            insert_membership(&txn, organization_id, user.id, role, audit).await?;
        }
        txn.commit().await.map_err(duplicate)?;
        Ok(user)
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<user::Model>, StoreError> {
        Ok(user::Entity::find_by_id(id).one(self.read).await?)
    }

    pub async fn find_by_email_key(&self, key: &str) -> Result<Option<user::Model>, StoreError> {
        Ok(user::Entity::find()
            .filter(user::Column::EmailKey.eq(key))
            .one(self.read)
            .await?)
    }

    pub async fn open_session(&self, new: NewSession) -> Result<session::Model, StoreError> {
        let at = now();
        Ok(session::ActiveModel {
            id: Set(opensend_core::new_id()),
            token_hash: Set(new.token_hash.as_bytes().to_vec()),
            user_id: Set(new.user_id),
            organization_id: Set(new.organization_id),
            client_ip: Set(new.client_ip),
            created_at: Set(at),
            last_seen_at: Set(at),
            expires_at: Set(new.expires_at),
        }
        .insert(self.write)
        .await?)
    }

    /// The live session whose token hashes to `hash`, with its user.
    pub async fn session_by_hash(
        &self,
        hash: &TokenHash,
        at: DateTime<Utc>,
    ) -> Result<Option<(session::Model, user::Model)>, StoreError> {
        let Some(session) = session::Entity::find()
            .filter(session::Column::TokenHash.eq(hash.as_bytes().to_vec()))
            .filter(session::Column::ExpiresAt.gt(at))
            .one(self.read)
            .await?
        else {
            return Ok(None);
        };
        Ok(user::Entity::find_by_id(session.user_id)
            .one(self.read)
            .await?
            .map(|user| (session, user)))
    }

    /// Pushes a session's idle expiry forward.
    pub async fn touch_session(
        &self,
        id: Uuid,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        session::Entity::update_many()
            .col_expr(session::Column::LastSeenAt, Expr::value(now()))
            .col_expr(session::Column::ExpiresAt, Expr::value(expires_at))
            .filter(session::Column::Id.eq(id))
            .exec(self.write)
            .await?;
        Ok(())
    }

    /// The organization a session works in.
    pub async fn switch_organization(
        &self,
        session_id: Uuid,
        organization_id: Option<Uuid>,
    ) -> Result<(), StoreError> {
        session::Entity::update_many()
            .col_expr(
                session::Column::OrganizationId,
                Expr::value(organization_id),
            )
            .filter(session::Column::Id.eq(session_id))
            .exec(self.write)
            .await?;
        Ok(())
    }

    /// Signs one session out.
    pub async fn close_session(
        &self,
        id: Uuid,
        audit: &AuditContext,
        user_id: Uuid,
    ) -> Result<(), StoreError> {
        let txn = self.write.begin().await?;
        session::Entity::delete_by_id(id).exec(&txn).await?;
        audit_log::record_in(
            &txn,
            audit,
            AuditEvent {
                organization_id: None,
                action: "session.signed_out",
                target_type: Some("user"),
                target_id: Some(user_id),
                detail: serde_json::json!({}),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Signs every session of the user out ("sign out everywhere"); returns how many there were.
    pub async fn close_all_sessions(
        &self,
        user_id: Uuid,
        audit: &AuditContext,
    ) -> Result<u64, StoreError> {
        let txn = self.write.begin().await?;
        let closed = close_sessions_in(
            &txn,
            user_id,
            audit,
            "session.signed_out_everywhere",
            "sessions",
        )
        .await?;
        txn.commit().await?;
        Ok(closed)
    }

    /// Replaces the user's password hash and signs every session of theirs out, in one transaction: whoever
    /// held the old password loses their sessions with it. `false` when there is no such user.
    pub async fn set_password(
        &self,
        user_id: Uuid,
        password_hash: String,
        audit: &AuditContext,
    ) -> Result<bool, StoreError> {
        let txn = self.write.begin().await?;
        let changed = user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
            .col_expr(user::Column::UpdatedAt, Expr::value(now()))
            .filter(user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if !changed {
            return Ok(false);
        }
        close_sessions_in(&txn, user_id, audit, "user.password_set", "sessions_closed").await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Deletes sessions that expired before `before` (the hourly cleanup).
    pub async fn purge_expired_sessions(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(session::Entity::delete_many()
            .filter(session::Column::ExpiresAt.lt(before))
            .exec(self.write)
            .await?
            .rows_affected)
    }
}

pub(crate) async fn insert_user<C: sea_orm::ConnectionTrait>(
    db: &C,
    new: NewUser,
) -> Result<user::Model, StoreError> {
    let exists = user::Entity::find()
        .filter(user::Column::EmailKey.eq(new.email_key.as_str()))
        .one(db)
        .await?
        .is_some();
    if exists {
        return Err(StoreError::Duplicate("user"));
    }
    let at = now();
    user::ActiveModel {
        id: Set(opensend_core::new_id()),
        email: Set(new.email),
        email_key: Set(new.email_key),
        password_hash: Set(new.password_hash),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(db)
    .await
    .map_err(duplicate)
}

/// A unique-index violation (two sign-ups for one address at once) as [`StoreError::Duplicate`].
fn duplicate(e: sea_orm::DbErr) -> StoreError {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::Duplicate("user"),
        _ => StoreError::Database(e),
    }
}

/// Deletes every session of `user_id` inside `txn` and records `action` in the audit log, with the number of
/// sessions closed under `count_field`; how many were closed.
async fn close_sessions_in<C: sea_orm::ConnectionTrait>(
    txn: &C,
    user_id: Uuid,
    audit: &AuditContext,
    action: &'static str,
    count_field: &str,
) -> Result<u64, StoreError> {
    let closed = session::Entity::delete_many()
        .filter(session::Column::UserId.eq(user_id))
        .exec(txn)
        .await?
        .rows_affected;
    let mut detail = serde_json::Map::new();
    detail.insert(count_field.to_owned(), closed.into());
    audit_log::record_in(
        txn,
        audit,
        AuditEvent {
            organization_id: None,
            action,
            target_type: Some("user"),
            target_id: Some(user_id),
            detail: detail.into(),
        },
    )
    .await?;
    Ok(closed)
}
