//! What the audience resources (`contacts`, `contact_properties`, `segments`, `audiences`, `topics`) parse
//! alike: how a path names a contact, subscriptions, bounded text, references to segments and topics, and
//! what a reference that is not the organization's becomes.

use opensend_core::{EmailAddress, ErrorCode};
use opensend_store::StoreError;
use opensend_store::records::Subscription;
use opensend_store::repos::contacts::ContactKey;
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

use crate::error::ApiError;

/// Longest first or last name, segment name, or string property value, in characters.
pub const MAX_TEXT: usize = 255;
/// Most segments or topics given in one request.
pub const MAX_REFERENCES: usize = 100;

/// The `{contact}` of a path: an id, or an address (in any case).
pub fn contact_key(raw: &str) -> Result<ContactKey, ApiError> {
    if let Ok(id) = Uuid::try_parse(raw) {
        return Ok(ContactKey::Id(id));
    }
    EmailAddress::parse(raw)
        .map(|a| ContactKey::Email(a.as_str().to_owned()))
        .map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidParameter,
                "The path must name a contact by its id or its email address.",
            )
        })
}

/// A field that may be absent (outer `None`), `null` (inner `None`) or set.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Trims `raw` and checks it is 1 to `max` characters long.
pub fn bounded(field: &str, raw: &str, max: usize) -> Result<String, ApiError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(ApiError::validation(format!(
            "`{field}` must not be empty."
        )));
    }
    if value.chars().count() > max {
        return Err(ApiError::validation(format!(
            "`{field}` must be at most {max} characters long."
        )));
    }
    Ok(value.to_owned())
}

/// A name that may be cleared: empty or `null` clears it.
pub fn optional_name(field: &str, raw: Option<&str>) -> Result<Option<String>, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(value) => bounded(field, value, MAX_TEXT).map(Some),
    }
}

pub fn subscription(field: &str, raw: &str) -> Result<Subscription, ApiError> {
    raw.parse().map_err(|()| {
        ApiError::validation(format!(
            "`{field}` must be `opt_in` or `opt_out`; got `{}`.",
            raw.chars().take(40).collect::<String>()
        ))
    })
}

/// A segment named by its id, or by `{"id": …}` as the SDKs send it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Reference {
    Id(String),
    Object { id: String },
}

impl Reference {
    fn raw(&self) -> &str {
        match self {
            Reference::Id(id) | Reference::Object { id } => id,
        }
    }
}

fn reference_id(field: &str, index: usize, raw: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw.trim())
        .map_err(|_| ApiError::validation(format!("`{field}[{index}]` is not a valid id.")))
}

fn at_most(field: &str, len: usize) -> Result<(), ApiError> {
    if len > MAX_REFERENCES {
        return Err(ApiError::validation(format!(
            "`{field}` may list at most {MAX_REFERENCES} items."
        )));
    }
    Ok(())
}

pub fn segment_ids(field: &str, given: &[Reference]) -> Result<Vec<Uuid>, ApiError> {
    at_most(field, given.len())?;
    given
        .iter()
        .enumerate()
        .map(|(i, r)| reference_id(field, i, r.raw()))
        .collect()
}

/// `{"id", "subscription"}`.
#[derive(Debug, Deserialize)]
pub struct TopicChoice {
    pub id: Option<String>,
    pub subscription: Option<String>,
}

pub fn topic_choices(
    field: &str,
    given: &[TopicChoice],
) -> Result<Vec<(Uuid, Subscription)>, ApiError> {
    at_most(field, given.len())?;
    given
        .iter()
        .enumerate()
        .map(|(i, choice)| {
            let id = choice.id.as_deref().ok_or_else(|| {
                ApiError::new(
                    ErrorCode::MissingRequiredField,
                    format!("`{field}[{i}].id` is required."),
                )
            })?;
            let raw = choice.subscription.as_deref().ok_or_else(|| {
                ApiError::new(
                    ErrorCode::MissingRequiredField,
                    format!("`{field}[{i}].subscription` is required."),
                )
            })?;
            Ok((
                reference_id(field, i, id)?,
                subscription(&format!("{field}[{i}].subscription"), raw)?,
            ))
        })
        .collect()
}

/// A store error in a contact write, in the terms of the request: a reference that is not the
/// organization's is a 422 naming the field, a taken address a 422 too.
pub fn write_error(error: StoreError) -> ApiError {
    match error {
        StoreError::MissingReference("segment") => {
            ApiError::validation("A segment given in `segments` does not exist.")
        }
        StoreError::MissingReference("topic") => {
            ApiError::validation("A topic given in `topics` does not exist.")
        }
        StoreError::MissingReference("contact property") => ApiError::validation(
            "A property given in `properties` was deleted meanwhile; create it again first.",
        ),
        StoreError::Duplicate("contact") => ApiError::validation(
            "A contact with this email address already exists in this organization.",
        ),
        other => other.into(),
    }
}
