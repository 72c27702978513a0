//! Received (inbound) email: storing a routed message with its attachments and its `email.received`
//! announcement in one transaction, and reading it back per organization.

use chrono::{DateTime, Utc};
use opensend_core::webhook::EventType;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::entities::{domain, received_attachment, received_email};
use crate::pagination::paginate;
use crate::repos::emails::read_list;
use crate::repos::webhook_outbox::{self, payload_timestamp};
use crate::repos::{json_list, now};
use crate::{Cursor, Page, PageRequest, StoreError};

/// `domains.status` of a domain whose DNS records were found.
const DOMAIN_VERIFIED: &str = "verified";

/// A parsed message, ready to be stored for each organization it was routed to.
#[derive(Clone, Debug, Default)]
pub struct InboundMessage {
    /// Display text of the first From mailbox; empty when there was none.
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub reply_to: Vec<String>,
    pub subject: Option<String>,
    pub html: Option<String>,
    pub text: Option<String>,
    pub headers: Vec<(String, String)>,
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub raw_size: i64,
    pub attachments: Vec<InboundAttachment>,
}

#[derive(Clone, Debug, Default)]
pub struct InboundAttachment {
    pub filename: Option<String>,
    pub content_type: String,
    pub content_id: Option<String>,
    pub inline: bool,
    pub content: Vec<u8>,
}

/// One organization's copy: the envelope recipients it receives the message for, and of those the ones
/// the message's To and Cc do not name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundRoute {
    pub organization_id: Uuid,
    pub envelope_recipients: Vec<String>,
    pub bcc: Vec<String>,
}

/// What the API shows of an attachment without loading its content.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct AttachmentSummary {
    pub id: Uuid,
    pub received_email_id: Uuid,
    pub position: i32,
    pub filename: Option<String>,
    pub content_type: String,
    pub content_id: Option<String>,
    pub inline: bool,
    pub size: i64,
}

impl AttachmentSummary {
    /// `inline` or `attachment`, as Resend's `content_disposition`.
    pub fn disposition(&self) -> &'static str {
        if self.inline { "inline" } else { "attachment" }
    }
}

pub struct ReceivedEmails<'a> {
    read: &'a DatabaseConnection,
    write: &'a DatabaseConnection,
}

impl<'a> ReceivedEmails<'a> {
    pub(crate) fn new(read: &'a DatabaseConnection, write: &'a DatabaseConnection) -> Self {
        Self { read, write }
    }

    /// Stores `message` once for each route, with its attachments, and announces `email.received` to
    /// each organization's subscribed endpoints, all in one transaction: either every copy and its
    /// announcement exists afterwards, or nothing does. Returns the ids of the copies, in route order.
    pub async fn receive(
        &self,
        message: &InboundMessage,
        routes: &[InboundRoute],
    ) -> Result<Vec<Uuid>, StoreError> {
        let txn = self.write.begin().await?;
        let at = now();
        let mut ids = Vec::with_capacity(routes.len());
        for route in routes {
            ids.push(insert_copy(&txn, message, route, at).await?);
        }
        txn.commit().await?;
        Ok(ids)
    }

    /// Verified, receiving-enabled domains named `names`, of every organization: the candidates for
    /// routing mail addressed to those names.
    pub async fn receiving_domains(
        &self,
        names: &[&str],
    ) -> Result<Vec<domain::Model>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        Ok(domain::Entity::find()
            .filter(domain::Column::Name.is_in(names.iter().copied()))
            .filter(domain::Column::ReceivingEnabled.eq(true))
            .filter(domain::Column::Status.eq(DOMAIN_VERIFIED))
            .order_by_asc(domain::Column::Id)
            .all(self.read)
            .await?)
    }

    pub async fn get(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<Option<received_email::Model>, StoreError> {
        Ok(received_email::Entity::find_by_id(id)
            .filter(received_email::Column::OrganizationId.eq(organization_id))
            .one(self.read)
            .await?)
    }

    /// The organization's received emails, newest first.
    pub async fn list(
        &self,
        organization_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<received_email::Model>, StoreError> {
        let select = received_email::Entity::find()
            .filter(received_email::Column::OrganizationId.eq(organization_id));
        paginate(self.read, select, received_email::Column::Id, page).await
    }

    /// Attachment metadata of the organization's emails `email_ids`, in message order.
    pub async fn attachment_summaries(
        &self,
        organization_id: Uuid,
        email_ids: &[Uuid],
    ) -> Result<Vec<AttachmentSummary>, StoreError> {
        if email_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(summaries()
            .filter(received_attachment::Column::OrganizationId.eq(organization_id))
            .filter(received_attachment::Column::ReceivedEmailId.is_in(email_ids.iter().copied()))
            .order_by_asc(received_attachment::Column::Position)
            .into_model::<AttachmentSummary>()
            .all(self.read)
            .await?)
    }

    /// One page of an email's attachment metadata, in message order: `after` continues with the
    /// attachments that follow the cursor, `before` goes back to those that precede it.
    pub async fn attachments_page(
        &self,
        organization_id: Uuid,
        email_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<AttachmentSummary>, StoreError> {
        let limit = page.limit();
        let select = summaries()
            .filter(received_attachment::Column::OrganizationId.eq(organization_id))
            .filter(received_attachment::Column::ReceivedEmailId.eq(email_id));
        // Attachment ids are created in message order, so id order is position order.
        let id = received_attachment::Column::Id;
        let (select, forward) = match page.cursor() {
            None => (select.order_by_asc(id), true),
            Some(Cursor::After(cursor)) => (select.filter(id.gt(cursor)).order_by_asc(id), true),
            Some(Cursor::Before(cursor)) => (select.filter(id.lt(cursor)).order_by_desc(id), false),
        };
        let mut items = select
            .limit(limit + 1)
            .into_model::<AttachmentSummary>()
            .all(self.read)
            .await?;
        let has_more = items.len() as u64 > limit;
        items.truncate(limit as usize);
        if !forward {
            items.reverse();
        }
        Ok(Page { items, has_more })
    }

    /// One attachment with its content.
    pub async fn attachment(
        &self,
        organization_id: Uuid,
        email_id: Uuid,
        id: Uuid,
    ) -> Result<Option<received_attachment::Model>, StoreError> {
        Ok(received_attachment::Entity::find_by_id(id)
            .filter(received_attachment::Column::OrganizationId.eq(organization_id))
            .filter(received_attachment::Column::ReceivedEmailId.eq(email_id))
            .one(self.read)
            .await?)
    }
}

fn summaries() -> sea_orm::Select<received_attachment::Entity> {
    use received_attachment::Column as C;
    received_attachment::Entity::find().select_only().columns([
        C::Id,
        C::ReceivedEmailId,
        C::Position,
        C::Filename,
        C::ContentType,
        C::ContentId,
        C::Inline,
        C::Size,
    ])
}

async fn insert_copy<C: ConnectionTrait>(
    db: &C,
    message: &InboundMessage,
    route: &InboundRoute,
    at: DateTime<Utc>,
) -> Result<Uuid, StoreError> {
    let id = opensend_core::new_id();
    let email = received_email::ActiveModel {
        id: Set(id),
        organization_id: Set(route.organization_id),
        from_address: Set(message.from.clone()),
        to_addresses: Set(json_list(&message.to)),
        cc_addresses: Set(json_list(&message.cc)),
        reply_to: Set(json_list(&message.reply_to)),
        bcc_addresses: Set(json_list(&route.bcc)),
        envelope_recipients: Set(json_list(&route.envelope_recipients)),
        subject: Set(message.subject.clone()),
        html: Set(message.html.clone()),
        text_body: Set(message.text.clone()),
        headers: Set(serde_json::to_string(&message.headers).unwrap_or_else(|_| "[]".to_owned())),
        message_id: Set(message.message_id.clone()),
        raw_size: Set(message.raw_size),
        created_at: Set(at),
    }
    .insert(db)
    .await?;
    let mut attachments = Vec::with_capacity(message.attachments.len());
    // One statement per attachment: a message may carry tens of megabytes, better not in one statement.
    for (position, attachment) in message.attachments.iter().enumerate() {
        let summary = AttachmentSummary {
            id: opensend_core::new_id(),
            received_email_id: id,
            position: i32::try_from(position).unwrap_or(i32::MAX),
            filename: attachment.filename.clone(),
            content_type: attachment.content_type.clone(),
            content_id: attachment.content_id.clone(),
            inline: attachment.inline,
            size: i64::try_from(attachment.content.len()).unwrap_or(i64::MAX),
        };
        received_attachment::ActiveModel {
            id: Set(summary.id),
            organization_id: Set(route.organization_id),
            received_email_id: Set(id),
            position: Set(summary.position),
            filename: Set(summary.filename.clone()),
            content_type: Set(summary.content_type.clone()),
            content_id: Set(summary.content_id.clone()),
            inline: Set(summary.inline),
            size: Set(summary.size),
            content: Set(attachment.content.clone()),
        }
        .insert(db)
        .await?;
        attachments.push(summary);
    }
    webhook_outbox::enqueue(
        db,
        route.organization_id,
        EventType::EmailReceived,
        || Value::Object(received_event_data(&email, &attachments)),
        at,
    )
    .await?;
    Ok(id)
}

/// `Message-ID` as shown on the wire: in angle brackets, or empty when the message had none.
pub fn bracketed_message_id(message_id: Option<&str>) -> String {
    message_id.map(|m| format!("<{m}>")).unwrap_or_default()
}

/// Resend's `EmailReceivedEventData`: the received email's id, time, sender, recipients, subject,
/// `Message-ID` and attachment metadata (`filename` and `content_id` left out when the part has none).
pub fn received_event_data(
    email: &received_email::Model,
    attachments: &[AttachmentSummary],
) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("email_id".into(), json!(email.id));
    data.insert(
        "created_at".into(),
        json!(payload_timestamp(email.created_at)),
    );
    data.insert("from".into(), json!(email.from_address));
    data.insert("to".into(), json!(read_list(&email.to_addresses)));
    data.insert(
        "subject".into(),
        json!(email.subject.clone().unwrap_or_default()),
    );
    data.insert(
        "message_id".into(),
        json!(bracketed_message_id(email.message_id.as_deref())),
    );
    data.insert("bcc".into(), json!(read_list(&email.bcc_addresses)));
    data.insert("cc".into(), json!(read_list(&email.cc_addresses)));
    let attachments: Vec<Value> = attachments
        .iter()
        .map(|a| {
            let mut item = Map::new();
            item.insert("id".into(), json!(a.id));
            if let Some(filename) = &a.filename {
                item.insert("filename".into(), json!(filename));
            }
            item.insert("content_type".into(), json!(a.content_type));
            item.insert("content_disposition".into(), json!(a.disposition()));
            if let Some(content_id) = &a.content_id {
                item.insert("content_id".into(), json!(content_id));
            }
            Value::Object(item)
        })
        .collect();
    data.insert("attachments".into(), Value::Array(attachments));
    data
}
