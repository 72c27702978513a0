//! The contact import queue: an import is claimed by one worker at a time, a batch is written only by the
//! worker that holds the lease, and a finished import drops its file.

use chrono::TimeDelta;
use opensend_store::Store;
use opensend_store::repos::contact_imports::{ImportBatch, ImportRow, ImportRules};
use opensend_store::repos::contacts::{ContactChanges, ContactKey, NewContact};
use opensend_test_support::TestDatabase;

async fn store() -> (TestDatabase, Store) {
    let db = TestDatabase::new().await;
    let store = Store::connect(db.url(), 4).await.expect("connect");
    store.migrate().await.expect("migrate");
    (db, store)
}

fn batch(emails: &[&str], rows_done: i64) -> ImportBatch {
    ImportBatch {
        rows: emails
            .iter()
            .map(|email| ImportRow {
                contact: NewContact {
                    email: (*email).to_owned(),
                    ..NewContact::default()
                },
                changes: ContactChanges::default(),
            })
            .collect(),
        errors: vec![(rows_done + 1, "bad row".to_owned())],
        rows_done,
    }
}

#[tokio::test]
async fn only_the_lease_holder_writes_and_a_finished_import_drops_its_file() {
    let (_db, store) = store().await;
    let org = store.organizations().create("Importer").await.unwrap().id;
    let imports = store.contact_imports();
    let id = imports.begin(org).await.unwrap();
    imports.add_chunk(id, 0, b"email\n".to_vec()).await.unwrap();
    // Still uploading: nobody may take it, and nobody sees it.
    assert!(
        imports
            .claim("a", 10, TimeDelta::minutes(5))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(imports.get(org, id).await.unwrap().is_none());
    imports.queue(org, id, "{}").await.unwrap();

    let claimed = imports.claim("a", 10, TimeDelta::minutes(5)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    // Leased: a second worker gets nothing.
    assert!(
        imports
            .claim("b", 10, TimeDelta::minutes(5))
            .await
            .unwrap()
            .is_empty()
    );

    let import = &claimed[0];
    let rules = ImportRules::default();
    assert!(
        !imports
            .apply_batch(
                import,
                "b",
                TimeDelta::minutes(5),
                &rules,
                &batch(&["x@example.com"], 2)
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .contacts()
            .find_id(org, &ContactKey::Email("x@example.com".into()))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        imports
            .apply_batch(
                import,
                "a",
                TimeDelta::minutes(5),
                &rules,
                &batch(&["x@example.com", "X@example.com"], 3)
            )
            .await
            .unwrap()
    );
    let row = imports.get(org, id).await.unwrap().unwrap();
    assert_eq!(
        (row.created, row.skipped, row.failed, row.rows_done),
        (1, 1, 1, 3)
    );
    assert_eq!(
        imports.errors(id).await.unwrap(),
        [(4, "bad row".to_owned())]
    );

    // Only the holder finishes it; then its file is gone.
    imports.finish(id, "b", None).await.unwrap();
    assert_eq!(
        imports.get(org, id).await.unwrap().unwrap().status,
        "in_progress"
    );
    imports.finish(id, "a", None).await.unwrap();
    let row = imports.get(org, id).await.unwrap().unwrap();
    assert_eq!(row.status, "completed");
    assert!(row.completed_at.is_some());
    assert!(imports.chunk(id, 0).await.unwrap().is_none());
    assert!(
        imports
            .claim("a", 10, TimeDelta::minutes(5))
            .await
            .unwrap()
            .is_empty()
    );

    // Another organization's import is a missing one.
    let other = store.organizations().create("Other").await.unwrap().id;
    assert!(imports.get(other, id).await.unwrap().is_none());
}

#[tokio::test]
async fn an_expired_lease_lets_another_worker_go_on() {
    let (_db, store) = store().await;
    let org = store.organizations().create("Importer").await.unwrap().id;
    let imports = store.contact_imports();
    let id = imports.begin(org).await.unwrap();
    imports.queue(org, id, "{}").await.unwrap();
    let first = imports
        .claim("a", 1, TimeDelta::milliseconds(-1))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let second = imports.claim("b", 1, TimeDelta::minutes(5)).await.unwrap();
    assert_eq!(second.len(), 1, "the lease had run out");
    assert!(
        !imports
            .apply_batch(
                &first[0],
                "a",
                TimeDelta::minutes(5),
                &ImportRules::default(),
                &batch(&["y@example.com"], 1)
            )
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn an_upload_cut_off_midway_is_discarded_by_cleanup_and_a_queued_one_is_kept() {
    use opensend_store::entities::{contact_import, contact_import_chunk};
    use sea_orm::{EntityTrait, PaginatorTrait};
    let (db, store) = store().await;
    let raw = sea_orm::Database::connect(db.url()).await.unwrap();
    let org = store.organizations().create("Importer").await.unwrap().id;
    let imports = store.contact_imports();
    let abandoned = imports.begin(org).await.unwrap();
    imports
        .add_chunk(abandoned, 0, b"email\n".to_vec())
        .await
        .unwrap();
    let queued = imports.begin(org).await.unwrap();
    imports
        .add_chunk(queued, 0, b"email\n".to_vec())
        .await
        .unwrap();
    imports.queue(org, queued, "{}").await.unwrap();

    let long_ago = chrono::Utc::now() - TimeDelta::hours(2);
    assert_eq!(
        imports.discard_abandoned_uploads(long_ago).await.unwrap(),
        0
    );
    assert_eq!(
        contact_import_chunk::Entity::find()
            .count(&raw)
            .await
            .unwrap(),
        2
    );
    let later = chrono::Utc::now() + TimeDelta::seconds(1);
    assert_eq!(imports.discard_abandoned_uploads(later).await.unwrap(), 1);
    assert!(
        contact_import::Entity::find_by_id(abandoned)
            .one(&raw)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        contact_import_chunk::Entity::find()
            .count(&raw)
            .await
            .unwrap(),
        1
    );
    assert!(imports.get(org, queued).await.unwrap().is_some());
}
