use sea_orm::entity::prelude::*;

/// An email waiting to be delivered (or retried). Claimed by a worker with a lease.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "delivery_jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub email_id: Uuid,
    pub organization_id: Uuid,
    /// Not before this time (scheduled sends, retry backoff).
    pub run_at: DateTimeUtc,
    /// Claims so far, including the current one.
    pub attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
