//! Email addresses and mailboxes (`"Acme <hello@acme.com>"`), parsed from untrusted input.
//!
//! Accepted: a dot-atom local part (RFC 5322 §3.2.3, ASCII, at most 64 octets) and a domain of at least two
//! LDH labels (internationalised domains are converted to A-labels). Not accepted, on purpose: quoted local
//! parts, comments, IP-literal domains and non-ASCII local parts (SMTPUTF8). They are legal but rare, and
//! refusing them keeps every address safe to put in a header or an SMTP command as it is. The domain is
//! lower-cased; the local part keeps its case (it may be significant to the receiving server).

use std::fmt;

use serde::{Serialize, Serializer};

/// Longest address, in octets (RFC 5321 §4.5.3.1.3: a path is at most 256 octets including `<>`).
pub const MAX_ADDRESS_LEN: usize = 254;
/// Longest local part, in octets.
pub const MAX_LOCAL_PART_LEN: usize = 64;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    #[error("`{0}` is not an email address (expected local@domain)")]
    NotAnAddress(String),
    #[error(
        "the local part of `{0}` is not valid (letters, digits, dots and !#$%&'*+/=?^_`{{|}}~- only)"
    )]
    InvalidLocalPart(String),
    #[error("the domain of `{0}` is not a valid domain name")]
    InvalidDomain(String),
    #[error("`{0}` is longer than {MAX_ADDRESS_LEN} characters")]
    TooLong(String),
    #[error("the display name in `{0}` contains line breaks or control characters")]
    InvalidDisplayName(String),
}

/// A syntactically valid address: `local@domain`, domain lower-cased A-labels.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress {
    address: String,
    at: usize,
}

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let shown = || truncate_for_message(input);
        let input = input.trim();
        let (local, domain) = input
            .rsplit_once('@')
            .ok_or_else(|| AddressError::NotAnAddress(shown()))?;
        if local.is_empty() || domain.is_empty() {
            return Err(AddressError::NotAnAddress(shown()));
        }
        if !is_dot_atom(local) || local.len() > MAX_LOCAL_PART_LEN {
            return Err(AddressError::InvalidLocalPart(shown()));
        }
        let domain =
            normalise_domain(domain).ok_or_else(|| AddressError::InvalidDomain(shown()))?;
        let address = format!("{local}@{domain}");
        if address.len() > MAX_ADDRESS_LEN {
            return Err(AddressError::TooLong(shown()));
        }
        Ok(Self {
            at: local.len(),
            address,
        })
    }

    /// An address [`EmailAddress::parse`] produced before, read back from storage: not checked again. `None`
    /// only when it has no `@`, which no parsed address lacks (the stored value is damaged).
    pub fn from_trusted(address: String) -> Option<Self> {
        let at = address.rfind('@')?;
        Some(Self { address, at })
    }

    pub fn as_str(&self) -> &str {
        &self.address
    }

    pub fn local_part(&self) -> &str {
        &self.address[..self.at]
    }

    /// Lower-case A-label domain.
    pub fn domain(&self) -> &str {
        &self.address[self.at + 1..]
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

impl Serialize for EmailAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.address)
    }
}

/// An address with an optional display name: `hello@acme.com` or `Acme <hello@acme.com>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: EmailAddress,
}

impl Mailbox {
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let trimmed = input.trim();
        let Some(open) = trimmed.rfind('<') else {
            return Ok(Self {
                name: None,
                address: EmailAddress::parse(trimmed)?,
            });
        };
        let inner = trimmed[open + 1..]
            .strip_suffix('>')
            .ok_or_else(|| AddressError::NotAnAddress(truncate_for_message(input)))?;
        let address = EmailAddress::parse(inner)?;
        let raw_name = trimmed[..open].trim();
        // A quoted name may escape `"` and `\` (RFC 5322 quoted-pair), as `Display` writes them.
        let name = match raw_name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
            Some(quoted) => unescape_quoted(quoted),
            None => raw_name.to_owned(),
        };
        let name = name.trim();
        if name.chars().any(char::is_control) || name.chars().count() > MAX_DISPLAY_NAME_CHARS {
            return Err(AddressError::InvalidDisplayName(truncate_for_message(
                input,
            )));
        }
        Ok(Self {
            name: (!name.is_empty()).then(|| name.to_owned()),
            address,
        })
    }

    /// A mailbox [`Mailbox::parse`] produced before, read back from storage: neither the name nor the
    /// address is checked again (see [`EmailAddress::from_trusted`]).
    pub fn from_trusted(name: Option<String>, address: String) -> Option<Self> {
        Some(Self {
            name,
            address: EmailAddress::from_trusted(address)?,
        })
    }
}

/// The text of a quoted string without its quoted-pairs' backslashes.
fn unescape_quoted(quoted: &str) -> String {
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            other => out.push(other),
        }
    }
    out
}

impl fmt::Display for Mailbox {
    /// The form clients sent: `Name <address>` (the name quoted when it needs to be), or the bare address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            None => write!(f, "{}", self.address),
            Some(name) if name.chars().all(|c| c.is_alphanumeric() || c == ' ') => {
                write!(f, "{name} <{}>", self.address)
            }
            Some(name) => write!(
                f,
                "\"{}\" <{}>",
                name.replace('\\', "\\\\").replace('"', "\\\""),
                self.address
            ),
        }
    }
}

fn is_atext(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&c)
}

fn is_dot_atom(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(is_atext))
}

/// Lower-case A-labels of at least two LDH labels, or `None`.
fn normalise_domain(domain: &str) -> Option<String> {
    if domain.starts_with('[') || domain.ends_with('.') {
        return None;
    }
    let ascii = idna::domain_to_ascii(domain).ok()?;
    let labels: Vec<&str> = ascii.split('.').collect();
    let valid = labels.len() >= 2
        && ascii.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        // A top-level label of digits only would make this an IP address in disguise.
        && labels.last().is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()));
    valid.then_some(ascii)
}

fn truncate_for_message(input: &str) -> String {
    let clean: String = input
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(80)
        .collect();
    if input.chars().count() > 80 {
        format!("{clean}…")
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_normalises_the_domain() {
        let a = EmailAddress::parse(" Jane.Doe+tag@Example.COM ").unwrap();
        assert_eq!(a.as_str(), "Jane.Doe+tag@example.com");
        assert_eq!(a.local_part(), "Jane.Doe+tag");
        assert_eq!(a.domain(), "example.com");
        let idn = EmailAddress::parse("info@bücher.de").unwrap();
        assert_eq!(idn.domain(), "xn--bcher-kva.de");
    }

    #[test]
    fn refuses_what_could_smuggle_or_confuse() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a..b@example.com",
            ".a@example.com",
            "a.@example.com",
            "a b@example.com",
            "\"quoted\"@example.com",
            "a@[127.0.0.1]",
            "a@127.0.0.1",
            "a@example.com.",
            "a@-example.com",
            "a@exa_mple.com",
            "a@example.com\r\nBcc: x@y.com",
            "a\r\n@example.com",
            "a@example.com>",
            "jörg@example.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(EmailAddress::parse(&long_local).is_err());
        let long = format!("a@{}.com", vec!["b".repeat(63); 4].join("."));
        assert!(EmailAddress::parse(&long).is_err());
    }

    #[test]
    fn mailboxes_with_and_without_names() {
        let m = Mailbox::parse("Acme <hello@acme.com>").unwrap();
        assert_eq!(m.name.as_deref(), Some("Acme"));
        assert_eq!(m.address.as_str(), "hello@acme.com");
        assert_eq!(m.to_string(), "Acme <hello@acme.com>");
        let quoted = Mailbox::parse("\"Doe, Jane\" <jane@acme.com>").unwrap();
        assert_eq!(quoted.name.as_deref(), Some("Doe, Jane"));
        assert_eq!(quoted.to_string(), "\"Doe, Jane\" <jane@acme.com>");
        let bare = Mailbox::parse("jane@acme.com").unwrap();
        assert_eq!(bare.name, None);
        let angle_only = Mailbox::parse("<jane@acme.com>").unwrap();
        assert_eq!(angle_only.name, None);
        for bad in [
            "Acme <hello@acme.com",
            "Evil\r\nBcc: x@y.com <a@b.com>",
            "Acme <>",
        ] {
            assert!(Mailbox::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_mailbox_reads_back_from_its_display_form() {
        for name in [
            "Acme",
            "Doe, Jane",
            "Say \"hi\"",
            "back\\slash",
            "Café Müller",
        ] {
            let mailbox = Mailbox {
                name: Some(name.to_owned()),
                address: EmailAddress::parse("jane@acme.com").unwrap(),
            };
            assert_eq!(
                Mailbox::parse(&mailbox.to_string()).unwrap(),
                mailbox,
                "{mailbox}"
            );
        }
    }

    #[test]
    fn trusted_values_are_taken_as_stored() {
        let address = EmailAddress::from_trusted("Jane.Doe@example.com".to_owned()).unwrap();
        assert_eq!(address.local_part(), "Jane.Doe");
        assert_eq!(address.domain(), "example.com");
        let mailbox = Mailbox::from_trusted(Some("Jane".into()), "jane@acme.com".into()).unwrap();
        assert_eq!(mailbox.to_string(), "Jane <jane@acme.com>");
        assert_eq!(EmailAddress::from_trusted("no-at-sign".to_owned()), None);
    }
}
