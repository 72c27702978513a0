//! What the request log must never keep: secrets sent to the API or answered by it. Runs on every body
//! before it is queued, so nothing secret reaches the database or the writer's memory for longer than
//! the request itself.
//!
//! Two rules: the value of any field whose name says it is a secret (`password`, `token`, `secret`,
//! `api_key`, `key`, `authorization`, an attachment's `content`…) is replaced whatever it holds, and any
//! text anywhere that looks like an API key (`os_…`, or Resend's `re_…`) or a webhook signing secret
//! (`whsec_…`) is replaced where it appears, so a secret pasted into a subject or a tag does not survive
//! either.

use serde_json::Value;

/// What a redacted value becomes.
pub const REDACTED: &str = "[redacted]";

/// Prefixes of the tokens found by shape: our API keys, Resend's, webhook signing secrets.
const TOKEN_PREFIXES: [&str; 3] = ["os_", "re_", "whsec_"];
/// Least number of token characters after the prefix for text to count as a token: every real one is
/// far longer, and short words such as `re_send` stay readable.
const MIN_TOKEN_BODY: usize = 16;

/// Redacts `value` in place (see the module docs).
pub fn redact_json(value: &mut Value) {
    redact_within(value, false);
}

fn redact_within(value: &mut Value, in_attachments: bool) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                if is_secret_field(name) || (in_attachments && name == "content") {
                    *field = Value::String(REDACTED.to_owned());
                } else {
                    redact_within(field, in_attachments || name == "attachments");
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                redact_within(item, in_attachments);
            }
        }
        Value::String(text) => {
            if let std::borrow::Cow::Owned(redacted) = redact_text(text) {
                *text = redacted;
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Whether a field named `name` holds a secret. Names are compared in lower case with `-` as `_`, so
/// header maps (`X-Api-Key`) are covered too.
fn is_secret_field(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace('-', "_");
    // `key`: the field a created API key is answered in by some clients' APIs; over-redacting a harmless
    // `key` (a contact property's) costs less than keeping a secret.
    matches!(
        name.as_str(),
        "key" | "api_key" | "apikey" | "authorization" | "signing_secret" | "x_api_key"
    ) || name.contains("password")
        || name.contains("secret")
        || name.contains("token")
        || name.ends_with("_api_key")
}

/// A body that is not whole JSON (cut at the size limit, or another format): the values of secret fields
/// written as `"name": "value"` are replaced, and an attachment's `content` with them (without the whole
/// document there is no telling whose `content` it is), then token-shaped text (see [`redact_text`]).
pub fn redact_partial_json(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] != b'"' {
            at += 1;
            continue;
        }
        let name_end = string_end(bytes, at);
        // A name cut off by the size limit ends with the text (no closing quote to leave out).
        let name = text
            .get(at + 1..name_end.saturating_sub(1).max(at + 1))
            .unwrap_or_default();
        let mut next = name_end;
        while next < bytes.len() && bytes[next].is_ascii_whitespace() {
            next += 1;
        }
        if next < bytes.len() && bytes[next] == b':' && (is_secret_field(name) || name == "content")
        {
            next += 1;
            while next < bytes.len() && bytes[next].is_ascii_whitespace() {
                next += 1;
            }
            if next < bytes.len() && bytes[next] == b'"' {
                out.push_str(&text[copied..next]);
                out.push('"');
                out.push_str(REDACTED);
                out.push('"');
                at = string_end(bytes, next);
                copied = at;
                continue;
            }
        }
        at = name_end;
    }
    out.push_str(&text[copied..]);
    redact_text(&out).into_owned()
}

/// Where the JSON string literal opening at `start` (a `"`) ends: just past its closing quote, or the end
/// of the text when it was cut off.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut at = start + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    // An escape at the very end steps past it.
    bytes.len().min(at)
}

/// `text` with every token-shaped run (see [`TOKEN_PREFIXES`]) replaced by [`REDACTED`]; borrowed when
/// there was none.
pub fn redact_text(text: &str) -> std::borrow::Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0;
    let mut at = 0;
    let bytes = text.as_bytes();
    while at < bytes.len() {
        let starts_word =
            at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let prefix = starts_word
            .then(|| {
                TOKEN_PREFIXES
                    .iter()
                    .find(|p| bytes[at..].starts_with(p.as_bytes()))
            })
            .flatten();
        if let Some(prefix) = prefix {
            let body_start = at + prefix.len();
            let body_len = bytes[body_start..]
                .iter()
                .take_while(|b| is_token_char(**b))
                .count();
            if body_len >= MIN_TOKEN_BODY {
                out.push_str(&text[copied..at]);
                out.push_str(REDACTED);
                at = body_start + body_len;
                copied = at;
                continue;
            }
        }
        at += 1;
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    std::borrow::Cow::Owned(out)
}

/// Characters of API keys (base62 and `_`) and of base64 webhook secrets.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+' | b'/' | b'=')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn redacted(mut value: Value) -> Value {
        redact_json(&mut value);
        value
    }

    #[test]
    fn secret_fields_are_replaced_whatever_they_hold() {
        let value = redacted(json!({
            "name": "ci",
            "token": "os_abc",
            "password": {"nested": 1},
            "signing_secret": "x",
            "key": "k",
            "headers": {"Authorization": "Bearer abc", "X-Api-Key": "abc", "X-Entity-Ref-ID": "42"},
        }));
        assert_eq!(
            value,
            json!({
                "name": "ci",
                "token": REDACTED,
                "password": REDACTED,
                "signing_secret": REDACTED,
                "key": REDACTED,
                "headers": {"Authorization": REDACTED, "X-Api-Key": REDACTED, "X-Entity-Ref-ID": "42"},
            })
        );
    }

    #[test]
    fn attachment_content_is_replaced_but_other_content_is_kept() {
        let value = redacted(json!({
            "content": "not an attachment",
            "attachments": [{"filename": "a.pdf", "content": "JVBERi0xLjQK"}],
        }));
        assert_eq!(
            value,
            json!({
                "content": "not an attachment",
                "attachments": [{"filename": "a.pdf", "content": REDACTED}],
            })
        );
    }

    #[test]
    fn token_shaped_text_is_replaced_where_it_appears() {
        let key = format!("os_{}", "A1b2".repeat(10));
        let resend = format!("re_{}", "x".repeat(20));
        let secret = format!("whsec_{}", "c2VjcmV0+/=".repeat(3));
        let value = redacted(json!({
            "subject": format!("my key is {key}, theirs {resend}"),
            "tags": [secret],
        }));
        assert_eq!(
            value,
            json!({
                "subject": "my key is [redacted], theirs [redacted]",
                "tags": [REDACTED],
            })
        );
    }

    #[test]
    fn short_or_embedded_prefixes_are_not_tokens() {
        let text = "re_send, chaos_0123456789abcdefghij and os_short";
        assert_eq!(redact_text(text), text);
    }

    #[test]
    fn cut_json_loses_its_secret_values() {
        let text = r#"{"name": "k", "token":"os_x", "headers": {"X-Password" : "a\"b"}, "attachments": [{"content": "JVBERi0xLj"#;
        assert_eq!(
            redact_partial_json(text),
            r#"{"name": "k", "token":"[redacted]", "headers": {"X-Password" : "[redacted]"}, "attachments": [{"content": "[redacted]""#
        );
    }

    #[test]
    fn text_bodies_lose_their_tokens() {
        let text = format!("token=os_{}&x=1", "z".repeat(40));
        assert_eq!(redact_text(&text), "token=[redacted]&x=1");
    }
}
