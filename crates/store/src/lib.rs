//! Persistence for OpenSend.
//!
//! One code path over SQLite and PostgreSQL, chosen by the scheme of `DATABASE_URL`. Entities live in
//! [`entities`], schema changes in [`migrations`] (embedded in the binary), each resource's queries in a
//! repository under [`repos`], and what the repositories return, typed, in [`records`]. Every repository method that touches tenant data takes the organization id and
//! filters by it, so a row of another organization looks exactly like a missing one.

mod caches;
pub mod entities;
mod error;
pub mod migrations;
mod pagination;
pub mod records;
pub mod repos;
mod store;

pub use caches::CacheSettings;
pub use error::StoreError;
pub use pagination::{Cursor, Page, PageRequest};
pub use sea_orm::DbErr;
pub use store::{Backend, Store};
