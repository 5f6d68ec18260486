//! What every integration test shares: whether to run at all (the skip/require rule), and a
//! fresh schema per test so that tests run in parallel on one database.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::panic
)]

use std::time::Duration;

use portcullis_postgres::{PostgresGrantStore, PostgresOptions};
use sqlx::Connection as _;

/// What a test does about the database.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Run against this URL.
    Run(String),
    /// Pass without running, for this reason (printed).
    Skip(String),
    /// Fail, for this reason.
    Fail(String),
}

/// The rule, as a pure function: `DATABASE_URL` unset or empty skips, unless
/// `PORTCULLIS_REQUIRE_SERVICES=1`, which makes a missing or unreachable database a failure; an
/// unreachable database skips only when services are not required.
pub fn plan(
    url: Option<&str>,
    require: bool,
    reachable: impl FnOnce(&str) -> Result<(), String>,
) -> Plan {
    match url.filter(|u| !u.is_empty()) {
        None if require => {
            Plan::Fail("PORTCULLIS_REQUIRE_SERVICES=1 but DATABASE_URL is not set".to_owned())
        }
        None => Plan::Skip("DATABASE_URL is not set".to_owned()),
        Some(url) => match reachable(url) {
            Ok(()) => Plan::Run(url.to_owned()),
            Err(why) if require => Plan::Fail(format!(
                "PORTCULLIS_REQUIRE_SERVICES=1 but the database at DATABASE_URL is unreachable: {why}"
            )),
            Err(why) => Plan::Skip(format!(
                "the database at DATABASE_URL is unreachable: {why}"
            )),
        },
    }
}

/// The database URL to test against, or `None` after printing why the test is skipped. Panics
/// (fails the test) when services are required and the database is missing or unreachable.
pub async fn database(test: &str) -> Option<String> {
    let url = std::env::var("DATABASE_URL").ok();
    let require = std::env::var("PORTCULLIS_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    let reachable = match url.as_deref().filter(|u| !u.is_empty()) {
        None => Ok(()),
        Some(u) => {
            match tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(u)).await
            {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    Ok(())
                }
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("no answer within 5 s".to_owned()),
            }
        }
    };
    match plan(url.as_deref(), require, |_| reachable) {
        Plan::Run(url) => Some(url),
        Plan::Skip(why) => {
            eprintln!("skipped {test}: {why} (set DATABASE_URL=postgres://... to run it)");
            None
        }
        Plan::Fail(why) => panic!("{test}: {why}"),
    }
}

/// A schema of its own for one test, dropped by [`TestSchema::drop_schema`].
#[derive(Debug)]
pub struct TestSchema {
    pub url: String,
    pub name: String,
}

impl TestSchema {
    /// Create a fresh, uniquely named schema.
    pub async fn create(url: &str) -> Self {
        let name = format!("portcullis_test_{:016x}", getrandom::u64().unwrap());
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap();
        let _ = conn.close().await;
        Self {
            url: url.to_owned(),
            name,
        }
    }

    /// Options that put the store's connections on this schema, named after it.
    pub fn options(&self) -> PostgresOptions {
        PostgresOptions::new()
            .with_schema(Some(self.name.clone()))
            .with_application_name(self.name.clone())
            .with_max_connections(8)
    }

    /// A migrated store on this schema.
    pub async fn store(&self) -> PostgresGrantStore {
        self.store_with(self.options()).await
    }

    /// A migrated store on this schema with `options` (the schema is set here).
    pub async fn store_with(&self, options: PostgresOptions) -> PostgresGrantStore {
        let options = options.with_schema(Some(self.name.clone()));
        let store = PostgresGrantStore::connect(&self.url, &options)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store
    }

    /// Drop the schema and everything in it.
    pub async fn drop_schema(&self) {
        let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            self.name
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        let _ = conn.close().await;
    }
}
