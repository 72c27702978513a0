//! Deployment-wide periodic jobs (`cleanup`): a lease so one process at a time runs a job, and the time it
//! last finished so it runs once per period however many processes schedule it.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, Set};

use crate::StoreError;
use crate::entities::job_run;
use crate::repos::now;

pub struct JobRuns<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
}

impl<'a> JobRuns<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self { read, write }
    }

    /// Leases job `name` to `owner` for `lease` if nobody holds it and it last finished at least
    /// `min_interval` ago (or never). One conditional update, so of any number of callers at once exactly
    /// one wins.
    pub async fn claim(
        &self,
        name: &str,
        owner: &str,
        lease: TimeDelta,
        min_interval: TimeDelta,
    ) -> Result<bool, StoreError> {
        job_run::Entity::insert(job_run::ActiveModel {
            name: Set(name.to_owned()),
            lease_owner: Set(None),
            lease_expires_at: Set(None),
            last_started_at: Set(None),
            last_finished_at: Set(None),
        })
        .on_conflict(
            OnConflict::column(job_run::Column::Name)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(self.write)
        .await?;
        let at = now();
        let claimed = job_run::Entity::update_many()
            .col_expr(job_run::Column::LeaseOwner, Expr::value(Some(owner)))
            .col_expr(
                job_run::Column::LeaseExpiresAt,
                Expr::value(Some(at + lease)),
            )
            .col_expr(job_run::Column::LastStartedAt, Expr::value(Some(at)))
            .filter(job_run::Column::Name.eq(name))
            .filter(
                Condition::any()
                    .add(job_run::Column::LeaseExpiresAt.is_null())
                    .add(job_run::Column::LeaseExpiresAt.lte(at)),
            )
            .filter(
                Condition::any()
                    .add(job_run::Column::LastFinishedAt.is_null())
                    .add(job_run::Column::LastFinishedAt.lte(at - min_interval)),
            )
            .exec(self.write)
            .await?;
        Ok(claimed.rows_affected == 1)
    }

    /// Records that `owner` finished job `name` and gives the lease back. Does nothing if the lease has
    /// passed to someone else meanwhile; returns whether it was still held.
    pub async fn finish(&self, name: &str, owner: &str) -> Result<bool, StoreError> {
        let at = now();
        let finished = job_run::Entity::update_many()
            .col_expr(job_run::Column::LastFinishedAt, Expr::value(Some(at)))
            .col_expr(
                job_run::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                job_run::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(job_run::Column::Name.eq(name))
            .filter(job_run::Column::LeaseOwner.eq(owner))
            .exec(self.write)
            .await?;
        Ok(finished.rows_affected == 1)
    }

    /// When job `name` last finished, if ever.
    pub async fn last_finished(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(job_run::Entity::find_by_id(name.to_owned())
            .one(self.read)
            .await?
            .and_then(|run| run.last_finished_at))
    }
}
