//! The webhook queue's leases: an outcome is recorded only by the dispatcher that still holds the lease it
//! claimed with, on SQLite and on PostgreSQL (whose outcomes are written in one statement per batch).

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use opensend_core::DeliveryStatus;
use opensend_core::webhook::EventType;
use opensend_store::Store;
use opensend_store::repos::NewWebhook;
use opensend_store::repos::webhook_outbox::AttemptOutcome;
use opensend_test_support::TestDatabase;
use serde_json::json;

fn outcome(delivery: &opensend_store::records::DeliveryRecord, succeeded: bool) -> AttemptOutcome {
    AttemptOutcome {
        delivery: delivery.clone(),
        succeeded,
        status_code: Some(if succeeded { 200 } else { 500 }),
        response: Some("answer".to_owned()),
        error: None,
        duration_ms: 3,
        attempted_at: Utc::now(),
        next_attempt_at: (!succeeded).then(|| Utc::now() + TimeDelta::hours(1)),
        disable_endpoint: None,
    }
}

#[tokio::test]
async fn only_the_current_lease_holder_records_an_outcome() {
    let db = TestDatabase::new().await;
    let store = Store::connect(db.url(), 4).await.unwrap();
    store.migrate().await.unwrap();
    let org = store.organizations().create("Leases").await.unwrap();
    store
        .webhooks()
        .create(NewWebhook {
            organization_id: org.id,
            endpoint: "https://hooks.example.com/in".to_owned(),
            event_types: vec![EventType::EmailSent],
            secret_sealed: vec![1; 60],
        })
        .await
        .unwrap();
    let queue = store.webhook_queue();
    assert_eq!(
        queue
            .publish(
                org.id,
                EventType::EmailSent,
                vec![json!({"n": 1}), json!({"n": 2})]
            )
            .await
            .unwrap(),
        2
    );

    // The first dispatcher claims both with a lease that runs out at once; a second claims them again.
    let first = queue
        .claim("first", Duration::from_millis(1), 10, |_| 10, &[])
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = queue
        .claim("second", Duration::from_secs(60), 10, |_| 10, &[])
        .await
        .unwrap();
    assert_eq!(second.len(), 2);
    assert!(second.iter().all(|c| c.delivery.attempts == 2));

    // The first dispatcher's late outcomes change nothing; the second's are recorded, one success and one
    // failure to retry.
    let late = queue
        .record(
            "first",
            first.iter().map(|c| outcome(&c.delivery, true)).collect(),
            TimeDelta::days(5),
        )
        .await
        .unwrap();
    assert_eq!(late, [false, false]);
    let applied = queue
        .record(
            "second",
            vec![
                outcome(&second[0].delivery, true),
                outcome(&second[1].delivery, false),
            ],
            TimeDelta::days(5),
        )
        .await
        .unwrap();
    assert_eq!(applied, [true, true]);
    // Recording again with the same (now released) lease is refused.
    let again = queue
        .record(
            "second",
            vec![outcome(&second[0].delivery, true)],
            TimeDelta::days(5),
        )
        .await
        .unwrap();
    assert_eq!(again, [false]);

    let page = store
        .webhooks()
        .deliveries(
            org.id,
            second[0].webhook.id,
            opensend_store::PageRequest::default(),
        )
        .await
        .unwrap();
    let by_id = |id| page.items.iter().find(|d| d.id == id).unwrap();
    let done = by_id(second[0].delivery.id);
    assert_eq!(done.status, DeliveryStatus::Succeeded);
    assert!(done.lease_owner.is_none() && done.next_attempt_at.is_none());
    let retry = by_id(second[1].delivery.id);
    assert_eq!(retry.status, DeliveryStatus::Pending);
    assert_eq!(retry.last_status_code, Some(500));
    assert!(retry.next_attempt_at.is_some() && retry.lease_owner.is_none());
    let attempts = store
        .webhooks()
        .attempts(org.id, page.items.iter().map(|d| d.id).collect())
        .await
        .unwrap();
    assert_eq!(
        attempts.len(),
        2,
        "only the lease holder's attempts are kept"
    );
    assert_eq!(queue.pending().await.unwrap(), 1);
}
