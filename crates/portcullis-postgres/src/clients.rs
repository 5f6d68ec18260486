//! A registry of OAuth clients (RFC 7591) in the same database: `portcullis_clients`.

use portcullis_core::UnixTime;
use portcullis_hash::TokenHash;
use portcullis_rotation::{ClientRecord, ClientStore, StoreError};
use sqlx::PgPool;
use sqlx::postgres::PgRow;

use crate::codec::{self, col, micros};

/// The client registry in PostgreSQL. Get one from
/// [`PostgresGrantStore::clients`](crate::PostgresGrantStore::clients) (same pool), or build one
/// on a pool with [`PostgresClientStore::new`]. Needs schema version 2.
#[derive(Debug, Clone)]
pub struct PostgresClientStore {
    pool: PgPool,
}

const COLUMNS: &str = "client_id, client_secret_hash, client_name, redirect_uris, grant_types, \
     response_types, token_endpoint_auth_method, scope, metadata, created_at, secret_expires_at";

fn record(row: &PgRow) -> Result<ClientRecord, StoreError> {
    Ok(ClientRecord {
        client_id: col(row, "client_id")?,
        secret_hash: col::<Option<Vec<u8>>>(row, "client_secret_hash")?
            .as_deref()
            .map(codec::hash)
            .transpose()?,
        client_name: col(row, "client_name")?,
        redirect_uris: col(row, "redirect_uris")?,
        grant_types: col(row, "grant_types")?,
        response_types: col(row, "response_types")?,
        token_endpoint_auth_method: col(row, "token_endpoint_auth_method")?,
        scope: col(row, "scope")?,
        metadata: col(row, "metadata")?,
        created_at: codec::time(col(row, "created_at")?)?,
        secret_expires_at: col::<Option<i64>>(row, "secret_expires_at")?
            .map(codec::time)
            .transpose()?,
    })
}

fn store_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate,
        sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => StoreError::Schema,
        e @ (sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed) => StoreError::unavailable(e),
        e => StoreError::backend(e),
    }
}

impl PostgresClientStore {
    /// A registry on `pool` (whose search path holds the portcullis schema).
    #[must_use]
    pub const fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait::async_trait]
impl ClientStore for PostgresClientStore {
    async fn insert(&self, client: &ClientRecord) -> Result<(), StoreError> {
        client.validate().map_err(StoreError::backend)?;
        sqlx::query(
            "INSERT INTO portcullis_clients (client_id, client_secret_hash, client_name, \
             redirect_uris, grant_types, response_types, token_endpoint_auth_method, scope, \
             metadata, created_at, secret_expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&client.client_id)
        .bind(client.secret_hash.map(|h| *h.as_bytes()))
        .bind(&client.client_name)
        .bind(&client.redirect_uris)
        .bind(&client.grant_types)
        .bind(&client.response_types)
        .bind(&client.token_endpoint_auth_method)
        .bind(&client.scope)
        .bind(&client.metadata)
        .bind(micros(client.created_at))
        .bind(client.secret_expires_at.map(micros))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn get(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM portcullis_clients WHERE client_id = $1"
        )))
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(record).transpose()
    }

    async fn set_secret(
        &self,
        client_id: &str,
        secret_hash: Option<TokenHash>,
        expires_at: Option<UnixTime>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE portcullis_clients SET client_secret_hash = $2, secret_expires_at = $3 \
             WHERE client_id = $1",
        )
        .bind(client_id)
        .bind(secret_hash.map(|h| *h.as_bytes()))
        .bind(expires_at.map(micros))
        .execute(&self.pool)
        .await
        .map_err(store_error)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn delete(&self, client_id: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM portcullis_clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map_err(store_error)?
            .rows_affected();
        Ok(n == 1)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM portcullis_clients")
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
