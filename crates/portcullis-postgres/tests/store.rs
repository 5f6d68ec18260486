//! The store's own promises beyond the conformance suite: one statement per redemption,
//! refusals that change nothing, the database's own constraints, the client registry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use portcullis_hash::TokenHash;
use portcullis_postgres::PostgresGrantStore;
use portcullis_rotation::conformance::{self, CLIENT, Harness, USER};
use portcullis_rotation::{
    BindingPolicy, BindingProof, GrantStore, Lifetimes, RefreshOutcome, RefreshRotation,
    RotationPolicy, StoreError,
};
use sqlx::{AssertSqlSafe, Executor as _};

fn delta(store: &PostgresGrantStore, before: portcullis_postgres::PostgresStats) -> (u64, u64) {
    let after = store.stats();
    (
        after.statements - before.statements,
        after.transactions - before.transactions,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redemption_is_one_statement() {
    let Some(url) = common::database("a_redemption_is_one_statement").await else {
        return;
    };
    let schema = common::TestSchema::create(&url).await;
    let store = schema.store().await;
    let h = Harness::with_policy(
        Arc::new(store.clone()) as Arc<dyn GrantStore>,
        RotationPolicy::default()
            .with_grace_window(Duration::from_secs(30))
            .unwrap(),
    )
    .unwrap();
    let auth = h.issue(USER, CLIENT).await.unwrap();

    let before = store.stats();
    let first = h.exchange(&auth).await.unwrap();
    assert_eq!(delta(&store, before), (1, 0), "code exchange");

    let before = store.stats();
    let second = h.refresh(&first.refresh_token).await.unwrap();
    assert_eq!(delta(&store, before), (1, 0), "rotation");

    // A refusal read in that one statement changes nothing and needs nothing more.
    let before = store.stats();
    assert!(
        h.refresh_as(
            &second.refresh_token,
            "another-client",
            None,
            portcullis_rotation::BindingContext::default()
        )
        .await
        .is_err()
    );
    assert_eq!(delta(&store, before), (1, 0), "refusal");

    // The grace reissue takes the locked path: one short transaction.
    let before = store.stats();
    h.refresh(&first.refresh_token).await.unwrap();
    let (statements, transactions) = delta(&store, before);
    assert_eq!(transactions, 1, "grace reissue");
    assert!(
        statements <= 7,
        "grace reissue took {statements} statements"
    );
    assert_eq!(store.stats().retries, 0);
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_rotation_changes_nothing() {
    let Some(url) = common::database("a_failed_rotation_changes_nothing").await else {
        return;
    };
    let schema = common::TestSchema::create(&url).await;
    let store = schema.store().await;
    let h = Harness::new(Arc::new(store.clone()) as Arc<dyn GrantStore>).unwrap();
    let (auth, first) = h.grant(USER, CLIENT).await.unwrap();
    let (_, other) = h.grant(USER, CLIENT).await.unwrap();
    // A successor hash that is already stored (only a broken generator would do this): the
    // statement fails on the unique index, as one unit — the token is not left used.
    let candidates = [h.refresh_hash(&first.refresh_token)];
    let proof = BindingProof::default();
    let rotation = RefreshRotation {
        candidates: &candidates,
        client_id: CLIENT,
        scope: None,
        binding: &proof,
        binding_policy: BindingPolicy::default(),
        grace_window: Duration::ZERO,
        successor: h.refresh_hash(&other.refresh_token),
        access: TokenHash::from_bytes([9; 32]),
        lifetimes: Lifetimes {
            refresh_idle: Duration::from_secs(3600),
            access: Duration::from_secs(600),
        },
        now: portcullis_core::Clock::now(h.clock()),
    };
    let r = store.rotate_refresh(&rotation).await;
    assert!(matches!(r, Err(StoreError::Duplicate)), "{r:?}");
    let snap = store.family(auth.family).await.unwrap().unwrap();
    assert!(snap.credentials.iter().all(|c| c.kind
        == portcullis_rotation::TokenKind::AuthorizationCode
        || c.used_at.is_none()));
    assert_eq!(snap.access_tokens.len(), 1);
    // And it rotates normally afterwards.
    h.refresh(&first.refresh_token).await.unwrap();
    schema.drop_schema().await;
}

/// What makes retrying after a lost connection safe: the same request presented again (same
/// fresh successor hash) after its rotation committed is reported as done, not as a replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_redemption_finds_its_own_write() {
    let Some(url) = common::database("a_retried_redemption_finds_its_own_write").await else {
        return;
    };
    let schema = common::TestSchema::create(&url).await;
    let store = schema.store().await;
    let h = Harness::new(Arc::new(store.clone()) as Arc<dyn GrantStore>).unwrap();
    let (auth, first) = h.grant(USER, CLIENT).await.unwrap();
    let candidates = [h.refresh_hash(&first.refresh_token)];
    let proof = BindingProof::default();
    let rotation = RefreshRotation {
        candidates: &candidates,
        client_id: CLIENT,
        scope: None,
        binding: &proof,
        binding_policy: BindingPolicy::default(),
        grace_window: Duration::ZERO,
        successor: TokenHash::from_bytes([7; 32]),
        access: TokenHash::from_bytes([8; 32]),
        lifetimes: Lifetimes {
            refresh_idle: Duration::from_secs(3600),
            access: Duration::from_secs(600),
        },
        now: portcullis_core::Clock::now(h.clock()),
    };
    let done = store.rotate_refresh(&rotation).await.unwrap();
    let again = store.rotate_refresh(&rotation).await.unwrap();
    assert_eq!(done, again);
    assert!(matches!(again, RefreshOutcome::Rotated { .. }), "{again:?}");
    let snap = store.family(auth.family).await.unwrap().unwrap();
    assert!(snap.family.revoked.is_none());
    assert_eq!(snap.access_tokens.len(), 2, "nothing written twice");
    // Another request (another successor) presenting the same token is a replay.
    let replay = store
        .rotate_refresh(&RefreshRotation {
            successor: TokenHash::from_bytes([5; 32]),
            access: TokenHash::from_bytes([6; 32]),
            ..rotation
        })
        .await
        .unwrap();
    assert!(
        matches!(replay, RefreshOutcome::Replayed { .. }),
        "{replay:?}"
    );
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_refuses_a_second_live_refresh_token() {
    let Some(url) = common::database("the_database_refuses_a_second_live_refresh_token").await
    else {
        return;
    };
    let schema = common::TestSchema::create(&url).await;
    let store = schema.store().await;
    let h = Harness::new(Arc::new(store.clone()) as Arc<dyn GrantStore>).unwrap();
    let (_, first) = h.grant(USER, CLIENT).await.unwrap();
    let pool = store.pool();
    // Whatever code writes: a second unused refresh token in the family is refused...
    let e = pool
        .execute(AssertSqlSafe(format!(
            "INSERT INTO portcullis_refresh_tokens (token_hash, family_id, generation, parent_id, \
             issued_at, expires_at) SELECT '\\x{}', family_id, 2, id, 0, 1 \
             FROM portcullis_refresh_tokens WHERE token_hash = '\\x{}'",
            "ab".repeat(32),
            h.refresh_hash(&first.refresh_token).to_hex()
        )))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("portcullis_refresh_tokens_one_live_idx"),
        "{e}"
    );
    // ...so is a used token that names no successor, and a hash of the wrong length.
    let e = pool
        .execute("UPDATE portcullis_refresh_tokens SET used_at = 1")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("check constraint"), "{e}");
    let e = pool
        .execute("UPDATE portcullis_access_tokens SET token_hash = '\\x00'")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("check constraint"), "{e}");
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_registry_passes_the_client_check() {
    let Some(url) = common::database("client_registry").await else {
        return;
    };
    let schema = common::TestSchema::create(&url).await;
    let store = schema.store().await;
    conformance::client_store(Arc::new(store.clients()))
        .await
        .unwrap();
    schema.drop_schema().await;
}
