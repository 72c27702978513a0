//! Counting emails against an organization's daily and monthly quotas.
//!
//! A reservation adds to the counter of every quota window in one transaction, each with a conditional
//! upsert that only applies when the new total stays within the limit, so concurrent senders on any number
//! of nodes can never overshoot. Counters are kept per UTC day and month; old rows are harmless (one per
//! organization and period) and can be pruned.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use uuid::Uuid;

use crate::StoreError;

/// A quota window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaWindow {
    /// The UTC calendar day.
    Daily,
    /// The UTC calendar month.
    Monthly,
}

impl QuotaWindow {
    /// The counter row of this window at `at`: `d:2026-11-27` or `m:2026-11`.
    pub fn period(self, at: DateTime<Utc>) -> String {
        match self {
            QuotaWindow::Daily => at.format("d:%Y-%m-%d").to_string(),
            QuotaWindow::Monthly => at.format("m:%Y-%m").to_string(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    Reserved,
    /// Nothing was counted: this window's quota would be exceeded.
    Exceeded(QuotaWindow),
}

pub struct EmailQuotas<'a> {
    write: &'a DatabaseConnection,
}

impl<'a> EmailQuotas<'a> {
    pub(crate) fn new(write: &'a DatabaseConnection) -> Self {
        Self { write }
    }

    /// Counts `emails` against every `(window, limit)` at `at`, all or nothing.
    pub async fn reserve(
        &self,
        organization_id: Uuid,
        emails: i64,
        limits: &[(QuotaWindow, i64)],
        at: DateTime<Utc>,
    ) -> Result<Reservation, StoreError> {
        if let Some((window, _)) = limits.iter().find(|(_, limit)| emails > *limit) {
            return Ok(Reservation::Exceeded(*window));
        }
        let backend = self.write.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "INSERT INTO email_quota_usage (organization_id, period, emails) VALUES ($1, $2, $3) \
                 ON CONFLICT (organization_id, period) DO UPDATE \
                 SET emails = email_quota_usage.emails + excluded.emails \
                 WHERE email_quota_usage.emails + excluded.emails <= $4 RETURNING emails"
            }
            _ => {
                "INSERT INTO email_quota_usage (organization_id, period, emails) VALUES (?, ?, ?) \
                 ON CONFLICT (organization_id, period) DO UPDATE \
                 SET emails = email_quota_usage.emails + excluded.emails \
                 WHERE email_quota_usage.emails + excluded.emails <= ? RETURNING emails"
            }
        };
        let transaction = self.write.begin().await?;
        for (window, limit) in limits {
            let statement = Statement::from_sql_and_values(
                backend,
                sql,
                [
                    organization_id.into(),
                    window.period(at).into(),
                    emails.into(),
                    (*limit).into(),
                ],
            );
            if transaction.query_one_raw(statement).await?.is_none() {
                transaction.rollback().await?;
                return Ok(Reservation::Exceeded(*window));
            }
        }
        transaction.commit().await?;
        Ok(Reservation::Reserved)
    }
}
