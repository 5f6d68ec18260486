//! The key cache against a real IdP on loopback: rotation, outages, floods, concurrency,
//! `Cache-Control`, and the HTTP source's limits. Time comes from a manual clock; nothing sleeps
//! to make keys expire.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use portcullis_jwks::defaults::{
    DEFAULT_COOLDOWN, DEFAULT_MAX_STALENESS, DEFAULT_MAX_TTL, DEFAULT_MIN_TTL, DEFAULT_TTL,
};
use portcullis_jwks::testing::{TestKey, jwks};
use portcullis_jwks::{Algorithm, CacheConfig, FetchError, JwtVerifier, SkipReason, VerifyError};

// covers 8725-3.8-a: a key that does not (yet) belong to the issuer's set is rejected; once the
// IdP publishes it, one fetch brings it in.
#[tokio::test]
async fn rotation_new_kid_verifies_after_exactly_one_fetch() {
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let old = key(alg, "2024-01");
        let new = key(alg, "2024-02");
        let idp = Idp::start(jwks(&[&old])).await;
        let clock = clock();
        let v = verifier(&idp, &clock);

        let s = v
            .verify::<Session>(&old.sign(&claims()).unwrap())
            .await
            .unwrap();
        assert_eq!(s.claims.sub, "user-42");
        assert_eq!(idp.requests(), 1);

        // The IdP rotates: it publishes the new key and starts signing with it.
        idp.set_jwks(jwks(&[&old, &new]));
        clock.advance(DEFAULT_COOLDOWN);
        let token = new.sign(&claims()).unwrap();
        let s = v.verify::<Session>(&token).await.unwrap();
        assert_eq!(s.header.kid.as_deref(), Some("2024-02"), "{alg}");
        assert_eq!(
            idp.requests(),
            2,
            "exactly one fetch for the new kid ({alg})"
        );
        // From now on both keys verify from the cache.
        v.verify::<Session>(&token).await.unwrap();
        v.verify::<Session>(&old.sign(&claims()).unwrap())
            .await
            .unwrap();
        assert_eq!(idp.requests(), 2);
        let st = v.stats();
        assert_eq!((st.fetches, st.fetch_errors, st.hits), (2, 0, 2));
    }
}

// covers 8725-3.8-a: a token signed by a key the IdP never published is rejected.
#[tokio::test]
async fn a_key_outside_the_issuers_set_is_rejected() {
    let ours = key(Algorithm::ES256, "k");
    let foreign = key(Algorithm::ES256, "k"); // same kid, another key
    let idp = Idp::start(jwks(&[&ours])).await;
    let v = verifier(&idp, &clock());
    let err = v
        .verify::<Session>(&foreign.sign(&claims()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err, VerifyError::BadSignature);
    let other_kid = key(Algorithm::ES256, "other");
    let err = v
        .verify::<Session>(&other_kid.sign(&claims()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err, VerifyError::UnknownKey);
}

// covers (no STANDARDS id) issue 4: cached keys keep serving while the IdP is down, up to the
// maximum staleness; then "keys unavailable", a 503.
#[tokio::test]
async fn idp_down_stale_keys_serve_up_to_max_staleness_then_keys_unavailable() {
    let k = key(Algorithm::RS256, "k");
    let idp = Idp::start(jwks(&[&k])).await;
    idp.update(|r| r.cache_control = Some("max-age=600".into()));
    let clock = clock();
    let v = verifier(&idp, &clock);
    let token = k
        .sign(&claims_with(serde_json::json!({"exp": T0 + 86_400})))
        .unwrap();
    v.verify::<Session>(&token).await.unwrap();
    assert_eq!(idp.requests(), 1);

    idp.go_down();
    // Expired: a refresh is tried, fails, and the stale key serves.
    clock.advance(Duration::from_secs(600));
    v.verify::<Session>(&token).await.unwrap();
    assert_eq!(idp.requests(), 2);
    assert_eq!(v.stats().stale_serves, 1);
    assert_eq!(v.stats().fetch_errors, 1);
    // Within the cooldown no new request is made; the stale key keeps serving.
    for _ in 0..10 {
        v.verify::<Session>(&token).await.unwrap();
    }
    assert_eq!(idp.requests(), 2);
    // After each cooldown, one retry.
    clock.advance(DEFAULT_COOLDOWN);
    v.verify::<Session>(&token).await.unwrap();
    assert_eq!(idp.requests(), 3);
    // Up to the last microsecond of the maximum staleness...
    clock.set(
        portcullis_core::UnixTime::from_secs(T0 + 600)
            .saturating_add(DEFAULT_MAX_STALENESS)
            .saturating_sub(Duration::from_micros(1)),
    );
    v.verify::<Session>(&token).await.unwrap();
    let before = idp.requests();
    assert_eq!(before, 4);
    // ...and not one more: keys unavailable, 503.
    clock.advance(Duration::from_micros(1));
    let err = v.verify::<Session>(&token).await.unwrap_err();
    assert!(
        matches!(&err, VerifyError::KeysUnavailable(FetchError::CoolingDown(e)) if **e == FetchError::Status(503)),
        "{err:?}"
    );
    assert_eq!(err.oauth_error().status(), 503);
    clock.advance(DEFAULT_COOLDOWN);
    let err = v.verify::<Session>(&token).await.unwrap_err();
    assert_eq!(err, VerifyError::KeysUnavailable(FetchError::Status(503)));
    assert_eq!(idp.requests(), before + 1);

    // The IdP comes back: the next fetch after the cooldown restores service.
    idp.set_jwks(jwks(&[&k]));
    clock.advance(DEFAULT_COOLDOWN);
    v.verify::<Session>(&token).await.unwrap();
    assert_eq!(idp.requests(), before + 2);
}

// covers (no STANDARDS id) issue 4: a cold cache and 1,000 concurrent verifications: exactly
// one fetch (single flight).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_cache_thousand_concurrent_verifications_one_fetch() {
    let k = key(Algorithm::EdDSA, "k");
    let idp = Idp::start(jwks(&[&k])).await;
    // A slow IdP, so that all verifications arrive while the fetch is under way.
    idp.update(|r| r.delay = Duration::from_millis(200));
    let v = Arc::new(verifier(&idp, &clock()));
    let token = Arc::new(k.sign(&claims()).unwrap());
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (v, token) = (Arc::clone(&v), Arc::clone(&token));
            tokio::spawn(async move { v.verify::<Session>(&token).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().claims.session_id, "s-1");
    }
    assert_eq!(idp.requests(), 1);
    let st = v.stats();
    assert_eq!(st.fetches, 1);
    assert_eq!(st.misses + st.hits, 1000);
}

// covers 8725-3.10-a: 10,000 tokens with random unknown kids inside one cooldown cost the IdP at
// most one fetch, and each is rejected as an unknown key.
#[tokio::test]
async fn ten_thousand_random_unknown_kids_within_a_cooldown_at_most_one_fetch() {
    let k = key(Algorithm::ES256, "real");
    let idp = Idp::start(jwks(&[&k])).await;
    let clock = clock();
    let v = verifier(&idp, &clock);
    let mut random = [0u8; 16];
    for i in 0..10_000u32 {
        getrandom::fill(&mut random).unwrap();
        // The signature is never looked at: the kid is unknown.
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": hex::encode(random)});
        let token = raw_token(&header, &claims(), &[7u8; 64]);
        assert_eq!(
            v.verify::<Session>(&token).await.unwrap_err(),
            VerifyError::UnknownKey
        );
        if i % 1000 == 0 {
            clock.advance(Duration::from_millis(2)); // all within one cooldown
        }
    }
    assert!(idp.requests() <= 1, "{} fetches", idp.requests());
    assert_eq!(v.stats().cooldown_skips, 9_999);
    // The real key still verifies, from the cache.
    v.verify::<Session>(&k.sign(&claims()).unwrap())
        .await
        .unwrap();
    assert_eq!(idp.requests(), 1);
}

// covers (no STANDARDS id) issue 4: `Cache-Control: max-age` is honoured and clamped to
// [min, max]; without it the default TTL applies.
#[tokio::test]
async fn cache_control_max_age_is_honoured_and_clamped() {
    let k = key(Algorithm::EdDSA, "k");
    let cases: [(Option<&str>, Duration); 6] = [
        (Some("public, max-age=1800"), Duration::from_secs(1800)),
        (Some("max-age=5"), DEFAULT_MIN_TTL),
        (Some("no-store"), DEFAULT_MIN_TTL),
        (Some("max-age=31536000"), DEFAULT_MAX_TTL),
        (Some("max-age=oops"), DEFAULT_TTL),
        (None, DEFAULT_TTL),
    ];
    for (cache_control, ttl) in cases {
        let idp = Idp::start(jwks(&[&k])).await;
        idp.update(|r| r.cache_control = cache_control.map(str::to_owned));
        let clock = clock();
        let v = verifier(&idp, &clock);
        let token = k
            .sign(&claims_with(serde_json::json!({"exp": T0 + 10 * 86_400})))
            .unwrap();
        v.verify::<Session>(&token).await.unwrap();
        let (fetched, expires) = v.cache().freshness().unwrap();
        assert_eq!(
            expires.saturating_duration_since(fetched),
            ttl,
            "{cache_control:?}"
        );
        // Fresh until the last microsecond: no fetch.
        clock.advance(ttl - Duration::from_micros(1));
        v.verify::<Session>(&token).await.unwrap();
        assert_eq!(idp.requests(), 1, "{cache_control:?}");
        // Then one.
        clock.advance(Duration::from_micros(1));
        v.verify::<Session>(&token).await.unwrap();
        assert_eq!(idp.requests(), 2, "{cache_control:?}");
    }
}

// covers (no STANDARDS id) issue 4: custom TTL bounds clamp the same way.
#[tokio::test]
async fn custom_ttl_bounds() {
    let k = key(Algorithm::EdDSA, "k");
    let idp = Idp::start(jwks(&[&k])).await;
    idp.update(|r| r.cache_control = Some("max-age=86400".into()));
    let clock = clock();
    let v = builder(&idp, &clock)
        .cache_config(
            CacheConfig::default()
                .ttl_bounds(Duration::from_secs(60), Duration::from_secs(120))
                .default_ttl(Duration::from_secs(60)),
        )
        .build()
        .unwrap();
    v.verify::<Session>(&k.sign(&claims()).unwrap())
        .await
        .unwrap();
    let (f, e) = v.cache().freshness().unwrap();
    assert_eq!(e.saturating_duration_since(f), Duration::from_secs(120));
}

// covers (no STANDARDS id) issue 4: a JWKS with one key and no kids works, for tokens without a
// kid.
#[tokio::test]
async fn single_key_without_kids() {
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let k = TestKey::generate(alg, None).unwrap();
        let idp = Idp::start(jwks(&[&k])).await;
        let v = verifier(&idp, &clock());
        let token = k.sign(&claims()).unwrap();
        let s = v.verify::<Session>(&token).await.unwrap();
        assert_eq!(s.header.kid, None);
        assert_eq!(s.header.alg, alg);
    }
}

// covers 8725-3.1-a: unusable keys are skipped and reported, and do not take the set down.
#[tokio::test]
async fn unusable_keys_are_skipped_and_reported() {
    let good = key(Algorithm::ES256, "good");
    let mut enc = key(Algorithm::RS256, "enc").jwk();
    enc["use"] = "enc".into();
    let doc = serde_json::json!({"keys": [
        enc,
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"},
        {"kty": "RSA", "kid": "broken", "n": "!!!", "e": "AQAB"},
        good.jwk(),
    ]});
    let idp = Idp::start(doc.to_string()).await;
    let v = verifier(&idp, &clock());
    v.verify::<Session>(&good.sign(&claims()).unwrap())
        .await
        .unwrap();
    let skipped: Vec<_> = v
        .cache()
        .skipped_keys()
        .into_iter()
        .map(|s| (s.kid.unwrap(), s.reason))
        .collect();
    assert_eq!(
        skipped,
        vec![
            ("enc".to_owned(), SkipReason::NotForSignature),
            ("hmac".to_owned(), SkipReason::Symmetric),
            ("p521".to_owned(), SkipReason::UnsupportedCurve),
            ("broken".to_owned(), SkipReason::Malformed),
        ]
    );
    assert_eq!(v.stats().skipped_keys, 4);
}

// covers (no STANDARDS id) issue 4: a JWKS of junk is rejected with "keys unavailable", and a
// later junk response never replaces usable keys.
#[tokio::test]
async fn junk_jwks_is_keys_unavailable_and_never_replaces_good_keys() {
    let k = key(Algorithm::RS256, "k");
    let token = k.sign(&claims()).unwrap();
    type Expect = fn(&FetchError) -> bool;
    let junk_docs: [(&str, Expect); 4] = [
        ("<html>hello</html>", |e| {
            matches!(e, FetchError::InvalidJwks(_))
        }),
        (r#"{"keys": "nope"}"#, |e| {
            matches!(e, FetchError::InvalidJwks(_))
        }),
        (
            r#"{"keys": [{"kty":"oct","k":"AA"}, 42, null]}"#,
            |e| matches!(e, FetchError::NoUsableKeys { skipped } if skipped.len() == 3),
        ),
        (r#"{"keys": []}"#, |e| {
            matches!(e, FetchError::NoUsableKeys { .. })
        }),
    ];
    for (doc, expected) in junk_docs {
        let idp = Idp::start(doc.to_owned()).await;
        let v = verifier(&idp, &clock());
        match v.verify::<Session>(&token).await.unwrap_err() {
            VerifyError::KeysUnavailable(e) => assert!(expected(&e), "{doc}: {e:?}"),
            other => panic!("{doc}: {other:?}"),
        }
    }
    // Good keys, then junk at the next refresh: the good keys stay (and serve stale).
    let idp = Idp::start(jwks(&[&k])).await;
    let clock = clock();
    let v = verifier(&idp, &clock);
    v.verify::<Session>(&token).await.unwrap();
    idp.set_jwks("{\"keys\":[]}".into());
    clock.advance(DEFAULT_TTL);
    v.verify::<Session>(&token).await.unwrap();
    assert_eq!((idp.requests(), v.stats().stale_serves), (2, 1));
}

// covers (no STANDARDS id) issue 4: no lock is held across the HTTP call; tokens with known keys
// keep verifying while a fetch for an unknown kid is under way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_keys_verify_while_a_fetch_is_under_way() {
    let k = key(Algorithm::EdDSA, "k");
    let idp = Idp::start(jwks(&[&k])).await;
    let clock = clock();
    let v = Arc::new(verifier(&idp, &clock));
    let token = k.sign(&claims()).unwrap();
    v.verify::<Session>(&token).await.unwrap();

    idp.update(|r| r.delay = Duration::from_secs(4));
    clock.advance(DEFAULT_COOLDOWN);
    let unknown = {
        let mut h = k.header();
        h.kid = Some("new".into());
        k.sign_with(&h, &claims()).unwrap()
    };
    let slow = {
        let v = Arc::clone(&v);
        tokio::spawn(async move { v.verify::<Session>(&unknown).await })
    };
    idp.wait_for_requests(2).await;
    // The fetch is under way (the IdP is holding it): a known kid verifies at once.
    let fast = tokio::time::timeout(Duration::from_millis(1500), v.verify::<Session>(&token)).await;
    assert!(
        fast.expect("a known kid must not wait for the fetch")
            .is_ok()
    );
    assert!(!slow.is_finished());
    assert_eq!(slow.await.unwrap().unwrap_err(), VerifyError::UnknownKey);
}

// covers (no STANDARDS id) issue 4: expired keys keep serving while their refresh is under way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_keys_serve_while_the_refresh_is_under_way() {
    let k = key(Algorithm::ES256, "k");
    let idp = Idp::start(jwks(&[&k])).await;
    let clock = clock();
    let v = Arc::new(verifier(&idp, &clock));
    let token = k.sign(&claims()).unwrap();
    v.verify::<Session>(&token).await.unwrap();

    idp.update(|r| r.delay = Duration::from_secs(4));
    clock.advance(DEFAULT_TTL);
    let leader = {
        let (v, token) = (Arc::clone(&v), token.clone());
        tokio::spawn(async move { v.verify::<Session>(&token).await })
    };
    idp.wait_for_requests(2).await;
    let served =
        tokio::time::timeout(Duration::from_millis(1500), v.verify::<Session>(&token)).await;
    assert!(served.expect("must not wait").is_ok());
    assert_eq!(v.stats().stale_serves, 1);
    leader.await.unwrap().unwrap();
    assert_eq!(idp.requests(), 2);
}

// covers (no STANDARDS id) issue 4: a caller that gives up does not abandon the fetch for the
// others (it runs in its own task).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_caller_does_not_abandon_the_fetch() {
    let k = key(Algorithm::EdDSA, "k");
    let idp = Idp::start(jwks(&[&k])).await;
    idp.update(|r| r.delay = Duration::from_millis(300));
    let v = Arc::new(verifier(&idp, &clock()));
    let token = k.sign(&claims()).unwrap();
    let first = {
        let (v, token) = (Arc::clone(&v), token.clone());
        tokio::spawn(async move { v.verify::<Session>(&token).await })
    };
    idp.wait_for_requests(1).await;
    first.abort();
    v.verify::<Session>(&token).await.unwrap();
    assert_eq!(idp.requests(), 1);
}

// covers (no STANDARDS id) issue 4: optional background refresh fetches before expiry, so no
// request waits for it.
#[tokio::test]
async fn background_refresh_refetches_before_expiry() {
    let k = key(Algorithm::EdDSA, "k");
    let idp = Idp::start(jwks(&[&k])).await;
    let clock = clock();
    let v = builder(&idp, &clock)
        .cache_config(CacheConfig::default().background_check(Duration::from_millis(10)))
        .build()
        .unwrap();
    let refresher = v.cache().spawn_background_refresh();
    // Nothing cached: fetched at once.
    wait_until(|| v.cache().freshness().is_some()).await;
    assert_eq!(idp.requests(), 1);
    let (_, expires) = v.cache().freshness().unwrap();
    // Not yet due: nothing happens.
    clock.advance(DEFAULT_TTL - Duration::from_secs(31));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(idp.requests(), 1);
    // Within the refresh-ahead window: refetched while the keys are still fresh.
    clock.advance(Duration::from_secs(2));
    wait_until(|| v.cache().freshness().is_some_and(|(_, e)| e > expires)).await;
    assert_eq!(idp.requests(), 2);
    assert_eq!(v.stats().misses, 0);
    v.verify::<Session>(
        &k.sign(&claims_with(serde_json::json!({"exp": T0 + 7200})))
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(v.stats().hits, 1);
    drop(refresher);
}

// covers (no STANDARDS id) issue 4: only a 200 with a JSON body is accepted, the body is capped,
// redirects are not followed, and a slow IdP times out.
#[tokio::test]
async fn http_source_accepts_only_a_json_200_within_limits() {
    let k = key(Algorithm::EdDSA, "k");
    let token = k.sign(&claims()).unwrap();
    let good = jwks(&[&k]);
    let idp = Idp::start(good.clone()).await;
    let fresh = || builder(&idp, &clock());
    idp.update(|r| r.status = 404);
    assert_eq!(fetch_error(fresh(), &token).await, FetchError::Status(404));
    idp.set_jwks(good.clone());
    idp.update(|r| {
        r.status = 302;
        r.location = Some("https://evil.example/jwks.json".into());
    });
    assert_eq!(fetch_error(fresh(), &token).await, FetchError::Status(302));
    idp.set_jwks(good.clone());
    idp.update(|r| r.content_type = Some("text/html".into()));
    assert_eq!(fetch_error(fresh(), &token).await, FetchError::NotJson);
    idp.update(|r| r.content_type = None);
    assert_eq!(fetch_error(fresh(), &token).await, FetchError::NotJson);
    idp.set_jwks(good.clone());
    assert_eq!(
        fetch_error(fresh().max_jwks_bytes(good.len() - 1), &token).await,
        FetchError::TooLarge {
            max: good.len() - 1
        }
    );
    idp.update(|r| r.delay = Duration::from_secs(2));
    assert_eq!(
        fetch_error(fresh().http_timeout(Duration::from_millis(200)), &token).await,
        FetchError::Timeout
    );
    // And the same server, answering properly, works; the JWK set content type too.
    idp.set_jwks(good.clone());
    idp.update(|r| r.content_type = Some("application/jwk-set+json; charset=utf-8".into()));
    let v = builder(&idp, &clock())
        .max_jwks_bytes(good.len())
        .build()
        .unwrap();
    v.verify::<Session>(&token).await.unwrap();
}

// covers (no STANDARDS id) issue 4: a body without a Content-Length (chunked) is capped while
// it is read: an endless response costs at most the cap.
#[tokio::test]
async fn chunked_body_is_capped_while_reading() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 4096];
        let _ = socket.read(&mut request).await.unwrap();
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(b"b\r\n{\"keys\":[  \r\n").await.unwrap();
        // At most 10 MiB of padding (bounded), unless the client hangs up first.
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
        let mut sent = 0usize;
        while sent < 10 << 20 {
            if socket.write_all(chunk.as_bytes()).await.is_err() {
                return sent;
            }
            sent += 64 * 1024;
        }
        sent
    });
    let v = JwtVerifier::builder(ISS)
        .jwks_url(url)
        .audience(AUD)
        .clock(Arc::new(clock()))
        .build()
        .unwrap();
    let k = key(Algorithm::EdDSA, "k");
    let err = v
        .verify::<Session>(&k.sign(&claims()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        VerifyError::KeysUnavailable(FetchError::TooLarge {
            max: portcullis_jwks::defaults::DEFAULT_MAX_JWKS_BYTES
        })
    );
    drop(v);
    let sent = server.await.unwrap();
    assert!(
        sent < 10 << 20,
        "the client stopped reading early ({sent} bytes sent)"
    );
}

// covers (no STANDARDS id) issue 4: warming the cache by hand respects the cooldown too.
#[tokio::test]
async fn manual_refresh_respects_the_cooldown() {
    let k = key(Algorithm::EdDSA, "k");
    let idp = Idp::start(jwks(&[&k])).await;
    let clock = clock();
    let v = verifier(&idp, &clock);
    assert_eq!(v.cache().refresh().await, Ok(()));
    assert_eq!(
        v.cache().refresh().await,
        Ok(()),
        "within the cooldown: nothing to do"
    );
    assert_eq!(idp.requests(), 1);
    idp.go_down();
    clock.advance(DEFAULT_COOLDOWN);
    assert_eq!(v.cache().refresh().await, Err(FetchError::Status(503)));
    assert_eq!(
        v.cache().refresh().await,
        Err(FetchError::CoolingDown(Box::new(FetchError::Status(503))))
    );
    assert_eq!(idp.requests(), 2);
    // The keys fetched first are still fresh and still serve.
    v.verify::<Session>(&k.sign(&claims()).unwrap())
        .await
        .unwrap();
}

// covers (no STANDARDS id) issue 4: an IdP that cannot be reached at all.
#[tokio::test]
async fn unreachable_idp_is_keys_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    drop(listener);
    let v = JwtVerifier::builder(ISS)
        .jwks_url(url)
        .audience(AUD)
        .clock(Arc::new(clock()))
        .build()
        .unwrap();
    let k = key(Algorithm::EdDSA, "k");
    let err = v
        .verify::<Session>(&k.sign(&claims()).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, VerifyError::KeysUnavailable(FetchError::Transport(_))),
        "{err:?}"
    );
    assert!(err.is_unavailable());
    // And within the cooldown, no new attempt: the same failure, cooling down.
    let err = v
        .verify::<Session>(&k.sign(&claims()).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::KeysUnavailable(FetchError::CoolingDown(_))
        ),
        "{err:?}"
    );
    assert_eq!(v.stats().fetches, 1);
}

#[test]
fn verify_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let v = JwtVerifier::builder(ISS)
        .audience(AUD)
        .key_source(Arc::new(portcullis_jwks::StaticSource::new("{}")))
        .build()
        .unwrap();
    let fut = v.verify::<Session>("a.b.c");
    assert_send(&fut);
}

async fn fetch_error(builder: portcullis_jwks::JwtVerifierBuilder, token: &str) -> FetchError {
    match builder
        .build()
        .unwrap()
        .verify::<Session>(token)
        .await
        .unwrap_err()
    {
        VerifyError::KeysUnavailable(e) => e,
        other => panic!("{other:?}"),
    }
}

/// Wait (bounded, in real time) for work under way in other tasks.
async fn wait_until(cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached in 5 s");
}
