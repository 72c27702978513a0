//! Amazon SES delivery (`DELIVERY=ses`): SES v2 `SendEmail` with the raw message, signed with SigV4.
//!
//! The request names every envelope recipient in `Destination.ToAddresses`. For raw content SES uses the
//! destination list as the envelope, and the message's own headers stay as they are, so Bcc recipients are
//! delivered without appearing anywhere in the message. `FromEmailAddress` is the envelope sender, which
//! SES checks against the account's verified identities.
//!
//! SES takes at most 50 recipients per call, so larger envelopes are sent in several calls of up to 50;
//! each call is all-or-nothing for its recipients. If a later call fails after an earlier one succeeded,
//! the send still succeeds (those recipients have the message) and the failed recipients are reported
//! `accepted: false` with a response starting `451` (retry) or `554` (do not). Every call has its own
//! `MessageId`, and each recipient's outcome carries the one of the call that delivered to it, since that is
//! the id SES events for that recipient name; the send's own `provider_message_id` is the first call's.
//!
//! With a configuration set configured (`SES_CONFIGURATION_SET`), every call names it
//! (`ConfigurationSetName`), so the events of our sends go to that set's event destination.
//!
//! Classification: HTTP 429, 5xx, throttling errors, `SendingPausedException`, timeouts and connection
//! failures are temporary. Signature and credential errors are temporary too: they are the operator's
//! configuration, not the message's fault, and must not fail every queued email at once. Every other 4xx
//! (`MessageRejected`, `MailFromDomainNotVerifiedException`, `BadRequestException`, …) is permanent.

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{Envelope, RecipientOutcome, SendOutcome, Transport, TransportError};

/// Time allowed for one SendEmail call, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// SES's limit on recipients per message.
pub const MAX_RECIPIENTS_PER_CALL: usize = 50;
/// Error bodies are read up to this size; SES's are a few hundred bytes.
const MAX_ERROR_BODY: usize = 16 * 1024;
const MAX_ERROR_CHARS: usize = 500;

/// Longest SES configuration set name.
pub const MAX_CONFIGURATION_SET_CHARS: usize = 64;

/// Region, credentials, optional endpoint and configuration set. Built with [`SesSettings::new`] from
/// values the caller has read.
#[derive(Clone)]
pub struct SesSettings {
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
    /// An SES-compatible endpoint (`AWS_ENDPOINT_URL`); `https://email.{region}.amazonaws.com` when `None`.
    pub endpoint: Option<Url>,
    /// The configuration set every SendEmail names (`ConfigurationSetName`, from `SES_CONFIGURATION_SET`),
    /// so the events of our sends go to that set's event destination whatever the identity's default set
    /// is. `None`: SES applies the sending identity's default configuration set, if it has one.
    pub configuration_set: Option<String>,
}

impl fmt::Debug for SesSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SesSettings")
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "[redacted]"),
            )
            .field("endpoint", &self.endpoint.as_ref().map(Url::as_str))
            .field("configuration_set", &self.configuration_set)
            .finish()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SesConfigError {
    #[error("{0} is not set (needed for DELIVERY=ses)")]
    Missing(&'static str),
    #[error("AWS_REGION `{0}` is not a region name (like eu-west-1)")]
    InvalidRegion(String),
    #[error("{0} is not a valid http(s) URL without user name or password")]
    InvalidEndpoint(&'static str),
    #[error(
        "SES_CONFIGURATION_SET `{0}` is not a configuration set name (1 to 64 characters: ASCII letters, digits, `-` and `_`)"
    )]
    InvalidConfigurationSet(String),
    #[error("SES HTTP client could not be built: {0}")]
    Client(String),
}

impl SesSettings {
    /// Settings from values already read (surrounding whitespace is the caller's to trim), validated:
    /// the region is a region name, the key id and secret are not empty, the endpoint is `http(s)`
    /// without user info, and the configuration set follows SES's naming rules.
    pub fn new(
        region: String,
        access_key_id: String,
        secret_access_key: SecretString,
        session_token: Option<SecretString>,
        endpoint: Option<Url>,
        configuration_set: Option<String>,
    ) -> Result<Self, SesConfigError> {
        let settings = SesSettings {
            region,
            access_key_id,
            secret_access_key,
            session_token,
            endpoint,
            configuration_set,
        };
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SesConfigError> {
        let region_ok = !self.region.is_empty()
            && self.region.len() <= 32
            && self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(SesConfigError::InvalidRegion(
                self.region.chars().take(40).collect(),
            ));
        }
        if self.access_key_id.is_empty() {
            return Err(SesConfigError::Missing("AWS_ACCESS_KEY_ID"));
        }
        if self.secret_access_key.expose_secret().is_empty() {
            return Err(SesConfigError::Missing("AWS_SECRET_ACCESS_KEY"));
        }
        if let Some(endpoint) = &self.endpoint {
            check_endpoint(endpoint, "AWS_ENDPOINT_URL")?;
        }
        if let Some(name) = &self.configuration_set
            && !is_configuration_set_name(name)
        {
            return Err(SesConfigError::InvalidConfigurationSet(
                sanitise(name)
                    .chars()
                    .take(MAX_CONFIGURATION_SET_CHARS + 1)
                    .collect(),
            ));
        }
        Ok(())
    }

    /// The URL SendEmail is posted to.
    fn send_url(&self) -> Result<Url, SesConfigError> {
        let mut url = match &self.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => Url::parse(&format!("https://email.{}.amazonaws.com", self.region))
                .map_err(|_| SesConfigError::InvalidRegion(self.region.clone()))?,
        };
        // Keep any path prefix of a compatible endpoint (e.g. behind a proxy at /ses/).
        let path = format!(
            "{}/v2/email/outbound-emails",
            url.path().trim_end_matches('/')
        );
        url.set_path(&path);
        url.set_query(None);
        url.set_fragment(None);
        Ok(url)
    }
}

/// SES's rule for configuration set names: 1 to 64 ASCII letters, digits, `-` and `_`.
fn is_configuration_set_name(name: &str) -> bool {
    (1..=MAX_CONFIGURATION_SET_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// An SES-compatible endpoint URL as the setting `name` gives it: `http(s)`, without user name or password.
pub fn parse_endpoint(value: &str, name: &'static str) -> Result<Url, SesConfigError> {
    let url = Url::parse(value).map_err(|_| SesConfigError::InvalidEndpoint(name))?;
    check_endpoint(&url, name)?;
    Ok(url)
}

fn check_endpoint(url: &Url, name: &'static str) -> Result<(), SesConfigError> {
    let ok = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.username().is_empty()
        && url.password().is_none();
    if ok {
        Ok(())
    } else {
        Err(SesConfigError::InvalidEndpoint(name))
    }
}

/// Delivers through Amazon SES (or an SES-compatible endpoint). Cheap to clone; clones share the HTTP
/// connection pool.
#[derive(Clone)]
pub struct SesTransport {
    settings: SesSettings,
    url: Url,
    client: reqwest::Client,
}

impl fmt::Debug for SesTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SesTransport")
            .field("settings", &self.settings)
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SendEmailRequest<'a> {
    from_email_address: &'a str,
    destination: Destination<'a>,
    content: Content,
    #[serde(skip_serializing_if = "Option::is_none")]
    configuration_set_name: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Destination<'a> {
    to_addresses: Vec<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Content {
    raw: Raw,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Raw {
    data: String,
}

#[derive(Deserialize)]
struct SendEmailResponse {
    #[serde(rename = "MessageId")]
    message_id: Option<String>,
}

impl SesTransport {
    /// Builds the transport with [`DEFAULT_TIMEOUT`]. Opens no connection yet.
    pub fn new(settings: SesSettings) -> Result<Self, SesConfigError> {
        Self::with_timeout(settings, DEFAULT_TIMEOUT)
    }

    /// Builds the transport with a per-call timeout.
    pub fn with_timeout(settings: SesSettings, timeout: Duration) -> Result<Self, SesConfigError> {
        settings.validate()?;
        let url = settings.send_url()?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SesConfigError::Client(e.to_string()))?;
        Ok(Self {
            settings,
            url,
            client,
        })
    }

    pub fn settings(&self) -> &SesSettings {
        &self.settings
    }

    /// One SendEmail call. Returns SES's MessageId.
    async fn send_email(
        &self,
        mail_from: &str,
        recipients: &[&str],
        data: &str,
    ) -> Result<Option<String>, TransportError> {
        let body = serde_json::to_vec(&SendEmailRequest {
            from_email_address: mail_from,
            destination: Destination {
                to_addresses: recipients.to_vec(),
            },
            content: Content {
                raw: Raw {
                    data: data.to_owned(),
                },
            },
            configuration_set_name: self.settings.configuration_set.as_deref(),
        })
        .map_err(|e| TransportError::Permanent(format!("ses: encoding the request: {e}")))?;

        let signed_headers = self.sign(&body)?;
        let mut request = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in signed_headers {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            TransportError::Temporary(format!("ses: {kind}: {}", error_chain(&e)))
        })?;

        let status = response.status();
        if status.is_success() {
            let bytes = response.bytes().await.map_err(|e| {
                // SES took the message; only the reply was lost. Retrying may send it twice, which
                // the delivery worker documents as the one accepted duplicate case.
                TransportError::Temporary(format!("ses: reading the reply: {}", error_chain(&e)))
            })?;
            let parsed: Option<SendEmailResponse> = serde_json::from_slice(&bytes).ok();
            let message_id = parsed
                .and_then(|r| r.message_id)
                .map(|id| sanitise(&id))
                .filter(|id| !id.is_empty());
            if message_id.is_none() {
                tracing::warn!("SES accepted the message but returned no MessageId");
            }
            return Ok(message_id);
        }

        let header_type = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_limited(response, MAX_ERROR_BODY).await;
        let (body_type, message) = parse_error_body(&body);
        let error_type = header_type
            .as_deref()
            .map(clean_error_type)
            .filter(|t| !t.is_empty())
            .or(body_type)
            .unwrap_or_default();
        Err(classify(status.as_u16(), &error_type, &message))
    }

    fn sign(&self, body: &[u8]) -> Result<Vec<(String, String)>, TransportError> {
        let credentials = Credentials::new(
            self.settings.access_key_id.clone(),
            self.settings.secret_access_key.expose_secret().to_owned(),
            self.settings
                .session_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            None,
            "opensend-settings",
        );
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.settings.region)
            .name("ses")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| TransportError::Temporary(format!("ses: signing: {e}")))?
            .into();
        let headers = [("content-type", "application/json")];
        let signable = SignableRequest::new(
            "POST",
            self.url.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| TransportError::Temporary(format!("ses: signing: {e}")))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| TransportError::Temporary(format!("ses: signing: {e}")))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect())
    }
}

#[async_trait]
impl Transport for SesTransport {
    fn name(&self) -> &'static str {
        "ses"
    }

    async fn send(
        &self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<SendOutcome, TransportError> {
        if envelope.recipients.is_empty() {
            return Err(TransportError::Permanent("ses: no recipients".to_owned()));
        }
        let data = base64::engine::general_purpose::STANDARD.encode(message);
        let mut provider_message_id = None;
        let mut outcomes: Vec<RecipientOutcome> = Vec::with_capacity(envelope.recipients.len());
        for chunk in envelope.recipients.chunks(MAX_RECIPIENTS_PER_CALL) {
            let addresses: Vec<&str> = chunk.iter().map(|a| a.as_str()).collect();
            match self
                .send_email(envelope.mail_from.as_str(), &addresses, &data)
                .await
            {
                Ok(id) => {
                    let response = match &id {
                        Some(id) => format!("250 accepted by SES as {id}"),
                        None => "250 accepted by SES".to_owned(),
                    };
                    if provider_message_id.is_none() {
                        provider_message_id.clone_from(&id);
                    }
                    // Each call's recipients carry that call's id: their bounces and complaints name it.
                    outcomes.extend(chunk.iter().map(|address| RecipientOutcome {
                        address: address.clone(),
                        accepted: true,
                        response: response.clone(),
                        provider_message_id: id.clone(),
                    }));
                }
                // Nothing delivered yet: the whole send fails and can be retried as a whole.
                Err(error) if outcomes.is_empty() => return Err(error),
                Err(error) => {
                    let response = match &error {
                        TransportError::Temporary(m) => format!("451 {m}"),
                        TransportError::Permanent(m) => format!("554 {m}"),
                    };
                    outcomes.extend(chunk.iter().map(|address| RecipientOutcome {
                        address: address.clone(),
                        accepted: false,
                        response: response.clone(),
                        provider_message_id: None,
                    }));
                }
            }
        }
        Ok(SendOutcome {
            provider_message_id,
            recipients: outcomes,
        })
    }
}

const TEMPORARY_ERROR_TYPES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "LimitExceededException",
    "SendingPausedException",
    "RequestTimeout",
    "RequestTimeoutException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServiceError",
    // Credentials and signing: configuration, not the message.
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidClientTokenId",
    "MissingAuthenticationToken",
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
];

fn classify(status: u16, error_type: &str, message: &str) -> TransportError {
    let shown_type = if error_type.is_empty() {
        "error"
    } else {
        error_type
    };
    let text = if message.is_empty() {
        format!("ses: HTTP {status} {shown_type}")
    } else {
        format!("ses: HTTP {status} {shown_type}: {message}")
    };
    let temporary = status == 429
        || status >= 500
        || !(400..500).contains(&status)
        || TEMPORARY_ERROR_TYPES.contains(&error_type);
    if temporary {
        TransportError::Temporary(text)
    } else {
        TransportError::Permanent(text)
    }
}

/// `MessageRejected:http://internal.amazon.com/coral/…` or `com.amazon…#MessageRejected` → `MessageRejected`.
fn clean_error_type(raw: &str) -> String {
    let raw = raw.split(':').next().unwrap_or(raw);
    let raw = raw.rsplit('#').next().unwrap_or(raw);
    sanitise(raw.trim()).chars().take(100).collect()
}

/// Error type and message from a JSON body (`{"__type"|"code", "message"}`, as SES v2 sends) or an XML
/// one (`<Code>`, `<Message>`, as some compatible endpoints send). Anything else yields nothing.
fn parse_error_body(body: &[u8]) -> (Option<String>, String) {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
        let field = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| map.get(*n).and_then(|v| v.as_str()))
                .map(str::to_owned)
        };
        let error_type = field(&["__type", "code", "Code"])
            .map(|t| clean_error_type(&t))
            .filter(|t| !t.is_empty());
        let message = field(&["message", "Message"]).unwrap_or_default();
        return (error_type, sanitise(&message));
    }
    let text = String::from_utf8_lossy(body);
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&close)? + start;
        Some(text[start..end].to_owned())
    };
    let error_type = tag("Code")
        .map(|t| clean_error_type(&t))
        .filter(|t| !t.is_empty());
    let message = tag("Message").map(|m| sanitise(&m)).unwrap_or_default();
    (error_type, message)
}

async fn read_limited(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    body
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    sanitise(&text)
}

fn sanitise(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_ERROR_CHARS)
        .collect();
    if text.chars().count() > MAX_ERROR_CHARS {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings for eu-west-1 with `endpoint` and `session_token`.
    fn settings(endpoint: Option<&str>, session_token: Option<&str>) -> SesSettings {
        SesSettings::new(
            "eu-west-1".to_owned(),
            "AKIDEXAMPLE".to_owned(),
            SecretString::from("very-secret-key"),
            session_token.map(|t| SecretString::from(t.to_owned())),
            endpoint.map(|e| Url::parse(e).unwrap()),
            None,
        )
        .unwrap()
    }

    #[test]
    fn builds_the_default_endpoint_and_never_shows_secrets() {
        let settings = settings(None, None);
        assert_eq!(settings.region, "eu-west-1");
        assert!(settings.session_token.is_none());
        assert_eq!(
            settings.send_url().unwrap().as_str(),
            "https://email.eu-west-1.amazonaws.com/v2/email/outbound-emails"
        );
        let shown = format!("{:?}", SesTransport::new(settings).unwrap());
        assert!(!shown.contains("very-secret-key"), "{shown}");
    }

    #[test]
    fn endpoint_override_keeps_its_prefix() {
        let settings = settings(Some("http://127.0.0.1:4566/ses/"), Some("token-secret"));
        assert_eq!(
            settings.send_url().unwrap().as_str(),
            "http://127.0.0.1:4566/ses/v2/email/outbound-emails"
        );
        assert!(!format!("{settings:?}").contains("token-secret"));
        assert_eq!(
            parse_endpoint("ftp://x", "AWS_ENDPOINT_URL").unwrap_err(),
            SesConfigError::InvalidEndpoint("AWS_ENDPOINT_URL")
        );
    }

    fn with_configuration_set(name: &str) -> Result<SesSettings, SesConfigError> {
        SesSettings::new(
            "eu-west-1".to_owned(),
            "AKIDEXAMPLE".to_owned(),
            SecretString::from("very-secret-key"),
            None,
            None,
            Some(name.to_owned()),
        )
    }

    #[test]
    fn the_constructor_validates_what_it_is_given() {
        let settings = SesSettings::new(
            "us-gov-west-1".to_owned(),
            "AKIDEXAMPLE".to_owned(),
            SecretString::from("very-secret-key"),
            Some(SecretString::from("token-secret")),
            Some(Url::parse("http://127.0.0.1:4566/").unwrap()),
            None,
        )
        .unwrap();
        assert_eq!(settings.region, "us-gov-west-1");
        assert!(settings.configuration_set.is_none());
        let new = |region: &str, key: &str, secret: &str, endpoint: Option<&str>| {
            SesSettings::new(
                region.to_owned(),
                key.to_owned(),
                SecretString::from(secret.to_owned()),
                None,
                endpoint.map(|e| Url::parse(e).unwrap()),
                None,
            )
        };
        assert!(matches!(
            new("EU-WEST-1", "AKID", "s", None).unwrap_err(),
            SesConfigError::InvalidRegion(_)
        ));
        assert_eq!(
            new("eu-west-1", "", "s", None).unwrap_err(),
            SesConfigError::Missing("AWS_ACCESS_KEY_ID")
        );
        assert_eq!(
            new("eu-west-1", "AKID", "", None).unwrap_err(),
            SesConfigError::Missing("AWS_SECRET_ACCESS_KEY")
        );
        assert_eq!(
            new("eu-west-1", "AKID", "s", Some("http://u:p@ses.example/")).unwrap_err(),
            SesConfigError::InvalidEndpoint("AWS_ENDPOINT_URL")
        );
    }

    #[test]
    fn configuration_set_names_follow_the_ses_rules() {
        let longest = "a".repeat(MAX_CONFIGURATION_SET_CHARS);
        for name in ["opensend-events", "a", "Set_2-b", "0", longest.as_str()] {
            let settings = with_configuration_set(name).unwrap();
            assert_eq!(settings.configuration_set.as_deref(), Some(name));
        }
        let too_long = "a".repeat(MAX_CONFIGURATION_SET_CHARS + 1);
        for name in [
            "",
            too_long.as_str(),
            "with space",
            "dotted.name",
            "slash/name",
            "ünicode",
            "line\nbreak",
        ] {
            let err = with_configuration_set(name).unwrap_err();
            assert!(
                matches!(err, SesConfigError::InvalidConfigurationSet(_)),
                "{name:?}: {err:?}"
            );
            let shown = err.to_string();
            assert!(shown.contains("SES_CONFIGURATION_SET"), "{shown}");
            assert!(!shown.contains('\n'), "{shown}");
        }
    }

    #[test]
    fn signs_for_ses_in_the_region_with_the_session_token() {
        let transport = SesTransport::new(settings(None, Some("session-token-value"))).unwrap();
        let headers = transport.sign(b"{}").unwrap();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let authorization = get("authorization").unwrap();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{authorization}"
        );
        assert!(
            authorization.contains("/eu-west-1/ses/aws4_request"),
            "{authorization}"
        );
        assert!(
            authorization.contains("SignedHeaders=content-type;host;x-amz-date"),
            "{authorization}"
        );
        assert!(!authorization.contains("very-secret-key"));
        assert!(get("x-amz-date").is_some());
        assert_eq!(get("x-amz-security-token"), Some("session-token-value"));
    }

    #[test]
    fn classifies_errors() {
        assert!(
            classify(400, "MessageRejected", "Email address is not verified.")
                .to_string()
                .starts_with("permanent")
        );
        assert!(!classify(400, "MailFromDomainNotVerifiedException", "").is_temporary());
        assert!(!classify(404, "NotFoundException", "").is_temporary());
        assert!(classify(429, "TooManyRequestsException", "").is_temporary());
        assert!(
            classify(400, "ThrottlingException", "Maximum sending rate exceeded.").is_temporary()
        );
        assert!(classify(500, "InternalFailure", "").is_temporary());
        assert!(classify(503, "", "").is_temporary());
        assert!(classify(403, "InvalidSignatureException", "").is_temporary());
        assert!(!classify(403, "AccessDeniedException", "").is_temporary());
        let e = classify(400, "MessageRejected", "Email address is not verified.");
        assert_eq!(
            e,
            TransportError::Permanent(
                "ses: HTTP 400 MessageRejected: Email address is not verified.".into()
            )
        );
    }

    #[test]
    fn parses_error_bodies_without_trusting_them() {
        assert_eq!(
            parse_error_body(br#"{"__type":"com.amazon#MessageRejected","message":"no\nway"}"#),
            (Some("MessageRejected".into()), "no way".into())
        );
        assert_eq!(
            parse_error_body(
                b"<ErrorResponse><Error><Code>MessageRejected</Code><Message>Did not have authority</Message></Error></ErrorResponse>"
            ),
            (Some("MessageRejected".into()), "Did not have authority".into())
        );
        assert_eq!(parse_error_body(b"\xff\xfe<Code>"), (None, String::new()));
        assert_eq!(parse_error_body(b""), (None, String::new()));
        assert_eq!(
            clean_error_type("MessageRejected:http://internal.amazon.com/coral/com.amazon.ses/"),
            "MessageRejected"
        );
    }
}
