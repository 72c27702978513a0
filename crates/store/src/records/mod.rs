//! What the repositories return: typed values, never a row's JSON text or status names.
//!
//! [`crate::entities`] map the tables' rows; the records here are what those rows mean, read once in this
//! crate: addresses as [`opensend_core::Mailbox`]es, headers and tags as their types, statuses as the
//! enums of [`opensend_core::status`], details as JSON documents. How each kind of column is stored, and how
//! rows written by earlier versions are read, is in [`columns`]. Lists read summary records built from
//! their columns only, so listing never loads bodies, raw messages or attachment contents.

mod audience;
pub(crate) mod columns;
mod domain;
mod email;
mod received_email;
pub(crate) mod template;
mod webhook;

pub use audience::{
    ContactDetail, ContactPropertyRecord, ContactRecord, ContactSegmentRecord, ContactTopicRecord,
    PropertyType, PropertyValueRecord, SegmentRecord, Subscription, TopicRecord, Visibility,
};
pub use domain::{DkimKeyRecord, DomainRecord, SendingDomains};
pub(crate) use email::EmailSummaryRow;
pub use email::{
    EmailEventRecord, EmailRecord, EmailSummary, RecipientRecord, SentAttachmentSummary,
};
pub(crate) use received_email::ReceivedEmailSummaryRow;
pub use received_email::{AttachmentSummary, ReceivedEmailRecord, ReceivedEmailSummary};
pub use template::{
    TemplateContent, TemplateRecord, TemplateVariable, TemplateVersionRecord, VariableType,
};
pub use webhook::{DeliveryRecord, OrganizationEventRecord, WebhookMessageRecord, WebhookRecord};

/// Reads every row into its record, stopping at the first damaged one.
pub(crate) fn read_all<M, R>(rows: Vec<M>) -> Result<Vec<R>, crate::StoreError>
where
    R: TryFrom<M, Error = crate::StoreError>,
{
    rows.into_iter().map(R::try_from).collect()
}
