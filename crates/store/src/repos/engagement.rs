//! Opens and clicks reported by our own tracking (the open pixel and tracked links of an email whose domain
//! has tracking on), each recorded with all of its effects in one transaction: the email's status moves
//! forward (`opened`, `clicked`, never back over a bounce), the email event is recorded and announced through
//! the webhook outbox (`email.opened`, `email.clicked`), and a click is counted for its link.
//!
//! A reader opening the same email again and again, or a mail client loading the pixel on every view, is
//! recorded once per [`OPEN_REPEAT_WINDOW`] (a click on the same link once per [`CLICK_REPEAT_WINDOW`]), so
//! a busy reader cannot flood the organization's webhooks.

use chrono::{DateTime, TimeDelta, Utc};
use opensend_core::EmailStatus;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use crate::StoreError;
use crate::entities::{broadcast_recipient, email, email_event, link_click};
use crate::repos::emails::insert_event;
use crate::repos::provider_events::advance_status;

/// An open of the same email within this long of the last recorded one is not recorded again.
pub const OPEN_REPEAT_WINDOW: TimeDelta = TimeDelta::minutes(5);
/// A click on the same link of the same email within this long of the last recorded one is not recorded
/// again (the redirect is still served).
pub const CLICK_REPEAT_WINDOW: TimeDelta = TimeDelta::minutes(1);
/// Most distinct links `clicked_links` reports.
pub const MAX_CLICKED_LINKS: u64 = 1_000;

/// What a reader did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Engagement {
    Open,
    /// A click on this link (the URL the email had, before tracking rewrote it).
    Click {
        url: String,
    },
}

/// Who did it, as the request showed (for the webhook's `ipAddress` and `userAgent`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reader {
    pub ip_address: String,
    pub user_agent: String,
}

/// What [`Engagements::record`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded and announced.
    Recorded,
    /// The same open or click was recorded a moment ago: nothing written.
    Repeated,
    /// No such email in that organization: nothing written.
    UnknownEmail,
}

/// How often one link was clicked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClickedLink {
    pub url: String,
    pub clicks: u64,
    /// How many different emails clicked it (one per recipient for a broadcast).
    pub unique_clicks: u64,
}

pub struct Engagements<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
}

impl<'a> Engagements<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self { read, write }
    }

    /// Records that `reader` opened email `email_id` of `organization_id`, or clicked one of its links (see
    /// the module documentation).
    pub async fn record(
        &self,
        organization_id: Uuid,
        email_id: Uuid,
        engagement: Engagement,
        reader: &Reader,
        at: DateTime<Utc>,
    ) -> Result<Recorded, StoreError> {
        let txn = self.write.begin().await?;
        let exists = email::Entity::find()
            .filter(email::Column::Id.eq(email_id))
            .filter(email::Column::OrganizationId.eq(organization_id))
            .count(&txn)
            .await?;
        if exists == 0 {
            return Ok(Recorded::UnknownEmail);
        }
        let timestamp = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let (status, event_type, data) = match &engagement {
            Engagement::Open => {
                if recorded_since(&txn, email_id, "email.opened", at - OPEN_REPEAT_WINDOW).await? {
                    return Ok(Recorded::Repeated);
                }
                let data = json!({"open": {
                    "ipAddress": reader.ip_address,
                    "timestamp": timestamp,
                    "userAgent": reader.user_agent,
                }});
                (EmailStatus::Opened, "email.opened", data)
            }
            Engagement::Click { url } => {
                let repeated = link_click::Entity::find()
                    .filter(link_click::Column::EmailId.eq(email_id))
                    .filter(link_click::Column::Url.eq(url.as_str()))
                    .filter(link_click::Column::CreatedAt.gt(at - CLICK_REPEAT_WINDOW))
                    .count(&txn)
                    .await?;
                if repeated > 0 {
                    return Ok(Recorded::Repeated);
                }
                link_click::Entity::insert(link_click::ActiveModel {
                    id: Set(opensend_core::new_id()),
                    organization_id: Set(organization_id),
                    email_id: Set(email_id),
                    url: Set(url.clone()),
                    created_at: Set(at),
                })
                .exec_without_returning(&txn)
                .await?;
                let data = json!({"click": {
                    "ipAddress": reader.ip_address,
                    "link": url,
                    "timestamp": timestamp,
                    "userAgent": reader.user_agent,
                }});
                (EmailStatus::Clicked, "email.clicked", data)
            }
        };
        advance_status(&txn, email_id, status, at).await?;
        insert_event(&txn, organization_id, email_id, event_type, data, at).await?;
        txn.commit().await?;
        Ok(Recorded::Recorded)
    }

    /// How often each link was clicked (`clicks`) and by how many emails (`unique_clicks`), over the emails
    /// of `scope` in `organization_id`: most clicked first, then by URL, at most [`MAX_CLICKED_LINKS`] links.
    pub async fn clicked_links(
        &self,
        organization_id: Uuid,
        scope: ClickScope<'_>,
    ) -> Result<Vec<ClickedLink>, StoreError> {
        let mut query = link_click::Entity::find()
            .select_only()
            .column(link_click::Column::Url)
            .column_as(link_click::Column::Id.count(), "clicks")
            .column_as(Expr::cust("COUNT(DISTINCT email_id)"), "unique_clicks")
            .filter(link_click::Column::OrganizationId.eq(organization_id));
        query = match scope {
            ClickScope::Emails(ids) => {
                // Bounded IN list: SQLite allows a limited number of bound values per statement.
                let ids = ids.get(..ids.len().min(MAX_SCOPED_EMAILS)).unwrap_or(ids);
                query.filter(link_click::Column::EmailId.is_in(ids.iter().copied()))
            }
            ClickScope::Broadcast(broadcast_id) => query.filter(
                link_click::Column::EmailId.in_subquery(
                    Query::select()
                        .column(broadcast_recipient::Column::EmailId)
                        .from(broadcast_recipient::Entity)
                        .and_where(broadcast_recipient::Column::BroadcastId.eq(broadcast_id))
                        .and_where(broadcast_recipient::Column::OrganizationId.eq(organization_id))
                        .to_owned(),
                ),
            ),
        };
        let rows: Vec<(String, i64, i64)> = query
            .group_by(link_click::Column::Url)
            .order_by_desc(Expr::cust("clicks"))
            .order_by_asc(link_click::Column::Url)
            .limit(MAX_CLICKED_LINKS)
            .into_tuple()
            .all(self.read)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(url, clicks, unique)| ClickedLink {
                url,
                clicks: u64::try_from(clicks).unwrap_or(0),
                unique_clicks: u64::try_from(unique).unwrap_or(0),
            })
            .collect())
    }
}

/// Whose clicks [`Engagements::clicked_links`] adds up.
#[derive(Clone, Copy, Debug)]
pub enum ClickScope<'a> {
    /// These emails (at most [`MAX_SCOPED_EMAILS`] of them).
    Emails(&'a [Uuid]),
    /// The emails a broadcast's fan-out wrote.
    Broadcast(Uuid),
}

/// Most emails a [`ClickScope::Emails`] covers.
pub const MAX_SCOPED_EMAILS: usize = 500;

/// Whether email `email_id` has an event of `event_type` recorded after `since`.
async fn recorded_since<C: ConnectionTrait>(
    db: &C,
    email_id: Uuid,
    event_type: &str,
    since: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let found = email_event::Entity::find()
        .select_only()
        .column(email_event::Column::Id)
        .filter(email_event::Column::EmailId.eq(email_id))
        .filter(email_event::Column::EventType.eq(event_type))
        .filter(email_event::Column::CreatedAt.gt(since))
        .order_by_desc(email_event::Column::CreatedAt)
        .into_tuple::<Uuid>()
        .one(db)
        .await?;
    Ok(found.is_some())
}
