//! SMTP delivery to a smarthost (`DELIVERY=smtp`, `SMTP_URL`).
//!
//! The transaction is driven command by command on lettre's protocol client rather than through
//! lettre's high-level transport, because that one gives up on the first refused `RCPT TO` and reports
//! nothing per recipient. Here every recipient gets its own reply:
//!
//! - Each `RCPT TO` is answered on its own. Refused recipients are reported `accepted: false` with the
//!   server's reply; the message still goes to the accepted ones.
//! - Nobody accepted: if any refusal was 4xx the send is [`TransportError::Temporary`] (a retry may
//!   succeed for those), otherwise [`TransportError::Permanent`].
//! - Some accepted, some refused with 4xx: the send succeeds; the 4xx recipients are `accepted: false`
//!   and [`super::RecipientOutcome::is_temporary_failure`] is true for them, so the worker can retry just
//!   those later. Retrying the whole message would deliver it twice to the accepted ones.
//! - `MAIL FROM` or `DATA` refused: 4xx → temporary, 5xx → permanent. Connection refused, TLS or
//!   authentication failures and timeouts are temporary: they say nothing about the message, and a
//!   configuration mistake must not fail every queued email at once.
//!
//! Connections are pooled (at most `max_connections`, idle ones closed after `idle_timeout`). A pooled
//! connection that the server has meanwhile closed is detected at `MAIL FROM` and the transaction is
//! replayed once on a fresh connection, so a stale connection never turns into a failure of the message.
//! A connection whose state is unknown (timeout, I/O error mid-command) is never reused.
//!
//! The message goes out byte for byte (dot-stuffing is undone by the server). Bare CR or LF, which SMTP
//! cannot carry and which are the raw material of SMTP smuggling, are normalised to CRLF first.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lettre::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Mutex, Semaphore};

use super::{Envelope, RecipientOutcome, SendOutcome, Transport, TransportError};

/// Default time to open a connection, including TLS, greeting, EHLO and AUTH.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time to wait for the reply to one command.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time to transfer the message and get the final reply to `DATA` (servers scan content there).
pub const DEFAULT_DATA_TIMEOUT: Duration = Duration::from_secs(120);
/// Default cap on simultaneous connections to the smarthost.
pub const DEFAULT_MAX_CONNECTIONS: usize = 8;
/// Idle pooled connections are closed after this long; well under the usual server idle timeouts
/// (Postfix and Exim wait five minutes) so a pooled connection is rarely stale.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages sent over one connection before it is replaced (servers commonly cap this at 100 or so).
pub const MAX_MESSAGES_PER_CONNECTION: u32 = 100;

/// Longest server reply text kept in an outcome or error.
const MAX_REPLY_CHARS: usize = 500;

/// How the connection to the smarthost is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text. Only for a relay on the same machine or a private network.
    None,
    /// Plain connection upgraded with `STARTTLS`, which is required: a server that does not offer it is
    /// an error, never a silent fallback to plain text.
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

impl SmtpTls {
    fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

/// User name and password for `AUTH` (PLAIN or LOGIN, whichever the server offers).
#[derive(Clone)]
pub struct SmtpCredentials {
    pub username: String,
    pub password: SecretString,
}

impl fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpCredentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// Everything the SMTP transport needs; usually from [`SmtpSettings::from_url`].
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub credentials: Option<SmtpCredentials>,
    /// Name sent with `EHLO`; the machine's host name when `None`.
    pub hello_name: Option<String>,
    /// Extra CA certificates (PEM) to trust besides the public roots, for a relay with a private CA.
    pub tls_ca_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SmtpConfigError {
    #[error("SMTP_URL is not a valid URL: {0}")]
    InvalidUrl(String),
    #[error(
        "SMTP_URL must start with smtp:// or smtps:// (got `{0}://`), e.g. smtp://user:pass@host:587?tls=starttls"
    )]
    UnsupportedScheme(String),
    #[error("SMTP_URL has no host")]
    MissingHost,
    #[error("SMTP_URL must not have a path (got `{0}`)")]
    UnexpectedPath(String),
    #[error("SMTP_URL: `{0}` is not a valid value for tls (expected none, starttls or tls)")]
    InvalidTlsMode(String),
    #[error("SMTP_URL: smtps:// always uses implicit TLS; tls={0} contradicts it")]
    ConflictingTls(String),
    #[error("SMTP_URL: `{name}` must be {expected}")]
    InvalidParameter {
        name: &'static str,
        expected: &'static str,
    },
    #[error(
        "SMTP_URL: unknown parameter `{0}` (known: tls, tls_ca_file, connect_timeout, command_timeout, data_timeout, max_connections, idle_timeout, helo)"
    )]
    UnknownParameter(String),
    #[error("SMTP_URL: parameter `{0}` is given twice")]
    DuplicateParameter(String),
    #[error("SMTP_URL: the user name or password is not valid percent-encoded UTF-8")]
    InvalidCredentials,
    #[error("SMTP_URL: a password needs a user name")]
    PasswordWithoutUser,
    #[error("SMTP TLS setup failed: {0}")]
    Tls(String),
    #[error("SMTP_URL: tls_ca_file `{path}` could not be used: {reason}")]
    CaFile { path: String, reason: String },
}

impl SmtpSettings {
    /// Parses `smtp://[user:pass@]host[:port][?tls=none|starttls|tls&…]` or `smtps://…` (= `tls=tls`).
    ///
    /// Defaults: `tls=starttls`; port 587 for starttls, 465 for tls, 25 for none. Optional parameters:
    /// `connect_timeout`, `command_timeout`, `data_timeout`, `idle_timeout` (seconds, 1–3600),
    /// `max_connections` (1–1000), `helo` (the EHLO name), `tls_ca_file` (a PEM file of extra CA
    /// certificates to trust). User name and password are percent-decoded.
    /// Errors never repeat the URL, which may hold the password.
    pub fn from_url(input: &str) -> Result<Self, SmtpConfigError> {
        let url = url::Url::parse(input.trim())
            .map_err(|e| SmtpConfigError::InvalidUrl(e.to_string()))?;
        let implicit_tls = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => return Err(SmtpConfigError::UnsupportedScheme(shorten(other, 20))),
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(SmtpConfigError::MissingHost),
        };
        if !matches!(url.path(), "" | "/") {
            return Err(SmtpConfigError::UnexpectedPath(shorten(url.path(), 40)));
        }

        let mut tls = None;
        let mut settings = SmtpSettings {
            host,
            port: 0,
            tls: SmtpTls::StartTls,
            credentials: None,
            hello_name: None,
            tls_ca_file: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            data_timeout: DEFAULT_DATA_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        };
        let mut seen: Vec<String> = Vec::new();
        for (name, value) in url.query_pairs() {
            if seen.iter().any(|s| *s == name) {
                return Err(SmtpConfigError::DuplicateParameter(shorten(&name, 40)));
            }
            seen.push(name.to_string());
            match name.as_ref() {
                "tls" => {
                    let mode = match value.to_ascii_lowercase().as_str() {
                        "none" => SmtpTls::None,
                        "starttls" => SmtpTls::StartTls,
                        "tls" => SmtpTls::Tls,
                        _ => return Err(SmtpConfigError::InvalidTlsMode(shorten(&value, 20))),
                    };
                    tls = Some(mode);
                }
                "connect_timeout" => settings.connect_timeout = seconds("connect_timeout", &value)?,
                "command_timeout" => settings.command_timeout = seconds("command_timeout", &value)?,
                "data_timeout" => settings.data_timeout = seconds("data_timeout", &value)?,
                "idle_timeout" => settings.idle_timeout = seconds("idle_timeout", &value)?,
                "max_connections" => {
                    settings.max_connections = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or(SmtpConfigError::InvalidParameter {
                            name: "max_connections",
                            expected: "a whole number from 1 to 1000",
                        })?;
                }
                "helo" => {
                    let valid = !value.is_empty()
                        && value.len() <= 253
                        && value
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
                    if !valid {
                        return Err(SmtpConfigError::InvalidParameter {
                            name: "helo",
                            expected: "a host name (letters, digits, `-` and `.`)",
                        });
                    }
                    settings.hello_name = Some(value.to_string());
                }
                "tls_ca_file" if !value.is_empty() => {
                    settings.tls_ca_file = Some(PathBuf::from(value.as_ref()));
                }
                other => return Err(SmtpConfigError::UnknownParameter(shorten(other, 40))),
            }
        }
        settings.tls = match (implicit_tls, tls) {
            (true, None | Some(SmtpTls::Tls)) => SmtpTls::Tls,
            (true, Some(SmtpTls::None)) => {
                return Err(SmtpConfigError::ConflictingTls("none".into()));
            }
            (true, Some(SmtpTls::StartTls)) => {
                return Err(SmtpConfigError::ConflictingTls("starttls".into()));
            }
            (false, mode) => mode.unwrap_or(SmtpTls::StartTls),
        };
        settings.port = url.port().unwrap_or(settings.tls.default_port());

        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| SmtpConfigError::InvalidCredentials)
        };
        let username = decode(url.username())?;
        let password = url.password().map(decode).transpose()?;
        settings.credentials = match (username.is_empty(), password) {
            (true, None) => None,
            (true, Some(_)) => return Err(SmtpConfigError::PasswordWithoutUser),
            (false, password) => Some(SmtpCredentials {
                username,
                password: SecretString::from(password.unwrap_or_default()),
            }),
        };
        Ok(settings)
    }
}

fn seconds(name: &'static str, value: &str) -> Result<Duration, SmtpConfigError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| (1..=3600).contains(n))
        .map(Duration::from_secs)
        .ok_or(SmtpConfigError::InvalidParameter {
            name,
            expected: "a whole number of seconds from 1 to 3600",
        })
}

fn shorten(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Delivers through one smarthost over a small pool of connections. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct SmtpTransport {
    inner: Arc<Inner>,
}

struct Inner {
    settings: SmtpSettings,
    tls_parameters: Option<TlsParameters>,
    hello: ClientId,
    idle: Mutex<Vec<PooledConnection>>,
    /// One permit per send in progress. A send opens a connection only when none is idle, so open
    /// connections (in use plus idle) never exceed the number of permits.
    permits: Arc<Semaphore>,
}

struct PooledConnection {
    connection: AsyncSmtpConnection,
    idle_since: Instant,
    messages_sent: u32,
}

impl fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl SmtpTransport {
    /// Builds the transport; opens no connection yet (the first send does).
    pub fn new(settings: SmtpSettings) -> Result<Self, SmtpConfigError> {
        let tls_parameters = match settings.tls {
            SmtpTls::None => None,
            SmtpTls::StartTls | SmtpTls::Tls => {
                let mut builder = TlsParameters::builder(settings.host.clone());
                if let Some(path) = &settings.tls_ca_file {
                    let ca_error = |reason: String| SmtpConfigError::CaFile {
                        path: path.display().to_string(),
                        reason,
                    };
                    let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
                    // lettre accepts a file without certificates and would then trust nothing extra.
                    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                        return Err(ca_error("no PEM certificate in it".to_owned()));
                    }
                    let certificate =
                        Certificate::from_pem(&pem).map_err(|e| ca_error(e.to_string()))?;
                    builder = builder.add_root_certificate(certificate);
                }
                Some(
                    builder
                        .build_rustls()
                        .map_err(|e| SmtpConfigError::Tls(e.to_string()))?,
                )
            }
        };
        let hello = match &settings.hello_name {
            Some(name) => ClientId::Domain(name.clone()),
            None => ClientId::default(),
        };
        let max_connections = settings.max_connections.max(1);
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                tls_parameters,
                hello,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(max_connections)),
            }),
        })
    }

    /// Parses `SMTP_URL` and builds the transport.
    pub fn from_url(url: &str) -> Result<Self, SmtpConfigError> {
        Self::new(SmtpSettings::from_url(url)?)
    }

    pub fn settings(&self) -> &SmtpSettings {
        &self.inner.settings
    }

    /// Closes idle connections politely (`QUIT`). Connections in use are closed when their send ends.
    pub async fn close_idle(&self) {
        let idle = std::mem::take(&mut *self.inner.idle.lock().await);
        for mut pooled in idle {
            let _ = tokio::time::timeout(
                self.inner.settings.command_timeout,
                pooled.connection.quit(),
            )
            .await;
        }
    }

    async fn take_idle(&self) -> Option<PooledConnection> {
        let mut idle = self.inner.idle.lock().await;
        let idle_timeout = self.inner.settings.idle_timeout;
        // Most recently used first: it is the least likely to have been closed by the server.
        while let Some(pooled) = idle.pop() {
            if pooled.idle_since.elapsed() < idle_timeout {
                return Some(pooled);
            }
            // Expired: dropping closes the socket. No QUIT, to keep the lock short.
        }
        None
    }

    async fn put_idle(&self, mut pooled: PooledConnection) {
        if pooled.messages_sent >= MAX_MESSAGES_PER_CONNECTION {
            let _ = tokio::time::timeout(
                self.inner.settings.command_timeout,
                pooled.connection.quit(),
            )
            .await;
            return;
        }
        pooled.idle_since = Instant::now();
        let mut idle = self.inner.idle.lock().await;
        // Drop what expired while we were sending, so a quiet pool does not keep sockets open.
        let idle_timeout = self.inner.settings.idle_timeout;
        idle.retain(|p| p.idle_since.elapsed() < idle_timeout);
        idle.push(pooled);
    }

    async fn connect(&self) -> Result<PooledConnection, TransportError> {
        let settings = &self.inner.settings;
        let opened = tokio::time::timeout(settings.connect_timeout, self.open()).await;
        match opened {
            Ok(Ok(connection)) => Ok(PooledConnection {
                connection,
                idle_since: Instant::now(),
                messages_sent: 0,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(TransportError::Temporary(format!(
                "smtp: no connection to {}:{} within {} s",
                settings.host,
                settings.port,
                settings.connect_timeout.as_secs()
            ))),
        }
    }

    async fn open(&self) -> Result<AsyncSmtpConnection, TransportError> {
        let settings = &self.inner.settings;
        let server = format!("{}:{}", settings.host, settings.port);
        let implicit = match settings.tls {
            SmtpTls::Tls => self.inner.tls_parameters.clone(),
            SmtpTls::None | SmtpTls::StartTls => None,
        };
        let address = (settings.host.as_str(), settings.port);
        let mut connection = AsyncSmtpConnection::connect_tokio1(
            address,
            Some(settings.connect_timeout),
            &self.inner.hello,
            implicit,
            None,
        )
        .await
        .map_err(|e| {
            TransportError::Temporary(format!("smtp: connecting to {server}: {}", describe(&e)))
        })?;

        if settings.tls == SmtpTls::StartTls {
            if !connection.can_starttls() {
                connection.abort().await;
                return Err(TransportError::Temporary(format!(
                    "smtp: {server} does not offer STARTTLS, which tls=starttls requires"
                )));
            }
            let parameters = self.inner.tls_parameters.clone().ok_or_else(|| {
                TransportError::Temporary("smtp: TLS parameters missing".to_owned())
            })?;
            connection
                .starttls(parameters, &self.inner.hello)
                .await
                .map_err(|e| {
                    TransportError::Temporary(format!(
                        "smtp: STARTTLS with {server}: {}",
                        describe(&e)
                    ))
                })?;
        }

        if let Some(credentials) = &settings.credentials {
            let lettre_credentials = Credentials::new(
                credentials.username.clone(),
                credentials.password.expose_secret().to_owned(),
            );
            if let Err(e) = connection
                .auth(&[Mechanism::Plain, Mechanism::Login], &lettre_credentials)
                .await
            {
                connection.abort().await;
                // Temporary on purpose: a rejected password is the operator's to fix, not the message's fault.
                return Err(TransportError::Temporary(format!(
                    "smtp: authentication as `{}` at {server} failed: {}",
                    credentials.username,
                    describe(&e)
                )));
            }
        }
        Ok(connection)
    }

    /// One attempt over one connection.
    async fn transaction(
        &self,
        pooled: &mut PooledConnection,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<SendOutcome, Failure> {
        let settings = &self.inner.settings;
        let connection = &mut pooled.connection;

        let mut parameters = Vec::new();
        if !message.is_ascii() {
            if !connection
                .server_info()
                .supports_feature(Extension::EightBitMime)
            {
                return Err(Failure {
                    error: TransportError::Permanent(
                        "smtp: the message has 8-bit content and the server does not offer 8BITMIME"
                            .to_owned(),
                    ),
                    stage: Stage::Mail,
                    connection: After::Reusable,
                });
            }
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }

        let from = to_lettre(&envelope.mail_from).map_err(|e| Failure {
            error: TransportError::Permanent(e),
            stage: Stage::Mail,
            connection: After::Reusable,
        })?;
        command(
            connection,
            Mail::new(Some(from), parameters),
            settings.command_timeout,
        )
        .await
        .map_err(|e| e.into_failure(Stage::Mail, "MAIL FROM"))?;

        let mut outcomes = Vec::with_capacity(envelope.recipients.len());
        let mut any_accepted = false;
        for recipient in &envelope.recipients {
            let address = match to_lettre(recipient) {
                Ok(a) => a,
                Err(e) => {
                    outcomes.push(RecipientOutcome {
                        address: recipient.clone(),
                        accepted: false,
                        response: format!("553 {e}"),
                    });
                    continue;
                }
            };
            match command(
                connection,
                Rcpt::new(address, vec![]),
                settings.command_timeout,
            )
            .await
            {
                Ok(reply) => {
                    any_accepted = true;
                    outcomes.push(RecipientOutcome {
                        address: recipient.clone(),
                        accepted: true,
                        response: reply_text(&reply),
                    });
                }
                Err(CommandError::Refused { code, text }) => outcomes.push(RecipientOutcome {
                    address: recipient.clone(),
                    accepted: false,
                    response: format!("{code} {text}").trim_end().to_owned(),
                }),
                Err(other) => return Err(other.into_failure(Stage::Rcpt, "RCPT TO")),
            }
        }

        if !any_accepted {
            let summary = outcomes
                .iter()
                .map(|o| format!("{}: {}", o.address, o.response))
                .collect::<Vec<_>>()
                .join("; ");
            let error = if outcomes.iter().any(RecipientOutcome::is_temporary_failure) {
                TransportError::Temporary(format!("smtp: no recipient accepted ({summary})"))
            } else {
                TransportError::Permanent(format!("smtp: every recipient refused ({summary})"))
            };
            return Err(Failure {
                error,
                stage: Stage::Rcpt,
                connection: After::Reusable,
            });
        }

        command(connection, Data, settings.command_timeout)
            .await
            .map_err(|e| e.into_failure(Stage::Data, "DATA"))?;

        // lettre ends the data with CRLF "." CRLF; a message that already ends in CRLF would get an extra
        // empty line, so its own final CRLF is left for the terminator to supply.
        let body = message.strip_suffix(b"\r\n").unwrap_or(message);
        let reply = match tokio::time::timeout(settings.data_timeout, connection.message(body))
            .await
        {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                return Err(CommandError::from_lettre(e).into_failure(Stage::Data, "end of DATA"));
            }
            Err(_) => {
                return Err(Failure {
                    error: TransportError::Temporary(format!(
                        "smtp: no reply to the end of DATA within {} s (the server may have accepted the message)",
                        settings.data_timeout.as_secs()
                    )),
                    stage: Stage::Data,
                    connection: After::Broken,
                });
            }
        };
        pooled.messages_sent += 1;

        let final_reply = reply_text(&reply);
        for outcome in outcomes.iter_mut().filter(|o| o.accepted) {
            outcome.response = final_reply.clone();
        }
        Ok(SendOutcome {
            provider_message_id: queue_id(&final_reply),
            recipients: outcomes,
        })
    }
}

#[async_trait]
impl Transport for SmtpTransport {
    fn name(&self) -> &'static str {
        "smtp"
    }

    async fn send(
        &self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<SendOutcome, TransportError> {
        if envelope.recipients.is_empty() {
            return Err(TransportError::Permanent("smtp: no recipients".to_owned()));
        }
        let message = normalise_line_endings(message);
        let _permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| TransportError::Temporary("smtp: transport closed".to_owned()))?;

        let (mut pooled, mut reused) = match self.take_idle().await {
            Some(p) => (p, true),
            None => (self.connect().await?, false),
        };
        loop {
            match self.transaction(&mut pooled, envelope, &message).await {
                Ok(outcome) => {
                    self.put_idle(pooled).await;
                    return Ok(outcome);
                }
                Err(failure) => {
                    let stale =
                        reused && failure.stage == Stage::Mail && failure.is_stale_connection();
                    match failure.connection {
                        // A refused command may leave a transaction open; RSET closes it so the next
                        // message starts clean. If even that fails, the connection is not worth keeping.
                        After::Reusable => {
                            match command(
                                &mut pooled.connection,
                                Rset,
                                self.inner.settings.command_timeout,
                            )
                            .await
                            {
                                Ok(_) => self.put_idle(pooled).await,
                                Err(_) => pooled.connection.abort().await,
                            }
                        }
                        After::Broken => pooled.connection.abort().await,
                    }
                    if stale {
                        tracing::debug!(
                            "pooled SMTP connection was closed by the server; reconnecting"
                        );
                        pooled = self.connect().await?;
                        reused = false;
                        continue;
                    }
                    return Err(failure.error);
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Mail,
    Rcpt,
    Data,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    /// The server answered; the connection is in a known state and can serve the next message.
    Reusable,
    /// Timeout or I/O error: the state is unknown, so the connection is closed.
    Broken,
}

struct Failure {
    error: TransportError,
    stage: Stage,
    connection: After,
}

impl Failure {
    /// What a pooled connection the server has closed looks like at `MAIL FROM`: no answer, or `421`
    /// (which is also classified [`After::Broken`]).
    fn is_stale_connection(&self) -> bool {
        self.connection == After::Broken
    }
}

enum CommandError {
    /// The server answered with a 4xx or 5xx reply.
    Refused { code: u16, text: String },
    /// No usable answer: I/O error, malformed reply, or timeout.
    Broken(String),
}

impl CommandError {
    fn from_lettre(error: lettre::transport::smtp::Error) -> Self {
        match error.status() {
            Some(code) => CommandError::Refused {
                code: u16::from(code),
                text: std::error::Error::source(&error)
                    .map(|s| sanitise(&s.to_string()))
                    .unwrap_or_default(),
            },
            None => CommandError::Broken(describe(&error)),
        }
    }

    fn into_failure(self, stage: Stage, what: &str) -> Failure {
        match self {
            CommandError::Refused { code, text } => {
                let message = format!("smtp: {what} refused: {code} {text}")
                    .trim_end()
                    .to_owned();
                let error = if (500..600).contains(&code) {
                    TransportError::Permanent(message)
                } else {
                    TransportError::Temporary(message)
                };
                Failure {
                    error,
                    stage,
                    // After 421 the server closes; any other refusal leaves the session usable after RSET,
                    // which the next MAIL FROM implies.
                    connection: if code == 421 {
                        After::Broken
                    } else {
                        After::Reusable
                    },
                }
            }
            CommandError::Broken(detail) => Failure {
                error: TransportError::Temporary(format!("smtp: {what}: {detail}")),
                stage,
                connection: After::Broken,
            },
        }
    }
}

async fn command<C: fmt::Display>(
    connection: &mut AsyncSmtpConnection,
    command: C,
    timeout: Duration,
) -> Result<Response, CommandError> {
    match tokio::time::timeout(timeout, connection.command(command)).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => Err(CommandError::from_lettre(e)),
        Err(_) => Err(CommandError::Broken(format!(
            "no reply within {} s",
            timeout.as_secs()
        ))),
    }
}

fn to_lettre(address: &opensend_core::EmailAddress) -> Result<Address, String> {
    Address::new(address.local_part(), address.domain())
        .map_err(|e| format!("`{address}` cannot be used in SMTP: {e}"))
}

fn reply_text(reply: &Response) -> String {
    let code = u16::from(reply.code());
    let text = reply.message().collect::<Vec<_>>().join(" ");
    format!("{code} {}", sanitise(&text)).trim_end().to_owned()
}

/// Server replies are untrusted text bound for logs and the database: no control characters, bounded.
fn sanitise(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REPLY_CHARS)
        .collect();
    if text.chars().count() > MAX_REPLY_CHARS {
        out.push('…');
    }
    out
}

/// The full error chain of a lettre error, sanitised (lettre's own Display stops at the first level).
fn describe(error: &lettre::transport::smtp::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
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

/// The queue id in replies like Postfix's `250 2.0.0 Ok: queued as 4C2bX1` or Exim's `250 OK id=1abc-…`.
fn queue_id(reply: &str) -> Option<String> {
    let lower = reply.to_ascii_lowercase();
    let start = if let Some(i) = lower.find("queued as ") {
        i + "queued as ".len()
    } else if let Some(i) = lower.find(" id=") {
        i + " id=".len()
    } else {
        return None;
    };
    let id: String = reply[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '<' | '>'))
        .take(128)
        .collect();
    let id = id.trim_matches(|c| c == '<' || c == '>').to_owned();
    (!id.is_empty()).then_some(id)
}

/// CRLF everywhere: a lone CR or LF becomes CRLF. Borrowed when the message is already clean.
fn normalise_line_endings(message: &[u8]) -> Cow<'_, [u8]> {
    let clean = message.iter().enumerate().all(|(i, &b)| match b {
        b'\r' => message.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && message[i - 1] == b'\r',
        _ => true,
    });
    if clean {
        return Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut i = 0;
    while i < message.len() {
        match message[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if message.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_url() {
        let s = SmtpSettings::from_url("smtp://user%40x:p%40ss@mail.example.com:2525?tls=none")
            .unwrap();
        assert_eq!(s.host, "mail.example.com");
        assert_eq!(s.port, 2525);
        assert_eq!(s.tls, SmtpTls::None);
        let c = s.credentials.unwrap();
        assert_eq!(c.username, "user@x");
        assert_eq!(c.password.expose_secret(), "p@ss");
    }

    #[test]
    fn defaults_follow_tls_mode() {
        let s = SmtpSettings::from_url("smtp://relay.example.com").unwrap();
        assert_eq!((s.tls, s.port), (SmtpTls::StartTls, 587));
        assert!(s.credentials.is_none());
        assert_eq!(s.command_timeout, DEFAULT_COMMAND_TIMEOUT);
        let s = SmtpSettings::from_url("smtp://relay.example.com?tls=tls").unwrap();
        assert_eq!((s.tls, s.port), (SmtpTls::Tls, 465));
        let s = SmtpSettings::from_url("smtp://relay.example.com?tls=none").unwrap();
        assert_eq!((s.tls, s.port), (SmtpTls::None, 25));
        let s = SmtpSettings::from_url("smtps://relay.example.com").unwrap();
        assert_eq!((s.tls, s.port), (SmtpTls::Tls, 465));
        let s = SmtpSettings::from_url("smtp://[::1]:25?tls=none").unwrap();
        assert_eq!(s.host, "::1");
    }

    #[test]
    fn parses_tuning_parameters() {
        let s = SmtpSettings::from_url(
            "smtp://h.example?connect_timeout=5&command_timeout=7&data_timeout=60&max_connections=3&idle_timeout=9&helo=mx.example.org",
        )
        .unwrap();
        assert_eq!(s.connect_timeout, Duration::from_secs(5));
        assert_eq!(s.command_timeout, Duration::from_secs(7));
        assert_eq!(s.data_timeout, Duration::from_secs(60));
        assert_eq!(s.idle_timeout, Duration::from_secs(9));
        assert_eq!(s.max_connections, 3);
        assert_eq!(s.hello_name.as_deref(), Some("mx.example.org"));
    }

    #[test]
    fn rejects_bad_urls_without_echoing_the_password() {
        let cases = [
            (
                "http://u:hunter2@h",
                SmtpConfigError::UnsupportedScheme("http".into()),
            ),
            (
                "smtp://u:hunter2@h?tls=ssl",
                SmtpConfigError::InvalidTlsMode("ssl".into()),
            ),
            (
                "smtps://u:hunter2@h?tls=none",
                SmtpConfigError::ConflictingTls("none".into()),
            ),
            (
                "smtp://u:hunter2@h?foo=1",
                SmtpConfigError::UnknownParameter("foo".into()),
            ),
            (
                "smtp://u:hunter2@h?tls=none&tls=tls",
                SmtpConfigError::DuplicateParameter("tls".into()),
            ),
            (
                "smtp://u:hunter2@h/x",
                SmtpConfigError::UnexpectedPath("/x".into()),
            ),
            ("smtp://:hunter2@h", SmtpConfigError::PasswordWithoutUser),
        ];
        for (url, expected) in cases {
            let err = SmtpSettings::from_url(url).unwrap_err();
            assert_eq!(err, expected, "{url}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        for url in [
            "not a url",
            "smtp://h?command_timeout=0",
            "smtp://h?max_connections=x",
            "smtp://h?helo=a%20b",
        ] {
            assert!(SmtpSettings::from_url(url).is_err(), "{url}");
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let s = SmtpSettings::from_url("smtp://user:hunter2@h.example").unwrap();
        let shown = format!("{s:?}");
        assert!(shown.contains("user"));
        assert!(!shown.contains("hunter2"), "{shown}");
        let t = SmtpTransport::new(s).unwrap();
        assert!(!format!("{t:?}").contains("hunter2"));
    }

    #[test]
    fn line_endings_are_normalised_only_when_needed() {
        assert!(matches!(
            normalise_line_endings(b"a\r\nb\r\n"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            &*normalise_line_endings(b"a\nb\rc\r\n\n"),
            b"a\r\nb\r\nc\r\n\r\n"
        );
        assert_eq!(&*normalise_line_endings(b"\n.\n"), b"\r\n.\r\n");
    }

    #[test]
    fn finds_queue_ids() {
        assert_eq!(
            queue_id("250 2.0.0 Ok: queued as 4C2bX1").as_deref(),
            Some("4C2bX1")
        );
        assert_eq!(
            queue_id("250 OK id=1abc-0001-AB").as_deref(),
            Some("1abc-0001-AB")
        );
        assert_eq!(queue_id("250 OK"), None);
        assert_eq!(queue_id("250 queued as "), None);
    }

    #[test]
    fn sanitises_untrusted_replies() {
        assert_eq!(sanitise("a\r\nb\0c"), "a  b c");
        let long = "x".repeat(2000);
        assert_eq!(sanitise(&long).chars().count(), MAX_REPLY_CHARS + 1);
    }
}
