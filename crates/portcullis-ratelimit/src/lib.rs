//! Rate limiting for OAuth servers: a limiter that counts correctly, cannot be dodged by a
//! forged header, and tells clients exactly when to come back.
//!
//! The deployment this crate replaces counted requests with `INCR`, then `EXPIRE` on the first
//! hit, then `TTL` when over the limit, keyed by the first `X-Forwarded-For` entry: three round
//! trips, a crash between `INCR` and `EXPIRE` left a key that never expired (a permanent
//! lock-out), and any client could pick its own key. Here:
//!
//! - A [`Quota`] is `n` per period with a burst (`"10/min"`, `"20/hour;burst=5"`); zero is
//!   impossible by construction. A [`Limit`] names a quota and picks an [`Algorithm`]: GCRA
//!   (default), a fixed window (the recipe's semantics, made atomic) or an approximated sliding
//!   window (its error bound is documented on [`Algorithm`] and property-tested).
//! - Every algorithm is a pure function of integers ([`decide`] over a [`State`] of one
//!   microsecond time and two counters), so every store runs the same arithmetic in one atomic
//!   step, and every state carries its own expiry: no key outlives its purpose.
//! - [`RateLimitStore`] is the object-safe async store trait: one atomic check-and-consume
//!   returning a [`Decision`] (allowed, limit, remaining, reset after, retry after), a peek that
//!   consumes nothing, and a multi-key check in which a denial by any key consumes none.
//!   [`MemoryStore`] is the sharded in-process store with bounded memory; a Redis store implements
//!   the same trait, and both must pass the [`conformance`] suite (feature `conformance`).
//! - [`RateLimitFields`] renders the IETF `RateLimit-Policy` and `RateLimit` fields, `Retry-After`
//!   and the 429 response (see [`headers`]).
//! - [`ClientIpResolver`] takes the client address from the socket peer, and from
//!   `X-Forwarded-For` or `Forwarded` only behind configured trusted proxies, right to left.
//! - With the `tower` feature, [`RateLimitLayer`] limits a route by client IP, authenticated user
//!   and route, several limits at once, with a failure policy the caller chooses; the `axum`
//!   feature reads the peer from `ConnectInfo` and the route from `MatchedPath`. The
//!   [`presets`] reproduce the deployment's policy.
//!
//! # An axum router behind a trusted proxy
//!
//! The token endpoint allows 10 requests a minute per client IP; the authorize endpoint 10 per
//! client IP and 20 per signed-in user, checked together. The server sits behind a load
//! balancer in `10.0.0.0/8` that appends to `X-Forwarded-For`.
//!
//! ```
//! # #[cfg(feature = "axum")] {
//! use std::net::SocketAddr;
//! use std::sync::Arc;
//!
//! use axum::{Router, body::Body, extract::ConnectInfo, routing::{get, post}};
//! use http::{Request, StatusCode};
//! use portcullis_ratelimit::{
//!     AuthenticatedUser, ClientIpResolver, FailurePolicy, ForwardedHeader, MemoryStore,
//!     RateLimitStore, TrustedProxies, presets,
//! };
//! use tower::ServiceExt as _;
//!
//! let store: Arc<dyn RateLimitStore> = Arc::new(MemoryStore::new());
//! let client_ip = ClientIpResolver::behind_proxies(
//!     TrustedProxies::parse(["10.0.0.0/8"]).expect("valid CIDR"),
//!     ForwardedHeader::XForwardedFor,
//! );
//! let app = Router::new()
//!     // 10/min per client IP
//!     .route("/token", post(|| async { "token" }).layer(presets::token_endpoint(
//!         Arc::clone(&store), client_ip.clone(), FailurePolicy::FailClosed,
//!     )))
//!     // 10/min per client IP and 20/min per user, in one atomic check
//!     .route("/authorize", get(|| async { "consent page" }).layer(presets::authorize_endpoint(
//!         Arc::clone(&store), client_ip, FailurePolicy::FailClosed,
//!     )));
//! // Your authentication middleware inserts the user (outside the limiter, so it runs first):
//! let app = app.layer(tower::util::MapRequestLayer::new(|mut req: Request<Body>| {
//!     req.extensions_mut().insert(AuthenticatedUser("alice".to_owned()));
//!     req
//! }));
//! // Serve it with `axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())`
//! // so the layer sees the socket peer. Here, requests are sent straight to the router:
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let request = || {
//!     let mut req = Request::post("/token")
//!         .header("x-forwarded-for", "6.6.6.6, 203.0.113.7") // client wrote 6.6.6.6
//!         .body(Body::empty())
//!         .unwrap();
//!     let proxy: SocketAddr = "10.0.0.5:41234".parse().unwrap();
//!     req.extensions_mut().insert(ConnectInfo(proxy));
//!     req
//! };
//! for _ in 0..10 {
//!     assert_eq!(app.clone().oneshot(request()).await.unwrap().status(), StatusCode::OK);
//! }
//! let denied = app.clone().oneshot(request()).await.unwrap();
//! assert_eq!(denied.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(denied.headers()["ratelimit-policy"], r#""token-ip";q=10;w=60"#);
//! assert_eq!(denied.headers()["ratelimit"], r#""token-ip";r=0;t=6"#);
//! assert_eq!(denied.headers()["retry-after"], "6");
//! assert_eq!(denied.headers()["cache-control"], "no-store");
//! # });
//! # }
//! ```
//!
//! # Features
//!
//! | feature | adds | pulls in |
//! |---|---|---|
//! | (none) | quotas, algorithms, store trait, memory store, client IP, header strings | `spin`, `ipnet` |
//! | `http` | `HeaderMap` rendering, the 429 response | `http` |
//! | `tower` | [`RateLimitLayer`] | `tower` (no default features) |
//! | `axum` | peer from `ConnectInfo`, route from `MatchedPath` | `axum` |
//! | `conformance` | the store conformance suite | — |
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod algorithm;
mod client_ip;
#[cfg(feature = "conformance")]
pub mod conformance;
mod decision;
pub mod headers;
#[cfg(feature = "tower")]
mod layer;
mod limit;
mod memory;
pub mod presets;
mod quota;
mod siphash;
mod store;
mod table;

pub use algorithm::{State, decide};
pub use client_ip::{
    ClientIp, ClientIpError, ClientIpResolver, DEFAULT_IPV6_PREFIX, ForwardedHeader, IpSource,
    MAX_FORWARDED_HOPS, TrustedProxies, parse_forwarded, parse_x_forwarded_for,
};
pub use decision::{Decision, MultiDecision};
pub use headers::RateLimitFields;
#[cfg(feature = "tower")]
pub use layer::{
    ANY_ROUTE_KEY, AuthenticatedUser, FailurePolicy, PeerAddr, RateLimit, RateLimitLayer,
    RequestView, Rule, UNKNOWN_PEER_KEY,
};
pub use limit::{Algorithm, Limit, LimitError, MAX_NAME_LEN};
pub use memory::{DEFAULT_MAX_KEYS, DEFAULT_SHARDS, MemoryStats, MemoryStore, MemoryStoreBuilder};
pub use quota::{MAX_SPAN_MICROS, Quota, QuotaError};
pub use store::{Check, RateLimitStore, StoreError};
