//! A real identity provider on loopback for the integration tests: an axum server that serves a
//! JWKS the test controls and counts the requests it gets.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use portcullis_core::ManualClock;
use portcullis_jwks::testing::TestKey;
use portcullis_jwks::{Algorithm, CacheConfig, JwtVerifier, JwtVerifierBuilder};
use serde_json::{Value, json};

pub const ISS: &str = "https://idp.example";
pub const AUD: &str = "portcullis-app";
/// 2023-11-14T22:13:20Z: the tests' "now".
pub const T0: u64 = 1_700_000_000;

/// What the IdP answers on its JWKS path.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub location: Option<String>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

struct Shared {
    jwks_requests: AtomicU64,
    other_requests: AtomicU64,
    reply: Mutex<Reply>,
}

pub struct Idp {
    base: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_jwks(State(s): State<Arc<Shared>>) -> Response {
    s.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let reply = s.reply.lock().unwrap().clone();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    let h = resp.headers_mut();
    h.remove(header::CONTENT_TYPE);
    if let Some(ct) = reply.content_type {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(&ct).unwrap());
    }
    if let Some(cc) = reply.cache_control {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_str(&cc).unwrap());
    }
    if let Some(loc) = reply.location {
        h.insert(header::LOCATION, HeaderValue::from_str(&loc).unwrap());
    }
    resp
}

async fn other(State(s): State<Arc<Shared>>) -> &'static str {
    s.other_requests.fetch_add(1, Ordering::SeqCst);
    r#"{"keys":[]}"#
}

impl Idp {
    /// Start serving `jwks` (200, `application/json`, no `Cache-Control`).
    pub async fn start(jwks: String) -> Self {
        let shared = Arc::new(Shared {
            jwks_requests: AtomicU64::new(0),
            other_requests: AtomicU64::new(0),
            reply: Mutex::new(ok_reply(jwks)),
        });
        let app = Router::new()
            .route("/.well-known/jwks.json", get(serve_jwks))
            .fallback(other)
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base, shared, task }
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.base)
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Requests to the JWKS path so far.
    pub fn requests(&self) -> u64 {
        self.shared.jwks_requests.load(Ordering::SeqCst)
    }

    /// Requests to any other path (a `jku` or `x5u` would land here).
    pub fn other_requests(&self) -> u64 {
        self.shared.other_requests.load(Ordering::SeqCst)
    }

    pub fn set_jwks(&self, jwks: String) {
        *self.shared.reply.lock().unwrap() = ok_reply(jwks);
    }

    pub fn update(&self, f: impl FnOnce(&mut Reply)) {
        f(&mut self.shared.reply.lock().unwrap());
    }

    /// Answer 503 from now on.
    pub fn go_down(&self) {
        self.update(|r| {
            r.status = 503;
            r.content_type = Some("text/plain".into());
            r.body = b"down".to_vec();
        });
    }

    /// Wait (bounded) until the JWKS path has been requested `n` times.
    pub async fn wait_for_requests(&self, n: u64) {
        for _ in 0..500 {
            if self.requests() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the IdP got {} requests, expected {n}", self.requests());
    }
}

fn ok_reply(jwks: String) -> Reply {
    Reply {
        status: 200,
        content_type: Some("application/json".into()),
        cache_control: None,
        location: None,
        body: jwks.into_bytes(),
        delay: Duration::ZERO,
    }
}

/// Standard claims valid at `T0` for an hour, plus a custom one.
pub fn claims() -> Value {
    json!({
        "iss": ISS,
        "aud": [AUD, "another-app"],
        "sub": "user-42",
        "iat": T0,
        "nbf": T0,
        "exp": T0 + 3600,
        "session_id": "s-1",
    })
}

/// `claims()` with `changes` merged in (a `null` removes a claim).
pub fn claims_with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// The claims the tests read.
#[derive(Debug, serde::Deserialize, PartialEq, Eq)]
pub struct Session {
    pub sub: String,
    pub session_id: String,
}

pub fn clock() -> ManualClock {
    ManualClock::at_secs(T0)
}

/// A verifier for `idp` with the default rules, time from `clock`.
pub fn builder(idp: &Idp, clock: &ManualClock) -> JwtVerifierBuilder {
    JwtVerifier::builder(ISS)
        .jwks_url(idp.jwks_url())
        .audience(AUD)
        .clock(Arc::new(clock.clone()))
        .cache_config(CacheConfig::default())
}

pub fn verifier(idp: &Idp, clock: &ManualClock) -> JwtVerifier {
    builder(idp, clock).build().unwrap()
}

pub fn key(alg: Algorithm, kid: &str) -> TestKey {
    TestKey::generate(alg, Some(kid)).unwrap()
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact token from raw header and claims JSON and raw signature bytes.
pub fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}
