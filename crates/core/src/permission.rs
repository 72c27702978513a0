//! What an API key may do.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Resend's two API key permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Every route of the organization.
    FullAccess,
    /// Only the send routes (`POST /emails`, `POST /emails/batch`).
    SendingAccess,
}

impl Permission {
    pub const ALL: [Permission; 2] = [Permission::FullAccess, Permission::SendingAccess];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::FullAccess => "full_access",
            Permission::SendingAccess => "sending_access",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`permission` must be one of `full_access` or `sending_access`, not `{0}`")]
pub struct UnknownPermission(pub String);

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPermission(s.chars().take(64).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_names_and_nothing_else() {
        assert_eq!("full_access".parse(), Ok(Permission::FullAccess));
        assert_eq!("sending_access".parse(), Ok(Permission::SendingAccess));
        for bad in ["", "FULL_ACCESS", "admin", "full_access "] {
            assert!(bad.parse::<Permission>().is_err(), "{bad:?}");
        }
    }
}
