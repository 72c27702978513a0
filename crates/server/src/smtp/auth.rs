//! `AUTH PLAIN` and `AUTH LOGIN` (RFC 4954), offered only once the connection is encrypted. The user name
//! is `resend` and the password an API key, looked up exactly as the API's `Authorization: Bearer` header
//! (`crate::auth::context_for_token`): a full-access or sending-access key; a key restricted to one domain
//! may send only as that domain (checked at `DATA` like the API's From check).
//!
//! Failed attempts are throttled per client address with the shared rate limiter (memory or Redis): each
//! failure draws [`FAILURE_COST`] from a bucket refilled at one a second, holding [`FAILURES_AT_ONCE`]
//! failures. So an address gets 10 wrong passwords at once (`535 5.7.8`), then one a minute; the attempt
//! that finds the bucket empty, and every attempt while it stays empty (before any key is looked up), is
//! answered `454 4.7.0`.

use std::net::IpAddr;
use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use opensend_core::ErrorCode;
use secrecy::{ExposeSecret, SecretString};

use crate::rate_limit::client_ip::bucket_address;
use crate::rate_limit::{Bucket, Rate, Subject, ceil_secs};
use crate::state::AppState;

/// The one user name: Resend's SMTP credentials are `resend` and an API key.
pub const USER: &str = "resend";
/// What one failed attempt draws from its address's bucket (in seconds of refill).
pub const FAILURE_COST: u32 = 60;
/// Failed attempts an address may make at once before it must wait.
pub const FAILURES_AT_ONCE: u32 = 10;
const CLIENT_BUCKET: Rate = Rate::constant(1, FAILURES_AT_ONCE * FAILURE_COST);

/// `334` prompts of `AUTH LOGIN`: "Username:" and "Password:" in base64.
pub const LOGIN_USER_PROMPT: &str = "VXNlcm5hbWU6";
pub const LOGIN_PASSWORD_PROMPT: &str = "UGFzc3dvcmQ6";

/// Credentials as the client gave them. Never logged: the password is an API key.
pub struct Credentials {
    pub user: String,
    pub password: SecretString,
}

/// The outcome of an `AUTH`.
pub enum Verdict {
    /// A valid key (looked up again for each message, see `session.rs`).
    Accepted,
    /// Wrong user name or key (`535 5.7.8`).
    Refused,
    /// Too many failures from this address; seconds to wait (`454 4.7.0`).
    Throttled(u64),
    /// The database or the rate limiter did not answer (`454 4.7.0`).
    Unavailable,
}

/// Base64 text of a SASL message; `=` is an empty one (RFC 4954 §4).
pub fn decode(text: &str) -> Option<Vec<u8>> {
    match text.trim() {
        "=" => Some(Vec::new()),
        text => STANDARD.decode(text).ok(),
    }
}

/// A PLAIN message (RFC 4616): `authzid NUL authcid NUL passwd`, where the authorization identity is empty
/// or the same as the user.
pub fn plain(message: &[u8]) -> Option<Credentials> {
    let text = std::str::from_utf8(message).ok()?;
    let mut parts = text.split('\0');
    let (authzid, user, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !(authzid.is_empty() || authzid == user) {
        return None;
    }
    Some(Credentials {
        user: user.to_owned(),
        password: SecretString::from(password.to_owned()),
    })
}

/// Checks the credentials of a client at `ip`.
pub async fn verify(state: &AppState, ip: IpAddr, credentials: &Credentials) -> Verdict {
    let bucket = [Bucket {
        subject: Subject::SmtpAuthIp(bucket_address(ip)),
        rate: CLIENT_BUCKET,
    }];
    let cost = NonZeroU32::new(FAILURE_COST).unwrap_or(NonZeroU32::MIN);
    match state.rate_limiter.would_refuse(&bucket[0], cost).await {
        Ok(None) => {}
        Ok(Some(refusal)) => return Verdict::Throttled(ceil_secs(refusal.retry_after).max(1)),
        Err(_) => return Verdict::Unavailable,
    }
    let outcome = match credentials.user == USER {
        true => crate::auth::context_for_token(state, credentials.password.expose_secret()).await,
        false => Err(crate::error::ApiError::new(
            ErrorCode::InvalidApiKey,
            "unknown user",
        )),
    };
    match outcome {
        Ok(_) => Verdict::Accepted,
        // The failure that empties the bucket is answered as throttled already, so the client learns to
        // wait from this reply rather than the next.
        Err(e) if e.code() == ErrorCode::InvalidApiKey => {
            match state.rate_limiter.check(&bucket, cost).await {
                Ok(decision) if !decision.allowed => {
                    Verdict::Throttled(ceil_secs(decision.retry_after).max(1))
                }
                Ok(_) => Verdict::Refused,
                Err(e) => {
                    tracing::warn!(error = %e, "could not count a failed SMTP AUTH");
                    Verdict::Refused
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e.message(), "SMTP AUTH could not look the key up");
            Verdict::Unavailable
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_messages_are_read() {
        let c = plain(b"\0resend\0os_key").unwrap();
        assert_eq!(c.user, "resend");
        assert_eq!(c.password.expose_secret(), "os_key");
        assert!(plain(b"resend\0resend\0k").is_some());
        assert!(plain(b"other\0resend\0k").is_none());
        assert!(plain(b"resend\0k").is_none());
        assert!(plain(b"\0resend\0k\0more").is_none());
        assert!(plain(b"\0resend\0\xff").is_none());
        assert_eq!(decode("="), Some(Vec::new()));
        assert_eq!(decode("AHJlc2VuZABr"), Some(b"\0resend\0k".to_vec()));
        assert_eq!(decode("not base64!"), None);
    }
}
