//! Mail: turning an accepted email into RFC 5322 bytes, signing them, and handing them to a transport.
//! Knows nothing of HTTP or of the database.

pub mod transport;
