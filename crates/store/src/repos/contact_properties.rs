//! The custom properties an organization defines for its contacts: a key (unique per organization), a
//! type (`string` or `number`) that never changes, and a fallback value.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};
use serde_json::Value;
use uuid::Uuid;

use crate::entities::contact_property;
use crate::pagination::paginate;
use crate::records::{ContactPropertyRecord, PropertyType, read_all};
use crate::repos::now;
use crate::{Page, PageRequest, StoreError};

/// Most properties an organization may define.
pub const MAX_PROPERTIES: u64 = 1_000;

pub struct ContactProperties<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
}

impl<'a> ContactProperties<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self { read, write }
    }

    /// [`StoreError::Duplicate`] when the key is taken.
    pub async fn create(
        &self,
        organization_id: Uuid,
        key: &str,
        value_type: PropertyType,
        fallback_value: Option<&Value>,
    ) -> Result<ContactPropertyRecord, StoreError> {
        let taken = contact_property::Entity::find()
            .filter(contact_property::Column::OrganizationId.eq(organization_id))
            .filter(contact_property::Column::Key.eq(key))
            .count(self.write)
            .await?
            > 0;
        if taken {
            return Err(StoreError::Duplicate("contact property"));
        }
        contact_property::ActiveModel {
            id: Set(opensend_core::new_id()),
            organization_id: Set(organization_id),
            key: Set(key.to_owned()),
            value_type: Set(value_type.as_str().to_owned()),
            fallback_value: Set(fallback_value.map(Value::to_string)),
            created_at: Set(now()),
        }
        .insert(self.write)
        .await?
        .try_into()
    }

    pub async fn count(&self, organization_id: Uuid) -> Result<u64, StoreError> {
        Ok(contact_property::Entity::find()
            .filter(contact_property::Column::OrganizationId.eq(organization_id))
            .count(self.read)
            .await?)
    }

    pub async fn get(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<Option<ContactPropertyRecord>, StoreError> {
        contact_property::Entity::find_by_id(id)
            .filter(contact_property::Column::OrganizationId.eq(organization_id))
            .one(self.read)
            .await?
            .map(ContactPropertyRecord::try_from)
            .transpose()
    }

    /// Every property of the organization, by key.
    pub async fn all(
        &self,
        organization_id: Uuid,
    ) -> Result<Vec<ContactPropertyRecord>, StoreError> {
        read_all(
            contact_property::Entity::find()
                .filter(contact_property::Column::OrganizationId.eq(organization_id))
                .order_by_asc(contact_property::Column::Key)
                .all(self.read)
                .await?,
        )
    }

    /// Sets (or clears) the fallback value; `false` when there is no such property.
    pub async fn set_fallback(
        &self,
        organization_id: Uuid,
        id: Uuid,
        fallback_value: Option<&Value>,
    ) -> Result<bool, StoreError> {
        let result = contact_property::Entity::update_many()
            .col_expr(
                contact_property::Column::FallbackValue,
                Expr::value(fallback_value.map(Value::to_string)),
            )
            .filter(contact_property::Column::Id.eq(id))
            .filter(contact_property::Column::OrganizationId.eq(organization_id))
            .exec(self.write)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Deletes the property and every contact's value of it.
    pub async fn delete(&self, organization_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let result = contact_property::Entity::delete_many()
            .filter(contact_property::Column::Id.eq(id))
            .filter(contact_property::Column::OrganizationId.eq(organization_id))
            .exec(self.write)
            .await?;
        Ok(result.rows_affected == 1)
    }

    pub async fn list(
        &self,
        organization_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<ContactPropertyRecord>, StoreError> {
        let select = contact_property::Entity::find()
            .filter(contact_property::Column::OrganizationId.eq(organization_id));
        let found: Page<contact_property::Model> =
            paginate(self.read, select, contact_property::Column::Id, page).await?;
        found.into_records()
    }
}
