//! Contact imports: the options of `POST /contacts/imports` (column map, `on_conflict`, segments and topics
//! to apply), checked when the file is uploaded, and the reading of each CSV row into a contact, done by
//! the background job (`jobs::contact_imports`).
//!
//! Columns are found by their header, exactly or else ignoring case. Without a column map, the columns
//! `email`, `first_name`, `last_name` and `unsubscribed` are used where present. Empty cells leave a
//! field unset (and, with `upsert`, unchanged).

use std::collections::HashMap;

use opensend_core::EmailAddress;
use opensend_store::records::{ContactPropertyRecord, PropertyType, Subscription};
use opensend_store::repos::contact_imports::ImportRow;
use opensend_store::repos::contacts::{ContactChanges, NewContact};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::api::audience::MAX_TEXT;

/// Largest CSV file accepted, in bytes (Resend's limit).
pub const MAX_FILE_BYTES: usize = 50 * 1024 * 1024;
/// Size of the pieces an upload is stored in.
pub const CHUNK_BYTES: usize = 1024 * 1024;
/// Rows written per transaction.
pub const BATCH_ROWS: usize = 500;

/// A property filled from a column.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PropertyColumn {
    pub key: String,
    pub column: String,
    pub property_id: Uuid,
    pub value_type: PropertyType,
}

/// Which column holds what.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ColumnMap {
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub unsubscribed: Option<String>,
    pub properties: Vec<PropertyColumn>,
    /// No map was given: the optional standard columns are used only where the header has them.
    pub defaults: bool,
}

/// An import's checked options, as stored with it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImportOptions {
    pub columns: ColumnMap,
    pub upsert: bool,
    pub segments: Vec<Uuid>,
    pub topics: Vec<(Uuid, Subscription)>,
}

/// `column_map` as sent: `{"email": "Email", …, "properties": {"plan": {"column": "Plan", "type":
/// "string"}}}` (a property may also be just its column's name).
#[derive(Debug, Deserialize)]
pub struct RawColumnMap {
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    unsubscribed: Option<String>,
    #[serde(default)]
    properties: HashMap<String, RawPropertyColumn>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawPropertyColumn {
    Column(String),
    Object {
        column: String,
        #[serde(rename = "type")]
        value_type: Option<String>,
    },
}

/// Checks a column map against the organization's properties.
pub fn column_map(
    raw: Option<RawColumnMap>,
    properties: &[ContactPropertyRecord],
) -> Result<ColumnMap, String> {
    let Some(raw) = raw else {
        return Ok(ColumnMap {
            email: "email".into(),
            first_name: Some("first_name".into()),
            last_name: Some("last_name".into()),
            unsubscribed: Some("unsubscribed".into()),
            properties: Vec::new(),
            defaults: true,
        });
    };
    let mut columns = Vec::new();
    for (key, column) in raw.properties {
        let (column, value_type) = match column {
            RawPropertyColumn::Column(c) => (c, None),
            RawPropertyColumn::Object { column, value_type } => (column, value_type),
        };
        let Some(definition) = properties.iter().find(|p| p.key == key) else {
            return Err(format!(
                "`column_map.properties.{}`: there is no contact property `{}` (create it with POST /contact-properties)",
                shown(&key),
                shown(&key)
            ));
        };
        if let Some(t) = value_type
            && t != definition.value_type.as_str()
        {
            return Err(format!(
                "`column_map.properties.{}`: the property's type is {}, not `{}`",
                shown(&key),
                definition.value_type,
                shown(&t)
            ));
        }
        columns.push(PropertyColumn {
            key,
            column,
            property_id: definition.id,
            value_type: definition.value_type,
        });
    }
    columns.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(ColumnMap {
        email: raw.email.unwrap_or_else(|| "email".into()),
        first_name: raw.first_name,
        last_name: raw.last_name,
        unsubscribed: raw.unsubscribed,
        properties: columns,
        defaults: false,
    })
}

fn shown(text: &str) -> String {
    text.chars().take(50).collect()
}

/// Where each mapped column is in a file's header.
#[derive(Clone, Debug)]
pub struct Layout {
    email: usize,
    first_name: Option<usize>,
    last_name: Option<usize>,
    unsubscribed: Option<usize>,
    properties: Vec<(usize, PropertyColumn)>,
}

fn find(header: &[String], name: &str) -> Option<usize> {
    header.iter().position(|h| h.trim() == name).or_else(|| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    })
}

/// Finds the map's columns in `header`; every column the map names must be there.
pub fn layout(map: &ColumnMap, header: &[String]) -> Result<Layout, String> {
    let required = |name: &str| {
        find(header, name).ok_or_else(|| format!("the CSV header has no column `{}`", shown(name)))
    };
    let optional = |name: &Option<String>| -> Result<Option<usize>, String> {
        match name {
            None => Ok(None),
            Some(name) if map.defaults => Ok(find(header, name)),
            Some(name) => required(name).map(Some),
        }
    };
    let mut properties = Vec::new();
    for column in &map.properties {
        properties.push((required(&column.column)?, column.clone()));
    }
    Ok(Layout {
        email: required(&map.email)?,
        first_name: optional(&map.first_name)?,
        last_name: optional(&map.last_name)?,
        unsubscribed: optional(&map.unsubscribed)?,
        properties,
    })
}

fn cell(record: &csv::StringRecord, index: Option<usize>) -> Option<&str> {
    index
        .and_then(|i| record.get(i))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn flag(raw: &str) -> Result<bool, String> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" => Ok(true),
        "false" | "0" | "no" | "n" => Ok(false),
        _ => Err(format!(
            "`unsubscribed` must be true or false, not `{}`",
            shown(raw)
        )),
    }
}

fn name(field: &str, raw: Option<&str>) -> Result<Option<String>, String> {
    match raw {
        Some(v) if v.chars().count() > MAX_TEXT => {
            Err(format!("`{field}` is longer than {MAX_TEXT} characters"))
        }
        other => Ok(other.map(str::to_owned)),
    }
}

fn property_value(column: &PropertyColumn, raw: &str) -> Result<Value, String> {
    match column.value_type {
        PropertyType::String if raw.chars().count() > MAX_TEXT => Err(format!(
            "`{}` is longer than {MAX_TEXT} characters",
            column.key
        )),
        PropertyType::String => Ok(Value::from(raw)),
        PropertyType::Number => {
            if let Ok(n) = raw.parse::<i64>() {
                return Ok(Value::from(n));
            }
            raw.parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("`{}` must be a number, not `{}`", column.key, shown(raw)))
        }
    }
}

/// Reads one data row into the contact it describes, or says why it cannot be imported.
pub fn row(layout: &Layout, record: &csv::StringRecord) -> Result<ImportRow, String> {
    let raw_email = cell(record, Some(layout.email)).ok_or("`email` is empty")?;
    let email = EmailAddress::parse(raw_email)
        .map_err(|e| format!("`email`: {e}"))?
        .as_str()
        .to_owned();
    let first_name = name("first_name", cell(record, layout.first_name))?;
    let last_name = name("last_name", cell(record, layout.last_name))?;
    let unsubscribed = cell(record, layout.unsubscribed).map(flag).transpose()?;
    let mut properties = Vec::new();
    for (index, column) in &layout.properties {
        if let Some(raw) = cell(record, Some(*index)) {
            properties.push((column.property_id, property_value(column, raw)?));
        }
    }
    let changes = ContactChanges {
        email: None,
        first_name: first_name.clone().map(Some),
        last_name: last_name.clone().map(Some),
        unsubscribed,
        properties: properties
            .iter()
            .map(|(id, v)| (*id, Some(v.clone())))
            .collect(),
    };
    Ok(ImportRow {
        contact: NewContact {
            email,
            first_name,
            last_name,
            unsubscribed: unsubscribed.unwrap_or(false),
            properties,
            segments: Vec::new(),
            topics: Vec::new(),
        },
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(cells: &[&str]) -> csv::StringRecord {
        csv::StringRecord::from(cells.to_vec())
    }

    #[test]
    fn rows_are_read_through_the_header() {
        let map = column_map(None, &[]).unwrap();
        let header: Vec<String> = ["Email", "First_Name", "other"].map(String::from).to_vec();
        let layout = layout(&map, &header).unwrap();
        let row = row(&layout, &record(&["A@Example.COM", "Ann", "x"])).unwrap();
        assert_eq!(row.contact.email, "A@example.com");
        assert_eq!(row.contact.first_name.as_deref(), Some("Ann"));
        assert_eq!(row.contact.last_name, None);
        assert!(super::row(&layout, &record(&["nope", "", ""])).is_err());
        assert!(super::row(&layout, &record(&["", "", ""])).is_err());
        let missing: Vec<String> = ["name"].map(String::from).to_vec();
        assert!(super::layout(&map, &missing).is_err());
    }

    #[test]
    fn flags_and_numbers_are_strict() {
        assert_eq!(flag("TRUE"), Ok(true));
        assert_eq!(flag("0"), Ok(false));
        assert!(flag("maybe").is_err());
        let column = PropertyColumn {
            key: "seats".into(),
            column: "Seats".into(),
            property_id: Uuid::nil(),
            value_type: PropertyType::Number,
        };
        assert_eq!(property_value(&column, "3").unwrap(), Value::from(3));
        assert_eq!(property_value(&column, "2.5").unwrap(), Value::from(2.5));
        assert!(property_value(&column, "three").is_err());
        assert!(property_value(&column, "NaN").is_err());
    }
}
