//! Migrations apply to an empty database, twice in a row, and from several processes' pools at once; and
//! the ones that reshape data do it right.

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

/// Suppressions listed before the list ignored case: rows that differ only by case become one, the earliest,
/// keeping its address as it was written; the others' reasons and sources go with them.
#[tokio::test]
async fn the_suppression_key_migration_merges_addresses_that_differ_only_by_case() {
    use chrono::{TimeDelta, Utc};
    use opensend_core::EmailAddress;
    use opensend_store::migrations::Migrator;
    use opensend_store::repos::suppressions::Reason;
    use sea_orm::{ConnectionTrait, Database, Statement};
    use sea_orm_migration::MigratorTrait;

    let db = TestDatabase::new().await;
    let store = Store::connect(db.url(), 2).await.unwrap();
    let connection = Database::connect(db.url()).await.unwrap();
    // Every migration before the one that added `suppressions.address_key`.
    Migrator::up(&connection, Some(8)).await.unwrap();
    let org = store.organizations().create("Acme").await.unwrap().id;
    let other = store.organizations().create("Other").await.unwrap().id;
    let start = Utc::now() - TimeDelta::days(3);
    let rows = [
        (org, "jane@example.com", "manual", 2),
        (org, "Jane@example.com", "bounce", 1),
        (org, "JANE@example.com", "complaint", 3),
        (org, "solo@example.com", "manual", 1),
        (other, "jane@example.com", "unsubscribe", 5),
    ];
    for (organization, address, reason, days) in rows {
        connection
            .execute_raw(Statement::from_sql_and_values(
                connection.get_database_backend(),
                "INSERT INTO suppressions (id, organization_id, address, reason, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                [
                    opensend_core::new_id().into(),
                    organization.into(),
                    address.into(),
                    reason.into(),
                    (start + TimeDelta::hours(days)).into(),
                ],
            ))
            .await
            .unwrap();
    }

    store.migrate().await.unwrap();
    let suppressions = store.suppressions();
    let listed = suppressions.export_chunk(org, None, 100).await.unwrap();
    let mut kept: Vec<(&str, &str, &str)> = listed
        .iter()
        .map(|s| {
            (
                s.address.as_str(),
                s.address_key.as_str(),
                s.reason.as_str(),
            )
        })
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        [
            ("Jane@example.com", "jane@example.com", "bounce"),
            ("solo@example.com", "solo@example.com", "manual"),
        ]
    );
    let theirs = suppressions
        .get_by_address(other, &EmailAddress::parse("JANE@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(theirs.reason, "unsubscribe");
    // The new unique key holds: adding another case of a merged address finds the kept row.
    let again = suppressions
        .add(
            org,
            &EmailAddress::parse("jAnE@example.com").unwrap(),
            Reason::Manual,
            None,
        )
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.suppression.address, "Jane@example.com");
    connection.close().await.unwrap();
}
