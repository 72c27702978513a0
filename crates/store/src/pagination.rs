//! Cursor pagination over time-ordered ids, the way Resend's list routes page.
//!
//! Lists are newest first. `after=X` continues with the items older than `X`, `before=X` goes back to the
//! items newer than `X`. Because ids are UUIDv7, ordering by id is ordering by creation time and the cursor is
//! simply an id.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, PartialModelTrait, QueryFilter,
    QueryOrder, QuerySelect, Select,
};
use uuid::Uuid;

use crate::StoreError;

/// Largest page a client may ask for.
pub const MAX_PAGE_SIZE: u64 = 100;
/// Page size when the client does not say.
pub const DEFAULT_PAGE_SIZE: u64 = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cursor {
    /// Items created before this id (the next page).
    After(Uuid),
    /// Items created after this id (the previous page).
    Before(Uuid),
}

/// A validated page request: `limit` is within `1..=MAX_PAGE_SIZE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    limit: u64,
    cursor: Option<Cursor>,
}

impl PageRequest {
    /// `None` when `limit` is outside `1..=100`.
    pub fn new(limit: u64, cursor: Option<Cursor>) -> Option<Self> {
        (1..=MAX_PAGE_SIZE)
            .contains(&limit)
            .then_some(Self { limit, cursor })
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn cursor(&self) -> Option<Cursor> {
        self.cursor
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: DEFAULT_PAGE_SIZE,
            cursor: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    /// Newest first.
    pub items: Vec<T>,
    /// Whether more items exist beyond this page in the direction of travel.
    pub has_more: bool,
}

impl<T> Page<T> {
    /// The same page with each row read into its record (see [`crate::records`]).
    pub(crate) fn into_records<R>(self) -> Result<Page<R>, StoreError>
    where
        R: TryFrom<T, Error = StoreError>,
    {
        Ok(Page {
            items: crate::records::read_all(self.items)?,
            has_more: self.has_more,
        })
    }
}

/// Runs `select` (already filtered to one organization) as one page ordered by `id`, reading only the
/// columns of `M` (a partial model, or the entity's whole `Model`).
pub(crate) async fn paginate<E, M, C>(
    db: &C,
    select: Select<E>,
    id: E::Column,
    page: PageRequest,
) -> Result<Page<M>, StoreError>
where
    E: EntityTrait,
    M: PartialModelTrait + Send + Sync,
    C: ConnectionTrait,
{
    let fetch = page.limit + 1;
    let (select, newest_first) = match page.cursor {
        None => (select.order_by_desc(id), true),
        Some(Cursor::After(cursor)) => (select.filter(id.lt(cursor)).order_by_desc(id), true),
        Some(Cursor::Before(cursor)) => (select.filter(id.gt(cursor)).order_by_asc(id), false),
    };
    let mut items = select
        .limit(fetch)
        .into_partial_model::<M>()
        .all(db)
        .await?;
    let has_more = items.len() as u64 > page.limit;
    items.truncate(page.limit as usize);
    if !newest_first {
        items.reverse();
    }
    Ok(Page { items, has_more })
}

/// Runs `select` as one page in creation order (oldest first), read into `M`: the order of the parts of
/// one message (an email's attachments). `after=X` continues with the items that follow `X`, `before=X`
/// goes back to those that precede it.
pub(crate) async fn paginate_in_order<E, M, C>(
    db: &C,
    select: Select<E>,
    id: E::Column,
    page: PageRequest,
) -> Result<Page<M>, StoreError>
where
    E: EntityTrait,
    M: FromQueryResult + Send + Sync,
    C: ConnectionTrait,
{
    let (select, forward) = match page.cursor {
        None => (select.order_by_asc(id), true),
        Some(Cursor::After(cursor)) => (select.filter(id.gt(cursor)).order_by_asc(id), true),
        Some(Cursor::Before(cursor)) => (select.filter(id.lt(cursor)).order_by_desc(id), false),
    };
    let mut items = select
        .limit(page.limit + 1)
        .into_model::<M>()
        .all(db)
        .await?;
    let has_more = items.len() as u64 > page.limit;
    items.truncate(page.limit as usize);
    if !forward {
        items.reverse();
    }
    Ok(Page { items, has_more })
}
