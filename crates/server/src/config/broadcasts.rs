//! Broadcasts: how fast a broadcast's emails are written, and the unsubscribe address they may carry.

use opensend_core::EmailAddress;

use super::{Reader, names, whole_number};

/// Largest `BROADCAST_RATE_PER_SECOND`.
pub const MAX_RATE_PER_SECOND: u64 = 10_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BroadcastSettings {
    /// `BROADCAST_RATE_PER_SECOND`: emails per second a broadcast fan-out writes for one organization (all its
    /// broadcasts together); 50 by default.
    pub rate_per_second: u32,
    /// `UNSUBSCRIBE_MAILTO`: when set, broadcast emails' `List-Unsubscribe` also names this address (as a
    /// `mailto:` with the subject `unsubscribe`), beside the one-click URL.
    pub unsubscribe_mailto: Option<EmailAddress>,
}

impl BroadcastSettings {
    pub(super) fn read(r: &mut Reader) -> Self {
        Self {
            rate_per_second: r.setting(names::BROADCAST_RATE_PER_SECOND, 50, |v| {
                whole_number(v, 1, MAX_RATE_PER_SECOND).map(|n| n as u32)
            }),
            unsubscribe_mailto: r.setting(names::UNSUBSCRIBE_MAILTO, None, |v| {
                EmailAddress::parse(v).map(Some).map_err(|e| {
                    format!("must be an address such as unsubscribe@mail.example.com: {e}")
                })
            }),
        }
    }
}
