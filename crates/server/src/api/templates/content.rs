//! What a template may hold: the checks every write (create, update) runs on the whole draft, so a stored
//! draft is always one that could be published and sent.

use opensend_core::Mailbox;
use opensend_core::variables::{Content, MAX_KEY_LEN, is_valid_key};
use opensend_store::records::{TemplateContent, TemplateVariable, VariableType};
use serde::Deserialize;
use serde_json::Value;

use crate::api::emails::limits;
use crate::error::ApiError;

/// Most variables a template may declare (Resend's limit).
pub const MAX_VARIABLES: usize = 50;
/// Longest `html` or `text` of a template, in bytes.
pub const MAX_BODY_BYTES: usize = 512 * 1024;
/// Longest string fallback value, in characters.
pub const MAX_FALLBACK_CHARS: usize = 1_000;
/// Longest template name, in characters.
pub const MAX_NAME: usize = 255;
/// Longest alias, in characters.
pub const MAX_ALIAS: usize = 64;

/// Names Resend reserves (compared without case): they cannot be declared, and content may use them
/// without declaring them. `contact.…` and `this.…` keys are reserved as well.
pub const RESERVED: &[&str] = &[
    "FIRST_NAME",
    "LAST_NAME",
    "EMAIL",
    "UNSUBSCRIBE_URL",
    "RESEND_UNSUBSCRIBE_URL",
    "contact",
    "this",
];

/// Whether `key` is a reserved variable name.
pub fn is_reserved(key: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(key))
        || ["contact.", "this."].iter().any(|prefix| {
            key.get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
        })
}

/// A variable as a request declares it (`fallbackValue` is accepted for `fallback_value`).
#[derive(Debug, Deserialize)]
pub struct VariableInput {
    pub key: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(default, alias = "fallbackValue")]
    pub fallback_value: Option<Value>,
}

/// `reply_to`: one address or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The declared variables, checked one by one.
pub fn variables(raw: Vec<VariableInput>) -> Result<Vec<TemplateVariable>, ApiError> {
    if raw.len() > MAX_VARIABLES {
        return Err(ApiError::validation(format!(
            "A template declares at most {MAX_VARIABLES} variables; got {}.",
            raw.len()
        )));
    }
    let mut out: Vec<TemplateVariable> = Vec::with_capacity(raw.len());
    for (index, input) in raw.into_iter().enumerate() {
        let key = input
            .key
            .ok_or_else(|| ApiError::validation(format!("`variables[{index}]` needs a `key`.")))?;
        if !is_valid_key(&key) {
            return Err(ApiError::validation(format!(
                "`variables[{index}].key` must be 1 to {MAX_KEY_LEN} ASCII letters, digits, `_`, `-` or `.`, starting with a letter or `_`; got `{}`.",
                key.chars().take(80).collect::<String>()
            )));
        }
        if is_reserved(&key) {
            return Err(ApiError::validation(format!(
                "Variable `{key}` is a reserved name and cannot be declared (reserved: {}, and keys starting with `contact.` or `this.`).",
                RESERVED.join(", ")
            )));
        }
        if out.iter().any(|v| v.key == key) {
            return Err(ApiError::validation(format!(
                "Variable `{key}` is declared more than once."
            )));
        }
        let kind = match input.kind.as_deref() {
            Some("string") => VariableType::String,
            Some("number") => VariableType::Number,
            Some(other) => {
                return Err(ApiError::validation(format!(
                    "Variable `{key}`: `type` must be `string` or `number`; got `{}`.",
                    other.chars().take(40).collect::<String>()
                )));
            }
            None => {
                return Err(ApiError::validation(format!(
                    "Variable `{key}` needs a `type` (`string` or `number`)."
                )));
            }
        };
        let fallback_value = match (kind, input.fallback_value) {
            (_, None | Some(Value::Null)) => None,
            (VariableType::String, Some(Value::String(s))) => {
                if s.chars().count() > MAX_FALLBACK_CHARS {
                    return Err(ApiError::validation(format!(
                        "Variable `{key}`: `fallback_value` is longer than {MAX_FALLBACK_CHARS} characters."
                    )));
                }
                Some(Value::String(s))
            }
            (VariableType::Number, Some(Value::Number(n))) => Some(Value::Number(n)),
            (kind, Some(_)) => {
                return Err(ApiError::validation(format!(
                    "Variable `{key}`: `fallback_value` must be a {} like its `type`.",
                    kind.as_str()
                )));
            }
        };
        out.push(TemplateVariable {
            key,
            kind,
            fallback_value,
        });
    }
    Ok(out)
}

/// `from`: one mailbox (`Name <address>` or an address).
pub fn from(raw: &str) -> Result<String, ApiError> {
    Mailbox::parse(raw)
        .map(|m| m.to_string())
        .map_err(|e| ApiError::validation(format!("`from`: {e}")))
}

/// `reply_to`: at most `limits::REPLY_TO` mailboxes.
pub fn reply_to(raw: OneOrMany) -> Result<Vec<String>, ApiError> {
    let list = match raw {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    };
    if list.len() > limits::REPLY_TO {
        return Err(ApiError::validation(format!(
            "`reply_to` has more than {} addresses.",
            limits::REPLY_TO
        )));
    }
    list.iter()
        .map(|r| {
            Mailbox::parse(r)
                .map(|m| m.to_string())
                .map_err(|e| ApiError::validation(format!("`reply_to`: {e}")))
        })
        .collect()
}

/// `subject`: one line, at most `limits::SUBJECT_CHARS` characters (before variables are filled in).
pub fn subject(raw: String) -> Result<String, ApiError> {
    if raw.chars().count() > limits::SUBJECT_CHARS {
        return Err(ApiError::validation(format!(
            "`subject` is longer than {} characters.",
            limits::SUBJECT_CHARS
        )));
    }
    if raw
        .chars()
        .any(|c| c == '\r' || c == '\n' || (c.is_control() && c != '\t'))
    {
        return Err(ApiError::validation(
            "`subject` must not contain line breaks or control characters.",
        ));
    }
    Ok(raw)
}

/// `html` or `text`: at most `MAX_BODY_BYTES`.
pub fn body(field: &str, raw: String) -> Result<String, ApiError> {
    if raw.len() > MAX_BODY_BYTES {
        return Err(ApiError::validation(format!(
            "`{field}` is longer than {MAX_BODY_BYTES} bytes."
        )));
    }
    Ok(raw)
}

/// `alias`: 1 to `MAX_ALIAS` ASCII letters, digits, `_`, `-` or `.`, and not shaped like an id (an alias
/// and an id share the path's `{id}`).
pub fn alias(raw: &str) -> Result<String, ApiError> {
    let alias = raw.trim();
    let ok = !alias.is_empty()
        && alias.len() <= MAX_ALIAS
        && alias
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !ok {
        return Err(ApiError::validation(format!(
            "`alias` must be 1 to {MAX_ALIAS} ASCII letters, digits, `_`, `-` or `.`."
        )));
    }
    if uuid::Uuid::try_parse(alias).is_ok() {
        return Err(ApiError::validation(
            "`alias` cannot be a UUID: it would be read as a template id.",
        ));
    }
    Ok(alias.to_owned())
}

/// The draft as a whole: every `{{{KEY}}}` in `html`, `subject` and `text` is declared or reserved.
pub fn check(content: &TemplateContent) -> Result<(), ApiError> {
    if content.html.trim().is_empty() {
        return Err(ApiError::validation("`html` must not be empty."));
    }
    let fields = [
        ("html", Some(content.html.as_str())),
        ("subject", content.subject.as_deref()),
        ("text", content.text.as_deref()),
    ];
    for (field, text) in fields {
        let Some(text) = text else { continue };
        let parsed = Content::parse(text);
        for key in parsed.keys() {
            if !is_reserved(key) && !content.variables.iter().any(|v| v.key == key) {
                return Err(ApiError::validation(format!(
                    "Variable `{key}` is used in `{field}` but not declared in `variables`."
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_ignore_case_and_cover_prefixes() {
        for key in ["EMAIL", "email", "contact", "contact.first_name", "THIS.x"] {
            assert!(is_reserved(key), "{key}");
        }
        for key in ["EMAILS", "contacts", "NAME", "thisx"] {
            assert!(!is_reserved(key), "{key}");
        }
    }

    #[test]
    fn fallbacks_have_their_variables_type() {
        let input = |kind: &str, fallback: Value| VariableInput {
            key: Some("K".into()),
            kind: Some(kind.into()),
            fallback_value: Some(fallback),
        };
        assert!(variables(vec![input("string", Value::from("x"))]).is_ok());
        assert!(variables(vec![input("number", Value::from(2.5))]).is_ok());
        assert!(variables(vec![input("number", Value::from("2"))]).is_err());
        assert!(variables(vec![input("string", Value::from(2))]).is_err());
        assert!(variables(vec![input("boolean", Value::from(true))]).is_err());
    }
}
