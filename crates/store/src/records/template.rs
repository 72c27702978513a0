//! Templates: the draft and its published versions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::StoreError;
use crate::entities::{template, template_version};

/// The type of a template variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VariableType {
    String,
    Number,
}

impl VariableType {
    pub fn as_str(self) -> &'static str {
        match self {
            VariableType::String => "string",
            VariableType::Number => "number",
        }
    }
}

/// A declared variable: its key, type and fallback (a JSON string or number of that type, checked by the
/// server before it is stored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemplateVariable {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: VariableType,
    #[serde(default)]
    pub fallback_value: Option<Value>,
}

/// What a template sends: the draft's content, or a published version's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TemplateContent {
    pub from: Option<String>,
    pub subject: Option<String>,
    /// `None`: not set (distinct from an empty list given as such).
    pub reply_to: Option<Vec<String>>,
    pub html: String,
    pub text: Option<String>,
    pub variables: Vec<TemplateVariable>,
}

/// A template with its draft.
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateRecord {
    pub id: Uuid,
    pub name: String,
    pub alias: Option<String>,
    pub content: TemplateContent,
    pub current_version_id: Uuid,
    pub published_version_id: Option<Uuid>,
    pub published_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TemplateRecord {
    /// Whether a version was ever published (Resend's `status`: `published` or `draft`).
    pub fn is_published(&self) -> bool {
        self.published_version_id.is_some()
    }

    /// Whether the draft holds changes not yet published.
    pub fn has_unpublished_changes(&self) -> bool {
        self.published_version_id
            .is_some_and(|published| published != self.current_version_id)
    }
}

/// A published version.
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateVersionRecord {
    pub id: Uuid,
    pub template_id: Uuid,
    pub name: String,
    pub content: TemplateContent,
    pub published_at: DateTime<Utc>,
}

fn corrupt(table: &str, id: Uuid, column: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{table} {id}: `{column}` cannot be read: {error}"))
}

/// A content as its columns hold it.
pub(crate) struct ContentColumns {
    pub from: Option<String>,
    pub subject: Option<String>,
    pub reply_to: Option<String>,
    pub html: String,
    pub text: Option<String>,
    pub variables: String,
}

impl ContentColumns {
    fn read(self, table: &str, id: Uuid) -> Result<TemplateContent, StoreError> {
        let reply_to = self
            .reply_to
            .map(|raw| serde_json::from_str::<Vec<String>>(&raw))
            .transpose()
            .map_err(|e| corrupt(table, id, "reply_to", e))?;
        let variables = serde_json::from_str::<Vec<TemplateVariable>>(&self.variables)
            .map_err(|e| corrupt(table, id, "variables", e))?;
        Ok(TemplateContent {
            from: self.from,
            subject: self.subject,
            reply_to,
            html: self.html,
            text: self.text,
            variables,
        })
    }
}

/// The columns of a content: `reply_to` and `variables` as JSON text.
pub(crate) fn content_columns(content: &TemplateContent) -> (Option<String>, String) {
    let reply_to = content
        .reply_to
        .as_ref()
        .map(|list| Value::from(list.clone()).to_string());
    let variables = serde_json::to_string(&content.variables).unwrap_or_else(|_| "[]".to_owned());
    (reply_to, variables)
}

impl TryFrom<template::Model> for TemplateRecord {
    type Error = StoreError;

    fn try_from(row: template::Model) -> Result<Self, StoreError> {
        let content = ContentColumns {
            from: row.from_address,
            subject: row.subject,
            reply_to: row.reply_to,
            html: row.html,
            text: row.text_body,
            variables: row.variables,
        }
        .read("templates", row.id)?;
        Ok(Self {
            id: row.id,
            name: row.name,
            alias: row.alias,
            content,
            current_version_id: row.current_version_id,
            published_version_id: row.published_version_id,
            published_at: row.published_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

impl TryFrom<template_version::Model> for TemplateVersionRecord {
    type Error = StoreError;

    fn try_from(row: template_version::Model) -> Result<Self, StoreError> {
        let content = ContentColumns {
            from: row.from_address,
            subject: row.subject,
            reply_to: row.reply_to,
            html: row.html,
            text: row.text_body,
            variables: row.variables,
        }
        .read("template_versions", row.id)?;
        Ok(Self {
            id: row.id,
            template_id: row.template_id,
            name: row.name,
            content,
            published_at: row.published_at,
        })
    }
}
