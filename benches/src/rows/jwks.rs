//! portcullis-jwks rows: verifying an IdP token through the cached verifier against raw
//! `jsonwebtoken::decode` with a key prepared once, and against rebuilding the key from the JWKS
//! on every request.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{DecodingKey, Validation};
use portcullis_jwks::testing::{TestKey, jwks};
use portcullis_jwks::{Algorithm, JwtVerifier, StaticSource, Verified, VerifyError};
use serde::Deserialize;
use serde_json::json;

use crate::harness::{Goal, Row, Settings, compare, keep};

const ISS: &str = "https://idp.example";
const AUD: &str = "portcullis-app";
const KID: &str = "2024-01";

/// The claims both sides deserialize.
#[derive(Debug, Deserialize)]
pub struct SessionClaims {
    /// The user.
    pub sub: String,
    /// The IdP's session id.
    pub session_id: String,
}

/// One IdP key, its JWKS, a token it signed, our verifier with the keys cached, and
/// jsonwebtoken's prepared key and validation.
#[derive(Debug)]
pub struct JwtFixture {
    /// The token (a Hanko-like session token, valid for a day).
    pub token: String,
    /// The JWKS document.
    pub jwks: String,
    /// Our verifier, keys already cached, system clock.
    pub verifier: JwtVerifier,
    /// jsonwebtoken's key, built once from the JWK.
    pub decoding_key: DecodingKey,
    /// jsonwebtoken's validation, equivalent to ours: algorithm, issuer, audience, required
    /// `exp`/`iss`/`aud`/`sub`, `nbf` checked, 60 s leeway.
    pub validation: Validation,
}

/// Poll a future once with a no-op waker: the cached path never waits, so it is ready at once.
///
/// # Panics
/// If the future is not ready (it would have had to wait for a fetch).
#[allow(clippy::panic)] // a bench fixture that cannot measure what it claims must stop
pub fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the cached verification path must not wait"),
    }
}

impl JwtFixture {
    /// A fixture for `alg`.
    ///
    /// # Panics
    /// If key generation or the first verification fails.
    #[must_use]
    pub fn new(alg: Algorithm) -> Self {
        let key = TestKey::generate(alg, Some(KID)).unwrap();
        let jwks = jwks(&[&key]);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let token = key
            .sign(&json!({
                "iss": ISS, "aud": [AUD], "sub": "user-42", "session_id": "3fa85f64-5717-4562",
                "iat": now, "nbf": now, "exp": now + 86_400,
            }))
            .unwrap();
        let verifier = JwtVerifier::builder(ISS)
            .audience(AUD)
            .algorithms([alg])
            .key_source(Arc::new(
                StaticSource::new(jwks.clone()).with_max_age(Duration::from_secs(86_400)),
            ))
            .build()
            .unwrap();
        let jwk: Jwk = serde_json::from_value(key.jwk()).unwrap();
        let decoding_key = DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = Validation::new(alg.to_jsonwebtoken());
        validation.set_issuer(&[ISS]);
        validation.set_audience(&[AUD]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 60;
        let f = Self {
            token,
            jwks,
            verifier,
            decoding_key,
            validation,
        };
        // Warm the cache (the static source answers at once), and check both sides accept.
        f.verify_cached().unwrap();
        f.verify_raw().unwrap();
        f.verify_rebuild().unwrap();
        assert_eq!(f.verifier.stats().fetches, 1);
        f
    }

    /// Ours: the whole verification through the cached verifier.
    ///
    /// # Errors
    /// If the token does not verify.
    pub fn verify_cached(&self) -> Result<Verified<SessionClaims>, VerifyError> {
        ready(self.verifier.verify::<SessionClaims>(keep(&self.token)))
    }

    /// Baseline: `jsonwebtoken::decode` with the prepared `DecodingKey`.
    ///
    /// # Errors
    /// If the token does not verify.
    pub fn verify_raw(
        &self,
    ) -> jsonwebtoken::errors::Result<jsonwebtoken::TokenData<SessionClaims>> {
        jsonwebtoken::decode::<SessionClaims>(
            keep(&self.token),
            &self.decoding_key,
            &self.validation,
        )
    }

    /// Anti-pattern: parse the JWKS JSON, find the key and build it, then decode, per request.
    ///
    /// # Errors
    /// If the token does not verify.
    ///
    /// # Panics
    /// If the JWKS does not parse or lacks the key.
    pub fn verify_rebuild(
        &self,
    ) -> jsonwebtoken::errors::Result<jsonwebtoken::TokenData<SessionClaims>> {
        let set: JwkSet = serde_json::from_str(keep(&self.jwks)).unwrap();
        let jwk = set.find(KID).unwrap();
        let key = DecodingKey::from_jwk(jwk)?;
        jsonwebtoken::decode::<SessionClaims>(keep(&self.token), &key, &self.validation)
    }
}

/// The rows of this module.
pub fn rows(settings: Settings, only: &dyn Fn(&str) -> bool) -> Vec<Row> {
    let mut rows = Vec::new();
    let raw = "jsonwebtoken::decode (aws_lc_rs), DecodingKey::from_jwk once, same validation";
    for (id, alg, goal) in [
        (
            "jwt_cached_vs_raw_rs256",
            Algorithm::RS256,
            Goal::AtMost(0.8),
        ),
        (
            "jwt_cached_vs_raw_es256",
            Algorithm::ES256,
            Goal::AtMost(1.0),
        ),
        (
            "jwt_cached_vs_raw_eddsa",
            Algorithm::EdDSA,
            Goal::AtMost(1.0),
        ),
    ] {
        if !only(id) {
            continue;
        }
        let f = JwtFixture::new(alg);
        // Public-key operations take tens of microseconds, so a batch holds only a few hundred
        // of them and one busy moment on a shared machine moves a median; three comparisons,
        // and the one with the median ratio is reported (all three in the note).
        let mut runs: Vec<(f64, f64)> = (0..3)
            .map(|_| {
                compare(
                    settings,
                    || {
                        keep(f.verify_cached().unwrap());
                    },
                    || {
                        keep(f.verify_raw().unwrap());
                    },
                )
            })
            .collect();
        runs.sort_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)));
        let ratios: Vec<String> = runs.iter().map(|r| format!("{:.3}", r.0 / r.1)).collect();
        let (ours, base) = runs.get(1).copied().unwrap();
        rows.push(Row::time(id, ours, raw, base, goal).with_note(format!(
            "ratios of three comparisons: {}",
            ratios.join(", ")
        )));
    }
    if only("jwt_cached_vs_rebuild_rs256") {
        let f = JwtFixture::new(Algorithm::RS256);
        let (ours, base) = compare(
            settings,
            || {
                keep(f.verify_cached().unwrap());
            },
            || {
                keep(f.verify_rebuild().unwrap());
            },
        );
        rows.push(Row::time(
            "jwt_cached_vs_rebuild_rs256",
            ours,
            "per request: parse the JWKS JSON, DecodingKey::from_jwk, jsonwebtoken::decode",
            base,
            Goal::Report,
        ));
    }
    rows
}
