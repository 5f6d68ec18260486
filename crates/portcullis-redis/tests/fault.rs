//! Faults, on a redis-server this test starts for itself (append-only file, fsync on every
//! write): the server is killed in the middle of a loop of rotations and started again.
//!
//! - No token is handed out whose record was not written: every token a rotation returned is
//!   found after the restart.
//! - Operations resume without manual action: the same store, on the same connection, goes on
//!   rotating once the server is back; while it is gone every failure is retryable (a 503,
//!   never a 500, never a revocation).
//! - The limiter follows its failure policy while the server is gone: fail closed answers 503,
//!   fail open lets the request through, marked degraded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use portcullis_core::SystemClock;
use portcullis_hash::{Keyring, Purpose, TokenHasher};
use portcullis_pkce::CodeVerifier;
use portcullis_ratelimit::headers::DEGRADED;
use portcullis_ratelimit::{
    FailurePolicy, Limit, PeerAddr, Quota, RateLimitLayer, RateLimitStore, Rule,
};
use portcullis_redis::{RedisConnection, RedisGrantStore, RedisRateLimitStore};
use portcullis_rotation::conformance::{CLIENT, TEST_KEY, USER};
use portcullis_rotation::{
    BindingContext, CodeExchange, CodeRequest, GrantService, GrantStore, MAX_GRACE_WINDOW,
    RefreshRequest, RotationPolicy, Scope, TokenKind, TokenPair,
};
use tower::{Layer as _, ServiceExt as _};

/// Rotations the loop must hand out in all.
const ROTATIONS: usize = 240;
/// The server is killed after this many.
const KILL_AFTER: usize = 80;

async fn first_pair(service: &GrantService) -> TokenPair {
    let verifier = CodeVerifier::generate().unwrap();
    let issued = service
        .issue_code(CodeRequest {
            client_id: CLIENT.to_owned(),
            redirect_uri: "https://client.example/cb".to_owned(),
            challenge: Some(verifier.challenge()),
            scope: Scope::parse("read").unwrap(),
            resources: vec![],
            user_id: USER.to_owned(),
            session_expires_at: None,
        })
        .await
        .unwrap();
    service
        .exchange_code(CodeExchange {
            code: issued.code.expose_secret(),
            client_id: CLIENT,
            redirect_uri: Some("https://client.example/cb"),
            code_verifier: Some(verifier.expose_secret()),
            binding: BindingContext::default(),
        })
        .await
        .unwrap()
}

/// A request through a rate-limit layer on `store` with `policy`.
async fn limited(store: Arc<dyn RateLimitStore>, policy: FailurePolicy) -> Response<String> {
    let limit = Limit::new("fault-ip", "100/min".parse::<Quota>().unwrap()).unwrap();
    let svc = RateLimitLayer::new(store, policy)
        .rule(Rule::per_ip(limit))
        .layer(tower::service_fn(|_req: Request<String>| async {
            Ok::<_, Infallible>(Response::new("ok".to_owned()))
        }));
    let mut req = Request::new(String::new());
    let peer: SocketAddr = "198.51.100.7:4000".parse().unwrap();
    req.extensions_mut().insert(PeerAddr(peer));
    svc.oneshot(req).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_and_restarted_in_the_middle_of_rotations() {
    if common::binaries("server_killed_and_restarted").is_none() {
        return;
    }
    let mut server =
        common::Server::start("fault", &["--appendonly", "yes", "--appendfsync", "always"]);
    let conn = RedisConnection::connect(&server.url()).await.unwrap();
    let store = Arc::new(
        RedisGrantStore::new(conn.clone())
            .with_prefix("fault")
            .unwrap(),
    );
    let hasher = Arc::new(TokenHasher::new(
        Keyring::from_values(TEST_KEY, None).unwrap(),
    ));
    // A grace window, so that a rotation whose reply was lost to the crash can be retried with
    // the same token (as a client does) without counting as a replay.
    let policy = RotationPolicy::default()
        .with_grace_window(MAX_GRACE_WINDOW)
        .unwrap();
    let service = Arc::new(GrantService::new(
        Arc::clone(&store) as Arc<dyn GrantStore>,
        Arc::clone(&hasher),
        Arc::new(SystemClock),
        policy,
    ));
    let limiter: Arc<dyn RateLimitStore> = Arc::new(
        RedisRateLimitStore::new(conn.clone())
            .with_prefix("fault")
            .unwrap(),
    );
    assert_eq!(
        limited(Arc::clone(&limiter), FailurePolicy::FailClosed)
            .await
            .status(),
        StatusCode::OK
    );

    let first = first_pair(&service).await;
    let progress = Arc::new(AtomicUsize::new(0));
    let rotations = {
        let (service, progress) = (Arc::clone(&service), Arc::clone(&progress));
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(90);
            let mut current = first.refresh_token.clone();
            let mut handed_out: Vec<TokenPair> = vec![first];
            let mut failures = 0usize;
            while handed_out.len() <= ROTATIONS {
                assert!(Instant::now() < deadline, "rotations did not resume");
                match service
                    .refresh(RefreshRequest {
                        refresh_token: current.expose_secret(),
                        client_id: CLIENT,
                        scope: None,
                        binding: BindingContext::default(),
                    })
                    .await
                {
                    Ok(pair) => {
                        current = pair.refresh_token.clone();
                        handed_out.push(pair);
                        progress.store(handed_out.len(), Ordering::SeqCst);
                    }
                    Err(e) => {
                        assert!(
                            e.is_retryable() && e.oauth_error().status() == 503,
                            "a store outage must be a retryable 503, got {e:?}"
                        );
                        failures += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (handed_out, failures)
        })
    };

    while progress.load(Ordering::SeqCst) < KILL_AFTER {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    server.kill();
    let down_at = progress.load(Ordering::SeqCst);

    // While the server is gone: the limiter's store says so, retryably, and the layer applies
    // the caller's policy.
    let error = limiter
        .check(
            &Limit::new("fault-direct", "1/s".parse::<Quota>().unwrap()).unwrap(),
            "k",
        )
        .await
        .expect_err("no server, no decision");
    assert!(error.is_retryable(), "{error:?}");
    let closed = limited(Arc::clone(&limiter), FailurePolicy::FailClosed).await;
    assert_eq!(closed.status(), StatusCode::SERVICE_UNAVAILABLE);
    let open = limited(Arc::clone(&limiter), FailurePolicy::FailOpen).await;
    assert_eq!(open.status(), StatusCode::OK);
    assert_eq!(
        open.headers().get(DEGRADED).map(|v| v.to_str().unwrap()),
        Some("fail-open")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let progress_while_down = progress.load(Ordering::SeqCst);
    // at most the one rotation that was in flight when the server died
    assert!(
        progress_while_down <= down_at + 1,
        "rotations succeeded with the server down: {down_at} -> {progress_while_down}"
    );

    server.restart();
    let (handed_out, failures) = rotations.await.unwrap();
    eprintln!(
        "{} token pairs handed out, {failures} retryable failures while the server was down",
        handed_out.len()
    );
    assert!(failures > 0, "the outage was not observed");
    assert_eq!(handed_out.len(), ROTATIONS + 1);

    // Every token handed out has its record, after the crash and the restart.
    for (i, pair) in handed_out.iter().enumerate() {
        for (kind, token) in [
            (TokenKind::RefreshToken, &pair.refresh_token),
            (TokenKind::AccessToken, &pair.access_token),
        ] {
            let hash = hasher.hash(kind.purpose(), token.expose_secret().as_bytes());
            assert!(
                store.find(kind, &[hash]).await.unwrap().is_some(),
                "token pair {i}: the {} handed out is not stored",
                kind.as_str()
            );
        }
    }
    // The family survived, with exactly one live refresh token: the last one handed out.
    let last = handed_out.last().unwrap();
    let snap = store.family(last.family).await.unwrap().unwrap();
    assert!(snap.family.revoked.is_none(), "{:?}", snap.family.revoked);
    let now = portcullis_core::Clock::now(&SystemClock);
    let live: Vec<_> = snap
        .credentials
        .iter()
        .filter(|c| c.is_live_refresh(now))
        .map(|c| c.hash)
        .collect();
    assert_eq!(
        live,
        vec![hasher.hash(
            Purpose::RefreshToken,
            last.refresh_token.expose_secret().as_bytes()
        )]
    );
    // And the limiter is back too, on the same connection.
    assert_eq!(
        limited(limiter, FailurePolicy::FailClosed).await.status(),
        StatusCode::OK
    );
}
