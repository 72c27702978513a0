//! Segments (the API's audiences too) and which contacts belong to them. Membership is explicit: a
//! segment's `filter` is kept and shown as given, never evaluated.

use std::collections::HashMap;

use opensend_core::webhook::EventType;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    Set, TransactionTrait,
};
use serde_json::Value;
use uuid::Uuid;

use crate::entities::{contact_segment, segment};
use crate::pagination::paginate;
use crate::records::{ContactSegmentRecord, SegmentRecord};
use crate::repos::contacts::{self, ContactKey};
use crate::repos::now;
use crate::{Page, PageRequest, StoreError};

/// What adding or removing a membership found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    /// Done (or already so): the contact's id.
    Done(Uuid),
    NoContact,
    NoSegment,
}

pub struct Segments<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
}

impl<'a> Segments<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self { read, write }
    }

    pub async fn create(
        &self,
        organization_id: Uuid,
        name: &str,
        filter: Option<&Value>,
    ) -> Result<SegmentRecord, StoreError> {
        let row = segment::ActiveModel {
            id: Set(opensend_core::new_id()),
            organization_id: Set(organization_id),
            name: Set(name.to_owned()),
            filter: Set(filter.map(Value::to_string)),
            created_at: Set(now()),
        }
        .insert(self.write)
        .await?;
        row.try_into()
    }

    pub async fn get(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<Option<SegmentRecord>, StoreError> {
        segment::Entity::find_by_id(id)
            .filter(segment::Column::OrganizationId.eq(organization_id))
            .one(self.read)
            .await?
            .map(SegmentRecord::try_from)
            .transpose()
    }

    /// Renames the segment; `false` when the organization has none by that id.
    pub async fn rename(
        &self,
        organization_id: Uuid,
        id: Uuid,
        name: &str,
    ) -> Result<bool, StoreError> {
        let result = segment::Entity::update_many()
            .col_expr(segment::Column::Name, Expr::value(name.to_owned()))
            .filter(segment::Column::Id.eq(id))
            .filter(segment::Column::OrganizationId.eq(organization_id))
            .exec(self.write)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Deletes the segment (its memberships go with it; the contacts stay).
    pub async fn delete(&self, organization_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let result = segment::Entity::delete_many()
            .filter(segment::Column::Id.eq(id))
            .filter(segment::Column::OrganizationId.eq(organization_id))
            .exec(self.write)
            .await?;
        Ok(result.rows_affected == 1)
    }

    pub async fn list(
        &self,
        organization_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<SegmentRecord>, StoreError> {
        let select =
            segment::Entity::find().filter(segment::Column::OrganizationId.eq(organization_id));
        let found: Page<segment::Model> =
            paginate(self.read, select, segment::Column::Id, page).await?;
        found.into_records()
    }

    /// Adds the contact to the segment (both the organization's) and announces `contact.updated` when it
    /// was not a member yet, in one transaction.
    pub async fn add_contact(
        &self,
        organization_id: Uuid,
        contact: &ContactKey,
        segment_id: Uuid,
    ) -> Result<Membership, StoreError> {
        let txn = self.write.begin().await?;
        let Some(contact_id) = contacts::find_id(&txn, organization_id, contact).await? else {
            return Ok(Membership::NoContact);
        };
        if !self.exists_in(&txn, organization_id, segment_id).await? {
            return Ok(Membership::NoSegment);
        }
        let added =
            contacts::join_segments(&txn, organization_id, contact_id, &[segment_id], now())
                .await?;
        if added > 0 {
            contacts::announce(&txn, organization_id, EventType::ContactUpdated, contact_id)
                .await?;
        }
        txn.commit().await?;
        Ok(Membership::Done(contact_id))
    }

    /// Removes the contact from the segment; `NoSegment` too when the contact was not a member.
    pub async fn remove_contact(
        &self,
        organization_id: Uuid,
        contact: &ContactKey,
        segment_id: Uuid,
    ) -> Result<Membership, StoreError> {
        let txn = self.write.begin().await?;
        let Some(contact_id) = contacts::find_id(&txn, organization_id, contact).await? else {
            return Ok(Membership::NoContact);
        };
        let removed = contact_segment::Entity::delete_many()
            .filter(contact_segment::Column::ContactId.eq(contact_id))
            .filter(contact_segment::Column::SegmentId.eq(segment_id))
            .filter(contact_segment::Column::OrganizationId.eq(organization_id))
            .exec(&txn)
            .await?
            .rows_affected;
        if removed == 0 {
            return Ok(Membership::NoSegment);
        }
        contacts::announce(&txn, organization_id, EventType::ContactUpdated, contact_id).await?;
        txn.commit().await?;
        Ok(Membership::Done(contact_id))
    }

    /// The segments a contact belongs to, newest segment first; `None` when there is no such contact.
    pub async fn of_contact(
        &self,
        organization_id: Uuid,
        contact: &ContactKey,
        page: PageRequest,
    ) -> Result<Option<Page<ContactSegmentRecord>>, StoreError> {
        let Some(contact_id) = contacts::find_id(self.read, organization_id, contact).await? else {
            return Ok(None);
        };
        let select = segment::Entity::find()
            .filter(segment::Column::OrganizationId.eq(organization_id))
            .filter(
                segment::Column::Id.in_subquery(
                    Query::select()
                        .column(contact_segment::Column::SegmentId)
                        .from(contact_segment::Entity)
                        .and_where(contact_segment::Column::ContactId.eq(contact_id))
                        .to_owned(),
                ),
            );
        let found: Page<segment::Model> =
            paginate(self.read, select, segment::Column::Id, page).await?;
        let added: HashMap<Uuid, _> = contact_segment::Entity::find()
            .filter(contact_segment::Column::ContactId.eq(contact_id))
            .filter(contact_segment::Column::SegmentId.is_in(found.items.iter().map(|s| s.id)))
            .all(self.read)
            .await?
            .into_iter()
            .map(|m| (m.segment_id, m.created_at))
            .collect();
        let mut items = Vec::with_capacity(found.items.len());
        for row in found.items {
            let added_at = added.get(&row.id).copied().unwrap_or(row.created_at);
            items.push(ContactSegmentRecord {
                segment: row.try_into()?,
                added_at,
            });
        }
        Ok(Some(Page {
            items,
            has_more: found.has_more,
        }))
    }

    async fn exists_in<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        Ok(segment::Entity::find_by_id(id)
            .filter(segment::Column::OrganizationId.eq(organization_id))
            .count(db)
            .await?
            > 0)
    }
}
