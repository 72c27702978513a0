//! Bearer tokens that only this server hands out and reads back: session cookies and invitation links.
//! 32 random bytes, base64url without padding (43 characters); stored only as their SHA-256.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::TokenHash;
use crate::random::os_random;

const TOKEN_BYTES: usize = 32;
const ENCODED_LEN: usize = 43;

/// A session or invitation token. Never printed by `Debug`.
#[derive(Clone)]
pub struct OpaqueToken(SecretString);

impl OpaqueToken {
    pub fn generate() -> Result<Self, getrandom::Error> {
        Ok(Self(SecretString::from(
            URL_SAFE_NO_PAD.encode(os_random::<TOKEN_BYTES>()?),
        )))
    }

    /// What a client sent back, when it has the shape of one of ours (whether it exists is the store's job).
    pub fn parse(candidate: &str) -> Option<Self> {
        (candidate.len() == ENCODED_LEN
            && candidate
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Self(SecretString::from(candidate.to_owned())))
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.expose_secret().as_bytes()).into())
    }

    /// The token itself, for the cookie or the link that carries it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueToken([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_differ() {
        let a = OpaqueToken::generate().unwrap();
        let b = OpaqueToken::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        let parsed = OpaqueToken::parse(a.expose()).unwrap();
        assert_eq!(parsed.hash(), a.hash());
        assert!(OpaqueToken::parse("short").is_none());
        assert!(OpaqueToken::parse(&format!("{}=", &a.expose()[..42])).is_none());
        assert!(!format!("{a:?}").contains(a.expose()));
    }
}
