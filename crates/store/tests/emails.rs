//! Emails read back typed: what was accepted comes back as the same mailboxes, headers, tags and statuses;
//! rows of the earlier stored form (display strings) still read; lists read summary columns only; and the
//! webhook messages the outbox writes for an email have Resend's shape.

use chrono::{TimeDelta, Utc};
use opensend_core::webhook::EventType;
use opensend_core::{
    EmailAddress, EmailStatus, Header, Mailbox, RecipientKind, RecipientStatus, Tag,
};
use opensend_store::entities::{email, webhook_message};
use opensend_store::repos::emails::{NewAttachment, NewEmail};
use opensend_store::repos::suppressions::Reason;
use opensend_store::repos::{CreateWebhookOutcome, NewWebhook};
use opensend_store::{PageRequest, Store};
use opensend_test_support::TestDatabase;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, Database, DatabaseConnection, EntityTrait,
    QueryFilter, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

async fn store() -> (TestDatabase, Store) {
    let db = TestDatabase::new().await;
    let store = Store::connect(db.url(), 2).await.unwrap();
    store.migrate().await.unwrap();
    (db, store)
}

fn mailbox(text: &str) -> Mailbox {
    Mailbox::parse(text).unwrap()
}

fn new_email(organization_id: Uuid, to: &[&str]) -> NewEmail {
    let id = opensend_core::new_id();
    let to: Vec<Mailbox> = to.iter().map(|t| mailbox(t)).collect();
    let bcc = vec![mailbox("secret@example.com")];
    let recipients = to
        .iter()
        .map(|m| (m.address.clone(), RecipientKind::To))
        .chain(bcc.iter().map(|m| (m.address.clone(), RecipientKind::Bcc)))
        .collect();
    NewEmail {
        id,
        organization_id,
        api_key_id: None,
        from: mailbox("\"Acme, Inc. \\\"Support\\\"\" <hello@acme.test>"),
        to,
        cc: vec![mailbox("Carol <carol@example.com>")],
        bcc,
        reply_to: vec![mailbox("replies@acme.test")],
        subject: "Welcome".to_owned(),
        html: Some("<p>Hello</p>".to_owned()),
        text: Some("Hello".to_owned()),
        headers: vec![
            Header::new("X-Campaign", "fall"),
            Header::new("X-Entity-Ref-ID", "42"),
        ],
        tags: vec![Tag::new("category", "welcome"), Tag::new("plan", "pro")],
        attachments: vec![NewAttachment {
            filename: "a.txt".to_owned(),
            content_type: "text/plain".to_owned(),
            content_id: None,
            content: b"attached".to_vec(),
        }],
        scheduled_at: None,
        message_id: format!("{id}@acme.test"),
        sending_domain_id: None,
        unverified_sender: true,
        recipients,
    }
}

#[tokio::test]
async fn an_accepted_email_reads_back_as_it_was_accepted() {
    let (_db, store) = store().await;
    let org = store.organizations().create("Acme").await.unwrap().id;
    let new = new_email(org, &["Jane Doe <jane@example.com>", "bob@example.com"]);
    let accepted = store
        .emails()
        .accept(vec![new.clone()], None)
        .await
        .unwrap();
    assert_eq!(accepted[0].status, EmailStatus::Queued);

    let email = store.emails().get(org, new.id).await.unwrap().unwrap();
    let summary = &email.summary;
    assert_eq!(summary.from, new.from);
    assert_eq!(summary.from.name.as_deref(), Some("Acme, Inc. \"Support\""));
    assert_eq!(summary.to, new.to);
    assert_eq!(summary.cc, new.cc);
    assert_eq!(summary.bcc, new.bcc);
    assert_eq!(summary.reply_to, new.reply_to);
    assert_eq!(summary.tags, new.tags);
    assert_eq!(summary.status, EmailStatus::Queued);
    assert_eq!(email.headers, new.headers);
    assert_eq!(email.html, new.html);
    assert_eq!(email.text, new.text);

    let recipients = store.emails().recipients(new.id).await.unwrap();
    let kinds: Vec<(&str, RecipientKind, RecipientStatus)> = recipients
        .iter()
        .map(|r| (r.address.as_str(), r.kind, r.status))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "jane@example.com",
                RecipientKind::To,
                RecipientStatus::Pending
            ),
            (
                "bob@example.com",
                RecipientKind::To,
                RecipientStatus::Pending
            ),
            (
                "secret@example.com",
                RecipientKind::Bcc,
                RecipientStatus::Pending
            ),
        ]
    );

    let events = store.emails().events(org, new.id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "email.queued");
    assert_eq!(events[0].data, json!({}));

    // Another organization sees nothing.
    let other = store.organizations().create("Other").await.unwrap().id;
    assert!(store.emails().get(other, new.id).await.unwrap().is_none());
}

/// Writes a row the way the accept path did before mailboxes were stored as objects: display strings.
async fn insert_legacy_row(connection: &DatabaseConnection, organization_id: Uuid) -> Uuid {
    let id = opensend_core::new_id();
    let at = Utc::now();
    email::ActiveModel {
        id: Set(id),
        organization_id: Set(organization_id),
        api_key_id: Set(None),
        from_address: Set("Acme <hello@acme.test>".to_owned()),
        to_addresses: Set(r#"["\"Doe, Jane\" <jane@example.com>","bob@example.com"]"#.to_owned()),
        cc_addresses: Set("[]".to_owned()),
        bcc_addresses: Set(r#"["secret@example.com"]"#.to_owned()),
        reply_to: Set(r#"["Replies <replies@acme.test>"]"#.to_owned()),
        subject: Set("Old".to_owned()),
        html: Set(None),
        text_body: Set(Some("Hi".to_owned())),
        headers: Set(r#"[["X-Campaign","fall"]]"#.to_owned()),
        tags: Set(r#"[["category","welcome"]]"#.to_owned()),
        status: Set("sent".to_owned()),
        scheduled_at: Set(None),
        message_id: Set(format!("{id}@acme.test")),
        sending_domain_id: Set(None),
        unverified_sender: Set(false),
        transport: Set(Some("capture".to_owned())),
        provider_message_id: Set(None),
        last_error: Set(None),
        raw_mime: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
        sent_at: Set(Some(at)),
    }
    .insert(connection)
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn rows_written_before_typed_addresses_still_read() {
    let (db, store) = store().await;
    let org = store.organizations().create("Acme").await.unwrap().id;
    let connection = Database::connect(db.url()).await.unwrap();
    let id = insert_legacy_row(&connection, org).await;

    let email = store.emails().get(org, id).await.unwrap().unwrap();
    let summary = &email.summary;
    assert_eq!(summary.from, mailbox("Acme <hello@acme.test>"));
    assert_eq!(
        summary.to,
        [
            mailbox("\"Doe, Jane\" <jane@example.com>"),
            mailbox("bob@example.com")
        ]
    );
    assert_eq!(summary.to[0].name.as_deref(), Some("Doe, Jane"));
    assert!(summary.cc.is_empty());
    assert_eq!(summary.bcc, [mailbox("secret@example.com")]);
    assert_eq!(summary.reply_to, [mailbox("Replies <replies@acme.test>")]);
    assert_eq!(email.headers, [Header::new("X-Campaign", "fall")]);
    assert_eq!(summary.tags, [Tag::new("category", "welcome")]);
    assert_eq!(summary.status, EmailStatus::Sent);
    // The display form shown by the API is what was stored.
    assert_eq!(
        summary.to[0].to_string(),
        "\"Doe, Jane\" <jane@example.com>"
    );

    let listed = store
        .emails()
        .list(org, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items, std::slice::from_ref(&email.summary));
    let _ = connection.close().await;
}

#[tokio::test]
async fn a_damaged_row_is_an_error_that_names_it() {
    let (db, store) = store().await;
    let org = store.organizations().create("Acme").await.unwrap().id;
    let new = new_email(org, &["jane@example.com"]);
    store
        .emails()
        .accept(vec![new.clone()], None)
        .await
        .unwrap();
    let connection = Database::connect(db.url()).await.unwrap();
    email::Entity::update_many()
        .col_expr(email::Column::Status, Expr::value("sending"))
        .filter(email::Column::Id.eq(new.id))
        .exec(&connection)
        .await
        .unwrap();
    let error = store.emails().get(org, new.id).await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&format!("emails.status of {}", new.id)) && message.contains("sending"),
        "{message}"
    );
    let _ = connection.close().await;
}

/// Drops columns from a table behind the store's back, the way a list that read them would fail.
async fn drop_columns(connection: &DatabaseConnection, table: &str, columns: &[&str]) {
    for column in columns {
        connection
            .execute_unprepared(&format!("ALTER TABLE {table} DROP COLUMN {column}"))
            .await
            .unwrap_or_else(|e| panic!("drop {table}.{column}: {e}"));
    }
}

#[tokio::test]
async fn listing_emails_reads_no_bodies_headers_or_raw_message() {
    let (db, store) = store().await;
    let org = store.organizations().create("Acme").await.unwrap().id;
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut new = new_email(org, &["jane@example.com"]);
        new.html = Some(format!("<p>{}</p>", "x".repeat(100_000 + i)));
        ids.push(new.id);
        store.emails().accept(vec![new], None).await.unwrap();
    }
    let connection = Database::connect(db.url()).await.unwrap();
    email::Entity::update_many()
        .col_expr(
            email::Column::RawMime,
            Expr::value(Some(vec![b'x'; 1 << 20])),
        )
        .filter(email::Column::OrganizationId.eq(org))
        .exec(&connection)
        .await
        .unwrap();

    // Without the heavy columns a list still works, and a full read (which needs them) does not: a list
    // that selected any of them would fail here.
    drop_columns(
        &connection,
        "emails",
        &["html", "text_body", "raw_mime", "headers"],
    )
    .await;
    let page = store
        .emails()
        .list(org, PageRequest::new(2, None).unwrap())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(page.has_more);
    assert_eq!(page.items[0].id, ids[2], "newest first");
    assert_eq!(page.items[0].to, [mailbox("jane@example.com")]);
    assert_eq!(
        page.items[0].tags,
        [Tag::new("category", "welcome"), Tag::new("plan", "pro")]
    );
    assert!(store.emails().get(org, ids[0]).await.is_err());
    let _ = connection.close().await;
}

#[tokio::test]
async fn listing_received_emails_reads_no_bodies_or_headers() {
    use opensend_store::repos::received_emails::{InboundMessage, InboundRoute};
    let (db, store) = store().await;
    let org = store.organizations().create("Acme").await.unwrap().id;
    let message = InboundMessage {
        from: "Sender <s@example.net>".to_owned(),
        to: vec!["in@acme.test".to_owned()],
        subject: Some("Hello".to_owned()),
        html: Some("<p>big</p>".repeat(10_000)),
        text: Some("big".repeat(10_000)),
        headers: vec![
            Header::new("Received", "from a"),
            Header::new("Received", "from b"),
        ],
        message_id: Some("abc@example.net".to_owned()),
        raw_size: 100_000,
        ..InboundMessage::default()
    };
    let route = InboundRoute {
        organization_id: org,
        envelope_recipients: vec!["in@acme.test".to_owned(), "hidden@acme.test".to_owned()],
        bcc: vec!["hidden@acme.test".to_owned()],
    };
    let ids = store
        .received_emails()
        .receive(&message, &[route])
        .await
        .unwrap();
    let full = store
        .received_emails()
        .get(org, ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        full.headers, message.headers,
        "headers keep their order and repeats"
    );
    assert_eq!(full.summary.bcc, ["hidden@acme.test"]);

    let connection = Database::connect(db.url()).await.unwrap();
    drop_columns(
        &connection,
        "received_emails",
        &["html", "text_body", "headers"],
    )
    .await;
    let page = store
        .received_emails()
        .list(org, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items, [full.summary]);
    assert!(store.received_emails().get(org, ids[0]).await.is_err());
    let _ = connection.close().await;
}

#[tokio::test]
async fn listing_webhook_deliveries_reads_no_payloads() {
    let (db, store) = store().await;
    let org = store.organizations().create("Acme").await.unwrap().id;
    let endpoint = store
        .webhooks()
        .create(
            NewWebhook {
                organization_id: org,
                endpoint: "https://hooks.example.com/in".to_owned(),
                event_types: vec![EventType::EmailSent, EventType::DomainCreated],
                secret_sealed: vec![1; 60],
            },
            50,
        )
        .await
        .unwrap();
    let CreateWebhookOutcome::Created(endpoint) = endpoint else {
        panic!("not created: {endpoint:?}");
    };
    assert_eq!(
        endpoint.events,
        [EventType::EmailSent, EventType::DomainCreated]
    );
    store
        .webhook_queue()
        .publish(org, EventType::EmailSent, vec![json!({"n": 1})])
        .await
        .unwrap();

    let connection = Database::connect(db.url()).await.unwrap();
    drop_columns(&connection, "webhook_messages", &["payload"]).await;
    let webhooks = store.webhooks();
    let page = webhooks
        .deliveries(org, endpoint.id, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let types = webhooks
        .message_types(org, vec![page.items[0].message_id])
        .await
        .unwrap();
    assert_eq!(types, [(page.items[0].message_id, EventType::EmailSent)]);
    let attempts = webhooks
        .attempts(org, vec![page.items[0].id])
        .await
        .unwrap();
    assert!(attempts.is_empty());
    assert!(
        webhooks
            .message(org, page.items[0].message_id)
            .await
            .is_err()
    );
    let _ = connection.close().await;
}

async fn payloads(store: &Store, db: &TestDatabase, event: EventType) -> Vec<Value> {
    let connection = Database::connect(db.url()).await.unwrap();
    let messages = webhook_message::Entity::find()
        .filter(webhook_message::Column::EventType.eq(event.as_str()))
        .all(&connection)
        .await
        .unwrap();
    let _ = connection.close().await;
    let mut out = Vec::new();
    for message in messages {
        let record = store
            .webhooks()
            .message(message.organization_id, message.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.event_type, event);
        // The stored body is the payload exactly.
        assert_eq!(
            serde_json::from_str::<Value>(&message.payload).unwrap(),
            record.payload
        );
        out.push(record.payload);
    }
    out
}

#[tokio::test]
async fn email_event_payloads_have_resends_shape() {
    let (db, store) = store().await;
    let org = store.organizations().create("Acme").await.unwrap().id;
    store
        .webhooks()
        .create(
            NewWebhook {
                organization_id: org,
                endpoint: "https://hooks.example.com/in".to_owned(),
                event_types: vec![EventType::EmailSuppressed, EventType::EmailScheduled],
                secret_sealed: vec![1; 60],
            },
            50,
        )
        .await
        .unwrap();
    let bounced = EmailAddress::parse("jane@example.com").unwrap();
    store
        .suppressions()
        .add(org, &bounced, Reason::Bounce, None)
        .await
        .unwrap();

    // Every recipient suppressed: `email.suppressed`, addressed to them, with why they are listed.
    let mut suppressed = new_email(org, &["Jane <jane@example.com>"]);
    suppressed.bcc.clear();
    suppressed
        .recipients
        .retain(|(_, kind)| *kind == RecipientKind::To);
    let id = suppressed.id;
    let accepted = store.emails().accept(vec![suppressed], None).await.unwrap();
    assert_eq!(accepted[0].status, EmailStatus::Suppressed);
    let payload = payloads(&store, &db, EventType::EmailSuppressed)
        .await
        .remove(0);
    let email = store.emails().get(org, id).await.unwrap().unwrap();
    let created_at = opensend_core::webhook::payload::timestamp(email.summary.created_at);
    assert!(chrono::DateTime::parse_from_rfc3339(payload["created_at"].as_str().unwrap()).is_ok());
    assert_eq!(payload["type"], "email.suppressed");
    assert_eq!(
        payload["data"],
        json!({
            "email_id": id,
            "created_at": created_at,
            "from": "\"Acme, Inc. \\\"Support\\\"\" <hello@acme.test>",
            "to": ["jane@example.com"],
            "subject": "Welcome",
            "tags": {"category": "welcome", "plan": "pro"},
            "headers": [
                {"name": "X-Campaign", "value": "fall"},
                {"name": "X-Entity-Ref-ID", "value": "42"},
            ],
            "suppressed": {
                "type": "OnAccountSuppressionList",
                "reason": "previous_bounce",
                "message": "The recipient is on the organization's suppression list.",
                "diagnosticCode": [],
            },
        })
    );

    // Scheduled: the email's To, and when it will go.
    let mut scheduled = new_email(org, &["Bob <bob@example.com>"]);
    scheduled.headers.clear();
    let at = Utc::now() + TimeDelta::hours(1);
    scheduled.scheduled_at = Some(at);
    let id = scheduled.id;
    store.emails().accept(vec![scheduled], None).await.unwrap();
    let payload = payloads(&store, &db, EventType::EmailScheduled)
        .await
        .remove(0);
    let data = payload["data"].as_object().unwrap();
    assert_eq!(data["email_id"], json!(id));
    assert_eq!(data["to"], json!(["Bob <bob@example.com>"]));
    assert!(
        !data.contains_key("headers"),
        "left out when there are none"
    );
    assert!(data.contains_key("scheduled_at"));
    let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at",
            "email_id",
            "from",
            "scheduled_at",
            "subject",
            "tags",
            "to"
        ]
    );
}

/// Concurrent accepts are written in shared transactions (`repos::accept_writer`): each request still gets
/// its own emails back, whole (recipients, attachments, event, delivery job), suppression is decided per
/// organization even when two organizations' requests share a transaction, and a request that lost its
/// idempotency key writes nothing while the requests written with it are kept.
#[tokio::test]
async fn concurrent_accepts_are_each_written_whole() {
    use opensend_store::StoreError;
    use opensend_store::repos::emails::IdempotentResponse;
    use opensend_store::repos::idempotency::Claim;

    let (_db, store) = store().await;
    let acme = store.organizations().create("Acme").await.unwrap().id;
    let globex = store.organizations().create("Globex").await.unwrap().id;
    let jane = EmailAddress::parse("jane@example.com").unwrap();
    store
        .suppressions()
        .add(acme, &jane, Reason::Bounce, None)
        .await
        .unwrap();
    // A key already answered: a request still holding it (a takeover) must write nothing.
    let Claim::Proceed(record_id) = store
        .idempotency()
        .claim(acme, "k", [1; 32], TimeDelta::hours(1))
        .await
        .unwrap()
    else {
        panic!("first claim proceeds");
    };
    let answer = |body: &str| IdempotentResponse {
        record_id,
        status: 200,
        body: body.to_owned(),
    };
    store
        .emails()
        .accept(vec![new_email(acme, &["x@example.com"])], Some(answer("1")))
        .await
        .unwrap();

    let mut requests = Vec::new();
    for i in 0..60 {
        let org = if i % 2 == 0 { acme } else { globex };
        // Two emails per request, so groups hold several emails of one request.
        let emails = vec![
            new_email(org, &["jane@example.com"]),
            new_email(org, &[&format!("user{i}@example.com")]),
        ];
        let idempotent = (i == 31).then(|| answer("2"));
        let store = store.clone();
        requests.push(tokio::spawn(async move {
            let ids: Vec<Uuid> = emails.iter().map(|e| e.id).collect();
            (org, ids, store.emails().accept(emails, idempotent).await)
        }));
    }
    for (i, request) in requests.into_iter().enumerate() {
        let (org, ids, result) = request.await.unwrap();
        if i == 31 {
            assert!(
                matches!(result, Err(StoreError::IdempotencyConflict)),
                "{result:?}"
            );
            for id in ids {
                assert!(store.emails().get(org, id).await.unwrap().is_none());
            }
            continue;
        }
        let accepted = result.unwrap();
        assert_eq!(
            accepted.iter().map(|a| a.id).collect::<Vec<_>>(),
            ids,
            "request {i}"
        );
        for id in &ids {
            assert!(store.emails().get(org, *id).await.unwrap().is_some());
            assert_eq!(store.emails().attachments(*id).await.unwrap().len(), 1);
            let recipients = store.emails().recipients(*id).await.unwrap();
            assert_eq!(recipients.len(), 2, "to and bcc of {id}");
            let events = store.emails().events(org, *id).await.unwrap();
            assert_eq!(events.len(), 1, "{id}");
            assert!(
                store.delivery_queue().job_for(*id).await.unwrap().is_some(),
                "{id} is queued"
            );
        }
        // Jane is suppressed in Acme only: Acme's email to her keeps its bcc (not all suppressed) but
        // her recipient row is `suppressed`; Globex's is pending.
        let to_jane = store.emails().recipients(ids[0]).await.unwrap();
        let jane_status = to_jane
            .iter()
            .find(|r| r.address.as_str() == "jane@example.com")
            .map(|r| r.status)
            .unwrap();
        let expected = if org == acme {
            RecipientStatus::Suppressed
        } else {
            RecipientStatus::Pending
        };
        assert_eq!(jane_status, expected, "request {i}");
        assert_eq!(accepted[0].status, EmailStatus::Queued);
    }
}
