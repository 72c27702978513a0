//! The suppression list repository: adding inside a caller's transaction, batches, imports, removal,
//! export chunks, tenancy, and matching addresses whatever their case (sending included).

use opensend_core::{EmailAddress, EmailStatus, Mailbox, RecipientKind};
use opensend_store::repos::emails::NewEmail;
use opensend_store::repos::suppressions::{NewSuppression, Reason, add_in};
use opensend_store::{PageRequest, Store};
use opensend_test_support::TestDatabase;
use sea_orm::{Database, TransactionTrait};
use uuid::Uuid;

fn address(raw: &str) -> EmailAddress {
    EmailAddress::parse(raw).unwrap()
}

async fn store() -> (TestDatabase, Store) {
    let db = TestDatabase::new().await;
    let store = Store::connect(db.url(), 2).await.unwrap();
    store.migrate().await.unwrap();
    (db, store)
}

#[tokio::test]
async fn add_in_joins_the_callers_transaction_and_never_aborts_it() {
    let (db, store) = store().await;
    let org = store.organizations().create("Acme").await.unwrap().id;
    let email_id = Uuid::now_v7();
    let connection = Database::connect(db.url()).await.unwrap();

    // Adding an address twice in one transaction: the second finds the first, and the transaction goes on
    // (a caught unique violation would have aborted it on PostgreSQL).
    let txn = connection.begin().await.unwrap();
    let first = add_in(
        &txn,
        org,
        &address("bounced@Example.com"),
        Reason::Bounce,
        Some(email_id),
    )
    .await
    .unwrap();
    assert!(first.created);
    assert_eq!(first.suppression.address, "bounced@example.com");
    assert_eq!(first.suppression.source_id, Some(email_id));
    let second = add_in(
        &txn,
        org,
        &address("bounced@example.com"),
        Reason::Complaint,
        None,
    )
    .await
    .unwrap();
    assert!(!second.created);
    assert_eq!(second.suppression, first.suppression, "unchanged");
    let other = add_in(
        &txn,
        org,
        &address("other@example.com"),
        Reason::Manual,
        None,
    )
    .await
    .unwrap();
    assert!(other.created);
    txn.commit().await.unwrap();

    let suppressions = store.suppressions();
    assert!(
        suppressions
            .contains(org, "bounced@example.com")
            .await
            .unwrap()
    );
    assert_eq!(
        suppressions
            .get_by_address(org, &address("bounced@EXAMPLE.com"))
            .await
            .unwrap()
            .map(|s| s.reason),
        Some("bounce".to_owned())
    );

    // Rolled back with the caller's transaction.
    let txn = connection.begin().await.unwrap();
    add_in(
        &txn,
        org,
        &address("gone@example.com"),
        Reason::Bounce,
        None,
    )
    .await
    .unwrap();
    txn.rollback().await.unwrap();
    assert!(
        !suppressions
            .contains(org, "gone@example.com")
            .await
            .unwrap()
    );
    connection.close().await.unwrap();
}

#[tokio::test]
async fn batches_imports_removal_and_export_chunks() {
    let (_db, store) = store().await;
    let org = store.organizations().create("Acme").await.unwrap().id;
    let other_org = store.organizations().create("Other").await.unwrap().id;
    let suppressions = store.suppressions();

    let entries: Vec<NewSuppression> = (0..1_200)
        .map(|i| NewSuppression::new(address(&format!("u{i}@example.com")), Reason::Manual))
        .collect();
    let outcome = suppressions.import(org, &entries).await.unwrap();
    assert_eq!((outcome.added, outcome.existing), (1_200, 0));
    let mut again = entries[..10].to_vec();
    again.push(NewSuppression::new(
        address("new@example.com"),
        Reason::Bounce,
    ));
    again.push(NewSuppression::new(
        address("new@example.com"),
        Reason::Complaint,
    ));
    let outcome = suppressions.import(org, &again).await.unwrap();
    assert_eq!((outcome.added, outcome.existing), (1, 10));

    let added = suppressions
        .add_many(
            org,
            &[
                NewSuppression::new(address("u0@example.com"), Reason::Bounce),
                NewSuppression::new(address("fresh@example.com"), Reason::Unsubscribe),
                NewSuppression::new(address("fresh@example.com"), Reason::Bounce),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        added.iter().map(|a| a.created).collect::<Vec<_>>(),
        [false, true, false]
    );
    assert_eq!(added[0].suppression.reason, "manual", "kept as it was");
    assert_eq!(added[1].suppression, added[2].suppression);
    assert_eq!(added[1].suppression.reason, "unsubscribe");

    // Export chunks: oldest first, every row once, nothing of another organization.
    suppressions
        .add(other_org, &address("u0@example.com"), Reason::Bounce, None)
        .await
        .unwrap();
    let mut exported = Vec::new();
    let mut after = None;
    loop {
        let chunk = suppressions.export_chunk(org, after, 500).await.unwrap();
        after = chunk.last().map(|s| s.id);
        let done = chunk.len() < 500;
        exported.extend(chunk);
        if done {
            break;
        }
    }
    assert_eq!(exported.len(), 1_202);
    assert_eq!(exported[0].address, "u0@example.com");
    assert!(exported.windows(2).all(|w| w[0].id < w[1].id));
    assert!(exported.iter().all(|s| s.organization_id == org));

    // Filtered list.
    let page = suppressions
        .list(org, Some(&[Reason::Bounce]), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].address, "new@example.com");
    let nothing = suppressions
        .list(org, Some(&[]), PageRequest::default())
        .await
        .unwrap();
    assert!(nothing.items.is_empty() && !nothing.has_more);

    // Removal in batches, by address and by id; another organization's rows are out of reach.
    let removed = suppressions
        .remove_many_by_address(
            org,
            &[
                address("u2@example.com"),
                address("u1@EXAMPLE.com"),
                address("absent@example.com"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        removed
            .iter()
            .map(|s| s.address.as_str())
            .collect::<Vec<_>>(),
        ["u2@example.com", "u1@example.com"]
    );
    let theirs = suppressions
        .get_by_address(other_org, &address("u0@example.com"))
        .await
        .unwrap()
        .unwrap();
    let ids = [exported[3].id, theirs.id, exported[4].id];
    let removed = suppressions.remove_many_by_id(org, &ids).await.unwrap();
    assert_eq!(
        removed.iter().map(|s| s.id).collect::<Vec<_>>(),
        [exported[3].id, exported[4].id]
    );
    assert!(!suppressions.remove(org, theirs.id).await.unwrap());
    assert!(
        suppressions
            .remove_by_address(org, &address("u0@example.com"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        suppressions
            .get(other_org, theirs.id)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        suppressions
            .export_chunk(org, None, 5_000)
            .await
            .unwrap()
            .len(),
        1_202 - 5
    );
}

#[tokio::test]
async fn the_list_matches_whole_addresses_whatever_their_case() {
    let (_db, store) = store().await;
    let org = store.organizations().create("Acme").await.unwrap().id;
    let suppressions = store.suppressions();

    let listed = suppressions
        .add(org, &address("Alice@Example.COM"), Reason::Bounce, None)
        .await
        .unwrap();
    assert!(listed.created);
    assert_eq!(
        listed.suppression.address, "Alice@example.com",
        "shown as first given"
    );
    assert!(
        suppressions
            .contains(org, "alice@example.com")
            .await
            .unwrap()
    );
    assert!(
        suppressions
            .contains(org, "ALICE@EXAMPLE.COM")
            .await
            .unwrap()
    );
    assert_eq!(
        suppressions
            .get_by_address(org, &address("aLiCe@example.com"))
            .await
            .unwrap()
            .map(|s| s.id),
        Some(listed.suppression.id)
    );

    // Adding it again in another case finds the first row, unchanged.
    let again = suppressions
        .add(org, &address("alice@example.com"), Reason::Manual, None)
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.suppression, listed.suppression);
    let batch = suppressions
        .add_many(
            org,
            &[
                NewSuppression::new(address("ALICE@example.com"), Reason::Manual),
                NewSuppression::new(address("Bob@example.com"), Reason::Manual),
                NewSuppression::new(address("bob@example.com"), Reason::Complaint),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        batch.iter().map(|a| a.created).collect::<Vec<_>>(),
        [false, true, false]
    );
    assert_eq!(batch[0].suppression, listed.suppression);
    assert_eq!(batch[2].suppression.address, "Bob@example.com");
    let imported = suppressions
        .import(
            org,
            &[
                NewSuppression::new(address("BOB@example.com"), Reason::Manual),
                NewSuppression::new(address("Carol@example.com"), Reason::Manual),
                NewSuppression::new(address("carol@EXAMPLE.com"), Reason::Manual),
            ],
        )
        .await
        .unwrap();
    assert_eq!((imported.added, imported.existing), (1, 1));
    assert_eq!(
        suppressions
            .export_chunk(org, None, 100)
            .await
            .unwrap()
            .iter()
            .map(|s| s.address.as_str())
            .collect::<Vec<_>>(),
        ["Alice@example.com", "Bob@example.com", "Carol@example.com"]
    );

    // A send to any case of a listed address is suppressed, and its recipient keeps the case it was sent.
    let accepted = store
        .emails()
        .accept(
            vec![email_to(org, &["alice@example.com", "dave@example.com"])],
            None,
        )
        .await
        .unwrap();
    let recipients = store.emails().recipients(accepted[0].id).await.unwrap();
    let statuses: Vec<(&str, &str)> = recipients
        .iter()
        .map(|r| (r.address.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("alice@example.com", "suppressed"),
            ("dave@example.com", "pending")
        ]
    );
    let accepted = store
        .emails()
        .accept(vec![email_to(org, &["CAROL@example.com"])], None)
        .await
        .unwrap();
    assert_eq!(accepted[0].status, EmailStatus::Suppressed);

    // Removal by address works in any case too.
    let removed = suppressions
        .remove_many_by_address(
            org,
            &[address("bob@EXAMPLE.com"), address("nobody@example.com")],
        )
        .await
        .unwrap();
    assert_eq!(
        removed
            .iter()
            .map(|s| s.address.as_str())
            .collect::<Vec<_>>(),
        ["Bob@example.com"]
    );
    assert!(
        suppressions
            .remove_by_address(org, &address("ALICE@example.com"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        !suppressions
            .contains(org, "Alice@example.com")
            .await
            .unwrap()
    );
}

/// An email from a@acme.test to `to`, ready to accept.
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
