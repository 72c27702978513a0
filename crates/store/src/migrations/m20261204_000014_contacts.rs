//! Contacts and what organizes them (Resend's audience features):
//!
//! - `contacts`: one per organization and address, whatever its case (`email_key` is the address
//!   lower-cased, unique per organization, as `suppressions.address_key`); `email` keeps it as first given.
//! - `contact_properties`: the custom fields an organization defines (`key`, `string` or `number`, a
//!   fallback), unique per organization and key; `contact_property_values` holds a contact's values (JSON
//!   text), removed with their contact or their property.
//! - `segments` (the API's `/audiences` are segments too) and `contact_segments`, the membership.
//! - `topics` and `contact_topics`, a contact's explicit subscription to a topic (without a row the topic's
//!   default applies).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn organization_fk<T: IntoIden + Copy + 'static>(table: T, column: T) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, column)
        .to(Alias::new("organizations"), Alias::new("id"))
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn cascade<T: IntoIden + Copy + 'static>(
    table: T,
    column: T,
    to: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, column)
        .to(Alias::new(to), Alias::new("id"))
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden + Copy + 'static,
    columns: &[&'static str],
    unique: bool,
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(table);
    for column in columns {
        index.col(Alias::new(*column));
    }
    if unique {
        index.unique();
    }
    manager.create_index(index.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Contacts::Table)
                    .col(pk_uuid(Contacts::Id))
                    .col(uuid(Contacts::OrganizationId))
                    .col(string(Contacts::Email))
                    .col(string(Contacts::EmailKey))
                    .col(string_null(Contacts::FirstName))
                    .col(string_null(Contacts::LastName))
                    .col(boolean(Contacts::Unsubscribed))
                    .col(timestamp_with_time_zone(Contacts::CreatedAt))
                    .col(timestamp_with_time_zone(Contacts::UpdatedAt))
                    .foreign_key(&mut organization_fk(
                        Contacts::Table,
                        Contacts::OrganizationId,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "contacts_organization_id_email_key_key",
            Contacts::Table,
            &["organization_id", "email_key"],
            true,
        )
        .await?;
        index(
            manager,
            "contacts_organization_id_id_idx",
            Contacts::Table,
            &["organization_id", "id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ContactProperties::Table)
                    .col(pk_uuid(ContactProperties::Id))
                    .col(uuid(ContactProperties::OrganizationId))
                    .col(string(ContactProperties::Key))
                    // `string` or `number`.
                    .col(string(ContactProperties::ValueType))
                    // JSON: a string or a number.
                    .col(text_null(ContactProperties::FallbackValue))
                    .col(timestamp_with_time_zone(ContactProperties::CreatedAt))
                    .foreign_key(&mut organization_fk(
                        ContactProperties::Table,
                        ContactProperties::OrganizationId,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "contact_properties_organization_id_key_key",
            ContactProperties::Table,
            &["organization_id", "key"],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ContactPropertyValues::Table)
                    .col(uuid(ContactPropertyValues::ContactId))
                    .col(uuid(ContactPropertyValues::PropertyId))
                    .col(uuid(ContactPropertyValues::OrganizationId))
                    // JSON: a string or a number, of the property's type.
                    .col(text(ContactPropertyValues::Value))
                    .primary_key(
                        Index::create()
                            .col(ContactPropertyValues::ContactId)
                            .col(ContactPropertyValues::PropertyId),
                    )
                    .foreign_key(&mut cascade(
                        ContactPropertyValues::Table,
                        ContactPropertyValues::ContactId,
                        "contacts",
                    ))
                    .foreign_key(&mut cascade(
                        ContactPropertyValues::Table,
                        ContactPropertyValues::PropertyId,
                        "contact_properties",
                    ))
                    .foreign_key(&mut organization_fk(
                        ContactPropertyValues::Table,
                        ContactPropertyValues::OrganizationId,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "contact_property_values_property_id_idx",
            ContactPropertyValues::Table,
            &["property_id"],
            false,
        )
        .await?;
        index(
            manager,
            "contact_property_values_organization_id_idx",
            ContactPropertyValues::Table,
            &["organization_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Segments::Table)
                    .col(pk_uuid(Segments::Id))
                    .col(uuid(Segments::OrganizationId))
                    .col(string(Segments::Name))
                    // JSON object as given at creation, or NULL.
                    .col(text_null(Segments::Filter))
                    .col(timestamp_with_time_zone(Segments::CreatedAt))
                    .foreign_key(&mut organization_fk(
                        Segments::Table,
                        Segments::OrganizationId,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "segments_organization_id_id_idx",
            Segments::Table,
            &["organization_id", "id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ContactSegments::Table)
                    .col(uuid(ContactSegments::ContactId))
                    .col(uuid(ContactSegments::SegmentId))
                    .col(uuid(ContactSegments::OrganizationId))
                    .col(timestamp_with_time_zone(ContactSegments::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(ContactSegments::ContactId)
                            .col(ContactSegments::SegmentId),
                    )
                    .foreign_key(&mut cascade(
                        ContactSegments::Table,
                        ContactSegments::ContactId,
                        "contacts",
                    ))
                    .foreign_key(&mut cascade(
                        ContactSegments::Table,
                        ContactSegments::SegmentId,
                        "segments",
                    ))
                    .foreign_key(&mut organization_fk(
                        ContactSegments::Table,
                        ContactSegments::OrganizationId,
                    ))
                    .to_owned(),
            )
            .await?;
        // Listing a segment's contacts, newest first.
        index(
            manager,
            "contact_segments_segment_id_contact_id_idx",
            ContactSegments::Table,
            &["segment_id", "contact_id"],
            false,
        )
        .await?;
        index(
            manager,
            "contact_segments_organization_id_idx",
            ContactSegments::Table,
            &["organization_id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Topics::Table)
                    .col(pk_uuid(Topics::Id))
                    .col(uuid(Topics::OrganizationId))
                    .col(string(Topics::Name))
                    .col(string_null(Topics::Description))
                    // `opt_in` or `opt_out`; never changes.
                    .col(string(Topics::DefaultSubscription))
                    // `public` or `private`.
                    .col(string(Topics::Visibility))
                    .col(timestamp_with_time_zone(Topics::CreatedAt))
                    .foreign_key(&mut organization_fk(Topics::Table, Topics::OrganizationId))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "topics_organization_id_id_idx",
            Topics::Table,
            &["organization_id", "id"],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ContactTopics::Table)
                    .col(uuid(ContactTopics::ContactId))
                    .col(uuid(ContactTopics::TopicId))
                    .col(uuid(ContactTopics::OrganizationId))
                    // `opt_in` or `opt_out`.
                    .col(string(ContactTopics::Subscription))
                    .col(timestamp_with_time_zone(ContactTopics::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(ContactTopics::ContactId)
                            .col(ContactTopics::TopicId),
                    )
                    .foreign_key(&mut cascade(
                        ContactTopics::Table,
                        ContactTopics::ContactId,
                        "contacts",
                    ))
                    .foreign_key(&mut cascade(
                        ContactTopics::Table,
                        ContactTopics::TopicId,
                        "topics",
                    ))
                    .foreign_key(&mut organization_fk(
                        ContactTopics::Table,
                        ContactTopics::OrganizationId,
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "contact_topics_topic_id_idx",
            ContactTopics::Table,
            &["topic_id"],
            false,
        )
        .await?;
        index(
            manager,
            "contact_topics_organization_id_idx",
            ContactTopics::Table,
            &["organization_id"],
            false,
        )
        .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Contacts {
    Table,
    Id,
    OrganizationId,
    Email,
    EmailKey,
    FirstName,
    LastName,
    Unsubscribed,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ContactProperties {
    Table,
    Id,
    OrganizationId,
    Key,
    ValueType,
    FallbackValue,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ContactPropertyValues {
    Table,
    ContactId,
    PropertyId,
    OrganizationId,
    Value,
}

#[derive(DeriveIden, Clone, Copy)]
enum Segments {
    Table,
    Id,
    OrganizationId,
    Name,
    Filter,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ContactSegments {
    Table,
    ContactId,
    SegmentId,
    OrganizationId,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Topics {
    Table,
    Id,
    OrganizationId,
    Name,
    Description,
    DefaultSubscription,
    Visibility,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ContactTopics {
    Table,
    ContactId,
    TopicId,
    OrganizationId,
    Subscription,
    UpdatedAt,
}
