//! An idempotency key is answered once, even when two requests both believe they hold it (a takeover after
//! the first request stalled).

use opensend_core::{EmailAddress, Mailbox, RecipientKind};
use opensend_store::repos::emails::{IdempotentResponse, NewEmail};
use opensend_store::repos::idempotency::Claim;
use opensend_store::{Store, StoreError};
use opensend_test_support::TestDatabase;

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

    let Claim::Proceed(record_id) = store.idempotency().claim(org, "k", [7; 32]).await.unwrap()
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
        store.idempotency().claim(org, "k", [7; 32]).await.unwrap(),
        Claim::Replay {
            status: 200,
            body: "{\"id\":1}".to_owned()
        }
    );
}
