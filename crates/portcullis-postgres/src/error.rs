//! Errors of setting the store up: connecting, migrating, checking the schema.

use portcullis_rotation::StoreError;

/// Why the store could not be set up. Each message is one line that says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The connection URL or an option is invalid.
    #[error("invalid PostgreSQL configuration: {0}")]
    Config(String),
    /// The database could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[source] sqlx::Error),
    /// There is no portcullis schema on the connection's search path.
    #[error(
        "the portcullis schema is missing (no portcullis_schema_version table on the search path \
         {search_path}); apply the migrations: start with --migrate or call \
         PostgresGrantStore::migrate"
    )]
    SchemaMissing {
        /// The connection's `search_path`, where the tables were looked for.
        search_path: String,
    },
    /// The schema is older than this build needs.
    #[error(
        "the portcullis schema is at version {found}, this build needs version {expected}; apply \
         the migrations: start with --migrate or call PostgresGrantStore::migrate"
    )]
    SchemaOutdated {
        /// The version in the database.
        found: i64,
        /// The version this build needs.
        expected: u32,
    },
    /// The schema is newer than this build knows: a newer release migrated the database.
    #[error(
        "the portcullis schema is at version {found}, newer than version {known} this build of \
         portcullis-postgres knows; run a release that knows it, or revert the newer migrations \
         with that release first"
    )]
    SchemaTooNew {
        /// The version in the database.
        found: i64,
        /// The newest version this build knows.
        known: u32,
    },
    /// Applying or reverting the migrations failed.
    #[error("migrating the portcullis schema failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("PostgreSQL query failed: {0}")]
    Query(#[source] sqlx::Error),
}

impl From<PostgresError> for StoreError {
    fn from(e: PostgresError) -> Self {
        match e {
            PostgresError::SchemaMissing { .. }
            | PostgresError::SchemaOutdated { .. }
            | PostgresError::SchemaTooNew { .. } => Self::Schema,
            PostgresError::Connect(source) => Self::unavailable(source),
            other => Self::backend(other),
        }
    }
}
