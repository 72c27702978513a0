//! API key tokens: `os_` followed by the base62 encoding of 32 random bytes.
//!
//! A token is shown to its owner once, at creation. The store keeps only its SHA-256 hash (looked up through a
//! unique index, so "no such key" and "wrong key" take the same path) and a short display prefix.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::random::os_random;

/// The fixed start of every token, so leaked tokens are recognisable by secret scanners.
pub const TOKEN_PREFIX: &str = "os_";
/// Number of random bytes behind every token.
const TOKEN_BYTES: usize = 32;
/// Base62 digits needed for 256 bits: ceil(256 / log2(62)) = 43. Shorter encodings are left-padded with `0`.
const ENCODED_LEN: usize = 43;
/// How many characters of the token (prefix included) are kept in clear to help people tell keys apart.
const DISPLAY_LEN: usize = 9;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A complete API key token. Never printed by `Debug`; read it with [`ApiKeyToken::expose`] only to show it
/// to its owner.
#[derive(Clone)]
pub struct ApiKeyToken(SecretString);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenFormatError {
    #[error("API key does not start with `{TOKEN_PREFIX}`")]
    MissingPrefix,
    #[error("API key has the wrong length")]
    WrongLength,
    #[error("API key contains characters outside base62")]
    InvalidCharacter,
}

impl ApiKeyToken {
    /// A fresh token from the OS CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let bytes = os_random::<TOKEN_BYTES>()?;
        let mut token = String::with_capacity(TOKEN_PREFIX.len() + ENCODED_LEN);
        token.push_str(TOKEN_PREFIX);
        token.push_str(&base62_fixed(&bytes));
        Ok(Self(SecretString::from(token)))
    }

    /// Parses what a client sent. Only the shape is checked here; whether the key exists is the store's job.
    pub fn parse(candidate: &str) -> Result<Self, TokenFormatError> {
        let body = candidate
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(TokenFormatError::MissingPrefix)?;
        if body.len() != ENCODED_LEN {
            return Err(TokenFormatError::WrongLength);
        }
        if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(TokenFormatError::InvalidCharacter);
        }
        Ok(Self(SecretString::from(candidate.to_owned())))
    }

    /// The SHA-256 of the token: what the store keeps and looks up.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.expose_secret().as_bytes()).into())
    }

    /// The first characters of the token, safe to store and display (`os_AbCdEf`).
    pub fn display_prefix(&self) -> String {
        self.0.expose_secret()[..DISPLAY_LEN].to_owned()
    }

    /// The token itself, for the one response or CLI line that hands it to its owner.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ApiKeyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeyToken([REDACTED])")
    }
}

/// SHA-256 of a token. Equality is constant-time.
#[derive(Clone, Copy, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({})", hex::encode(&self.0[..4]))
    }
}

/// Base62 of a big-endian byte string, left-padded to [`ENCODED_LEN`] digits.
fn base62_fixed(bytes: &[u8; TOKEN_BYTES]) -> String {
    // Repeated long division of the 256-bit number by 62; each pass yields the least significant digit.
    let mut number = *bytes;
    let mut digits = [b'0'; ENCODED_LEN];
    for slot in digits.iter_mut().rev() {
        let mut remainder: u32 = 0;
        for byte in number.iter_mut() {
            let acc = (remainder << 8) | u32::from(*byte);
            *byte = (acc / 62) as u8;
            remainder = acc % 62;
        }
        *slot = BASE62[remainder as usize];
    }
    // 62^43 > 2^256, so the division always ends with zero and no digit is lost.
    debug_assert!(number.iter().all(|b| *b == 0));
    String::from_utf8_lossy(&digits).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_have_the_documented_shape() {
        let token = ApiKeyToken::generate().unwrap();
        assert!(token.expose().starts_with("os_"));
        assert_eq!(token.expose().len(), 3 + 43);
        let parsed = ApiKeyToken::parse(token.expose()).unwrap();
        assert_eq!(parsed.hash(), token.hash());
        assert_eq!(token.display_prefix(), token.expose()[..9]);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = ApiKeyToken::generate().unwrap();
        let shown = format!("{token:?}");
        assert!(!shown.contains(&token.expose()[3..]));
    }

    #[test]
    fn base62_of_extremes() {
        assert_eq!(base62_fixed(&[0; 32]), "0".repeat(43));
        // 2^256 - 1 in base62, computed independently (Python: repeated divmod by 62).
        assert_eq!(
            base62_fixed(&[0xff; 32]),
            "yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp1"
        );
        let mut one = [0u8; 32];
        one[31] = 61;
        assert!(base62_fixed(&one).ends_with('z'));
        one[31] = 62;
        assert!(base62_fixed(&one).ends_with("10"));
    }

    #[test]
    fn rejects_malformed_tokens() {
        let good = ApiKeyToken::generate().unwrap();
        let body = &good.expose()[3..];
        assert_eq!(
            ApiKeyToken::parse(body).unwrap_err(),
            TokenFormatError::MissingPrefix
        );
        assert_eq!(
            ApiKeyToken::parse(&format!("os_{}", &body[1..])).unwrap_err(),
            TokenFormatError::WrongLength
        );
        assert_eq!(
            ApiKeyToken::parse(&format!("os_{}-", &body[1..])).unwrap_err(),
            TokenFormatError::InvalidCharacter
        );
        assert_eq!(
            ApiKeyToken::parse(&format!("os_{}é", &body[2..])).unwrap_err(),
            TokenFormatError::InvalidCharacter
        );
    }
}
