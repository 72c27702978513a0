//! Contacts, their custom properties, segments and topics, as the repositories return them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::StoreError;
use crate::entities::{contact_property, segment, topic};

fn corrupt(table: &str, id: Uuid, column: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "{table} {id}: `{column}` holds `{}`",
        value.chars().take(40).collect::<String>()
    ))
}

/// Text names of a small closed set, read back strictly.
macro_rules! named {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = ();

            /// Exact, lower-case names only.
            fn from_str(s: &str) -> Result<Self, ()> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or(())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named!(
    /// The type of a contact property's values.
    PropertyType { String => "string", Number => "number" }
);
named!(
    /// A contact's subscription to a topic, or a topic's default.
    Subscription { OptIn => "opt_in", OptOut => "opt_out" }
);
named!(
    /// Whether a topic shows on the unsubscribe page to every contact or only to those opted in.
    Visibility { Public => "public", Private => "private" }
);

impl PropertyType {
    /// Whether `value` is of this type (a JSON string, or a finite JSON number).
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            PropertyType::String => value.is_string(),
            PropertyType::Number => value.is_number(),
        }
    }
}

/// A contact as lists show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactRecord {
    pub id: Uuid,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// The stored flag: the organization (or the contact) unsubscribed it.
    pub unsubscribed: bool,
    /// The address is on the organization's suppression list.
    pub suppressed: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ContactRecord {
    /// What every read reports as `unsubscribed`: unsubscribed, or suppressed.
    pub fn effectively_unsubscribed(&self) -> bool {
        self.unsubscribed || self.suppressed
    }
}

/// One of a contact's property values.
#[derive(Clone, Debug, PartialEq)]
pub struct PropertyValueRecord {
    pub key: String,
    pub value_type: PropertyType,
    pub value: Value,
}

/// A contact with its property values (ordered by key) and the segments it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct ContactDetail {
    pub contact: ContactRecord,
    pub properties: Vec<PropertyValueRecord>,
    pub segment_ids: Vec<Uuid>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ContactPropertyRecord {
    pub id: Uuid,
    pub key: String,
    pub value_type: PropertyType,
    pub fallback_value: Option<Value>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<contact_property::Model> for ContactPropertyRecord {
    type Error = StoreError;

    fn try_from(row: contact_property::Model) -> Result<Self, StoreError> {
        let value_type = row
            .value_type
            .parse()
            .map_err(|()| corrupt("contact_properties", row.id, "value_type", &row.value_type))?;
        let fallback_value = match row.fallback_value.as_deref() {
            None => None,
            Some(text) => Some(
                serde_json::from_str(text)
                    .map_err(|_| corrupt("contact_properties", row.id, "fallback_value", text))?,
            ),
        };
        Ok(Self {
            id: row.id,
            key: row.key,
            value_type,
            fallback_value,
            created_at: row.created_at,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SegmentRecord {
    pub id: Uuid,
    pub name: String,
    pub filter: Option<Value>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<segment::Model> for SegmentRecord {
    type Error = StoreError;

    fn try_from(row: segment::Model) -> Result<Self, StoreError> {
        let filter = match row.filter.as_deref() {
            None => None,
            Some(text) => Some(
                serde_json::from_str(text)
                    .map_err(|_| corrupt("segments", row.id, "filter", text))?,
            ),
        };
        Ok(Self {
            id: row.id,
            name: row.name,
            filter,
            created_at: row.created_at,
        })
    }
}

/// A segment a contact belongs to, and since when.
#[derive(Clone, Debug, PartialEq)]
pub struct ContactSegmentRecord {
    pub segment: SegmentRecord,
    pub added_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicRecord {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub default_subscription: Subscription,
    pub visibility: Visibility,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<topic::Model> for TopicRecord {
    type Error = StoreError;

    fn try_from(row: topic::Model) -> Result<Self, StoreError> {
        let default_subscription = row.default_subscription.parse().map_err(|()| {
            corrupt(
                "topics",
                row.id,
                "default_subscription",
                &row.default_subscription,
            )
        })?;
        let visibility = row
            .visibility
            .parse()
            .map_err(|()| corrupt("topics", row.id, "visibility", &row.visibility))?;
        Ok(Self {
            id: row.id,
            name: row.name,
            description: row.description,
            default_subscription,
            visibility,
            created_at: row.created_at,
        })
    }
}

/// A topic with one contact's subscription to it (its default when the contact never chose).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactTopicRecord {
    pub topic: TopicRecord,
    pub subscription: Subscription,
}
