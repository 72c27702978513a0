//! One SMTP connection: the conversation as a state machine over any byte stream, with the line, size and
//! time limits of `smtp/mod.rs`. Every problem a client causes is answered with a reply; a connection is
//! only dropped without one when the client itself is gone.
//!
//! Replies are written when the client has nothing more buffered (PIPELINING: a client may send several
//! commands at once and read the replies together), and always before waiting for the client.
//!
//! After `STARTTLS` the session starts over (RFC 3207 §4.2): anything the client sent after the command
//! and before the handshake is discarded, and it must say EHLO again.

use std::net::SocketAddr;

use opensend_core::{EmailAddress, ErrorCode};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use super::command::{self, Command, CommandError};
use super::reply::Reply;
use super::{
    DATA_TIMEOUT, IDLE_TIMEOUT, MAX_AUTH_LINE, MAX_COMMAND_LINE, MAX_DATA_LINE, MAX_ERRORS,
    MAX_MESSAGE_BYTES, MAX_RECIPIENTS, SUBMIT_TIMEOUT, TLS_HANDSHAKE_TIMEOUT,
};
use super::{auth, inbound, submission};
use crate::state::AppState;

/// What a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The submission relay: AUTH required (and offered only over TLS), any recipient.
    Submission,
    /// Inbound mail: no AUTH, recipients only at domains an organization receives for.
    Inbound,
}

/// How a connection starts.
#[derive(Clone)]
pub struct Listener {
    pub state: AppState,
    pub mode: Mode,
    /// For STARTTLS, or for the handshake of an implicit-TLS port.
    pub tls: Option<TlsAcceptor>,
    pub implicit_tls: bool,
    /// The name in the greeting and the EHLO reply.
    pub hostname: String,
}

/// Serves one accepted connection to its end.
pub async fn serve(
    listener: Listener,
    stream: TcpStream,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
) {
    let mut session = Session::new(&listener, peer, stop);
    if listener.implicit_tls {
        let Some(acceptor) = listener.tls.clone() else {
            return;
        };
        if let Ok(Ok(tls)) = timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            session.secure = true;
            session.converse(tls, true).await;
        }
        return;
    }
    let Some(stream) = session.converse(stream, true).await else {
        return;
    };
    let Some(acceptor) = listener.tls.clone() else {
        return;
    };
    if let Ok(Ok(tls)) = timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        session.restart_secure();
        session.converse(tls, false).await;
    }
}

struct Session<'a> {
    listener: &'a Listener,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
    secure: bool,
    greeted: bool,
    /// The API key of a successful AUTH, looked up again (through the key cache) for every message so a
    /// key revoked during a long session stops sending as it would over the API.
    key: Option<SecretString>,
    /// Set by MAIL: a transaction is open.
    sender: Option<String>,
    recipients: Vec<EmailAddress>,
    errors: u32,
    out: Vec<u8>,
}

/// What the conversation does after a command.
enum Next {
    Continue,
    Close,
    StartTls,
}

/// One line read, bounded.
enum Line {
    /// The line with its line ending.
    Complete,
    /// Longer than allowed; the whole line was read and thrown away.
    TooLong,
    /// The client closed the connection (or sent an unterminated last line).
    Closed,
}

/// How the message of a `DATA` came in.
enum Message {
    Complete(Vec<u8>),
    TooLarge,
    LineTooLong,
}

impl<'a> Session<'a> {
    fn new(listener: &'a Listener, peer: SocketAddr, stop: watch::Receiver<bool>) -> Self {
        Self {
            listener,
            peer,
            stop,
            secure: false,
            greeted: false,
            key: None,
            sender: None,
            recipients: Vec::new(),
            errors: 0,
            out: Vec::new(),
        }
    }

    /// After the TLS handshake of STARTTLS: everything learnt before is forgotten.
    fn restart_secure(&mut self) {
        self.secure = true;
        self.greeted = false;
        self.key = None;
        self.reset_transaction();
        self.out.clear();
    }

    fn reset_transaction(&mut self) {
        self.sender = None;
        self.recipients.clear();
    }

    fn reply(&mut self, reply: Reply) {
        reply.render(&mut self.out);
    }

    /// Talks over `stream` until the client quits, goes, or asks for STARTTLS (then the stream is handed
    /// back, with nothing of what the client sent after the command).
    async fn converse<S>(&mut self, stream: S, greet: bool) -> Option<S>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut io = BufReader::new(stream);
        if greet {
            self.reply(Reply::plain(
                220,
                format!("{} ESMTP OpenSend", self.listener.hostname),
            ));
        }
        let mut line = Vec::with_capacity(MAX_COMMAND_LINE);
        loop {
            if !io.buffer().contains(&b'\n') && self.flush(&mut io).await.is_err() {
                return None;
            }
            let mut stop = self.stop.clone();
            let read = tokio::select! {
                read = timeout(IDLE_TIMEOUT, read_line(&mut io, MAX_COMMAND_LINE, &mut line)) => Some(read),
                _ = stop.wait_for(|stop| *stop) => None,
            };
            let Some(read) = read else {
                self.reply(Reply::new(
                    421,
                    "4.3.2",
                    "Service shutting down; try again later.",
                ));
                let _ = self.flush(&mut io).await;
                return None;
            };
            let next = match read {
                Err(_) => {
                    self.reply(Reply::new(421, "4.4.2", "Idle for too long; closing."));
                    Next::Close
                }
                Ok(Err(_)) | Ok(Ok(Line::Closed)) => return None,
                Ok(Ok(Line::TooLong)) => self.refuse(Reply::new(
                    500,
                    "5.5.2",
                    format!("Command line longer than {MAX_COMMAND_LINE} octets."),
                )),
                Ok(Ok(Line::Complete)) => match command::parse(&line) {
                    Ok(command) => self.command(command, &mut io).await,
                    Err(CommandError::Unknown) => {
                        self.refuse(Reply::new(500, "5.5.1", "Command not recognized."))
                    }
                    Err(CommandError::Syntax(what)) => {
                        self.refuse(Reply::new(501, "5.5.4", format!("Syntax error: {what}.")))
                    }
                    Err(CommandError::Parameter(what)) => {
                        self.refuse(Reply::new(555, "5.5.4", format!("{what}.")))
                    }
                },
            };
            match next {
                Next::Continue => {}
                Next::Close => {
                    let _ = self.flush(&mut io).await;
                    return None;
                }
                Next::StartTls => {
                    if self.flush(&mut io).await.is_err() {
                        return None;
                    }
                    // `into_inner` drops whatever the client sent after STARTTLS (RFC 3207 §4.2).
                    return Some(io.into_inner());
                }
            }
        }
    }

    /// A refused command; too many of them close the session.
    fn refuse(&mut self, reply: Reply) -> Next {
        self.reply(reply);
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            self.reply(Reply::new(421, "4.7.0", "Too many errors; closing."));
            return Next::Close;
        }
        Next::Continue
    }

    async fn flush<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut BufReader<S>,
    ) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let stream = io.get_mut();
        let written = timeout(IDLE_TIMEOUT, async {
            stream.write_all(&self.out).await?;
            stream.flush().await
        })
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
        self.out.clear();
        written
    }

    async fn command<S>(&mut self, command: Command, io: &mut BufReader<S>) -> Next
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let submission = self.listener.mode == Mode::Submission;
        match command {
            Command::Ehlo(client) => {
                self.reset_transaction();
                self.greeted = true;
                let mut lines = vec![
                    format!("{} greets {client}", self.listener.hostname),
                    "PIPELINING".to_owned(),
                    format!("SIZE {MAX_MESSAGE_BYTES}"),
                    "8BITMIME".to_owned(),
                    "SMTPUTF8".to_owned(),
                    "ENHANCEDSTATUSCODES".to_owned(),
                ];
                if !self.secure && self.listener.tls.is_some() {
                    lines.push("STARTTLS".to_owned());
                }
                if self.secure && submission {
                    lines.push("AUTH PLAIN LOGIN".to_owned());
                }
                self.reply(Reply::multiline(250, lines));
                Next::Continue
            }
            Command::Helo(_) => {
                self.reset_transaction();
                self.greeted = true;
                self.reply(Reply::plain(250, &self.listener.hostname));
                Next::Continue
            }
            Command::StartTls if self.secure => {
                self.refuse(Reply::new(503, "5.5.1", "TLS is already active."))
            }
            Command::StartTls if self.listener.tls.is_none() || self.listener.implicit_tls => {
                self.refuse(Reply::new(502, "5.5.1", "STARTTLS is not available here."))
            }
            Command::StartTls => {
                self.reply(Reply::new(220, "2.0.0", "Ready to start TLS."));
                Next::StartTls
            }
            Command::Auth { .. } if !submission => {
                self.refuse(Reply::new(502, "5.5.1", "AUTH is not available here."))
            }
            Command::Auth { .. } if !self.greeted => {
                self.refuse(Reply::new(503, "5.5.1", "Send EHLO first."))
            }
            Command::Auth { .. } if !self.secure => self.refuse(Reply::new(
                538,
                "5.7.11",
                "Encryption required: use STARTTLS first.",
            )),
            Command::Auth { .. } if self.key.is_some() => {
                self.refuse(Reply::new(503, "5.5.1", "Already authenticated."))
            }
            Command::Auth { .. } if self.sender.is_some() => self.refuse(Reply::new(
                503,
                "5.5.1",
                "AUTH is not allowed during a transaction.",
            )),
            Command::Auth { mechanism, initial } => self.auth(&mechanism, initial, io).await,
            Command::Mail { .. } if !self.greeted => {
                self.refuse(Reply::new(503, "5.5.1", "Send EHLO first."))
            }
            Command::Mail { .. } if submission && self.key.is_none() => self.refuse(Reply::new(
                530,
                "5.7.0",
                "Authentication required: AUTH with user `resend` and an API key as the password.",
            )),
            Command::Mail { .. } if self.sender.is_some() => self.refuse(Reply::new(
                503,
                "5.5.1",
                "A transaction is already open; RSET first.",
            )),
            Command::Mail {
                size: Some(size), ..
            } if size > u64::try_from(MAX_MESSAGE_BYTES).unwrap_or(u64::MAX) => {
                self.refuse(Reply::new(
                    552,
                    "5.3.4",
                    format!("Messages may be at most {MAX_MESSAGE_BYTES} octets."),
                ))
            }
            Command::Mail { from, .. } => {
                self.sender = Some(from);
                self.reply(Reply::new(250, "2.1.0", "Sender OK."));
                Next::Continue
            }
            Command::Rcpt { .. } if self.sender.is_none() => {
                self.refuse(Reply::new(503, "5.5.1", "Send MAIL first."))
            }
            Command::Rcpt { to } => self.recipient(&to).await,
            Command::Data if self.sender.is_none() => {
                self.refuse(Reply::new(503, "5.5.1", "Send MAIL first."))
            }
            Command::Data if self.recipients.is_empty() => {
                self.refuse(Reply::new(554, "5.5.1", "No valid recipients."))
            }
            Command::Data => self.data(io).await,
            Command::Bdat => {
                self.refuse(Reply::new(502, "5.5.1", "BDAT is not supported; use DATA."))
            }
            Command::Rset => {
                self.reset_transaction();
                self.reply(Reply::new(250, "2.0.0", "OK."));
                Next::Continue
            }
            Command::Noop => {
                self.reply(Reply::new(250, "2.0.0", "OK."));
                Next::Continue
            }
            Command::Quit => {
                self.reply(Reply::new(221, "2.0.0", "Bye."));
                Next::Close
            }
            Command::Vrfy => {
                self.reply(Reply::new(
                    252,
                    "2.5.0",
                    "Cannot VRFY; send the message and see.",
                ));
                Next::Continue
            }
            Command::Expn => self.refuse(Reply::new(502, "5.5.1", "EXPN is not supported.")),
            Command::Help => {
                self.reply(Reply::new(214, "2.0.0", "See docs/smtp.md of OpenSend."));
                Next::Continue
            }
        }
    }

    async fn recipient(&mut self, to: &str) -> Next {
        let Ok(address) = EmailAddress::parse(to) else {
            return self.refuse(Reply::new(501, "5.1.3", "Bad recipient address syntax."));
        };
        if self.recipients.contains(&address) {
            self.reply(Reply::new(250, "2.1.5", "Recipient OK."));
            return Next::Continue;
        }
        if self.recipients.len() >= MAX_RECIPIENTS {
            self.reply(Reply::new(
                452,
                "4.5.3",
                format!(
                    "At most {MAX_RECIPIENTS} recipients per message; send the rest in another."
                ),
            ));
            return Next::Continue;
        }
        if self.listener.mode == Mode::Inbound {
            match inbound::accepts(&self.listener.state, &address).await {
                Ok(true) => {}
                Ok(false) => {
                    return self.refuse(Reply::new(
                        550,
                        "5.7.1",
                        "Relay denied: no mailbox here for this address.",
                    ));
                }
                Err(_) => {
                    self.reply(Reply::new(451, "4.3.0", "Temporary failure; try again."));
                    return Next::Continue;
                }
            }
        }
        self.recipients.push(address);
        self.reply(Reply::new(250, "2.1.5", "Recipient OK."));
        Next::Continue
    }

    async fn data<S>(&mut self, io: &mut BufReader<S>) -> Next
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.reply(Reply::plain(354, "End data with <CR><LF>.<CR><LF>"));
        if self.flush(io).await.is_err() {
            return Next::Close;
        }
        let message = match timeout(DATA_TIMEOUT, read_message(io)).await {
            Err(_) => {
                self.reply(Reply::new(
                    421,
                    "4.4.2",
                    "The message took too long; closing.",
                ));
                return Next::Close;
            }
            // The client went away before the final dot: nothing was accepted.
            Ok(None) => return Next::Close,
            Ok(Some(message)) => message,
        };
        let recipients = std::mem::take(&mut self.recipients);
        self.reset_transaction();
        let raw = match message {
            Message::TooLarge => {
                self.reply(Reply::new(
                    552,
                    "5.3.4",
                    format!("Messages may be at most {MAX_MESSAGE_BYTES} octets."),
                ));
                return Next::Continue;
            }
            Message::LineTooLong => {
                self.reply(Reply::new(
                    554,
                    "5.6.0",
                    format!("A line of the message is longer than {MAX_DATA_LINE} octets."),
                ));
                return Next::Continue;
            }
            Message::Complete(raw) => raw,
        };
        let state = &self.listener.state;
        let work = async {
            match (&self.listener.mode, &self.key) {
                (Mode::Submission, Some(key)) => {
                    match crate::auth::context_for_token(state, key.expose_secret()).await {
                        Ok(caller) => submission::submit(state, &caller, &recipients, &raw).await,
                        Err(e) if e.code() == ErrorCode::InvalidApiKey => {
                            Reply::new(535, "5.7.8", "The API key is no longer valid.")
                        }
                        Err(_) => Reply::new(451, "4.3.0", "Temporary failure; try again."),
                    }
                }
                (Mode::Submission, None) => Reply::new(530, "5.7.0", "Authentication required."),
                (Mode::Inbound, _) => inbound::deliver(state, &recipients, &raw).await,
            }
        };
        let reply = timeout(SUBMIT_TIMEOUT, work).await.unwrap_or_else(|_| {
            Reply::new(
                451,
                "4.3.0",
                "Accepting the message took too long; try again.",
            )
        });
        tracing::info!(
            peer = %self.peer,
            mode = ?self.listener.mode,
            recipients = recipients.len(),
            size = raw.len(),
            code = reply.code,
            "SMTP message"
        );
        self.reply(reply);
        Next::Continue
    }

    async fn auth<S>(
        &mut self,
        mechanism: &str,
        initial: Option<String>,
        io: &mut BufReader<S>,
    ) -> Next
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let credentials = match mechanism {
            "PLAIN" => {
                let message = match initial {
                    Some(text) => Some(text),
                    None => self.challenge("", io).await,
                };
                let Some(message) = message else {
                    return Next::Close;
                };
                match self.decoded(&message) {
                    Ok(bytes) => auth::plain(&bytes),
                    Err(next) => return next,
                }
            }
            "LOGIN" => {
                let user = match initial {
                    Some(text) => Some(text),
                    None => self.challenge(auth::LOGIN_USER_PROMPT, io).await,
                };
                let Some(user) = user else {
                    return Next::Close;
                };
                let user = match self.decoded(&user) {
                    Ok(bytes) => bytes,
                    Err(next) => return next,
                };
                let Some(password) = self.challenge(auth::LOGIN_PASSWORD_PROMPT, io).await else {
                    return Next::Close;
                };
                let password = match self.decoded(&password) {
                    Ok(bytes) => bytes,
                    Err(next) => return next,
                };
                match (String::from_utf8(user), String::from_utf8(password)) {
                    (Ok(user), Ok(password)) => Some(auth::Credentials {
                        user,
                        password: password.into(),
                    }),
                    _ => None,
                }
            }
            _ => {
                return self.refuse(Reply::new(
                    504,
                    "5.5.4",
                    "Unsupported mechanism: use PLAIN or LOGIN.",
                ));
            }
        };
        let Some(credentials) = credentials else {
            return self.refuse(Reply::new(501, "5.5.2", "Malformed credentials."));
        };
        match auth::verify(&self.listener.state, self.peer.ip(), &credentials).await {
            auth::Verdict::Accepted => {
                self.key = Some(credentials.password);
                self.reply(Reply::new(235, "2.7.0", "Authentication successful."));
                Next::Continue
            }
            auth::Verdict::Refused => self.refuse(Reply::new(
                535,
                "5.7.8",
                "Authentication credentials invalid: user `resend`, password an API key.",
            )),
            auth::Verdict::Throttled(seconds) => self.refuse(Reply::new(
                454,
                "4.7.0",
                format!(
                    "Too many failed authentications from this address; try again in {seconds} s."
                ),
            )),
            auth::Verdict::Unavailable => {
                self.reply(Reply::new(
                    454,
                    "4.7.0",
                    "Temporary authentication failure.",
                ));
                Next::Continue
            }
        }
    }

    /// Base64 of a SASL message, or the reply that refuses it (`*` cancels, RFC 4954 §4).
    fn decoded(&mut self, text: &str) -> Result<Vec<u8>, Next> {
        if text.trim() == "*" {
            return Err(self.refuse(Reply::new(501, "5.7.0", "Authentication canceled.")));
        }
        auth::decode(text).ok_or_else(|| self.refuse(Reply::new(501, "5.5.2", "Invalid base64.")))
    }

    /// Sends a `334` prompt and reads the client's answer; `None` when the client is gone or silent.
    async fn challenge<S>(&mut self, prompt: &str, io: &mut BufReader<S>) -> Option<String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.reply(Reply::plain(334, prompt));
        self.flush(io).await.ok()?;
        let mut line = Vec::new();
        match timeout(IDLE_TIMEOUT, read_line(io, MAX_AUTH_LINE, &mut line)).await {
            Ok(Ok(Line::Complete)) => Some(
                String::from_utf8_lossy(&line)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
            ),
            // An over-long answer is no valid credential; `*` gets it refused without a lookup.
            Ok(Ok(Line::TooLong)) => Some("*".to_owned()),
            _ => None,
        }
    }
}

/// Reads one line of at most `max` octets (with its line ending) into `line`.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    line: &mut Vec<u8>,
) -> std::io::Result<Line> {
    line.clear();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Line::Closed);
        }
        let (chunk, complete) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..=end], true),
            None => (available, false),
        };
        let used = chunk.len();
        if !too_long {
            if line.len() + chunk.len() > max {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        reader.consume(used);
        if complete {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

/// Reads a message up to the line with a single dot, undoing dot-stuffing. Past the size or line limit the
/// rest is still read (and thrown away) so the client's next command is found; `None` if the client leaves.
async fn read_message<R: AsyncBufRead + Unpin>(reader: &mut R) -> Option<Message> {
    let mut message = Vec::new();
    let mut line = Vec::with_capacity(1024);
    let (mut too_large, mut too_long) = (false, false);
    loop {
        match read_line(reader, MAX_DATA_LINE, &mut line).await.ok()? {
            Line::Closed => return None,
            Line::TooLong => {
                too_long = true;
                message = Vec::new();
            }
            Line::Complete => {
                if line == b".\r\n" || line == b".\n" {
                    break;
                }
                let content = line.strip_prefix(b".").unwrap_or(&line);
                if too_large || too_long {
                    continue;
                }
                if message.len() + content.len() > MAX_MESSAGE_BYTES {
                    too_large = true;
                    message = Vec::new();
                } else {
                    message.extend_from_slice(content);
                }
            }
        }
    }
    Some(if too_large {
        Message::TooLarge
    } else if too_long {
        Message::LineTooLong
    } else {
        Message::Complete(message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_bounded_and_messages_unstuffed() {
        let mut input: &[u8] = b"short\r\nthis one is too long\r\nok\n";
        let mut line = Vec::new();
        assert!(matches!(
            read_line(&mut input, 10, &mut line).await.unwrap(),
            Line::Complete
        ));
        assert_eq!(line, b"short\r\n");
        assert!(matches!(
            read_line(&mut input, 10, &mut line).await.unwrap(),
            Line::TooLong
        ));
        assert!(matches!(
            read_line(&mut input, 10, &mut line).await.unwrap(),
            Line::Complete
        ));
        assert_eq!(line, b"ok\n");
        assert!(matches!(
            read_line(&mut input, 10, &mut line).await.unwrap(),
            Line::Closed
        ));

        let mut input: &[u8] = b"Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n";
        match read_message(&mut input).await {
            Some(Message::Complete(m)) => assert_eq!(m, b"Subject: x\r\n\r\n.dot\r\n"),
            _ => panic!("a complete message"),
        }
        assert_eq!(input, b"QUIT\r\n");
        let mut input: &[u8] = b"Subject: x\r\n";
        assert!(read_message(&mut input).await.is_none());
    }
}
