//! Faults: the pool's backends are terminated (`pg_terminate_backend`) again and again while
//! rotations run. Afterwards no half-done rotation is visible, no family was revoked by a
//! fault, and the pool serves again by itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use portcullis_core::SecretString;
use portcullis_rotation::conformance::{CLIENT, Harness, USER};
use portcullis_rotation::{Found, GrantStore, RotationError, TokenKind};
use sqlx::Connection as _;

/// Rotations per family; families rotated side by side.
const ROTATIONS: usize = 100;
const FAMILIES: usize = 4;

async fn scalar(conn: &mut sqlx::PgConnection, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(conn).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminated_backends_leave_no_half_done_rotation() {
    let Some(url) = common::database("terminated_backends_leave_no_half_done_rotation").await
    else {
        return;
    };
    let schema = common::TestSchema::create(&url).await;
    let store = schema
        .store_with(
            schema
                .options()
                .with_max_connections(4)
                .with_max_attempts(6),
        )
        .await;
    // Grace window 0: a retry that re-presented a token whose rotation had committed would be
    // a replay and revoke the family. It must not happen: the store recognises its own write.
    let h = Harness::new(Arc::new(store.clone()) as Arc<dyn GrantStore>).unwrap();

    // The killer: a connection of its own that terminates every backend of the store's pool,
    // at irregular short intervals, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicU64::new(0));
    let killer = {
        let (url, name, stop, kills) = (
            url.clone(),
            schema.name.clone(),
            Arc::clone(&stop),
            Arc::clone(&kills),
        );
        tokio::spawn(async move {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            while !stop.load(Ordering::Relaxed) {
                let jitter = getrandom::u32().unwrap() % 30;
                tokio::time::sleep(Duration::from_millis(15 + u64::from(jitter))).await;
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) \
                     FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()",
                )
                .bind(&name)
                .fetch_one(&mut conn)
                .await
                .unwrap();
                kills.fetch_add(u64::try_from(n).unwrap(), Ordering::Relaxed);
            }
        })
    };

    // The clients: rotate each family in a loop. A failure is an honest retryable error; the
    // client then presents the same token again, as a real client would.
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..FAMILIES {
        let h = h.clone();
        clients.spawn(async move {
            let (auth, first) = loop {
                match h.grant(USER, CLIENT).await {
                    Ok(g) => break g,
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            };
            let mut token: SecretString = first.refresh_token;
            let (mut ok, mut failed) = (0usize, 0usize);
            while ok < ROTATIONS {
                match h.refresh(&token).await {
                    Ok(pair) => {
                        token = pair.refresh_token;
                        ok += 1;
                    }
                    Err(e) => {
                        assert!(
                            matches!(&e, RotationError::Store(s) if s.is_retryable()),
                            "a fault must surface as a retryable store error, got {e:?}"
                        );
                        failed += 1;
                        assert!(failed < 200, "the store does not recover");
                        // The store gave up after its tries. If one of them committed before
                        // its connection died, the token is used and presenting it again is,
                        // for any store, indistinguishable from a replay (a grace window
                        // covers it, see docs/operations.md). This client stops there.
                        let hash = h.refresh_hash(&token);
                        let found = loop {
                            match h.store().find(TokenKind::RefreshToken, &[hash]).await {
                                Ok(found) => break found,
                                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                            }
                        };
                        if matches!(found, Some(Found::Credential { credential, .. }) if credential.used_at.is_some())
                        {
                            return (auth.family, None, failed);
                        }
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
            }
            (auth.family, Some(token), failed)
        });
    }
    let mut families = Vec::new();
    let (mut failures, mut ambiguous) = (0, 0);
    while let Some(r) = clients.join_next().await {
        let (family, token, failed) = r.unwrap();
        failures += failed;
        match token {
            Some(token) => families.push((family, token)),
            None => ambiguous += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    killer.await.unwrap();
    let stats = store.stats();
    eprintln!(
        "{} backends terminated, {} retries inside the store, {failures} requests failed \
         (retryable) after 6 tries, {ambiguous} of {FAMILIES} clients stopped on a token whose \
         rotation committed unreported",
        kills.load(Ordering::Relaxed),
        stats.retries,
    );
    assert!(ambiguous < FAMILIES, "every client stopped early");
    assert!(
        kills.load(Ordering::Relaxed) >= 10,
        "the fault was not injected"
    );
    assert!(stats.retries > 0, "no try was interrupted");

    // The pool recovers by itself: every family rotates again, first try or after a retry.
    for (_, token) in &mut families {
        let pair = h.refresh(token).await.unwrap();
        *token = pair.refresh_token;
        assert!(h.active(token).await.unwrap());
    }

    // Nothing half-done, nothing revoked.
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET search_path TO \"{}\"",
        schema.name
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        scalar(
            &mut conn,
            "SELECT count(*) FROM portcullis_refresh_tokens r WHERE r.used_at IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM portcullis_refresh_tokens s WHERE s.id = r.replaced_by_id)"
        )
        .await,
        0,
        "a used refresh token without its successor"
    );
    assert_eq!(
        scalar(
            &mut conn,
            "SELECT count(*) FROM portcullis_authorization_codes c WHERE c.used_at IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM portcullis_refresh_tokens s WHERE s.id = c.replaced_by_id)"
        )
        .await,
        0,
        "a used code without its successor"
    );
    assert_eq!(
        scalar(
            &mut conn,
            "SELECT count(*) FROM portcullis_refresh_tokens r WHERE r.generation > 1 AND NOT EXISTS \
             (SELECT 1 FROM portcullis_refresh_tokens p WHERE p.id = r.parent_id AND p.replaced_by_id = r.id)"
        )
        .await,
        0,
        "a successor its parent does not point at"
    );
    assert_eq!(
        scalar(
            &mut conn,
            "SELECT count(*) FROM portcullis_families WHERE revoked_at IS NOT NULL"
        )
        .await,
        0,
        "a fault revoked a family"
    );
    let per_family: Vec<(Vec<u8>, i64, i64, i64)> = sqlx::query_as(
        "SELECT f.id, \
           (SELECT count(*) FROM portcullis_refresh_tokens r WHERE r.family_id = f.id), \
           (SELECT count(*) FROM portcullis_access_tokens a WHERE a.family_id = f.id), \
           (SELECT count(*) FROM portcullis_refresh_tokens r WHERE r.family_id = f.id \
              AND r.used_at IS NULL AND r.revoked_at IS NULL) \
         FROM portcullis_families f",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(per_family.len(), FAMILIES);
    for (id, refresh, access, live) in per_family {
        // Every redemption stored exactly one refresh token and one access token, and the chain
        // has no gaps: one live token, every other one used.
        assert_eq!(refresh, access);
        assert_eq!(live, 1);
        if families
            .iter()
            .any(|(f, _)| f.as_bytes().as_slice() == id.as_slice())
        {
            assert!(refresh >= i64::try_from(ROTATIONS + 2).unwrap());
        }
    }
    let _ = conn.close().await;
    schema.drop_schema().await;
}
