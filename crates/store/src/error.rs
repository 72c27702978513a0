use sea_orm::DbErr;

/// What can go wrong in the store. Callers map [`StoreError::Database`] to a 5xx; everything else is a
/// condition they can explain to the user.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported DATABASE_URL scheme `{0}`: use `sqlite://` or `postgres://`")]
    UnsupportedScheme(String),
    #[error("invalid DATABASE_URL: {0}")]
    InvalidUrl(String),
    #[error("cannot create the database directory {path}: {source}")]
    CreateDirectory {
        path: String,
        source: std::io::Error,
    },
    #[error("the referenced {0} does not exist")]
    MissingReference(&'static str),
    #[error("a {0} with these values already exists")]
    Duplicate(&'static str),
    #[error("another request completed this idempotency key first")]
    IdempotencyConflict,
    /// A stored value cannot be read back (edited by hand, or written by a newer version): the message
    /// names the table, row and column.
    #[error("damaged stored value: {0}")]
    Corrupt(String),
    #[error("cannot encode a webhook payload: {0}")]
    Payload(serde_json::Error),
    #[error("database error: {0}")]
    Database(#[from] DbErr),
}
