//! Migrations apply to an empty database, twice in a row, and from several processes' pools at once.

use opensend_store::Store;
use opensend_test_support::TestDatabase;

#[tokio::test]
async fn migrations_are_idempotent_and_safe_to_run_concurrently() {
    let db = TestDatabase::new().await;
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(Store::connect(db.url(), 2).await.expect("connect"));
    }
    for result in futures::future::join_all(stores.iter().map(|s| s.migrate())).await {
        result.expect("concurrent migrate");
    }
    stores[0]
        .migrate()
        .await
        .expect("second migrate is a no-op");

    let org = stores[0].organizations().create("Acme").await.unwrap();
    let found = stores[1]
        .organizations()
        .get(org.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.name, "Acme");
    assert_eq!(
        found.created_at, org.created_at,
        "timestamps round-trip exactly"
    );
}
