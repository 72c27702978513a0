//! Domain names and DNS labels, parsed from what a client typed.
//!
//! A [`DomainName`] is always lower-case ASCII (internationalized names are converted to their `xn--` A-labels),
//! has at least two labels, at most 253 characters, labels of 1–63 letters, digits and hyphens that neither start
//! nor end with a hyphen, and a last label that is not all digits (so no IPv4 literal, in any of its spellings,
//! gets through). One trailing dot, the absolute form `example.com.`, is accepted and removed: it names the same
//! domain. Anything else that is not a host name (URLs, paths such as `../`, addresses, IPv6 literals, empty
//! labels) is refused with a message that says what is wrong.

use std::fmt;
use std::str::FromStr;

/// Longest domain name in its textual form without the trailing dot (RFC 1035: 255 octets on the wire).
pub const MAX_DOMAIN_LEN: usize = 253;
/// Longest label (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainNameError {
    #[error("must not be empty")]
    Empty,
    #[error(
        "must be a domain name such as example.com, not a URL, path, address or IP literal (found `{0}`)"
    )]
    NotAHostName(char),
    #[error("must not contain whitespace or control characters")]
    Whitespace,
    #[error("must not contain an empty label (leading dot, `..`, or more than one trailing dot)")]
    EmptyLabel,
    #[error("must have at least two labels, such as example.com")]
    SingleLabel,
    #[error("is an IP address; use a domain name")]
    IpLiteral,
    #[error("is longer than {MAX_DOMAIN_LEN} characters")]
    TooLong,
    #[error("has a label longer than {MAX_LABEL_LEN} characters")]
    LabelTooLong,
    #[error("has a label with `{0}`: labels may only contain letters, digits and hyphens")]
    InvalidCharacter(char),
    #[error("has a label that starts or ends with a hyphen")]
    Hyphen,
    #[error("is not a valid internationalized domain name")]
    Idna,
}

impl DomainName {
    pub fn parse(input: &str) -> Result<Self, DomainNameError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(DomainNameError::Empty);
        }
        if let Some(c) = trimmed
            .chars()
            .find(|c| matches!(c, '/' | '\\' | '@' | ':' | '[' | ']' | '?' | '#' | '%'))
        {
            return Err(DomainNameError::NotAHostName(c));
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(DomainNameError::Whitespace);
        }
        let without_root = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if without_root.is_empty() || without_root.split('.').any(str::is_empty) {
            return Err(DomainNameError::EmptyLabel);
        }
        let ascii = if without_root.is_ascii() {
            without_root.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii(without_root).map_err(|_| DomainNameError::Idna)?
        };
        check_ascii_name(&ascii)?;
        // The strict UTS 46 pass also rejects malformed `xn--` labels typed in directly.
        match idna::domain_to_ascii_strict(&ascii) {
            Ok(canonical) if canonical == ascii => Ok(Self(ascii)),
            _ => Err(DomainNameError::Idna),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` is `parent` or one of its subdomains (`mail.example.com` is within `example.com`).
    pub fn is_within(&self, parent: &DomainName) -> bool {
        self.0 == parent.0
            || self
                .0
                .strip_suffix(parent.as_str())
                .is_some_and(|head| head.ends_with('.'))
    }

    /// `label.self`, e.g. the return-path host `send.example.com`.
    pub fn prefixed(&self, label: &DnsLabel) -> String {
        format!("{}.{}", label.as_str(), self.0)
    }

    /// The domains that `self` may belong to, from itself up to its two-label ancestor
    /// (`a.b.example.com` → `a.b.example.com`, `b.example.com`, `example.com`).
    pub fn ancestors(&self) -> impl Iterator<Item = &str> {
        let labels = self.0.split('.').count();
        let mut rest = self.0.as_str();
        (0..labels.saturating_sub(1)).map(move |_| {
            let current = rest;
            rest = rest.split_once('.').map(|(_, tail)| tail).unwrap_or("");
            current
        })
    }
}

fn check_ascii_name(name: &str) -> Result<(), DomainNameError> {
    if name.len() > MAX_DOMAIN_LEN {
        return Err(DomainNameError::TooLong);
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.iter().any(|l| l.is_empty()) {
        return Err(DomainNameError::EmptyLabel);
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(DomainNameError::IpLiteral);
    }
    if labels.len() < 2 {
        return Err(DomainNameError::SingleLabel);
    }
    for label in labels {
        check_label(label).map_err(|e| match e {
            DnsLabelError::TooLong => DomainNameError::LabelTooLong,
            DnsLabelError::InvalidCharacter(c) => DomainNameError::InvalidCharacter(c),
            DnsLabelError::Hyphen => DomainNameError::Hyphen,
            DnsLabelError::Empty => DomainNameError::EmptyLabel,
            DnsLabelError::StartsWithDigit => DomainNameError::EmptyLabel,
        })?;
    }
    Ok(())
}

fn check_label(label: &str) -> Result<(), DnsLabelError> {
    if label.is_empty() {
        return Err(DnsLabelError::Empty);
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(DnsLabelError::TooLong);
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(DnsLabelError::InvalidCharacter(c));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(DnsLabelError::Hyphen);
    }
    Ok(())
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DomainName {
    type Err = DomainNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// One DNS label chosen by a client: the return-path subdomain (`send`) or the tracking subdomain (`links`).
/// Lower-case letters, digits and hyphens, 1–63 characters, starting with a letter and not ending with a hyphen.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DnsLabel(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsLabelError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_LABEL_LEN} characters")]
    TooLong,
    #[error("must contain only letters, digits and hyphens (found `{0}`)")]
    InvalidCharacter(char),
    #[error("must not start or end with a hyphen")]
    Hyphen,
    #[error("must start with a letter")]
    StartsWithDigit,
}

impl DnsLabel {
    pub fn parse(input: &str) -> Result<Self, DnsLabelError> {
        let label = input.trim().to_ascii_lowercase();
        check_label(&label)?;
        if !label.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(DnsLabelError::StartsWithDigit);
        }
        Ok(Self(label))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DnsLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> String {
        DomainName::parse(input)
            .unwrap_or_else(|e| panic!("{input:?}: {e}"))
            .to_string()
    }

    fn err(input: &str) -> DomainNameError {
        DomainName::parse(input).expect_err(input)
    }

    #[test]
    fn normalizes_case_whitespace_and_the_root_dot() {
        assert_eq!(ok("  Example.COM "), "example.com");
        assert_eq!(ok("mail.example.co.uk."), "mail.example.co.uk");
        assert_eq!(ok("a-b.example.com"), "a-b.example.com");
        assert_eq!(ok("3com.example"), "3com.example");
    }

    #[test]
    fn converts_unicode_to_a_labels() {
        assert_eq!(ok("Bücher.example"), "xn--bcher-kva.example");
        assert_eq!(ok("例え.テスト"), "xn--r8jz45g.xn--zckzah");
        assert_eq!(ok("xn--bcher-kva.example"), "xn--bcher-kva.example");
        assert_eq!(err("xn--ab-.example"), DomainNameError::Hyphen);
        assert_eq!(err("xn--a.example"), DomainNameError::Idna);
    }

    #[test]
    fn refuses_what_is_not_a_host_name() {
        assert_eq!(err(""), DomainNameError::Empty);
        assert_eq!(err("   "), DomainNameError::Empty);
        assert_eq!(err("../etc/passwd"), DomainNameError::NotAHostName('/'));
        assert_eq!(err(".."), DomainNameError::EmptyLabel);
        assert_eq!(
            err("https://example.com"),
            DomainNameError::NotAHostName(':')
        );
        assert_eq!(err("user@example.com"), DomainNameError::NotAHostName('@'));
        assert_eq!(err("[::1]"), DomainNameError::NotAHostName('['));
        assert_eq!(err("::1"), DomainNameError::NotAHostName(':'));
        assert_eq!(err("exa mple.com"), DomainNameError::Whitespace);
        assert_eq!(err("example.com.."), DomainNameError::EmptyLabel);
        assert_eq!(err(".example.com"), DomainNameError::EmptyLabel);
        assert_eq!(err("a..example.com"), DomainNameError::EmptyLabel);
        assert_eq!(err("localhost"), DomainNameError::SingleLabel);
        assert_eq!(err("com."), DomainNameError::SingleLabel);
        assert_eq!(err("exa_mple.com"), DomainNameError::InvalidCharacter('_'));
        assert_eq!(err("-example.com"), DomainNameError::Hyphen);
        assert_eq!(err("example-.com"), DomainNameError::Hyphen);
    }

    #[test]
    fn refuses_ip_literals_in_every_spelling() {
        for ip in [
            "127.0.0.1",
            "10.1",
            "192.168.000.001",
            "1.2.3.4.",
            "8.8.8.8",
        ] {
            assert_eq!(err(ip), DomainNameError::IpLiteral, "{ip}");
        }
    }

    #[test]
    fn enforces_lengths() {
        let label63 = "a".repeat(63);
        assert!(DomainName::parse(&format!("{label63}.com")).is_ok());
        assert_eq!(
            err(&format!("{}a.com", label63)),
            DomainNameError::LabelTooLong
        );
        // 4 × 63 + 3 dots = 255; trimmed to exactly 253 it passes.
        let long = [label63.as_str(); 4].join(".");
        assert_eq!(err(&long), DomainNameError::TooLong);
        assert_eq!(err(&"a".repeat(300)), DomainNameError::TooLong);
        let exact = format!("{}.{}", [label63.as_str(); 3].join("."), "a".repeat(61));
        assert_eq!(exact.len(), 253);
        assert!(DomainName::parse(&exact).is_ok());
    }

    #[test]
    fn subdomains_and_ancestors() {
        let parent = DomainName::parse("example.com").unwrap();
        let child = DomainName::parse("a.b.example.com").unwrap();
        let lookalike = DomainName::parse("badexample.com").unwrap();
        assert!(child.is_within(&parent));
        assert!(parent.is_within(&parent));
        assert!(!lookalike.is_within(&parent));
        assert!(!parent.is_within(&child));
        assert_eq!(
            child.ancestors().collect::<Vec<_>>(),
            vec!["a.b.example.com", "b.example.com", "example.com"]
        );
        assert_eq!(parent.ancestors().collect::<Vec<_>>(), vec!["example.com"]);
    }

    #[test]
    fn labels() {
        assert_eq!(DnsLabel::parse(" Send ").unwrap().as_str(), "send");
        assert_eq!(DnsLabel::parse("").unwrap_err(), DnsLabelError::Empty);
        assert_eq!(
            DnsLabel::parse("1abc").unwrap_err(),
            DnsLabelError::StartsWithDigit
        );
        assert_eq!(DnsLabel::parse("a-").unwrap_err(), DnsLabelError::Hyphen);
        assert_eq!(
            DnsLabel::parse("a.b").unwrap_err(),
            DnsLabelError::InvalidCharacter('.')
        );
        assert_eq!(
            DnsLabel::parse(&"a".repeat(64)).unwrap_err(),
            DnsLabelError::TooLong
        );
    }
}
