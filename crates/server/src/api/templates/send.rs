//! Sending with a template: `POST /emails` and `POST /emails/batch` with `template: {id, variables}`.
//!
//! At accept time the template's *published* version is loaded (once per request: a batch looks each
//! template up once), `from`, `subject` and `reply_to` are taken from it where the request leaves them out,
//! and its `html`, `text` and `subject` are rendered with the variables by `opensend_core::variables`:
//! values are HTML-escaped in `html` and inserted as they are in `text` and `subject`. The email then takes
//! the normal accept path, exactly as if the request had given the rendered content.
//!
//! A variable's value is, in order: the request's (`template.variables`), the declared `fallback_value`,
//! the fallback written in the placeholder (`{{{KEY|fallback}}}`). A declared variable without a
//! `fallback_value` must be given. Keys the template does not declare are ignored; a value of a reserved
//! name (`FIRST_NAME`…) is used where the content has that placeholder.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use opensend_core::ErrorCode;
use opensend_core::variables::{Content, Escape, RenderError};
use opensend_store::records::{TemplateVersionRecord, VariableType};
use opensend_store::repos::templates::Published;
use serde_json::Value;
use uuid::Uuid;

use super::key_of;
use crate::api::emails::limits;
use crate::api::emails::wire::{SendEmailBody, VariableValue};
use crate::error::ApiError;
use crate::state::AppState;

/// A published version, its content parsed once.
#[derive(Debug)]
pub(crate) struct Prepared {
    version: TemplateVersionRecord,
    html: Content,
    text: Option<Content>,
    subject: Option<Content>,
}

impl Prepared {
    fn new(version: TemplateVersionRecord) -> Self {
        Self {
            html: Content::parse(&version.content.html),
            text: version.content.text.as_deref().map(Content::parse),
            subject: version.content.subject.as_deref().map(Content::parse),
            version,
        }
    }
}

/// The templates one request has looked up, by the id or alias it gave: a batch that sends one template a
/// hundred times reads it once.
#[derive(Default)]
pub(crate) struct TemplateCache {
    found: HashMap<String, Result<Arc<Prepared>, (ErrorCode, String)>>,
}

impl TemplateCache {
    async fn resolve(
        &mut self,
        state: &AppState,
        organization_id: Uuid,
        raw: &str,
    ) -> Result<Arc<Prepared>, ApiError> {
        if let Some(known) = self.found.get(raw) {
            return known
                .clone()
                .map_err(|(code, message)| ApiError::new(code, message));
        }
        let shown: String = raw.chars().take(80).collect();
        let outcome = match state
            .store
            .templates()
            .published(organization_id, &key_of(raw))
            .await?
        {
            Published::Version(version) => Ok(Arc::new(Prepared::new(*version))),
            Published::NotPublished => Err((
                ErrorCode::ValidationError,
                format!(
                    "Template `{shown}` has not been published: publish it (POST /templates/{{id}}/publish) before sending with it."
                ),
            )),
            Published::NotFound => Err((
                ErrorCode::ValidationError,
                format!("`template.id`: there is no template `{shown}` in this organization."),
            )),
        };
        self.found.insert(raw.to_owned(), outcome.clone());
        outcome.map_err(|(code, message)| ApiError::new(code, message))
    }
}

/// The request with its template applied (`from`, `subject`, `reply_to` filled in where it left them out,
/// `html`, `text` and `subject` rendered), ready for `request::parse`. A request without `template`, or one
/// already malformed (`parse` reports it), is returned as it is.
pub(crate) async fn fill(
    state: &AppState,
    organization_id: Uuid,
    mut body: SendEmailBody,
    cache: &mut TemplateCache,
) -> Result<SendEmailBody, ApiError> {
    if body.malformed.is_some() {
        return Ok(body);
    }
    let Some(template) = body.template.take() else {
        return Ok(body);
    };
    if body.html.is_some() || body.text.is_some() {
        return Err(ApiError::validation(
            "`html` and `text` cannot be given with `template`: the template's content is sent.",
        ));
    }
    let id = template
        .id
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::MissingRequiredField,
                "Missing required field `template.id`.",
            )
        })?;
    let prepared = cache.resolve(state, organization_id, id.trim()).await?;
    apply(&prepared, &template.variables, body)
}

fn value_text(value: &VariableValue) -> Cow<'_, str> {
    match value {
        VariableValue::Text(text) => Cow::Borrowed(text),
        VariableValue::Number(number) => Cow::Owned(number.to_string()),
    }
}

fn fallback_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(text) => Cow::Borrowed(text),
        other => Cow::Owned(other.to_string()),
    }
}

/// The longest `html`, `text` or `subject` a template renders to, in bytes.
pub fn max_rendered_bytes() -> usize {
    limits::max_raw_message_bytes()
}

fn apply(
    prepared: &Prepared,
    given: &[(String, VariableValue)],
    mut body: SendEmailBody,
) -> Result<SendEmailBody, ApiError> {
    let declared = &prepared.version.content.variables;
    for variable in declared {
        let value = given.iter().find(|(key, _)| *key == variable.key);
        match (value, variable.kind) {
            (None, _) if variable.fallback_value.is_none() => {
                return Err(ApiError::validation(format!(
                    "Missing template variable `{}`: it has no fallback value, so `template.variables` must give it.",
                    variable.key
                )));
            }
            (Some((_, VariableValue::Number(_))), VariableType::String) => {
                return Err(ApiError::validation(format!(
                    "Template variable `{}` must be a string.",
                    variable.key
                )));
            }
            (Some((_, VariableValue::Text(_))), VariableType::Number) => {
                return Err(ApiError::validation(format!(
                    "Template variable `{}` must be a number.",
                    variable.key
                )));
            }
            _ => {}
        }
    }
    let lookup = |key: &str| -> Option<Cow<'_, str>> {
        if let Some((_, value)) = given.iter().find(|(k, _)| k == key) {
            return Some(value_text(value));
        }
        declared
            .iter()
            .find(|v| v.key == key)
            .and_then(|v| v.fallback_value.as_ref())
            .map(fallback_text)
    };
    let max = max_rendered_bytes();
    let render = |field: &str, content: &Content, escape: Escape| {
        content.render(escape, max, lookup).map_err(|e| match e {
            RenderError::Missing(key) => ApiError::validation(format!(
                "Missing template variable `{key}` (used in the template's `{field}`): give it in `template.variables`."
            )),
            RenderError::TooLarge(limit) => ApiError::validation(format!(
                "The template's `{field}` is longer than {limit} bytes once its variables are filled in."
            )),
        })
    };
    body.html = Some(render("html", &prepared.html, Escape::Html)?);
    body.text = prepared
        .text
        .as_ref()
        .map(|text| render("text", text, Escape::None))
        .transpose()?;
    if body.subject.is_none()
        && let Some(subject) = &prepared.subject
    {
        body.subject = Some(render("subject", subject, Escape::None)?);
    }
    let content = &prepared.version.content;
    if body.from.is_none() {
        body.from = content.from.clone();
    }
    if body.reply_to.is_none() {
        body.reply_to = content.reply_to.clone();
    }
    Ok(body)
}
