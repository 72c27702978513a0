//! What the SMTP transport is configured with, and how `SMTP_URL` spells it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

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

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

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
    }
}
