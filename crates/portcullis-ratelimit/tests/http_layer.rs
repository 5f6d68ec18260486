//! An axum router with the layer: 429 with the headers, per-IP and per-user limits behind a
//! trusted proxy, spoofing, and the store failure policy.
#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use http::{Request, Response, StatusCode};
use portcullis_core::ManualClock;
use portcullis_ratelimit::{
    AuthenticatedUser, Check, ClientIpResolver, Decision, FailurePolicy, ForwardedHeader, Limit,
    MemoryStore, MultiDecision, Quota, RateLimitLayer, RateLimitStore, Rule, StoreError,
    TrustedProxies, presets,
};
use tower::ServiceExt as _;

const PROXY: &str = "10.0.0.5:40000";
const STRANGER: &str = "198.51.100.20:5555";

fn resolver() -> ClientIpResolver {
    ClientIpResolver::behind_proxies(
        TrustedProxies::parse(["10.0.0.0/8"]).unwrap(),
        ForwardedHeader::XForwardedFor,
    )
}

/// The deployment's policy on a router: /token 10/min per IP, /authorize 10/min per IP and
/// 20/min per user. Authentication (here: a test header) runs before the limiter.
fn app(store: Arc<dyn RateLimitStore>, policy: FailurePolicy) -> Router {
    let authenticate = tower::util::MapRequestLayer::new(|mut req: Request<Body>| {
        if let Some(user) = req
            .headers()
            .get("x-test-user")
            .and_then(|v| v.to_str().ok())
        {
            let user = AuthenticatedUser(user.to_owned());
            req.extensions_mut().insert(user);
        }
        req
    });
    Router::new()
        .route(
            "/token",
            post(|| async { "token" }).layer(presets::token_endpoint(
                Arc::clone(&store),
                resolver(),
                policy,
            )),
        )
        .route(
            "/authorize",
            get(|| async { "authorize" }).layer(presets::authorize_endpoint(
                store,
                resolver(),
                policy,
            )),
        )
        .layer(authenticate)
}

fn request(
    method: &str,
    path: &str,
    peer: &str,
    xff: Option<&str>,
    user: Option<&str>,
) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(x) = xff {
        b = b.header("x-forwarded-for", x);
    }
    if let Some(u) = user {
        b = b.header("x-test-user", u);
    }
    let mut req = b.body(Body::empty()).unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    req
}

async fn send(app: &Router, req: Request<Body>) -> Response<Body> {
    app.clone().oneshot(req).await.unwrap()
}

async fn body(r: Response<Body>) -> String {
    let bytes = axum::body::to_bytes(r.into_body(), 10_000).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn setup() -> (ManualClock, Arc<MemoryStore<ManualClock>>) {
    let clock = ManualClock::at_secs(1_700_000_000);
    let store = Arc::new(MemoryStore::builder().build(clock.clone()));
    (clock, store)
}

// covers RLH-3-a, RLH-4-a, RLH-6-a, 6585-4-a, 9110-10.2.3-a
#[tokio::test]
async fn token_endpoint_answers_429_with_the_headers() {
    let (clock, store) = setup();
    let app = app(store, FailurePolicy::FailClosed);
    for i in 0..10u32 {
        let r = send(&app, request("POST", "/token", STRANGER, None, None)).await;
        assert_eq!(r.status(), StatusCode::OK, "request {i}");
        assert_eq!(r.headers()["ratelimit-policy"], r#""token-ip";q=10;w=60"#);
        assert_eq!(
            r.headers()["ratelimit"],
            format!(r#""token-ip";r={};t={}"#, 9 - i, 6 * (i + 1)).as_str()
        );
        assert!(r.headers().get("retry-after").is_none());
    }
    let r = send(&app, request("POST", "/token", STRANGER, None, None)).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let h = r.headers().clone();
    assert_eq!(h["ratelimit-policy"], r#""token-ip";q=10;w=60"#);
    assert_eq!(h["ratelimit"], r#""token-ip";r=0;t=6"#);
    assert_eq!(h["retry-after"], "6");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["content-type"], "application/json");
    for obsolete in [
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "x-ratelimit-limit",
    ] {
        assert!(h.get(obsolete).is_none(), "{obsolete}");
    }
    let b = body(r).await;
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["error"], "temporarily_unavailable");
    // Retry-After is honest: waiting it out is enough, one second less is not
    clock.advance(Duration::from_secs(5));
    let r = send(&app, request("POST", "/token", STRANGER, None, None)).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "1");
    clock.advance(Duration::from_secs(1));
    let r = send(&app, request("POST", "/token", STRANGER, None, None)).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn spoofed_x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let (_clock, store) = setup();
    let app = app(store, FailurePolicy::FailClosed);
    // A direct client rotating X-Forwarded-For still has one budget: its socket address.
    for i in 0..10 {
        let xff = format!("203.0.113.{i}");
        let r = send(&app, request("POST", "/token", STRANGER, Some(&xff), None)).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = send(
        &app,
        request("POST", "/token", STRANGER, Some("192.0.2.99"), None),
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn behind_the_trusted_proxy_each_client_has_its_own_budget() {
    let (_clock, store) = setup();
    let app = app(store, FailurePolicy::FailClosed);
    for _ in 0..10 {
        let r = send(
            &app,
            request("POST", "/token", PROXY, Some("1.1.1.1, 203.0.113.7"), None),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    // the same client, whatever it prepends
    let r = send(
        &app,
        request("POST", "/token", PROXY, Some("9.9.9.9, 203.0.113.7"), None),
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // another client through the same proxy is unaffected
    let r = send(
        &app,
        request("POST", "/token", PROXY, Some("203.0.113.8"), None),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    // malformed headers through the proxy share the proxy's own budget (never a fresh one)
    for i in 0..10 {
        let junk = format!("junk-{i}");
        let r = send(&app, request("POST", "/token", PROXY, Some(&junk), None)).await;
        assert_eq!(r.status(), StatusCode::OK, "{i}");
    }
    let r = send(
        &app,
        request("POST", "/token", PROXY, Some("more-junk"), None),
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn user_limit_denial_leaves_the_ip_budget_untouched() {
    let (_clock, store) = setup();
    let app = app(
        Arc::clone(&store) as Arc<dyn RateLimitStore>,
        FailurePolicy::FailClosed,
    );
    // One user from twenty addresses: the user limit (20/min) is reached first...
    for i in 0..20 {
        let xff = format!("203.0.113.{}", i % 2);
        let r = send(
            &app,
            request("GET", "/authorize", PROXY, Some(&xff), Some("alice")),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK, "{i}");
        assert!(
            r.headers()["ratelimit"]
                .to_str()
                .unwrap()
                .contains(r#""authorize-user";r="#)
        );
    }
    let r = send(
        &app,
        request(
            "GET",
            "/authorize",
            PROXY,
            Some("203.0.113.2"),
            Some("alice"),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["ratelimit"], r#""authorize-user";r=0;t=3"#);
    assert_eq!(r.headers()["retry-after"], "3");
    assert_eq!(
        r.headers()["ratelimit-policy"],
        r#""authorize-ip";q=10;w=60, "authorize-user";q=20;w=60"#
    );
    // ...and the denied request took nothing from 203.0.113.2's IP budget.
    let ip = presets::authorize_per_ip();
    assert_eq!(store.peek_now(&ip, "203.0.113.2").remaining, 10);
    for _ in 0..10 {
        let r = send(
            &app,
            request("GET", "/authorize", PROXY, Some("203.0.113.2"), Some("bob")),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = send(
        &app,
        request(
            "GET",
            "/authorize",
            PROXY,
            Some("203.0.113.2"),
            Some("carol"),
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["ratelimit"], r#""authorize-ip";r=0;t=6"#);
    // anonymous requests are limited per IP only
    let r = send(
        &app,
        request("GET", "/authorize", PROXY, Some("203.0.113.3"), None),
    )
    .await;
    assert_eq!(r.headers()["ratelimit"], r#""authorize-ip";r=9;t=6"#);
}

#[tokio::test]
async fn per_route_keys_by_the_matched_route_not_the_raw_path() {
    let (_clock, store) = setup();
    let limit = Limit::new("route", "2/min".parse::<Quota>().unwrap()).unwrap();
    let app = Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .route("/other", get(|| async { "other" }))
        .layer(RateLimitLayer::new(store, FailurePolicy::FailClosed).rule(Rule::per_route(limit)));
    let mut statuses = Vec::new();
    for path in [
        "/items/a", "/items/b", "/items/c", "/other", "/other", "/other",
    ] {
        let r = send(&app, request("GET", path, STRANGER, None, None)).await;
        statuses.push(r.status().as_u16());
    }
    // one budget per route pattern: new ids do not mint budgets, another route has its own
    assert_eq!(statuses, [200, 200, 429, 200, 200, 429]);
}

#[tokio::test]
async fn a_request_without_a_peer_shares_one_budget() {
    let (_clock, store) = setup();
    let app = app(store, FailurePolicy::FailClosed);
    for i in 0..11 {
        let req = Request::builder()
            .method("POST")
            .uri("/token")
            .body(Body::empty())
            .unwrap();
        let r = send(&app, req).await;
        assert_eq!(r.status() == StatusCode::OK, i < 10, "{i}");
    }
}

/// A store that always fails, as an unreachable Redis would.
#[derive(Debug)]
struct DownStore;

#[async_trait::async_trait]
impl RateLimitStore for DownStore {
    async fn check(&self, _: &Limit, _: &str) -> Result<Decision, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn peek(&self, _: &Limit, _: &str) -> Result<Decision, StoreError> {
        Err(StoreError::Timeout)
    }
    async fn check_all(&self, _: &[Check<'_>]) -> Result<MultiDecision, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

/// Records every tracing event as `field=value` text.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

struct Text(String);

impl tracing::field::Visit for Text {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl tracing::Subscriber for Events {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut t = Text(format!("{} ", event.metadata().level()));
        event.record(&mut t);
        self.0.lock().unwrap().push(t.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn run_with_events<T>(f: impl Future<Output = T>) -> (T, Vec<String>) {
    let events = Events::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let out = tracing::subscriber::with_default(events.clone(), || rt.block_on(f));
    let seen = events.0.lock().unwrap().clone();
    (out, seen)
}

#[test]
fn store_failure_fail_open_is_visible() {
    let app = app(Arc::new(DownStore), FailurePolicy::FailOpen);
    let (r, events) = run_with_events(send(&app, request("POST", "/token", STRANGER, None, None)));
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["portcullis-ratelimit-degraded"], "fail-open");
    assert!(r.headers().get("ratelimit").is_none());
    assert!(
        events.iter().any(|e| e.starts_with("WARN")
            && e.contains(r#"policy="fail-open""#)
            && e.contains("retryable=true")),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| e.contains("connection refused")),
        "internal detail leaked: {events:?}"
    );
}

#[test]
fn store_failure_fail_closed_is_visible() {
    let app = app(Arc::new(DownStore), FailurePolicy::FailClosed);
    let (r, events) = run_with_events(async {
        let r = send(&app, request("POST", "/token", STRANGER, None, None)).await;
        let status = r.status();
        let headers = r.headers().clone();
        (status, headers, body(r).await)
    });
    let (status, headers, body) = r;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["portcullis-ratelimit-degraded"], "fail-closed");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["cache-control"], "no-store");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "temporarily_unavailable");
    assert!(!body.contains("refused"));
    assert!(
        events.iter().any(|e| e.contains(r#"policy="fail-closed""#)),
        "{events:?}"
    );
}
