//! The send routes' JSON, read straight into typed requests with every count limit enforced while it is
//! parsed.
//!
//! Nothing here builds a `serde_json::Value`. Each list and map is read by a visitor that stops the parse as
//! soon as it holds one entry more than its limit (a 51st `to` address, a 101st attachment, a 101st email of
//! a batch…): the request is refused after the bytes that prove it, and the rest is never read. Values of the
//! wrong type do not stop the parse: they are skipped and remembered as the email's first problem, so one
//! malformed email of a permissive batch is reported by its index while the others are sent. Values that are
//! not used (unknown fields, a value of the wrong type) are skipped with [`IgnoredAny`], without allocating;
//! how deep they may nest is bounded before parsing (`body.rs`).

use std::cell::Cell;
use std::fmt;

use base64::Engine;
use opensend_core::ErrorCode;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::limits;
use super::limits::{bad_attachment, check_message_size};
use crate::error::ApiError;

/// One email as Resend's SDKs send it. Unknown fields are ignored, so newer SDKs keep working; `null` reads
/// as an absent field.
#[derive(Debug, Default)]
pub struct SendEmailBody {
    pub from: Option<String>,
    pub to: Option<Vec<String>>,
    pub cc: Option<Vec<String>>,
    pub bcc: Option<Vec<String>>,
    pub reply_to: Option<Vec<String>>,
    pub subject: Option<String>,
    pub html: Option<String>,
    pub text: Option<String>,
    /// In the order given; names are checked (and their uniqueness) in `request.rs`.
    pub headers: Option<Vec<(String, String)>>,
    pub tags: Option<Vec<TagBody>>,
    pub attachments: Option<Vec<AttachmentBody>>,
    pub scheduled_at: Option<String>,
    /// `template`: the published template to send, and its variables (`api::templates::send`).
    pub template: Option<TemplateBody>,
    /// The first value of the wrong type, in the order of the document: the email is refused with it.
    pub malformed: Option<ApiError>,
}

#[derive(Debug)]
pub struct TagBody {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Default)]
pub struct AttachmentBody {
    pub filename: Option<String>,
    /// The file's bytes, from base64 text (the documented form, decoded as it is read, so the text itself is
    /// never kept), an array of byte values (Python SDK examples), or a serialised Node `Buffer`
    /// (`{"type":"Buffer","data":[…]}`).
    pub content: Option<Vec<u8>>,
    pub path: Option<String>,
    pub content_type: Option<String>,
    pub content_id: Option<String>,
}

/// `template`: which template (its id or alias) and the values of its variables, in the order given.
#[derive(Debug, Default)]
pub struct TemplateBody {
    pub id: Option<String>,
    pub variables: Vec<(String, VariableValue)>,
}

/// A template variable's value: a string or a number (kept as written, e.g. `499` or `4.5`).
#[derive(Clone, Debug, PartialEq)]
pub enum VariableValue {
    Text(String),
    Number(serde_json::Number),
}

/// `POST /emails/batch`: the emails in order, each with its own problem if it has one.
#[derive(Debug, Default)]
pub struct BatchBody(pub Vec<SendEmailBody>);

/// A send route's body, read from a JSON document with its limits enforced while parsing.
pub trait RequestBody: Sized + Send + 'static {
    /// Reads one document from `de`. `Err` from the deserializer stops the parse: a syntax error, or a limit
    /// refused (left in `refusal`). `Ok(Err(…))`: a well-formed document of the wrong shape.
    fn read<'de, D: Deserializer<'de>>(
        de: D,
        refusal: &Refusal,
    ) -> Result<Result<Self, ApiError>, D::Error>;
}

impl RequestBody for SendEmailBody {
    fn read<'de, D: Deserializer<'de>>(
        de: D,
        refusal: &Refusal,
    ) -> Result<Result<Self, ApiError>, D::Error> {
        required(EmailShape { refusal }, de)
    }
}

impl RequestBody for BatchBody {
    fn read<'de, D: Deserializer<'de>>(
        de: D,
        refusal: &Refusal,
    ) -> Result<Result<Self, ApiError>, D::Error> {
        required(BatchShape { refusal }, de)
    }
}

/// Where a refused limit is left for the caller: serde's errors carry only text, and the answer needs our
/// error code and a message without the parser's position.
#[derive(Default)]
pub struct Refusal(Cell<Option<ApiError>>);

impl Refusal {
    /// Stops the parse with `error`.
    fn refuse<E: de::Error>(&self, error: ApiError) -> E {
        let message = E::custom(error.message());
        self.0.set(Some(error));
        message
    }

    /// Says where the refused limit is, e.g. `emails[3]: `.
    fn locate(&self, prefix: impl fmt::Display) {
        if let Some(error) = self.0.take() {
            self.0.set(Some(ApiError::new(
                error.code(),
                format!("{prefix}{}", error.message()),
            )));
        }
    }

    /// The limit that stopped the parse, if one did.
    pub fn take(&self) -> Option<ApiError> {
        self.0.take()
    }
}

/// A value as read: `Ok(None)` for `null`, `Ok(Some(…))` when it has the expected type, `Err(problem)` when
/// it has another (it was skipped).
type Read<T> = Result<Option<T>, ApiError>;

/// What one JSON value may be. Each method takes one kind of value; those a shape does not override are the
/// wrong type, skipped and reported with [`Shape::wrong`]. Shapes are small and `Copy`, so the problem can
/// still be named after the value was handed over.
trait Shape<'de>: Copy {
    type Out;

    /// The problem reported for a value of another type.
    fn wrong(self) -> ApiError;

    fn string(self, _value: &str) -> Result<Self::Out, ApiError> {
        Err(self.wrong())
    }

    fn unsigned(self, _value: u64) -> Result<Self::Out, ApiError> {
        Err(self.wrong())
    }

    fn list<A: SeqAccess<'de>>(self, seq: A) -> Result<Result<Self::Out, ApiError>, A::Error> {
        IgnoredAny.visit_seq(seq)?;
        Ok(Err(self.wrong()))
    }

    fn object<A: MapAccess<'de>>(self, map: A) -> Result<Result<Self::Out, ApiError>, A::Error> {
        IgnoredAny.visit_map(map)?;
        Ok(Err(self.wrong()))
    }
}

/// Reads one value of any type with `S`.
struct Lenient<S>(S);

impl<'de, S: Shape<'de>> DeserializeSeed<'de> for Lenient<S> {
    type Value = Read<S::Out>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de, S: Shape<'de>> Visitor<'de> for Lenient<S> {
    type Value = Read<S::Out>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(None))
    }

    fn visit_bool<E: de::Error>(self, _value: bool) -> Result<Self::Value, E> {
        Ok(Err(self.0.wrong()))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(match u64::try_from(value) {
            Ok(value) => self.0.unsigned(value).map(Some),
            Err(_) => Err(self.0.wrong()),
        })
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(self.0.unsigned(value).map(Some))
    }

    fn visit_f64<E: de::Error>(self, _value: f64) -> Result<Self::Value, E> {
        Ok(Err(self.0.wrong()))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(self.0.string(value).map(Some))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok(self.0.list(seq)?.map(Some))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(self.0.object(map)?.map(Some))
    }
}

/// A value that must be there: `null` is the wrong type too.
fn required<'de, S: Shape<'de>, D: Deserializer<'de>>(
    shape: S,
    de: D,
) -> Result<Result<S::Out, ApiError>, D::Error> {
    Ok(present(Lenient(shape).deserialize(de)?, shape))
}

/// The value read with `shape`, where `null` is the wrong type too.
fn present<'de, S: Shape<'de>>(read: Read<S::Out>, shape: S) -> Result<S::Out, ApiError> {
    read.and_then(|value| value.ok_or_else(|| shape.wrong()))
}

/// The limits of one list: how many elements it may have, what to answer when it has more, and what a
/// limit refused inside an element is prefixed with (`emails` gives `emails[3]: …`).
struct ListLimit<'r, F> {
    max: usize,
    refusal: &'r Refusal,
    too_many: F,
    elements_named: Option<&'static str>,
}

/// The elements of a list, each read with `shape(index)` (`null` elements are the wrong type). The parse is
/// stopped as soon as a list has more than `limit.max` elements.
fn bounded_list<'de, A, S, F>(
    mut seq: A,
    limit: ListLimit<'_, F>,
    shape: impl Fn(usize) -> S,
) -> Result<Vec<Result<S::Out, ApiError>>, A::Error>
where
    A: SeqAccess<'de>,
    S: Shape<'de>,
    F: FnOnce() -> ApiError,
{
    let mut elements = Vec::new();
    loop {
        let index = elements.len();
        if index == limit.max {
            return match seq.next_element::<IgnoredAny>()? {
                Some(_) => Err(limit.refusal.refuse((limit.too_many)())),
                None => Ok(elements),
            };
        }
        let element = shape(index);
        let read = seq.next_element_seed(Lenient(element)).inspect_err(|_| {
            if let Some(name) = limit.elements_named {
                limit.refusal.locate(format_args!("{name}[{index}]: "));
            }
        })?;
        match read {
            Some(read) => elements.push(present(read, element)),
            None => return Ok(elements),
        }
    }
}

/// The keys an object's visitor tells apart; every other key is one value (`Other`), skipped.
trait Keys: Sized {
    fn of(name: &str) -> Self;
}

/// A key of an object, read without keeping its text.
struct Key<K>(K);

impl<'de, K: Keys> de::Deserialize<'de> for Key<K> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Name<K>(std::marker::PhantomData<K>);
        impl<K: Keys> Visitor<'_> for Name<K> {
            type Value = Key<K>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Key<K>, E> {
                Ok(Key(K::of(name)))
            }
        }
        de.deserialize_identifier(Name(std::marker::PhantomData))
    }
}

/// The fields of an email object; anything else is `Other`, skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EmailField {
    From,
    To,
    Cc,
    Bcc,
    ReplyTo,
    Subject,
    Html,
    Text,
    Headers,
    Tags,
    Attachments,
    ScheduledAt,
    Template,
    Other,
}

impl Keys for EmailField {
    fn of(name: &str) -> EmailField {
        EmailField::NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map_or(EmailField::Other, |(_, field)| *field)
    }
}

impl EmailField {
    const NAMES: [(&'static str, EmailField); 13] = [
        ("from", EmailField::From),
        ("to", EmailField::To),
        ("cc", EmailField::Cc),
        ("bcc", EmailField::Bcc),
        ("reply_to", EmailField::ReplyTo),
        ("subject", EmailField::Subject),
        ("html", EmailField::Html),
        ("text", EmailField::Text),
        ("headers", EmailField::Headers),
        ("tags", EmailField::Tags),
        ("attachments", EmailField::Attachments),
        ("scheduled_at", EmailField::ScheduledAt),
        ("template", EmailField::Template),
    ];

    /// The field's name and its place among the known fields.
    fn known(self) -> Option<(usize, &'static str)> {
        Self::NAMES
            .iter()
            .position(|(_, field)| *field == self)
            .map(|index| (index, Self::NAMES[index].0))
    }
}

/// One email: an object.
#[derive(Clone, Copy)]
struct EmailShape<'r> {
    refusal: &'r Refusal,
}

impl<'de> Shape<'de> for EmailShape<'_> {
    type Out = SendEmailBody;

    fn wrong(self) -> ApiError {
        ApiError::validation("An email must be a JSON object.")
    }

    fn object<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<Result<SendEmailBody, ApiError>, A::Error> {
        let refusal = self.refusal;
        let mut email = SendEmailBody::default();
        let mut seen = [false; EmailField::NAMES.len()];
        while let Some(Key(field)) = map.next_key::<Key<EmailField>>()? {
            if let Some((index, name)) = field.known() {
                if seen[index] {
                    email.note(ApiError::validation(format!("`{name}` is given twice.")));
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                seen[index] = true;
            }
            let addresses = |field, max| Addresses {
                field,
                max,
                refusal,
            };
            match field {
                EmailField::From => {
                    email.from = email.keep(map.next_value_seed(Lenient(text("from")))?)
                }
                EmailField::To => {
                    email.to =
                        email.keep(map.next_value_seed(Lenient(addresses("to", limits::TO)))?);
                }
                EmailField::Cc => {
                    email.cc =
                        email.keep(map.next_value_seed(Lenient(addresses("cc", limits::CC)))?);
                }
                EmailField::Bcc => {
                    email.bcc =
                        email.keep(map.next_value_seed(Lenient(addresses("bcc", limits::BCC)))?);
                }
                EmailField::ReplyTo => {
                    email.reply_to = email.keep(
                        map.next_value_seed(Lenient(addresses("reply_to", limits::REPLY_TO)))?,
                    );
                }
                EmailField::Subject => {
                    email.subject = email.keep(map.next_value_seed(Lenient(text("subject")))?);
                }
                EmailField::Html => {
                    email.html = email.keep(map.next_value_seed(Lenient(BodyText("html")))?)
                }
                EmailField::Text => {
                    email.text = email.keep(map.next_value_seed(Lenient(BodyText("text")))?)
                }
                EmailField::Headers => {
                    email.headers = email.keep(map.next_value_seed(Lenient(Headers { refusal }))?);
                }
                EmailField::Tags => {
                    email.tags = email.keep(map.next_value_seed(Lenient(Tags { refusal }))?);
                }
                EmailField::Attachments => {
                    email.attachments =
                        email.keep(map.next_value_seed(Lenient(Attachments { refusal }))?);
                }
                EmailField::ScheduledAt => {
                    email.scheduled_at =
                        email.keep(map.next_value_seed(Lenient(text("scheduled_at")))?);
                }
                EmailField::Template => {
                    email.template =
                        email.keep(map.next_value_seed(Lenient(Template { refusal }))?);
                }
                EmailField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Ok(email))
    }
}

impl SendEmailBody {
    /// Remembers `problem` unless an earlier one is already remembered.
    fn note(&mut self, problem: ApiError) {
        self.malformed.get_or_insert(problem);
    }

    /// The value read, or `None` with its problem remembered.
    fn keep<T>(&mut self, read: Read<T>) -> Option<T> {
        read.unwrap_or_else(|problem| {
            self.note(problem);
            None
        })
    }
}

/// A string; `W` gives the problem reported for any other value.
#[derive(Clone, Copy)]
struct Str<W>(W);

impl<W: Fn() -> ApiError + Copy> Shape<'_> for Str<W> {
    type Out = String;

    fn wrong(self) -> ApiError {
        (self.0)()
    }

    fn string(self, value: &str) -> Result<String, ApiError> {
        Ok(value.to_owned())
    }
}

/// A string field of the email.
fn text(field: &'static str) -> Str<impl Fn() -> ApiError + Copy> {
    Str(move || ApiError::validation(format!("`{field}` must be a string.")))
}

/// `html` or `text`. One too large for any message is refused before it is copied.
#[derive(Clone, Copy)]
struct BodyText(&'static str);

impl Shape<'_> for BodyText {
    type Out = String;

    fn wrong(self) -> ApiError {
        text(self.0).wrong()
    }

    fn string(self, value: &str) -> Result<String, ApiError> {
        check_message_size(value.len())?;
        Ok(value.to_owned())
    }
}

/// `to`, `cc`, `bcc`, `reply_to`: one address or an array of at most `max`.
#[derive(Clone, Copy)]
struct Addresses<'r> {
    field: &'static str,
    max: usize,
    refusal: &'r Refusal,
}

impl<'de> Shape<'de> for Addresses<'_> {
    type Out = Vec<String>;

    fn wrong(self) -> ApiError {
        ApiError::validation(format!(
            "`{}` must be an email address or an array of them.",
            self.field
        ))
    }

    fn string(self, value: &str) -> Result<Vec<String>, ApiError> {
        Ok(vec![value.to_owned()])
    }

    fn list<A: SeqAccess<'de>>(self, seq: A) -> Result<Result<Vec<String>, ApiError>, A::Error> {
        let field = self.field;
        let addresses = bounded_list(
            seq,
            ListLimit {
                max: self.max,
                refusal: self.refusal,
                too_many: || too_many(field, self.max, "addresses"),
                elements_named: None,
            },
            |_| Str(move || self.wrong()),
        )?;
        Ok(addresses.into_iter().collect())
    }
}

/// The 422 for a list or map with more than `max` entries, named as `request.rs` names it.
pub fn too_many(field: &str, max: usize, what: &str) -> ApiError {
    ApiError::validation(format!("`{field}` has more than {max} {what}."))
}

/// `headers`: an object of at most `limits::HEADERS` names and string values.
#[derive(Clone, Copy)]
struct Headers<'r> {
    refusal: &'r Refusal,
}

impl<'de> Shape<'de> for Headers<'_> {
    type Out = Vec<(String, String)>;

    fn wrong(self) -> ApiError {
        ApiError::validation("`headers` must be an object of header names and string values.")
    }

    fn object<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<Result<Vec<(String, String)>, ApiError>, A::Error> {
        let mut headers = Vec::new();
        let mut problem = None;
        let mut entries = 0;
        loop {
            if entries == limits::HEADERS {
                if map.next_key::<IgnoredAny>()?.is_some() {
                    return Err(self.refusal.refuse(too_many(
                        "headers",
                        limits::HEADERS,
                        "entries",
                    )));
                }
                break;
            }
            let Some(name) = map.next_key::<String>()? else {
                break;
            };
            entries += 1;
            let value = Str(|| {
                ApiError::validation(format!(
                    "Header `{}` must have a string value.",
                    name.chars().take(80).collect::<String>()
                ))
            });
            match present(map.next_value_seed(Lenient(value))?, value) {
                Ok(value) => headers.push((name, value)),
                Err(wrong) => {
                    problem.get_or_insert(wrong);
                }
            }
        }
        Ok(match problem {
            Some(problem) => Err(problem),
            None => Ok(headers),
        })
    }
}

/// `tags`: at most `limits::TAGS` objects `{name, value}`.
#[derive(Clone, Copy)]
struct Tags<'r> {
    refusal: &'r Refusal,
}

impl<'de> Shape<'de> for Tags<'_> {
    type Out = Vec<TagBody>;

    fn wrong(self) -> ApiError {
        ApiError::validation("`tags` must be an array of `{name, value}` objects.")
    }

    fn list<A: SeqAccess<'de>>(self, seq: A) -> Result<Result<Vec<TagBody>, ApiError>, A::Error> {
        let tags = bounded_list(
            seq,
            ListLimit {
                max: limits::TAGS,
                refusal: self.refusal,
                too_many: || too_many("tags", limits::TAGS, "entries"),
                elements_named: None,
            },
            Tag,
        )?;
        Ok(tags.into_iter().collect())
    }
}

/// `tags[index]`.
#[derive(Clone, Copy)]
struct Tag(usize);

impl<'de> Shape<'de> for Tag {
    type Out = TagBody;

    fn wrong(self) -> ApiError {
        ApiError::validation(format!(
            "`tags[{}]` must be an object with a string `name` and a string `value`.",
            self.0
        ))
    }

    fn object<A: MapAccess<'de>>(self, mut map: A) -> Result<Result<TagBody, ApiError>, A::Error> {
        let (mut name, mut value, mut problem) = (None, None, None);
        while let Some(Key(key)) = map.next_key::<Key<TagField>>()? {
            let slot = match key {
                TagField::Name => &mut name,
                TagField::Value => &mut value,
                TagField::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            match map.next_value_seed(Lenient(Str(move || self.wrong())))? {
                Ok(read) => *slot = read,
                Err(wrong) => {
                    problem.get_or_insert(wrong);
                }
            }
        }
        if let Some(problem) = problem {
            return Ok(Err(problem));
        }
        Ok(match (name, value) {
            (Some(name), Some(value)) => Ok(TagBody { name, value }),
            (None, _) => Err(missing_in_tag(self.0, "name")),
            (_, None) => Err(missing_in_tag(self.0, "value")),
        })
    }
}

fn missing_in_tag(index: usize, field: &str) -> ApiError {
    ApiError::new(
        ErrorCode::MissingRequiredField,
        format!("`tags[{index}]` needs a `{field}`."),
    )
}

#[derive(Clone, Copy)]
enum TagField {
    Name,
    Value,
    Other,
}

impl Keys for TagField {
    fn of(name: &str) -> Self {
        match name {
            "name" => TagField::Name,
            "value" => TagField::Value,
            _ => TagField::Other,
        }
    }
}

/// `attachments`: at most `limits::ATTACHMENTS` objects.
#[derive(Clone, Copy)]
struct Attachments<'r> {
    refusal: &'r Refusal,
}

impl<'de> Shape<'de> for Attachments<'_> {
    type Out = Vec<AttachmentBody>;

    fn wrong(self) -> ApiError {
        ApiError::new(
            ErrorCode::InvalidAttachment,
            "`attachments` must be an array of objects.",
        )
    }

    fn list<A: SeqAccess<'de>>(
        self,
        seq: A,
    ) -> Result<Result<Vec<AttachmentBody>, ApiError>, A::Error> {
        let attachments = bounded_list(
            seq,
            ListLimit {
                max: limits::ATTACHMENTS,
                refusal: self.refusal,
                too_many: || {
                    ApiError::new(
                        ErrorCode::InvalidAttachment,
                        format!("At most {} attachments per email.", limits::ATTACHMENTS),
                    )
                },
                elements_named: None,
            },
            Attachment,
        )?;
        Ok(attachments.into_iter().collect())
    }
}

/// `attachments[index]`.
#[derive(Clone, Copy)]
struct Attachment(usize);

impl<'de> Shape<'de> for Attachment {
    type Out = AttachmentBody;

    fn wrong(self) -> ApiError {
        bad_attachment(self.0, "must be an object.")
    }

    fn object<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<Result<AttachmentBody, ApiError>, A::Error> {
        let index = self.0;
        let mut attachment = AttachmentBody::default();
        let mut problem = None;
        while let Some(Key(key)) = map.next_key::<Key<AttachmentField>>()? {
            let text = |field: &'static str| {
                Lenient(Str(move || {
                    bad_attachment(index, &format!("`{field}` must be a string."))
                }))
            };
            let read = match key {
                AttachmentField::Filename => map
                    .next_value_seed(text("filename"))?
                    .map(|v| attachment.filename = v),
                AttachmentField::Path => map
                    .next_value_seed(text("path"))?
                    .map(|v| attachment.path = v),
                AttachmentField::ContentType => map
                    .next_value_seed(text("content_type"))?
                    .map(|v| attachment.content_type = v),
                AttachmentField::ContentId => map
                    .next_value_seed(text("content_id"))?
                    .map(|v| attachment.content_id = v),
                AttachmentField::Content => map
                    .next_value_seed(Lenient(Content(index)))?
                    .map(|v| attachment.content = v),
                AttachmentField::Other => {
                    map.next_value::<IgnoredAny>()?;
                    Ok(())
                }
            };
            if let Err(wrong) = read {
                problem.get_or_insert(wrong);
            }
        }
        Ok(match problem {
            Some(problem) => Err(problem),
            None => Ok(attachment),
        })
    }
}

#[derive(Clone, Copy)]
enum AttachmentField {
    Filename,
    Content,
    Path,
    ContentType,
    ContentId,
    Other,
}

impl Keys for AttachmentField {
    fn of(name: &str) -> Self {
        match name {
            "filename" => AttachmentField::Filename,
            "content" => AttachmentField::Content,
            "path" => AttachmentField::Path,
            "content_type" => AttachmentField::ContentType,
            "content_id" => AttachmentField::ContentId,
            _ => AttachmentField::Other,
        }
    }
}

/// `attachments[index].content`: base64 text, an array of byte values, or a Node `Buffer` object.
#[derive(Clone, Copy)]
struct Content(usize);

impl<'de> Shape<'de> for Content {
    type Out = Vec<u8>;

    fn wrong(self) -> ApiError {
        bad_attachment(
            self.0,
            "`content` must be base64 text, an array of byte values or a Node `Buffer`.",
        )
    }

    fn string(self, value: &str) -> Result<Vec<u8>, ApiError> {
        // Base64 holds 3 bytes in 4 characters: a file too large for any message is not decoded.
        check_message_size(value.len() / 4 * 3)?;
        base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .map_err(|_| bad_attachment(self.0, "`content` is not valid base64."))
    }

    fn list<A: SeqAccess<'de>>(self, seq: A) -> Result<Result<Vec<u8>, ApiError>, A::Error> {
        byte_values(seq, self)
    }

    fn object<A: MapAccess<'de>>(self, mut map: A) -> Result<Result<Vec<u8>, ApiError>, A::Error> {
        let mut data = None;
        let mut problem = None;
        while let Some(Key(key)) = map.next_key::<Key<BufferField>>()? {
            match key {
                BufferField::Data => match map.next_value_seed(Lenient(BufferData(self)))? {
                    Ok(read) => data = read,
                    Err(wrong) => {
                        problem.get_or_insert(wrong);
                    }
                },
                BufferField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(match (problem, data) {
            (Some(problem), _) => Err(problem),
            (None, Some(data)) => Ok(data),
            (None, None) => Err(self.wrong()),
        })
    }
}

/// The `data` of a Node `Buffer`: an array of byte values.
#[derive(Clone, Copy)]
struct BufferData(Content);

impl<'de> Shape<'de> for BufferData {
    type Out = Vec<u8>;

    fn wrong(self) -> ApiError {
        self.0.wrong()
    }

    fn list<A: SeqAccess<'de>>(self, seq: A) -> Result<Result<Vec<u8>, ApiError>, A::Error> {
        byte_values(seq, self.0)
    }
}

/// An array of byte values (0–255), one byte each in memory. Its length is bounded by the body limit (two
/// body bytes per byte at the least).
fn byte_values<'de, A: SeqAccess<'de>>(
    mut seq: A,
    content: Content,
) -> Result<Result<Vec<u8>, ApiError>, A::Error> {
    let mut bytes = Vec::new();
    while let Some(read) = seq.next_element_seed(Lenient(Byte(content)))? {
        match read {
            Ok(Some(byte)) => bytes.push(byte),
            Ok(None) | Err(_) => {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                return Ok(Err(content.wrong()));
            }
        }
    }
    Ok(Ok(bytes))
}

#[derive(Clone, Copy)]
struct Byte(Content);

impl Shape<'_> for Byte {
    type Out = u8;

    fn wrong(self) -> ApiError {
        self.0.wrong()
    }

    fn unsigned(self, value: u64) -> Result<u8, ApiError> {
        u8::try_from(value).map_err(|_| self.wrong())
    }
}

#[derive(Clone, Copy)]
enum BufferField {
    Data,
    Other,
}

impl Keys for BufferField {
    fn of(name: &str) -> Self {
        if name == "data" {
            BufferField::Data
        } else {
            BufferField::Other
        }
    }
}

/// `template`: an object with the template's `id` (or alias) and `variables`.
#[derive(Clone, Copy)]
struct Template<'r> {
    refusal: &'r Refusal,
}

#[derive(Clone, Copy)]
enum TemplateField {
    Id,
    Variables,
    Other,
}

impl Keys for TemplateField {
    fn of(name: &str) -> Self {
        match name {
            "id" => TemplateField::Id,
            "variables" => TemplateField::Variables,
            _ => TemplateField::Other,
        }
    }
}

impl<'de> Shape<'de> for Template<'_> {
    type Out = TemplateBody;

    fn wrong(self) -> ApiError {
        ApiError::validation("`template` must be an object with the template's `id`.")
    }

    fn object<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<Result<TemplateBody, ApiError>, A::Error> {
        let mut template = TemplateBody::default();
        let mut problem = None;
        while let Some(Key(field)) = map.next_key::<Key<TemplateField>>()? {
            match field {
                TemplateField::Id => {
                    let id = Str(|| ApiError::validation("`template.id` must be a string."));
                    match map.next_value_seed(Lenient(id))? {
                        Ok(id) => template.id = id,
                        Err(wrong) => {
                            problem.get_or_insert(wrong);
                        }
                    }
                }
                TemplateField::Variables => {
                    let variables = Variables {
                        refusal: self.refusal,
                    };
                    match map.next_value_seed(Lenient(variables))? {
                        Ok(read) => template.variables = read.unwrap_or_default(),
                        Err(wrong) => {
                            problem.get_or_insert(wrong);
                        }
                    }
                }
                TemplateField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(match problem {
            Some(problem) => Err(problem),
            None => Ok(template),
        })
    }
}

/// `template.variables`: an object of at most `limits::TEMPLATE_VARIABLES` keys, each a string or a number.
#[derive(Clone, Copy)]
struct Variables<'r> {
    refusal: &'r Refusal,
}

impl<'de> Shape<'de> for Variables<'_> {
    type Out = Vec<(String, VariableValue)>;

    fn wrong(self) -> ApiError {
        ApiError::validation(
            "`template.variables` must be an object of variable names and string or number values.",
        )
    }

    fn object<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<Result<Self::Out, ApiError>, A::Error> {
        let mut variables: Vec<(String, VariableValue)> = Vec::new();
        let mut problem = None;
        let mut entries = 0;
        loop {
            if entries == limits::TEMPLATE_VARIABLES {
                if map.next_key::<IgnoredAny>()?.is_some() {
                    return Err(self.refusal.refuse(too_many(
                        "template.variables",
                        limits::TEMPLATE_VARIABLES,
                        "entries",
                    )));
                }
                break;
            }
            let Some(key) = map.next_key::<String>()? else {
                break;
            };
            entries += 1;
            let value = map.next_value_seed(VariableValueSeed)?;
            if variables.iter().any(|(known, _)| *known == key) {
                problem.get_or_insert(ApiError::validation(format!(
                    "Template variable `{key}` is given twice."
                )));
                continue;
            }
            match value {
                Some(value) => variables.push((key, value)),
                None => {
                    problem.get_or_insert(ApiError::validation(format!(
                        "Template variable `{key}` must be a string or a number."
                    )));
                }
            }
        }
        Ok(match problem {
            Some(problem) => Err(problem),
            None => Ok(variables),
        })
    }
}

/// One variable's value: `None` for anything but a string or a number (skipped without allocating).
struct VariableValueSeed;

impl<'de> DeserializeSeed<'de> for VariableValueSeed {
    type Value = Option<VariableValue>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for VariableValueSeed {
    type Value = Option<VariableValue>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or a number")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Some(VariableValue::Text(value.to_owned())))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Some(VariableValue::Number(value.into())))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Some(VariableValue::Number(value.into())))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(value).map(VariableValue::Number))
    }

    fn visit_bool<E: de::Error>(self, _value: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq)?;
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_map(map)?;
        Ok(None)
    }
}

/// A batch: an array of at most `limits::BATCH` emails.
#[derive(Clone, Copy)]
struct BatchShape<'r> {
    refusal: &'r Refusal,
}

impl<'de> Shape<'de> for BatchShape<'_> {
    type Out = BatchBody;

    fn wrong(self) -> ApiError {
        ApiError::validation("The batch body must be a JSON array of emails.")
    }

    fn list<A: SeqAccess<'de>>(self, seq: A) -> Result<Result<BatchBody, ApiError>, A::Error> {
        let refusal = self.refusal;
        let emails = bounded_list(
            seq,
            ListLimit {
                max: limits::BATCH,
                refusal,
                too_many: || {
                    ApiError::validation(format!("A batch holds at most {} emails.", limits::BATCH))
                },
                elements_named: Some("emails"),
            },
            |_| EmailShape { refusal },
        )?;
        Ok(Ok(BatchBody(
            emails
                .into_iter()
                .map(|email| {
                    email.unwrap_or_else(|problem| SendEmailBody {
                        malformed: Some(problem),
                        ..SendEmailBody::default()
                    })
                })
                .collect(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `json` as `T` the way `body.rs` does, from memory.
    fn read<T: RequestBody>(json: &[u8]) -> Result<T, ApiError> {
        let refusal = Refusal::default();
        let mut de = serde_json::Deserializer::from_slice(json);
        match T::read(&mut de, &refusal).and_then(|read| de.end().map(|()| read)) {
            Ok(read) => read,
            Err(e) => Err(refusal
                .take()
                .unwrap_or_else(|| panic!("not a refusal: {e}"))),
        }
    }

    fn email(json: &str) -> SendEmailBody {
        read::<SendEmailBody>(json.as_bytes()).expect("an email")
    }

    /// `prefix` followed by `count` copies of `element`, then bytes that are not JSON at all: a refusal
    /// proves the parse stopped before them.
    fn overflowing(prefix: &str, element: &str, count: usize) -> Vec<u8> {
        let mut json = prefix.to_owned();
        json.push_str(&vec![element; count].join(","));
        json.push_str(", <<this is never parsed>>");
        json.into_bytes()
    }

    #[test]
    fn lists_over_their_limit_are_refused_where_they_overflow() {
        let cases = [
            (
                "{\"to\": [",
                "\"a@b.c\"",
                limits::TO,
                "`to` has more than 50 addresses.",
            ),
            (
                "{\"cc\": [",
                "\"a@b.c\"",
                limits::CC,
                "`cc` has more than 50 addresses.",
            ),
            (
                "{\"bcc\": [",
                "\"a@b.c\"",
                limits::BCC,
                "`bcc` has more than 50 addresses.",
            ),
            (
                "{\"reply_to\": [",
                "\"a@b.c\"",
                limits::REPLY_TO,
                "`reply_to` has more than 10 addresses.",
            ),
            (
                "{\"tags\": [",
                "{\"name\": \"a\", \"value\": \"b\"}",
                limits::TAGS,
                "`tags` has more than 50 entries.",
            ),
            (
                "{\"attachments\": [",
                "{}",
                limits::ATTACHMENTS,
                "At most 100 attachments per email.",
            ),
            // Elements of the wrong type count too.
            (
                "{\"to\": [",
                "5",
                limits::TO,
                "`to` has more than 50 addresses.",
            ),
        ];
        for (prefix, element, max, message) in cases {
            let error = read::<SendEmailBody>(&overflowing(prefix, element, max + 1)).unwrap_err();
            assert_eq!(error.message(), message, "{prefix}");
            // At the limit, the list is read (and the body's end is then the syntax error it is).
            let mut at_limit = prefix.to_owned();
            at_limit.push_str(&vec![element; max].join(","));
            at_limit.push_str("]}");
            assert!(
                read::<SendEmailBody>(at_limit.as_bytes()).is_ok(),
                "{prefix}"
            );
        }
        let error =
            read::<SendEmailBody>(&overflowing("{\"attachments\": [", "{}", 101)).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidAttachment);

        let mut headers = "{\"headers\": {".to_owned();
        for i in 0..=limits::HEADERS {
            headers.push_str(&format!("\"X-H{i}\": \"v\","));
        }
        headers.push_str(" <<this is never parsed>>");
        let error = read::<SendEmailBody>(headers.as_bytes()).unwrap_err();
        assert_eq!(error.message(), "`headers` has more than 50 entries.");

        let variables = overflowing(
            "{\"template\": {\"id\": \"t\", \"variables\": {",
            "\"K\": 1",
            limits::TEMPLATE_VARIABLES + 1,
        );
        let error = read::<SendEmailBody>(&variables).unwrap_err();
        assert_eq!(
            error.message(),
            "`template.variables` has more than 100 entries."
        );

        let batch = overflowing("[", "{\"to\": \"a@b.c\"}", limits::BATCH + 1);
        let error = read::<BatchBody>(&batch).unwrap_err();
        assert_eq!(error.message(), "A batch holds at most 100 emails.");
        // A batch whose first email overflows is refused there, whatever follows.
        let batch = overflowing("[{\"to\": [", "\"a@b.c\"", 51);
        let error = read::<BatchBody>(&batch).unwrap_err();
        assert_eq!(
            error.message(),
            "emails[0]: `to` has more than 50 addresses."
        );
    }

    #[test]
    fn fields_are_read_into_their_types() {
        let body = email(
            r#"{"from": "a@b.c", "to": "x@y.z", "cc": ["c@d.e", "f@g.h"], "subject": "s", "html": "<p>",
                "text": "t", "headers": {"X-A": "1", "x-b": "2"}, "tags": [{"name": "n", "value": "v"}],
                "attachments": [
                    {"filename": "a.txt", "content": " aGk= "},
                    {"filename": "b.txt", "content": [104, 105]},
                    {"filename": "c.txt", "content": {"type": "Buffer", "data": [104, 105]}},
                    {"path": "https://example.com/f.pdf", "content_type": "application/pdf", "content_id": "c"}
                ],
                "scheduled_at": "2030-01-01T00:00:00Z", "unknown": {"deep": [1, [2, {"x": null}]]},
                "bcc": null, "template": null}"#,
        );
        assert!(body.malformed.is_none(), "{:?}", body.malformed);
        assert_eq!(body.to, Some(vec!["x@y.z".to_owned()]));
        assert_eq!(body.cc.as_ref().map(Vec::len), Some(2));
        assert_eq!(body.bcc, None);
        assert_eq!(
            body.headers,
            Some(vec![
                ("X-A".to_owned(), "1".to_owned()),
                ("x-b".to_owned(), "2".to_owned())
            ])
        );
        let attachments = body.attachments.unwrap();
        for attachment in &attachments[..3] {
            assert_eq!(attachment.content.as_deref(), Some(&b"hi"[..]));
        }
        assert_eq!(
            attachments[3].path.as_deref(),
            Some("https://example.com/f.pdf")
        );
        assert_eq!(attachments[3].content_id.as_deref(), Some("c"));
        assert!(body.template.is_none());
        let template = email(
            r#"{"template": {"id": "t", "variables": {"a": 1, "b": "x", "c": -2.5}, "other": [1]}}"#,
        )
        .template
        .expect("a template");
        assert_eq!(template.id.as_deref(), Some("t"));
        assert_eq!(
            template.variables,
            [
                ("a".to_owned(), VariableValue::Number(1.into())),
                ("b".to_owned(), VariableValue::Text("x".into())),
                (
                    "c".to_owned(),
                    VariableValue::Number(serde_json::Number::from_f64(-2.5).unwrap())
                ),
            ]
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_the_emails_problem_and_the_parse_goes_on() {
        let cases = [
            (
                r#"{"to": 5}"#,
                "`to` must be an email address or an array of them.",
            ),
            (
                r#"{"to": ["a@b.c", 5]}"#,
                "`to` must be an email address or an array of them.",
            ),
            (r#"{"subject": ["x"]}"#, "`subject` must be a string."),
            (
                r#"{"headers": {"X-Num": 5}}"#,
                "Header `X-Num` must have a string value.",
            ),
            (
                r#"{"headers": []}"#,
                "`headers` must be an object of header names and string values.",
            ),
            (r#"{"tags": [{"name": "n"}]}"#, "`tags[0]` needs a `value`."),
            (
                r#"{"tags": [{"name": 1, "value": "v"}]}"#,
                "`tags[0]` must be an object with a string `name` and a string `value`.",
            ),
            (
                r#"{"attachments": [{"content": "%%%"}]}"#,
                "attachments[0]: `content` is not valid base64.",
            ),
            (
                r#"{"attachments": [{}, {"content": [1, 256]}]}"#,
                "attachments[1]: `content` must be base64 text, an array of byte values or a Node `Buffer`.",
            ),
            (
                r#"{"attachments": [{"filename": 1}]}"#,
                "attachments[0]: `filename` must be a string.",
            ),
            (
                r#"{"template": "t"}"#,
                "`template` must be an object with the template's `id`.",
            ),
            (r#"{"to": "a@b.c", "to": "c@d.e"}"#, "`to` is given twice."),
            (
                r#"{"template": {"id": "t", "variables": {"a": true}}}"#,
                "Template variable `a` must be a string or a number.",
            ),
            (
                r#"{"template": {"id": 5}}"#,
                "`template.id` must be a string.",
            ),
        ];
        for (json, message) in cases {
            let body = email(json);
            assert_eq!(
                body.malformed.as_ref().map(ApiError::message),
                Some(message),
                "{json}"
            );
        }
        // Bodies and files too large for any message are refused as they are read, before being copied.
        let huge = "x".repeat(limits::max_raw_message_bytes() + 1024);
        for json in [
            format!(r#"{{"html": "{huge}"}}"#),
            format!(r#"{{"text": "{huge}"}}"#),
            format!(r#"{{"attachments": [{{"content": "{huge}{huge}"}}]}}"#),
        ] {
            let body = email(&json);
            let problem = body.malformed.expect("too large");
            assert!(
                problem.message().starts_with("The message would be about"),
                "{}",
                problem.message()
            );
            assert!(body.html.is_none() && body.text.is_none() && body.attachments.is_none());
        }
        for json in ["[1, 2]", "null", "\"x\""] {
            let error = read::<SendEmailBody>(json.as_bytes()).unwrap_err();
            assert_eq!(error.message(), "An email must be a JSON object.", "{json}");
        }
        // The first problem in the document is kept; later fields are still read.
        let body = email(r#"{"subject": 1, "to": 2, "from": "a@b.c"}"#);
        assert_eq!(
            body.malformed.unwrap().message(),
            "`subject` must be a string."
        );
        assert_eq!(body.from.as_deref(), Some("a@b.c"));

        let batch =
            read::<BatchBody>(br#"[{"to": "a@b.c"}, "hello", null, {"to": 5}, {"to": "c@d.e"}]"#)
                .unwrap()
                .0;
        let problems: Vec<_> = batch.iter().map(|e| e.malformed.is_some()).collect();
        assert_eq!(problems, [false, true, true, true, false]);
        assert_eq!(batch[4].to, Some(vec!["c@d.e".to_owned()]));
        assert_eq!(
            read::<BatchBody>(br#"{"to": "a@b.c"}"#)
                .unwrap_err()
                .message(),
            "The batch body must be a JSON array of emails."
        );
    }
}
