//! SNS signing certificates: fetched once per URL, kept for a while, shared by concurrent requests.
//!
//! The hit path is one mutex-guarded map lookup. On a miss, one fetch per URL runs in its own task and every
//! request that wants that URL meanwhile awaits the same result (success or failure), so a burst of SNS
//! deliveries after a certificate rotation costs one download, not one per request. Running the fetch in a
//! task also means a caller that gives up (its HTTP request cancelled) neither aborts the download for the
//! others nor leaves a half-finished entry behind: the task always finishes within the client's timeout and
//! clears its in-flight entry. Failures are not cached; the next request tries again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use url::Url;
use x509_cert::Certificate;
use x509_cert::der::{DecodePem, Encode};

/// Largest certificate response read. An SNS certificate PEM is under 2 KiB.
pub const MAX_CERT_BYTES: usize = 16 * 1024;
/// Smallest and largest RSA modulus accepted in a signing certificate.
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 4096;

/// Why no key came out of a certificate URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CertError {
    /// Worth trying again later: no connection, timeout, a 5xx or 429 answer.
    Unavailable(String),
    /// The URL answered, but not with a usable certificate (4xx, too big, not PEM X.509, not RSA).
    Unusable(String),
}

type Pending = Shared<BoxFuture<'static, Result<Arc<SnsKey>, CertError>>>;

struct Entry {
    key: Arc<SnsKey>,
    stored: Instant,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    in_flight: HashMap<String, Pending>,
}

/// Signing keys by certificate URL, bounded in count and age.
pub(crate) struct CertCache {
    client: reqwest::Client,
    capacity: usize,
    ttl: Duration,
    state: Mutex<State>,
}

impl CertCache {
    pub(crate) fn new(client: reqwest::Client, capacity: usize, ttl: Duration) -> Arc<Self> {
        Arc::new(CertCache {
            client,
            capacity: capacity.max(1),
            ttl,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The map stays consistent whatever panicked while holding it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key of the certificate at `url` (already allowed by the URL policy): from the cache, from a fetch
    /// already running, or from a new fetch.
    pub(crate) async fn key(self: &Arc<Self>, url: &Url) -> Result<Arc<SnsKey>, CertError> {
        let pending = {
            let mut state = self.lock();
            if let Some(entry) = state.entries.get(url.as_str())
                && entry.stored.elapsed() < self.ttl
            {
                return Ok(entry.key.clone());
            }
            match state.in_flight.get(url.as_str()) {
                Some(pending) => pending.clone(),
                None => {
                    let pending = self.start_fetch(url.clone());
                    state
                        .in_flight
                        .insert(url.as_str().to_owned(), pending.clone());
                    pending
                }
            }
        };
        pending.await
    }

    /// Spawns the fetch; the task stores the key (on success) and clears the in-flight entry in one step, so a
    /// later caller sees either the running fetch or its stored result.
    fn start_fetch(self: &Arc<Self>, url: Url) -> Pending {
        let cache = Arc::clone(self);
        let task = tokio::spawn(async move {
            let result = fetch_key(&cache.client, &url).await.map(Arc::new);
            let mut state = cache.lock();
            state.in_flight.remove(url.as_str());
            if let Ok(key) = &result {
                cache.store(&mut state, url.as_str(), key.clone());
            }
            result
        });
        async move {
            task.await.unwrap_or_else(|e| {
                Err(CertError::Unavailable(format!(
                    "certificate fetch stopped: {e}"
                )))
            })
        }
        .boxed()
        .shared()
    }

    fn store(&self, state: &mut State, url: &str, key: Arc<SnsKey>) {
        if !state.entries.contains_key(url) && state.entries.len() >= self.capacity {
            let ttl = self.ttl;
            state.entries.retain(|_, e| e.stored.elapsed() < ttl);
            if state.entries.len() >= self.capacity {
                let oldest = state
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.stored)
                    .map(|(u, _)| u.clone());
                if let Some(oldest) = oldest {
                    state.entries.remove(&oldest);
                }
            }
        }
        state.entries.insert(
            url.to_owned(),
            Entry {
                key,
                stored: Instant::now(),
            },
        );
    }

    /// Number of keys held (fresh or not yet evicted).
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

/// GETs the certificate (no redirects, the client's timeout, at most [`MAX_CERT_BYTES`]) and reads its key.
async fn fetch_key(client: &reqwest::Client, url: &Url) -> Result<SnsKey, CertError> {
    let unavailable = |e: reqwest::Error| {
        CertError::Unavailable(format!("fetching the signing certificate failed: {e}"))
    };
    let mut response = client.get(url.clone()).send().await.map_err(unavailable)?;
    let status = response.status();
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(CertError::Unavailable(format!(
            "the certificate URL answered {status}"
        )));
    }
    if !status.is_success() {
        return Err(CertError::Unusable(format!(
            "the certificate URL answered {status}"
        )));
    }
    let too_big = || CertError::Unusable(format!("the certificate is over {MAX_CERT_BYTES} bytes"));
    if response
        .content_length()
        .is_some_and(|n| n > MAX_CERT_BYTES as u64)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
        if body.len() + chunk.len() > MAX_CERT_BYTES {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    key_from_pem(&body)
}

/// The public key of an SNS signing certificate, as ring verifies with it (modulus and exponent, big-endian).
pub(crate) type SnsKey = ring::signature::RsaPublicKeyComponents<Vec<u8>>;

/// The RSA public key of a PEM X.509 certificate. The certificate's own signature, names and dates are not
/// checked: it is trusted because it came over HTTPS from an SNS host (see the URL policy), which is the
/// check AWS documents.
pub(crate) fn key_from_pem(pem: &[u8]) -> Result<SnsKey, CertError> {
    let unusable = |what: String| CertError::Unusable(what);
    let cert = Certificate::from_pem(pem)
        .map_err(|e| unusable(format!("not a PEM X.509 certificate: {e}")))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| unusable(format!("unreadable public key: {e}")))?;
    let key = RsaPublicKey::from_public_key_der(&spki).map_err(|e| {
        unusable(format!(
            "the certificate's key is not a usable RSA key: {e}"
        ))
    })?;
    let bits = key.size() * 8;
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(unusable(format!("RSA key of {bits} bits")));
    }
    Ok(SnsKey {
        n: key.n().to_bytes_be(),
        e: key.e().to_bytes_be(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_certificates_are_unusable() {
        for pem in [
            &b""[..],
            b"hello",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            b"\xff\xfe\x00",
        ] {
            assert!(matches!(key_from_pem(pem), Err(CertError::Unusable(_))));
        }
    }
}
