//! Open and click tracking in an HTML body: the `href` of each link rewritten to a tracked URL, and a 1×1
//! image whose loading is the open.
//!
//! The HTML is the sender's and untrusted: it is scanned, not parsed into a tree, and every malformed
//! piece (an unclosed tag, an unquoted or unterminated attribute, stray bytes) is left exactly as it was.
//! Only `href` attributes of `<a>` and `<area>` tags whose value is an `http:` or `https:` URL are changed;
//! `mailto:`, `tel:`, fragments, relative links and template placeholders are not. Comments are skipped, as
//! is the content of `<script>`, `<style>` and `<title>`. The text part of an email is never changed.

/// The HTML with each tracked link's `href` replaced by what `track` gives for it (the URL as the reader
/// would follow it: `&amp;` and the other basic entities decoded). `track` gives `None` to keep a link as
/// it is.
pub fn rewrite_links(html: &str, mut track: impl FnMut(&str) -> Option<String>) -> String {
    let bytes = html.as_bytes();
    let mut out = String::with_capacity(html.len() + html.len() / 4);
    let mut copied = 0;
    let mut at = 0;
    while let Some(offset) = bytes.get(at..).and_then(|rest| find(rest, b"<")) {
        let open = at + offset;
        let rest = &bytes[open..];
        if rest.starts_with(b"<!--") {
            at = match find(&rest[4..], b"-->") {
                Some(end) => open + 4 + end + 3,
                None => break,
            };
            continue;
        }
        let Some(tag) = tag_name(&rest[1..]) else {
            at = open + 1;
            continue;
        };
        let Some(end) = tag_end(bytes, open + 1 + tag.len()) else {
            break;
        };
        if tag.eq_ignore_ascii_case(b"script")
            || tag.eq_ignore_ascii_case(b"style")
            || tag.eq_ignore_ascii_case(b"title")
        {
            let closing = [b"</".as_slice(), tag].concat();
            at = find_ignore_case(&bytes[end..], &closing).map_or(bytes.len(), |c| end + c);
            continue;
        }
        if (tag.eq_ignore_ascii_case(b"a") || tag.eq_ignore_ascii_case(b"area"))
            && let Some(href) = href_of(bytes, open + 1 + tag.len(), end)
            && let Some(value) = html.get(href.value.clone())
        {
            let url = decode_entities(value);
            if is_web_url(&url)
                && let Some(tracked) = track(&url)
                && let Some(before) = html.get(copied..href.whole.start)
            {
                out.push_str(before);
                out.push('"');
                out.push_str(&escape_attribute(&tracked));
                out.push('"');
                copied = href.whole.end;
            }
        }
        at = end;
    }
    out.push_str(html.get(copied..).unwrap_or_default());
    out
}

/// The HTML with a 1×1 image loading `pixel_url` before its last `</body>` (at the end when there is none).
pub fn add_open_pixel(html: &str, pixel_url: &str) -> String {
    let pixel = format!(
        r#"<img src="{}" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0" />"#,
        escape_attribute(pixel_url)
    );
    let at = rfind_ignore_case(html.as_bytes(), b"</body").unwrap_or(html.len());
    let (before, after) = html.split_at_checked(at).unwrap_or((html, ""));
    let mut out = String::with_capacity(html.len() + pixel.len());
    out.push_str(before);
    out.push_str(&pixel);
    out.push_str(after);
    out
}

struct Href {
    /// The attribute's value as written, quotes included.
    whole: std::ops::Range<usize>,
    /// The value without its quotes.
    value: std::ops::Range<usize>,
}

/// The tag name after a `<`: ASCII letters and digits, ending at whitespace, `/` or `>`.
fn tag_name(after_open: &[u8]) -> Option<&[u8]> {
    let len = after_open
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    let name = after_open.get(..len)?;
    let next = after_open.get(len).copied();
    let ends = matches!(
        next,
        Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/' | b'>')
    );
    (len > 0 && name[0].is_ascii_alphabetic() && ends).then_some(name)
}

/// Where the tag that started before `from` ends (just past its `>`), skipping quoted attribute values.
fn tag_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut quote = None;
    for (i, &b) in bytes.iter().enumerate().skip(from) {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'>') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// The quoted `href` attribute among a tag's attributes (`from..end`). An unquoted value is not rewritten.
fn href_of(bytes: &[u8], from: usize, end: usize) -> Option<Href> {
    let mut i = from;
    while i < end {
        let b = *bytes.get(i)?;
        if b.is_ascii_whitespace() || b == b'/' {
            i += 1;
            continue;
        }
        if b == b'>' {
            return None;
        }
        let name_start = i;
        while i < end
            && !matches!(bytes.get(i), Some(b'=' | b'>' | b'/'))
            && !bytes.get(i).is_some_and(u8::is_ascii_whitespace)
        {
            i += 1;
        }
        let name = bytes.get(name_start..i)?;
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        let value_start = i;
        let value = match bytes.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                let close = find(bytes.get(i + 1..end)?, &[q])?;
                i = i + 1 + close + 1;
                Some(value_start + 1..i - 1)
            }
            _ => {
                while i < end
                    && !bytes.get(i).is_some_and(u8::is_ascii_whitespace)
                    && bytes.get(i) != Some(&b'>')
                {
                    i += 1;
                }
                None
            }
        };
        if name.eq_ignore_ascii_case(b"href") {
            return value.map(|value| Href {
                whole: value_start..i,
                value,
            });
        }
    }
    None
}

fn is_web_url(url: &str) -> bool {
    let url = url.trim_start();
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// The basic entities a link's `href` is written with (`&amp;` above all), decoded.
fn decode_entities(value: &str) -> String {
    if !value.contains('&') {
        return value.trim().to_owned();
    }
    value
        .trim()
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

fn escape_attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

fn rfind_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .rposition(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracked(html: &str) -> String {
        rewrite_links(html, |url| Some(format!("https://t.test/c?u={url}")))
    }

    #[test]
    fn web_links_are_rewritten_and_nothing_else() {
        let html = r##"<p>Hi <a href="https://example.com/a?b=1&amp;c=2" class="x">one</a>,
<A HREF='http://example.com/two'>two</A>, <a href="mailto:a@example.com">m</a>, <a href="#top">t</a>,
<a href="/relative">r</a>, <a href="{{{RESEND_UNSUBSCRIBE_URL}}}">u</a>, <area href="https://example.com/map">
<!-- <a href="https://example.com/commented">c</a> --><a data-href="https://example.com/no">n</a></p>"##;
        let out = tracked(html);
        assert!(
            out.contains(
                r#"<a href="https://t.test/c?u=https://example.com/a?b=1&amp;c=2" class="x">"#
            ),
            "{out}"
        );
        assert!(
            out.contains(r#"<A HREF="https://t.test/c?u=http://example.com/two">"#),
            "{out}"
        );
        assert!(
            out.contains(r#"<area href="https://t.test/c?u=https://example.com/map">"#),
            "{out}"
        );
        for kept in [
            r#"<a href="mailto:a@example.com">"#,
            r##"<a href="#top">"##,
            r#"<a href="/relative">"#,
            r#"<a href="{{{RESEND_UNSUBSCRIBE_URL}}}">"#,
            r#"<!-- <a href="https://example.com/commented">c</a> -->"#,
            r#"<a data-href="https://example.com/no">"#,
        ] {
            assert!(out.contains(kept), "{kept} in {out}");
        }
    }

    #[test]
    fn a_link_can_be_kept() {
        let html = r#"<a href="https://keep.example/">k</a><a href="https://track.example/">t</a>"#;
        let out = rewrite_links(html, |url| {
            url.contains("track").then(|| "https://t.test/1".to_owned())
        });
        assert_eq!(
            out,
            r#"<a href="https://keep.example/">k</a><a href="https://t.test/1">t</a>"#
        );
    }

    #[test]
    fn scripts_styles_and_malformed_html_are_left_alone() {
        for html in [
            r#"<script>var a = '<a href="https://example.com/">';</script>"#,
            r#"<style>a[href="https://example.com/"] {}</style>"#,
            r#"<a href="https://example.com/"#,
            r#"<a href=https://example.com/>unquoted</a>"#,
            "<a href=\"https://example.com/\"",
            "<<<>>><a",
            "<!-- unterminated <a href=\"https://example.com/\">",
            "é<a é=\"x\">ü</a>",
            "",
        ] {
            assert_eq!(tracked(html), html, "{html}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Every prefix of a tricky document, cut at each character boundary.
        let html =
            "<a  href = \"https://e.example/ü\" >x</a><a href='https://e.example/'<b>é</b><!--";
        for (cut, _) in html.char_indices() {
            let _ = tracked(&html[..cut]);
            let _ = add_open_pixel(&html[..cut], "https://t.test/o");
        }
        assert!(tracked(html).contains("https://t.test/c?u=https://e.example/ü"));
    }

    #[test]
    fn the_pixel_goes_before_the_body_closes() {
        assert_eq!(
            add_open_pixel("<html><body><p>x</p></BODY></html>", "https://t.test/o?a&b"),
            r#"<html><body><p>x</p><img src="https://t.test/o?a&amp;b" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0" /></BODY></html>"#
        );
        assert!(add_open_pixel("<p>x</p>", "https://t.test/o").starts_with("<p>x</p><img "));
    }
}
