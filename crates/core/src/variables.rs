//! Variables in message content: `{{{NAME}}}` and `{{{NAME|fallback}}}`, as Resend writes them in templates and
//! broadcasts (`{{{FIRST_NAME|there}}}`, `{{{contact.first_name|friend}}}`, `{{{RESEND_UNSUBSCRIBE_URL}}}`).
//!
//! Content is parsed once into a [`Content`] (literal text and placeholders), which then renders with values
//! looked up by the caller. The rules, decided here for every renderer of the product:
//!
//! - A placeholder is `{{{`, a key, an optional `|fallback`, then `}}}`. Spaces around the key and the fallback
//!   are ignored (`{{{ NAME | friend }}}`). A key is 1 to [`MAX_KEY_LEN`] ASCII letters, digits, `_`, `-` or
//!   `.`, starting with a letter or `_`. The fallback is any text without `}}}`.
//! - Anything else that contains braces is literal text: `{{{not a key}}}`, an unclosed `{{{`, `{{name}}`
//!   (double braces are not variables). Content is never refused for its braces, so HTML or CSS that happens to
//!   contain them passes through unchanged.
//! - A value is inserted once; text inside a value is never expanded again (a value of `{{{OTHER}}}` stays
//!   those characters).
//! - Where a value goes into HTML ([`Escape::Html`]) it is escaped (`&`, `<`, `>`, `"`, `'`), so a recipient's
//!   name cannot add markup or break out of an attribute; fallbacks written in the content itself are the
//!   author's own HTML and are inserted as written. Subjects and plain text take values as they are
//!   ([`Escape::None`]); header encoding is the MIME builder's job.
//! - A placeholder with no value and no fallback is an error naming the key ([`RenderError::Missing`]); the
//!   caller decides what "no value" means (a template's declared fallback is a value the lookup returns).
//! - The output is bounded: rendering stops with [`RenderError::TooLarge`] past the caller's limit, so a few
//!   placeholders cannot multiply a large value into an unbounded message.

use std::borrow::Cow;
use std::collections::BTreeSet;

/// The longest key a placeholder may have.
pub const MAX_KEY_LEN: usize = 64;

const OPEN: &str = "{{{";
const CLOSE: &str = "}}}";

/// Content parsed into literal text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable(Placeholder),
}

/// One `{{{KEY|fallback}}}` in content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    key: String,
    fallback: Option<String>,
}

impl Placeholder {
    /// The key, as written (keys are case-sensitive).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The fallback written after `|`, if any (an empty one, `{{{NAME|}}}`, is an empty string).
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }
}

/// How a value is written into the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Into HTML: `&`, `<`, `>`, `"` and `'` become entities.
    Html,
    /// As is: subjects and plain text.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A placeholder had no value and no fallback.
    #[error("variable `{0}` has no value and no fallback")]
    Missing(String),
    /// The output would have been longer than the caller's limit (in bytes).
    #[error("the rendered content is longer than {0} bytes")]
    TooLarge(usize),
}

impl Content {
    /// Parses content. Never fails: text that is not a well-formed placeholder is literal.
    pub fn parse(source: &str) -> Self {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = source;
        while let Some(start) = rest.find(OPEN) {
            let after_open = &rest[start + OPEN.len()..];
            match after_open.find(CLOSE).and_then(|end| {
                parse_placeholder(&after_open[..end]).map(|placeholder| (end, placeholder))
            }) {
                Some((end, placeholder)) => {
                    literal.push_str(&rest[..start]);
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Variable(placeholder));
                    rest = &after_open[end + CLOSE.len()..];
                }
                None => {
                    // Not a placeholder: keep the first brace as text and look again from the next one, so
                    // `{{{{{{NAME}}}` still finds the placeholder at its end.
                    literal.push_str(&rest[..start + 1]);
                    rest = &rest[start + 1..];
                }
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Self { parts }
    }

    /// The placeholders, in order of appearance (a key used twice appears twice).
    pub fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        self.parts.iter().filter_map(|part| match part {
            Part::Variable(placeholder) => Some(placeholder),
            Part::Literal(_) => None,
        })
    }

    /// The distinct keys used, sorted.
    pub fn keys(&self) -> BTreeSet<&str> {
        self.placeholders().map(Placeholder::key).collect()
    }

    /// Whether the content has no placeholder at all (rendering would return it unchanged).
    pub fn is_literal(&self) -> bool {
        self.placeholders().next().is_none()
    }

    /// Renders with `lookup` giving each key's value (`None`: no value; the placeholder's own fallback is used,
    /// and without one rendering fails naming the key). At most `max_len` bytes are produced.
    pub fn render<'v>(
        &self,
        escape: Escape,
        max_len: usize,
        mut lookup: impl FnMut(&str) -> Option<Cow<'v, str>>,
    ) -> Result<String, RenderError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Variable(placeholder) => match lookup(&placeholder.key) {
                    Some(value) => push_escaped(&mut out, &value, escape),
                    None => match &placeholder.fallback {
                        Some(fallback) => out.push_str(fallback),
                        None => return Err(RenderError::Missing(placeholder.key.clone())),
                    },
                },
            }
            if out.len() > max_len {
                return Err(RenderError::TooLarge(max_len));
            }
        }
        Ok(out)
    }
}

/// Whether `key` is a well-formed variable key (the rule of the module docs). Callers that declare variables
/// (a template's list) check their keys with it, so a declared key can always be written as a placeholder.
pub fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    key.len() <= MAX_KEY_LEN
        && (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn parse_placeholder(inner: &str) -> Option<Placeholder> {
    let (key, fallback) = match inner.split_once('|') {
        Some((key, fallback)) => (key, Some(fallback.trim().to_owned())),
        None => (inner, None),
    };
    let key = key.trim();
    is_valid_key(key).then(|| Placeholder {
        key: key.to_owned(),
        fallback,
    })
}

fn push_escaped(out: &mut String, value: &str, escape: Escape) {
    match escape {
        Escape::None => out.push_str(value),
        Escape::Html => {
            for c in value.chars() {
                match c {
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '"' => out.push_str("&quot;"),
                    '\'' => out.push_str("&#39;"),
                    c => out.push(c),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl FnMut(&str) -> Option<Cow<'a, str>> {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| Cow::Borrowed(*v))
        }
    }

    #[test]
    fn placeholders_with_and_without_fallbacks() {
        let content = Content::parse("Hi {{{FIRST_NAME|there}}}, {{{ contact.last_name }}}!");
        let found: Vec<_> = content
            .placeholders()
            .map(|p| (p.key(), p.fallback()))
            .collect();
        assert_eq!(
            found,
            [("FIRST_NAME", Some("there")), ("contact.last_name", None)]
        );
        let out = content
            .render(
                Escape::None,
                1000,
                values(&[("contact.last_name", "Lovelace")]),
            )
            .unwrap();
        assert_eq!(out, "Hi there, Lovelace!");
    }

    #[test]
    fn a_missing_value_without_fallback_names_the_key() {
        let content = Content::parse("{{{A|x}}} {{{B}}}");
        assert_eq!(
            content.render(Escape::None, 1000, values(&[])),
            Err(RenderError::Missing("B".into()))
        );
    }

    #[test]
    fn values_are_escaped_in_html_but_fallbacks_and_literals_are_not() {
        let content = Content::parse("<a title=\"{{{NAME|<b>you</b>}}}\">{{{NAME}}}</a>");
        let out = content
            .render(Escape::Html, 1000, values(&[("NAME", "<script>\"'&")]))
            .unwrap();
        assert_eq!(
            out,
            "<a title=\"&lt;script&gt;&quot;&#39;&amp;\">&lt;script&gt;&quot;&#39;&amp;</a>"
        );
        let out = content
            .render(Escape::Html, 1000, |_| None)
            .map_err(|e| e.to_string());
        assert_eq!(
            out,
            Err("variable `NAME` has no value and no fallback".into())
        );
        let out = Content::parse("{{{NAME|<b>you</b>}}}")
            .render(Escape::Html, 1000, |_| None)
            .unwrap();
        assert_eq!(out, "<b>you</b>");
    }

    #[test]
    fn values_are_not_expanded_again() {
        let content = Content::parse("{{{A}}}");
        let out = content
            .render(Escape::None, 1000, values(&[("A", "{{{B}}}"), ("B", "no")]))
            .unwrap();
        assert_eq!(out, "{{{B}}}");
    }

    #[test]
    fn braces_that_are_not_placeholders_are_text() {
        for text in [
            "{{name}}",
            "{{{not a key}}}",
            "{{{",
            "}}}",
            "{{{1ABC}}}",
            "{{{}}}",
            "body { color: red } {{{ }}}",
            "{{{A",
            "é{{{é}}}é",
        ] {
            let content = Content::parse(text);
            assert!(content.is_literal(), "{text}");
            assert_eq!(content.render(Escape::Html, 1000, |_| None).unwrap(), text);
        }
        let content = Content::parse("{{{{{{NAME}}}}");
        assert_eq!(content.keys().into_iter().collect::<Vec<_>>(), ["NAME"]);
        assert_eq!(
            content
                .render(Escape::None, 100, values(&[("NAME", "x")]))
                .unwrap(),
            "{{{x}"
        );
    }

    #[test]
    fn keys_are_bounded() {
        assert!(is_valid_key(&"A".repeat(MAX_KEY_LEN)));
        assert!(!is_valid_key(&"A".repeat(MAX_KEY_LEN + 1)));
        assert!(is_valid_key("contact.first_name"));
        assert!(is_valid_key("_x-1"));
        assert!(!is_valid_key("a b"));
        assert!(!is_valid_key(""));
    }

    #[test]
    fn output_is_bounded() {
        let content = Content::parse("{{{A}}}{{{A}}}{{{A}}}");
        let big = "x".repeat(400);
        assert_eq!(
            content.render(Escape::None, 1000, values(&[("A", &big)])),
            Err(RenderError::TooLarge(1000))
        );
        assert!(
            content
                .render(Escape::None, 1200, values(&[("A", &big)]))
                .is_ok()
        );
    }

    #[test]
    fn arbitrary_input_never_panics() {
        // Every split point of a tricky string, including inside multi-byte characters' neighbours.
        let tricky = "é{{{A|ü}}}}}{{{{{B}}}{{|}}}{{{C|{{{D}}}}}}ß";
        for i in 0..=tricky.len() {
            if tricky.is_char_boundary(i) {
                let content = Content::parse(&tricky[..i]);
                let _ = content.render(Escape::Html, 10_000, |_| Some(Cow::Borrowed("v")));
            }
        }
    }
}
