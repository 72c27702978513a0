//! The CSV side of the suppression list: the import format, read strictly with every bad row reported by its
//! line number, and the export format.
//!
//! Import: UTF-8 (a byte-order mark is allowed), a header row first, then one address per row. Columns are
//! found by their header name: `email` (required), `reason` (optional; blank means `manual`) and
//! `created_at` (accepted and ignored, so an export can be imported as it is). Blank lines are skipped.

use opensend_core::EmailAddress;
use opensend_store::entities::suppression;
use opensend_store::repos::suppressions::{NewSuppression, Reason};

use crate::api::timestamp;

/// Most data rows one import may have (the header not counted).
pub const MAX_ROWS: usize = 10_000;
/// Largest import body.
pub const MAX_BYTES: usize = 2 * 1024 * 1024;
/// First line of an export.
pub const EXPORT_HEADER: &str = "email,reason,created_at\n";

/// A row that cannot be imported, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line of the file where the row starts (the header is line 1).
    pub line: u64,
    pub message: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ImportError {
    NotUtf8 { line: u64 },
    Empty,
    Header(String),
    TooManyRows,
    Rows(Vec<RowError>),
}

impl ImportError {
    /// What the client is told (for [`ImportError::Rows`], the first few rows; the response lists all).
    pub fn message(&self) -> String {
        match self {
            ImportError::NotUtf8 { line } => {
                format!("The CSV must be UTF-8 text; line {line} is not. Nothing was imported.")
            }
            ImportError::Empty => {
                "The CSV is empty: it needs a header row (`email` or `email,reason`) and then one address per row."
                    .to_owned()
            }
            ImportError::Header(problem) => format!("{problem} Nothing was imported."),
            ImportError::TooManyRows => {
                format!("The CSV has more than {MAX_ROWS} rows; split it into several imports. Nothing was imported.")
            }
            ImportError::Rows(errors) => rows_message(errors),
        }
    }
}

/// The message for bad rows: how many, and the first few by line (the response lists them all).
pub fn rows_message(errors: &[RowError]) -> String {
    const SHOWN: usize = 10;
    let mut message = format!(
        "{} row{} of the CSV {} invalid; nothing was imported. ",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" },
        if errors.len() == 1 { "is" } else { "are" },
    );
    let listed: Vec<String> = errors
        .iter()
        .take(SHOWN)
        .map(|e| format!("line {}: {}", e.line, e.message))
        .collect();
    message.push_str(&listed.join("; "));
    if errors.len() > SHOWN {
        message.push_str(&format!(
            "; and {} more (see `errors`).",
            errors.len() - SHOWN
        ));
    }
    message
}

struct Columns {
    email: usize,
    reason: Option<usize>,
    count: usize,
}

/// Reads an import. All or nothing: any bad row makes it an error that lists every bad row.
pub fn parse_import(body: &[u8]) -> Result<Vec<NewSuppression>, ImportError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if let Err(e) = std::str::from_utf8(body) {
        let line = 1 + body[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        return Err(ImportError::NotUtf8 { line });
    }
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(body);
    let mut records = reader.records();

    let columns = loop {
        match records.next() {
            None => return Err(ImportError::Empty),
            Some(Err(e)) => {
                return Err(ImportError::Header(format!(
                    "The header row cannot be read: {e}."
                )));
            }
            Some(Ok(record)) if is_blank(&record) => continue,
            Some(Ok(record)) => break header(&record)?,
        }
    };

    let mut lines = Lines::new(body);
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut rows = 0usize;
    for result in records {
        let record = match result {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| lines.of(p.byte()));
                errors.push(RowError {
                    line,
                    message: format!("cannot be read: {e}"),
                });
                if !matches!(
                    e.kind(),
                    ::csv::ErrorKind::UnequalLengths { .. } | ::csv::ErrorKind::Utf8 { .. }
                ) {
                    break;
                }
                continue;
            }
        };
        if is_blank(&record) {
            continue;
        }
        rows += 1;
        if rows > MAX_ROWS {
            return Err(ImportError::TooManyRows);
        }
        let line = record.position().map_or(0, |p| lines.of(p.byte()));
        match row(&record, &columns) {
            Ok(entry) => entries.push(entry),
            Err(message) => errors.push(RowError { line, message }),
        }
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(ImportError::Rows(errors))
    }
}

/// Line numbers of byte offsets, counted incrementally (offsets only grow) so a large file costs one pass.
struct Lines<'a> {
    body: &'a [u8],
    at: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(body: &'a [u8]) -> Self {
        Self {
            body,
            at: 0,
            line: 1,
        }
    }

    /// The 1-based line of the record the reader places at byte `at`. The reader puts a record's start just
    /// after the previous record's terminator, which for CRLF files or after blank lines is before some line
    /// breaks; the record really starts after them.
    fn of(&mut self, at: u64) -> u64 {
        let mut at = usize::try_from(at)
            .unwrap_or(usize::MAX)
            .min(self.body.len());
        while at < self.body.len() && matches!(self.body[at], b'\r' | b'\n') {
            at += 1;
        }
        if at > self.at {
            self.line += self.body[self.at..at]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            self.at = at;
        }
        self.line
    }
}

fn is_blank(record: &::csv::StringRecord) -> bool {
    record.iter().all(str::is_empty)
}

fn header(record: &::csv::StringRecord) -> Result<Columns, ImportError> {
    let mut email = None;
    let mut reason = None;
    for (index, name) in record.iter().enumerate() {
        let slot = match name.to_ascii_lowercase().as_str() {
            "email" => &mut email,
            "reason" => &mut reason,
            // Exported files carry it; the import gives each row a new creation time.
            "created_at" | "" => continue,
            _ if email.is_none() && EmailAddress::parse(name).is_ok() => {
                return Err(ImportError::Header(format!(
                    "The first line must be a header row naming the columns (`email` or `email,reason`); found the address `{}` instead.",
                    shorten(name)
                )));
            }
            other => {
                return Err(ImportError::Header(format!(
                    "Unknown column `{}` in the header row: the columns are `email` (required), `reason` and `created_at`.",
                    shorten(other)
                )));
            }
        };
        if slot.replace(index).is_some() {
            return Err(ImportError::Header(format!(
                "The column `{}` appears twice in the header row.",
                name.to_ascii_lowercase()
            )));
        }
    }
    let email = email.ok_or_else(|| {
        ImportError::Header(
            "The header row must name an `email` column (`email` or `email,reason`).".to_owned(),
        )
    })?;
    Ok(Columns {
        email,
        reason,
        count: record.len(),
    })
}

fn row(record: &::csv::StringRecord, columns: &Columns) -> Result<NewSuppression, String> {
    if record.len() > columns.count {
        return Err(format!(
            "{} columns, but the header row has {}",
            record.len(),
            columns.count
        ));
    }
    let email = record.get(columns.email).unwrap_or_default();
    if email.is_empty() {
        return Err("the email is empty".to_owned());
    }
    let address = EmailAddress::parse(email).map_err(|e| e.to_string())?;
    let reason = match columns.reason.and_then(|i| record.get(i)) {
        None | Some("") => Reason::Manual,
        Some(raw) => raw.parse::<Reason>().map_err(|e| e.to_string())?,
    };
    Ok(NewSuppression::new(address, reason))
}

fn shorten(text: &str) -> String {
    let short: String = text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(60)
        .collect();
    if text.chars().count() > 60 {
        format!("{short}…")
    } else {
        short
    }
}

/// One export line: `email,reason,created_at\n`. Addresses are dot-atoms and reasons and timestamps are
/// plain words, so no field ever needs quoting; a field that did would be quoted all the same.
pub fn export_line(row: &suppression::Model) -> String {
    format!(
        "{},{},{}\n",
        field(&row.address),
        field(&row.reason),
        timestamp(row.created_at)
    )
}

fn field(value: &str) -> String {
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(entries: &[NewSuppression]) -> Vec<(&str, Reason)> {
        entries
            .iter()
            .map(|e| (e.address.as_str(), e.reason))
            .collect()
    }

    #[test]
    fn reads_the_columns_by_name_in_any_order() {
        let csv = "\u{feff}Reason,Email\r\nbounce,a@Example.com\r\n\r\n,b@example.com\n\"complaint\",\"c@example.com\"\n";
        let entries = parse_import(csv.as_bytes()).unwrap();
        assert_eq!(
            addresses(&entries),
            [
                ("a@example.com", Reason::Bounce),
                ("b@example.com", Reason::Manual),
                ("c@example.com", Reason::Complaint),
            ]
        );
        let only_email = parse_import(b"email\nx@example.com").unwrap();
        assert_eq!(addresses(&only_email), [("x@example.com", Reason::Manual)]);
        let exported =
            format!("{EXPORT_HEADER}y@example.com,unsubscribe,2026-11-27T08:45:27.123Z\n");
        assert_eq!(
            addresses(&parse_import(exported.as_bytes()).unwrap()),
            [("y@example.com", Reason::Unsubscribe)]
        );
        assert_eq!(parse_import(b"email\n").unwrap(), Vec::new());
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let csv = "email,reason\nok@example.com,manual\nnot-an-address,bounce\n\nx@example.com,spam\n,manual\nz@example.com,manual,extra\n";
        let crlf = csv.replace('\n', "\r\n");
        let Err(ImportError::Rows(with_crlf)) = parse_import(crlf.as_bytes()) else {
            panic!("expected row errors");
        };
        let Err(ImportError::Rows(errors)) = parse_import(csv.as_bytes()) else {
            panic!("expected row errors");
        };
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 5, 6, 7], "{errors:?}");
        assert_eq!(with_crlf, errors, "same lines whatever the line ends");
        assert!(errors[0].message.contains("not-an-address"));
        assert!(errors[1].message.contains("spam"));
        let message = ImportError::Rows(errors).message();
        assert!(
            message.starts_with("4 rows of the CSV are invalid"),
            "{message}"
        );
        assert!(message.contains("line 5:"), "{message}");
    }

    #[test]
    fn refuses_files_without_a_usable_header() {
        assert_eq!(parse_import(b""), Err(ImportError::Empty));
        assert_eq!(parse_import(b"\n\n"), Err(ImportError::Empty));
        for bad in [
            "jane@example.com\n",
            "address\njane@example.com\n",
            "email,email\n",
            "reason\nbounce\n",
        ] {
            assert!(
                matches!(parse_import(bad.as_bytes()), Err(ImportError::Header(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_import(b"email\nok@example.com\n\xff@example.com\n"),
            Err(ImportError::NotUtf8 { line: 3 })
        );
    }

    #[test]
    fn counts_rows_against_the_limit() {
        let mut csv = String::from("email\n");
        for i in 0..MAX_ROWS {
            csv.push_str(&format!("a{i}@example.com\n"));
        }
        assert_eq!(parse_import(csv.as_bytes()).unwrap().len(), MAX_ROWS);
        csv.push_str("one-more@example.com\n");
        assert_eq!(parse_import(csv.as_bytes()), Err(ImportError::TooManyRows));
    }
}
