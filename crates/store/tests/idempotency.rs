//! An idempotency key is answered once, even when two requests both believe they hold it (a takeover after
//! the first request stalled).

use chrono::TimeDelta;
use opensend_core::{EmailAddress, Mailbox, RecipientKind};
use opensend_store::repos::emails::{IdempotentResponse, NewEmail};
use opensend_store::repos::idempotency::Claim;
use opensend_store::{Store, StoreError};
use opensend_test_support::TestDatabase;

/// Longer than any test runs: a claim is never abandoned unless the test says so.
const HOUR: TimeDelta = TimeDelta::hours(1);

fn email(organization_id: uuid::Uuid) -> NewEmail {
    let id = opensend_core::new_id();
    NewEmail {
        id,
        organization_id,
        api_key_id: None,
        from: Mailbox::parse("a@acme.test").unwrap(),
        to: vec![Mailbox::parse("b@example.com").unwrap()],
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
        recipients: vec![(
            EmailAddress::parse("b@example.com").unwrap(),
            RecipientKind::To,
        )],
    }
}

#[tokio::test]
async fn a_key_is_answered_once() {
    let db = TestDatabase::new().await;
    let store = Store::connect(db.url(), 2).await.unwrap();
    store.migrate().await.unwrap();
    let org = store.organizations().create("Acme").await.unwrap().id;

    let Claim::Proceed(record_id) = store
        .idempotency()
        .claim(org, "k", [7; 32], HOUR)
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
    let first = email(org);
    store
        .emails()
        .accept(vec![first.clone()], Some(answer("{\"id\":1}")))
        .await
        .unwrap();
    // A second request holding the same record (it took over a stalled first one) writes nothing.
    let second = email(org);
    let refused = store
        .emails()
        .accept(vec![second.clone()], Some(answer("{\"id\":2}")))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::IdempotencyConflict),
        "{refused:?}"
    );
    assert!(store.emails().get(org, first.id).await.unwrap().is_some());
    assert!(
        store.emails().get(org, second.id).await.unwrap().is_none(),
        "rolled back"
    );
    assert_eq!(
        store
            .idempotency()
            .claim(org, "k", [7; 32], HOUR)
            .await
            .unwrap(),
        Claim::Replay {
            status: 200,
            body: "{\"id\":1}".to_owned()
        }
    );
}

/// A claim whose request died before committing (its process was killed) is in flight until it is older than
/// the caller's `abandoned_after`; then the next request with the key proceeds under the same record, and
/// its answer is the one kept.
#[tokio::test]
async fn an_abandoned_claim_is_taken_over() {
    let db = TestDatabase::new().await;
    let store = Store::connect(db.url(), 2).await.unwrap();
    store.migrate().await.unwrap();
    let org = store.organizations().create("Acme").await.unwrap().id;
    let keys = store.idempotency();

    let Claim::Proceed(first) = keys.claim(org, "k", [7; 32], HOUR).await.unwrap() else {
        panic!("first claim proceeds");
    };
    // The first request never finishes. While it is younger than the lease, the retry waits.
    assert_eq!(
        keys.claim(org, "k", [7; 32], HOUR).await.unwrap(),
        Claim::InFlight
    );
    // A retry with another body is still a mismatch, abandoned or not.
    assert_eq!(
        keys.claim(org, "k", [8; 32], TimeDelta::zero())
            .await
            .unwrap(),
        Claim::Mismatch
    );
    // Older than the lease: the retry takes the record over.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let taken = keys
        .claim(org, "k", [7; 32], TimeDelta::milliseconds(10))
        .await
        .unwrap();
    assert_eq!(
        taken,
        Claim::Proceed(first),
        "the same record is taken over"
    );
    // Taking over renews the claim: a third request right after waits for the second.
    assert_eq!(
        keys.claim(org, "k", [7; 32], TimeDelta::seconds(30))
            .await
            .unwrap(),
        Claim::InFlight
    );
    let retried = email(org);
    store
        .emails()
        .accept(
            vec![retried.clone()],
            Some(IdempotentResponse {
                record_id: first,
                status: 200,
                body: "{\"id\":\"retried\"}".to_owned(),
            }),
        )
        .await
        .unwrap();
    assert!(store.emails().get(org, retried.id).await.unwrap().is_some());
    assert_eq!(
        keys.claim(org, "k", [7; 32], TimeDelta::zero())
            .await
            .unwrap(),
        Claim::Replay {
            status: 200,
            body: "{\"id\":\"retried\"}".to_owned()
        },
        "an answered key is replayed, never taken over"
    );
}
