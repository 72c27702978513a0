//! The webhook queue, on SQLite and on PostgreSQL: an outcome is recorded only by the dispatcher that still
//! holds the lease it claimed with; claims are shared among organizations, so one tenant's backlog does not
//! hold up another's; and an organization's endpoints are capped, even when created all at once.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use opensend_core::DeliveryStatus;
use opensend_core::webhook::EventType;
use opensend_store::Store;
use opensend_store::repos::webhook_outbox::AttemptOutcome;
use opensend_store::repos::{CreateWebhookOutcome, NewWebhook};
use opensend_test_support::TestDatabase;
use serde_json::json;
use uuid::Uuid;

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

/// Registers an endpoint for `email.sent` (the limit out of the way).
async fn endpoint(store: &Store, organization_id: Uuid) -> Uuid {
    match store
        .webhooks()
        .create(new_webhook(organization_id), 1_000)
        .await
        .unwrap()
    {
        CreateWebhookOutcome::Created(webhook) => webhook.id,
        other => panic!("not created: {other:?}"),
    }
}

fn new_webhook(organization_id: Uuid) -> NewWebhook {
    NewWebhook {
        organization_id,
        endpoint: "https://hooks.example.com/in".to_owned(),
        event_types: vec![EventType::EmailSent],
        secret_sealed: vec![1; 60],
    }
}

#[tokio::test]
async fn only_the_current_lease_holder_records_an_outcome() {
    let db = TestDatabase::new().await;
    let store = Store::connect(db.url(), 4).await.unwrap();
    store.migrate().await.unwrap();
    let org = store.organizations().create("Leases").await.unwrap();
    endpoint(&store, org.id).await;
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

#[tokio::test]
async fn a_large_batch_records_each_held_outcome_once() {
    let db = TestDatabase::new().await;
    let store = Store::connect(db.url(), 4).await.unwrap();
    store.migrate().await.unwrap();
    let org = store.organizations().create("Batches").await.unwrap();
    endpoint(&store, org.id).await;
    let queue = store.webhook_queue();
    // More deliveries than one statement finishes (256 rows), so the batch takes several.
    queue
        .publish(
            org.id,
            EventType::EmailSent,
            (0..300).map(|n| json!({"n": n})).collect(),
        )
        .await
        .unwrap();
    let stale = queue
        .claim("d", Duration::from_millis(1), 1, |_| 1_000, &[])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let claimed = queue
        .claim("d", Duration::from_secs(60), 1_000, |_| 1_000, &[])
        .await
        .unwrap();
    assert_eq!(claimed.len(), 300);
    let again = claimed
        .iter()
        .find(|c| c.delivery.id == stale[0].delivery.id)
        .unwrap();
    // The delivery claimed twice is reported under both leases (the stale report first, then the current
    // one, then the stale one again); the others once, failures and successes mixed.
    let mut batch = vec![outcome(&stale[0].delivery, true)];
    batch.extend(
        claimed
            .iter()
            .enumerate()
            .map(|(n, c)| outcome(&c.delivery, n % 3 != 0)),
    );
    batch.push(outcome(&stale[0].delivery, true));
    let applied = queue.record("d", batch, TimeDelta::days(5)).await.unwrap();
    assert_eq!(applied.len(), 302);
    assert!(!applied[0] && !applied[301], "the stale lease's reports");
    assert!(applied[1..301].iter().all(|held| *held));
    assert!(again.delivery.attempts == 2);

    let ids: Vec<Uuid> = claimed.iter().map(|c| c.delivery.id).collect();
    let attempts = store.webhooks().attempts(org.id, ids).await.unwrap();
    assert_eq!(attempts.len(), 300, "one attempt row per delivery");
    // Every third failed and waits for its retry; the rest are done.
    assert_eq!(queue.pending().await.unwrap(), 100);
    let retried = queue
        .claim("d", Duration::from_secs(60), 1_000, |_| 1_000, &[])
        .await
        .unwrap();
    assert!(retried.is_empty(), "retries are not due yet");
}

#[tokio::test]
async fn a_claim_is_shared_among_organizations_with_due_deliveries() {
    let db = TestDatabase::new().await;
    let store = Store::connect(db.url(), 4).await.unwrap();
    store.migrate().await.unwrap();
    let busy = store.organizations().create("Busy").await.unwrap();
    let quiet = store.organizations().create("Quiet").await.unwrap();
    endpoint(&store, busy.id).await;
    endpoint(&store, quiet.id).await;
    let queue = store.webhook_queue();
    // The busy tenant's backlog is queued first, so all of it is due before the quiet tenant's deliveries.
    let backlog: Vec<_> = (0..300).map(|n| json!({"busy": n})).collect();
    queue
        .publish(busy.id, EventType::EmailSent, backlog)
        .await
        .unwrap();
    queue
        .publish(
            quiet.id,
            EventType::EmailSent,
            (0..3).map(|n| json!({"quiet": n})).collect(),
        )
        .await
        .unwrap();

    let lease = Duration::from_secs(60);
    let first = queue.claim("d", lease, 10, |_| 100, &[]).await.unwrap();
    assert_eq!(first.len(), 10);
    let organizations: Vec<Uuid> = first.iter().map(|c| c.delivery.organization_id).collect();
    assert_eq!(
        organizations.iter().filter(|o| **o == quiet.id).count(),
        3,
        "every due delivery of the quiet tenant is in the first claim: {organizations:?}"
    );
    // In turns: the organizations alternate while both have some left.
    assert_ne!(organizations[0], organizations[1]);
    assert!(first.iter().all(|c| c.delivery.attempts == 1));

    // More of the quiet tenant's, then claims of one delivery each: the tenants take turns.
    queue
        .publish(
            quiet.id,
            EventType::EmailSent,
            (3..6).map(|n| json!({"quiet": n})).collect(),
        )
        .await
        .unwrap();
    let mut turns = Vec::new();
    for _ in 0..4 {
        let one = queue.claim("d", lease, 1, |_| 100, &[]).await.unwrap();
        assert_eq!(one.len(), 1);
        turns.push(one[0].delivery.organization_id);
    }
    assert!(
        turns.windows(2).all(|w| w[0] != w[1]),
        "one organization after the other: {turns:?}"
    );
    // Within an organization, oldest first: the busy tenant's backlog comes out in the order it was queued.
    let rest = queue.claim("d", lease, 50, |_| 100, &[]).await.unwrap();
    let numbers: Vec<i64> = rest
        .iter()
        .filter(|c| c.delivery.organization_id == busy.id)
        .map(|c| {
            let payload: serde_json::Value = serde_json::from_str(&c.message.payload).unwrap();
            payload["data"]["busy"].as_i64().unwrap()
        })
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    assert_eq!(rest.len(), 50);
}

#[tokio::test]
async fn an_organization_has_at_most_its_limit_of_endpoints_even_created_at_once() {
    let db = TestDatabase::new().await;
    let store = Store::connect(db.url(), 8).await.unwrap();
    store.migrate().await.unwrap();
    let org = store.organizations().create("Capped").await.unwrap();
    let other = store.organizations().create("Other").await.unwrap();
    let webhooks = store.webhooks();
    for _ in 0..3 {
        let created = webhooks.create(new_webhook(org.id), 3).await.unwrap();
        assert!(matches!(created, CreateWebhookOutcome::Created(_)));
    }
    assert_eq!(
        webhooks.create(new_webhook(org.id), 3).await.unwrap(),
        CreateWebhookOutcome::LimitReached(3)
    );
    let listed = webhooks
        .list(org.id, opensend_store::PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 3, "nothing written beyond the limit");
    // Another organization's endpoints do not count.
    assert!(matches!(
        webhooks.create(new_webhook(other.id), 3).await.unwrap(),
        CreateWebhookOutcome::Created(_)
    ));

    // Twenty at once, on as many connections as the pool gives: exactly the limit gets through.
    let racer = store.organizations().create("Racer").await.unwrap();
    let attempts = futures::future::join_all(
        (0..20).map(|_| async { store.webhooks().create(new_webhook(racer.id), 5).await }),
    )
    .await;
    let created = attempts
        .iter()
        .filter(|a| matches!(a, Ok(CreateWebhookOutcome::Created(_))))
        .count();
    let refused = attempts
        .iter()
        .filter(|a| matches!(a, Ok(CreateWebhookOutcome::LimitReached(5))))
        .count();
    assert_eq!(
        (created, refused),
        (5, 15),
        "created and refused of 20 at once"
    );
    let listed = webhooks
        .list(racer.id, opensend_store::PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 5);
}
