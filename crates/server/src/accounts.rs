//! Dashboard accounts beyond HTTP: passwords (argon2id), addresses, creating users (the sign-up page and
//! `opensend admin create-user`), and how long sessions and invitations last.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::TimeDelta;
use opensend_core::{EmailAddress, Role};
use opensend_store::entities::user;
use opensend_store::repos::{AuditContext, NewUser};
use opensend_store::{Store, StoreError};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

/// A session ends after this long without a request…
pub const SESSION_IDLE: TimeDelta = TimeDelta::days(7);
/// …and is extended at most this often (so a page view is a read, not a write).
pub const SESSION_TOUCH_EVERY: TimeDelta = TimeDelta::minutes(5);
/// How long an invitation link works.
pub const INVITATION_LIFETIME: TimeDelta = TimeDelta::days(7);
/// Shortest and longest password, in characters. Longer ones only cost hashing time.
pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 200;

/// argon2id with OWASP's second recommended setting (19 MiB, 2 passes, 1 lane).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountError {
    #[error("the address is not valid: {0}")]
    InvalidAddress(String),
    #[error("a password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")]
    WeakPassword,
    #[error("an account with this address exists already")]
    Exists,
    #[error("no organization has this id")]
    NoSuchOrganization,
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(_) => AccountError::Exists,
            StoreError::MissingReference(_) => AccountError::NoSuchOrganization,
            other => AccountError::Internal(other.to_string()),
        }
    }
}

/// An account address: parsed, and its key (lower-cased) for lookups.
pub struct Address {
    pub email: String,
    pub key: String,
}

pub fn parse_address(raw: &str) -> Result<Address, AccountError> {
    let address =
        EmailAddress::parse(raw).map_err(|e| AccountError::InvalidAddress(e.to_string()))?;
    if address.as_str().len() > 254 {
        return Err(AccountError::InvalidAddress(
            "longer than 254 characters".into(),
        ));
    }
    Ok(Address {
        key: address_key(address.as_str()),
        email: address.as_str().to_owned(),
    })
}

/// How addresses are compared: lower-cased, as `contacts.email_key` and `suppressions.address_key`.
pub fn address_key(address: &str) -> String {
    address.trim().to_lowercase()
}

pub fn check_password(password: &SecretString) -> Result<(), AccountError> {
    let chars = password.expose_secret().chars().count();
    if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        Ok(())
    } else {
        Err(AccountError::WeakPassword)
    }
}

/// The argon2id PHC string of `password`, with a fresh salt. CPU-bound: runs off the async workers.
pub async fn hash_password(password: SecretString) -> Result<String, AccountError> {
    tokio::task::spawn_blocking(move || {
        let salt = opensend_core::random::os_random::<16>()
            .map_err(|e| AccountError::Internal(e.to_string()))?;
        let salt =
            SaltString::encode_b64(&salt).map_err(|e| AccountError::Internal(e.to_string()))?;
        hasher()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AccountError::Internal(e.to_string()))
    })
    .await
    .map_err(|e| AccountError::Internal(e.to_string()))?
}

/// A hash of nothing anyone knows, verified against when the address has no account, so a sign-in to an
/// unknown address takes as long as one to a known address.
static DECOY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    let salt = SaltString::encode_b64(b"opensend-decoy!!").ok()?;
    hasher()
        .hash_password(b"no password is this one", &salt)
        .ok()
        .map(|h| h.to_string())
});

/// Whether `password` matches `stored` (a PHC string; `None`: compare with the decoy and fail).
pub async fn verify_password(password: SecretString, stored: Option<String>) -> bool {
    let known = stored.is_some();
    let Some(stored) = stored.or_else(|| DECOY_HASH.clone()) else {
        return false;
    };
    let matched = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored).is_ok_and(|parsed| {
            hasher()
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false);
    known && matched
}

/// Creates an account; with `membership`, in that organization with that role (in one transaction).
pub async fn create_user(
    store: &Store,
    address: &str,
    password: SecretString,
    membership: Option<(Uuid, Role)>,
    audit: &AuditContext,
) -> Result<user::Model, AccountError> {
    let address = parse_address(address)?;
    check_password(&password)?;
    let password_hash = hash_password(password).await?;
    Ok(store
        .users()
        .create(
            NewUser {
                email: address.email,
                email_key: address.key,
                password_hash,
            },
            membership,
            audit,
        )
        .await?)
}

/// A password for someone who did not choose one (`admin create-user` without stdin): 24 base62
/// characters from the OS CSPRNG, about 143 bits.
pub fn generate_password() -> Result<SecretString, AccountError> {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let bytes = opensend_core::random::os_random::<64>()
        .map_err(|e| AccountError::Internal(e.to_string()))?;
    // 248 = 4 × 62: bytes below it map to the alphabet without bias; others are skipped.
    let password: String = bytes
        .iter()
        .filter(|b| **b < 248)
        .take(24)
        .map(|b| ALPHABET[(*b % 62) as usize] as char)
        .collect();
    if password.len() < 24 {
        return Err(AccountError::Internal("not enough random bytes".into()));
    }
    Ok(SecretString::from(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password(SecretString::from("correct horse battery"))
            .await
            .unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            verify_password(
                SecretString::from("correct horse battery"),
                Some(hash.clone())
            )
            .await
        );
        assert!(!verify_password(SecretString::from("correct horse batterY"), Some(hash)).await);
        assert!(!verify_password(SecretString::from("no password is this one"), None).await);
    }

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.expose_secret().len(), 24);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(check_password(&a).is_ok());
        assert_eq!(
            check_password(&SecretString::from("short")),
            Err(AccountError::WeakPassword)
        );
    }
}
