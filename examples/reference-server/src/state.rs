//! Everything the handlers share, built once from the validated [`Settings`].

use std::net::SocketAddr;
use std::sync::Arc;

use portcullis_core::Clock;
use portcullis_hash::{Keyring, TokenHasher};
use portcullis_jwks::{Algorithm, JwtVerifier};
use portcullis_ratelimit::{ClientIpResolver, MemoryStore, RateLimitStore};
use portcullis_rotation::{GrantService, GrantStore, MemoryGrantStore, Scope};

use crate::clients::ClientRegistry;
use crate::config::{ConfigError, RateLimits, Settings, StoreSpec, Upstream};
use crate::consent::ConsentStore;
use crate::dev_idp::DevIdp;

/// Where unauthenticated users are sent.
#[derive(Debug)]
pub(crate) enum Login {
    /// The built-in development IdP's `/dev/login`.
    Dev,
    /// An external login page.
    External(String),
}

/// The state every handler shares. Built by [`Shared::build`]; handed to [`crate::app`].
#[derive(Debug)]
pub struct Shared {
    pub(crate) issuer: String,
    pub(crate) resource: String,
    pub(crate) extra_resources: Vec<String>,
    pub(crate) resource_metadata: String,
    pub(crate) grants: GrantService,
    pub(crate) hasher: Arc<TokenHasher>,
    pub(crate) clients: ClientRegistry,
    pub(crate) consents: ConsentStore,
    pub(crate) sessions: JwtVerifier,
    pub(crate) session_cookie: String,
    pub(crate) login: Login,
    pub(crate) dev_idp: Option<DevIdp>,
    pub(crate) scopes: Scope,
    pub(crate) client_ip: ClientIpResolver,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rate_store: Arc<dyn RateLimitStore>,
    pub(crate) limits: RateLimits,
    pub(crate) store_kind: &'static str,
}

/// The path of the demo protected resource.
pub(crate) const RESOURCE_PATH: &str = "/api/me";

/// The stores `--store` names, connected.
#[derive(Debug)]
pub struct Stores {
    /// Grants.
    pub grants: Arc<dyn GrantStore>,
    /// Rate-limit state.
    pub rate_limits: Arc<dyn RateLimitStore>,
    /// Registered clients, when they are kept in the store (PostgreSQL or Redis) so that every
    /// instance knows them; `None`: in this process's memory.
    pub clients: Option<Arc<dyn portcullis_rotation::ClientStore>>,
}

/// The stores `--store` names, connected (and, for PostgreSQL, with its schema checked or
/// migrated).
///
/// # Errors
/// A [`ConfigError`] with the store's own one-line message (URLs shown without passwords).
pub async fn open_stores(
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> Result<Stores, ConfigError> {
    let mut stores = match &settings.store {
        StoreSpec::Memory => Ok(Stores {
            grants: Arc::new(MemoryGrantStore::new()),
            rate_limits: Arc::new(MemoryStore::builder().build(Arc::clone(&clock))),
            clients: None,
        }),
        StoreSpec::Redis(url) => {
            let conn = portcullis_redis::RedisConnection::connect_url(url)
                .await
                .map_err(|e| ConfigError::new(format!("--store: {e}")))?;
            Ok(Stores {
                grants: Arc::new(portcullis_redis::RedisGrantStore::new(conn.clone())),
                clients: Some(Arc::new(
                    portcullis_redis::RedisClientStore::new(conn.clone()).with_max_clients(
                        u64::try_from(crate::clients::MAX_CLIENTS).unwrap_or(u64::MAX),
                    ),
                )),
                rate_limits: Arc::new(portcullis_redis::RedisRateLimitStore::new(conn)),
            })
        }
        StoreSpec::Postgres(url) => {
            let store = portcullis_postgres::PostgresGrantStore::connect(
                url,
                &portcullis_postgres::PostgresOptions::new(),
            )
            .await
            .map_err(|e| ConfigError::new(format!("--store: {e}")))?;
            if settings.migrate {
                let schema_version = store
                    .migrate()
                    .await
                    .map_err(|e| ConfigError::new(format!("--migrate: {e}")))?;
                tracing::info!(schema_version, "PostgreSQL schema migrated");
            }
            store
                .check_schema()
                .await
                .map_err(|e| ConfigError::new(format!("--store: {e}")))?;
            if settings.ratelimit_store.is_none() {
                tracing::warn!(
                    "rate limits are kept in this process's memory with a postgres:// store: \
                     each instance counts on its own (--ratelimit-store redis://… shares them)"
                );
            }
            Ok(Stores {
                clients: Some(Arc::new(store.clients())),
                grants: Arc::new(store),
                rate_limits: Arc::new(MemoryStore::builder().build(Arc::clone(&clock))),
            })
        }
    }?;
    match &settings.ratelimit_store {
        None => {}
        Some(StoreSpec::Redis(url)) => {
            let conn = portcullis_redis::RedisConnection::connect_url(url)
                .await
                .map_err(|e| ConfigError::new(format!("--ratelimit-store: {e}")))?;
            stores.rate_limits = Arc::new(portcullis_redis::RedisRateLimitStore::new(conn));
        }
        // `memory` (a postgres:// URL is refused when the settings are read).
        Some(_) => stores.rate_limits = Arc::new(MemoryStore::builder().build(clock)),
    }
    Ok(stores)
}

impl Shared {
    /// Build the shared state for a server whose listener is bound to `local`, with `issuer`
    /// (checked), time from `clock`, and the stores from [`open_stores`].
    ///
    /// # Errors
    /// A [`ConfigError`] for a store that is not built in, a bad upstream configuration, or a
    /// key that cannot be generated.
    pub fn build(
        settings: &Settings,
        issuer: String,
        local: SocketAddr,
        clock: Arc<dyn Clock>,
        stores: Stores,
    ) -> Result<Arc<Self>, ConfigError> {
        let Stores {
            grants: store,
            rate_limits: rate_store,
            clients: client_store,
        } = stores;
        let keyring = match &settings.hmac {
            Some((current, previous)) => Keyring::from_values(
                current.expose_secret(),
                previous.as_ref().map(|p| p.expose_secret().as_str()),
            )
            .map_err(|e| ConfigError::new(e.to_string()))?,
            None => {
                tracing::warn!(
                    "!!! DEVELOPMENT MODE: using an ephemeral random HMAC key. Every token and \
                     client secret becomes invalid when this process stops. Set HMAC_SECRET \
                     (at least 32 bytes) for anything but local development. !!!"
                );
                Keyring::generate().map_err(|e| ConfigError::new(e.to_string()))?
            }
        };
        tracing::info!(key_id = %keyring.current_key_id(), keys = keyring.len(), "HMAC key ring loaded");
        let hasher = Arc::new(TokenHasher::new(keyring));
        let grants = GrantService::new(
            store,
            Arc::clone(&hasher),
            Arc::clone(&clock),
            settings.policy,
        );
        let (sessions, login, dev_idp) = match &settings.upstream {
            Upstream::Dev => {
                let idp = DevIdp::new(&issuer, local, Arc::clone(&clock))?;
                let verifier = JwtVerifier::builder(idp.issuer())
                    .jwks_url(idp.jwks_fetch_url())
                    .audience(idp.audience())
                    .algorithms([Algorithm::EdDSA])
                    .clock(Arc::clone(&clock))
                    .build()
                    .map_err(|e| ConfigError::new(format!("development IdP verifier: {e}")))?;
                (verifier, Login::Dev, Some(idp))
            }
            Upstream::External {
                issuer: up_issuer,
                jwks_url,
                audience,
                login_url,
            } => {
                let verifier = JwtVerifier::builder(up_issuer.clone())
                    .jwks_url(jwks_url.clone())
                    .audience(audience.clone())
                    .clock(Arc::clone(&clock))
                    .build()
                    .map_err(|e| ConfigError::new(format!("upstream IdP: {e}")))?;
                (verifier, Login::External(login_url.clone()), None)
            }
        };
        let resource = format!("{issuer}{RESOURCE_PATH}");
        let resource_metadata =
            format!("{issuer}/.well-known/oauth-protected-resource{RESOURCE_PATH}");
        Ok(Arc::new(Self {
            issuer,
            resource,
            extra_resources: settings.extra_resources.clone(),
            resource_metadata,
            grants,
            hasher,
            clients: ClientRegistry::new(client_store),
            consents: ConsentStore::default(),
            sessions,
            session_cookie: settings.session_cookie.clone(),
            login,
            dev_idp,
            scopes: settings.scopes.clone(),
            client_ip: settings.client_ip.clone(),
            clock,
            rate_store,
            limits: settings.limits,
            store_kind: settings.store.kind(),
        }))
    }

    /// Whether tokens may be issued for `resource` (RFC 8707).
    pub(crate) fn knows_resource(&self, resource: &str) -> bool {
        resource == self.resource || self.extra_resources.iter().any(|r| r == resource)
    }

    /// The issuer URL.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The demo resource's identifier (the audience its tokens must carry).
    #[must_use]
    pub fn resource(&self) -> &str {
        &self.resource
    }
}
