//! Amazon SNS messages posted to our HTTP endpoint (SES events arrive this way), verified before anything
//! in them is believed.
//!
//! [`SnsVerifier::verify`] takes the raw POST body and, in this order: parses it ([`SnsMessage::parse`]:
//! size cap, JSON, type, required fields), checks the topic against the allowed list, checks the timestamp is
//! recent (not older than `max_age`, not more than [`MAX_FUTURE_SKEW`] ahead), checks `SigningCertURL` (and a
//! confirmation's `SubscribeURL`) against the URL policy ([`url_policy`]), fetches the certificate or takes it
//! from the cache, and verifies the RSA PKCS#1 v1.5 signature over the documented string to sign (SHA-1 for
//! `SignatureVersion` 1, SHA-256 for 2). Cheap checks come first, so a forged or misdirected message costs no
//! outbound request.
//!
//! What this does not do: replay protection within `max_age`. A verified message can be posted again by
//! anyone who saw it; the caller deduplicates on `MessageId` (SNS itself redelivers the same message on
//! retries, so that is needed anyway).
//!
//! A refusal says whose fault it is: [`SnsRefusal::is_temporary`] is true only when the certificate could not
//! be fetched right now, and the server should then answer 503 so that SNS delivers again later; everything
//! else is the sender's fault (4xx, see [`SnsRefusal::http_status`]).

mod cert;
mod message;
pub mod url_policy;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::Utc;

pub use cert::MAX_CERT_BYTES;
use cert::{CertCache, CertError};
pub use message::{MAX_SNS_BODY_BYTES, SignatureVersion, SnsMessage, SnsMessageType};
pub use url_policy::{cert_url_allowed, subscribe_url_allowed};

/// How long a fetched certificate is used before it is fetched again.
pub const CERT_CACHE_TTL: Duration = Duration::from_secs(60 * 60);
/// How many certificates are kept (SNS uses one per region at a time, plus rotations).
pub const CERT_CACHE_CAPACITY: usize = 64;
/// Timeout of each outbound request (certificate, subscription confirmation), connection included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How far in the future a `Timestamp` may be (clock skew between AWS and us).
pub const MAX_FUTURE_SKEW: Duration = Duration::from_secs(5 * 60);
/// Default [`SnsSettings::max_age`].
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// What the verifier accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnsSettings {
    /// Topics whose messages are accepted (exact ARNs). Empty: every message is refused.
    pub topic_arns: Vec<String>,
    /// Oldest `Timestamp` accepted. SNS keeps the original timestamp on redeliveries, so this must cover the
    /// subscription's retry window; an hour covers SNS's default HTTP delivery policy with room to spare.
    pub max_age: Duration,
    /// Tests only: URLs starting with this prefix (e.g. `http://127.0.0.1:8089/`) are also allowed as
    /// certificate and subscribe URLs. The server decides when it may be set; never in production.
    pub test_cert_prefix: Option<String>,
}

impl SnsSettings {
    /// Accepts `topic_arns`, with the default maximum age and no test prefix.
    pub fn new(topic_arns: Vec<String>) -> Self {
        SnsSettings {
            topic_arns,
            max_age: DEFAULT_MAX_AGE,
            test_cert_prefix: None,
        }
    }
}

/// Why a message was not accepted.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnsRefusal {
    #[error("the body is over {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("not an SNS message: {0}")]
    Malformed(String),
    #[error("unknown SNS message type {0:?}")]
    UnknownType(String),
    #[error("the message type header {header:?} does not match the body's type {body:?}")]
    TypeHeaderMismatch { header: String, body: String },
    #[error("the SNS message has no {0}")]
    MissingField(&'static str),
    #[error("the Timestamp {0:?} is not an RFC 3339 date")]
    BadTimestamp(String),
    #[error("unsupported SignatureVersion {0:?}")]
    UnsupportedSignatureVersion(String),
    #[error("the topic {0:?} is not one this server accepts")]
    TopicNotAllowed(String),
    #[error("the message is {age_seconds} s old, over the {max_age_seconds} s allowed")]
    TooOld {
        age_seconds: i64,
        max_age_seconds: u64,
    },
    #[error("the message's Timestamp is {ahead_seconds} s in the future")]
    FromTheFuture { ahead_seconds: i64 },
    #[error("the SigningCertURL {0:?} is not an Amazon SNS certificate URL")]
    CertUrlNotAllowed(String),
    #[error("the SubscribeURL {0:?} is not an Amazon SNS URL")]
    SubscribeUrlNotAllowed(String),
    #[error("the signing certificate could not be fetched now: {0}")]
    CertUnavailable(String),
    #[error("the signing certificate is not usable: {0}")]
    BadCertificate(String),
    #[error("the signature does not verify")]
    BadSignature,
}

impl SnsRefusal {
    /// True when the message may be fine and only our certificate fetch failed: answer 503 so SNS retries.
    pub fn is_temporary(&self) -> bool {
        matches!(self, SnsRefusal::CertUnavailable(_))
    }

    /// The HTTP status a receiver should answer with: 413 too large, 400 malformed, 403 not for us or not
    /// authentic, 503 when the certificate could not be fetched.
    pub fn http_status(&self) -> u16 {
        match self {
            SnsRefusal::BodyTooLarge { .. } => 413,
            SnsRefusal::Malformed(_)
            | SnsRefusal::UnknownType(_)
            | SnsRefusal::TypeHeaderMismatch { .. }
            | SnsRefusal::MissingField(_)
            | SnsRefusal::BadTimestamp(_)
            | SnsRefusal::UnsupportedSignatureVersion(_) => 400,
            SnsRefusal::TopicNotAllowed(_)
            | SnsRefusal::TooOld { .. }
            | SnsRefusal::FromTheFuture { .. }
            | SnsRefusal::CertUrlNotAllowed(_)
            | SnsRefusal::SubscribeUrlNotAllowed(_)
            | SnsRefusal::BadCertificate(_)
            | SnsRefusal::BadSignature => 403,
            SnsRefusal::CertUnavailable(_) => 503,
        }
    }

    /// A stable snake_case name for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            SnsRefusal::BodyTooLarge { .. } => "body_too_large",
            SnsRefusal::Malformed(_) => "malformed",
            SnsRefusal::UnknownType(_) => "unknown_type",
            SnsRefusal::TypeHeaderMismatch { .. } => "type_header_mismatch",
            SnsRefusal::MissingField(_) => "missing_field",
            SnsRefusal::BadTimestamp(_) => "bad_timestamp",
            SnsRefusal::UnsupportedSignatureVersion(_) => "unsupported_signature_version",
            SnsRefusal::TopicNotAllowed(_) => "topic_not_allowed",
            SnsRefusal::TooOld { .. } => "too_old",
            SnsRefusal::FromTheFuture { .. } => "from_the_future",
            SnsRefusal::CertUrlNotAllowed(_) => "cert_url_not_allowed",
            SnsRefusal::SubscribeUrlNotAllowed(_) => "subscribe_url_not_allowed",
            SnsRefusal::CertUnavailable(_) => "cert_unavailable",
            SnsRefusal::BadCertificate(_) => "bad_certificate",
            SnsRefusal::BadSignature => "bad_signature",
        }
    }
}

impl From<CertError> for SnsRefusal {
    fn from(e: CertError) -> Self {
        match e {
            CertError::Unavailable(m) => SnsRefusal::CertUnavailable(m),
            CertError::Unusable(m) => SnsRefusal::BadCertificate(m),
        }
    }
}

/// A message whose signature verified, from an allowed topic, recent enough. Only [`SnsVerifier::verify`]
/// makes one; read it through `Deref` as an [`SnsMessage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSnsMessage(SnsMessage);

impl VerifiedSnsMessage {
    pub fn into_inner(self) -> SnsMessage {
        self.0
    }
}

impl Deref for VerifiedSnsMessage {
    type Target = SnsMessage;

    fn deref(&self) -> &SnsMessage {
        &self.0
    }
}

/// The verifier could not be built (the HTTP client's TLS setup failed).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client for SNS: {0}")]
pub struct SnsConfigError(String);

/// Confirming a subscription failed.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnsConfirmError {
    #[error("the message is not a subscription confirmation")]
    NotAConfirmation,
    #[error("the SubscribeURL {0:?} is not an Amazon SNS URL")]
    UrlNotAllowed(String),
    #[error("confirming the subscription failed: {0}")]
    Failed(String),
}

/// Verifies SNS messages; cheap to clone (one HTTP client and certificate cache shared by all clones).
/// Needs a Tokio runtime: certificate fetches run as tasks.
#[derive(Clone)]
pub struct SnsVerifier {
    settings: Arc<SnsSettings>,
    client: reqwest::Client,
    certs: Arc<CertCache>,
}

impl std::fmt::Debug for SnsVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnsVerifier")
            .field("settings", &self.settings)
            .field("cached_certificates", &self.certs.len())
            .finish()
    }
}

impl SnsVerifier {
    pub fn new(settings: SnsSettings) -> Result<Self, SnsConfigError> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SnsConfigError(e.to_string()))?;
        Ok(SnsVerifier {
            settings: Arc::new(settings),
            certs: CertCache::new(client.clone(), CERT_CACHE_CAPACITY, CERT_CACHE_TTL),
            client,
        })
    }

    pub fn settings(&self) -> &SnsSettings {
        &self.settings
    }

    /// Verifies an SNS POST body (see the module documentation for the checks and their order).
    pub async fn verify(&self, body: &[u8]) -> Result<VerifiedSnsMessage, SnsRefusal> {
        self.verify_with_type_header(body, None).await
    }

    /// [`verify`](Self::verify), and when the request had an `x-amz-sns-message-type` header, it must name
    /// the body's `Type`.
    pub async fn verify_with_type_header(
        &self,
        body: &[u8],
        type_header: Option<&str>,
    ) -> Result<VerifiedSnsMessage, SnsRefusal> {
        let message = SnsMessage::parse(body)?;
        if let Some(header) = type_header
            && header != message.message_type.as_str()
        {
            return Err(SnsRefusal::TypeHeaderMismatch {
                header: message::truncated(header),
                body: message.message_type.as_str().to_owned(),
            });
        }
        if !self.settings.topic_arns.contains(&message.topic_arn) {
            return Err(SnsRefusal::TopicNotAllowed(message::truncated(
                &message.topic_arn,
            )));
        }
        self.check_age(&message)?;

        let prefix = self.settings.test_cert_prefix.as_deref();
        let cert_url =
            url_policy::cert_url(&message.signing_cert_url, prefix).ok_or_else(|| {
                SnsRefusal::CertUrlNotAllowed(message::truncated(&message.signing_cert_url))
            })?;
        if let Some(subscribe) = &message.subscribe_url
            && message.message_type != SnsMessageType::Notification
            && !url_policy::subscribe_url_allowed(subscribe, prefix)
        {
            return Err(SnsRefusal::SubscribeUrlNotAllowed(message::truncated(
                subscribe,
            )));
        }
        let signature = BASE64
            .decode(message.signature.as_bytes())
            .map_err(|_| SnsRefusal::BadSignature)?;

        let key = self.certs.key(&cert_url).await?;
        verify_signature(&key, &message, &signature)?;
        Ok(VerifiedSnsMessage(message))
    }

    fn check_age(&self, message: &SnsMessage) -> Result<(), SnsRefusal> {
        let age = Utc::now().signed_duration_since(message.published_at);
        let max_age =
            chrono::Duration::from_std(self.settings.max_age).unwrap_or(chrono::TimeDelta::MAX);
        let skew = chrono::Duration::from_std(MAX_FUTURE_SKEW).unwrap_or_default();
        if age > max_age {
            return Err(SnsRefusal::TooOld {
                age_seconds: age.num_seconds(),
                max_age_seconds: self.settings.max_age.as_secs(),
            });
        }
        if -age > skew {
            return Err(SnsRefusal::FromTheFuture {
                ahead_seconds: -age.num_seconds(),
            });
        }
        Ok(())
    }

    /// Whether [`confirm_subscription`](Self::confirm_subscription) would fetch `url`.
    pub fn subscribe_url_allowed(&self, url: &str) -> bool {
        url_policy::subscribe_url_allowed(url, self.settings.test_cert_prefix.as_deref())
    }

    /// Confirms a verified `SubscriptionConfirmation` by GETting its `SubscribeURL` (policy-checked again,
    /// same client: 5 s timeout, no redirects). The response body is not read.
    pub async fn confirm_subscription(
        &self,
        message: &VerifiedSnsMessage,
    ) -> Result<(), SnsConfirmError> {
        if message.message_type != SnsMessageType::SubscriptionConfirmation {
            return Err(SnsConfirmError::NotAConfirmation);
        }
        let raw = message.subscribe_url.as_deref().unwrap_or_default();
        let url = url_policy::subscribe_url(raw, self.settings.test_cert_prefix.as_deref())
            .ok_or_else(|| SnsConfirmError::UrlNotAllowed(message::truncated(raw)))?;
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| SnsConfirmError::Failed(e.to_string()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(SnsConfirmError::Failed(format!(
                "SNS answered {}",
                response.status()
            )))
        }
    }
}

/// RSA PKCS#1 v1.5 over the string to sign, with the digest `SignatureVersion` names (through ring).
fn verify_signature(
    key: &cert::SnsKey,
    message: &SnsMessage,
    signature: &[u8],
) -> Result<(), SnsRefusal> {
    use ring::signature::{
        RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256,
    };
    let text = message.string_to_sign();
    let algorithm = match message.signature_version {
        SignatureVersion::V1Sha1 => &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        SignatureVersion::V2Sha256 => &RSA_PKCS1_2048_8192_SHA256,
    };
    key.verify(algorithm, text.as_bytes(), signature)
        .map_err(|_| SnsRefusal::BadSignature)
}
