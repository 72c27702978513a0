//! A fresh, empty database for every test.
//!
//! By default a SQLite file in a temporary directory. When `OPENSEND_TEST_DATABASE_URL` names a PostgreSQL
//! server (e.g. `postgres://postgres@127.0.0.1:5432/postgres`), a new database is created on it for each test
//! and dropped afterwards. When that variable is set, an unreachable server fails the test: it is never a
//! reason to skip.

pub mod dns;
pub mod peers;
pub mod webhook_receiver;

use std::path::{Path, PathBuf};

use sea_orm::{ConnectionTrait, Database};
use tempfile::TempDir;

/// The variable that selects PostgreSQL for the test suite.
pub const POSTGRES_VAR: &str = "OPENSEND_TEST_DATABASE_URL";

pub struct TestDatabase {
    url: String,
    dir: TempDir,
    postgres: Option<PostgresDatabase>,
}

struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        match std::env::var(POSTGRES_VAR)
            .ok()
            .filter(|v| !v.trim().is_empty())
        {
            None => {
                let url = format!("sqlite://{}", dir.path().join("opensend.db").display());
                Self {
                    url,
                    dir,
                    postgres: None,
                }
            }
            Some(admin_url) => {
                let name = format!("opensend_test_{}", uuid::Uuid::now_v7().simple());
                let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| {
                    panic!("{POSTGRES_VAR} is set but PostgreSQL is unreachable: {e}")
                });
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                let _ = admin.close().await;
                let mut url = url::Url::parse(&admin_url).expect("valid PostgreSQL URL");
                url.set_path(&format!("/{name}"));
                Self {
                    url: url.to_string(),
                    dir,
                    postgres: Some(PostgresDatabase { admin_url, name }),
                }
            }
        }
    }

    /// The `DATABASE_URL` of this test's database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A private directory for the test (data dir, files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// A path inside [`TestDatabase::dir`].
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(pg) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime; use a thread with its own to reach the server.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(admin) = Database::connect(&pg.admin_url).await {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                            pg.name
                        ))
                        .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}
