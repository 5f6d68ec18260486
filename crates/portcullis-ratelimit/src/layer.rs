//! A tower layer that limits requests (feature `tower`; axum integration with feature `axum`).

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderName, HeaderValue};
use http::{Extensions, HeaderMap, Method, Request, Response, Uri};

use crate::headers::{DEGRADED, store_unavailable};
use crate::{Check, ClientIpResolver, Limit, RateLimitFields, RateLimitStore};

/// The key used for every request whose socket peer is unknown (no [`PeerAddr`] and, with the
/// `axum` feature, no `ConnectInfo<SocketAddr>` extension): one shared budget, never a fresh one.
pub const UNKNOWN_PEER_KEY: &str = "unknown-peer";

/// The key of a [`Rule::per_route`] limit when the route is unknown (no axum `MatchedPath`): one
/// budget for every request through the layer.
pub const ANY_ROUTE_KEY: &str = "*";

/// The socket peer of a request, as a request extension. axum's `ConnectInfo<SocketAddr>` is
/// read too (feature `axum`); servers built on plain hyper or tower insert this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The authenticated user of a request, as a request extension: the authentication middleware
/// inserts it, and [`Rule::per_user`] limits by it. Put the rate-limit layer inside (after) the
/// authentication layer so the extension is there.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthenticatedUser(pub String);

impl fmt::Debug for AuthenticatedUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A user id is personal data: keep it out of debug logs.
        f.write_str("AuthenticatedUser(..)")
    }
}

/// What the layer does when the store fails (unreachable, timed out).
///
/// There is no default: the caller chooses. Either way the layer emits a `tracing` event
/// (target `portcullis_ratelimit`, field `policy`) and sets the
/// [`portcullis-ratelimit-degraded`](crate::headers::DEGRADED) response header, so the choice is
/// visible to operators and clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Let the request through unlimited (availability first). Header value `fail-open`.
    FailOpen,
    /// Refuse it with 503 `temporarily_unavailable` and `Retry-After: 1` (protection first).
    /// Header value `fail-closed`.
    FailClosed,
}

impl FailurePolicy {
    /// `fail-open` or `fail-closed`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::FailOpen => "fail-open",
            Self::FailClosed => "fail-closed",
        }
    }
}

/// The parts of a request a key extractor may look at.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// The method.
    pub method: &'a Method,
    /// The URI.
    pub uri: &'a Uri,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The extensions.
    pub extensions: &'a Extensions,
}

type KeyFn = Arc<dyn Fn(&RequestView<'_>) -> Option<String> + Send + Sync>;

#[derive(Clone)]
enum KeySource {
    ClientIp,
    Route,
    Custom(KeyFn),
}

/// One limit of a route and how to key it.
#[derive(Clone)]
pub struct Rule {
    limit: Limit,
    key: KeySource,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = match self.key {
            KeySource::ClientIp => "client-ip",
            KeySource::Route => "route",
            KeySource::Custom(_) => "custom",
        };
        f.debug_struct("Rule")
            .field("limit", &self.limit)
            .field("key", &key)
            .finish()
    }
}

impl Rule {
    /// Limit by client IP (resolved by the layer's [`ClientIpResolver`]).
    #[must_use]
    pub fn per_ip(limit: Limit) -> Self {
        Self {
            limit,
            key: KeySource::ClientIp,
        }
    }

    /// Limit by the [`AuthenticatedUser`] extension; requests without one are not counted by
    /// this rule (limit them per IP).
    #[must_use]
    pub fn per_user(limit: Limit) -> Self {
        Self::per_extension(limit, |u: &AuthenticatedUser| u.0.clone())
    }

    /// Limit by a request extension of type `T` (your own user or client type); requests
    /// without one are not counted by this rule.
    #[must_use]
    pub fn per_extension<T, F>(limit: Limit, key: F) -> Self
    where
        T: Send + Sync + 'static,
        F: Fn(&T) -> String + Send + Sync + 'static,
    {
        Self::custom(limit, move |r| r.extensions.get::<T>().map(&key))
    }

    /// Limit by route: one budget per matched route (axum's `MatchedPath`, feature `axum`), or
    /// one budget for everything through the layer when the route is unknown. Never the raw
    /// path, which the client chooses.
    #[must_use]
    pub fn per_route(limit: Limit) -> Self {
        Self {
            limit,
            key: KeySource::Route,
        }
    }

    /// Limit by any key computed from the request; `None` skips this rule for the request.
    /// The key must not be something the client can choose freely (every new value is a fresh
    /// budget).
    #[must_use]
    pub fn custom<F>(limit: Limit, key: F) -> Self
    where
        F: Fn(&RequestView<'_>) -> Option<String> + Send + Sync + 'static,
    {
        Self {
            limit,
            key: KeySource::Custom(Arc::new(key)),
        }
    }

    /// The limit.
    #[must_use]
    pub const fn limit(&self) -> &Limit {
        &self.limit
    }
}

#[derive(Debug, Clone)]
struct Shared {
    store: Arc<dyn RateLimitStore>,
    rules: Vec<Rule>,
    resolver: ClientIpResolver,
    on_store_error: FailurePolicy,
    headers_on_success: bool,
}

/// The socket peer from the request's extensions.
fn peer(extensions: &Extensions) -> Option<IpAddr> {
    if let Some(p) = extensions.get::<PeerAddr>() {
        return Some(p.0.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(c) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(c.0.ip());
    }
    None
}

fn route(extensions: &Extensions) -> Option<String> {
    #[cfg(feature = "axum")]
    if let Some(m) = extensions.get::<axum::extract::MatchedPath>() {
        return Some(m.as_str().to_owned());
    }
    let _ = extensions;
    None
}

impl Shared {
    fn key(&self, rule: &Rule, view: &RequestView<'_>) -> Option<String> {
        match &rule.key {
            KeySource::ClientIp => Some(match peer(view.extensions) {
                Some(ip) => {
                    let client = self.resolver.resolve_headers(ip, view.headers);
                    self.resolver.key(&client)
                }
                None => {
                    tracing::debug!(
                        target: "portcullis_ratelimit",
                        "no socket peer on the request: using the shared unknown-peer key"
                    );
                    UNKNOWN_PEER_KEY.to_owned()
                }
            }),
            KeySource::Route => {
                Some(route(view.extensions).unwrap_or_else(|| ANY_ROUTE_KEY.to_owned()))
            }
            KeySource::Custom(f) => f(view),
        }
    }
}

/// A tower [`Layer`](tower::Layer) that checks every request against a route's limits in one
/// atomic multi-key check ([`RateLimitStore::check_all`]: a denial by one limit consumes none of
/// the others), answers 429 with the rate-limit fields when denied, and adds the fields to
/// admitted responses.
///
/// ```
/// use std::sync::Arc;
/// use portcullis_ratelimit::{FailurePolicy, Limit, MemoryStore, Quota, RateLimitLayer, Rule};
///
/// let store = Arc::new(MemoryStore::new());
/// let layer = RateLimitLayer::new(store, FailurePolicy::FailClosed)
///     .rule(Rule::per_ip(Limit::new("login-ip", "5/min".parse::<Quota>()?)?));
/// # let _ = layer;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    shared: Arc<Shared>,
}

impl RateLimitLayer {
    /// A layer with no rules yet over `store`, with the failure policy the caller chose.
    #[must_use]
    pub fn new(store: Arc<dyn RateLimitStore>, on_store_error: FailurePolicy) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                rules: Vec::new(),
                resolver: ClientIpResolver::peer_only(),
                on_store_error,
                headers_on_success: true,
            }),
        }
    }

    /// Add a limit (several limits per route: each request is checked against all of them).
    #[must_use]
    pub fn rule(mut self, rule: Rule) -> Self {
        Arc::make_mut(&mut self.shared).rules.push(rule);
        self
    }

    /// How [`Rule::per_ip`] finds the client (default: the socket peer only).
    #[must_use]
    pub fn client_ip(mut self, resolver: ClientIpResolver) -> Self {
        Arc::make_mut(&mut self.shared).resolver = resolver;
        self
    }

    /// Whether admitted responses carry `RateLimit-Policy` and `RateLimit` (default yes).
    #[must_use]
    pub fn headers_on_success(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.shared).headers_on_success = on;
        self
    }

    /// The rules.
    #[must_use]
    pub fn rules(&self) -> &[Rule] {
        &self.shared.rules
    }
}

impl<S> tower::Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`RateLimitLayer`] wraps around an inner service.
#[derive(Debug, Clone)]
pub struct RateLimit<S> {
    inner: S,
    shared: Arc<Shared>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for RateLimit<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        // The clone that was polled ready is the one to call (tower's documented pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let keys: Vec<(&Rule, String)> = {
                let view = RequestView {
                    method: req.method(),
                    uri: req.uri(),
                    headers: req.headers(),
                    extensions: req.extensions(),
                };
                shared
                    .rules
                    .iter()
                    .filter_map(|rule| shared.key(rule, &view).map(|k| (rule, k)))
                    .collect()
            };
            if keys.is_empty() {
                return inner.call(req).await;
            }
            let checks: Vec<Check<'_>> = keys
                .iter()
                .map(|(rule, key)| Check::new(&rule.limit, key))
                .collect();
            match shared.store.check_all(&checks).await {
                Ok(outcome) => {
                    let fields = RateLimitFields::new(
                        keys.iter().map(|(r, _)| &r.limit).zip(&outcome.decisions),
                        outcome.allowed,
                    );
                    if !outcome.allowed {
                        tracing::debug!(
                            target: "portcullis_ratelimit",
                            ratelimit = %fields.rate_limit,
                            "request rate-limited"
                        );
                        return Ok(fields.too_many_requests());
                    }
                    let mut response = inner.call(req).await?;
                    if shared.headers_on_success {
                        fields.apply(response.headers_mut());
                    }
                    Ok(response)
                }
                Err(error) => {
                    let policy = shared.on_store_error;
                    tracing::warn!(
                        target: "portcullis_ratelimit",
                        policy = policy.as_str(),
                        retryable = error.is_retryable(),
                        %error,
                        "rate-limit store failed"
                    );
                    match policy {
                        FailurePolicy::FailOpen => {
                            let mut response = inner.call(req).await?;
                            response.headers_mut().insert(
                                HeaderName::from_static(DEGRADED),
                                HeaderValue::from_static("fail-open"),
                            );
                            Ok(response)
                        }
                        FailurePolicy::FailClosed => Ok(store_unavailable(&error)),
                    }
                }
            }
        })
    }
}
