//! Invitations into an organization: created by its admins, carried by a link in an email, accepted once
//! before they expire. Only the SHA-256 of a link's token is stored.

use chrono::{DateTime, Utc};
use opensend_core::{Role, TokenHash};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use crate::StoreError;
use crate::entities::{invitation, organization, user};
use crate::repos::audit_log::{self, AuditContext, AuditEvent};
use crate::repos::members::insert_membership;
use crate::repos::now;
use crate::repos::users::{NewUser, insert_user};

pub struct NewInvitation {
    pub organization_id: Uuid,
    pub email: String,
    pub email_key: String,
    pub role: Role,
    pub token_hash: TokenHash,
    pub invited_by: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// Who accepts an invitation.
pub enum Invitee {
    /// A signed-in user.
    Existing(Uuid),
    /// Someone who creates their account with the invitation.
    NewUser(NewUser),
}

/// What became of an acceptance.
#[derive(Debug)]
pub enum Acceptance {
    /// They are a member now (or already were), with the invitation's role.
    Accepted {
        organization_id: Uuid,
        user: Box<user::Model>,
    },
    /// No such invitation, or it was revoked.
    NotFound,
    Expired,
    AlreadyUsed,
    /// A new account was asked for an address that has one: sign in first.
    AccountExists,
    /// The signed-in user's address is not the invited one.
    WrongAddress,
}

pub struct Invitations<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
}

impl<'a> Invitations<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self { read, write }
    }

    /// Stores an invitation; earlier invitations of the organization to the same address that are still
    /// open are revoked, so only the newest link works.
    pub async fn create(
        &self,
        new: NewInvitation,
        audit: &AuditContext,
    ) -> Result<invitation::Model, StoreError> {
        let txn = self.write.begin().await?;
        if organization::Entity::find_by_id(new.organization_id)
            .one(&txn)
            .await?
            .is_none()
        {
            return Err(StoreError::MissingReference("organization"));
        }
        let at = now();
        invitation::Entity::update_many()
            .col_expr(invitation::Column::RevokedAt, Expr::value(at))
            .filter(invitation::Column::OrganizationId.eq(new.organization_id))
            .filter(invitation::Column::EmailKey.eq(new.email_key.as_str()))
            .filter(invitation::Column::AcceptedAt.is_null())
            .filter(invitation::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        let model = invitation::ActiveModel {
            id: Set(opensend_core::new_id()),
            organization_id: Set(new.organization_id),
            email: Set(new.email.clone()),
            email_key: Set(new.email_key),
            role: Set(new.role.as_str().to_owned()),
            token_hash: Set(new.token_hash.as_bytes().to_vec()),
            invited_by: Set(Some(new.invited_by)),
            email_id: Set(None),
            created_at: Set(at),
            expires_at: Set(new.expires_at),
            accepted_at: Set(None),
            accepted_by: Set(None),
            revoked_at: Set(None),
        }
        .insert(&txn)
        .await?;
        audit_log::record_in(
            &txn,
            audit,
            AuditEvent::new(
                new.organization_id,
                "invitation.created",
                ("invitation", model.id),
            )
            .with_detail(json!({ "email": new.email, "role": new.role.as_str() })),
        )
        .await?;
        txn.commit().await?;
        Ok(model)
    }

    /// Remembers which email carried the invitation.
    pub async fn set_email(&self, id: Uuid, email_id: Uuid) -> Result<(), StoreError> {
        invitation::Entity::update_many()
            .col_expr(invitation::Column::EmailId, Expr::value(email_id))
            .filter(invitation::Column::Id.eq(id))
            .exec(self.write)
            .await?;
        Ok(())
    }

    /// The organization's invitations that can still be accepted, newest first.
    pub async fn open(
        &self,
        organization_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Vec<invitation::Model>, StoreError> {
        Ok(invitation::Entity::find()
            .filter(invitation::Column::OrganizationId.eq(organization_id))
            .filter(invitation::Column::AcceptedAt.is_null())
            .filter(invitation::Column::RevokedAt.is_null())
            .filter(invitation::Column::ExpiresAt.gt(at))
            .order_by_desc(invitation::Column::Id)
            .all(self.read)
            .await?)
    }

    /// The invitation of a link, with its organization's name, whatever its state.
    pub async fn by_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(invitation::Model, String)>, StoreError> {
        let Some(found) = invitation::Entity::find()
            .filter(invitation::Column::TokenHash.eq(hash.as_bytes().to_vec()))
            .one(self.read)
            .await?
        else {
            return Ok(None);
        };
        let name = organization::Entity::find_by_id(found.organization_id)
            .one(self.read)
            .await?
            .map(|o| o.name);
        Ok(name.map(|name| (found, name)))
    }

    /// Revokes an open invitation of the organization; `false` when there is none.
    pub async fn revoke(
        &self,
        organization_id: Uuid,
        id: Uuid,
        audit: &AuditContext,
    ) -> Result<bool, StoreError> {
        let txn = self.write.begin().await?;
        let revoked = invitation::Entity::update_many()
            .col_expr(invitation::Column::RevokedAt, Expr::value(now()))
            .filter(invitation::Column::OrganizationId.eq(organization_id))
            .filter(invitation::Column::Id.eq(id))
            .filter(invitation::Column::AcceptedAt.is_null())
            .filter(invitation::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if revoked {
            audit_log::record_in(
                &txn,
                audit,
                AuditEvent::new(organization_id, "invitation.revoked", ("invitation", id)),
            )
            .await?;
        }
        txn.commit().await?;
        Ok(revoked)
    }

    /// Accepts the invitation of a link, once: marks it used (a conditional update, so two acceptances at
    /// once cannot both succeed), creates the account when asked, and adds the membership, all in one
    /// transaction. `audit` names the invitee's address; the actor becomes the user.
    pub async fn accept(
        &self,
        hash: &TokenHash,
        invitee: Invitee,
        at: DateTime<Utc>,
        client_ip: Option<String>,
    ) -> Result<Acceptance, StoreError> {
        let txn = self.write.begin().await?;
        let Some(found) = invitation::Entity::find()
            .filter(invitation::Column::TokenHash.eq(hash.as_bytes().to_vec()))
            .one(&txn)
            .await?
        else {
            return Ok(Acceptance::NotFound);
        };
        if found.revoked_at.is_some() {
            return Ok(Acceptance::NotFound);
        }
        if found.accepted_at.is_some() {
            return Ok(Acceptance::AlreadyUsed);
        }
        if found.expires_at <= at {
            return Ok(Acceptance::Expired);
        }
        let user = match invitee {
            Invitee::Existing(id) => {
                let Some(user) = user::Entity::find_by_id(id).one(&txn).await? else {
                    return Ok(Acceptance::NotFound);
                };
                if user.email_key != found.email_key {
                    return Ok(Acceptance::WrongAddress);
                }
                user
            }
            Invitee::NewUser(new) => {
                if new.email_key != found.email_key {
                    return Ok(Acceptance::WrongAddress);
                }
                match insert_user(&txn, new).await {
                    Ok(user) => user,
                    Err(StoreError::Duplicate(_)) => return Ok(Acceptance::AccountExists),
                    Err(e) => return Err(e),
                }
            }
        };
        let taken = invitation::Entity::update_many()
            .col_expr(invitation::Column::AcceptedAt, Expr::value(at))
            .col_expr(invitation::Column::AcceptedBy, Expr::value(user.id))
            .filter(invitation::Column::Id.eq(found.id))
            .filter(invitation::Column::AcceptedAt.is_null())
            .filter(invitation::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if !taken {
            return Ok(Acceptance::AlreadyUsed);
        }
        let role: Role = crate::records::columns::Row::new("invitations", found.id)
            .value("role", &found.role)?;
        let audit = AuditContext {
            actor: audit_log::Actor::User {
                id: user.id,
                email: user.email.clone(),
            },
            client_ip,
        };
        audit_log::record_in(
            &txn,
            &audit,
            AuditEvent::new(
                found.organization_id,
                "invitation.accepted",
                ("invitation", found.id),
            )
            .with_detail(json!({ "email": found.email, "role": role.as_str() })),
        )
        .await?;
        insert_membership(&txn, found.organization_id, user.id, role, &audit).await?;
        txn.commit().await?;
        Ok(Acceptance::Accepted {
            organization_id: found.organization_id,
            user: Box::new(user),
        })
    }
}
