//! Templates: a draft that edits change, and published versions that sends use. Publishing copies the draft
//! into a new row of `template_versions`; earlier versions are kept until the template is deleted.

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set, SqlErr, TransactionTrait,
};
use uuid::Uuid;

use crate::entities::{template, template_version};
use crate::pagination::paginate;
use crate::records::template::content_columns;
use crate::records::{TemplateContent, TemplateRecord, TemplateVersionRecord, read_all};
use crate::repos::now;
use crate::{Page, PageRequest, StoreError};

/// How a template is named in a request: its id, or its alias.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TemplateKey {
    Id(Uuid),
    Alias(String),
}

/// A template's name, alias and draft content, already checked.
#[derive(Clone, Debug)]
pub struct TemplateDraft {
    pub name: String,
    pub alias: Option<String>,
    pub content: TemplateContent,
}

/// What looking up the published version of a template found.
#[derive(Clone, Debug)]
pub enum Published {
    Version(Box<TemplateVersionRecord>),
    /// The template exists but no version of it was ever published.
    NotPublished,
    NotFound,
}

pub struct Templates<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
}

fn key_filter(key: &TemplateKey) -> sea_orm::sea_query::SimpleExpr {
    match key {
        TemplateKey::Id(id) => template::Column::Id.eq(*id),
        TemplateKey::Alias(alias) => template::Column::Alias.eq(alias.clone()),
    }
}

/// A unique-index violation (an alias taken meanwhile) as [`StoreError::Duplicate`].
fn alias_taken(e: sea_orm::DbErr) -> StoreError {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::Duplicate("template alias"),
        _ => StoreError::Database(e),
    }
}

async fn alias_in_use<C: ConnectionTrait>(
    db: &C,
    organization_id: Uuid,
    alias: Option<&str>,
    except: Option<Uuid>,
) -> Result<bool, StoreError> {
    let Some(alias) = alias else {
        return Ok(false);
    };
    let mut select = template::Entity::find()
        .filter(template::Column::OrganizationId.eq(organization_id))
        .filter(template::Column::Alias.eq(alias));
    if let Some(id) = except {
        select = select.filter(template::Column::Id.ne(id));
    }
    Ok(select.one(db).await?.is_some())
}

impl<'a> Templates<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self { read, write }
    }

    /// A new draft template; [`StoreError::Duplicate`] when the alias is taken.
    pub async fn create(
        &self,
        organization_id: Uuid,
        draft: &TemplateDraft,
    ) -> Result<TemplateRecord, StoreError> {
        if alias_in_use(self.write, organization_id, draft.alias.as_deref(), None).await? {
            return Err(StoreError::Duplicate("template alias"));
        }
        let (reply_to, variables) = content_columns(&draft.content);
        let at = now();
        template::ActiveModel {
            id: Set(opensend_core::new_id()),
            organization_id: Set(organization_id),
            name: Set(draft.name.clone()),
            alias: Set(draft.alias.clone()),
            from_address: Set(draft.content.from.clone()),
            subject: Set(draft.content.subject.clone()),
            reply_to: Set(reply_to),
            html: Set(draft.content.html.clone()),
            text_body: Set(draft.content.text.clone()),
            variables: Set(variables),
            current_version_id: Set(opensend_core::new_id()),
            published_version_id: Set(None),
            published_at: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(self.write)
        .await
        .map_err(alias_taken)?
        .try_into()
    }

    pub async fn get(
        &self,
        organization_id: Uuid,
        key: &TemplateKey,
    ) -> Result<Option<TemplateRecord>, StoreError> {
        template::Entity::find()
            .filter(template::Column::OrganizationId.eq(organization_id))
            .filter(key_filter(key))
            .one(self.read)
            .await?
            .map(TemplateRecord::try_from)
            .transpose()
    }

    /// Newest first, drafts included.
    pub async fn list(
        &self,
        organization_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<TemplateRecord>, StoreError> {
        let select =
            template::Entity::find().filter(template::Column::OrganizationId.eq(organization_id));
        let found: Page<template::Model> =
            paginate(self.read, select, template::Column::Id, page).await?;
        found.into_records()
    }

    /// Replaces the name, alias and draft of template `id`. When the draft was the published version, it
    /// gets a new version id (the published version stays as it was). `false` when there is no such
    /// template; [`StoreError::Duplicate`] when the alias is another template's.
    pub async fn save_draft(
        &self,
        organization_id: Uuid,
        id: Uuid,
        draft: &TemplateDraft,
    ) -> Result<bool, StoreError> {
        let txn = self.write.begin().await?;
        let Some(row) = template::Entity::find_by_id(id)
            .filter(template::Column::OrganizationId.eq(organization_id))
            .one(&txn)
            .await?
        else {
            return Ok(false);
        };
        if alias_in_use(&txn, organization_id, draft.alias.as_deref(), Some(id)).await? {
            return Err(StoreError::Duplicate("template alias"));
        }
        let version = if row.published_version_id == Some(row.current_version_id) {
            opensend_core::new_id()
        } else {
            row.current_version_id
        };
        let (reply_to, variables) = content_columns(&draft.content);
        let mut model: template::ActiveModel = row.into();
        model.name = Set(draft.name.clone());
        model.alias = Set(draft.alias.clone());
        model.from_address = Set(draft.content.from.clone());
        model.subject = Set(draft.content.subject.clone());
        model.reply_to = Set(reply_to);
        model.html = Set(draft.content.html.clone());
        model.text_body = Set(draft.content.text.clone());
        model.variables = Set(variables);
        model.current_version_id = Set(version);
        model.updated_at = Set(now());
        model.update(&txn).await.map_err(alias_taken)?;
        txn.commit().await?;
        Ok(true)
    }

    /// Deletes the template and its versions.
    pub async fn delete(&self, organization_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let txn = self.write.begin().await?;
        template_version::Entity::delete_many()
            .filter(template_version::Column::OrganizationId.eq(organization_id))
            .filter(template_version::Column::TemplateId.eq(id))
            .exec(&txn)
            .await?;
        let result = template::Entity::delete_many()
            .filter(template::Column::Id.eq(id))
            .filter(template::Column::OrganizationId.eq(organization_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(result.rows_affected == 1)
    }

    /// Publishes the draft: a new version (unless the draft is the published version already), which sends
    /// use from now on. `None` when there is no such template.
    pub async fn publish(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<Option<TemplateRecord>, StoreError> {
        let txn = self.write.begin().await?;
        let Some(row) = template::Entity::find_by_id(id)
            .filter(template::Column::OrganizationId.eq(organization_id))
            .one(&txn)
            .await?
        else {
            return Ok(None);
        };
        if row.published_version_id == Some(row.current_version_id) {
            txn.commit().await?;
            return row.try_into().map(Some);
        }
        let at = now();
        template_version::ActiveModel {
            id: Set(row.current_version_id),
            template_id: Set(row.id),
            organization_id: Set(organization_id),
            name: Set(row.name.clone()),
            from_address: Set(row.from_address.clone()),
            subject: Set(row.subject.clone()),
            reply_to: Set(row.reply_to.clone()),
            html: Set(row.html.clone()),
            text_body: Set(row.text_body.clone()),
            variables: Set(row.variables.clone()),
            published_at: Set(at),
        }
        .insert(&txn)
        .await?;
        let version = row.current_version_id;
        let mut model: template::ActiveModel = row.into();
        model.published_version_id = Set(Some(version));
        model.published_at = Set(Some(at));
        let row = model.update(&txn).await?;
        txn.commit().await?;
        row.try_into().map(Some)
    }

    /// A copy of the template's draft as a new draft template named `name`, without an alias. `None` when
    /// there is no such template.
    pub async fn duplicate(
        &self,
        organization_id: Uuid,
        id: Uuid,
        name: impl FnOnce(&str) -> String,
    ) -> Result<Option<TemplateRecord>, StoreError> {
        let Some(original) = self.get(organization_id, &TemplateKey::Id(id)).await? else {
            return Ok(None);
        };
        let draft = TemplateDraft {
            name: name(&original.name),
            alias: None,
            content: original.content,
        };
        self.create(organization_id, &draft).await.map(Some)
    }

    /// The published versions of template `id`, oldest first.
    pub async fn versions(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<Vec<TemplateVersionRecord>, StoreError> {
        use sea_orm::QueryOrder;
        read_all(
            template_version::Entity::find()
                .filter(template_version::Column::OrganizationId.eq(organization_id))
                .filter(template_version::Column::TemplateId.eq(id))
                .order_by_asc(template_version::Column::PublishedAt)
                .order_by_asc(template_version::Column::Id)
                .all(self.read)
                .await?,
        )
    }

    /// The version sends use, in one query; a second one only tells "not published" from "not found".
    pub async fn published(
        &self,
        organization_id: Uuid,
        key: &TemplateKey,
    ) -> Result<Published, StoreError> {
        let published_id = Query::select()
            .column(template::Column::PublishedVersionId)
            .from(template::Entity)
            .and_where(template::Column::OrganizationId.eq(organization_id))
            .and_where(key_filter(key))
            .to_owned();
        let found = template_version::Entity::find()
            .filter(template_version::Column::OrganizationId.eq(organization_id))
            .filter(Expr::col(template_version::Column::Id).in_subquery(published_id))
            .one(self.read)
            .await?;
        if let Some(row) = found {
            return TemplateVersionRecord::try_from(row).map(|v| Published::Version(Box::new(v)));
        }
        let exists = template::Entity::find()
            .filter(template::Column::OrganizationId.eq(organization_id))
            .filter(key_filter(key))
            .one(self.read)
            .await?
            .is_some();
        Ok(if exists {
            Published::NotPublished
        } else {
            Published::NotFound
        })
    }
}
