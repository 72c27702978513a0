//! Who belongs to which organization, with which role, and the organizations people create and delete from
//! the dashboard.
//!
//! An organization always keeps at least one owner: demoting or removing the last one is refused
//! ([`MemberChange::LastOwner`]), checked in the transaction of the change.

use opensend_core::Role;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use crate::StoreError;
use crate::entities::{membership, organization, user};
use crate::records::columns::Row;
use crate::repos::audit_log::{self, AuditContext, AuditEvent};
use crate::repos::now;

/// A member as the settings page lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRecord {
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
    pub joined_at: chrono::DateTime<chrono::Utc>,
}

/// What became of a change to a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberChange {
    Done,
    /// The user is not a member of this organization.
    NotFound,
    /// The change would leave the organization without an owner.
    LastOwner,
}

pub struct Members<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
}

fn role_of(row: &membership::Model) -> Result<Role, StoreError> {
    Row::new("memberships", row.id).value("role", &row.role)
}

impl<'a> Members<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self { read, write }
    }

    /// Creates an organization with `owner` as its owner, in one transaction.
    pub async fn create_organization(
        &self,
        name: &str,
        owner: Uuid,
        audit: &AuditContext,
    ) -> Result<organization::Model, StoreError> {
        let txn = self.write.begin().await?;
        let organization = crate::repos::organizations::insert(&txn, name).await?;
        audit_log::record_in(
            &txn,
            audit,
            AuditEvent::new(
                organization.id,
                "organization.created",
                ("organization", organization.id),
            )
            .with_detail(json!({ "name": name })),
        )
        .await?;
        insert_membership(&txn, organization.id, owner, Role::Owner, audit).await?;
        txn.commit().await?;
        Ok(organization)
    }

    /// Deletes an organization and everything it owns (every tenant table cascades from it).
    pub async fn delete_organization(
        &self,
        organization_id: Uuid,
        audit: &AuditContext,
    ) -> Result<bool, StoreError> {
        let txn = self.write.begin().await?;
        let Some(organization) = organization::Entity::find_by_id(organization_id)
            .one(&txn)
            .await?
        else {
            return Ok(false);
        };
        organization::Entity::delete_by_id(organization_id)
            .exec(&txn)
            .await?;
        // Kept outside the organization, whose own entries go with it.
        audit_log::record_in(
            &txn,
            audit,
            AuditEvent {
                organization_id: None,
                action: "organization.deleted",
                target_type: Some("organization"),
                target_id: Some(organization_id),
                detail: json!({ "name": organization.name }),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(true)
    }

    /// The user's organizations and their role in each, by name.
    pub async fn organizations_of(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<(organization::Model, Role)>, StoreError> {
        let rows = membership::Entity::find()
            .filter(membership::Column::UserId.eq(user_id))
            .all(self.read)
            .await?;
        let ids: Vec<Uuid> = rows.iter().map(|m| m.organization_id).collect();
        let organizations = organization::Entity::find()
            .filter(organization::Column::Id.is_in(ids))
            .order_by_asc(organization::Column::Name)
            .order_by_asc(organization::Column::Id)
            .all(self.read)
            .await?;
        organizations
            .into_iter()
            .filter_map(|o| {
                let row = rows.iter().find(|m| m.organization_id == o.id)?;
                Some(role_of(row).map(|role| (o, role)))
            })
            .collect()
    }

    /// The user's role in the organization; `None` when they are not a member (or it does not exist).
    pub async fn role(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<Role>, StoreError> {
        membership::Entity::find()
            .filter(membership::Column::OrganizationId.eq(organization_id))
            .filter(membership::Column::UserId.eq(user_id))
            .one(self.read)
            .await?
            .as_ref()
            .map(role_of)
            .transpose()
    }

    /// The organization's members, oldest first.
    pub async fn list(&self, organization_id: Uuid) -> Result<Vec<MemberRecord>, StoreError> {
        let rows = membership::Entity::find()
            .filter(membership::Column::OrganizationId.eq(organization_id))
            .order_by_asc(membership::Column::Id)
            .all(self.read)
            .await?;
        let users = user::Entity::find()
            .filter(user::Column::Id.is_in(rows.iter().map(|m| m.user_id).collect::<Vec<_>>()))
            .all(self.read)
            .await?;
        rows.iter()
            .filter_map(|m| {
                let user = users.iter().find(|u| u.id == m.user_id)?;
                Some(role_of(m).map(|role| MemberRecord {
                    user_id: m.user_id,
                    email: user.email.clone(),
                    role,
                    joined_at: m.created_at,
                }))
            })
            .collect()
    }

    /// Makes an existing user a member (the operator's `admin create-user --org` for an existing address).
    /// `false` when they already were one.
    pub async fn add(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        role: Role,
        audit: &AuditContext,
    ) -> Result<bool, StoreError> {
        let txn = self.write.begin().await?;
        let added = insert_membership(&txn, organization_id, user_id, role, audit).await?;
        txn.commit().await?;
        Ok(added)
    }

    /// Gives a member another role.
    pub async fn set_role(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        role: Role,
        audit: &AuditContext,
    ) -> Result<MemberChange, StoreError> {
        let txn = self.write.begin().await?;
        let Some(existing) = locked_membership(&txn, organization_id, user_id).await? else {
            return Ok(MemberChange::NotFound);
        };
        let was = role_of(&existing)?;
        if was == Role::Owner && role != Role::Owner && owners(&txn, organization_id).await? <= 1 {
            return Ok(MemberChange::LastOwner);
        }
        membership::Entity::update_many()
            .col_expr(membership::Column::Role, Expr::value(role.as_str()))
            .filter(membership::Column::Id.eq(existing.id))
            .exec(&txn)
            .await?;
        audit_log::record_in(
            &txn,
            audit,
            AuditEvent::new(organization_id, "member.role_changed", ("user", user_id))
                .with_detail(json!({ "from": was.as_str(), "to": role.as_str() })),
        )
        .await?;
        txn.commit().await?;
        Ok(MemberChange::Done)
    }

    /// Removes a member (or lets one leave).
    pub async fn remove(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        audit: &AuditContext,
    ) -> Result<MemberChange, StoreError> {
        let txn = self.write.begin().await?;
        let Some(existing) = locked_membership(&txn, organization_id, user_id).await? else {
            return Ok(MemberChange::NotFound);
        };
        let was = role_of(&existing)?;
        if was == Role::Owner && owners(&txn, organization_id).await? <= 1 {
            return Ok(MemberChange::LastOwner);
        }
        membership::Entity::delete_by_id(existing.id)
            .exec(&txn)
            .await?;
        audit_log::record_in(
            &txn,
            audit,
            AuditEvent::new(organization_id, "member.removed", ("user", user_id))
                .with_detail(json!({ "role": was.as_str() })),
        )
        .await?;
        txn.commit().await?;
        Ok(MemberChange::Done)
    }
}

/// The membership row, locked for the transaction on PostgreSQL (SQLite's single writer serialises anyway).
async fn locked_membership<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    user_id: Uuid,
) -> Result<Option<membership::Model>, StoreError> {
    // Lock the organization's row first so two changes to its owners take turns.
    organization::Entity::find_by_id(organization_id)
        .lock_exclusive()
        .one(db)
        .await?;
    Ok(membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(organization_id))
        .filter(membership::Column::UserId.eq(user_id))
        .one(db)
        .await?)
}

async fn owners<C: ConnectionTrait>(db: &C, organization_id: Uuid) -> Result<u64, StoreError> {
    Ok(membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(organization_id))
        .filter(membership::Column::Role.eq(Role::Owner.as_str()))
        .count(db)
        .await?)
}

/// Adds a membership in the caller's transaction (recorded as `member.added`); `false` when the user
/// already is a member. [`StoreError::MissingReference`] when the organization does not exist.
pub(crate) async fn insert_membership<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    user_id: Uuid,
    role: Role,
    audit: &AuditContext,
) -> Result<bool, StoreError> {
    if organization::Entity::find_by_id(organization_id)
        .one(db)
        .await?
        .is_none()
    {
        return Err(StoreError::MissingReference("organization"));
    }
    let exists = membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(organization_id))
        .filter(membership::Column::UserId.eq(user_id))
        .one(db)
        .await?
        .is_some();
    if exists {
        return Ok(false);
    }
    membership::ActiveModel {
        id: Set(opensend_core::new_id()),
        organization_id: Set(organization_id),
        user_id: Set(user_id),
        role: Set(role.as_str().to_owned()),
        created_at: Set(now()),
    }
    .insert(db)
    .await?;
    audit_log::record_in(
        db,
        audit,
        AuditEvent::new(organization_id, "member.added", ("user", user_id))
            .with_detail(json!({ "role": role.as_str() })),
    )
    .await?;
    Ok(true)
}
