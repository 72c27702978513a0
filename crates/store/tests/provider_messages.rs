//! Every provider message id of an email is kept when it is sent, and a provider event naming any of them
//! (not only the first) reaches the email; emails sent before the ids had a table of their own are still
//! found through `emails.provider_message_id`. On SQLite and PostgreSQL.

use std::time::Duration;

use opensend_core::{EmailAddress, EmailStatus, Mailbox, RecipientKind, RecipientStatus};
use opensend_store::Store;
use opensend_store::entities::{email, email_provider_message};
use opensend_store::repos::delivery_queue::{RecipientResult, SentRecord};
use opensend_store::repos::emails::NewEmail;
use opensend_store::repos::provider_events::{ApplyOutcome, ProviderEvent, RecipientChange, SES};
use opensend_store::repos::suppressions::Reason;
use opensend_test_support::TestDatabase;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Database, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;
use uuid::Uuid;

fn email_to(organization_id: Uuid, to: &[&str]) -> NewEmail {
    let id = opensend_core::new_id();
    NewEmail {
        id,
        organization_id,
        api_key_id: None,
        from: Mailbox::parse("a@acme.test").unwrap(),
        to: to.iter().map(|a| Mailbox::parse(a).unwrap()).collect(),
        cc: vec![],
        bcc: vec![],
        reply_to: vec![],
        subject: "s".to_owned(),
        html: None,
        text: Some("t".to_owned()),
        headers: vec![],
        tags: vec![],
        attachments: vec![],
        scheduled_at: None,
        message_id: format!("{id}@acme.test"),
        sending_domain_id: None,
        unverified_sender: true,
        recipients: to
            .iter()
            .map(|a| (EmailAddress::parse(a).unwrap(), RecipientKind::To))
            .collect(),
    }
}

fn accepted(address: &str, provider_message_id: &str) -> RecipientResult {
    RecipientResult {
        address: address.to_owned(),
        accepted: true,
        response: "250 Ok".to_owned(),
        provider_message_id: Some(provider_message_id.to_owned()),
    }
}

/// A permanent bounce of `address` reported about SES message `provider_message_id`.
fn bounce(provider_message_id: &str, address: &str) -> ProviderEvent {
    ProviderEvent {
        provider: SES,
        event_id: Uuid::now_v7().to_string(),
        kind: "Bounce".to_owned(),
        provider_message_id: provider_message_id.to_owned(),
        status: EmailStatus::Bounced,
        event_type: "email.bounced",
        data: json!({"bounce": {"type": "Permanent"}}),
        announce_always: true,
        recipients: vec![RecipientChange {
            address: address.to_owned(),
            status: RecipientStatus::Bounced,
            response: Some("smtp; 550 5.1.1 user unknown".to_owned()),
            suppress: Some(Reason::Bounce),
        }],
    }
}

#[tokio::test]
async fn an_event_about_any_of_an_emails_provider_messages_reaches_it() {
    let db = TestDatabase::new().await;
    let store = Store::connect(db.url(), 4).await.unwrap();
    store.migrate().await.unwrap();
    let org = store.organizations().create("Acme").await.unwrap().id;
    let to = ["one@example.com", "two@example.com", "three@example.com"];
    let email_id = store
        .emails()
        .accept(vec![email_to(org, &to)], None)
        .await
        .unwrap()[0]
        .id;
    let jobs = store
        .delivery_queue()
        .claim("worker", Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);

    // Three provider calls, one recipient each (as SES does beyond 50 recipients); the record repeats the
    // first id, as transports report it.
    let recorded = store
        .delivery_queue()
        .record_sent(
            &jobs[0],
            "worker",
            SentRecord {
                transport: SES.to_owned(),
                provider_message_id: Some("ses-first".to_owned()),
                raw_mime: None,
                recipients: vec![
                    accepted(to[0], "ses-first"),
                    accepted(to[1], "ses-second"),
                    accepted(to[2], "ses-third"),
                ],
            },
        )
        .await
        .unwrap();
    assert!(recorded);
    let connection = Database::connect(db.url()).await.unwrap();
    let ids: Vec<(String, String, Uuid)> = email_provider_message::Entity::find()
        .order_by_asc(email_provider_message::Column::Id)
        .all(&connection)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.transport, m.provider_message_id, m.email_id))
        .collect();
    assert_eq!(
        ids,
        [
            ("ses".to_owned(), "ses-first".to_owned(), email_id),
            ("ses".to_owned(), "ses-second".to_owned(), email_id),
            ("ses".to_owned(), "ses-third".to_owned(), email_id),
        ]
    );
    let sent = store.emails().get(org, email_id).await.unwrap().unwrap();
    assert_eq!(
        sent.provider_message_id.as_deref(),
        Some("ses-first"),
        "the first id stays on the email"
    );

    // A bounce of the third recipient names the third message.
    let outcome = store
        .provider_events()
        .apply(bounce("ses-third", "Three@example.com"))
        .await
        .unwrap();
    let ApplyOutcome::Applied(applied) = outcome else {
        panic!("not applied: {outcome:?}");
    };
    assert_eq!(applied.email_id, email_id);
    assert_eq!(applied.suppressed, ["three@example.com"]);
    let statuses: Vec<(String, String)> = store
        .emails()
        .recipients(email_id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.address.as_str().to_owned(), r.status.as_str().to_owned()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("one@example.com".to_owned(), "accepted".to_owned()),
            ("two@example.com".to_owned(), "accepted".to_owned()),
            ("three@example.com".to_owned(), "bounced".to_owned()),
        ]
    );
    assert!(
        store
            .suppressions()
            .contains(org, "three@example.com")
            .await
            .unwrap()
    );
    assert!(
        !store
            .suppressions()
            .contains(org, "one@example.com")
            .await
            .unwrap()
    );

    // An email sent before the table existed has its one id on the email only.
    let older = store
        .emails()
        .accept(vec![email_to(org, &["old@example.com"])], None)
        .await
        .unwrap()[0]
        .id;
    email::Entity::update_many()
        .col_expr(email::Column::Status, Expr::value("sent"))
        .col_expr(
            email::Column::ProviderMessageId,
            Expr::value(Some("ses-before-the-table")),
        )
        .filter(email::Column::Id.eq(older))
        .exec(&connection)
        .await
        .unwrap();
    let outcome = store
        .provider_events()
        .apply(bounce("ses-before-the-table", "old@example.com"))
        .await
        .unwrap();
    assert!(
        matches!(&outcome, ApplyOutcome::Applied(a) if a.email_id == older),
        "{outcome:?}"
    );
    // An id nobody recorded reaches nothing.
    assert_eq!(
        store
            .provider_events()
            .apply(bounce("ses-unknown", "one@example.com"))
            .await
            .unwrap(),
        ApplyOutcome::UnknownEmail
    );
    connection.close().await.unwrap();
}

#[tokio::test]
async fn events_applied_together_each_count_once_and_alone() {
    let db = TestDatabase::new().await;
    let store = Store::connect(db.url(), 4).await.unwrap();
    store.migrate().await.unwrap();
    let org = store.organizations().create("Acme").await.unwrap().id;
    let to = ["one@example.com", "two@example.com"];
    let email_id = store
        .emails()
        .accept(vec![email_to(org, &to)], None)
        .await
        .unwrap()[0]
        .id;
    let jobs = store
        .delivery_queue()
        .claim("worker", Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert!(
        store
            .delivery_queue()
            .record_sent(
                &jobs[0],
                "worker",
                SentRecord {
                    transport: SES.to_owned(),
                    provider_message_id: Some("ses-1".to_owned()),
                    raw_mime: None,
                    recipients: vec![accepted(to[0], "ses-1"), accepted(to[1], "ses-1")],
                },
            )
            .await
            .unwrap()
    );

    // In one batch: a bounce, the same report again, a report about an email nobody sent, and a second
    // bounce. The repeat is a duplicate, the stranger is dropped, and neither undoes the others.
    let first = bounce("ses-1", "one@example.com");
    let results = store
        .provider_events()
        .apply_many(vec![
            first.clone(),
            first.clone(),
            bounce("ses-unknown", "one@example.com"),
            bounce("ses-1", "Two@example.com"),
        ])
        .await
        .unwrap();
    let outcomes: Vec<ApplyOutcome> = results.into_iter().map(Result::unwrap).collect();
    assert!(matches!(&outcomes[0], ApplyOutcome::Applied(a) if a.email_id == email_id));
    assert_eq!(outcomes[1], ApplyOutcome::Duplicate);
    assert_eq!(outcomes[2], ApplyOutcome::UnknownEmail);
    assert!(
        matches!(&outcomes[3], ApplyOutcome::Applied(a) if a.suppressed == ["two@example.com"])
    );
    let statuses: Vec<String> = store
        .emails()
        .recipients(email_id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.status.as_str().to_owned())
        .collect();
    assert_eq!(statuses, ["bounced", "bounced"]);
    let email = store.emails().get(org, email_id).await.unwrap().unwrap();
    assert_eq!(email.summary.status, EmailStatus::Bounced);
    for address in to {
        assert!(store.suppressions().contains(org, address).await.unwrap());
    }
    // Applied later on its own, the first report is still a duplicate: its record was committed.
    assert_eq!(
        store.provider_events().apply(first).await.unwrap(),
        ApplyOutcome::Duplicate
    );
}
