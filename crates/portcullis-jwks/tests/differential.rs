//! Our verdicts against jsonwebtoken's own on the same tokens.
//!
//! This crate verifies with keys parsed once into aws-lc-rs instead of going through
//! `jsonwebtoken::decode`; these tests check that doing so loosens nothing. Both sides get the
//! same key, issuer, audience, leeway and required claims, and time from the system clock (which
//! jsonwebtoken reads itself), with every token's times far from the edges. For every token,
//! either both accept (with the same claims) or both reject; the only exceptions are the checks
//! this crate adds on purpose (`typ`, `crit`, `iat` in the future), where it must be the one
//! that rejects.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::sync::OnceLock;

use jsonwebtoken::{DecodingKey, Validation, jwk::Jwk};
use portcullis_core::{Clock, SystemClock};
use portcullis_jwks::testing::{TestKey, jwks};
use portcullis_jwks::{Algorithm, KeySet, TokenRules};
use proptest::prelude::*;
use serde_json::{Value, json};

const ISS: &str = "https://idp.example";
const AUD: &str = "portcullis-app";

struct Fixture {
    keys: Vec<TestKey>,
    set: KeySet,
    rules: TokenRules,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let keys: Vec<TestKey> = Algorithm::ALL
            .iter()
            .map(|a| TestKey::generate(*a, Some(&format!("{a}"))).unwrap())
            .collect();
        let set = KeySet::from_json(jwks(&keys.iter().collect::<Vec<_>>()).as_bytes()).unwrap();
        let rules = TokenRules::builder(ISS).audience(AUD).build().unwrap();
        Fixture { keys, set, rules }
    })
}

fn now() -> u64 {
    SystemClock.now().as_secs()
}

fn claims() -> Value {
    let now = now();
    json!({"iss": ISS, "aud": AUD, "sub": "u-1", "iat": now - 10, "nbf": now - 10, "exp": now + 3600, "n": 7})
}

fn ours(token: &str) -> Option<Value> {
    let f = fixture();
    f.rules
        .verify_with_keys::<Value>(token, &f.set, SystemClock.now())
        .ok()
        .map(|v| v.claims)
}

/// jsonwebtoken's verdict with the key the token's `kid` names (as a resource server using
/// jsonwebtoken directly would pick it), and the equivalent validation.
fn theirs(token: &str) -> Option<Value> {
    let f = fixture();
    let header = jsonwebtoken::decode_header(token).ok()?;
    let key = f.keys.iter().find(|k| k.kid() == header.kid.as_deref())?;
    let jwk: Jwk = serde_json::from_value(key.jwk()).unwrap();
    let decoding = DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = Validation::new(key.alg().to_jsonwebtoken());
    validation.set_issuer(&[ISS]);
    validation.set_audience(&[AUD]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    validation.leeway = 60;
    jsonwebtoken::decode::<Value>(token, &decoding, &validation)
        .ok()
        .map(|d| d.claims)
}

fn assert_same(token: &str, what: &str) {
    assert_eq!(ours(token), theirs(token), "{what}: {token}");
}

fn b64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn with(changes: Value) -> Value {
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

// covers 8725-3.1-a: for every algorithm, the same verdicts as jsonwebtoken on valid, tampered,
// expired, premature, foreign-issuer, foreign-audience, cross-algorithm and incomplete tokens.
#[test]
fn same_verdicts_as_jsonwebtoken() {
    let f = fixture();
    let now = now();
    let mut accepted = 0;
    for k in &f.keys {
        let sign = |c: &Value| k.sign(c).unwrap();
        let valid = sign(&claims());
        assert!(ours(&valid).is_some(), "{}", k.alg());
        let cases: Vec<(&str, String)> = vec![
            ("valid", valid.clone()),
            ("expired", sign(&with(json!({"exp": now - 3600})))),
            ("not yet valid", sign(&with(json!({"nbf": now + 3600})))),
            (
                "wrong issuer",
                sign(&with(json!({"iss": "https://evil.example"}))),
            ),
            ("no issuer", sign(&with(json!({"iss": null})))),
            ("wrong audience", sign(&with(json!({"aud": "other"})))),
            ("audience list", sign(&with(json!({"aud": ["other", AUD]})))),
            ("no audience", sign(&with(json!({"aud": null})))),
            ("no exp", sign(&with(json!({"exp": null})))),
            ("no sub", sign(&with(json!({"sub": null})))),
            ("string exp", sign(&with(json!({"exp": "soon"})))),
            ("negative exp", sign(&with(json!({"exp": -1})))),
            ("empty claims", sign(&json!({}))),
        ];
        for (what, token) in &cases {
            assert_same(token, what);
            accepted += usize::from(ours(token).is_some());
        }
        // The signature of another key of the same algorithm, under this kid.
        let impostor = TestKey::generate(k.alg(), k.kid()).unwrap();
        assert_same(&impostor.sign(&claims()).unwrap(), "impostor");
        // Every other algorithm's header under this key's kid (signed by this key where its
        // family can sign it).
        for other in Algorithm::ALL {
            let mut h = k.header();
            h.alg = other.to_jsonwebtoken();
            if let Ok(t) = k.sign_with(&h, &claims()) {
                assert_same(&t, "relabelled algorithm");
            }
        }
        // Byte-level damage to each part.
        let parts: Vec<&str> = valid.split('.').collect();
        for i in 0..3 {
            let mut p: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
            let flipped = if p[i].ends_with('A') { 'B' } else { 'A' };
            p[i].pop();
            p[i].push(flipped);
            assert_same(&p.join("."), "last character of a part changed");
        }
        assert_same(&valid[..valid.len() - 1], "truncated");
        assert_same(&format!("{valid}.x"), "four parts");
        assert_same(&format!("{}.{}.", parts[0], parts[1]), "unsigned");
    }
    // Valid tokens, lists that name our audience: accepted by both, for all nine algorithms.
    assert_eq!(accepted, 2 * Algorithm::ALL.len());
}

// covers 8725-3.11-a: where this crate is stricter on purpose, it is the one that rejects.
#[test]
fn deliberate_extra_strictness() {
    let f = fixture();
    let now = now();
    for k in &f.keys {
        let mut at = k.header();
        at.typ = Some("at+jwt".into());
        let mut crit = k.header();
        crit.crit = Some(vec!["exp".into()]);
        let cases = [
            ("access token typ", k.sign_with(&at, &claims()).unwrap()),
            ("crit", k.sign_with(&crit, &claims()).unwrap()),
            (
                "iat in the future",
                k.sign(&with(json!({"iat": now + 3600}))).unwrap(),
            ),
        ];
        for (what, t) in cases {
            assert!(theirs(&t).is_some(), "{what}: jsonwebtoken accepts");
            assert!(ours(&t).is_none(), "{what}: we reject");
        }
    }
    // `alg: none` and HMAC with the public key: both reject.
    let rsa = f.keys.iter().find(|k| k.alg() == Algorithm::RS256).unwrap();
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","kid":"RS256"}"#),
        b64(claims().to_string().as_bytes())
    );
    assert_eq!((ours(&none), theirs(&none)), (None, None));
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some("RS256".into());
    let confused = jsonwebtoken::encode(
        &hs,
        &claims(),
        &jsonwebtoken::EncodingKey::from_secret(rsa.public_key_pem().as_bytes()),
    )
    .unwrap();
    assert_eq!(ours(&confused), None);
    assert_eq!(theirs(&confused), None);
}

/// The base64url alphabet plus the separators, for mutations.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=";

fn tokens() -> &'static Vec<String> {
    static T: OnceLock<Vec<String>> = OnceLock::new();
    T.get_or_init(|| {
        fixture()
            .keys
            .iter()
            .map(|k| k.sign(&claims()).unwrap())
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    // covers 8725-3.1-a: any single-character change or deletion anywhere in a valid token gets
    // the same verdict from both (in practice: both reject).
    #[test]
    fn mutations_get_the_same_verdict(which in 0usize..9, pos in any::<prop::sample::Index>(), c in prop::sample::select(ALPHABET), delete in any::<bool>()) {
        let token = &tokens()[which];
        let i = pos.index(token.len());
        let mut bytes = token.as_bytes().to_vec();
        if delete { bytes.remove(i); } else { bytes[i] = c; }
        let mutated = String::from_utf8(bytes).unwrap();
        prop_assert_eq!(ours(&mutated), theirs(&mutated), "{}", mutated);
    }
}

#[test]
fn the_fixture_is_shared_across_threads() {
    // The verifier types are Send + Sync, so one prepared key set serves every thread.
    fn assert_sync<T: Send + Sync>() {}
    assert_sync::<KeySet>();
    assert_sync::<TokenRules>();
    assert_sync::<portcullis_jwks::JwtVerifier>();
}
