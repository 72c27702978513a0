//! Group commit of accepted emails: the emails of concurrent send requests are written by a few writers,
//! each taking what has queued up and writing it in one transaction with one multi-row statement per table,
//! instead of one transaction and one statement per row for each request.
//!
//! Why: an accepted email is a suppression lookup and five inserts (email, recipients, attachments, first
//! event, delivery job). One transaction per request made the database the limit of `POST /emails` (on SQLite
//! one writer runs the transactions one after another, each statement a hand-off to the driver's thread; on
//! PostgreSQL every statement is a round trip and every commit a WAL flush). Writing a group of requests
//! together costs about the same handful of statements whatever the group's size.
//!
//! What it keeps:
//! - A request is answered only after the transaction holding its emails committed: an answered email is
//!   durable, exactly as before.
//! - Each request's idempotency key is completed in the same transaction as its emails, and only by the
//!   request that still holds it; a request that lost its key (another request completed it first) gets
//!   [`StoreError::IdempotencyConflict`] and writes nothing, while the others of its group are written.
//! - When the group's transaction fails as a whole (the database went away, a row broke a constraint), no
//!   request of the group is written and each gets the error (a 5xx to its client). Rows are only written
//!   after the server validated them, so this is a failure of the database, not of one request's input.
//!
//! Groups are bounded ([`GROUP_REQUESTS`] requests, [`GROUP_EMAILS`] emails) so a group's transaction stays
//! short and the latency of the requests waiting for the next one with it.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use opensend_core::{EmailAddress, EmailStatus, RecipientStatus};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, Set, TransactionTrait,
};
use serde_json::json;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::StoreError;
use crate::entities::{
    delivery_job, email, email_attachment, email_event, email_recipient, idempotency_key,
    suppression,
};
use crate::records::columns::{headers_text, mailbox_text, mailboxes_text, tags_text};
use crate::repos::new_email::{Accepted, IdempotentResponse, NewEmail};
use crate::repos::now;
use crate::repos::suppressions::address_key;
use crate::repos::webhook_outbox::enqueue_email_event;

/// Most requests one group's transaction writes.
pub const GROUP_REQUESTS: usize = 64;
/// Most emails one group's transaction writes (a batch request of 100 emails is still written whole, alone).
pub const GROUP_EMAILS: usize = 256;
/// Rows per multi-row insert, well under both backends' limits on bound parameters (SQLite 32,766,
/// PostgreSQL 65,535) for the widest table (`emails`, 25 columns).
const INSERT_CHUNK: usize = 500;
/// Attachments per insert: their contents are large, so a few at a time.
const ATTACHMENT_CHUNK: usize = 16;

/// One request's emails and, when it carries an idempotency key, the answer to remember with them.
#[derive(Debug)]
pub(crate) struct AcceptRequest {
    pub emails: Vec<NewEmail>,
    pub idempotent: Option<IdempotentResponse>,
}

type Answer = Result<Vec<Accepted>, StoreError>;

struct Pending {
    request: AcceptRequest,
    answer: oneshot::Sender<Answer>,
}

/// The writers of one store; they start with the first accepted request.
pub(crate) struct AcceptWriter {
    write: DatabaseConnection,
    writers: usize,
    queue: OnceLock<mpsc::Sender<Pending>>,
}

impl AcceptWriter {
    /// `writers` transactions may be open at once: one on SQLite (it has one writer anyway), a few on
    /// PostgreSQL, so one group is collected while another commits.
    pub(crate) fn new(write: DatabaseConnection, writers: usize) -> Self {
        Self {
            write,
            writers: writers.max(1),
            queue: OnceLock::new(),
        }
    }

    /// Writes `request` with whatever else is queued, and answers once its group committed.
    pub(crate) async fn accept(&self, request: AcceptRequest) -> Answer {
        let queue = self.queue.get_or_init(|| {
            let (sender, received) = mpsc::channel(GROUP_REQUESTS * self.writers);
            let received = Arc::new(Mutex::new(received));
            for _ in 0..self.writers {
                tokio::spawn(run_writer(self.write.clone(), received.clone()));
            }
            sender
        });
        let (answer, answered) = oneshot::channel();
        match queue.send(Pending { request, answer }).await {
            Ok(()) => answered.await.unwrap_or_else(|_| {
                // The writer went away mid-group (its runtime shut down); the transaction was not committed.
                Err(StoreError::Database(DbErr::Custom(
                    "the email writer stopped before the email was written".to_owned(),
                )))
            }),
            // No writer is left to take it (the runtime that started them ended): write it here.
            Err(mpsc::error::SendError(pending)) => {
                let mut answers = write_group(&self.write, vec![pending.request]).await;
                answers.pop().unwrap_or_else(|| {
                    Err(StoreError::Database(DbErr::Custom(
                        "no answer for an accepted email".to_owned(),
                    )))
                })
            }
        }
    }
}

/// One writer: takes a group of what has queued up, writes it, answers each request.
async fn run_writer(write: DatabaseConnection, received: Arc<Mutex<mpsc::Receiver<Pending>>>) {
    loop {
        let group = {
            let mut received = received.lock().await;
            let Some(first) = received.recv().await else {
                return;
            };
            let mut emails = first.request.emails.len();
            let mut group = vec![first];
            while group.len() < GROUP_REQUESTS && emails < GROUP_EMAILS {
                match received.try_recv() {
                    Ok(next) => {
                        emails += next.request.emails.len();
                        group.push(next);
                    }
                    Err(_) => break,
                }
            }
            group
        };
        let (requests, answers): (Vec<_>, Vec<_>) = group
            .into_iter()
            .map(|pending| (pending.request, pending.answer))
            .unzip();
        for (answer, result) in answers.into_iter().zip(write_group(&write, requests).await) {
            // A request whose client went away no longer waits; its emails are written all the same.
            let _ = answer.send(result);
        }
    }
}

/// Writes the requests in one transaction; one answer per request, in order.
pub(crate) async fn write_group(
    write: &DatabaseConnection,
    requests: Vec<AcceptRequest>,
) -> Vec<Answer> {
    let count = requests.len();
    match try_write_group(write, requests).await {
        Ok(answers) => answers,
        Err(error) => {
            tracing::warn!(%error, requests = count, "writing a group of accepted emails failed");
            let message = error.to_string();
            (0..count)
                .map(|_| Err(StoreError::Database(DbErr::Custom(message.clone()))))
                .collect()
        }
    }
}

async fn try_write_group(
    write: &DatabaseConnection,
    requests: Vec<AcceptRequest>,
) -> Result<Vec<Answer>, StoreError> {
    let txn = write.begin().await?;
    let at = now();

    // Keys first: a request that lost its key writes nothing, the others go on.
    let mut answers: Vec<Option<Answer>> = Vec::with_capacity(requests.len());
    let mut to_write: Vec<(usize, Vec<NewEmail>)> = Vec::with_capacity(requests.len());
    for (index, request) in requests.into_iter().enumerate() {
        if let Some(response) = request.idempotent
            && !complete_key(&txn, response).await?
        {
            answers.push(Some(Err(StoreError::IdempotencyConflict)));
            continue;
        }
        answers.push(None);
        to_write.push((index, request.emails));
    }

    let suppressed = suppressed_addresses(&txn, to_write.iter().flat_map(|(_, e)| e)).await?;
    let mut rows = Rows::new(at);
    for (index, emails) in to_write {
        let accepted = emails
            .into_iter()
            .map(|email| rows.add(email, &suppressed))
            .collect();
        answers[index] = Some(Ok(accepted));
    }
    rows.insert(&txn).await?;
    txn.commit().await?;
    Ok(answers
        .into_iter()
        .map(|answer| {
            answer.unwrap_or_else(|| {
                Err(StoreError::Database(DbErr::Custom(
                    "an accepted request was left unanswered".to_owned(),
                )))
            })
        })
        .collect())
}

/// Writes `emails` in the caller's transaction exactly as the accept path writes an accepted email
/// (recipients, first event, webhook outbox, delivery job; suppressed recipients marked), for work that must
/// commit emails together with rows of its own (a broadcast's chunk and its cursor).
pub(crate) async fn write_emails(
    txn: &DatabaseTransaction,
    emails: Vec<NewEmail>,
    at: DateTime<Utc>,
) -> Result<Vec<Accepted>, StoreError> {
    let suppressed = suppressed_addresses(txn, emails.iter()).await?;
    let mut rows = Rows::new(at);
    let accepted = emails
        .into_iter()
        .map(|email| rows.add(email, &suppressed))
        .collect();
    rows.insert(txn).await?;
    Ok(accepted)
}

/// Completes an idempotency key with its answer, only while no other request has: `false` when another
/// request holding the same key (after a takeover) answered it first.
async fn complete_key(
    txn: &DatabaseTransaction,
    response: IdempotentResponse,
) -> Result<bool, StoreError> {
    let completed = idempotency_key::Entity::update_many()
        .col_expr(
            idempotency_key::Column::ResponseStatus,
            Expr::value(i32::from(response.status)),
        )
        .col_expr(
            idempotency_key::Column::ResponseBody,
            Expr::value(response.body),
        )
        .filter(idempotency_key::Column::Id.eq(response.record_id))
        .filter(idempotency_key::Column::ResponseStatus.is_null())
        .exec(txn)
        .await?;
    Ok(completed.rows_affected == 1)
}

/// The (organization, address key) pairs of the group's recipients on their organization's suppression
/// list, in one query (the list matches whole addresses without regard to case, see `repos::suppressions`).
async fn suppressed_addresses<'e>(
    txn: &DatabaseTransaction,
    emails: impl Iterator<Item = &'e NewEmail>,
) -> Result<HashSet<(Uuid, String)>, StoreError> {
    let mut organizations = HashSet::new();
    let mut keys = HashSet::new();
    for email in emails {
        organizations.insert(email.organization_id);
        keys.extend(
            email
                .recipients
                .iter()
                .map(|(address, _)| address_key(address.as_str())),
        );
    }
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    let mut listed = HashSet::new();
    let keys: Vec<String> = keys.into_iter().collect();
    for chunk in keys.chunks(INSERT_CHUNK) {
        let found = suppression::Entity::find()
            .filter(suppression::Column::OrganizationId.is_in(organizations.iter().copied()))
            .filter(suppression::Column::AddressKey.is_in(chunk.iter().cloned()))
            .all(txn)
            .await?;
        listed.extend(
            found
                .into_iter()
                .map(|s| (s.organization_id, s.address_key)),
        );
    }
    Ok(listed)
}

/// The rows of a group, per table, in the order they are inserted.
struct Rows {
    /// When the group was written: every row's time.
    at: DateTime<Utc>,
    emails: Vec<email::ActiveModel>,
    attachments: Vec<email_attachment::ActiveModel>,
    recipients: Vec<email_recipient::ActiveModel>,
    events: Vec<email_event::ActiveModel>,
    /// Events endpoints may subscribe to, announced through the webhook outbox once the emails exist:
    /// (organization, email, type, data).
    announced: Vec<(Uuid, Uuid, &'static str, serde_json::Value)>,
    jobs: Vec<delivery_job::ActiveModel>,
}

impl Rows {
    fn new(at: DateTime<Utc>) -> Self {
        Self {
            at,
            emails: Vec::new(),
            attachments: Vec::new(),
            recipients: Vec::new(),
            events: Vec::new(),
            announced: Vec::new(),
            jobs: Vec::new(),
        }
    }

    /// Adds one email's rows: recipients on the suppression list are marked `suppressed`, and an email whose
    /// every recipient is suppressed gets no delivery job.
    fn add(&mut self, new: NewEmail, suppressed: &HashSet<(Uuid, String)>) -> Accepted {
        let at = self.at;
        let org = new.organization_id;
        let listed =
            |address: &EmailAddress| suppressed.contains(&(org, address_key(address.as_str())));
        let all_suppressed = new.recipients.iter().all(|(address, _)| listed(address));
        let status = match (all_suppressed, new.scheduled_at) {
            (true, _) => EmailStatus::Suppressed,
            (false, Some(_)) => EmailStatus::Scheduled,
            (false, None) => EmailStatus::Queued,
        };

        for (position, attachment) in new.attachments.into_iter().enumerate() {
            self.attachments.push(email_attachment::ActiveModel {
                id: Set(opensend_core::new_id()),
                email_id: Set(new.id),
                organization_id: Set(org),
                position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
                filename: Set(attachment.filename),
                content_type: Set(attachment.content_type),
                content_id: Set(attachment.content_id),
                content: Set(attachment.content),
            });
        }

        let mut suppressed_here = Vec::new();
        for (address, kind) in &new.recipients {
            let is_suppressed = listed(address);
            if is_suppressed {
                suppressed_here.push(address.as_str().to_owned());
            }
            self.recipients.push(email_recipient::ActiveModel {
                id: Set(opensend_core::new_id()),
                email_id: Set(new.id),
                organization_id: Set(org),
                address: Set(address.as_str().to_owned()),
                kind: Set(kind.as_str().to_owned()),
                status: Set(if is_suppressed {
                    RecipientStatus::Suppressed
                } else {
                    RecipientStatus::Pending
                }
                .as_str()
                .to_owned()),
                response: Set(None),
                updated_at: Set(at),
            });
        }

        let (event, data) = match status {
            EmailStatus::Suppressed => ("email.suppressed", json!({"recipients": suppressed_here})),
            EmailStatus::Scheduled => {
                ("email.scheduled", json!({"scheduled_at": new.scheduled_at}))
            }
            _ => ("email.queued", json!({})),
        };
        self.events.push(email_event::ActiveModel {
            id: Set(opensend_core::new_id()),
            organization_id: Set(org),
            email_id: Set(new.id),
            event_type: Set(event.to_owned()),
            data: Set(data.to_string()),
            created_at: Set(at),
        });
        // `email.queued` is not an event endpoints can subscribe to: nothing to announce, nothing to read.
        if status != EmailStatus::Queued {
            self.announced.push((org, new.id, event, data));
        }

        if status != EmailStatus::Suppressed {
            self.jobs.push(delivery_job::ActiveModel {
                id: Set(opensend_core::new_id()),
                email_id: Set(new.id),
                organization_id: Set(org),
                run_at: Set(new.scheduled_at.unwrap_or(at)),
                attempts: Set(0),
                lease_owner: Set(None),
                lease_expires_at: Set(None),
                last_error: Set(None),
                created_at: Set(at),
            });
        }

        self.emails.push(email::ActiveModel {
            id: Set(new.id),
            organization_id: Set(org),
            api_key_id: Set(new.api_key_id),
            from_address: Set(mailbox_text(&new.from)),
            to_addresses: Set(mailboxes_text(&new.to)),
            cc_addresses: Set(mailboxes_text(&new.cc)),
            bcc_addresses: Set(mailboxes_text(&new.bcc)),
            reply_to: Set(mailboxes_text(&new.reply_to)),
            subject: Set(new.subject),
            html: Set(new.html),
            text_body: Set(new.text),
            headers: Set(headers_text(&new.headers)),
            tags: Set(tags_text(&new.tags)),
            status: Set(status.as_str().to_owned()),
            scheduled_at: Set(new.scheduled_at),
            message_id: Set(new.message_id),
            sending_domain_id: Set(new.sending_domain_id),
            unverified_sender: Set(new.unverified_sender),
            transport: Set(None),
            provider_message_id: Set(None),
            last_error: Set(None),
            raw_mime: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
            sent_at: Set(None),
        });
        Accepted { id: new.id, status }
    }

    /// Inserts every row, parents first.
    async fn insert(self, txn: &DatabaseTransaction) -> Result<(), StoreError> {
        insert_chunks(txn, self.emails, INSERT_CHUNK).await?;
        insert_chunks(txn, self.attachments, ATTACHMENT_CHUNK).await?;
        insert_chunks(txn, self.recipients, INSERT_CHUNK).await?;
        // The outbox reads the email (its payload's fields) and the suppression list: after the emails.
        for (org, email_id, event, data) in &self.announced {
            enqueue_email_event(txn, *org, *email_id, event, data, self.at).await?;
        }
        insert_chunks(txn, self.events, INSERT_CHUNK).await?;
        insert_chunks(txn, self.jobs, INSERT_CHUNK).await?;
        Ok(())
    }
}

async fn insert_chunks<A>(
    txn: &DatabaseTransaction,
    mut rows: Vec<A>,
    chunk: usize,
) -> Result<(), StoreError>
where
    A: ActiveModelTrait + Send,
{
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(chunk));
        <A::Entity as EntityTrait>::insert_many(std::mem::replace(&mut rows, rest))
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}
