//! Reports from the email provider about emails already sent (Amazon SES events, delivered by SNS): each
//! applied once, with all of its effects in one transaction.
//!
//! [`ProviderEvents::apply`] takes a report already translated into plain data ([`ProviderEvent`]) and, in one
//! transaction:
//!
//! 1. finds the email the report's provider message id belongs to (none: nothing is written): through
//!    `email_provider_messages`, which holds every id a send produced (SES splits an email to more than 50
//!    recipients into several messages, each with its id), or, for emails sent before that table existed,
//!    through `emails.provider_message_id`;
//! 2. records the report's id in `provider_events` (`INSERT … ON CONFLICT DO NOTHING`). When a row is already
//!    there the report was applied before and the transaction ends without writing anything. A concurrent
//!    transaction applying the same report makes PostgreSQL's insert wait for its outcome: if it commits,
//!    this one finds the row; if it rolls back, this one applies the report. Because the row is written with
//!    the effects, a failure half-way leaves no row, and the provider's retry applies the report in full;
//! 3. moves the email's status forward, never back (see [`email_status_rank`]);
//! 4. records each affected recipient's outcome, also only forward (see [`recipient_status_rank`]);
//! 5. puts permanently bounced and complaining recipients on the organization's suppression list, with the
//!    email as the source;
//! 6. records the email event (`email.bounced`, …) and, through the webhook outbox, announces it to the
//!    organization's endpoints that subscribe to it.
//!
//! Addresses are matched to the email's recipients without regard to case, and only the email's own
//! recipients are changed or suppressed: a report cannot reach an address the email was not sent to.

use opensend_core::{EmailAddress, EmailStatus, RecipientStatus};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, Set,
    TransactionTrait,
};
use serde_json::Value;
use uuid::Uuid;

use crate::StoreError;
use crate::entities::{email, email_provider_message, email_recipient, provider_event};
use crate::records::columns::Row;
use crate::repos::emails::insert_event;
use crate::repos::now;
use crate::repos::suppressions::{Reason, add_in};

/// `provider_events.provider` of Amazon SES: also the name its transport records the email's provider
/// message ids under (`email_provider_messages.transport`).
pub const SES: &str = "ses";

/// Where an email status stands in the order statuses move in.
///
/// `queued` = `scheduled` < `sent` < `delivery_delayed` < `delivered` < `opened` < `clicked` < `bounced` =
/// `complained` = `failed` (and `canceled` = `suppressed`, which never reach the provider). A report moves the
/// status only to a later place: a late `delivered` never overwrites `bounced`, and of two final outcomes the
/// first one stays.
pub fn email_status_rank(status: EmailStatus) -> u8 {
    match status {
        EmailStatus::Queued | EmailStatus::Scheduled => 0,
        EmailStatus::Sent => 1,
        EmailStatus::DeliveryDelayed => 2,
        EmailStatus::Delivered => 3,
        EmailStatus::Opened => 4,
        EmailStatus::Clicked => 5,
        EmailStatus::Bounced
        | EmailStatus::Complained
        | EmailStatus::Failed
        | EmailStatus::Canceled
        | EmailStatus::Suppressed => 6,
    }
}

/// Where a recipient's status stands: `pending` < `accepted` < `delivery_delayed` < `delivered` <
/// `bounced` = `complained` = `failed` = `rejected`. `suppressed` recipients were never sent to and are never
/// changed: `None`.
pub fn recipient_status_rank(status: RecipientStatus) -> Option<u8> {
    Some(match status {
        RecipientStatus::Pending => 0,
        RecipientStatus::Accepted => 1,
        RecipientStatus::DeliveryDelayed => 2,
        RecipientStatus::Delivered => 3,
        RecipientStatus::Bounced
        | RecipientStatus::Complained
        | RecipientStatus::Failed
        | RecipientStatus::Rejected => 4,
        RecipientStatus::Suppressed => return None,
    })
}

/// The stored names of the email statuses that stand before `target`.
fn email_statuses_before(target: EmailStatus) -> Vec<&'static str> {
    EmailStatus::ALL
        .iter()
        .filter(|s| email_status_rank(**s) < email_status_rank(target))
        .map(|s| s.as_str())
        .collect()
}

/// Moves email `email_id` to `status` if that is later in the order ([`email_status_rank`]); whether it moved.
pub(crate) async fn advance_status<C: ConnectionTrait>(
    db: &C,
    email_id: Uuid,
    status: EmailStatus,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<bool, StoreError> {
    let moved = email::Entity::update_many()
        .col_expr(email::Column::Status, Expr::value(status.as_str()))
        .col_expr(email::Column::UpdatedAt, Expr::value(at))
        .filter(email::Column::Id.eq(email_id))
        .filter(email::Column::Status.is_in(email_statuses_before(status)))
        .exec(db)
        .await?;
    Ok(moved.rows_affected == 1)
}

/// The stored names of the recipient statuses that stand before `target`.
fn recipient_statuses_before(target: RecipientStatus) -> Vec<&'static str> {
    let Some(target) = recipient_status_rank(target) else {
        return Vec::new();
    };
    RecipientStatus::ALL
        .iter()
        .filter(|s| recipient_status_rank(**s).is_some_and(|r| r < target))
        .map(|s| s.as_str())
        .collect()
}

/// One provider report, in the store's terms.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderEvent {
    /// Who reported it ([`SES`]).
    pub provider: &'static str,
    /// The report's own id (SNS `MessageId`): a report whose id was applied before is not applied again.
    pub event_id: String,
    /// The provider's name for what happened (`Bounce`), kept with the record.
    pub kind: String,
    /// The provider's id of the message (SES `mail.messageId`), one of those recorded at send in
    /// `email_provider_messages` (older emails: `emails.provider_message_id`).
    pub provider_message_id: String,
    /// The email status the report stands for; the email moves there if that is later in the order.
    pub status: EmailStatus,
    /// The email event recorded and announced (`email.bounced`).
    pub event_type: &'static str,
    /// The event's details as webhooks carry them (`{"bounce": {…}}`). A `recipients` list of the
    /// affected addresses is added from [`ProviderEvent::recipients`].
    pub data: Value,
    /// `false`: record and announce the event only if the status moved. (SES's `Send` repeats what the
    /// delivery worker announced when SES accepted the message.)
    pub announce_always: bool,
    /// The recipients the report is about.
    pub recipients: Vec<RecipientChange>,
}

/// What a report says about one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientChange {
    /// As the provider reported it.
    pub address: String,
    /// The recipient's new status (moves forward only).
    pub status: RecipientStatus,
    /// The receiving server's reply or diagnostic, when the report has one.
    pub response: Option<String>,
    /// Put the address on the organization's suppression list for this reason.
    pub suppress: Option<Reason>,
}

/// What [`ProviderEvents::apply`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    Applied(Applied),
    /// The report was applied before: nothing was written.
    Duplicate,
    /// No email has the report's provider message id: nothing was written.
    UnknownEmail,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub organization_id: Uuid,
    pub email_id: Uuid,
    /// The email's status afterwards.
    pub status: EmailStatus,
    /// Whether the report moved the status.
    pub status_changed: bool,
    /// Whether the email event was recorded (and announced to subscribed endpoints).
    pub recorded: bool,
    /// Addresses put on the suppression list by this report (already listed ones included).
    pub suppressed: Vec<String>,
    /// Reported addresses that are not recipients of the email (left alone).
    pub unmatched: Vec<String>,
}

pub struct ProviderEvents<'a> {
    write: &'a DatabaseConnection,
}

impl<'a> ProviderEvents<'a> {
    pub(crate) fn new(write: &'a DatabaseConnection) -> Self {
        Self { write }
    }

    /// Applies `event` once (see the module documentation).
    pub async fn apply(&self, event: ProviderEvent) -> Result<ApplyOutcome, StoreError> {
        let txn = self.write.begin().await?;
        let outcome = apply_in(&txn, event).await?;
        match outcome {
            ApplyOutcome::Applied(_) => txn.commit().await?,
            _ => txn.rollback().await?,
        }
        Ok(outcome)
    }

    /// Applies each of `events` once, as [`ProviderEvents::apply`] would, all in one transaction: one
    /// commit for the lot instead of one per event. Each event runs in a savepoint of its own, so one that
    /// fails (its result is the error) or writes nothing leaves the others' effects alone. Events are applied
    /// in order: of two with the same id, the second is a duplicate. `Err` when the transaction itself
    /// failed: then nothing at all was written.
    pub async fn apply_many(
        &self,
        events: Vec<ProviderEvent>,
    ) -> Result<Vec<Result<ApplyOutcome, StoreError>>, StoreError> {
        let txn = self.write.begin().await?;
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            let savepoint = txn.begin().await?;
            match apply_in(&savepoint, event).await {
                Ok(outcome @ ApplyOutcome::Applied(_)) => {
                    savepoint.commit().await?;
                    results.push(Ok(outcome));
                }
                Ok(outcome) => {
                    savepoint.rollback().await?;
                    results.push(Ok(outcome));
                }
                Err(e) => {
                    savepoint.rollback().await?;
                    results.push(Err(e));
                }
            }
        }
        txn.commit().await?;
        Ok(results)
    }
}

/// The work of [`ProviderEvents::apply`] inside `txn`; the caller commits only what comes back
/// [`ApplyOutcome::Applied`] (the other outcomes wrote nothing worth keeping).
async fn apply_in<C: ConnectionTrait>(
    txn: &C,
    event: ProviderEvent,
) -> Result<ApplyOutcome, StoreError> {
    let Some(found) = find_email(txn, event.provider, event.provider_message_id.as_str()).await?
    else {
        return Ok(ApplyOutcome::UnknownEmail);
    };
    let at = now();

    let recorded = provider_event::Entity::insert(provider_event::ActiveModel {
        id: Set(opensend_core::new_id()),
        organization_id: Set(found.organization_id),
        provider: Set(event.provider.to_owned()),
        event_id: Set(event.event_id.clone()),
        email_id: Set(found.id),
        kind: Set(event.kind.clone()),
        created_at: Set(at),
    })
    .on_conflict(
        OnConflict::columns([
            provider_event::Column::Provider,
            provider_event::Column::EventId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    if recorded == 0 {
        return Ok(ApplyOutcome::Duplicate);
    }

    let status_changed = advance_status(txn, found.id, event.status, at).await?;

    let recipients = email_recipient::Entity::find()
        .filter(email_recipient::Column::EmailId.eq(found.id))
        .all(txn)
        .await?;
    let mut affected: Vec<String> = Vec::new();
    let mut suppressed = Vec::new();
    let mut unmatched = Vec::new();
    for change in &event.recipients {
        let Some(recipient) = recipients
            .iter()
            .find(|r| r.address.eq_ignore_ascii_case(change.address.trim()))
        else {
            unmatched.push(change.address.clone());
            if !affected.contains(&change.address) {
                affected.push(change.address.clone());
            }
            continue;
        };
        if !affected.contains(&recipient.address) {
            affected.push(recipient.address.clone());
        }
        let mut update = email_recipient::Entity::update_many()
            .col_expr(
                email_recipient::Column::Status,
                Expr::value(change.status.as_str()),
            )
            .col_expr(email_recipient::Column::UpdatedAt, Expr::value(at));
        if let Some(response) = &change.response {
            update = update.col_expr(
                email_recipient::Column::Response,
                Expr::value(Some(response.clone())),
            );
        }
        update
            .filter(email_recipient::Column::Id.eq(recipient.id))
            .filter(email_recipient::Column::Status.is_in(recipient_statuses_before(change.status)))
            .exec(txn)
            .await?;
        if let Some(reason) = change.suppress
            && let Ok(address) = EmailAddress::parse(&recipient.address)
        {
            add_in(txn, found.organization_id, &address, reason, Some(found.id)).await?;
            suppressed.push(recipient.address.clone());
        }
    }

    let recorded = event.announce_always || status_changed;
    if recorded {
        let mut data = event.data;
        if !affected.is_empty()
            && let Some(fields) = data.as_object_mut()
        {
            fields.insert("recipients".into(), Value::from(affected.clone()));
        }
        insert_event(
            txn,
            found.organization_id,
            found.id,
            event.event_type,
            data,
            at,
        )
        .await?;
    }

    let current: Option<String> = email::Entity::find_by_id(found.id)
        .select_only()
        .column(email::Column::Status)
        .into_tuple()
        .one(txn)
        .await?;
    let status = Row::new("emails", found.id)
        .value("status", current.as_deref().unwrap_or(&found.status))?;
    Ok(ApplyOutcome::Applied(Applied {
        organization_id: found.organization_id,
        email_id: found.id,
        status,
        status_changed,
        recorded,
        suppressed,
        unmatched,
    }))
}

/// The email a provider message id belongs to: through `email_provider_messages` (every id of every send
/// since the table exists), else through the id `emails.provider_message_id` kept before it.
async fn find_email<C: ConnectionTrait>(
    db: &C,
    transport: &str,
    provider_message_id: &str,
) -> Result<Option<email::Model>, StoreError> {
    let recorded: Option<Uuid> = email_provider_message::Entity::find()
        .select_only()
        .column(email_provider_message::Column::EmailId)
        .filter(email_provider_message::Column::Transport.eq(transport))
        .filter(email_provider_message::Column::ProviderMessageId.eq(provider_message_id))
        .into_tuple()
        .one(db)
        .await?;
    let found = match recorded {
        Some(email_id) => email::Entity::find_by_id(email_id).one(db).await?,
        None => {
            email::Entity::find()
                .filter(email::Column::ProviderMessageId.eq(provider_message_id))
                .one(db)
                .await?
        }
    };
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_only_move_forward() {
        use EmailStatus as E;
        let later = |from: E, to: E| email_statuses_before(to).contains(&from.as_str());
        assert!(later(E::Sent, E::Delivered));
        assert!(later(E::Queued, E::Sent));
        assert!(later(E::Delivered, E::Bounced));
        assert!(later(E::Clicked, E::Complained));
        assert!(later(E::DeliveryDelayed, E::Delivered));
        assert!(!later(E::Bounced, E::Delivered));
        assert!(!later(E::Bounced, E::Complained));
        assert!(!later(E::Failed, E::Bounced));
        assert!(!later(E::Clicked, E::Opened));
        assert!(!later(E::Delivered, E::Delivered));
        assert!(!later(E::Canceled, E::Delivered));

        use RecipientStatus as R;
        let later = |from: R, to: R| recipient_statuses_before(to).contains(&from.as_str());
        assert!(later(R::Accepted, R::Delivered));
        assert!(later(R::Delivered, R::Complained));
        assert!(!later(R::Bounced, R::Delivered));
        assert!(!later(R::Suppressed, R::Bounced));
        assert!(recipient_statuses_before(R::Suppressed).is_empty());
    }
}
