//! SMTP replies: a code, an enhanced status code (RFC 3463), and text that is always one clean ASCII line.

/// One reply, possibly of several lines (EHLO).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

/// Longest text of one reply line (RFC 5321 allows 512 octets with the code and CRLF).
const MAX_TEXT: usize = 400;

impl Reply {
    /// `code enhanced text`, e.g. `Reply::new(250, "2.0.0", "OK")`.
    pub fn new(code: u16, enhanced: &str, text: impl AsRef<str>) -> Self {
        Self {
            code,
            lines: vec![format!("{enhanced} {}", clean(text.as_ref()))],
        }
    }

    /// A reply without an enhanced status code (the greeting, EHLO, the `354` and `334` prompts).
    pub fn plain(code: u16, text: impl AsRef<str>) -> Self {
        Self {
            code,
            lines: vec![clean(text.as_ref())],
        }
    }

    pub fn multiline(code: u16, lines: Vec<String>) -> Self {
        Self {
            code,
            lines: lines.iter().map(|l| clean(l)).collect(),
        }
    }

    /// Whether the transaction it answers failed for good (5xx), for a while (4xx), or went through.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// The reply as sent: `250-…` for every line but the last, `250 …` for the last.
    pub fn render(&self, out: &mut Vec<u8>) {
        let count = self.lines.len().max(1);
        for index in 0..count {
            let text = self.lines.get(index).map(String::as_str).unwrap_or("");
            let separator = if index + 1 == count { ' ' } else { '-' };
            out.extend_from_slice(format!("{}{separator}{text}\r\n", self.code).as_bytes());
        }
    }
}

/// Printable ASCII only (anything else becomes `?`), and at most [`MAX_TEXT`] characters: a reply's text
/// can carry a message from elsewhere (a validation error naming a header), which must not break the line.
fn clean(text: &str) -> String {
    text.chars()
        .take(MAX_TEXT)
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_render_as_one_clean_line_each() {
        let mut out = Vec::new();
        Reply::new(554, "5.6.0", "bad\r\nRCPT TO:<x@y.z> é").render(&mut out);
        assert_eq!(out, b"554 5.6.0 bad??RCPT TO:<x@y.z> ?\r\n");
        let mut out = Vec::new();
        Reply::multiline(250, vec!["a".into(), "b".into()]).render(&mut out);
        assert_eq!(out, b"250-a\r\n250 b\r\n");
    }
}
