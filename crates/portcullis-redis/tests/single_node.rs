//! The Redis stores on a single node: both conformance suites (caller's clock, so that the
//! suites' manual clock drives every expiry), the server's TIME, 64 redemptions of one refresh
//! token through 64 connections, and round trips counted per operation.
//!
//! Against the Redis at `REDIS_URL` (skipped without it, failing with
//! `PORTCULLIS_REQUIRE_SERVICES=1`); the round-trip test starts its own redis-server so that
//! the server's command counts are its alone.
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
use std::time::{Duration, SystemTime};

use portcullis_core::{ErrorCode, ManualClock, UnixTime};
use portcullis_hash::{Keyring, OpaqueToken, Purpose, TokenHasher, TokenPrefix};
use portcullis_ratelimit::{Check, Limit, Quota, RateLimitStore};
use portcullis_redis::{
    RedisClientStore, RedisConnection, RedisGrantStore, RedisRateLimitStore, RoundTripCounter,
    RoundTrips, TimeSource,
};
use portcullis_rotation::conformance::{self, CLIENT, Harness, TEST_KEY, USER};
use portcullis_rotation::{
    BindingContext, ClientStore as _, GrantService, GrantStore, RefreshRequest, RevocationReason,
    RotationError, RotationPolicy, TokenKind, TokenPair,
};

fn grant_store(conn: &RedisConnection, prefix: &str, time: TimeSource) -> RedisGrantStore {
    RedisGrantStore::new(conn.clone())
        .with_prefix(prefix)
        .unwrap()
        .with_time(time)
}

/// The rotation crate's whole suite, unchanged, on the caller's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_conformance_suite() {
    let Some((_, conn)) = common::redis("rotation_conformance_suite").await else {
        return;
    };
    let root = common::prefix("rot");
    let n = AtomicUsize::new(0);
    let report = conformance::run_all(|| {
        let p = format!("{root}-{}", n.fetch_add(1, Ordering::Relaxed));
        let store = grant_store(&conn, &p, TimeSource::Caller);
        async move { store }
    })
    .await;
    common::clean(&conn, &root).await;
    assert!(report.is_success(), "{report}");
    eprintln!("{report}");
}

/// The client registry's check (the rotation crate's `client_store`), and one round trip per
/// operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_store_check() {
    let Some((_, conn)) = common::redis("client_store_check").await else {
        return;
    };
    let root = common::prefix("cl");
    let store = RedisClientStore::new(conn.clone())
        .with_prefix(&root)
        .unwrap();
    conformance::client_store(Arc::new(store)).await.unwrap();
    // one round trip per operation, counted at the connection
    let counter = RoundTripCounter::new();
    let store = RedisClientStore::new(conn.counting(&counter))
        .with_prefix(&root)
        .unwrap();
    let record = common::public_client("rt-client");
    let _ = counter.take();
    store.insert(&record).await.unwrap();
    assert_eq!(counter.take().requests, 1);
    assert!(store.get("rt-client").await.unwrap().is_some());
    assert_eq!(counter.take().requests, 1);
    assert!(store.delete("rt-client").await.unwrap());
    assert_eq!(counter.take().requests, 1);
    common::clean(&conn, &root).await;
}

/// Checks that never move the suite's clock nor give a store a time of their own. On the
/// server's TIME the others cannot pass by design: they set a manual clock to expiry edges
/// (invariants 5 and 7, purge, introspection at expiry, the model's clock steps), and
/// `invariant_5_grace_window_capped_in_store` passes its own `now` to the store.
fn clock_free(name: &str) -> bool {
    !(name.starts_with("invariant_7")
        || name.starts_with("invariant_5")
        || name.contains("purge")
        || name.contains("7662")
        || name.starts_with("model"))
}

/// The same checks on the server's TIME (the default), where they do not depend on the clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_conformance_on_server_time() {
    let Some((_, conn)) = common::redis("rotation_conformance_on_server_time").await else {
        return;
    };
    let root = common::prefix("rottime");
    let n = AtomicUsize::new(0);
    let report = conformance::run_matching(
        || {
            let p = format!("{root}-{}", n.fetch_add(1, Ordering::Relaxed));
            let store = grant_store(&conn, &p, TimeSource::Server);
            async move { store }
        },
        clock_free,
    )
    .await;
    common::clean(&conn, &root).await;
    assert!(report.results.len() >= 30, "{report}");
    assert!(report.is_success(), "{report}");
}

fn wall_clock() -> UnixTime {
    UnixTime::from(SystemTime::now())
}

/// With the server's TIME the store ignores the caller's clock: a year on the manual clock
/// does not expire anything, and records carry the server's time. With the caller's clock the
/// same year expires the grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_time_is_the_servers_and_caller_time_the_callers() {
    let Some((_, conn)) = common::redis("server_time_is_the_servers").await else {
        return;
    };
    let root = common::prefix("time");
    for time in [TimeSource::Server, TimeSource::Caller] {
        let store = Arc::new(grant_store(&conn, &format!("{root}-{time:?}"), time));
        let h = Harness::new(store).unwrap();
        let before = wall_clock();
        let (auth, first) = h.grant(USER, CLIENT).await.unwrap();
        let snap = h.snapshot(auth.family).await.unwrap();
        h.clock().advance(Duration::from_secs(365 * 86_400));
        let refreshed = h.refresh(&first.refresh_token).await;
        match time {
            TimeSource::Server => {
                // created on the server's clock (the manual clock says 2023)
                let skew = snap
                    .family
                    .created_at
                    .saturating_duration_since(before)
                    .max(before.saturating_duration_since(snap.family.created_at));
                assert!(
                    skew < Duration::from_secs(5),
                    "created_at {:?}",
                    snap.family.created_at
                );
                // the family's lifetime is kept
                assert_eq!(
                    snap.family
                        .expires_at
                        .saturating_duration_since(snap.family.created_at),
                    h.service().policy().family_lifetime()
                );
                refreshed.expect("a year on the caller's clock changes nothing on the server's");
            }
            _ => {
                assert_eq!(
                    snap.family.created_at,
                    UnixTime::from_secs(conformance::START_SECS)
                );
                let e = refreshed.expect_err("a year later the grant has expired");
                assert_eq!(e.oauth_error().code(), ErrorCode::InvalidGrant);
            }
        }
    }
    common::clean(&conn, &root).await;
}

/// The least-privilege user of `docs/operations.md` ("Access control"), as written there: every
/// store works with only these commands and only its keys.
const DOCUMENTED_ACL: &str = "resetchannels -@all +evalsha +script|load +ping +get +mget +set \
     +del +exists +sadd +srem +smembers +zadd +zrem +zrangebylex +pexpire +pttl +time +hgetall \
     +hset +hget +hdel +scard";

/// Every store, through a user that has only [`DOCUMENTED_ACL`] and the test's keys: the
/// rotation suite (its purge checks included), the limiter suite and the client check.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_work_with_the_documented_acl() {
    let Some((url, conn)) = common::redis("stores_work_with_the_documented_acl").await else {
        return;
    };
    let root = common::prefix("acl");
    let (user, password) = (format!("{root}-user"), format!("{root}-password"));
    let mut admin = conn.clone();
    let mut setuser = redis::cmd("ACL");
    setuser
        .arg("SETUSER")
        .arg(&user)
        .arg("reset")
        .arg("on")
        .arg(format!(">{password}"))
        .arg(format!("~{root}*"));
    for rule in DOCUMENTED_ACL.split_whitespace() {
        setuser.arg(rule);
    }
    let () = setuser.query_async(&mut admin).await.unwrap();
    // the same server, as that user
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let limited = RedisConnection::connect(&format!("redis://{user}:{password}@{host}"))
        .await
        .unwrap();
    // what the user may not do, it may not: the ACL is in force
    let mut probe = limited.clone();
    let denied: redis::RedisResult<String> = redis::cmd("FLUSHALL").query_async(&mut probe).await;
    assert!(denied.is_err(), "FLUSHALL was allowed");

    let n = AtomicUsize::new(0);
    let report = conformance::run_all(|| {
        let p = format!("{root}-{}", n.fetch_add(1, Ordering::Relaxed));
        let store = grant_store(&limited, &p, TimeSource::Caller);
        async move { store }
    })
    .await;
    assert!(report.is_success(), "{report}");

    common::ratelimit_suite(&limited, &format!("{root}-rl"))
        .await
        .unwrap();

    let clients = RedisClientStore::new(limited.clone())
        .with_prefix(&format!("{root}-cl"))
        .unwrap();
    conformance::client_store(Arc::new(clients)).await.unwrap();

    let () = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&user)
        .query_async(&mut admin)
        .await
        .map(|_: i64| ())
        .unwrap();
    common::clean(&conn, &root).await;
}

/// A registry capped by `with_max_clients` refuses the registration past the cap, with nothing
/// written, and takes one again after a deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_registry_cap() {
    let Some((_, conn)) = common::redis("client_registry_cap").await else {
        return;
    };
    let root = common::prefix("clcap");
    let store = RedisClientStore::new(conn.clone())
        .with_prefix(&root)
        .unwrap()
        .with_max_clients(2);
    let client = common::public_client;
    store.insert(&client("a")).await.unwrap();
    store.insert(&client("b")).await.unwrap();
    match store.insert(&client("c")).await {
        Err(portcullis_rotation::StoreError::Backend(e)) => {
            assert!(e.is::<portcullis_rotation::RegistryFull>(), "{e}");
        }
        other => panic!("a third client past a cap of 2: {other:?}"),
    }
    assert!(store.get("c").await.unwrap().is_none());
    assert_eq!(store.count().await.unwrap(), 2);
    // a taken id is still a duplicate, whatever the count
    assert!(matches!(
        store.insert(&client("a")).await,
        Err(portcullis_rotation::StoreError::Duplicate)
    ));
    assert!(store.delete("a").await.unwrap());
    store.insert(&client("c")).await.unwrap();
    common::clean(&conn, &root).await;
}

/// The rate limiter's suite, unchanged, on the caller's (manual) clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratelimit_conformance_suite() {
    let Some((_, conn)) = common::redis("ratelimit_conformance_suite").await else {
        return;
    };
    let root = common::prefix("rl");
    let result = common::ratelimit_suite(&conn, &root).await;
    common::clean(&conn, &root).await;
    result.unwrap();
}

/// On the server's TIME two stores (two server processes) share one budget, and a denial's
/// retry-after is the server's: whatever a caller's clock says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratelimit_on_server_time_is_shared() {
    let Some((url, conn)) = common::redis("ratelimit_on_server_time_is_shared").await else {
        return;
    };
    let root = common::prefix("rltime");
    let other = RedisConnection::connect(&url).await.unwrap();
    let a = RedisRateLimitStore::new(conn.clone())
        .with_prefix(&root)
        .unwrap();
    let b = RedisRateLimitStore::new(other).with_prefix(&root).unwrap();
    let hourly = Limit::new("hourly", "2/hour".parse::<Quota>().unwrap()).unwrap();
    assert!(a.check(&hourly, "k").await.unwrap().allowed);
    assert!(b.check(&hourly, "k").await.unwrap().allowed);
    let denied = a.check(&hourly, "k").await.unwrap();
    assert!(!denied.allowed);
    // GCRA 2/hour: the next unit in 30 minutes, less the few milliseconds since the first
    let retry = denied.retry_after;
    assert!(
        retry <= Duration::from_secs(1800) && retry > Duration::from_secs(1790),
        "{retry:?}"
    );
    assert!(!b.peek(&hourly, "k").await.unwrap().allowed);
    // the state has its TTL, set by the same script
    let mut c = conn.clone();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(a.key(&hourly, "k"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(ttl > 3_500_000 && ttl <= 3_600_000, "{ttl}");
    common::clean(&conn, &root).await;
}

fn hasher() -> Arc<TokenHasher> {
    Arc::new(TokenHasher::new(
        Keyring::from_values(TEST_KEY, None).unwrap(),
    ))
}

/// 64 tasks redeem one refresh token at once, each through its own connection and its own
/// store (64 server processes, as far as Redis can tell).
async fn race_through_64_connections(
    url: &str,
    root: &str,
    grace: Duration,
) -> Vec<Result<TokenPair, RotationError>> {
    let clock = ManualClock::at_secs(conformance::START_SECS);
    let policy = RotationPolicy::default().with_grace_window(grace).unwrap();
    let mut services = Vec::new();
    for _ in 0..64 {
        let conn = RedisConnection::connect(url).await.unwrap();
        let store = grant_store(&conn, root, TimeSource::Caller);
        services.push(Arc::new(GrantService::new(
            Arc::new(store),
            hasher(),
            Arc::new(clock.clone()),
            policy,
        )));
    }
    let first_store: Arc<dyn GrantStore> = Arc::clone(services[0].store());
    let h = Harness::build(first_store, policy, hasher(), clock.clone());
    let (_, pair) = h.grant(USER, CLIENT).await.unwrap();
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
    let mut out = Vec::new();
    while let Some(r) = tasks.join_next().await {
        out.push(r.unwrap());
    }
    out
}

// covers 9700-2.2.2-a (concurrent redemption, separate connections)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_connections_race_one_refresh_token() {
    let Some((url, conn)) = common::redis("sixty_four_connections_race").await else {
        return;
    };
    // No grace window: exactly one rotation succeeds, every other is a replay, and the replays
    // revoke the family (the winner's tokens die with it).
    let root = common::prefix("race0");
    let results = race_through_64_connections(&url, &root, Duration::ZERO).await;
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{wins} of 64 rotations succeeded");
    for r in &results {
        if let Err(e) = r {
            assert_eq!(e.oauth_error().code(), ErrorCode::InvalidGrant, "{e:?}");
        }
    }
    let store = grant_store(&conn, &root, TimeSource::Caller);
    let win = results.iter().find_map(|r| r.as_ref().ok()).unwrap();
    let snap = store.family(win.family).await.unwrap().unwrap();
    assert_eq!(
        snap.family.revoked.map(|r| r.reason),
        Some(RevocationReason::RefreshReplay)
    );
    assert_eq!(
        snap.credentials
            .iter()
            .filter(|c| c.kind == TokenKind::RefreshToken)
            .count(),
        2,
        "the first refresh token and exactly one successor"
    );
    common::clean(&conn, &root).await;

    // With a grace window none of them revokes the family, and one refresh token is live.
    let root = common::prefix("race60");
    let results = race_through_64_connections(&url, &root, Duration::from_secs(60)).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let store = grant_store(&conn, &root, TimeSource::Caller);
    let family = results[0].as_ref().unwrap().family;
    let snap = store.family(family).await.unwrap().unwrap();
    assert!(snap.family.revoked.is_none());
    let now = UnixTime::from_secs(conformance::START_SECS);
    let live = snap
        .credentials
        .iter()
        .filter(|c| c.is_live_refresh(now))
        .count();
    assert_eq!(live, 1, "{live} live refresh tokens");
    common::clean(&conn, &root).await;
}

/// Round trips of every operation on a single node: one each, counted at the connection
/// (requests and waves of requests) and by the server (`EVALSHA` calls in `INFO
/// commandstats`, on a server this test starts so that the counts are its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_round_trip_per_operation() {
    if common::binaries("one_round_trip_per_operation").is_none() {
        return;
    }
    let server = common::Server::start("roundtrips", &["--appendonly", "no"]);
    let plain = RedisConnection::connect(&server.url()).await.unwrap();
    let counter = RoundTripCounter::new();
    let conn = plain.counting(&counter);
    let store: Arc<dyn GrantStore> = Arc::new(grant_store(&conn, "rt", TimeSource::Server));
    let h = Harness::new(Arc::clone(&store)).unwrap();
    let limiter = RedisRateLimitStore::new(conn.clone())
        .with_prefix("rt")
        .unwrap();
    let ip = Limit::new("ip", "100/min".parse::<Quota>().unwrap()).unwrap();
    let user = Limit::new("user", "100/min".parse::<Quota>().unwrap()).unwrap();

    // Warm up: every script loaded once (a NOSCRIPT reply, SCRIPT LOAD, EVALSHA again).
    let (auth, pair) = h.grant(USER, CLIENT).await.unwrap();
    h.refresh(&pair.refresh_token).await.unwrap();
    h.active(&pair.access_token).await.unwrap();
    let unknown = OpaqueToken::mint(TokenPrefix::ACCESS).unwrap();
    h.service()
        .revoke_token(unknown.expose_secret(), None, CLIENT)
        .await
        .unwrap();
    h.service().revoke_family(auth.family).await.unwrap();
    h.service().logout("nobody").await.unwrap();
    store.family(auth.family).await.unwrap();
    h.service().purge(10).await.unwrap();
    limiter.check(&ip, "k").await.unwrap();

    let mut measured: Vec<(&str, RoundTrips, u64)> = Vec::new();
    macro_rules! measure {
        ($name:expr, $op:expr) => {{
            counter.take();
            let before = common::command_calls(std::slice::from_ref(&plain), "evalsha").await;
            let out = $op;
            let trips = counter.take();
            let after = common::command_calls(std::slice::from_ref(&plain), "evalsha").await;
            measured.push(($name, trips, after - before));
            out
        }};
    }
    let auth = measure!("create_family", h.issue(USER, CLIENT).await.unwrap());
    let pair = measure!("redeem_code", h.exchange(&auth).await.unwrap());
    let next = measure!(
        "rotate_refresh",
        h.refresh(&pair.refresh_token).await.unwrap()
    );
    measure!(
        "rotate_refresh (replay)",
        h.refresh(&pair.refresh_token).await.unwrap_err()
    );
    measure!("find", h.active(&next.access_token).await.unwrap());
    let (auth2, pair2) = h.grant(USER, CLIENT).await.unwrap();
    measure!(
        "revoke_token",
        h.service()
            .revoke_token(pair2.access_token.expose_secret(), None, CLIENT)
            .await
            .unwrap()
    );
    measure!(
        "revoke_family",
        h.service().revoke_family(auth2.family).await.unwrap()
    );
    measure!("revoke_user", h.service().logout(USER).await.unwrap());
    measure!("family", store.family(auth.family).await.unwrap());
    measure!("ratelimit check", limiter.check(&ip, "k").await.unwrap());
    measure!("ratelimit peek", limiter.peek(&ip, "k").await.unwrap());
    measure!(
        "ratelimit check_all",
        limiter
            .check_all(&[Check::new(&ip, "1.2.3.4"), Check::new(&user, "u")])
            .await
            .unwrap()
    );
    for (name, trips, evalsha) in &measured {
        eprintln!("{name}: {trips:?}, EVALSHA {evalsha}");
        assert_eq!(
            *trips,
            RoundTrips {
                requests: 1,
                round_trips: 1
            },
            "{name}"
        );
        assert_eq!(*evalsha, 1, "{name}: EVALSHA calls");
    }
    // and the hashes are what the harness computes (the store found them)
    let hash = h.hasher().hash(
        Purpose::RefreshToken,
        next.refresh_token.expose_secret().as_bytes(),
    );
    assert!(matches!(
        store.find(TokenKind::RefreshToken, &[hash]).await.unwrap(),
        Some(portcullis_rotation::Found::Credential { .. })
    ));
}

/// A deterministic generator for the differential test (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The Lua port of the three algorithms answers exactly as `portcullis_ratelimit::decide` (the
/// memory store) on random quotas and request patterns, including periods so long that the
/// sliding window's products pass 2^53 and the script's exact big-integer path is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratelimit_script_matches_the_rust_algorithms() {
    use portcullis_ratelimit::{Algorithm, MemoryStore};
    use std::num::NonZeroU32;
    let Some((_, conn)) = common::redis("ratelimit_script_matches_the_rust_algorithms").await
    else {
        return;
    };
    let root = common::prefix("rldiff");
    let clock = ManualClock::at_secs(1_800_000_000);
    let redis = RedisRateLimitStore::new(conn.clone())
        .with_prefix(&root)
        .unwrap()
        .with_clock(clock.clone());
    let memory = MemoryStore::builder().build(clock.clone());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut compared = 0u32;
    let mut cases = 0u32;
    while cases < 36 {
        let algorithm = [
            Algorithm::Gcra,
            Algorithm::FixedWindow,
            Algorithm::SlidingWindow,
        ][usize::try_from(cases % 3).unwrap()];
        // periods from a microsecond to 2^50 µs (35 years), counts from 1 to a million
        let period = 1u64 << rng.below(51);
        let period = period + rng.below(period);
        let scale = [3, 20, 1_000_000][usize::try_from(rng.below(3)).unwrap()];
        let count = u32::try_from(1 + rng.below(scale)).unwrap();
        let Ok(mut quota) = Quota::new(
            NonZeroU32::new(count).unwrap(),
            Duration::from_micros(period),
        ) else {
            continue;
        };
        if rng.below(2) == 0 {
            let burst = NonZeroU32::new(u32::try_from(1 + rng.below(30)).unwrap()).unwrap();
            match quota.with_burst(burst) {
                Ok(q) => quota = q,
                Err(_) => continue,
            }
        }
        cases += 1;
        let limit = Limit::new(format!("diff-{cases}"), quota)
            .unwrap()
            .with_algorithm(algorithm);
        clock.set(UnixTime::from_secs(1_800_000_000));
        for _ in 0..40 {
            let step = match rng.below(4) {
                0 => 0,
                1 => rng.below(period / 4 + 1),
                2 => rng.below(period + 1),
                _ => rng.below(3 * period / 2 + 1),
            };
            // stay below 2^52.5 µs (the scripts' exact range with room for two periods)
            if clock_now(&clock).saturating_add(step) < 6_000_000_000_000_000 {
                clock.advance(Duration::from_micros(step));
            }
            for _ in 0..rng.below(4) {
                let ours = redis.check(&limit, "k").await.unwrap();
                let reference = memory.check_now(&limit, "k");
                assert_eq!(
                    ours,
                    reference,
                    "{algorithm} {quota} at {:?}",
                    clock_now(&clock)
                );
                compared += 1;
            }
            let ours = redis.peek(&limit, "k").await.unwrap();
            assert_eq!(
                ours,
                memory.peek_now(&limit, "k"),
                "peek {algorithm} {quota}"
            );
        }
    }
    assert!(compared > 500, "{compared} decisions compared");

    // The sliding window's edges with periods near 2^50 µs, where prev × (P − e) passes 2^53
    // and a double would round: the window after a full one, one microsecond before and at the
    // retry-after, and at fractions of the window.
    for (i, count) in [10u32, 11, 13, 17, 19].into_iter().enumerate() {
        let period = (1u64 << 50) - 9 - 2 * u64::try_from(i).unwrap();
        let quota = Quota::new(
            NonZeroU32::new(count).unwrap(),
            Duration::from_micros(period),
        )
        .unwrap();
        let limit = Limit::new(format!("edge-{i}"), quota)
            .unwrap()
            .with_algorithm(Algorithm::SlidingWindow);
        let window = 1_800_000_000_000_000 / period;
        clock.set(UnixTime::from_micros(window * period + period / 2));
        for _ in 0..count {
            assert!(redis.check(&limit, "k").await.unwrap().allowed);
            assert!(memory.check_now(&limit, "k").allowed);
        }
        for offset in [0, 1, period / 10, period / 7, period / 3, period / 2] {
            clock.set(UnixTime::from_micros((window + 1) * period + offset));
            let ours = redis.peek(&limit, "k").await.unwrap();
            assert_eq!(ours, memory.peek_now(&limit, "k"), "{quota} at +{offset}");
            if !ours.allowed {
                let retry = u64::try_from(ours.retry_after.as_micros()).unwrap();
                for edge in [retry - 1, retry] {
                    clock.set(UnixTime::from_micros((window + 1) * period + offset + edge));
                    let ours = redis.peek(&limit, "k").await.unwrap();
                    assert_eq!(
                        ours,
                        memory.peek_now(&limit, "k"),
                        "{quota} at +{offset}+{edge}"
                    );
                    assert_eq!(
                        ours.allowed,
                        edge == retry,
                        "{quota}: retry-after not exact"
                    );
                }
            }
        }
    }
    common::clean(&conn, &root).await;
}

fn clock_now(clock: &ManualClock) -> u64 {
    portcullis_core::Clock::now(clock).as_micros()
}

/// The rotation script reads its counts as three digits: 999 candidates are accepted, 1,000
/// are a permanent store error before anything is sent, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_counts_are_capped_at_999() {
    let Some((_, conn)) = common::redis("rotation_counts_are_capped_at_999").await else {
        return;
    };
    let root = common::prefix("cap");
    let store: Arc<dyn GrantStore> = Arc::new(grant_store(&conn, &root, TimeSource::Server));
    let h = Harness::new(Arc::clone(&store)).unwrap();
    let (_, pair) = h.grant(USER, CLIENT).await.unwrap();
    let presented = h.refresh_hash(&pair.refresh_token);
    let proof = &portcullis_rotation::BindingProof::default();
    let lifetimes = portcullis_rotation::Lifetimes {
        refresh_idle: Duration::from_secs(3600),
        access: Duration::from_secs(600),
    };
    let rotate = |n: usize, tag: &str| {
        let candidates = vec![presented; n];
        let (successor, access) = (
            h.refresh_hash(&format!("successor-{tag}").into()),
            h.refresh_hash(&format!("access-{tag}").into()),
        );
        let store = Arc::clone(&store);
        async move {
            store
                .rotate_refresh(&portcullis_rotation::RefreshRotation {
                    candidates: &candidates,
                    client_id: CLIENT,
                    scope: None,
                    binding: proof,
                    binding_policy: portcullis_rotation::BindingPolicy::default(),
                    grace_window: Duration::ZERO,
                    successor,
                    access,
                    lifetimes,
                    now: wall_clock(),
                })
                .await
        }
    };
    let e = rotate(1000, "a").await.unwrap_err();
    assert!(!e.is_retryable(), "{e:?}");
    // nothing changed: the token still rotates, with 999 candidates
    let r = rotate(999, "b").await.unwrap();
    assert!(
        matches!(r, portcullis_rotation::RefreshOutcome::Rotated { .. }),
        "{r:?}"
    );
    common::clean(&conn, &root).await;
}
