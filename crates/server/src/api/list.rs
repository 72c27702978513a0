//! The query and response shapes shared by every list route (Resend's cursor pagination).

use opensend_store::{Cursor, PageRequest};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;
use opensend_core::ErrorCode;

/// `?limit=&after=&before=`. Kept as text so each problem gets its own message.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    limit: Option<String>,
    after: Option<String>,
    before: Option<String>,
}

impl ListQuery {
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        let invalid = |m: &'static str| ApiError::new(ErrorCode::InvalidParameter, m);
        let limit = match self.limit.as_deref() {
            None => PageRequest::default().limit(),
            Some(raw) => raw
                .parse::<u64>()
                .map_err(|_| invalid("`limit` must be a whole number from 1 to 100."))?,
        };
        let cursor_id = |raw: &str| {
            Uuid::try_parse(raw)
                .map_err(|_| invalid("`after` and `before` must be ids returned by this list."))
        };
        let cursor = match (self.after.as_deref(), self.before.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(invalid("Use either `after` or `before`, not both."));
            }
            (Some(after), None) => Some(Cursor::After(cursor_id(after)?)),
            (None, Some(before)) => Some(Cursor::Before(cursor_id(before)?)),
            (None, None) => None,
        };
        PageRequest::new(limit, cursor)
            .ok_or_else(|| invalid("`limit` must be a whole number from 1 to 100."))
    }
}

/// `{"object": "list", "has_more": …, "data": […]}`
#[derive(Debug, Serialize)]
pub struct ListResponse<T> {
    pub object: &'static str,
    pub has_more: bool,
    pub data: Vec<T>,
}

impl<T> ListResponse<T> {
    pub fn new(data: Vec<T>, has_more: bool) -> Self {
        Self {
            object: "list",
            has_more,
            data,
        }
    }
}
