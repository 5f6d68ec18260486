//! The Portcullis reference OAuth 2.1 authorization server, as a library so that tests (and
//! embedders) can drive it.
//!
//! The server is thin: it parses HTTP, calls the Portcullis crates, and renders the results.
//! Grant families, rotation, replay detection and revocation are portcullis-rotation's; token
//! hashing is portcullis-hash's; PKCE is portcullis-pkce's; the upstream session JWT is verified
//! by portcullis-jwks; rate limits and the client IP are portcullis-ratelimit's. What is left
//! here is protocol glue: parameter parsing, client registration and authentication, the
//! consent page, and the mapping of crate errors (through their `oauth_error`) to responses.
//!
//! - [`config`]: the command line ([`config::Cli`]) and its validation ([`config::Settings`]).
//! - [`Shared`]: the state handlers share; [`app`] builds the router from it.
//! - [`start`] / [`start_with_clock`]: bind, build and serve, returning a [`Running`] server
//!   whose [`Running::shutdown`] stops it gracefully.
//!
//! ```no_run
//! use clap::Parser as _;
//! use reference_server::config::{Cli, Settings};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let cli = Cli::parse_from(["reference-server", "--dev", "--listen", "127.0.0.1:0"]);
//! let server = reference_server::start(Settings::from_cli(&cli)?).await?;
//! println!("listening on {}", server.issuer());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # What a multi-instance deployment still needs
//! The grant store and the rate-limit store are behind their traits and chosen by `--store`.
//! With `postgres://` or `redis://` registered clients are kept in the store too (the process's
//! map only caches them), so every instance knows every client. Pending consent pages live in
//! this process's memory: several instances behind one address need sticky sessions for the
//! consent step.
#![forbid(unsafe_code)]
// Handlers return `Result<_, Response>`: the error is the response to send, built once on a cold
// path, so boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

mod authorize;
mod clients;
pub mod config;
mod consent;
mod dev_idp;
mod endpoints;
mod form;
mod html;
mod respond;
mod session;
mod state;
mod token;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use portcullis_core::{Clock, SystemClock};
use portcullis_ratelimit::{Limit, RateLimitLayer, Rule};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use state::{Shared, Stores, open_stores};

use crate::config::{ConfigError, Settings, check_issuer};
use crate::respond::{MAX_FORM_BYTES, MAX_REGISTRATION_BYTES};

/// How often expired and revoked records are purged: every minute.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// Most records removed per purge call (the call repeats while more remain): bounded batches so
/// one purge never holds the store for long.
pub const PURGE_BATCH: usize = 10_000;

fn limit(name: &'static str, quota: portcullis_ratelimit::Quota) -> Limit {
    // Names are fixed literals within the crate's rules, so this cannot fail.
    Limit::new(name, quota).unwrap_or_else(|_| portcullis_ratelimit::presets::token_per_ip())
}

/// The router: every endpoint of the server over `shared`.
pub fn app(shared: Arc<Shared>) -> Router {
    let ip_resolver = shared.client_ip.clone();
    let on_error = shared.limits.on_store_error;
    let store = Arc::clone(&shared.rate_store);
    let layer = |rules: Vec<Rule>| {
        rules.into_iter().fold(
            RateLimitLayer::new(Arc::clone(&store), on_error).client_ip(ip_resolver.clone()),
            RateLimitLayer::rule,
        )
    };
    let limits = shared.limits;

    // Token, revocation and introspection: one per-IP budget shared by the three (so the
    // brute-force protection of client secrets covers every endpoint that checks them).
    let token_limit = layer(vec![Rule::per_ip(limit("token-ip", limits.token))]);
    let token_routes = Router::new()
        .route("/token", post(token::token).fallback(respond::post_only))
        .route("/revoke", post(token::revoke).fallback(respond::post_only))
        .route(
            "/introspect",
            post(token::introspect).fallback(respond::post_only),
        )
        .layer(token_limit)
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(from_fn(respond::no_store));

    let register_routes = Router::new()
        .route(
            "/register",
            post(endpoints::register).fallback(respond::post_only),
        )
        .layer(layer(vec![Rule::per_ip(limit(
            "register-ip",
            limits.register,
        ))]))
        .layer(DefaultBodyLimit::max(MAX_REGISTRATION_BYTES))
        .layer(from_fn(respond::no_store));

    // The session is verified first (once), so the per-user limit can key on it.
    let authorize_routes = Router::new()
        .route("/authorize", get(authorize::get).post(authorize::post))
        .layer(layer(vec![
            Rule::per_ip(limit("authorize-ip", limits.authorize_ip)),
            Rule::per_user(limit("authorize-user", limits.authorize_user)),
        ]))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(from_fn_with_state(Arc::clone(&shared), session::middleware));

    let mut router = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(endpoints::as_metadata),
        )
        .route(
            "/.well-known/oauth-protected-resource/api/me",
            get(endpoints::resource_metadata),
        )
        .route(state::RESOURCE_PATH, get(endpoints::me))
        .route(
            "/logout",
            post(endpoints::logout).fallback(respond::post_only),
        )
        .route("/healthz", get(endpoints::healthz))
        .merge(token_routes)
        .merge(register_routes)
        .merge(authorize_routes);
    if shared.dev_idp.is_some() {
        router = router
            .route("/", get(dev_idp::home))
            .route(
                "/dev/login",
                get(dev_idp::login_form)
                    .post(dev_idp::login_submit)
                    .layer(DefaultBodyLimit::max(MAX_FORM_BYTES)),
            )
            .route("/dev/jwks.json", get(dev_idp::jwks_json));
    }
    router
        .fallback(respond::not_found)
        .layer(from_fn(respond::guard))
        .with_state(shared)
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    purge: JoinHandle<()>,
}

impl Running {
    /// The address the server listens on.
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The issuer URL (also the server's base URL).
    #[must_use]
    pub fn issuer(&self) -> &str {
        self.shared.issuer()
    }

    /// The shared state.
    #[must_use]
    pub const fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stop accepting connections, let requests in flight finish, and return.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.purge.abort();
        let _ = (&mut self.task).await;
    }

    /// Wait until the server stops (after `signal` resolves, for servers started with
    /// [`start_until`]).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
        self.purge.abort();
    }
}

/// Bind, build and serve with the system clock until [`Running::shutdown`].
///
/// # Errors
/// [`StartError`] with one line saying what is wrong.
pub async fn start(settings: Settings) -> Result<Running, StartError> {
    start_with_clock(settings, Arc::new(SystemClock)).await
}

/// [`start`] with time from `clock` (tests move a manual clock to check expiry without sleeping).
///
/// # Errors
/// As [`start`].
pub async fn start_with_clock(
    settings: Settings,
    clock: Arc<dyn Clock>,
) -> Result<Running, StartError> {
    let (tx, rx) = oneshot::channel::<()>();
    let mut running = start_until(settings, clock, async move {
        let _ = rx.await;
    })
    .await?;
    running.stop = Some(tx);
    Ok(running)
}

/// Bind, build and serve until `signal` resolves (the binary passes SIGINT/SIGTERM).
///
/// # Errors
/// As [`start`].
pub async fn start_until(
    settings: Settings,
    clock: Arc<dyn Clock>,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    // The stores first: an unreachable database stops the start before anything else.
    let stores = open_stores(&settings, Arc::clone(&clock)).await?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: settings.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: settings.listen,
        source,
    })?;
    let issuer = match &settings.issuer {
        Some(i) => i.clone(),
        None => {
            let host = if addr.ip().is_unspecified() {
                SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
            } else {
                addr
            };
            check_issuer(&format!("http://{host}"))?
        }
    };
    let shared = Shared::build(&settings, issuer, addr, clock, stores)?;
    let router = app(Arc::clone(&shared));
    let purge = tokio::spawn(purge_loop(Arc::clone(&shared)));
    tracing::info!(
        listen = %addr,
        issuer = %shared.issuer(),
        store = shared.store_kind,
        dev = settings.dev,
        "reference server listening"
    );
    let task = tokio::spawn(async move {
        let serve = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(signal);
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "server stopped with an error");
        }
        tracing::info!("server stopped");
    });
    Ok(Running {
        addr,
        shared,
        stop: None,
        task,
        purge,
    })
}

async fn purge_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(PURGE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut removed = 0usize;
        loop {
            match shared.grants.purge(PURGE_BATCH).await {
                Ok(report) => {
                    removed += report.removed;
                    if !report.more {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "purge failed");
                    break;
                }
            }
        }
        let consents = shared.consents.purge(shared.clock.now());
        if removed + consents > 0 {
            tracing::debug!(records = removed, consents, "purged dead records");
        }
    }
}
