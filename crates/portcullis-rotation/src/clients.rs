//! Registered OAuth clients (RFC 7591) as a store keeps them: [`ClientRecord`] and the
//! [`ClientStore`] trait, implemented by [`MemoryClientStore`] here and by the PostgreSQL and
//! Redis crates, so that every server of a deployment knows the clients registered through any
//! of them.
//!
//! A client's secret is stored only as its keyed hash
//! (`TokenHasher::hash(Purpose::ClientSecret, secret)`), never in plaintext, and compared in
//! constant time by [`ClientRecord::secret_matches`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{PoisonError, RwLock};

use portcullis_core::UnixTime;
use portcullis_hash::TokenHash;
use subtle::{Choice, ConstantTimeEq as _};

use crate::StoreError;

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

/// Why a [`ClientRecord`] cannot be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidClient {
    /// The client id is empty, longer than [`MAX_CLIENT_ID_LEN`] bytes, or holds a control
    /// character (which PostgreSQL's `text` or a log line could not carry as it is).
    #[error("the client id is empty, too long, or holds a control character")]
    Id,
    /// A public client (`token_endpoint_auth_method` `none`) with a secret.
    #[error("a public client (token_endpoint_auth_method none) cannot have a secret")]
    PublicWithSecret,
}

/// A registration refused because the store holds as many clients as it is allowed to (a
/// store with a cap returns it inside [`StoreError::Backend`]; find it with
/// `error.is::<RegistryFull>()` on the boxed source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the client registry is full")]
pub struct RegistryFull;

/// The longest client id a store accepts: 255 bytes.
pub const MAX_CLIENT_ID_LEN: usize = 255;

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

    /// Check what every store refuses: an empty, over-long or control-character id, and a
    /// public client with a secret.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), InvalidClient> {
        if self.client_id.is_empty()
            || self.client_id.len() > MAX_CLIENT_ID_LEN
            || self.client_id.chars().any(char::is_control)
        {
            return Err(InvalidClient::Id);
        }
        if self.token_endpoint_auth_method == "none" && self.secret_hash.is_some() {
            return Err(InvalidClient::PublicWithSecret);
        }
        Ok(())
    }
}

/// Where registered clients are kept.
///
/// Every implementation:
/// - refuses a record [`ClientRecord::validate`] rejects, with [`StoreError::Backend`] (the
///   caller's bug: retrying will not help), before writing anything;
/// - refuses a second record with the same id with [`StoreError::Duplicate`], atomically (two
///   servers registering one id at once: exactly one succeeds);
/// - gives back exactly the record stored ([`ClientStore::get`] equals what was inserted);
/// - if it caps the number of clients, refuses a registration past the cap with
///   [`StoreError::Backend`] holding [`RegistryFull`], writing nothing.
///
/// [`conformance::client_store`](crate::conformance::client_store) checks these (behind the
/// `conformance` feature). Object-safe: a server holds an `Arc<dyn ClientStore>`.
#[async_trait::async_trait]
pub trait ClientStore: Send + Sync + fmt::Debug {
    /// Register a client.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] if the id is taken; [`StoreError::Backend`] for a record
    /// [`ClientRecord::validate`] refuses; a backend failure otherwise.
    async fn insert(&self, client: &ClientRecord) -> Result<(), StoreError>;

    /// The client registered under `client_id`.
    ///
    /// # Errors
    /// A backend failure.
    async fn get(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError>;

    /// Replace a client's secret hash (secret rotation) and its expiry; returns whether the
    /// client exists.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the result would break [`ClientRecord::validate`] (a
    /// secret for a public client); a backend failure otherwise.
    async fn set_secret(
        &self,
        client_id: &str,
        secret_hash: Option<TokenHash>,
        expires_at: Option<UnixTime>,
    ) -> Result<bool, StoreError>;

    /// Delete a client; returns whether it existed. Its grants are not touched: revoke them
    /// with `GrantService::revoke_client`.
    ///
    /// # Errors
    /// A backend failure.
    async fn delete(&self, client_id: &str) -> Result<bool, StoreError>;

    /// How many clients are registered.
    ///
    /// # Errors
    /// A backend failure.
    async fn count(&self) -> Result<u64, StoreError>;
}

/// Clients in this process's memory: for tests and single-process deployments (nothing bounds
/// its size: bound registrations before it, as the reference server does).
#[derive(Debug, Default)]
pub struct MemoryClientStore {
    clients: RwLock<HashMap<String, ClientRecord>>,
}

impl MemoryClientStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait::async_trait]
impl ClientStore for MemoryClientStore {
    async fn insert(&self, client: &ClientRecord) -> Result<(), StoreError> {
        client.validate().map_err(StoreError::backend)?;
        let mut map = self.clients.write().unwrap_or_else(PoisonError::into_inner);
        if map.contains_key(&client.client_id) {
            return Err(StoreError::Duplicate);
        }
        map.insert(client.client_id.clone(), client.clone());
        Ok(())
    }

    async fn get(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        Ok(self
            .clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(client_id)
            .cloned())
    }

    async fn set_secret(
        &self,
        client_id: &str,
        secret_hash: Option<TokenHash>,
        expires_at: Option<UnixTime>,
    ) -> Result<bool, StoreError> {
        let mut map = self.clients.write().unwrap_or_else(PoisonError::into_inner);
        let Some(client) = map.get_mut(client_id) else {
            return Ok(false);
        };
        let updated = ClientRecord {
            secret_hash,
            secret_expires_at: expires_at,
            ..client.clone()
        };
        updated.validate().map_err(StoreError::backend)?;
        *client = updated;
        Ok(true)
    }

    async fn delete(&self, client_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .clients
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(client_id)
            .is_some())
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let n = self
            .clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
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

    #[test]
    fn validation() {
        let s = TokenHash::from_bytes([1; 32]);
        assert_eq!(client(Some(s)).validate(), Ok(()));
        let public = ClientRecord {
            token_endpoint_auth_method: "none".into(),
            ..client(Some(s))
        };
        assert_eq!(public.validate(), Err(InvalidClient::PublicWithSecret));
        let empty = ClientRecord {
            client_id: String::new(),
            ..client(None)
        };
        assert_eq!(empty.validate(), Err(InvalidClient::Id));
        let long = ClientRecord {
            client_id: "x".repeat(MAX_CLIENT_ID_LEN + 1),
            ..client(None)
        };
        assert_eq!(long.validate(), Err(InvalidClient::Id));
        for bad in ["a\0b", "a\nb", "\u{7f}"] {
            let c = ClientRecord {
                client_id: bad.into(),
                ..client(None)
            };
            assert_eq!(c.validate(), Err(InvalidClient::Id), "{bad:?}");
        }
        let odd = ClientRecord {
            client_id: "{odd} id ✓".into(),
            ..client(None)
        };
        assert_eq!(odd.validate(), Ok(()));
    }
}
