//! One module per table. Models are plain data; queries live in `repos`.

pub mod api_key;
pub mod dkim_key;
pub mod domain;
pub mod organization;
