//! Received (inbound) email: storing a routed message with its attachments and its `email.received`
//! announcement in one transaction, and reading it back per organization.

use chrono::{DateTime, Utc};
use opensend_core::webhook::EventType;
use opensend_core::webhook::payload::{
    ReceivedAttachmentData, ReceivedEmailEventData, bracketed_message_id, timestamp,
};
use opensend_core::{DomainStatus, Header};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::entities::{domain, received_attachment, received_email};
use crate::pagination::{paginate, paginate_in_order};
use crate::records::columns::{headers_text, strings_text};
use crate::records::{
    AttachmentSummary, DomainRecord, ReceivedEmailRecord, ReceivedEmailSummary,
    ReceivedEmailSummaryRow, read_all,
};
use crate::repos::now;
use crate::repos::webhook_outbox;
use crate::{Page, PageRequest, StoreError};

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
    pub headers: Vec<Header>,
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
    pub async fn receiving_domains(&self, names: &[&str]) -> Result<Vec<DomainRecord>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        read_all(
            domain::Entity::find()
                .filter(domain::Column::Name.is_in(names.iter().copied()))
                .filter(domain::Column::ReceivingEnabled.eq(true))
                .filter(domain::Column::Status.eq(DomainStatus::Verified.as_str()))
                .order_by_asc(domain::Column::Id)
                .all(self.read)
                .await?,
        )
    }

    pub async fn get(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<Option<ReceivedEmailRecord>, StoreError> {
        received_email::Entity::find_by_id(id)
            .filter(received_email::Column::OrganizationId.eq(organization_id))
            .one(self.read)
            .await?
            .map(ReceivedEmailRecord::try_from)
            .transpose()
    }

    /// The organization's received emails, newest first, read from their summary columns only.
    pub async fn list(
        &self,
        organization_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<ReceivedEmailSummary>, StoreError> {
        let select = received_email::Entity::find()
            .filter(received_email::Column::OrganizationId.eq(organization_id));
        paginate::<_, ReceivedEmailSummaryRow, _>(
            self.read,
            select,
            received_email::Column::Id,
            page,
        )
        .await?
        .into_records()
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
        let select = summaries()
            .filter(received_attachment::Column::OrganizationId.eq(organization_id))
            .filter(received_attachment::Column::ReceivedEmailId.eq(email_id));
        // Attachment ids are created in message order, so id order is position order.
        paginate_in_order(self.read, select, received_attachment::Column::Id, page).await
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
    received_email::ActiveModel {
        id: Set(id),
        organization_id: Set(route.organization_id),
        from_address: Set(message.from.clone()),
        to_addresses: Set(strings_text(&message.to)),
        cc_addresses: Set(strings_text(&message.cc)),
        reply_to: Set(strings_text(&message.reply_to)),
        bcc_addresses: Set(strings_text(&route.bcc)),
        envelope_recipients: Set(strings_text(&route.envelope_recipients)),
        subject: Set(message.subject.clone()),
        html: Set(message.html.clone()),
        text_body: Set(message.text.clone()),
        headers: Set(headers_text(&message.headers)),
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
        || ReceivedEmailEventData {
            email_id: id,
            created_at: timestamp(at),
            from: message.from.clone(),
            to: message.to.clone(),
            subject: message.subject.clone().unwrap_or_default(),
            message_id: bracketed_message_id(message.message_id.as_deref()),
            bcc: route.bcc.clone(),
            cc: message.cc.clone(),
            attachments: attachments
                .iter()
                .map(|a| ReceivedAttachmentData {
                    id: a.id,
                    filename: a.filename.clone(),
                    content_type: a.content_type.clone(),
                    content_disposition: a.disposition(),
                    content_id: a.content_id.clone(),
                })
                .collect(),
        },
        at,
    )
    .await?;
    Ok(id)
}
