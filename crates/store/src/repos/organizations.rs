use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use uuid::Uuid;

use crate::StoreError;
use crate::caches::Caches;
use crate::entities::organization;
use crate::repos::RateLimitOverride;
use crate::repos::now;

pub struct Organizations<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
    caches: &'a Caches,
}

impl<'a> Organizations<'a> {
    pub(crate) fn new(
        read: &'a DatabaseConnection,
        write: &'a DatabaseConnection,
        caches: &'a Caches,
    ) -> Self {
        Self {
            read,
            write,
            caches,
        }
    }

    pub async fn create(&self, name: &str) -> Result<organization::Model, StoreError> {
        insert(self.write, name).await
    }

    /// Renames an organization; `false` when there is none.
    pub async fn rename(&self, id: Uuid, name: &str) -> Result<bool, StoreError> {
        let result = organization::Entity::update_many()
            .col_expr(organization::Column::Name, Expr::value(name))
            .col_expr(organization::Column::UpdatedAt, Expr::value(now()))
            .filter(organization::Column::Id.eq(id))
            .exec(self.write)
            .await?;
        Ok(result.rows_affected == 1)
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<organization::Model>, StoreError> {
        Ok(organization::Entity::find_by_id(id).one(self.read).await?)
    }

    /// Sets (or, with `None`, clears) the organization's rate-limit override; `false` when there is no such
    /// organization.
    pub async fn set_rate_limit(
        &self,
        id: Uuid,
        limit: Option<RateLimitOverride>,
    ) -> Result<bool, StoreError> {
        let transaction = self.write.begin().await?;
        let result = organization::Entity::update_many()
            .col_expr(
                organization::Column::RateLimitPerSecond,
                Expr::value(limit.map(|l| l.per_second)),
            )
            .col_expr(
                organization::Column::RateLimitBurst,
                Expr::value(limit.map(|l| l.burst)),
            )
            .col_expr(organization::Column::UpdatedAt, Expr::value(now()))
            .filter(organization::Column::Id.eq(id))
            .exec(&transaction)
            .await?;
        let changed = result.rows_affected == 1;
        self.caches.commit_change(transaction, changed).await?;
        Ok(changed)
    }

    /// Sets the organization's email quota overrides (`None` returns each to the deployment default);
    /// `false` when there is no such organization.
    pub async fn set_email_quotas(
        &self,
        id: Uuid,
        daily: Option<i64>,
        monthly: Option<i64>,
    ) -> Result<bool, StoreError> {
        let transaction = self.write.begin().await?;
        let result = organization::Entity::update_many()
            .col_expr(organization::Column::DailyEmailQuota, Expr::value(daily))
            .col_expr(
                organization::Column::MonthlyEmailQuota,
                Expr::value(monthly),
            )
            .col_expr(organization::Column::UpdatedAt, Expr::value(now()))
            .filter(organization::Column::Id.eq(id))
            .exec(&transaction)
            .await?;
        let changed = result.rows_affected == 1;
        self.caches.commit_change(transaction, changed).await?;
        Ok(changed)
    }
}

/// Inserts an organization with `db` (a transaction of the caller's, or the pool).
pub(crate) async fn insert<C: sea_orm::ConnectionTrait>(
    db: &C,
    name: &str,
) -> Result<organization::Model, StoreError> {
    let at = now();
    let model = organization::ActiveModel {
        id: Set(opensend_core::new_id()),
        name: Set(name.to_owned()),
        created_at: Set(at),
        updated_at: Set(at),
        rate_limit_per_second: Set(None),
        rate_limit_burst: Set(None),
        daily_email_quota: Set(None),
        monthly_email_quota: Set(None),
    };
    Ok(model.insert(db).await?)
}
