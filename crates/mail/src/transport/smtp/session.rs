//! One SMTP conversation with the smarthost: opening it (TLS, `EHLO`, `AUTH`), one mail transaction command
//! by command, the replies, and what each failure means for the message and for the connection.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use lettre::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use secrecy::ExposeSecret;

use super::settings::{SmtpConfigError, SmtpSettings, SmtpTls};
use crate::transport::{Envelope, RecipientOutcome, SendOutcome, TransportError};

/// Longest server reply text kept in an outcome or error.
const MAX_REPLY_CHARS: usize = 500;

/// The smarthost as configured, with what is derived from the settings once (TLS parameters, `EHLO` name).
pub(super) struct Smarthost {
    pub(super) settings: SmtpSettings,
    tls_parameters: Option<TlsParameters>,
    hello: ClientId,
}

impl Smarthost {
    /// Reads the extra CA file, if any, and prepares TLS. Opens no connection.
    pub(super) fn new(settings: SmtpSettings) -> Result<Self, SmtpConfigError> {
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
        Ok(Self {
            settings,
            tls_parameters,
            hello,
        })
    }

    /// A new session, ready for a transaction, within the connect timeout.
    pub(super) async fn open(&self) -> Result<AsyncSmtpConnection, TransportError> {
        let settings = &self.settings;
        match tokio::time::timeout(settings.connect_timeout, self.greet()).await {
            Ok(opened) => opened,
            Err(_) => Err(TransportError::Temporary(format!(
                "smtp: no connection to {}:{} within {} s",
                settings.host,
                settings.port,
                settings.connect_timeout.as_secs()
            ))),
        }
    }

    async fn greet(&self) -> Result<AsyncSmtpConnection, TransportError> {
        let settings = &self.settings;
        let server = format!("{}:{}", settings.host, settings.port);
        let implicit = match settings.tls {
            SmtpTls::Tls => self.tls_parameters.clone(),
            SmtpTls::None | SmtpTls::StartTls => None,
        };
        let address = (settings.host.as_str(), settings.port);
        let mut connection = AsyncSmtpConnection::connect_tokio1(
            address,
            Some(settings.connect_timeout),
            &self.hello,
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
            let parameters = self.tls_parameters.clone().ok_or_else(|| {
                TransportError::Temporary("smtp: TLS parameters missing".to_owned())
            })?;
            connection
                .starttls(parameters, &self.hello)
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
    pub(super) async fn transaction(
        &self,
        connection: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<SendOutcome, Failure> {
        let settings = &self.settings;

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
                        provider_message_id: None,
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
                        // Known once the server has taken the message (end of DATA).
                        provider_message_id: None,
                    });
                }
                Err(CommandError::Refused { code, text }) => outcomes.push(RecipientOutcome {
                    address: recipient.clone(),
                    accepted: false,
                    response: format!("{code} {text}").trim_end().to_owned(),
                    provider_message_id: None,
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

        let final_reply = reply_text(&reply);
        let provider_message_id = queue_id(&final_reply);
        for outcome in outcomes.iter_mut().filter(|o| o.accepted) {
            outcome.response = final_reply.clone();
            outcome.provider_message_id = provider_message_id.clone();
        }
        Ok(SendOutcome {
            provider_message_id,
            recipients: outcomes,
        })
    }

    /// Ends whatever transaction a refused command may have left open (`RSET`), so the next message starts
    /// clean. False when even that fails: the connection is then not worth keeping.
    pub(super) async fn reset(&self, connection: &mut AsyncSmtpConnection) -> bool {
        command(connection, Rset, self.settings.command_timeout)
            .await
            .is_ok()
    }
}

/// Where in the transaction a failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Mail,
    Rcpt,
    Data,
}

/// What a failure leaves of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum After {
    /// The server answered; the connection is in a known state and can serve the next message.
    Reusable,
    /// Timeout or I/O error: the state is unknown, so the connection is closed.
    Broken,
}

/// A transaction that did not deliver: the error for the message, and the state of the connection.
pub(super) struct Failure {
    pub(super) error: TransportError,
    stage: Stage,
    pub(super) connection: After,
}

impl Failure {
    /// What a pooled connection the server has closed looks like: no answer at `MAIL FROM`, or `421`
    /// (which is also classified [`After::Broken`]). Nothing of the message was sent yet, so it can be
    /// replayed on a fresh connection.
    pub(super) fn is_stale_connection(&self) -> bool {
        self.stage == Stage::Mail && self.connection == After::Broken
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
pub(super) fn normalise_line_endings(message: &[u8]) -> Cow<'_, [u8]> {
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
