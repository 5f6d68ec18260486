//! The JWT verifier with a fixed key set (RS256, ES256, EdDSA) and arbitrary input: no input
//! panics, and the cached verifier and the key-set verifier give the same verdict.
//!
//! Half the inputs are raw strings; the other half are header and claims texts of the fuzzer's
//! choosing signed by one of the keys (or with the signature damaged), so that the header
//! checks, the key lookup and the claims checks behind a valid signature are all reached.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use portcullis_core::{ManualClock, UnixTime};
use portcullis_jwks::testing::{TestKey, jwks};
use portcullis_jwks::{Algorithm, JwtVerifier, KeySet, StaticSource, TokenRules, VerifyError};
use serde_json::Value;

const ISS: &str = "https://idp.example";
const AUD: &str = "portcullis-app";
const NOW: u64 = 1_700_000_000;

#[derive(Debug, Arbitrary)]
enum Input {
    Raw(String),
    Signed {
        key: u8,
        header: String,
        claims: String,
        damage: Option<u8>,
    },
    /// A plausible header and claims with fuzzed values, signed.
    Shaped {
        key: u8,
        kid: Option<String>,
        typ: Option<String>,
        iss: String,
        aud: String,
        exp: i64,
        nbf: Option<i64>,
    },
}

struct Fixture {
    keys: Vec<TestKey>,
    set: KeySet,
    rules: TokenRules,
    verifier: JwtVerifier,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let keys: Vec<TestKey> = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
            .iter()
            .map(|a| TestKey::generate(*a, Some(a.as_str())).expect("key generation"))
            .collect();
        let doc = jwks(&keys.iter().collect::<Vec<_>>());
        let set = KeySet::from_json(doc.as_bytes()).expect("key set");
        let rules = TokenRules::builder(ISS)
            .audience(AUD)
            .build()
            .expect("rules");
        let verifier = JwtVerifier::builder(ISS)
            .audience(AUD)
            .key_source(Arc::new(StaticSource::new(doc)))
            .clock(Arc::new(ManualClock::at_secs(NOW)))
            .build()
            .expect("verifier");
        Fixture {
            keys,
            set,
            rules,
            verifier,
        }
    })
}

/// The verifier with a static source never waits: poll once.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a static key source must not make the verifier wait"),
    }
}

fuzz_target!(|input: Input| {
    let f = fixture();
    // Signing with RSA is slow; most signed inputs use the EC and Ed25519 keys.
    let pick = |k: u8| {
        &f.keys[match k % 8 {
            0 => 0,
            1..=4 => 1,
            _ => 2,
        }]
    };
    let token = match input {
        Input::Raw(s) => s,
        Input::Signed {
            key,
            header,
            claims,
            damage,
        } => {
            let Ok(mut t) = pick(key).sign_raw(&header, &claims) else {
                return;
            };
            if let Some(d) = damage {
                let i = usize::from(d) % t.len();
                if t.is_char_boundary(i) && t.is_char_boundary(i + 1) {
                    t.replace_range(i..=i, if &t[i..=i] == "A" { "B" } else { "A" });
                }
            }
            t
        }
        Input::Shaped {
            key,
            kid,
            typ,
            iss,
            aud,
            exp,
            nbf,
        } => {
            let k = pick(key);
            let header = serde_json::json!({"alg": k.alg().as_str(), "kid": kid.as_deref().or(k.kid()), "typ": typ});
            let claims =
                serde_json::json!({"iss": iss, "aud": aud, "sub": "u", "exp": exp, "nbf": nbf});
            let Ok(t) = k.sign_raw(&header.to_string(), &claims.to_string()) else {
                return;
            };
            t
        }
    };
    let by_set = f
        .rules
        .verify_with_keys::<Value>(&token, &f.set, UnixTime::from_secs(NOW));
    let by_cache = ready(f.verifier.verify::<Value>(&token));
    assert_eq!(by_set, by_cache, "the two paths disagree on {token:?}");
    match by_set {
        Ok(v) => {
            // Whatever was accepted satisfies the rules.
            assert_eq!(&*v.registered.iss, ISS);
            assert!(v.registered.aud.iter().any(|a| a == AUD));
            assert!(v.registered.exp.as_secs() + 60 > NOW);
            assert!(f.keys.iter().any(|k| k.alg() == v.header.alg));
        }
        Err(e) => {
            // Every rejection maps to an OAuth error: 401, or 503 for unavailable keys.
            let status = e.oauth_error().status();
            assert!(
                status == 401 || (status == 503 && matches!(e, VerifyError::KeysUnavailable(_)))
            );
        }
    }
});
