//! Email quota counters: exact under concurrency, all or nothing across windows, per UTC day and month.

use chrono::{TimeZone, Utc};
use opensend_store::Store;
use opensend_store::repos::{QuotaWindow, Reservation};
use opensend_test_support::TestDatabase;

async fn store() -> (TestDatabase, Store) {
    let db = TestDatabase::new().await;
    let store = Store::connect(db.url(), 4).await.expect("connect");
    store.migrate().await.expect("migrate");
    (db, store)
}

#[tokio::test]
async fn concurrent_reservations_never_overshoot() {
    let (_db, store) = store().await;
    let org = store.organizations().create("Busy").await.unwrap().id;
    let at = Utc::now();
    let limits = [(QuotaWindow::Daily, 10)];
    let attempts = (0..25).map(|_| {
        let store = store.clone();
        async move {
            store
                .email_quotas()
                .reserve(org, 1, &limits, at)
                .await
                .unwrap()
        }
    });
    let outcomes = futures::future::join_all(attempts).await;
    let reserved = outcomes
        .iter()
        .filter(|o| **o == Reservation::Reserved)
        .count();
    assert_eq!(reserved, 10, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(
        o,
        Reservation::Reserved | Reservation::Exceeded(QuotaWindow::Daily)
    )));
}

#[tokio::test]
async fn windows_are_all_or_nothing_and_roll_over() {
    let (_db, store) = store().await;
    let org = store.organizations().create("Batches").await.unwrap().id;
    let other = store.organizations().create("Other").await.unwrap().id;
    let quotas = store.email_quotas();
    let day_one = Utc.with_ymd_and_hms(2026, 11, 27, 23, 59, 0).unwrap();
    let day_two = Utc.with_ymd_and_hms(2026, 11, 28, 0, 1, 0).unwrap();
    let next_month = Utc.with_ymd_and_hms(2026, 12, 1, 0, 1, 0).unwrap();
    let limits = [(QuotaWindow::Daily, 4), (QuotaWindow::Monthly, 6)];

    assert_eq!(
        quotas.reserve(org, 3, &limits, day_one).await.unwrap(),
        Reservation::Reserved
    );
    // 3 + 2 is over the day: nothing is counted, in either window.
    assert_eq!(
        quotas.reserve(org, 2, &limits, day_one).await.unwrap(),
        Reservation::Exceeded(QuotaWindow::Daily)
    );
    assert_eq!(
        quotas.reserve(org, 1, &limits, day_one).await.unwrap(),
        Reservation::Reserved
    );
    // A new day: the daily counter starts again, the month goes on (4 of 6 used).
    assert_eq!(
        quotas.reserve(org, 3, &limits, day_two).await.unwrap(),
        Reservation::Exceeded(QuotaWindow::Monthly)
    );
    assert_eq!(
        quotas.reserve(org, 2, &limits, day_two).await.unwrap(),
        Reservation::Reserved
    );
    assert_eq!(
        quotas.reserve(org, 1, &limits, day_two).await.unwrap(),
        Reservation::Exceeded(QuotaWindow::Monthly)
    );
    // A new month, another organization: fresh counters.
    assert_eq!(
        quotas.reserve(org, 4, &limits, next_month).await.unwrap(),
        Reservation::Reserved
    );
    assert_eq!(
        quotas.reserve(other, 4, &limits, day_one).await.unwrap(),
        Reservation::Reserved
    );
    // More than a whole quota in one go never fits.
    assert_eq!(
        quotas.reserve(other, 7, &limits, next_month).await.unwrap(),
        Reservation::Exceeded(QuotaWindow::Daily)
    );
}
