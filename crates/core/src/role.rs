//! What a person may do in an organization through the dashboard.

use std::fmt;
use std::str::FromStr;

/// A member's role. Each includes what the ones below it may do:
/// - `member`: emails, domains, API keys, webhooks, suppressions, the audience;
/// - `admin`: also members, their roles and invitations, and the audit log;
/// - `owner`: also deleting the organization and making other owners.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Admin, Role::Member];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// Members, roles, invitations, the audit log.
    pub fn manages_members(self) -> bool {
        self >= Role::Admin
    }

    /// Deleting the organization.
    pub fn owns(self) -> bool {
        self == Role::Owner
    }

    /// Whether someone with this role may give `other` to a person or take it away: admins handle admins
    /// and members, only owners handle owners.
    pub fn may_assign(self, other: Role) -> bool {
        self.manages_members() && (other != Role::Owner || self.owns())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a role is `owner`, `admin` or `member`, not `{0}`")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.chars().take(32).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_nest() {
        assert!(!Role::Member.manages_members());
        assert!(Role::Admin.manages_members() && !Role::Admin.owns());
        assert!(Role::Owner.owns());
        assert!(Role::Admin.may_assign(Role::Admin));
        assert!(!Role::Admin.may_assign(Role::Owner));
        assert!(Role::Owner.may_assign(Role::Owner));
        assert!(!Role::Member.may_assign(Role::Member));
        assert_eq!("admin".parse(), Ok(Role::Admin));
        assert!("Admin".parse::<Role>().is_err());
    }
}
