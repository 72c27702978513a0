//! An organization's contacts: one per address, whatever its case.
//!
//! Addresses are matched as the suppression list matches them: the whole address lower-cased
//! ([`suppressions::address_key`]), unique per organization. Another organization's contact with the same
//! address is a different contact, and every method filters by the organization, so another
//! organization's id reads as a missing one.
//!
//! Every change is announced (`contact.created`, `contact.updated`, `contact.deleted`) through the webhook
//! outbox in the transaction that makes it. A contact whose address is suppressed reads as unsubscribed
//! (`ContactRecord::suppressed`), whatever its stored flag.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use opensend_core::webhook::EventType;
use opensend_core::webhook::payload::{ContactEventData, timestamp};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::Value;
use uuid::Uuid;

use crate::entities::{
    contact, contact_property, contact_property_value, contact_segment, contact_topic, segment,
    suppression, topic,
};
use crate::pagination::paginate;
use crate::records::{ContactDetail, ContactRecord, PropertyValueRecord, Subscription};
use crate::repos::suppressions::address_key;
use crate::repos::{now, webhook_outbox};
use crate::{Page, PageRequest, StoreError};

/// Values per `IN (…)` list and rows per `INSERT`.
const CHUNK: usize = 500;

/// How a path names a contact: its id, or its address (in any case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContactKey {
    Id(Uuid),
    Email(String),
}

/// A contact to create; every value already parsed and checked by the caller (property values against
/// their property's type).
#[derive(Clone, Debug, Default)]
pub struct NewContact {
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub unsubscribed: bool,
    /// (property id, value).
    pub properties: Vec<(Uuid, Value)>,
    pub segments: Vec<Uuid>,
    pub topics: Vec<(Uuid, Subscription)>,
}

/// What a contact's preference page shows.
#[derive(Clone, Debug)]
pub struct ContactPreferences {
    pub email: String,
    pub unsubscribed: bool,
    pub topics: Vec<(crate::records::TopicRecord, Subscription)>,
}

/// Changes to a contact; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ContactChanges {
    pub email: Option<String>,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub unsubscribed: Option<bool>,
    /// (property id, new value, or `None` to clear it).
    pub properties: Vec<(Uuid, Option<Value>)>,
}

impl ContactChanges {
    pub fn is_empty(&self) -> bool {
        self.email.is_none()
            && self.first_name.is_none()
            && self.last_name.is_none()
            && self.unsubscribed.is_none()
            && self.properties.is_empty()
    }
}

/// The id `key` names in the organization, if any.
pub(crate) async fn find_id<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    key: &ContactKey,
) -> Result<Option<Uuid>, StoreError> {
    let select = contact::Entity::find()
        .select_only()
        .column(contact::Column::Id)
        .filter(contact::Column::OrganizationId.eq(organization_id));
    let select = match key {
        ContactKey::Id(id) => select.filter(contact::Column::Id.eq(*id)),
        ContactKey::Email(email) => select.filter(contact::Column::EmailKey.eq(address_key(email))),
    };
    Ok(select.into_tuple::<Uuid>().one(db).await?)
}

/// The address keys among `keys` that the organization's suppression list holds.
pub(crate) async fn suppressed_keys<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    keys: &[String],
) -> Result<HashSet<String>, StoreError> {
    let mut found = HashSet::new();
    for chunk in keys.chunks(CHUNK) {
        let rows: Vec<String> = suppression::Entity::find()
            .select_only()
            .column(suppression::Column::AddressKey)
            .filter(suppression::Column::OrganizationId.eq(organization_id))
            .filter(suppression::Column::AddressKey.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(db)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

/// Rows read into records, each marked suppressed when its address is listed.
async fn records<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    rows: Vec<contact::Model>,
) -> Result<Vec<ContactRecord>, StoreError> {
    let keys: Vec<String> = rows.iter().map(|r| r.email_key.clone()).collect();
    let suppressed = suppressed_keys(db, organization_id, &keys).await?;
    Ok(rows
        .into_iter()
        .map(|row| ContactRecord {
            suppressed: suppressed.contains(&row.email_key),
            id: row.id,
            email: row.email,
            first_name: row.first_name,
            last_name: row.last_name,
            unsubscribed: row.unsubscribed,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
        .collect())
}

async fn segment_ids<C: ConnectionTrait>(
    db: &C,
    contact_id: Uuid,
) -> Result<Vec<Uuid>, StoreError> {
    Ok(contact_segment::Entity::find()
        .select_only()
        .column(contact_segment::Column::SegmentId)
        .filter(contact_segment::Column::ContactId.eq(contact_id))
        .order_by_asc(contact_segment::Column::SegmentId)
        .into_tuple()
        .all(db)
        .await?)
}

/// The whole contact `id` of the organization, read through `db`.
pub(crate) async fn detail<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<ContactDetail>, StoreError> {
    let Some(row) = contact::Entity::find_by_id(id)
        .filter(contact::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let Some(contact) = records(db, organization_id, vec![row]).await?.pop() else {
        return Ok(None);
    };
    let values = contact_property_value::Entity::find()
        .filter(contact_property_value::Column::ContactId.eq(id))
        .all(db)
        .await?;
    let definitions: HashMap<Uuid, contact_property::Model> = contact_property::Entity::find()
        .filter(contact_property::Column::OrganizationId.eq(organization_id))
        .filter(contact_property::Column::Id.is_in(values.iter().map(|v| v.property_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let mut properties = BTreeMap::new();
    for value in values {
        let Some(definition) = definitions.get(&value.property_id) else {
            continue;
        };
        let value_type = definition.value_type.parse().map_err(|()| {
            StoreError::Corrupt(format!(
                "contact_properties {}: `value_type` is unknown",
                definition.id
            ))
        })?;
        let parsed: Value = serde_json::from_str(&value.value).map_err(|_| {
            StoreError::Corrupt(format!(
                "contact_property_values of contact {id}: `value` is not JSON"
            ))
        })?;
        properties.insert(
            definition.key.clone(),
            PropertyValueRecord {
                key: definition.key.clone(),
                value_type,
                value: parsed,
            },
        );
    }
    Ok(Some(ContactDetail {
        contact,
        properties: properties.into_values().collect(),
        segment_ids: segment_ids(db, id).await?,
    }))
}

fn event_data(detail: &ContactDetail) -> ContactEventData {
    let contact = &detail.contact;
    ContactEventData {
        id: contact.id,
        segment_ids: detail.segment_ids.clone(),
        created_at: timestamp(contact.created_at),
        updated_at: timestamp(contact.updated_at),
        email: contact.email.clone(),
        first_name: contact.first_name.clone(),
        last_name: contact.last_name.clone(),
        unsubscribed: contact.effectively_unsubscribed(),
    }
}

/// Announces `event` about the contact `id` in the caller's transaction (nothing when no endpoint
/// subscribes).
pub(crate) async fn announce<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    event: EventType,
    id: Uuid,
) -> Result<(), StoreError> {
    let subscribers = webhook_outbox::subscribers(db, organization_id, event).await?;
    announce_to(db, organization_id, event, id, &subscribers).await
}

/// [`announce`] to endpoints already looked up (a batch looks them up once).
pub(crate) async fn announce_to<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    event: EventType,
    id: Uuid,
    subscribers: &[Uuid],
) -> Result<(), StoreError> {
    if subscribers.is_empty() {
        return Ok(());
    }
    let Some(detail) = detail(db, organization_id, id).await? else {
        return Ok(());
    };
    webhook_outbox::insert_message(
        db,
        organization_id,
        event,
        subscribers,
        event_data(&detail),
        now(),
    )
    .await?;
    Ok(())
}

/// Fails with [`StoreError::MissingReference`] unless every id names a row of the organization in the
/// table `column` belongs to.
async fn all_exist<C, E>(
    db: &C,
    organization_id: Uuid,
    ids: &[Uuid],
    id: E::Column,
    organization: E::Column,
    what: &'static str,
) -> Result<(), StoreError>
where
    C: ConnectionTrait,
    E: EntityTrait,
    E::Model: Sync,
{
    let distinct: HashSet<Uuid> = ids.iter().copied().collect();
    let mut found = 0;
    let distinct: Vec<Uuid> = distinct.into_iter().collect();
    for chunk in distinct.chunks(CHUNK) {
        found += E::find()
            .filter(organization.eq(organization_id))
            .filter(id.is_in(chunk.iter().copied()))
            .count(db)
            .await?;
    }
    if found as usize == distinct.len() {
        Ok(())
    } else {
        Err(StoreError::MissingReference(what))
    }
}

pub(crate) async fn check_properties<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    ids: &[Uuid],
) -> Result<(), StoreError> {
    all_exist::<_, contact_property::Entity>(
        db,
        organization_id,
        ids,
        contact_property::Column::Id,
        contact_property::Column::OrganizationId,
        "contact property",
    )
    .await
}

pub(crate) async fn check_segments<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    ids: &[Uuid],
) -> Result<(), StoreError> {
    all_exist::<_, segment::Entity>(
        db,
        organization_id,
        ids,
        segment::Column::Id,
        segment::Column::OrganizationId,
        "segment",
    )
    .await
}

pub(crate) async fn check_topics<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    ids: &[Uuid],
) -> Result<(), StoreError> {
    all_exist::<_, topic::Entity>(
        db,
        organization_id,
        ids,
        topic::Column::Id,
        topic::Column::OrganizationId,
        "topic",
    )
    .await
}

/// Sets property values (replacing earlier ones) and clears those given `None`.
pub(crate) async fn write_properties<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    contact_id: Uuid,
    values: &[(Uuid, Option<Value>)],
) -> Result<(), StoreError> {
    for (property_id, value) in values {
        contact_property_value::Entity::delete_many()
            .filter(contact_property_value::Column::ContactId.eq(contact_id))
            .filter(contact_property_value::Column::PropertyId.eq(*property_id))
            .exec(db)
            .await?;
        if let Some(value) = value {
            contact_property_value::Entity::insert(contact_property_value::ActiveModel {
                contact_id: Set(contact_id),
                property_id: Set(*property_id),
                organization_id: Set(organization_id),
                value: Set(value.to_string()),
            })
            .exec_without_returning(db)
            .await?;
        }
    }
    Ok(())
}

/// Adds the contact to each segment it is not in yet; returns how many memberships were added.
pub(crate) async fn join_segments<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    contact_id: Uuid,
    segments: &[Uuid],
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut added = 0;
    let distinct: Vec<Uuid> = segments
        .iter()
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    for chunk in distinct.chunks(CHUNK) {
        added += contact_segment::Entity::insert_many(chunk.iter().map(|segment_id| {
            contact_segment::ActiveModel {
                contact_id: Set(contact_id),
                segment_id: Set(*segment_id),
                organization_id: Set(organization_id),
                created_at: Set(at),
            }
        }))
        .on_conflict(
            OnConflict::columns([
                contact_segment::Column::ContactId,
                contact_segment::Column::SegmentId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    }
    Ok(added)
}

/// Sets the contact's subscription to each topic (the last one given for a topic wins).
pub(crate) async fn set_topics<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    contact_id: Uuid,
    topics: &[(Uuid, Subscription)],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut last: HashMap<Uuid, Subscription> = HashMap::new();
    for (id, subscription) in topics {
        last.insert(*id, *subscription);
    }
    for (topic_id, subscription) in last {
        contact_topic::Entity::insert(contact_topic::ActiveModel {
            contact_id: Set(contact_id),
            topic_id: Set(topic_id),
            organization_id: Set(organization_id),
            subscription: Set(subscription.as_str().to_owned()),
            updated_at: Set(at),
        })
        .on_conflict(
            OnConflict::columns([
                contact_topic::Column::ContactId,
                contact_topic::Column::TopicId,
            ])
            .update_columns([
                contact_topic::Column::Subscription,
                contact_topic::Column::UpdatedAt,
            ])
            .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// Inserts a contact; `None` when the organization already has one with this address (in any case).
/// Never raises a unique violation, so it can run inside a longer PostgreSQL transaction.
pub(crate) async fn insert<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    new: &NewContact,
    at: DateTime<Utc>,
) -> Result<Option<Uuid>, StoreError> {
    let id = opensend_core::new_id();
    let inserted = contact::Entity::insert(contact::ActiveModel {
        id: Set(id),
        organization_id: Set(organization_id),
        email: Set(new.email.clone()),
        email_key: Set(address_key(&new.email)),
        first_name: Set(new.first_name.clone()),
        last_name: Set(new.last_name.clone()),
        unsubscribed: Set(new.unsubscribed),
        created_at: Set(at),
        updated_at: Set(at),
    })
    .on_conflict(
        OnConflict::columns([contact::Column::OrganizationId, contact::Column::EmailKey])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    if inserted == 0 {
        return Ok(None);
    }
    let values: Vec<(Uuid, Option<Value>)> = new
        .properties
        .iter()
        .map(|(p, v)| (*p, Some(v.clone())))
        .collect();
    write_properties(db, organization_id, id, &values).await?;
    join_segments(db, organization_id, id, &new.segments, at).await?;
    set_topics(db, organization_id, id, &new.topics, at).await?;
    Ok(Some(id))
}

/// Applies `changes` to the contact `id` (which the caller found in the organization). Fails with
/// [`StoreError::Duplicate`] when the new address is another contact's.
pub(crate) async fn apply_changes<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    id: Uuid,
    changes: &ContactChanges,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if let Some(email) = &changes.email {
        let taken = contact::Entity::find()
            .filter(contact::Column::OrganizationId.eq(organization_id))
            .filter(contact::Column::EmailKey.eq(address_key(email)))
            .filter(contact::Column::Id.ne(id))
            .count(db)
            .await?
            > 0;
        if taken {
            return Err(StoreError::Duplicate("contact"));
        }
    }
    let mut update = contact::Entity::update_many()
        .col_expr(contact::Column::UpdatedAt, Expr::value(at))
        .filter(contact::Column::Id.eq(id))
        .filter(contact::Column::OrganizationId.eq(organization_id));
    if let Some(email) = &changes.email {
        update = update
            .col_expr(contact::Column::Email, Expr::value(email.clone()))
            .col_expr(contact::Column::EmailKey, Expr::value(address_key(email)));
    }
    if let Some(first_name) = &changes.first_name {
        update = update.col_expr(contact::Column::FirstName, Expr::value(first_name.clone()));
    }
    if let Some(last_name) = &changes.last_name {
        update = update.col_expr(contact::Column::LastName, Expr::value(last_name.clone()));
    }
    if let Some(unsubscribed) = changes.unsubscribed {
        update = update.col_expr(contact::Column::Unsubscribed, Expr::value(unsubscribed));
    }
    update.exec(db).await?;
    write_properties(db, organization_id, id, &changes.properties).await
}

pub struct Contacts<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
}

impl<'a> Contacts<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self { read, write }
    }

    /// Creates the contact with its properties, segments and topics, and announces `contact.created`, in
    /// one transaction. [`StoreError::Duplicate`] when the address is taken; [`StoreError::MissingReference`]
    /// when a property, segment or topic is not the organization's.
    pub async fn create(&self, organization_id: Uuid, new: NewContact) -> Result<Uuid, StoreError> {
        let txn = self.write.begin().await?;
        let property_ids: Vec<Uuid> = new.properties.iter().map(|(id, _)| *id).collect();
        check_properties(&txn, organization_id, &property_ids).await?;
        check_segments(&txn, organization_id, &new.segments).await?;
        let topic_ids: Vec<Uuid> = new.topics.iter().map(|(id, _)| *id).collect();
        check_topics(&txn, organization_id, &topic_ids).await?;
        let id = insert(&txn, organization_id, &new, now())
            .await?
            .ok_or(StoreError::Duplicate("contact"))?;
        announce(&txn, organization_id, EventType::ContactCreated, id).await?;
        txn.commit().await?;
        Ok(id)
    }

    pub async fn find_id(
        &self,
        organization_id: Uuid,
        key: &ContactKey,
    ) -> Result<Option<Uuid>, StoreError> {
        find_id(self.read, organization_id, key).await
    }

    /// The contact with its properties and segments.
    pub async fn get(
        &self,
        organization_id: Uuid,
        key: &ContactKey,
    ) -> Result<Option<ContactDetail>, StoreError> {
        let Some(id) = find_id(self.read, organization_id, key).await? else {
            return Ok(None);
        };
        detail(self.read, organization_id, id).await
    }

    /// Applies `changes` and announces `contact.updated` in one transaction; the contact's id, or `None`
    /// when the organization has no such contact.
    pub async fn update(
        &self,
        organization_id: Uuid,
        key: &ContactKey,
        changes: &ContactChanges,
    ) -> Result<Option<Uuid>, StoreError> {
        let txn = self.write.begin().await?;
        let Some(id) = find_id(&txn, organization_id, key).await? else {
            return Ok(None);
        };
        let property_ids: Vec<Uuid> = changes.properties.iter().map(|(id, _)| *id).collect();
        check_properties(&txn, organization_id, &property_ids).await?;
        apply_changes(&txn, organization_id, id, changes, now()).await?;
        announce(&txn, organization_id, EventType::ContactUpdated, id).await?;
        txn.commit().await?;
        Ok(Some(id))
    }

    /// Deletes the contact (its values, memberships and subscriptions go with it) after announcing
    /// `contact.deleted` with what it was, in one transaction.
    pub async fn delete(
        &self,
        organization_id: Uuid,
        key: &ContactKey,
    ) -> Result<Option<Uuid>, StoreError> {
        let txn = self.write.begin().await?;
        let Some(id) = find_id(&txn, organization_id, key).await? else {
            return Ok(None);
        };
        announce(&txn, organization_id, EventType::ContactDeleted, id).await?;
        contact::Entity::delete_many()
            .filter(contact::Column::Id.eq(id))
            .filter(contact::Column::OrganizationId.eq(organization_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(Some(id))
    }

    /// One page, newest first; only the members of `segment` when given. `None` when `segment` is not
    /// one of the organization's.
    pub async fn list(
        &self,
        organization_id: Uuid,
        segment: Option<Uuid>,
        page: PageRequest,
    ) -> Result<Option<Page<ContactRecord>>, StoreError> {
        let mut select =
            contact::Entity::find().filter(contact::Column::OrganizationId.eq(organization_id));
        if let Some(segment_id) = segment {
            let exists = segment::Entity::find_by_id(segment_id)
                .filter(segment::Column::OrganizationId.eq(organization_id))
                .count(self.read)
                .await?
                > 0;
            if !exists {
                return Ok(None);
            }
            select = select.filter(
                contact::Column::Id.in_subquery(
                    Query::select()
                        .column(contact_segment::Column::ContactId)
                        .from(contact_segment::Entity)
                        .and_where(contact_segment::Column::SegmentId.eq(segment_id))
                        .to_owned(),
                ),
            );
        }
        let found: Page<contact::Model> =
            paginate(self.read, select, contact::Column::Id, page).await?;
        Ok(Some(Page {
            items: records(self.read, organization_id, found.items).await?,
            has_more: found.has_more,
        }))
    }

    /// What the hosted preference page shows: the contact's address, its own flag, and every topic of the
    /// organization with the contact's subscription (default when it never chose). `None`: no such contact.
    pub async fn preferences(
        &self,
        organization_id: Uuid,
        contact_id: Uuid,
    ) -> Result<Option<ContactPreferences>, StoreError> {
        let Some(row) = contact::Entity::find_by_id(contact_id)
            .filter(contact::Column::OrganizationId.eq(organization_id))
            .one(self.read)
            .await?
        else {
            return Ok(None);
        };
        let chosen: HashMap<Uuid, String> = contact_topic::Entity::find()
            .filter(contact_topic::Column::OrganizationId.eq(organization_id))
            .filter(contact_topic::Column::ContactId.eq(contact_id))
            .all(self.read)
            .await?
            .into_iter()
            .map(|t| (t.topic_id, t.subscription))
            .collect();
        let mut topics = Vec::new();
        for t in topic::Entity::find()
            .filter(topic::Column::OrganizationId.eq(organization_id))
            .order_by_asc(topic::Column::Id)
            .all(self.read)
            .await?
        {
            let record = crate::records::TopicRecord::try_from(t)?;
            let subscription = match chosen.get(&record.id) {
                None => record.default_subscription,
                Some(text) => text.parse().unwrap_or(Subscription::OptOut),
            };
            topics.push((record, subscription));
        }
        Ok(Some(ContactPreferences {
            email: row.email,
            unsubscribed: row.unsubscribed,
            topics,
        }))
    }

    /// Sets the contact's own flag and topic subscriptions (topics not the organization's are left out) and
    /// announces `contact.updated`, in one transaction; `false` when there is no such contact.
    pub async fn set_preferences(
        &self,
        organization_id: Uuid,
        contact_id: Uuid,
        unsubscribed: Option<bool>,
        topics: &[(Uuid, Subscription)],
    ) -> Result<bool, StoreError> {
        let txn = self.write.begin().await?;
        let key = ContactKey::Id(contact_id);
        let Some(id) = find_id(&txn, organization_id, &key).await? else {
            return Ok(false);
        };
        let at = now();
        let changes = ContactChanges {
            unsubscribed,
            ..ContactChanges::default()
        };
        apply_changes(&txn, organization_id, id, &changes, at).await?;
        let ids: Vec<Uuid> = topics.iter().map(|(id, _)| *id).collect();
        let existing: HashSet<Uuid> = topic::Entity::find()
            .select_only()
            .column(topic::Column::Id)
            .filter(topic::Column::OrganizationId.eq(organization_id))
            .filter(topic::Column::Id.is_in(ids))
            .into_tuple::<Uuid>()
            .all(&txn)
            .await?
            .into_iter()
            .collect();
        let kept: Vec<(Uuid, Subscription)> = topics
            .iter()
            .filter(|(id, _)| existing.contains(id))
            .copied()
            .collect();
        set_topics(&txn, organization_id, id, &kept, at).await?;
        announce(&txn, organization_id, EventType::ContactUpdated, id).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// How many contacts the organization has.
    pub async fn count(&self, organization_id: Uuid) -> Result<u64, StoreError> {
        Ok(contact::Entity::find()
            .filter(contact::Column::OrganizationId.eq(organization_id))
            .count(self.read)
            .await?)
    }
}
