//! A PostgreSQL [`GrantStore`](portcullis_rotation::GrantStore) for `portcullis-rotation`:
//! grant families, single-use codes and rotating refresh tokens, stored in the database next to
//! an application's users, as keyed hashes only, under a schema the application can also manage
//! with its own migration tool.
//!
//! # Redemption
//!
//! A code exchange or a refresh rotation is **one SQL statement, one round trip**: a CTE reads
//! the credential with its family, checks everything a plain redemption needs (not used, not
//! superseded, not expired, family live, same client, redirect URI and S256 PKCE for codes,
//! scope and binding for refresh tokens), marks the credential used with a conditional update
//! (`WHERE used_at IS NULL`), and inserts the successor refresh token and the access token from
//! that update's `RETURNING`. Of two concurrent redemptions of one credential, the second
//! update waits for the first to commit, re-checks `used_at`, and updates nothing.
//!
//! Everything else — a replay (which revokes the family), a grace reissue, a binding mismatch,
//! a `plain` PKCE challenge (compared in constant time in Rust), the loser of a race — is one
//! short transaction: the rows are locked, the rules of
//! [`portcullis_rotation::decide`] run on what is locked, the writes follow, then the commit.
//! Serialization failures, deadlocks and lost connections are retried a bounded number of
//! times ([`PostgresOptions::with_max_attempts`]) and then reported as
//! [`StoreError::Unavailable`](portcullis_rotation::StoreError::Unavailable) (a retryable 503) —
//! never as a revocation. A redemption whose reply was lost after its commit is recognised when
//! it is retried (its successor is stored under the fresh hash the request carries) and
//! reported as done.
//!
//! # Schema and migrations
//!
//! The reversible migrations under `migrations/` (each an `.up.sql` and a `.down.sql`) create
//! `portcullis_families`, `portcullis_authorization_codes` (`code_hash`),
//! `portcullis_refresh_tokens` (`token_hash`, `generation`, `parent_id`, `used_at`,
//! `replaced_by_id`, `revoked_at`), `portcullis_access_tokens`, `portcullis_clients` and
//! `portcullis_schema_version`, with indexes by hash, family, user, client and expiry, and the
//! constraints that make invariant violations impossible in the database itself: at most one
//! live refresh token per family (a partial unique index), a used credential always names its
//! successor, one code per family, 32-byte hashes. Times are integer microseconds (`bigint`).
//!
//! Run them with [`PostgresGrantStore::migrate`] (sqlx's migrator, bookkeeping in
//! [`MIGRATIONS_TABLE`]), or copy the files (or [`MIGRATIONS`]) into another tool: each script
//! keeps `portcullis_schema_version` up to date, and the store refuses, with one clear line, to
//! run against a schema that is missing, older or newer than [`SCHEMA_VERSION`]
//! ([`PostgresGrantStore::check_schema`]).
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use portcullis_core::SystemClock;
//! use portcullis_hash::{Keyring, TokenHasher};
//! use portcullis_postgres::{PostgresGrantStore, PostgresOptions};
//! use portcullis_rotation::{ClientStore as _, GrantService, GrantStore, RotationPolicy};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let options = PostgresOptions::new().with_max_connections(20);
//! let store = PostgresGrantStore::connect("postgres://app@db.internal/app", &options).await?;
//! // At deployment (or with --migrate): apply what is missing. Otherwise only check.
//! store.migrate().await?;
//! store.check_schema().await?;
//!
//! let service = GrantService::new(
//!     Arc::new(store.clone()) as Arc<dyn GrantStore>,
//!     Arc::new(TokenHasher::new(Keyring::from_env()?)),
//!     Arc::new(SystemClock),
//!     RotationPolicy::default(),
//! );
//! // Once in a while (a timer task): drop expired and revoked records, a bounded batch at a time.
//! while service.purge(1_000).await?.more {}
//! // The client registry lives in the same database (a `ClientStore`).
//! let registered = store.clients().count().await?;
//! # let _ = registered;
//! # Ok(())
//! # }
//! ```
//!
//! Without a database at hand, the schema check's messages are what an operator sees:
//!
//! ```
//! use portcullis_postgres::{PostgresError, SCHEMA_VERSION};
//!
//! let e = PostgresError::SchemaTooNew { found: i64::from(SCHEMA_VERSION) + 1, known: SCHEMA_VERSION };
//! assert!(e.to_string().contains("newer than version"));
//! assert!(!e.to_string().contains('\n'));
//! ```
//!
//! See `docs/operations.md` ("PostgreSQL") for running it in production: the migrations, the
//! purge, pool sizing, timeouts, and moving an existing deployment from raw tokens to hashes.
#![forbid(unsafe_code)]

/// The sqlx this crate is built on (for [`PostgresGrantStore::from_pool`],
/// [`PostgresGrantStore::connect_with`] and [`PostgresGrantStore::pool`]), so that an application
/// uses the same version.
pub use sqlx;

mod clients;
mod codec;
mod error;
mod options;
mod retry;
mod schema;
mod sql;
mod store;

pub use clients::PostgresClientStore;
pub use error::PostgresError;
pub use options::{
    DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_APPLICATION_NAME, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_PING_AFTER_IDLE, DEFAULT_STATEMENT_TIMEOUT, PostgresOptions,
};
/// A registered client as stored (defined in `portcullis-rotation`, shared by every store).
pub use portcullis_rotation::ClientRecord;
pub use schema::{MIGRATIONS, MIGRATIONS_TABLE, MigrationScript, SCHEMA_VERSION, migrator};
pub use store::{PostgresGrantStore, PostgresStats};
