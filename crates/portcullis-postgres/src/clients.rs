//! A registry of OAuth clients (RFC 7591) in the same database: `portcullis_clients`.

use portcullis_core::UnixTime;
use portcullis_hash::TokenHash;
use portcullis_rotation::StoreError;
use sqlx::PgPool;
use sqlx::postgres::PgRow;
use subtle::{Choice, ConstantTimeEq as _};

use crate::codec::{self, col, micros};

/// A registered client as stored. The secret is only its keyed hash
/// (`TokenHasher::hash(Purpose::ClientSecret, secret)`); the rest of the registered metadata
/// the server keeps as a JSON document in `metadata`, which the store does not interpret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The client id.
    pub client_id: String,
    /// The keyed hash of the client secret (current key at registration); `None` for a client
    /// without a secret.
    pub secret_hash: Option<TokenHash>,
    /// `client_name`.
    pub client_name: Option<String>,
    /// The registered redirect URIs, compared by exact string equality.
    pub redirect_uris: Vec<String>,
    /// `grant_types`.
    pub grant_types: Vec<String>,
    /// `response_types`.
    pub response_types: Vec<String>,
    /// `token_endpoint_auth_method` (`none` for public clients, which never have a secret).
    pub token_endpoint_auth_method: String,
    /// The scope the client may request, if limited.
    pub scope: Option<String>,
    /// Any other registered metadata, as a JSON document (`{}` if none).
    pub metadata: String,
    /// When the client was registered.
    pub created_at: UnixTime,
    /// When the secret expires; `None`: never (`client_secret_expires_at: 0`).
    pub secret_expires_at: Option<UnixTime>,
}

impl ClientRecord {
    /// Whether the presented secret, hashed under every key of the ring (`candidates`, as
    /// `TokenHasher::candidates(Purpose::ClientSecret, secret)` gives them), matches the stored
    /// hash, and the secret has not expired at `now`. Every candidate is compared, in constant
    /// time. A client without a stored secret never matches.
    #[must_use]
    pub fn secret_matches(&self, candidates: &[TokenHash], now: UnixTime) -> bool {
        let Some(stored) = &self.secret_hash else {
            return false;
        };
        let found = candidates
            .iter()
            .fold(Choice::from(0), |found, c| found | c.ct_eq(stored));
        bool::from(found) && self.secret_expires_at.is_none_or(|at| now < at)
    }
}

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

    /// Register a client.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] if the id is taken; a backend failure otherwise (including a
    /// public client with a secret, which the table refuses).
    pub async fn insert(&self, client: &ClientRecord) -> Result<(), StoreError> {
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

    /// The client registered under `client_id`.
    ///
    /// # Errors
    /// A backend failure.
    pub async fn get(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM portcullis_clients WHERE client_id = $1"
        )))
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(record).transpose()
    }

    /// Replace a client's secret hash (secret rotation) and its expiry; returns whether the
    /// client exists.
    ///
    /// # Errors
    /// A backend failure.
    pub async fn set_secret(
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

    /// Delete a client; returns whether it existed. Its grants are not touched: revoke them
    /// with `GrantService::revoke_client`.
    ///
    /// # Errors
    /// A backend failure.
    pub async fn delete(&self, client_id: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM portcullis_clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map_err(store_error)?
            .rows_affected();
        Ok(n == 1)
    }

    /// How many clients are registered.
    ///
    /// # Errors
    /// A backend failure.
    pub async fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM portcullis_clients")
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(secret: Option<TokenHash>) -> ClientRecord {
        ClientRecord {
            client_id: "c".into(),
            secret_hash: secret,
            client_name: None,
            redirect_uris: vec!["https://c.example/cb".into()],
            grant_types: vec!["authorization_code".into()],
            response_types: vec!["code".into()],
            token_endpoint_auth_method: "client_secret_basic".into(),
            scope: None,
            metadata: "{}".into(),
            created_at: UnixTime::from_secs(1),
            secret_expires_at: None,
        }
    }

    #[test]
    fn secret_matching() {
        let now = UnixTime::from_secs(10);
        let s = TokenHash::from_bytes([1; 32]);
        let other = TokenHash::from_bytes([2; 32]);
        assert!(client(Some(s)).secret_matches(&[other, s], now));
        assert!(!client(Some(s)).secret_matches(&[other], now));
        assert!(!client(Some(s)).secret_matches(&[], now));
        assert!(!client(None).secret_matches(&[s], now));
        let mut expiring = client(Some(s));
        expiring.secret_expires_at = Some(now);
        assert!(!expiring.secret_matches(&[s], now));
        expiring.secret_expires_at = Some(UnixTime::from_secs(11));
        assert!(expiring.secret_matches(&[s], now));
    }
}
