//! Mail for OpenSend: DKIM keys, the DNS records a sending domain publishes, and checking them with real DNS
//! queries. No HTTP here; the server crate drives it.

pub mod dkim;
pub mod dns;
pub mod records;

pub use dkim::{DkimAlgorithm, GeneratedKey};
pub use dns::{DnsChecker, RecordCheck};
pub use records::{DomainStatus, ExpectedRecord, RecordSettings, RecordStatus};
