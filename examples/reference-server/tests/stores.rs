//! The whole flow and the concurrent-refresh race on the shared stores, chosen by `--store`:
//! Redis (`REDIS_URL`) and PostgreSQL (`DATABASE_URL`). Without the variable a test says it is
//! skipped, unless `PORTCULLIS_REQUIRE_SERVICES=1`, where a missing service fails it
//! ([`common::service`]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn flow_on(store: &str, kind: &str, extra: &[&str]) {
    let mut args = vec!["--store", store];
    args.extend_from_slice(extra);
    let s = start(&args).await;
    let health: Value = s
        .http
        .get(s.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json_body()
        .await;
    assert_eq!(health, json!({"status": "ok", "store": kind}));
    let c = s.public_client().await;
    let rs = s.confidential_client("client_secret_post").await;
    let cookie = s.login("store-user").await;
    let (at, rt) = s.tokens(&c, &cookie, &["profile"]).await;
    assert_eq!(s.me(&at).await.status(), StatusCode::OK);
    let t: Value = s.refresh(&c, &rt).await.json_body().await;
    let rt2 = t["refresh_token"].as_str().unwrap().to_owned();
    // replay: invalid_grant and the family is revoked
    assert_eq!(
        error_of(s.refresh(&c, &rt).await, 400).await,
        "invalid_grant"
    );
    assert_eq!(s.introspect(&rs, &rt2).await, json!({"active": false}));
    // 50 concurrent refreshes of one token: one success, family revoked (grace 0)
    let (_, rt) = s.tokens(&c, &cookie, &["profile"]).await;
    let s = Arc::new(s);
    let c = Arc::new(c);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (s, c, rt) = (Arc::clone(&s), Arc::clone(&c), rt.clone());
        tasks.push(tokio::spawn(async move {
            let r = s.refresh(&c, &rt).await;
            (r.status(), r.json_body().await)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (status, v) = t.await.unwrap();
        match status {
            StatusCode::OK => winners.push(v),
            StatusCode::BAD_REQUEST => assert_eq!(v["error"], "invalid_grant"),
            other => panic!("{other}: {v}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let new_rt = winners[0]["refresh_token"].as_str().unwrap();
    assert_eq!(s.introspect(&rs, new_rt).await, json!({"active": false}));
    // logout through the store
    let (at, _) = s.tokens(&c, &cookie, &["profile"]).await;
    let r = s
        .http
        .post(s.url("/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.json_body().await["revoked_families"].as_u64().unwrap() >= 1);
    assert_eq!(s.me(&at).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_flow_on_redis() {
    if let Some(url) = service("REDIS_URL") {
        flow_on(&url, "redis", &[]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_flow_on_postgres() {
    if let Some(url) = service("DATABASE_URL") {
        flow_on(&url, "postgres", &["--migrate"]).await;
    }
}

#[tokio::test]
async fn an_unreachable_store_stops_the_start_with_one_line() {
    for store in ["redis://127.0.0.1:1", "postgres://nobody@127.0.0.1:1/none"] {
        let settings = settings(&["--store", store]);
        let err = reference_server::start(settings)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--store"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}

/// With `--store postgres://…` registered clients are kept in the database: a client registered
/// through one server is known to another server on the same database.
// covers 7591-3.2.1-a (on a shared store)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_registered_through_one_server_are_known_to_another_on_postgres() {
    let Some(url) = service("DATABASE_URL") else {
        return;
    };
    // One HMAC key for both, as instances of one deployment share it: the stored secret hashes
    // must verify on either server.
    let key = "shared-test-key-shared-test-key-shared!";
    let a = start(&["--store", &url, "--migrate", "--hmac-secret", key]).await;
    let b = start(&["--store", &url, "--hmac-secret", key]).await;
    let c = a.public_client().await;
    let token_req = |client_id: &str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", "pca_unknown".to_owned()),
            ("client_id", client_id.to_owned()),
            ("redirect_uri", CB.to_owned()),
            ("code_verifier", VERIFIER.to_owned()),
        ]
    };
    let as_pairs = |v: &[(&'static str, String)]| -> Vec<(&'static str, String)> { v.to_vec() };
    // On B the client authenticates (a bad code is invalid_grant, not invalid_client)...
    let req = as_pairs(&token_req(&c.id));
    let pairs: Vec<(&str, &str)> = req.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(error_of(b.token(&pairs).await, 400).await, "invalid_grant");
    // ...while a client nobody registered is still refused.
    let req = as_pairs(&token_req("pcl_00000000000000000000000000000000"));
    let pairs: Vec<(&str, &str)> = req.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(error_of(b.token(&pairs).await, 401).await, "invalid_client");
    // /authorize on B knows it too: an anonymous user is sent to sign in, not shown the
    // "not registered" page.
    let r = b.get_authorize(&b.authorize_query(&c.id, &[]), None).await;
    assert!(r.status().is_redirection(), "{}", r.status());
    // A confidential client's secret hash survives the round trip through the database: B
    // authenticates it with the right secret and refuses a wrong one.
    let rs = a.confidential_client("client_secret_post").await;
    assert_eq!(
        b.introspect(&rs, "pct_junk").await,
        json!({"active": false})
    );
    let wrong = form(&[
        ("token", "pct_junk"),
        ("client_id", &rs.id),
        ("client_secret", "pcs_wrong"),
    ]);
    let r = b
        .post_form("/introspect", &wrong, reqwest::header::HeaderMap::new())
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// `--store postgres://… --ratelimit-store redis://…`: two servers on one database share one
/// rate-limit budget through Redis (a separate logical database, so other tests' counters for
/// 127.0.0.1 do not mix in; a one-second window, so reruns start clean).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_servers_share_rate_limits_through_redis() {
    let (Some(db), Some(redis)) = (service("DATABASE_URL"), service("REDIS_URL")) else {
        return;
    };
    let redis = format!("{}/9", redis.trim_end_matches('/'));
    let args = |migrate: bool| {
        let mut a = vec![
            "--store",
            db.as_str(),
            "--ratelimit-store",
            redis.as_str(),
            "--token-rate-limit",
            "3/s",
        ];
        if migrate {
            a.push("--migrate");
        }
        a
    };
    let a = start_exact(&args(true), None).await;
    let b = start_exact(&args(false), None).await;
    let junk = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "pcr_junk"),
        ("client_id", "pcl_nobody"),
    ];
    // Three requests across both servers use up the shared burst of 3...
    for s in [&a, &b, &a] {
        assert_eq!(s.token(&junk).await.status(), StatusCode::UNAUTHORIZED);
    }
    // ...so the fourth is refused whichever server gets it.
    assert_eq!(b.token(&junk).await.status(), StatusCode::TOO_MANY_REQUESTS);
}
