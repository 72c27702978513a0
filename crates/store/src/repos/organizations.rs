use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, Set};
use uuid::Uuid;

use crate::StoreError;
use crate::entities::organization;
use crate::repos::now;

pub struct Organizations<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
}

impl<'a> Organizations<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self { read, write }
    }

    pub async fn create(&self, name: &str) -> Result<organization::Model, StoreError> {
        let at = now();
        let model = organization::ActiveModel {
            id: Set(opensend_core::new_id()),
            name: Set(name.to_owned()),
            created_at: Set(at),
            updated_at: Set(at),
        };
        Ok(model.insert(self.write).await?)
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<organization::Model>, StoreError> {
        Ok(organization::Entity::find_by_id(id).one(self.read).await?)
    }
}
