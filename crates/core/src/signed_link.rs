//! Links that carry their own meaning and a signature, for URLs put in emails that anyone holding the email
//! may open without signing in: tracked links and the open pixel (and unsubscribe links).
//!
//! A link token is `base64url(payload) "." base64url(tag)`, where `tag` is HMAC-SHA256 over a purpose label
//! and the payload, under a key derived from the deployment's `AUTH_SECRET` for that purpose. Nothing is
//! stored per link: the payload says what the link is for (the email, the destination URL), and a token
//! whose tag does not match — altered, made up, or signed for another purpose — is refused before its payload
//! is looked at, so a tracked-link redirect can only ever send a reader where a signed email said to.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Longest token accepted for verification, so a made-up one costs nothing to refuse.
pub const MAX_TOKEN_CHARS: usize = 8 * 1024;

/// Signs and verifies the tokens of one purpose (`"click"`, `"open"`, `"unsubscribe"`…).
#[derive(Clone)]
pub struct LinkSigner {
    key: SecretSlice<u8>,
    purpose: &'static str,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSigner")
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

impl LinkSigner {
    /// A signer for `purpose`, its key derived from `secret` (the deployment's `AUTH_SECRET`): a key of one
    /// purpose signs nothing another purpose accepts.
    pub fn new(secret: &SecretString, purpose: &'static str) -> Self {
        let mut derive = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable_hmac());
        derive.update(b"opensend-signed-link:");
        derive.update(purpose.as_bytes());
        let key = derive.finalize().into_bytes().to_vec();
        Self {
            key: SecretSlice::from(key),
            purpose,
        }
    }

    /// The token for `payload`.
    pub fn sign(&self, payload: &[u8]) -> String {
        let tag = self.signature(payload);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The payload of `token` if this signer signed it; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<Vec<u8>> {
        if token.len() > MAX_TOKEN_CHARS {
            return None;
        }
        let (payload, tag) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.verify_signature(&payload, &tag).then_some(payload)
    }

    /// Whether `signature` is this signer's for `payload` (compared in constant time), for URLs that carry
    /// their payload in parts of their own (`?org=…&expires=…&signature=…`).
    pub fn verify_signature(&self, payload: &[u8], signature: &[u8]) -> bool {
        bool::from(self.signature(payload).as_slice().ct_eq(signature))
    }

    /// The signature of `payload` alone (what a token carries after its `.`).
    pub fn signature(&self, payload: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret())
            .unwrap_or_else(|_| unreachable_hmac());
        mac.update(self.purpose.as_bytes());
        mac.update(b":");
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }
}

/// HMAC takes keys of any length; `new_from_slice` cannot fail for it.
fn unreachable_hmac() -> Hmac<Sha256> {
    unreachable!("HMAC-SHA256 accepts keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(purpose: &'static str) -> LinkSigner {
        LinkSigner::new(&SecretString::from("a secret of this deployment"), purpose)
    }

    #[test]
    fn a_signed_payload_comes_back() {
        let click = signer("click");
        let token = click.sign(b"https://example.com/a?b=c");
        assert_eq!(
            click.verify(&token).as_deref(),
            Some(&b"https://example.com/a?b=c"[..])
        );
    }

    #[test]
    fn anything_altered_or_unsigned_is_refused() {
        let click = signer("click");
        let token = click.sign(b"https://example.com/");
        let (payload, tag) = token.split_once('.').unwrap();
        let other_payload = URL_SAFE_NO_PAD.encode(b"https://evil.example/");
        for forged in [
            format!("{other_payload}.{tag}"),
            format!("{payload}."),
            payload.to_owned(),
            format!("{payload}.{}", &tag[1..]),
            String::new(),
            ".".to_owned(),
            "%%%.%%%".to_owned(),
            format!("{token}x"),
            "a".repeat(MAX_TOKEN_CHARS + 1),
        ] {
            assert_eq!(click.verify(&forged), None, "{forged}");
        }
        // Another purpose's key, or another deployment's secret, signed something else.
        assert_eq!(signer("open").verify(&token), None);
        let elsewhere = LinkSigner::new(&SecretString::from("another deployment"), "click");
        assert_eq!(elsewhere.verify(&token), None);
    }

    #[test]
    fn the_key_is_not_printed() {
        let debug = format!("{:?}", signer("click"));
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("click"));
    }
}
