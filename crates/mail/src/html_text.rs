//! A plain-text rendering of an HTML body, for the text part of messages sent with HTML only.
//!
//! Deliberately small: drops tags, `<script>`/`<style>`/`<head>` content and comments, turns block-level
//! elements and `<br>` into line breaks, keeps link targets as `text (url)`, decodes the common entities, and
//! collapses runs of blank space. It never fails on malformed HTML; it just does less.

/// Block-level elements whose boundaries become line breaks.
const BLOCK_TAGS: &[&str] = &[
    "p",
    "div",
    "br",
    "tr",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "ul",
    "ol",
    "blockquote",
    "hr",
    "section",
    "article",
    "header",
    "footer",
];
/// Elements whose content is not text a reader should see.
const HIDDEN_TAGS: &[&str] = &["script", "style", "head", "title"];

pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    let mut hidden: Option<String> = None;
    let mut pending_href: Vec<Option<String>> = Vec::new();
    while let Some(lt) = rest.find('<') {
        if hidden.is_none() {
            push_text(&mut out, &rest[..lt]);
        }
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else {
            rest = "";
            break;
        };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if let Some(open) = &hidden {
            if closing && *open == name {
                hidden = None;
            }
            continue;
        }
        if !closing && HIDDEN_TAGS.contains(&name.as_str()) && !tag.ends_with('/') {
            hidden = Some(name);
            continue;
        }
        if name == "a" {
            if closing {
                if let Some(Some(href)) = pending_href.pop() {
                    out.push_str(&format!(" ({href})"));
                }
            } else {
                pending_href.push(attribute(tag, "href").filter(|h| h.starts_with("http")));
            }
        }
        if BLOCK_TAGS.contains(&name.as_str()) && !out.ends_with("\n\n") {
            out.push('\n');
        }
    }
    if hidden.is_none() {
        push_text(&mut out, rest);
    }
    tidy(&out)
}

fn push_text(out: &mut String, raw: &str) {
    let decoded = decode_entities(raw);
    for c in decoded.chars() {
        if c.is_whitespace() {
            if !out.ends_with([' ', '\n']) && !out.is_empty() {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let at = lower.find(&format!("{name}="))? + name.len() + 1;
    let value = &tag[at..];
    let (quote, value) = match value.chars().next()? {
        q @ ('"' | '\'') => (Some(q), &value[1..]),
        _ => (None, value),
    };
    let end = match quote {
        Some(q) => value.find(q)?,
        None => value.find(char::is_whitespace).unwrap_or(value.len()),
    };
    Some(decode_entities(&value[..end]))
}

fn decode_entities(raw: &str) -> String {
    if !raw.contains('&') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // Entities are short: look at most ten bytes ahead, so a body full of `&` stays linear.
        let entity_end = rest
            .as_bytes()
            .iter()
            .skip(1)
            .take(10)
            .position(|&b| b == b';')
            .map(|i| i + 1);
        let decoded = entity_end.and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Trims each line and keeps at most one blank line in a row.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 || out.is_empty() {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_readable_text() {
        let html = "<html><head><title>T</title><style>p{color:red}</style></head><body>\
                    <h1>Welcome</h1><p>Hello&nbsp;<b>Jane</b> &amp; co.</p><!-- hidden -->\
                    <p>Visit <a href=\"https://acme.com/x?a=1&amp;b=2\">our site</a>.</p>\
                    <script>alert(1)</script><ul><li>one</li><li>two</li></ul>&#233;&#x263A;</body></html>";
        let text = html_to_text(html);
        assert_eq!(
            text,
            "Welcome\n\nHello Jane & co.\n\nVisit our site (https://acme.com/x?a=1&b=2).\n\none\n\ntwo\n\né☺"
        );
    }

    #[test]
    fn many_ampersands_stay_linear() {
        let text = html_to_text(&"&".repeat(200_000));
        assert_eq!(text.len(), 200_000);
    }

    #[test]
    fn never_panics_on_malformed_input() {
        for html in [
            "<",
            "<<<>>>",
            "<a href=",
            "&#xFFFFFFFF;",
            "&#;",
            "<!--",
            "<p",
            "&",
            "é<é>é",
            "<a href='x",
        ] {
            let _ = html_to_text(html);
        }
    }
}
