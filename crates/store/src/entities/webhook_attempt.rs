use sea_orm::entity::prelude::*;

/// One HTTP request made for a delivery, and what came back.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub delivery_id: Uuid,
    /// 1-based attempt number within the delivery.
    pub attempt: i32,
    pub succeeded: bool,
    pub status_code: Option<i32>,
    /// At most 1 KiB of the response body.
    pub response: Option<String>,
    /// Why no response was had (timeout, refused connection…).
    pub error: Option<String>,
    pub duration_ms: i32,
    /// When the next attempt is due, if one was scheduled.
    pub next_attempt_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
