//! 64 tasks redeem one credential at once, each on its own pool connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use portcullis_core::ErrorCode;
use portcullis_postgres::PostgresGrantStore;
use portcullis_rotation::conformance::{CLIENT, Harness, USER};
use portcullis_rotation::{
    BindingContext, GrantStore, RefreshRequest, RevocationReason, RotationError, RotationPolicy,
    TokenPair,
};
use tokio::sync::Barrier;

const TASKS: usize = 64;

/// One race at a time: each holds 64 connections, and the server's limit is typically 100.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Open `TASKS` connections and give them back, so that the race below finds one idle
/// connection per task.
async fn warm(store: &PostgresGrantStore) {
    let mut held = Vec::new();
    for _ in 0..TASKS {
        held.push(store.pool().acquire().await.unwrap());
    }
    drop(held);
    // Returning a connection to the pool happens on a spawned task.
    for _ in 0..100 {
        if store.pool().num_idle() >= TASKS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(store.pool().num_idle(), TASKS);
}

/// How many backends the pool named `name` holds open, counted from a connection of its own.
async fn backends(url: &str, name: &str) -> i64 {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let n = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    n
}

async fn race(
    h: &Harness,
    token: &portcullis_core::SecretString,
) -> Vec<Result<TokenPair, RotationError>> {
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let service = Arc::clone(h.service());
        let token = token.clone();
        let barrier = Arc::clone(&barrier);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_tasks_redeem_one_refresh_token() {
    let Some(url) = common::database("sixty_four_tasks_redeem_one_refresh_token").await else {
        return;
    };
    let _gate = ONE_AT_A_TIME.lock().await;
    let schema = common::TestSchema::create(&url).await;
    let options = schema
        .options()
        .with_max_connections(u32::try_from(TASKS).unwrap())
        // Every task waits on the same row lock; give them time.
        .with_acquire_timeout(Duration::from_secs(30));
    let store = schema.store_with(options).await;
    let shared: Arc<dyn GrantStore> = Arc::new(store.clone());

    // Grace 0: exactly one rotation succeeds; the other 63 are replays that revoke the family.
    let h = Harness::new(Arc::clone(&shared)).unwrap();
    let (auth, first) = h.grant(USER, CLIENT).await.unwrap();
    warm(&store).await;
    let results = race(&h, &first.refresh_token).await;
    assert!(backends(&url, &schema.name).await >= i64::try_from(TASKS).unwrap());
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{results:?}");
    for r in &results {
        if let Err(e) = r {
            assert_eq!(e.oauth_error().code(), ErrorCode::InvalidGrant, "{e:?}");
        }
    }
    let snap = store.family(auth.family).await.unwrap().unwrap();
    assert_eq!(
        snap.family.revoked.map(|r| r.reason),
        Some(RevocationReason::RefreshReplay)
    );
    let children = snap
        .credentials
        .iter()
        .filter(|c| c.parent == Some(h.refresh_hash(&first.refresh_token)))
        .count();
    assert_eq!(children, 1, "one successor, however many raced");
    assert_eq!(
        snap.access_tokens.len(),
        2,
        "one access token per successful redemption"
    );

    // Grace 60 s: every task gets a pair (the losers grace reissues), the family survives, and
    // exactly one refresh token is live: the presented token's current successor.
    let g = Harness::with_policy(
        Arc::clone(&shared),
        RotationPolicy::default()
            .with_grace_window(Duration::from_secs(60))
            .unwrap(),
    )
    .unwrap();
    let (auth, first) = g.grant(USER, CLIENT).await.unwrap();
    warm(&store).await;
    let results = race(&g, &first.refresh_token).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let snap = store.family(auth.family).await.unwrap().unwrap();
    assert!(snap.family.revoked.is_none());
    let live = g.live_refresh_tokens(auth.family).await.unwrap();
    assert_eq!(live.len(), 1);
    let presented = snap
        .credentials
        .iter()
        .find(|c| c.hash == g.refresh_hash(&first.refresh_token))
        .unwrap();
    assert_eq!(presented.successor, live.first().copied());
    let mut active = 0;
    for pair in results.iter().flatten() {
        if g.active(&pair.refresh_token).await.unwrap() {
            active += 1;
        }
    }
    assert_eq!(active, 1);
    // 1 first redemption + 63 reissues, each with its access token.
    assert_eq!(snap.access_tokens.len(), 1 + TASKS);
    assert!(store.stats().retries < 64, "{:?}", store.stats());
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_tasks_redeem_one_code() {
    let Some(url) = common::database("sixty_four_tasks_redeem_one_code").await else {
        return;
    };
    let _gate = ONE_AT_A_TIME.lock().await;
    let schema = common::TestSchema::create(&url).await;
    let options = schema
        .options()
        .with_max_connections(u32::try_from(TASKS).unwrap())
        .with_acquire_timeout(Duration::from_secs(30));
    let store = schema.store_with(options).await;
    let h = Harness::new(Arc::new(store.clone()) as Arc<dyn GrantStore>).unwrap();
    let auth = h.issue(USER, CLIENT).await.unwrap();
    warm(&store).await;
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let h = h.clone();
        let barrier = Arc::clone(&barrier);
        let code = auth.code.clone();
        let verifier = auth.verifier.expose_secret().to_owned();
        tasks.spawn(async move {
            barrier.wait().await;
            h.service()
                .exchange_code(portcullis_rotation::CodeExchange {
                    code: code.expose_secret(),
                    client_id: CLIENT,
                    redirect_uri: Some(portcullis_rotation::conformance::REDIRECT_URI),
                    code_verifier: Some(&verifier),
                    binding: BindingContext::default(),
                })
                .await
        });
    }
    let mut wins = 0;
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => wins += 1,
            Err(e) => assert_eq!(e.oauth_error().code(), ErrorCode::InvalidGrant, "{e:?}"),
        }
    }
    assert_eq!(wins, 1);
    let snap = store.family(auth.family).await.unwrap().unwrap();
    assert_eq!(
        snap.family.revoked.map(|r| r.reason),
        Some(RevocationReason::CodeReplay)
    );
    assert_eq!(
        snap.credentials
            .iter()
            .filter(|c| c.kind == portcullis_rotation::TokenKind::RefreshToken)
            .count(),
        1
    );
    schema.drop_schema().await;
}
