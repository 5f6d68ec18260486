//! The verifier's strictness (RFC 8725) against a real IdP on loopback, with RS256, ES256 and
//! EdDSA keys generated here. Each hostile token is rejected with its own error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

mod common;

use std::time::Duration;

use common::*;
use portcullis_core::UnixTime;
use portcullis_jwks::testing::{TestKey, jwks};
use portcullis_jwks::{Algorithm, JwtVerifier, Malformed, RequiredClaim, TypRule, VerifyError};
use serde_json::{Value, json};

const ALGS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// An IdP serving one key per algorithm in `ALGS`, a verifier for it, and the keys.
async fn setup() -> (Idp, JwtVerifier, Vec<TestKey>, portcullis_core::ManualClock) {
    let keys: Vec<TestKey> = ALGS.iter().map(|a| key(*a, &format!("{a}-key"))).collect();
    let idp = Idp::start(jwks(&keys.iter().collect::<Vec<_>>())).await;
    let clock = clock();
    let v = verifier(&idp, &clock);
    (idp, v, keys, clock)
}

/// Sign arbitrary header and payload JSON text with `key`, bypassing any encoder.
fn sign_raw(key: &TestKey, header: &str, payload: &str) -> String {
    key.sign_raw(header, payload).unwrap()
}

async fn verdict(v: &JwtVerifier, token: &str) -> Result<Session, VerifyError> {
    v.verify::<Session>(token).await.map(|s| s.claims)
}

// covers 8725-3.8-a: the happy path reads typed claims, with iss and aud checked.
#[tokio::test]
async fn valid_tokens_verify_with_typed_claims() {
    let (idp, v, keys, _) = setup().await;
    for k in &keys {
        let verified = v
            .verify::<Session>(&k.sign(&claims()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            verified.claims,
            Session {
                sub: "user-42".into(),
                session_id: "s-1".into()
            }
        );
        let r = &verified.registered;
        assert_eq!(&*r.iss, ISS);
        assert_eq!(r.sub.as_deref(), Some("user-42"));
        assert_eq!(r.aud, [AUD, "another-app"]);
        assert_eq!(r.exp, UnixTime::from_secs(T0 + 3600));
        assert_eq!(r.iat, Some(UnixTime::from_secs(T0)));
        assert_eq!(verified.header.alg, k.alg());
        assert_eq!(verified.header.typ.as_deref(), Some("JWT"));
    }
    // Claims of any shape: a map.
    let any = v
        .verify::<serde_json::Map<String, Value>>(&keys[0].sign(&claims()).unwrap())
        .await
        .unwrap();
    assert_eq!(any.claims["session_id"], "s-1");
    assert_eq!(idp.requests(), 1);
}

// covers 8725-3.1-b: HS256 (and HS384/HS512) MACed with the RSA public key's PEM, its DER, or
// its modulus is rejected: HMAC is never allowed, whatever the key.
#[tokio::test]
async fn algorithm_confusion_hmac_with_the_public_key_is_rejected() {
    let (_idp, v, keys, _) = setup().await;
    let rsa = &keys[0];
    let pem = rsa.public_key_pem();
    let jwk = rsa.jwk();
    let n = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwk["n"].as_str().unwrap())
            .unwrap()
    };
    let der = {
        use base64::Engine as _;
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    };
    for secret in [pem.as_bytes(), pem.trim_end().as_bytes(), &der, &n] {
        for alg in [
            jsonwebtoken::Algorithm::HS256,
            jsonwebtoken::Algorithm::HS384,
            jsonwebtoken::Algorithm::HS512,
        ] {
            let mut header = jsonwebtoken::Header::new(alg);
            header.kid = rsa.kid().map(str::to_owned);
            let token = jsonwebtoken::encode(
                &header,
                &claims(),
                &jsonwebtoken::EncodingKey::from_secret(secret),
            )
            .unwrap();
            assert_eq!(
                verdict(&v, &token).await,
                Err(VerifyError::DisallowedAlgorithm)
            );
        }
    }
    // Even a verifier configured with every algorithm it can name: HMAC cannot be named.
    assert_eq!(Algorithm::from_name("HS256"), None);
}

// covers 8725-3.2-a: `alg: none` (in any case) and unsigned tokens are rejected.
#[tokio::test]
async fn alg_none_and_unsigned_tokens_are_rejected() {
    let (idp, v, keys, _) = setup().await;
    for none in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": none, "typ": "JWT", "kid": keys[0].kid()});
        for sig in [&b""[..], b"\0"] {
            let token = raw_token(&header, &claims(), sig);
            assert_eq!(
                verdict(&v, &token).await,
                Err(VerifyError::DisallowedAlgorithm),
                "{none}"
            );
        }
    }
    // A real algorithm, no signature.
    for k in &keys {
        let signed = k.sign(&claims()).unwrap();
        let unsigned = &signed[..=signed.rfind('.').unwrap()];
        assert_eq!(
            verdict(&v, unsigned).await,
            Err(VerifyError::Malformed(Malformed::MissingSignature))
        );
        let two_parts = &signed[..signed.rfind('.').unwrap()];
        assert_eq!(
            verdict(&v, two_parts).await,
            Err(VerifyError::Malformed(Malformed::Structure))
        );
    }
    // None of this needed a key.
    assert_eq!(idp.requests(), 0);
}

// covers 8725-3.10-a: kids holding path traversal or SQL are only ever compared, never used to
// build a path or a query; they are unknown keys, and cost at most one fetch.
#[tokio::test]
async fn kid_with_path_traversal_or_sql_is_rejected_safely() {
    let (idp, v, keys, _) = setup().await;
    let hostile = [
        "../../../../etc/passwd",
        "..%2f..%2f..%2fetc%2fpasswd",
        "/dev/null",
        "' OR '1'='1",
        "1; DROP TABLE keys;--",
        "\" UNION SELECT key FROM secrets --",
        "\u{0}",
        "RS256-key\u{0}",
        "RS256-key ",
        "rs256-key",
        "https://evil.example/jwks.json",
    ];
    for k in &keys {
        for kid in hostile {
            let mut header = k.header();
            header.kid = Some(kid.to_owned());
            let token = k.sign_with(&header, &claims()).unwrap();
            assert_eq!(
                verdict(&v, &token).await,
                Err(VerifyError::UnknownKey),
                "{kid:?}"
            );
        }
    }
    assert_eq!(idp.requests(), 1, "one fetch, then the cooldown");
    assert_eq!(idp.other_requests(), 0);
}

// covers 8725-3.10-a: `jku` and `x5u` are never fetched, and an embedded `jwk` is never
// trusted.
#[tokio::test]
async fn jku_x5u_and_embedded_jwk_are_ignored() {
    let (idp, v, keys, _) = setup().await;
    let real = &keys[2];
    let attacker = TestKey::generate(Algorithm::EdDSA, real.kid()).unwrap();
    let mut header = attacker.header();
    header.jku = Some(format!("{}/attacker-jwks.json", idp.base()));
    header.x5u = Some(format!("{}/attacker-cert.pem", idp.base()));
    header.jwk = Some(serde_json::from_value(attacker.jwk()).unwrap());
    let forged = attacker.sign_with(&header, &claims()).unwrap();
    assert_eq!(verdict(&v, &forged).await, Err(VerifyError::BadSignature));
    // The same headers on a token the real key signed change nothing.
    let genuine = real.sign_with(&header, &claims()).unwrap();
    assert!(verdict(&v, &genuine).await.is_ok());
    assert_eq!(idp.other_requests(), 0, "jku/x5u were never fetched");
}

// covers 8725-3.1-a: an algorithm off the allow-list, or not the key's single algorithm, is
// rejected.
#[tokio::test]
async fn algorithm_off_the_allow_list_or_not_the_keys_is_rejected() {
    let (idp, _, keys, clock) = setup().await;
    let rs_only = builder(&idp, &clock)
        .algorithms([Algorithm::RS256])
        .build()
        .unwrap();
    assert!(
        verdict(&rs_only, &keys[0].sign(&claims()).unwrap())
            .await
            .is_ok()
    );
    for k in &keys[1..] {
        assert_eq!(
            verdict(&rs_only, &k.sign(&claims()).unwrap()).await,
            Err(VerifyError::DisallowedAlgorithm)
        );
    }
    let v = verifier(&idp, &clock);
    // The RSA key is bound to RS256: a PS256 or RS512 signature by the same key is refused.
    let rsa = &keys[0];
    for alg in [
        jsonwebtoken::Algorithm::PS256,
        jsonwebtoken::Algorithm::RS512,
    ] {
        let mut header = rsa.header();
        header.alg = alg;
        let token = rsa.sign_with(&header, &claims()).unwrap();
        assert_eq!(
            verdict(&v, &token).await,
            Err(VerifyError::KeyMismatch),
            "{alg:?}"
        );
    }
    // The EC key's kid with an RSA algorithm.
    let mut header = rsa.header();
    header.kid = keys[1].kid().map(str::to_owned);
    let token = rsa.sign_with(&header, &claims()).unwrap();
    assert_eq!(verdict(&v, &token).await, Err(VerifyError::KeyMismatch));
    // An unknown algorithm name.
    let header = json!({"alg": "ES512", "kid": keys[1].kid()});
    assert_eq!(
        verdict(&v, &raw_token(&header, &claims(), &[1; 132])).await,
        Err(VerifyError::DisallowedAlgorithm)
    );
}

// covers 8725-3.1-a: a signature that does not verify is rejected.
#[tokio::test]
async fn tampered_tokens_are_rejected() {
    let (_idp, v, keys, _) = setup().await;
    for k in &keys {
        let token = k.sign(&claims()).unwrap();
        let (input, _) = token.rsplit_once('.').unwrap();
        let other = TestKey::generate(k.alg(), k.kid()).unwrap();
        let forged = other.sign(&claims()).unwrap();
        assert_eq!(verdict(&v, &forged).await, Err(VerifyError::BadSignature));
        // Claims swapped under a valid signature.
        let (h, _) = input.split_once('.').unwrap();
        let swapped = format!(
            "{h}.{}.{}",
            b64(claims_with(json!({"sub": "admin"})).to_string().as_bytes()),
            token.rsplit_once('.').unwrap().1
        );
        assert_eq!(verdict(&v, &swapped).await, Err(VerifyError::BadSignature));
        // Signatures of the wrong length: short, long (decoded on the heap), and longer than
        // any supported key's (refused unread).
        for len in [10, 600, 2000] {
            let wrong = format!("{input}.{}", b64(&vec![7; len]));
            assert_eq!(
                verdict(&v, &wrong).await,
                Err(VerifyError::BadSignature),
                "{len}"
            );
        }
        // Claims larger than the stack buffer verify the same.
        let big = k
            .sign(&claims_with(json!({"padding": "p".repeat(1500)})))
            .unwrap();
        assert_eq!(verdict(&v, &big).await.unwrap().sub, "user-42");
        let (big_input, _) = big.rsplit_once('.').unwrap();
        let big_forged = format!("{big_input}.{}", token.rsplit_once('.').unwrap().1);
        assert_eq!(
            verdict(&v, &big_forged).await,
            Err(VerifyError::BadSignature)
        );
    }
}

// covers 7519-4.1.4-a: rejected when now >= exp or now < nbf (or iat in the future), allowing
// only the leeway.
#[tokio::test]
async fn expiry_and_not_before_with_bounded_leeway() {
    let (idp, v, keys, clock) = setup().await;
    let leeway = 60;
    for k in &keys {
        let at = |changes: Value| k.sign(&claims_with(changes)).unwrap();
        // exp: valid up to (not including) exp + leeway.
        let t = at(json!({"exp": T0 - leeway + 1}));
        assert!(verdict(&v, &t).await.is_ok());
        let t = at(json!({"exp": T0 - leeway}));
        assert_eq!(verdict(&v, &t).await, Err(VerifyError::Expired));
        let t = at(json!({"exp": T0 - 86_400, "iat": T0 - 90_000, "nbf": T0 - 90_000}));
        assert_eq!(verdict(&v, &t).await, Err(VerifyError::Expired));
        // nbf: valid from nbf - leeway.
        let t = at(json!({"nbf": T0 + leeway}));
        assert!(verdict(&v, &t).await.is_ok());
        let t = at(json!({"nbf": T0 + leeway + 1}));
        assert_eq!(verdict(&v, &t).await, Err(VerifyError::NotYetValid));
        // iat in the future beyond the leeway.
        let t = at(json!({"iat": T0 + leeway + 1}));
        assert_eq!(verdict(&v, &t).await, Err(VerifyError::NotYetValid));
        // Fractional NumericDates (RFC 7519 §2) work too.
        let t = at(json!({"exp": (T0 - leeway) as f64 + 0.5}));
        assert!(verdict(&v, &t).await.is_ok());
        // No exp at all.
        let t = at(json!({"exp": null}));
        assert_eq!(verdict(&v, &t).await, Err(VerifyError::MissingClaim("exp")));
        // A non-numeric exp.
        let t = at(json!({"exp": "tomorrow"}));
        assert_eq!(
            verdict(&v, &t).await,
            Err(VerifyError::Malformed(Malformed::Claims))
        );
    }
    // The clock decides: the same token expires when the clock moves.
    let token = keys[2].sign(&claims()).unwrap();
    assert!(verdict(&v, &token).await.is_ok());
    clock.advance(Duration::from_secs(3600 + 59));
    assert!(verdict(&v, &token).await.is_ok());
    clock.advance(Duration::from_secs(1));
    assert_eq!(verdict(&v, &token).await, Err(VerifyError::Expired));
    // With no leeway, exp itself is already too late.
    let strict = builder(&idp, &clock)
        .leeway(Duration::ZERO)
        .build()
        .unwrap();
    clock.set(UnixTime::from_secs(T0 + 3600));
    assert_eq!(verdict(&strict, &token).await, Err(VerifyError::Expired));
    clock.set(UnixTime::from_secs(T0 + 3600).saturating_sub(Duration::from_micros(1)));
    assert!(verdict(&strict, &token).await.is_ok());
    // A leeway above the bound cannot be configured.
    assert!(
        builder(&idp, &clock)
            .leeway(Duration::from_secs(301))
            .build()
            .is_err()
    );
}

// covers 8725-3.8-a: a wrong or missing iss, and a missing or foreign aud, are rejected.
#[tokio::test]
async fn wrong_issuer_and_wrong_audience_are_rejected() {
    let (idp, v, keys, clock) = setup().await;
    for k in &keys {
        let at = |changes: Value| k.sign(&claims_with(changes)).unwrap();
        for iss in [
            json!("https://evil.example"),
            json!("https://idp.example/"),
            json!("HTTPS://IDP.EXAMPLE"),
            json!(null),
        ] {
            assert_eq!(
                verdict(&v, &at(json!({"iss": iss}))).await,
                Err(VerifyError::WrongIssuer),
                "{iss}"
            );
        }
        // An issuer that is not even a string.
        assert_eq!(
            verdict(&v, &at(json!({"iss": [ISS]}))).await,
            Err(VerifyError::Malformed(Malformed::Claims))
        );
        for aud in [
            json!("other-app"),
            json!(["other-app", "third"]),
            json!([]),
            json!(null),
            json!(""),
            json!("PORTCULLIS-APP"),
        ] {
            assert_eq!(
                verdict(&v, &at(json!({"aud": aud}))).await,
                Err(VerifyError::WrongAudience),
                "{aud}"
            );
        }
        assert!(verdict(&v, &at(json!({"aud": AUD}))).await.is_ok());
    }
    // Several accepted audiences: any one of them in the token will do.
    let two = builder(&idp, &clock)
        .audience("second-app")
        .build()
        .unwrap();
    let t = keys[0]
        .sign(&claims_with(json!({"aud": "second-app"})))
        .unwrap();
    assert!(verdict(&two, &t).await.is_ok());
    assert_eq!(verdict(&v, &t).await, Err(VerifyError::WrongAudience));
}

// covers 8725-3.11-a: explicit typing with mutually exclusive rules: an access token (at+jwt) is
// not accepted as a session token, and a session token is not accepted as an access token.
#[tokio::test]
async fn access_tokens_and_session_tokens_are_told_apart_by_typ() {
    let (idp, session_verifier, keys, clock) = setup().await;
    let access_verifier = builder(&idp, &clock)
        .typ(TypRule::Require(vec!["at+jwt".into()]))
        .build()
        .unwrap();
    for k in &keys {
        let typed = |typ: Option<&str>| {
            let mut h = k.header();
            h.typ = typ.map(str::to_owned);
            k.sign_with(&h, &claims()).unwrap()
        };
        for at in ["at+jwt", "application/at+jwt", "AT+JWT"] {
            assert_eq!(
                verdict(&session_verifier, &typed(Some(at))).await,
                Err(VerifyError::WrongType),
                "{at}"
            );
            assert!(
                verdict(&access_verifier, &typed(Some(at))).await.is_ok(),
                "{at}"
            );
        }
        for session in [Some("JWT"), None] {
            assert!(verdict(&session_verifier, &typed(session)).await.is_ok());
            assert_eq!(
                verdict(&access_verifier, &typed(session)).await,
                Err(VerifyError::WrongType)
            );
        }
    }
}

// covers 8725-3.1-a: unknown `crit` extensions are rejected (RFC 7515 §4.1.11).
#[tokio::test]
async fn critical_headers_are_rejected() {
    let (_idp, v, keys, _) = setup().await;
    for k in &keys {
        let mut h = k.header();
        h.crit = Some(vec!["exp".into()]);
        assert_eq!(
            verdict(&v, &k.sign_with(&h, &claims()).unwrap()).await,
            Err(VerifyError::CriticalHeader)
        );
        let header = format!(
            r#"{{"alg":"{}","kid":"{}","crit":null}}"#,
            k.alg(),
            k.kid().unwrap()
        );
        let t = sign_raw(k, &header, &claims().to_string());
        assert_eq!(verdict(&v, &t).await, Err(VerifyError::CriticalHeader));
    }
}

// covers (no STANDARDS id) issue 4: a maximum token length is checked before any decoding or
// crypto (the cache stays cold).
#[tokio::test]
async fn oversized_tokens_are_rejected_before_any_work() {
    let (idp, v, keys, clock) = setup().await;
    let max = portcullis_jwks::defaults::DEFAULT_MAX_TOKEN_LEN;
    let big = claims_with(json!({"padding": "x".repeat(max)}));
    for k in &keys {
        let token = k.sign(&big).unwrap();
        assert_eq!(
            verdict(&v, &token).await,
            Err(VerifyError::TooLarge {
                len: token.len(),
                max
            })
        );
    }
    let junk = "!".repeat(max + 1);
    assert_eq!(
        verdict(&v, &junk).await,
        Err(VerifyError::TooLarge { len: max + 1, max })
    );
    // At the limit it is parsed (and found malformed).
    assert_eq!(
        verdict(&v, &"!".repeat(max)).await,
        Err(VerifyError::Malformed(Malformed::Structure))
    );
    assert_eq!(idp.requests(), 0, "no key was fetched");
    assert_eq!(v.stats(), Default::default());
    // A smaller limit.
    let small = builder(&idp, &clock).max_token_len(100).build().unwrap();
    let token = keys[2].sign(&claims()).unwrap();
    assert!(token.len() > 100);
    assert_eq!(
        verdict(&small, &token).await,
        Err(VerifyError::TooLarge {
            len: token.len(),
            max: 100
        })
    );
}

// covers 8725-3.8-a: required claims are configurable; the caller's own claims are required by
// its type.
#[tokio::test]
async fn required_claims() {
    let (idp, v, keys, clock) = setup().await;
    let k = &keys[1];
    let at = |changes: Value| k.sign(&claims_with(changes)).unwrap();
    assert_eq!(
        verdict(&v, &at(json!({"sub": null}))).await,
        Err(VerifyError::MissingClaim("sub"))
    );
    assert!(verdict(&v, &at(json!({"jti": null}))).await.is_ok());
    let strict = builder(&idp, &clock)
        .require(RequiredClaim::Jti)
        .require(RequiredClaim::Iat)
        .require(RequiredClaim::Nbf)
        .build()
        .unwrap();
    assert_eq!(
        verdict(&strict, &at(json!({}))).await,
        Err(VerifyError::MissingClaim("jti"))
    );
    assert!(verdict(&strict, &at(json!({"jti": "abc"}))).await.is_ok());
    assert_eq!(
        verdict(&strict, &at(json!({"jti": "abc", "iat": null}))).await,
        Err(VerifyError::MissingClaim("iat"))
    );
    assert_eq!(
        verdict(&strict, &at(json!({"jti": "abc", "nbf": null}))).await,
        Err(VerifyError::MissingClaim("nbf"))
    );
    let lax = builder(&idp, &clock).allow_missing_sub().build().unwrap();
    let no_sub = at(json!({"sub": null}));
    let r = lax.verify::<Value>(&no_sub).await.unwrap();
    assert_eq!(r.registered.sub, None);
    // Session requires `session_id` and `sub` by its type.
    assert_eq!(
        verdict(&lax, &at(json!({"session_id": null}))).await,
        Err(VerifyError::Malformed(Malformed::Claims))
    );
}

// covers 8725-3.2-a: malformed tokens are rejected as malformed, before any key is needed.
#[tokio::test]
async fn malformed_tokens() {
    let (idp, v, keys, _) = setup().await;
    let k = &keys[2];
    let m = |x| Err(VerifyError::Malformed(x));
    for (token, expected) in [
        ("", m(Malformed::Structure)),
        ("abc", m(Malformed::Structure)),
        ("a.b.c.d", m(Malformed::Structure)),
        (".b.c", m(Malformed::Structure)),
        ("a..c", m(Malformed::Structure)),
        ("a*.b.c", m(Malformed::Encoding)),
        ("eyJhbGciOiJFZERTQSJ9=.b.c", m(Malformed::Encoding)),
    ] {
        assert_eq!(verdict(&v, token).await, expected, "{token:?}");
    }
    let header_cases = [
        "not json",
        "[]",
        "{}",
        r#"{"alg":7}"#,
        r#"{"alg":"EdDSA","alg":"EdDSA"}"#,
        r#"{"alg":"EdDSA","kid":5}"#,
        r#"{"alg":"EdDSA","typ":["JWT"]}"#,
    ];
    for header in header_cases {
        let t = format!(
            "{}.{}.{}",
            b64(header.as_bytes()),
            b64(b"{}"),
            b64(&[0; 64])
        );
        assert_eq!(verdict(&v, &t).await, m(Malformed::Header), "{header}");
    }
    assert_eq!(idp.requests(), 0);
    // Claims that are not a JSON object, or repeat a claim, under a valid signature.
    let header = format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, k.kid().unwrap());
    let dup = r#"{"iss":"https://idp.example","iss":"https://evil.example","aud":"portcullis-app","sub":"u","exp":1700003600,"session_id":"s"}"#;
    for payload in ["not json", "[1,2]", "\"s\"", dup] {
        let t = sign_raw(k, &header, payload);
        assert_eq!(verdict(&v, &t).await, m(Malformed::Claims), "{payload}");
    }
}

#[tokio::test]
async fn verify_with_keys_needs_no_cache() {
    let k = key(Algorithm::ES256, "k");
    let set = portcullis_jwks::KeySet::from_json(jwks(&[&k]).as_bytes()).unwrap();
    let rules = portcullis_jwks::TokenRules::builder(ISS)
        .audience(AUD)
        .build()
        .unwrap();
    let now = UnixTime::from_secs(T0);
    let ok = rules
        .verify_with_keys::<Session>(&k.sign(&claims()).unwrap(), &set, now)
        .unwrap();
    assert_eq!(ok.claims.sub, "user-42");
    let later = UnixTime::from_secs(T0 + 7200);
    assert_eq!(
        rules
            .verify_with_keys::<Session>(&k.sign(&claims()).unwrap(), &set, later)
            .unwrap_err(),
        VerifyError::Expired
    );
}
