//! The organization's suppression list: addresses that are never sent to.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set, SqlErr,
};
use uuid::Uuid;

use crate::StoreError;
use crate::entities::suppression;
use crate::repos::now;

pub struct Suppressions<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
}

impl<'a> Suppressions<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self { read, write }
    }

    /// Adds `address` (already normalised) with `reason`; an address already listed keeps its first
    /// reason. Returns whether it was added now.
    pub async fn add(
        &self,
        organization_id: Uuid,
        address: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let row = suppression::ActiveModel {
            id: Set(opensend_core::new_id()),
            organization_id: Set(organization_id),
            address: Set(address.to_owned()),
            reason: Set(reason.to_owned()),
            created_at: Set(now()),
        };
        match row.insert(self.write).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn contains(&self, organization_id: Uuid, address: &str) -> Result<bool, StoreError> {
        Ok(suppression::Entity::find()
            .filter(suppression::Column::OrganizationId.eq(organization_id))
            .filter(suppression::Column::Address.eq(address))
            .one(self.read)
            .await?
            .is_some())
    }
}
