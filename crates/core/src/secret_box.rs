//! Secrets at rest: AES-256-GCM under `WEBHOOK_SECRET_ENCRYPTION_KEY`.
//!
//! A sealed secret is `version (1 byte) ‖ key id (8 bytes) ‖ nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`.
//! The key id is the first 8 bytes of SHA-256 of the key, so a row sealed under another key is recognised as
//! such (and, once several keys are configured, routed to the right one) instead of failing as "corrupt". The
//! nonce is 96 random bits per seal. The caller names what the secret is for (`purpose`), which is bound in as
//! associated data: a sealed DKIM key copied into a webhook secret column does not open.
//!
//! Rotating the key: configure the new key as current and the old one as previous
//! ([`SecretBox::with_previous`]). Secrets sealed under either open; new ones are sealed under the current
//! key; [`SecretBox::is_current`] tells which rows still need re-sealing (`opensend admin
//! rotate-encryption-key` does that for every table).

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::{Digest, Sha256};

use crate::random::os_random;

const FORMAT_VERSION: u8 = 1;
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

/// Identifies the key a secret was sealed with, without revealing it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", hex::encode(self.0))
    }
}

/// Seals secrets with one 256-bit key, and opens them with that key or a previous one.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
    key_id: KeyId,
    previous: Option<(KeyId, Aes256Gcm)>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretBoxError {
    #[error("the encryption key must be 32 bytes written as 64 hex characters")]
    InvalidKey,
    #[error("the sealed secret is truncated or not in a known format")]
    Malformed,
    #[error("the secret was sealed under another key ({0:?}) than the configured one")]
    WrongKey(KeyId),
    #[error(
        "the sealed secret failed authentication: it was altered, or sealed for another purpose"
    )]
    Tampered,
    #[error("encryption failed")]
    Encrypt,
    #[error("the operating system's random number generator failed")]
    Random,
}

impl SecretBox {
    /// From the 64-hex-character form of `WEBHOOK_SECRET_ENCRYPTION_KEY`.
    pub fn from_hex(key: &str) -> Result<Self, SecretBoxError> {
        let bytes = hex::decode(key.trim()).map_err(|_| SecretBoxError::InvalidKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SecretBoxError::InvalidKey)?;
        Ok(Self::from_key(&key))
    }

    pub fn from_key(key: &[u8; 32]) -> Self {
        let digest = Sha256::digest(key);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Self {
            cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key)),
            key_id: KeyId(id),
            previous: None,
        }
    }

    /// Also opens secrets sealed under `previous` (64 hex characters), the key being rotated away from.
    pub fn with_previous(mut self, previous: &str) -> Result<Self, SecretBoxError> {
        let old = Self::from_hex(previous)?;
        if old.key_id != self.key_id {
            self.previous = Some((old.key_id, old.cipher));
        }
        Ok(self)
    }

    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The key id a sealed value names, if it is in a known format.
    pub fn key_id_of(sealed: &[u8]) -> Option<KeyId> {
        if sealed.len() < HEADER_LEN + TAG_LEN || sealed[0] != FORMAT_VERSION {
            return None;
        }
        let mut key_id = [0u8; KEY_ID_LEN];
        key_id.copy_from_slice(&sealed[1..1 + KEY_ID_LEN]);
        Some(KeyId(key_id))
    }

    /// Whether `sealed` is sealed under the current key (and so needs no re-sealing).
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        Self::key_id_of(sealed) == Some(self.key_id)
    }

    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<Vec<u8>, SecretBoxError> {
        let nonce = os_random::<NONCE_LEN>().map_err(|_| SecretBoxError::Random)?;
        let ciphertext = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| SecretBoxError::Encrypt)?;
        let mut sealed = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        sealed.push(FORMAT_VERSION);
        sealed.extend_from_slice(&self.key_id.0);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<SecretSlice<u8>, SecretBoxError> {
        if sealed.len() < HEADER_LEN + TAG_LEN || sealed[0] != FORMAT_VERSION {
            return Err(SecretBoxError::Malformed);
        }
        let mut key_id = [0u8; KEY_ID_LEN];
        key_id.copy_from_slice(&sealed[1..1 + KEY_ID_LEN]);
        let cipher = if key_id == self.key_id.0 {
            &self.cipher
        } else {
            match &self.previous {
                Some((previous_id, previous)) if previous_id.0 == key_id => previous,
                _ => return Err(SecretBoxError::WrongKey(KeyId(key_id))),
            }
        };
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1 + KEY_ID_LEN..HEADER_LEN]);
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &sealed[HEADER_LEN..],
                    aad: purpose.as_bytes(),
                },
            )
            .map(SecretSlice::from)
            .map_err(|_| SecretBoxError::Tampered)
    }
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBox({:?})", self.key_id)
    }
}

/// Reads the plaintext of an opened secret (re-exported so callers need not depend on `secrecy` directly).
pub fn expose(secret: &SecretSlice<u8>) -> &[u8] {
    secret.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const KEY_B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    #[test]
    fn round_trip_with_fresh_nonces() {
        let sb = SecretBox::from_hex(KEY_A).unwrap();
        let a = sb.seal("dkim", b"private key").unwrap();
        let b = sb.seal("dkim", b"private key").unwrap();
        assert_ne!(a, b, "every seal uses a new nonce");
        assert_eq!(expose(&sb.open("dkim", &a).unwrap()), b"private key");
        assert_eq!(a.len(), 1 + 8 + 12 + 11 + 16);
        assert!(!a.windows(11).any(|w| w == b"private key"));
    }

    #[test]
    fn the_wrong_key_fails_loudly() {
        let a = SecretBox::from_hex(KEY_A).unwrap();
        let b = SecretBox::from_hex(KEY_B).unwrap();
        let sealed = a.seal("dkim", b"secret").unwrap();
        assert_eq!(
            b.open("dkim", &sealed).unwrap_err(),
            SecretBoxError::WrongKey(a.key_id())
        );
    }

    #[test]
    fn a_previous_key_still_opens_and_is_reported_as_not_current() {
        let old = SecretBox::from_hex(KEY_A).unwrap();
        let sealed_old = old.seal("webhook", b"secret").unwrap();
        let rotated = SecretBox::from_hex(KEY_B)
            .unwrap()
            .with_previous(KEY_A)
            .unwrap();
        assert_eq!(
            expose(&rotated.open("webhook", &sealed_old).unwrap()),
            b"secret"
        );
        assert!(!rotated.is_current(&sealed_old));
        let sealed_new = rotated.seal("webhook", b"secret").unwrap();
        assert!(rotated.is_current(&sealed_new));
        // The old key alone cannot open what the new one sealed.
        assert!(matches!(
            old.open("webhook", &sealed_new),
            Err(SecretBoxError::WrongKey(_))
        ));
    }

    #[test]
    fn tampering_truncation_and_purpose_are_detected() {
        let sb = SecretBox::from_hex(KEY_A).unwrap();
        let mut sealed = sb.seal("dkim", b"secret").unwrap();
        assert_eq!(
            sb.open("webhook", &sealed).unwrap_err(),
            SecretBoxError::Tampered
        );
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(
            sb.open("dkim", &sealed).unwrap_err(),
            SecretBoxError::Tampered
        );
        assert_eq!(
            sb.open("dkim", &sealed[..20]).unwrap_err(),
            SecretBoxError::Malformed
        );
        assert_eq!(sb.open("dkim", &[]).unwrap_err(), SecretBoxError::Malformed);
    }

    #[test]
    fn keys_must_be_64_hex_characters() {
        for bad in [
            "",
            "00",
            &KEY_A[..62],
            &format!("{KEY_A}00"),
            &KEY_A.replace('a', "g"),
        ] {
            assert_eq!(
                SecretBox::from_hex(bad).unwrap_err(),
                SecretBoxError::InvalidKey
            );
        }
    }
}
