//! Personalising a broadcast for one contact, with [`opensend_core::variables`]: what a broadcast's subject,
//! HTML and text may name, and their values for a contact.
//!
//! | placeholder | value |
//! |---|---|
//! | `{{{contact.first_name}}}`, `{{{FIRST_NAME}}}` | the contact's first name |
//! | `{{{contact.last_name}}}`, `{{{LAST_NAME}}}` | the contact's last name |
//! | `{{{contact.email}}}`, `{{{EMAIL}}}` | the contact's address |
//! | `{{{contact.KEY}}}` | the contact's value of the custom property `KEY`, else the property's fallback |
//! | `{{{RESEND_UNSUBSCRIBE_URL}}}` | the contact's unsubscribe page (one-click link) |
//!
//! A value the contact does not have takes the placeholder's own fallback (`{{{contact.first_name|there}}}`),
//! and without one is left empty: a broadcast is never held up by one contact's missing name. A key that is
//! none of the above is refused when the broadcast is sent (422 naming it), not discovered per contact.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use opensend_core::variables::{Content, Escape, RenderError};
use serde_json::Value;

/// The key of the unsubscribe URL.
pub const UNSUBSCRIBE_URL: &str = "RESEND_UNSUBSCRIBE_URL";

/// A broadcast's content, parsed once for its whole fan-out.
#[derive(Clone, Debug)]
pub struct Template {
    pub subject: Content,
    pub html: Option<Content>,
    pub text: Option<Content>,
}

/// What one contact fills in.
pub struct Values<'a> {
    pub email: &'a str,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub properties: &'a BTreeMap<String, Value>,
    /// Every property's fallback, by key.
    pub fallbacks: &'a BTreeMap<String, Value>,
    pub unsubscribe_url: &'a str,
}

/// One contact's subject, HTML and text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: Option<String>,
    pub text: Option<String>,
}

fn property_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

impl Template {
    pub fn parse(subject: &str, html: Option<&str>, text: Option<&str>) -> Self {
        Self {
            subject: Content::parse(subject),
            html: html.map(Content::parse),
            text: text.map(Content::parse),
        }
    }

    /// The keys used that name nothing (given the organization's custom property keys), sorted.
    pub fn unknown_keys(&self, property_keys: &BTreeSet<String>) -> Vec<String> {
        let mut unknown = BTreeSet::new();
        let parts = [Some(&self.subject), self.html.as_ref(), self.text.as_ref()];
        for content in parts.into_iter().flatten() {
            for key in content.keys() {
                let known = match key {
                    "FIRST_NAME" | "LAST_NAME" | "EMAIL" | UNSUBSCRIBE_URL => true,
                    _ => match key.strip_prefix("contact.") {
                        Some("first_name" | "last_name" | "email") => true,
                        Some(property) => property_keys.contains(property),
                        None => false,
                    },
                };
                if !known {
                    unknown.insert(key.to_owned());
                }
            }
        }
        unknown.into_iter().collect()
    }

    /// Whether the content names the unsubscribe URL anywhere.
    pub fn uses_unsubscribe_url(&self) -> bool {
        [Some(&self.subject), self.html.as_ref(), self.text.as_ref()]
            .into_iter()
            .flatten()
            .any(|c| c.keys().contains(UNSUBSCRIBE_URL))
    }

    /// The content for one contact; each part at most `max_len` bytes.
    pub fn render(&self, values: &Values<'_>, max_len: usize) -> Result<Rendered, RenderError> {
        let render =
            |content: &Content, escape: Escape| render_one(content, escape, values, max_len);
        Ok(Rendered {
            subject: render(&self.subject, Escape::None)?,
            html: self
                .html
                .as_ref()
                .map(|c| render(c, Escape::Html))
                .transpose()?,
            text: self
                .text
                .as_ref()
                .map(|c| render(c, Escape::None))
                .transpose()?,
        })
    }
}

fn lookup<'v>(values: &Values<'v>, key: &str) -> Option<Cow<'v, str>> {
    let present = |v: Option<&'v str>| v.filter(|s| !s.is_empty()).map(Cow::Borrowed);
    match key {
        "FIRST_NAME" | "contact.first_name" => present(values.first_name),
        "LAST_NAME" | "contact.last_name" => present(values.last_name),
        "EMAIL" | "contact.email" => Some(Cow::Borrowed(values.email)),
        UNSUBSCRIBE_URL => Some(Cow::Borrowed(values.unsubscribe_url)),
        _ => {
            let property = key.strip_prefix("contact.")?;
            values
                .properties
                .get(property)
                .and_then(property_text)
                .or_else(|| values.fallbacks.get(property).and_then(property_text))
                .filter(|s| !s.is_empty())
                .map(Cow::Owned)
        }
    }
}

fn render_one(
    content: &Content,
    escape: Escape,
    values: &Values<'_>,
    max_len: usize,
) -> Result<String, RenderError> {
    match content.render(escape, max_len, |key| lookup(values, key)) {
        // No value and no fallback: empty, rather than no email at all for this contact. Keys written with a
        // fallback everywhere keep it (a key written both with and without one is empty everywhere).
        Err(RenderError::Missing(_)) => {
            let bare: BTreeSet<&str> = content
                .placeholders()
                .filter(|p| p.fallback().is_none())
                .map(|p| p.key())
                .collect();
            content.render(escape, max_len, |key| match lookup(values, key) {
                Some(value) => Some(value),
                None if bare.contains(key) => Some(Cow::Borrowed("")),
                None => None,
            })
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_fallbacks_and_escaping() {
        let template = Template::parse(
            "Hi {{{contact.first_name|there}}}",
            Some(
                "<p>{{{FIRST_NAME}}} {{{contact.last_name}}} {{{contact.company}}} {{{contact.plan|free}}} <a href=\"{{{RESEND_UNSUBSCRIBE_URL}}}\">x</a></p>",
            ),
            Some("{{{contact.email}}} {{{contact.score}}}"),
        );
        let properties = BTreeMap::from([("score".to_owned(), json!(7))]);
        let fallbacks = BTreeMap::from([("company".to_owned(), json!("Acme & Co"))]);
        let values = Values {
            email: "ann@example.com",
            first_name: Some("<Ann>"),
            last_name: None,
            properties: &properties,
            fallbacks: &fallbacks,
            unsubscribe_url: "https://x.test/unsubscribe/t",
        };
        let out = template.render(&values, 1 << 20).unwrap();
        assert_eq!(out.subject, "Hi <Ann>");
        assert_eq!(
            out.html.unwrap(),
            "<p>&lt;Ann&gt;  Acme &amp; Co free <a href=\"https://x.test/unsubscribe/t\">x</a></p>"
        );
        assert_eq!(out.text.unwrap(), "ann@example.com 7");
        let nobody = Values {
            first_name: None,
            ..values
        };
        assert_eq!(
            template.render(&nobody, 1 << 20).unwrap().subject,
            "Hi there"
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let template = Template::parse(
            "{{{contact.nope}}} {{{OTHER}}}",
            None,
            Some("{{{contact.plan}}}"),
        );
        let keys = BTreeSet::from(["plan".to_owned()]);
        assert_eq!(template.unknown_keys(&keys), ["OTHER", "contact.nope"]);
    }
}
