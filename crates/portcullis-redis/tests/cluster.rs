//! The Redis stores on a real Redis Cluster of three masters: both conformance suites, round
//! trips counted per operation, 64 redemptions of one refresh token through 64 Cluster
//! connections, and a failed rotation's cleanup.
//!
//! The Cluster is the one `REDIS_CLUSTER_URLS` names (comma-separated node URLs), or else one
//! this test starts on loopback ports with redis-server and `redis-cli --cluster create`, and
//! stops at the end. Without the binaries the tests are skipped (failing with
//! `PORTCULLIS_REQUIRE_SERVICES=1`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use portcullis_core::{ErrorCode, ManualClock};
use portcullis_hash::{Keyring, TokenHasher};
use portcullis_ratelimit::{Check, Limit, Quota, RateLimitStore};
use portcullis_redis::{
    RedisConnection, RedisGrantStore, RedisRateLimitStore, RoundTripCounter, RoundTrips, TimeSource,
};
use portcullis_rotation::conformance::{self, CLIENT, Harness, TEST_KEY, USER};
use portcullis_rotation::{
    BindingContext, GrantService, GrantStore, RefreshRequest, RevocationReason, RotationPolicy,
    TokenKind,
};

fn grant_store(conn: &RedisConnection, prefix: &str, time: TimeSource) -> RedisGrantStore {
    RedisGrantStore::new(conn.clone())
        .with_prefix(prefix)
        .unwrap()
        .with_time(time)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_conformance_suites() {
    let Some((urls, _cluster)) = common::cluster("cluster_conformance_suites") else {
        return;
    };
    let conn = RedisConnection::connect_cluster(&urls).await.unwrap();
    assert!(conn.is_cluster());

    let root = common::prefix("crot");
    let n = AtomicUsize::new(0);
    let report = conformance::run_all(|| {
        let p = format!("{root}-{}", n.fetch_add(1, Ordering::Relaxed));
        let store = grant_store(&conn, &p, TimeSource::Caller);
        async move { store }
    })
    .await;
    assert!(report.is_success(), "{report}");
    eprintln!("{report}");

    // and the checks that do not move the clock, on the servers' TIME (see single_node.rs)
    let root = common::prefix("crottime");
    let report = conformance::run_matching(
        || {
            let p = format!("{root}-{}", n.fetch_add(1, Ordering::Relaxed));
            let store = grant_store(&conn, &p, TimeSource::Server);
            async move { store }
        },
        |name| {
            !(name.starts_with("invariant_7")
                || name.starts_with("invariant_5")
                || name.contains("purge")
                || name.contains("7662")
                || name.starts_with("model"))
        },
    )
    .await;
    assert!(
        report.results.len() >= 30 && report.is_success(),
        "{report}"
    );

    // the client registry (one hash tag: every write is one script on Cluster too)
    let store = portcullis_redis::RedisClientStore::new(conn.clone())
        .with_prefix(&common::prefix("ccl"))
        .unwrap();
    conformance::client_store(Arc::new(store)).await.unwrap();

    common::ratelimit_suite(&conn, &common::prefix("crl"))
        .await
        .unwrap();
}

/// Round trips per operation on Cluster, counted at the connection, and the server's `EVALSHA`
/// and `MGET` calls summed over the three masters.
///
/// On a current-thread runtime: the connections' drivers run only when the test's task waits,
/// so requests an operation sends together are all sent before any reply is taken. On a
/// multi-thread runtime a preempted test thread can find one request answered before it has
/// sent the next of the same wave, and count two round trips where the store makes one (seen
/// once in CI, under load, on `redeem_code`).
#[tokio::test(flavor = "current_thread")]
async fn cluster_round_trips_per_operation() {
    let Some((urls, _cluster)) = common::cluster("cluster_round_trips_per_operation") else {
        return;
    };
    let plain = RedisConnection::connect_cluster(&urls).await.unwrap();
    let nodes = connect_nodes(&urls).await;
    let counter = RoundTripCounter::new();
    let conn = plain.counting(&counter);
    let root = common::prefix("crt");
    let store: Arc<dyn GrantStore> = Arc::new(grant_store(&conn, &root, TimeSource::Server));
    let h = Harness::new(Arc::clone(&store)).unwrap();
    let limiter = RedisRateLimitStore::new(conn.clone())
        .with_prefix(&root)
        .unwrap();
    let ip = Limit::new("ip", "100/min".parse::<Quota>().unwrap()).unwrap();
    let user = Limit::new("user", "1/min".parse::<Quota>().unwrap()).unwrap();

    // warm up: every script loaded on every master
    let (auth, pair) = h.grant(USER, CLIENT).await.unwrap();
    h.refresh(&pair.refresh_token).await.unwrap();
    h.active(&pair.access_token).await.unwrap();
    h.service().revoke_family(auth.family).await.unwrap();
    h.service()
        .revoke_token(pair.access_token.expose_secret(), None, CLIENT)
        .await
        .unwrap();
    h.service().logout("nobody").await.unwrap();
    store.family(auth.family).await.unwrap();
    limiter.check(&ip, "k").await.unwrap();
    for _ in 0..3 {
        let (a, _) = h.grant(USER, CLIENT).await.unwrap();
        h.service().revoke_family(a.family).await.unwrap();
        let _ = store.family(a.family).await.unwrap();
    }

    let mut measured: Vec<(&str, RoundTrips, u64, u64, RoundTrips)> = Vec::new();
    macro_rules! measure {
        ($name:expr, $expect:expr, $op:expr) => {{
            counter.take();
            let e0 = common::command_calls(&nodes, "evalsha").await;
            let m0 = common::command_calls(&nodes, "mget").await;
            let out = $op;
            let trips = counter.take();
            let e1 = common::command_calls(&nodes, "evalsha").await;
            let m1 = common::command_calls(&nodes, "mget").await;
            measured.push(($name, trips, e1 - e0, m1 - m0, $expect));
            out
        }};
    }
    let rt = |requests, round_trips| RoundTrips {
        requests,
        round_trips,
    };
    // create: the family's script, the code's pointer, the user's, the client's and the purge
    // bucket's index, five slots at once
    let auth = measure!(
        "create_family",
        rt(5, 1),
        h.issue(USER, CLIENT).await.unwrap()
    );
    // redeem and rotate: the pointer (MGET), then the script and the two new pointers at once
    let pair = measure!("redeem_code", rt(4, 2), h.exchange(&auth).await.unwrap());
    let next = measure!(
        "rotate_refresh",
        rt(4, 2),
        h.refresh(&pair.refresh_token).await.unwrap()
    );
    // find, revoke_token: the pointer, then the script
    measure!(
        "find",
        rt(2, 2),
        h.active(&next.access_token).await.unwrap()
    );
    measure!(
        "revoke_token",
        rt(2, 2),
        h.service()
            .revoke_token(next.access_token.expose_secret(), None, CLIENT)
            .await
            .unwrap()
    );
    measure!(
        "revoke_family",
        rt(1, 1),
        h.service().revoke_family(auth.family).await.unwrap()
    );
    measure!("family", rt(1, 1), store.family(auth.family).await.unwrap());
    // logout: the user's set, then every family of it at once
    h.grant("bob", CLIENT).await.unwrap();
    h.grant("bob", CLIENT).await.unwrap();
    let out = measure!(
        "revoke_user",
        rt(3, 2),
        h.service().logout("bob").await.unwrap()
    );
    assert_eq!(out.len(), 2);
    measure!(
        "ratelimit check",
        rt(1, 1),
        limiter.check(&ip, "k").await.unwrap()
    );
    measure!(
        "ratelimit peek",
        rt(1, 1),
        limiter.peek(&ip, "k").await.unwrap()
    );
    let both = [Check::new(&ip, "203.0.113.9"), Check::new(&user, "alice")];
    measure!(
        "ratelimit check_all",
        rt(1, 1),
        limiter.check_all(&both).await.unwrap()
    );
    let denied = measure!(
        "ratelimit check_all (denied)",
        rt(1, 1),
        limiter.check_all(&both).await.unwrap()
    );
    assert!(!denied.allowed);
    // nothing consumed from the IP's budget by the denied pair
    assert_eq!(
        limiter.peek(&ip, "203.0.113.9").await.unwrap().remaining,
        99
    );

    for (name, trips, evalsha, mget, expect) in &measured {
        eprintln!("{name}: {trips:?}, EVALSHA {evalsha}, MGET {mget}");
        assert_eq!(trips, expect, "{name}");
        // one script per operation, and on create three more: the user's, the client's and
        // the purge bucket's index, each a small script in its own slot
        let scripts = match *name {
            "create_family" => 4,
            "revoke_user" => 2,
            _ => 1,
        };
        assert_eq!(*evalsha, scripts, "{name}: EVALSHA calls");
        let lookups = u64::from(matches!(
            *name,
            "redeem_code" | "rotate_refresh" | "find" | "revoke_token"
        ));
        assert_eq!(*mget, lookups, "{name}: MGET calls");
    }
}

/// 64 tasks redeem one refresh token at once, each through its own Cluster connection.
// covers 9700-2.2.2-a (concurrent redemption on Cluster)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_sixty_four_connections_race_one_refresh_token() {
    let Some((urls, _cluster)) = common::cluster("cluster_sixty_four_connections_race") else {
        return;
    };
    let hasher = Arc::new(TokenHasher::new(
        Keyring::from_values(TEST_KEY, None).unwrap(),
    ));
    let clock = ManualClock::at_secs(conformance::START_SECS);
    let policy = RotationPolicy::default();
    let root = common::prefix("crace");
    let mut services = Vec::new();
    for _ in 0..64 {
        let conn = RedisConnection::connect_cluster(&urls).await.unwrap();
        services.push(Arc::new(GrantService::new(
            Arc::new(grant_store(&conn, &root, TimeSource::Caller)),
            Arc::clone(&hasher),
            Arc::new(clock.clone()),
            policy,
        )));
    }
    let first: Arc<dyn GrantStore> = Arc::clone(services[0].store());
    let h = Harness::build(first, policy, Arc::clone(&hasher), clock.clone());
    let (auth, pair) = h.grant(USER, CLIENT).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for service in services {
        let (barrier, token) = (Arc::clone(&barrier), pair.refresh_token.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            service
                .refresh(RefreshRequest {
                    refresh_token: token.expose_secret(),
                    client_id: CLIENT,
                    scope: None,
                    binding: BindingContext::default(),
                })
                .await
        });
    }
    let mut results = Vec::new();
    while let Some(r) = tasks.join_next().await {
        results.push(r.unwrap());
    }
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{wins} of 64 rotations succeeded");
    for r in &results {
        if let Err(e) = r {
            assert_eq!(e.oauth_error().code(), ErrorCode::InvalidGrant, "{e:?}");
        }
    }
    let snap = h.snapshot(auth.family).await.unwrap();
    assert_eq!(
        snap.family.revoked.map(|r| r.reason),
        Some(RevocationReason::RefreshReplay)
    );
    assert_eq!(
        snap.credentials
            .iter()
            .filter(|c| c.kind == TokenKind::RefreshToken)
            .count(),
        2
    );
    // the replays found the family through the pointer; the winner's tokens are dead with it
    let win = results.iter().find_map(|r| r.as_ref().ok()).unwrap();
    assert!(!h.active(&win.access_token).await.unwrap());
}

/// A plain connection to each master.
async fn connect_nodes(urls: &[String]) -> Vec<RedisConnection> {
    let mut nodes = Vec::new();
    for u in urls {
        nodes.push(RedisConnection::connect(u).await.unwrap());
    }
    nodes
}

/// Keys matching `pattern` over every master.
async fn count_keys(nodes: &[RedisConnection], pattern: &str) -> usize {
    let mut n = 0;
    for node in nodes {
        n += common::keys_matching(node, pattern).await.len();
    }
    n
}

/// A rotation whose script fails (here on a family record that does not decode) is a clear,
/// permanent store error, hands out nothing, and leaves no pointer behind: the pointers written
/// in the same round trip as the script are deleted, as for a refused rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_failed_rotation_leaves_no_pointers() {
    let Some((urls, _cluster)) = common::cluster("cluster_failed_rotation") else {
        return;
    };
    let conn = RedisConnection::connect_cluster(&urls).await.unwrap();
    let nodes = connect_nodes(&urls).await;
    let root = common::prefix("cfail");
    let store: Arc<dyn GrantStore> = Arc::new(grant_store(&conn, &root, TimeSource::Server));
    let h = Harness::new(Arc::clone(&store)).unwrap();
    let (auth, pair) = h.grant(USER, CLIENT).await.unwrap();
    let pointers = format!("{root}:[ra]:{{*");
    let before = count_keys(&nodes, &pointers).await;
    // the code's refresh token and access token
    assert_eq!(before, 2);

    let mut c = conn.clone();
    let _: () = redis::cmd("SET")
        .arg(format!("{root}:{{{}}}:f", auth.family))
        .arg("not json")
        .arg("PX")
        .arg(60_000)
        .query_async(&mut c)
        .await
        .unwrap();
    let e = h.refresh(&pair.refresh_token).await.unwrap_err();
    assert_eq!(e.oauth_error().code(), ErrorCode::ServerError, "{e:?}");
    assert!(
        !e.is_retryable(),
        "a record that does not decode is not retryable"
    );
    assert_eq!(count_keys(&nodes, &pointers).await, before);

    let _: () = redis::cmd("DEL")
        .arg(format!("{root}:{{{}}}:f", auth.family))
        .query_async(&mut c)
        .await
        .unwrap();
}
