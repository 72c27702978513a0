//! The request log (`GET /logs`): written in batches by the server's request-log writer, read one page or
//! one entry at a time, and deleted by age by the cleanup job.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DerivePartialModel, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use crate::entities::request_log;
use crate::pagination::paginate;
use crate::{Page, PageRequest, StoreError};

/// Rows deleted per statement by [`RequestLogs::purge_before`].
const PURGE_CHUNK: u64 = 1000;

/// One request to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRequestLog {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub api_key_id: Option<Uuid>,
    pub method: String,
    pub endpoint: String,
    pub response_status: i32,
    pub user_agent: Option<String>,
    /// JSON text.
    pub request_body: Option<String>,
    /// JSON text.
    pub response_body: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What lists show of an entry (never the bodies).
#[derive(Clone, Debug, PartialEq, Eq, DerivePartialModel)]
#[sea_orm(entity = "request_log::Entity")]
pub struct RequestLogSummary {
    pub id: Uuid,
    pub method: String,
    pub endpoint: String,
    pub response_status: i32,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub struct RequestLogs<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
}

impl<'a> RequestLogs<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self { read, write }
    }

    /// Writes `entries` with one multi-row insert.
    pub async fn insert_many(&self, entries: Vec<NewRequestLog>) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let rows = entries.into_iter().map(|e| request_log::ActiveModel {
            id: Set(e.id),
            organization_id: Set(e.organization_id),
            api_key_id: Set(e.api_key_id),
            method: Set(e.method),
            endpoint: Set(e.endpoint),
            response_status: Set(e.response_status),
            user_agent: Set(e.user_agent),
            request_body: Set(e.request_body),
            response_body: Set(e.response_body),
            created_at: Set(e.created_at),
        });
        request_log::Entity::insert_many(rows)
            .exec_without_returning(self.write)
            .await?;
        Ok(())
    }

    /// One page of the organization's log, newest first.
    pub async fn list(
        &self,
        organization_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<RequestLogSummary>, StoreError> {
        let select = request_log::Entity::find()
            .filter(request_log::Column::OrganizationId.eq(organization_id));
        paginate::<_, RequestLogSummary, _>(self.read, select, request_log::Column::Id, page).await
    }

    /// One entry of the organization's log; another organization's is `None`, like a missing one.
    pub async fn get(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<Option<request_log::Model>, StoreError> {
        Ok(request_log::Entity::find_by_id(id)
            .filter(request_log::Column::OrganizationId.eq(organization_id))
            .one(self.read)
            .await?)
    }

    /// Deletes the entries created before `cutoff`, in chunks (each its own statement, so a backlog never
    /// holds the writer for long); returns how many went.
    pub async fn purge_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut deleted = 0;
        loop {
            let ids: Vec<Uuid> = request_log::Entity::find()
                .select_only()
                .column(request_log::Column::Id)
                .filter(request_log::Column::CreatedAt.lt(cutoff))
                .order_by_asc(request_log::Column::CreatedAt)
                .limit(PURGE_CHUNK)
                .into_tuple()
                .all(self.write)
                .await?;
            if ids.is_empty() {
                return Ok(deleted);
            }
            deleted += request_log::Entity::delete_many()
                .filter(request_log::Column::Id.is_in(ids))
                .exec(self.write)
                .await?
                .rows_affected;
        }
    }
}
