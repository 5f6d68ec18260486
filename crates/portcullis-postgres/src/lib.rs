//! PostgreSQL grant store for `portcullis-rotation` (docs in progress).
#![forbid(unsafe_code)]

mod clients;
mod codec;
mod error;
mod options;
mod retry;
mod schema;
mod sql;
mod store;

pub use clients::{ClientRecord, PostgresClientStore};
pub use error::PostgresError;
pub use options::{
    DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_APPLICATION_NAME, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_PING_AFTER_IDLE, DEFAULT_STATEMENT_TIMEOUT, PostgresOptions,
};
pub use schema::{MIGRATIONS, MIGRATIONS_TABLE, MigrationScript, SCHEMA_VERSION, migrator};
pub use store::{PostgresGrantStore, PostgresStats};
