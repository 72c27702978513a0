//! Schema migrations, embedded in the binary and applied by `opensend migrate` or at start of `serve`.
//!
//! Rules: never edit a migration that has shipped; add a new one. Every tenant table carries
//! `organization_id` with a foreign key and an index that starts with it.

use sea_orm_migration::prelude::*;

mod m20261127_000001_organizations_and_api_keys;
mod m20261127_000002_domains;
mod m20261127_000003_rate_limits_and_quotas;
mod m20261127_000004_emails;
mod m20261127_000005_webhooks;
mod m20261127_000006_suppressions_source;
mod m20261127_000007_provider_events;
mod m20261127_000008_received_emails;
mod m20261203_000009_provider_messages_and_suppression_keys;
mod m20261203_000011_job_runs;
mod m20261204_000012_cache_epoch;
mod m20261204_000014_contacts;
mod m20261204_000015_contact_imports;
mod m20261207_000030_templates;
mod m20261207_000040_broadcasts;
mod m20261207_000050_dashboard_accounts;
mod m20261207_000060_request_logs;
mod m20261207_000070_link_clicks;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_organizations_and_api_keys::Migration),
            Box::new(m20261127_000002_domains::Migration),
            Box::new(m20261127_000003_rate_limits_and_quotas::Migration),
            Box::new(m20261127_000004_emails::Migration),
            Box::new(m20261127_000005_webhooks::Migration),
            Box::new(m20261127_000006_suppressions_source::Migration),
            Box::new(m20261127_000007_provider_events::Migration),
            Box::new(m20261127_000008_received_emails::Migration),
            Box::new(m20261203_000009_provider_messages_and_suppression_keys::Migration),
            Box::new(m20261203_000011_job_runs::Migration),
            Box::new(m20261204_000012_cache_epoch::Migration),
            Box::new(m20261204_000014_contacts::Migration),
            Box::new(m20261204_000015_contact_imports::Migration),
            Box::new(m20261207_000030_templates::Migration),
            Box::new(m20261207_000040_broadcasts::Migration),
            Box::new(m20261207_000050_dashboard_accounts::Migration),
            Box::new(m20261207_000060_request_logs::Migration),
            Box::new(m20261207_000070_link_clicks::Migration),
        ]
    }
}
