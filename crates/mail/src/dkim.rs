//! DKIM keys: generation, the public key record, and loading a stored private key for signing.
//!
//! Every sending domain gets two keys under one selector base: RSA-2048 (`rsa-sha256`, what every receiver
//! verifies) at `{base}` and Ed25519 (`ed25519-sha256`, RFC 8463) at `{base}e`, so a message can carry both
//! signatures. Private keys are PKCS#8 DER, handed out only inside [`SecretSlice`] and sealed before they reach
//! the store. Public keys are published as `v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>` and
//! `v=DKIM1; k=ed25519; p=<base64 of the raw 32-byte key>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_auth::common::crypto::{Ed25519Key, Sha256};
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use mail_auth::hickory_resolver::proto::rr::rdata::TXT;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
use rsa::rand_core::OsRng;
use secrecy::{ExposeSecret, SecretSlice};

/// RSA modulus size (RFC 8301 recommends 2048; larger keys do not fit one TXT string set comfortably).
pub const RSA_BITS: usize = 2048;
/// Longest character-string in a TXT record (RFC 1035 §3.3).
pub const TXT_STRING_MAX: usize = 255;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DkimAlgorithm {
    RsaSha256,
    Ed25519Sha256,
}

impl DkimAlgorithm {
    pub const ALL: [DkimAlgorithm; 2] = [DkimAlgorithm::RsaSha256, DkimAlgorithm::Ed25519Sha256];

    /// The name stored in the database and used in `a=` of a signature.
    pub fn as_str(self) -> &'static str {
        match self {
            DkimAlgorithm::RsaSha256 => "rsa-sha256",
            DkimAlgorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The `k=` tag of the key record.
    pub fn key_type(self) -> &'static str {
        match self {
            DkimAlgorithm::RsaSha256 => "rsa",
            DkimAlgorithm::Ed25519Sha256 => "ed25519",
        }
    }

    /// The selector of this algorithm's key under a selector base.
    pub fn selector(self, base: &str) -> String {
        match self {
            DkimAlgorithm::RsaSha256 => base.to_owned(),
            DkimAlgorithm::Ed25519Sha256 => format!("{base}e"),
        }
    }
}

/// A freshly generated key, before it is sealed and stored.
pub struct GeneratedKey {
    pub algorithm: DkimAlgorithm,
    pub selector: String,
    /// PKCS#8 DER.
    pub private_key: SecretSlice<u8>,
    /// SubjectPublicKeyInfo DER (RSA) or the raw 32 bytes (Ed25519): exactly what `p=` carries.
    pub public_key: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("DKIM key generation failed: {0}")]
    Generate(String),
    #[error("the stored DKIM private key cannot be loaded: {0}")]
    Load(String),
    #[error("the operating system's random number generator failed")]
    Random,
    #[error("DKIM signing failed: {0}")]
    Sign(String),
}

/// A new selector base: `os` + 8 random base-36 characters (41 bits), e.g. `os4k2x9q7a`. The store also keeps
/// selectors unique per domain, so a collision is caught rather than silently reused.
pub fn new_selector_base() -> Result<String, DkimError> {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let bytes = opensend_core::random::os_random::<8>().map_err(|_| DkimError::Random)?;
    let mut base = String::from("os");
    // 256 is not a multiple of 36; the bias (at most 1/256 per character) does not matter for a name that only
    // has to be unlikely to repeat within one domain.
    base.extend(bytes.iter().map(|b| ALPHABET[usize::from(*b) % 36] as char));
    Ok(base)
}

/// Generates a domain's RSA-2048 and Ed25519 keys under `base`. RSA generation takes a noticeable fraction of a
/// second: call it from a blocking thread.
pub fn generate_keys(base: &str) -> Result<[GeneratedKey; 2], DkimError> {
    Ok([generate_rsa(base)?, generate_ed25519(base)?])
}

pub fn generate_rsa(base: &str) -> Result<GeneratedKey, DkimError> {
    let private = rsa::RsaPrivateKey::new(&mut OsRng, RSA_BITS)
        .map_err(|e| DkimError::Generate(e.to_string()))?;
    let public_key = private
        .to_public_key()
        .to_public_key_der()
        .map_err(|e| DkimError::Generate(e.to_string()))?
        .into_vec();
    let private_der = private
        .to_pkcs8_der()
        .map_err(|e| DkimError::Generate(e.to_string()))?;
    Ok(GeneratedKey {
        algorithm: DkimAlgorithm::RsaSha256,
        selector: DkimAlgorithm::RsaSha256.selector(base),
        private_key: SecretSlice::from(private_der.as_bytes().to_vec()),
        public_key,
    })
}

pub fn generate_ed25519(base: &str) -> Result<GeneratedKey, DkimError> {
    let pkcs8 = Ed25519Key::generate_pkcs8().map_err(|e| DkimError::Generate(e.to_string()))?;
    let key = Ed25519Key::from_pkcs8_der(&pkcs8).map_err(|e| DkimError::Generate(e.to_string()))?;
    Ok(GeneratedKey {
        algorithm: DkimAlgorithm::Ed25519Sha256,
        selector: DkimAlgorithm::Ed25519Sha256.selector(base),
        private_key: SecretSlice::from(pkcs8),
        public_key: key.public_key(),
    })
}

/// The TXT value published at `{selector}._domainkey.{domain}`.
pub fn record_value(algorithm: DkimAlgorithm, public_key: &[u8]) -> String {
    format!(
        "v=DKIM1; k={}; p={}",
        algorithm.key_type(),
        BASE64.encode(public_key)
    )
}

/// The character-strings a TXT record with `value` is published as: consecutive slices of at most 255 bytes,
/// which receivers concatenate (RFC 6376 §3.6.2.2). Values are ASCII, so every cut is a character boundary.
pub fn txt_strings(value: &str) -> Vec<&str> {
    let bytes = value.as_bytes();
    bytes
        .chunks(TXT_STRING_MAX)
        .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
        .collect()
}

/// `value` as TXT record data, split into 255-byte strings.
pub fn txt_rdata(value: &str) -> TXT {
    TXT::new(txt_strings(value).into_iter().map(str::to_owned).collect())
}

/// An RSA-2048 key signing `rsa-sha256` through ring, whose assembly RSA is several times faster than the
/// pure-Rust `rsa` crate mail-auth would use (see docs/benchmarks.md). mail-auth's signer takes any
/// [`mail_auth::common::crypto::SigningKey`], so only the key's private operation changes: the signature is
/// the same PKCS#1 v1.5 over the same bytes.
pub struct RsaSigningKey {
    inner: ring::signature::RsaKeyPair,
    rng: ring::rand::SystemRandom,
}

impl std::fmt::Debug for RsaSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaSigningKey").finish_non_exhaustive()
    }
}

impl mail_auth::common::crypto::SigningKey for RsaSigningKey {
    type Hasher = Sha256;

    fn sign(&self, input: impl mail_auth::common::headers::Writable) -> mail_auth::Result<Vec<u8>> {
        let mut data = Vec::with_capacity(512);
        input.write(&mut data);
        let mut signature = vec![0; self.inner.public().modulus_len()];
        self.inner
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &self.rng,
                &data,
                &mut signature,
            )
            .map_err(|e| {
                mail_auth::Error::Crypto(mail_auth::common::crypto::CryptoError::Library(
                    e.to_string(),
                ))
            })?;
        Ok(signature)
    }

    fn algorithm(&self) -> mail_auth::common::crypto::Algorithm {
        mail_auth::common::crypto::Algorithm::RsaSha256
    }
}

/// A stored RSA key (PKCS#8 DER), ready for mail-auth's signer.
pub fn load_rsa(private_key: &SecretSlice<u8>) -> Result<RsaSigningKey, DkimError> {
    let inner = ring::signature::RsaKeyPair::from_pkcs8(private_key.expose_secret())
        .map_err(|e| DkimError::Load(e.to_string()))?;
    Ok(RsaSigningKey {
        inner,
        rng: ring::rand::SystemRandom::new(),
    })
}

/// A stored Ed25519 key, ready for mail-auth's signer.
pub fn load_ed25519(private_key: &SecretSlice<u8>) -> Result<Ed25519Key, DkimError> {
    Ed25519Key::from_pkcs8_der(private_key.expose_secret())
        .map_err(|e| DkimError::Load(e.to_string()))
}

/// A key to sign with, opened from the store.
pub struct SigningKey {
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// PKCS#8 DER.
    pub private_key: SecretSlice<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Headers every signature covers. Listing one the message lacks is harmless (it signs its absence, which
/// also stops it being added later). RFC 8058 requires the one-click unsubscribe headers to be signed.
pub const SIGNED_HEADERS: [&str; 11] = [
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// One key of a domain opened once (PKCS#8 parsed, for RSA its Montgomery parameters computed) with the
/// signature's template set, ready to sign any number of messages. Opening a key costs about as much as an
/// Ed25519 signature and a fair share of an RSA one, so the delivery worker keeps the signers of the keys it
/// uses ([`sign_with`]) instead of opening them for every message.
pub struct PreparedSigner {
    selector: String,
    algorithm: DkimAlgorithm,
    signer: Signer,
}

enum Signer {
    Rsa(DkimSigner<RsaSigningKey, Done>),
    Ed25519(DkimSigner<Ed25519Key, Done>),
}

impl std::fmt::Debug for PreparedSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedSigner")
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl PreparedSigner {
    /// Opens `key` to sign for `domain` (relaxed/relaxed over [`SIGNED_HEADERS`]).
    pub fn new(domain: &str, key: &SigningKey) -> Result<Self, DkimError> {
        let signer = match key.algorithm {
            DkimAlgorithm::RsaSha256 => Signer::Rsa(
                DkimSigner::from_key(load_rsa(&key.private_key)?)
                    .domain(domain)
                    .selector(key.selector.as_str())
                    .headers(SIGNED_HEADERS)
                    .header_canonicalization(Canonicalization::Relaxed)
                    .body_canonicalization(Canonicalization::Relaxed),
            ),
            DkimAlgorithm::Ed25519Sha256 => Signer::Ed25519(
                DkimSigner::from_key(load_ed25519(&key.private_key)?)
                    .domain(domain)
                    .selector(key.selector.as_str())
                    .headers(SIGNED_HEADERS)
                    .header_canonicalization(Canonicalization::Relaxed)
                    .body_canonicalization(Canonicalization::Relaxed),
            ),
        };
        Ok(Self {
            selector: key.selector.clone(),
            algorithm: key.algorithm,
            signer,
        })
    }

    pub fn algorithm(&self) -> DkimAlgorithm {
        self.algorithm
    }

    /// The `DKIM-Signature` header for `message`, with its line ending.
    fn signature_header(&self, message: &[u8]) -> Result<String, DkimError> {
        use mail_auth::common::headers::HeaderWriter;
        let signature = match &self.signer {
            Signer::Rsa(signer) => signer.sign(message),
            Signer::Ed25519(signer) => signer.sign(message),
        }
        .map_err(|e| DkimError::Sign(e.to_string()))?;
        Ok(without_fold_before_end(signature.to_header()))
    }
}

/// The header with no folding whitespace between the end of its last tag's value (`b=`, the signature) and
/// the closing `;`. The header writer may fold there, which RFC 6376 allows (a verifier deletes the `b=`
/// value with its surrounding whitespace), but some verifiers (dkimpy, and so every milter built on it) keep
/// whitespace that is not followed by more of the value, hash `b= ;` instead of `b=;`, and fail the
/// signature. Unfolded, every verifier hashes the same.
fn without_fold_before_end(header: String) -> String {
    let Some(body) = header.strip_suffix(";\r\n") else {
        return header;
    };
    let value_end = body.trim_end_matches([' ', '\t', '\r', '\n']);
    format!("{value_end};\r\n")
}

/// Signs `message` with each signer, in order (RSA first, then Ed25519: RFC 8463 dual signing), and returns
/// the message with the `DKIM-Signature` headers in front.
pub fn sign_with<S: std::ops::Deref<Target = PreparedSigner>>(
    message: &[u8],
    signers: &[S],
) -> Result<Vec<u8>, DkimError> {
    let mut headers = String::new();
    for signer in signers {
        headers.push_str(&signer.signature_header(message)?);
    }
    let mut signed = Vec::with_capacity(headers.len() + message.len());
    signed.extend_from_slice(headers.as_bytes());
    signed.extend_from_slice(message);
    Ok(signed)
}

/// Signs `message` for `domain` with each of `keys`, opening them for this one message (see
/// [`PreparedSigner`] to open them once for many).
pub fn sign_message(
    message: &[u8],
    domain: &str,
    keys: &[SigningKey],
) -> Result<Vec<u8>, DkimError> {
    let signers = keys
        .iter()
        .map(|key| PreparedSigner::new(domain, key).map(Box::new))
        .collect::<Result<Vec<_>, _>>()?;
    sign_with(message, &signers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_fold_is_left_before_the_closing_semicolon() {
        assert_eq!(
            without_fold_before_end("DKIM-Signature: a=1; b=abc\r\n\tdef==\r\n\t;\r\n".to_owned()),
            "DKIM-Signature: a=1; b=abc\r\n\tdef==;\r\n"
        );
        let unfolded = "DKIM-Signature: a=1; b=abc==;\r\n";
        assert_eq!(without_fold_before_end(unfolded.to_owned()), unfolded);
    }

    #[test]
    fn selectors_are_distinct_per_algorithm_and_look_right() {
        let base = new_selector_base().unwrap();
        assert_eq!(base.len(), 10);
        assert!(base.starts_with("os"));
        assert!(
            base.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert_ne!(
            DkimAlgorithm::RsaSha256.selector(&base),
            DkimAlgorithm::Ed25519Sha256.selector(&base)
        );
        assert_ne!(base, new_selector_base().unwrap());
    }

    #[test]
    fn keys_have_the_documented_shapes_and_load_back() {
        let [rsa, ed] = generate_keys("ostest0001").unwrap();
        assert_eq!(rsa.selector, "ostest0001");
        assert_eq!(ed.selector, "ostest0001e");
        // SubjectPublicKeyInfo of a 2048-bit key is 294 bytes; base64 starts with the familiar prefix.
        assert_eq!(rsa.public_key.len(), 294);
        let value = record_value(rsa.algorithm, &rsa.public_key);
        assert!(
            value.starts_with("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"),
            "{value}"
        );
        assert_eq!(ed.public_key.len(), 32);
        assert!(record_value(ed.algorithm, &ed.public_key).starts_with("v=DKIM1; k=ed25519; p="));
        load_rsa(&rsa.private_key).unwrap();
        let loaded = load_ed25519(&ed.private_key).unwrap();
        assert_eq!(loaded.public_key(), ed.public_key);
    }

    #[test]
    fn long_values_split_into_255_byte_strings() {
        let value = "x".repeat(600);
        let parts = txt_strings(&value);
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![255, 255, 90]
        );
        assert_eq!(parts.concat(), value);
        assert_eq!(txt_strings("short"), vec!["short"]);
    }
}
