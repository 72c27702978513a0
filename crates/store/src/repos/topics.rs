//! Topics and contacts' subscriptions to them. A contact that never chose has the topic's default, which
//! never changes after creation.

use std::collections::HashMap;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use uuid::Uuid;

use crate::entities::{contact_topic, topic};
use crate::pagination::paginate;
use crate::records::{ContactTopicRecord, Subscription, TopicRecord, Visibility};
use crate::repos::contacts::{self, ContactKey};
use crate::repos::now;
use crate::{Page, PageRequest, StoreError};

/// A topic to create, already checked.
#[derive(Clone, Debug)]
pub struct NewTopic {
    pub name: String,
    pub description: Option<String>,
    pub default_subscription: Subscription,
    pub visibility: Visibility,
}

/// Changes to a topic; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct TopicChanges {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub visibility: Option<Visibility>,
}

pub struct Topics<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
}

impl<'a> Topics<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self { read, write }
    }

    pub async fn create(
        &self,
        organization_id: Uuid,
        new: &NewTopic,
    ) -> Result<TopicRecord, StoreError> {
        topic::ActiveModel {
            id: Set(opensend_core::new_id()),
            organization_id: Set(organization_id),
            name: Set(new.name.clone()),
            description: Set(new.description.clone()),
            default_subscription: Set(new.default_subscription.as_str().to_owned()),
            visibility: Set(new.visibility.as_str().to_owned()),
            created_at: Set(now()),
        }
        .insert(self.write)
        .await?
        .try_into()
    }

    pub async fn get(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<Option<TopicRecord>, StoreError> {
        topic::Entity::find_by_id(id)
            .filter(topic::Column::OrganizationId.eq(organization_id))
            .one(self.read)
            .await?
            .map(TopicRecord::try_from)
            .transpose()
    }

    pub async fn update(
        &self,
        organization_id: Uuid,
        id: Uuid,
        changes: &TopicChanges,
    ) -> Result<bool, StoreError> {
        let mut update = topic::Entity::update_many()
            .col_expr(topic::Column::Id, Expr::col(topic::Column::Id))
            .filter(topic::Column::Id.eq(id))
            .filter(topic::Column::OrganizationId.eq(organization_id));
        if let Some(name) = &changes.name {
            update = update.col_expr(topic::Column::Name, Expr::value(name.clone()));
        }
        if let Some(description) = &changes.description {
            update = update.col_expr(topic::Column::Description, Expr::value(description.clone()));
        }
        if let Some(visibility) = changes.visibility {
            update = update.col_expr(
                topic::Column::Visibility,
                Expr::value(visibility.as_str().to_owned()),
            );
        }
        Ok(update.exec(self.write).await?.rows_affected == 1)
    }

    /// Deletes the topic and every subscription to it.
    pub async fn delete(&self, organization_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let result = topic::Entity::delete_many()
            .filter(topic::Column::Id.eq(id))
            .filter(topic::Column::OrganizationId.eq(organization_id))
            .exec(self.write)
            .await?;
        Ok(result.rows_affected == 1)
    }

    pub async fn list(
        &self,
        organization_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<TopicRecord>, StoreError> {
        let select =
            topic::Entity::find().filter(topic::Column::OrganizationId.eq(organization_id));
        let found: Page<topic::Model> =
            paginate(self.read, select, topic::Column::Id, page).await?;
        found.into_records()
    }

    /// Every topic of the organization (a page of them) with the contact's subscription; `None` when there
    /// is no such contact.
    pub async fn of_contact(
        &self,
        organization_id: Uuid,
        contact: &ContactKey,
        page: PageRequest,
    ) -> Result<Option<Page<ContactTopicRecord>>, StoreError> {
        let Some(contact_id) = contacts::find_id(self.read, organization_id, contact).await? else {
            return Ok(None);
        };
        let page = self.list(organization_id, page).await?;
        let chosen: HashMap<Uuid, String> = contact_topic::Entity::find()
            .filter(contact_topic::Column::ContactId.eq(contact_id))
            .filter(contact_topic::Column::TopicId.is_in(page.items.iter().map(|t| t.id)))
            .all(self.read)
            .await?
            .into_iter()
            .map(|row| (row.topic_id, row.subscription))
            .collect();
        let mut items = Vec::with_capacity(page.items.len());
        for topic in page.items {
            let subscription = match chosen.get(&topic.id) {
                None => topic.default_subscription,
                Some(text) => text.parse().map_err(|()| {
                    StoreError::Corrupt(format!(
                        "contact_topics of contact {contact_id}: `subscription` holds `{text}`"
                    ))
                })?,
            };
            items.push(ContactTopicRecord {
                topic,
                subscription,
            });
        }
        Ok(Some(Page {
            items,
            has_more: page.has_more,
        }))
    }

    /// Sets the contact's subscriptions, in one transaction; `None` when there is no such contact,
    /// [`StoreError::MissingReference`] when a topic is not the organization's (then nothing changes).
    pub async fn subscribe(
        &self,
        organization_id: Uuid,
        contact: &ContactKey,
        topics: &[(Uuid, Subscription)],
    ) -> Result<Option<Uuid>, StoreError> {
        let txn = self.write.begin().await?;
        let Some(contact_id) = contacts::find_id(&txn, organization_id, contact).await? else {
            return Ok(None);
        };
        let ids: Vec<Uuid> = topics.iter().map(|(id, _)| *id).collect();
        contacts::check_topics(&txn, organization_id, &ids).await?;
        contacts::set_topics(&txn, organization_id, contact_id, topics, now()).await?;
        txn.commit().await?;
        Ok(Some(contact_id))
    }
}
