//! The migrations shipped with the crate, sqlx's migrator over them, and the schema version
//! check.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{PgPool, SqlSafeStr as _};

use crate::PostgresError;

/// The schema version this build needs and knows: the last migration's version. The store
/// refuses a database whose `portcullis_schema_version` says anything else.
pub const SCHEMA_VERSION: u32 = 2;

/// The table sqlx's migrator records applied migrations in when [`migrator`] runs them (not
/// `_sqlx_migrations`, so that an application's own sqlx migrations in the same database are
/// not mixed with these).
pub const MIGRATIONS_TABLE: &str = "portcullis_sqlx_migrations";

/// One reversible migration: the SQL of the files under `migrations/` in this crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationScript {
    /// The version (the number the file names start with); after `up` runs, the schema is at
    /// this version.
    pub version: u32,
    /// What it does, as in the file names.
    pub description: &'static str,
    /// The forward script (`<version>_<description>.up.sql`).
    pub up: &'static str,
    /// The script that reverts it (`<version>_<description>.down.sql`).
    pub down: &'static str,
}

/// The migrations, oldest first. Each script keeps `portcullis_schema_version` up to date, so
/// they can be copied into another migration tool (or run with `psql`) and the store's schema
/// check still works.
pub const MIGRATIONS: &[MigrationScript] = &[
    MigrationScript {
        version: 1,
        description: "portcullis_grants",
        up: include_str!("../migrations/0001_portcullis_grants.up.sql"),
        down: include_str!("../migrations/0001_portcullis_grants.down.sql"),
    },
    MigrationScript {
        version: 2,
        description: "portcullis_clients",
        up: include_str!("../migrations/0002_portcullis_clients.up.sql"),
        down: include_str!("../migrations/0002_portcullis_clients.down.sql"),
    },
];

/// sqlx's migrator over [`MIGRATIONS`], recording what it applied in [`MIGRATIONS_TABLE`] on
/// the connection's search path. Each migration runs in its own transaction, under sqlx's
/// advisory lock, so several servers starting at once apply it once.
///
/// `migrator().run(&pool)` applies what is missing; `migrator().undo(&pool, v)` reverts every
/// migration above version `v` (0 removes the schema and every stored grant).
#[must_use]
pub fn migrator() -> Migrator {
    let mut migrations = Vec::with_capacity(MIGRATIONS.len() * 2);
    for m in MIGRATIONS {
        for (kind, sql) in [
            (MigrationType::ReversibleUp, m.up),
            (MigrationType::ReversibleDown, m.down),
        ] {
            migrations.push(Migration::new(
                i64::from(m.version),
                Cow::Borrowed(m.description),
                kind,
                sql.into_sql_str(),
                false,
            ));
        }
    }
    let mut migrator = Migrator::with_migrations(migrations);
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator
}

/// Read `portcullis_schema_version` and compare it with [`SCHEMA_VERSION`].
pub(crate) async fn check(pool: &PgPool) -> Result<u32, PostgresError> {
    let table: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('portcullis_schema_version')::text")
            .fetch_one(pool)
            .await
            .map_err(connect_or_query)?;
    if table.is_none() {
        let search_path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
            .fetch_one(pool)
            .await
            .map_err(connect_or_query)?;
        return Err(PostgresError::SchemaMissing { search_path });
    }
    let found: Option<i32> =
        sqlx::query_scalar("SELECT max(version) FROM portcullis_schema_version")
            .fetch_one(pool)
            .await
            .map_err(connect_or_query)?;
    let Some(found) = found else {
        let search_path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
            .fetch_one(pool)
            .await
            .map_err(connect_or_query)?;
        return Err(PostgresError::SchemaMissing { search_path });
    };
    let found64 = i64::from(found);
    let known = i64::from(SCHEMA_VERSION);
    if found64 > known {
        return Err(PostgresError::SchemaTooNew {
            found: found64,
            known: SCHEMA_VERSION,
        });
    }
    if found64 < known {
        return Err(PostgresError::SchemaOutdated {
            found: found64,
            expected: SCHEMA_VERSION,
        });
    }
    Ok(SCHEMA_VERSION)
}

/// A failure to reach the database is a connection error; anything else a query error.
pub(crate) fn connect_or_query(e: sqlx::Error) -> PostgresError {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Configuration(_) => PostgresError::Connect(e),
        other => PostgresError::Query(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_in_order_and_keep_the_version_row() {
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
        let expected: Vec<u32> = (1..=SCHEMA_VERSION).collect();
        assert_eq!(versions, expected);
        for m in MIGRATIONS {
            assert!(m.up.contains("portcullis_schema_version"), "{}", m.version);
            assert!(
                m.down.contains("portcullis_schema_version"),
                "{}",
                m.version
            );
        }
        let last = MIGRATIONS.last().unwrap();
        assert!(
            last.up.contains(&format!(
                "INSERT INTO portcullis_schema_version (version) VALUES ({SCHEMA_VERSION})"
            )) || last.up.contains(&format!("SET version = {SCHEMA_VERSION}"))
        );
    }

    #[test]
    fn migrator_has_an_up_and_a_down_per_version() {
        let m = migrator();
        let n = m.iter().count();
        assert_eq!(n, MIGRATIONS.len() * 2);
        for v in 1..=SCHEMA_VERSION {
            assert!(m.version_exists(i64::from(v)));
        }
        assert!(
            m.iter()
                .all(|x| x.migration_type.is_reversible() && !x.no_tx)
        );
    }

    #[test]
    fn files_on_disk_match_the_embedded_scripts() {
        // The directory an adopter copies or points `sqlx migrate` at is exactly what runs here.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut expected = Vec::new();
        for m in MIGRATIONS {
            expected.push(format!("{:04}_{}.down.sql", m.version, m.description));
            expected.push(format!("{:04}_{}.up.sql", m.version, m.description));
            let up = std::fs::read_to_string(
                dir.join(format!("{:04}_{}.up.sql", m.version, m.description)),
            )
            .unwrap();
            assert_eq!(up, m.up);
        }
        expected.sort();
        assert_eq!(names, expected);
    }
}
