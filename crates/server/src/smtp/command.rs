//! Reading one SMTP command line (without its line ending) into a [`Command`].
//!
//! Hand-written for the few commands a submission server and an MX need (RFC 5321, 3207, 4954, 6531,
//! 1870, 6152). Any bytes give a command or a [`CommandError`] the session answers; nothing here panics
//! (slicing only at positions of ASCII characters, checked by the tests over arbitrary bytes).

/// A command, as far as its syntax goes (what is allowed when is the session's business).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    /// `MAIL FROM:<address>` with its `SIZE=` parameter if given; `address` is empty for the null sender.
    Mail {
        from: String,
        size: Option<u64>,
    },
    Rcpt {
        to: String,
    },
    Data,
    /// `BDAT` (CHUNKING), which is not offered.
    Bdat,
    Rset,
    Noop,
    Quit,
    StartTls,
    /// `AUTH mechanism [initial-response]`; the mechanism upper-cased.
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
    Vrfy,
    Expn,
    Help,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// `500 5.5.1`.
    Unknown,
    /// `501 5.5.4` with what is wrong.
    Syntax(&'static str),
    /// `555 5.5.4`: a MAIL or RCPT parameter that is not supported.
    Parameter(String),
}

pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
    let line = std::str::from_utf8(line).map_err(|_| CommandError::Syntax("not UTF-8"))?;
    let line = line.trim_end_matches(['\r', '\n']);
    let (verb, rest) = match line.find(' ') {
        Some(space) => (&line[..space], &line[space + 1..]),
        None => (line, ""),
    };
    let no_argument = |command: Command| match rest.trim().is_empty() {
        true => Ok(command),
        false => Err(CommandError::Syntax("this command takes no argument")),
    };
    match verb.to_ascii_uppercase().as_str() {
        "EHLO" | "HELO" => {
            let host = rest.trim();
            if host.is_empty() || host.contains(char::is_whitespace) {
                return Err(CommandError::Syntax("EHLO and HELO need one domain name"));
            }
            Ok(match verb.eq_ignore_ascii_case("EHLO") {
                true => Command::Ehlo(host.to_owned()),
                false => Command::Helo(host.to_owned()),
            })
        }
        "MAIL" => {
            let rest = strip_prefix_ignore_case(rest, "FROM:")
                .ok_or(CommandError::Syntax("expected MAIL FROM:<address>"))?;
            let (from, params) = path_and_params(rest)?;
            let mut size = None;
            for param in params {
                let (name, value) = param.split_once('=').unwrap_or((param, ""));
                match name.to_ascii_uppercase().as_str() {
                    "SIZE" => {
                        size = Some(value.parse::<u64>().map_err(|_| {
                            CommandError::Parameter("SIZE must be a number of octets".into())
                        })?);
                    }
                    "BODY"
                        if ["7BIT", "8BITMIME"]
                            .iter()
                            .any(|b| value.eq_ignore_ascii_case(b)) => {}
                    "SMTPUTF8" if value.is_empty() => {}
                    // RFC 4954 §5: the identity a relay vouches for; nothing here uses it.
                    "AUTH" => {}
                    _ => {
                        return Err(CommandError::Parameter(format!(
                            "MAIL parameter {} is not supported",
                            truncated(param)
                        )));
                    }
                }
            }
            Ok(Command::Mail { from, size })
        }
        "RCPT" => {
            let rest = strip_prefix_ignore_case(rest, "TO:")
                .ok_or(CommandError::Syntax("expected RCPT TO:<address>"))?;
            let (to, params) = path_and_params(rest)?;
            if let Some(param) = params.first() {
                return Err(CommandError::Parameter(format!(
                    "RCPT parameter {} is not supported",
                    truncated(param)
                )));
            }
            if to.is_empty() {
                return Err(CommandError::Syntax("a recipient address is required"));
            }
            Ok(Command::Rcpt { to })
        }
        "DATA" => no_argument(Command::Data),
        "BDAT" => Ok(Command::Bdat),
        "RSET" => no_argument(Command::Rset),
        "NOOP" => Ok(Command::Noop),
        "QUIT" => no_argument(Command::Quit),
        "STARTTLS" => no_argument(Command::StartTls),
        "AUTH" => {
            let mut words = rest.split_ascii_whitespace();
            let mechanism = words
                .next()
                .ok_or(CommandError::Syntax("expected AUTH mechanism"))?
                .to_ascii_uppercase();
            let initial = words.next().map(str::to_owned);
            if words.next().is_some() {
                return Err(CommandError::Syntax(
                    "expected AUTH mechanism [initial-response]",
                ));
            }
            Ok(Command::Auth { mechanism, initial })
        }
        "VRFY" => Ok(Command::Vrfy),
        "EXPN" => Ok(Command::Expn),
        "HELP" => Ok(Command::Help),
        _ => Err(CommandError::Unknown),
    }
}

/// `rest` without `prefix` (ASCII, any case), allowing spaces before the path as many clients send.
fn strip_prefix_ignore_case<'a>(rest: &'a str, prefix: &str) -> Option<&'a str> {
    let head = rest.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| rest[prefix.len()..].trim_start())
}

/// `<address> PARAM=value…`: the address inside the brackets (a source route `@a,@b:` dropped, as RFC 5321
/// §4.1.1.3 asks) and the parameters.
fn path_and_params(rest: &str) -> Result<(String, Vec<&str>), CommandError> {
    let inner = rest.strip_prefix('<').ok_or(CommandError::Syntax(
        "the address must be in angle brackets",
    ))?;
    let close = inner.find('>').ok_or(CommandError::Syntax(
        "the address must be in angle brackets",
    ))?;
    let address = &inner[..close];
    let address = match address.starts_with('@') {
        true => address.split_once(':').map_or("", |(_, a)| a),
        false => address,
    };
    if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CommandError::Syntax("the address must not contain spaces"));
    }
    let params = inner[close + 1..].split_ascii_whitespace().collect();
    Ok((address.to_owned(), params))
}

fn truncated(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_read() {
        assert_eq!(
            parse(b"EHLO client.example"),
            Ok(Command::Ehlo("client.example".into()))
        );
        assert_eq!(
            parse(b"ehlo [127.0.0.1]\r\n"),
            Ok(Command::Ehlo("[127.0.0.1]".into()))
        );
        assert_eq!(
            parse(b"MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME SMTPUTF8"),
            Ok(Command::Mail {
                from: "a@b.example".into(),
                size: Some(1000)
            })
        );
        assert_eq!(
            parse(b"mail from: <>"),
            Ok(Command::Mail {
                from: String::new(),
                size: None
            })
        );
        assert_eq!(
            parse(b"RCPT TO:<@relay.example:c@d.example>"),
            Ok(Command::Rcpt {
                to: "c@d.example".into()
            })
        );
        assert_eq!(
            parse(b"AUTH plain AHJlc2VuZABrZXk="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AHJlc2VuZABrZXk=".into())
            })
        );
        assert_eq!(parse(b"STARTTLS"), Ok(Command::StartTls));
        assert_eq!(parse(b"QUIT"), Ok(Command::Quit));
    }

    #[test]
    fn bad_commands_are_errors() {
        assert_eq!(parse(b"HELLO"), Err(CommandError::Unknown));
        assert_eq!(parse(b""), Err(CommandError::Unknown));
        assert!(matches!(
            parse(b"MAIL TO:<a@b.c>"),
            Err(CommandError::Syntax(_))
        ));
        assert!(matches!(
            parse(b"MAIL FROM:a@b.c"),
            Err(CommandError::Syntax(_))
        ));
        assert!(matches!(
            parse(b"MAIL FROM:<a@b.c"),
            Err(CommandError::Syntax(_))
        ));
        assert!(matches!(
            parse(b"MAIL FROM:<a@b.c> SIZE=lots"),
            Err(CommandError::Parameter(_))
        ));
        assert!(matches!(
            parse(b"MAIL FROM:<a@b.c> RET=FULL"),
            Err(CommandError::Parameter(_))
        ));
        assert!(matches!(
            parse(b"RCPT TO:<a@b.c> NOTIFY=NEVER"),
            Err(CommandError::Parameter(_))
        ));
        assert!(matches!(parse(b"RCPT TO:<>"), Err(CommandError::Syntax(_))));
        assert!(matches!(parse(b"DATA now"), Err(CommandError::Syntax(_))));
        assert!(matches!(parse(b"EHLO"), Err(CommandError::Syntax(_))));
        assert!(matches!(
            parse(b"MAIL FROM:<\xff@b.c>"),
            Err(CommandError::Syntax(_))
        ));
    }

    /// Arbitrary bytes (a fixed-seed generator, so a failure repeats) and every prefix of real commands
    /// with multi-byte characters: the parser answers, it never panics.
    #[test]
    fn no_bytes_make_the_parser_panic() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet: &[u8] = b"MAILFROMRCPTTOEHLOAUTH:<>@ =.\r\n\0\xc3\xa9\xff\xe2\x82\xacSIZE";
        for _ in 0..20_000 {
            let len = (next() % 48) as usize;
            let line: Vec<u8> = (0..len)
                .map(|_| match next() % 4 {
                    0 => (next() & 0xff) as u8,
                    _ => alphabet[(next() % alphabet.len() as u64) as usize],
                })
                .collect();
            let _ = parse(&line);
        }
        for sample in [
            "MAIL FROM:<é@ü.example> SIZE=1",
            "RCPT TO:<@€:ü@ü.example>",
            "AUTH LOGIN €",
            "MAIL FROM:€",
            "RCPT TO:<>\u{1F600}",
        ] {
            let bytes = sample.as_bytes();
            for end in 0..=bytes.len() {
                let _ = parse(&bytes[..end]);
                let _ = parse(&bytes[end..]);
            }
        }
    }
}
