//! The text forms of the columns that hold more than one value, and reading a row's columns back into typed
//! values. One code path for both backends: every such column is `TEXT` holding JSON.
//!
//! | column | stored as |
//! |---|---|
//! | a mailbox (`emails.from_address`) | `{"name": "Acme", "address": "a@acme.com"}` (`name` left out when none) |
//! | a mailbox list (`emails.to_addresses`…) | a JSON array of those objects |
//! | headers, tags | a JSON array of `[name, value]` pairs, in the client's order |
//! | other lists (received addresses, event types) | a JSON array of strings |
//! | event details (`email_events.data`…) | a JSON object |
//! | a domain's record checks | a JSON array of `RecordCheck` objects |
//!
//! Mailboxes were parsed when the email was accepted and are read back without being checked again
//! ([`Mailbox::from_trusted`]). Rows written before mailboxes were stored as objects hold display strings
//! (`"Acme <a@acme.com>"`, a JSON array of them for lists): those are still read, by parsing the display form
//! as the API did when it wrote them. Old and new rows live side by side, so an upgraded database needs no
//! data migration, and rows an older process writes during a rolling upgrade read the same way.
//!
//! A value that cannot be read is damaged data: [`StoreError::Corrupt`] names the table, row and column.

use std::str::FromStr;

use opensend_core::dns_record::RecordCheck;
use opensend_core::{EmailAddress, Header, Mailbox, Tag};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::StoreError;

#[derive(Serialize, Deserialize)]
struct StoredMailbox {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    address: String,
}

impl From<&Mailbox> for StoredMailbox {
    fn from(mailbox: &Mailbox) -> Self {
        Self {
            name: mailbox.name.clone(),
            address: mailbox.address.as_str().to_owned(),
        }
    }
}

/// One element of a stored mailbox list: the object form, or a display string of older rows.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredListMailbox {
    Object(StoredMailbox),
    Display(String),
}

/// Lists of strings, pairs and plain structs always serialise; the fallback is never taken.
fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn mailbox_text(mailbox: &Mailbox) -> String {
    serde_json::to_string(&StoredMailbox::from(mailbox)).unwrap_or_else(|_| "{}".to_owned())
}

pub(crate) fn mailboxes_text(mailboxes: &[Mailbox]) -> String {
    let stored: Vec<StoredMailbox> = mailboxes.iter().map(StoredMailbox::from).collect();
    to_json(&stored)
}

pub(crate) fn strings_text<S: AsRef<str>>(values: &[S]) -> String {
    let values: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
    to_json(&values)
}

pub(crate) fn checks_text(checks: &[RecordCheck]) -> String {
    to_json(checks)
}

pub(crate) fn headers_text(headers: &[Header]) -> String {
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    to_json(&pairs)
}

pub(crate) fn tags_text(tags: &[Tag]) -> String {
    let pairs: Vec<(&str, &str)> = tags
        .iter()
        .map(|t| (t.name.as_str(), t.value.as_str()))
        .collect();
    to_json(&pairs)
}

/// Reads the columns of one row, naming the row in every error.
pub(crate) struct Row {
    table: &'static str,
    id: Uuid,
}

impl Row {
    pub(crate) fn new(table: &'static str, id: Uuid) -> Self {
        Self { table, id }
    }

    fn damaged(&self, column: &str, why: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!("{}.{column} of {}: {why}", self.table, self.id))
    }

    fn json<T: DeserializeOwned>(&self, column: &str, text: &str) -> Result<T, StoreError> {
        serde_json::from_str(text).map_err(|e| self.damaged(column, e))
    }

    /// A vocabulary value (status, kind, state).
    pub(crate) fn value<T: FromStr<Err: std::fmt::Display>>(
        &self,
        column: &str,
        text: &str,
    ) -> Result<T, StoreError> {
        text.parse().map_err(|e| self.damaged(column, e))
    }

    pub(crate) fn address(&self, column: &str, text: String) -> Result<EmailAddress, StoreError> {
        EmailAddress::from_trusted(text).ok_or_else(|| self.damaged(column, "not an address"))
    }

    pub(crate) fn mailbox(&self, column: &str, text: &str) -> Result<Mailbox, StoreError> {
        match serde_json::from_str::<StoredMailbox>(text) {
            Ok(stored) => self.trusted(column, stored),
            Err(_) => Mailbox::parse(text).map_err(|e| self.damaged(column, e)),
        }
    }

    pub(crate) fn mailboxes(&self, column: &str, text: &str) -> Result<Vec<Mailbox>, StoreError> {
        self.json::<Vec<StoredListMailbox>>(column, text)?
            .into_iter()
            .map(|element| match element {
                StoredListMailbox::Object(stored) => self.trusted(column, stored),
                StoredListMailbox::Display(display) => {
                    Mailbox::parse(&display).map_err(|e| self.damaged(column, e))
                }
            })
            .collect()
    }

    fn trusted(&self, column: &str, stored: StoredMailbox) -> Result<Mailbox, StoreError> {
        Mailbox::from_trusted(stored.name, stored.address)
            .ok_or_else(|| self.damaged(column, "not an address"))
    }

    pub(crate) fn strings(&self, column: &str, text: &str) -> Result<Vec<String>, StoreError> {
        self.json(column, text)
    }

    /// A list of vocabulary values stored as strings (event types).
    pub(crate) fn values<T: FromStr<Err: std::fmt::Display>>(
        &self,
        column: &str,
        text: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.strings(column, text)?
            .iter()
            .map(|name| self.value(column, name))
            .collect()
    }

    pub(crate) fn headers(&self, column: &str, text: &str) -> Result<Vec<Header>, StoreError> {
        let pairs: Vec<(String, String)> = self.json(column, text)?;
        Ok(pairs
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect())
    }

    pub(crate) fn tags(&self, column: &str, text: &str) -> Result<Vec<Tag>, StoreError> {
        let pairs: Vec<(String, String)> = self.json(column, text)?;
        Ok(pairs
            .into_iter()
            .map(|(name, value)| Tag { name, value })
            .collect())
    }

    /// A JSON document (event details, record checks).
    pub(crate) fn document<T: DeserializeOwned>(
        &self,
        column: &str,
        text: &str,
    ) -> Result<T, StoreError> {
        self.json(column, text)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn row() -> Row {
        Row::new("emails", Uuid::nil())
    }

    #[test]
    fn mailboxes_round_trip_as_objects() {
        let list = vec![
            Mailbox::parse("Acme <hello@acme.com>").unwrap(),
            Mailbox::parse("jane@example.com").unwrap(),
            Mailbox::parse("\"Doe, \\\"Bob\\\"\" <bob@example.com>").unwrap(),
        ];
        let text = mailboxes_text(&list);
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap()[0],
            serde_json::json!({"name": "Acme", "address": "hello@acme.com"})
        );
        assert_eq!(row().mailboxes("to_addresses", &text).unwrap(), list);
        for mailbox in &list {
            assert_eq!(
                &row()
                    .mailbox("from_address", &mailbox_text(mailbox))
                    .unwrap(),
                mailbox
            );
        }
    }

    #[test]
    fn rows_of_display_strings_still_read() {
        // What the accept path wrote before mailboxes were stored as objects.
        let from = row()
            .mailbox("from_address", "Acme <hello@acme.com>")
            .unwrap();
        assert_eq!(from.name.as_deref(), Some("Acme"));
        assert_eq!(from.address.as_str(), "hello@acme.com");
        let bare = row().mailbox("from_address", "{a}@example.com").unwrap();
        assert_eq!(bare.address.as_str(), "{a}@example.com");
        let to = row()
            .mailboxes(
                "to_addresses",
                r#"["jane@example.com","\"Doe, Jane\" <jane@acme.com>"]"#,
            )
            .unwrap();
        assert_eq!(to[0].name, None);
        assert_eq!(to[1].name.as_deref(), Some("Doe, Jane"));
        // Old and new elements may even share a list.
        let mixed = row()
            .mailboxes(
                "cc_addresses",
                r#"["a@example.com",{"address":"b@example.com"}]"#,
            )
            .unwrap();
        assert_eq!(mixed.len(), 2);
    }

    #[test]
    fn damaged_values_name_their_row() {
        let error = row().mailboxes("to_addresses", "not json").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("emails.to_addresses of 00000000-0000-0000-0000-000000000000"),
            "{error}"
        );
        assert!(row().mailbox("from_address", "no address").is_err());
        assert!(
            row()
                .mailbox("from_address", r#"{"address":"no-at"}"#)
                .is_err()
        );
        assert!(
            row()
                .value::<opensend_core::EmailStatus>("status", "sending")
                .is_err()
        );
    }

    #[test]
    fn headers_and_tags_keep_their_order_as_pairs() {
        let headers = vec![Header::new("X-B", "2"), Header::new("X-A", "1")];
        let text = headers_text(&headers);
        assert_eq!(text, r#"[["X-B","2"],["X-A","1"]]"#);
        assert_eq!(row().headers("headers", &text).unwrap(), headers);
        let tags = vec![Tag::new("plan", "pro")];
        assert_eq!(row().tags("tags", &tags_text(&tags)).unwrap(), tags);
    }
}
