//! Criterion benches for portcullis-jwks: a session token verified through the cached verifier,
//! with raw `jsonwebtoken::decode` and a prepared key, and with the key rebuilt from the JWKS per
//! request; for RS256, ES256 and EdDSA. Also the cost of parsing a JWKS into prepared keys, and
//! of rejecting a token with an unknown `kid` inside the cooldown.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_benches::rows::jwks::{JwtFixture, ready};
use portcullis_jwks::{Algorithm, KeySet, VerifyError};

fn jwks(c: &mut Criterion) {
    let mut g = c.benchmark_group("jwks");
    for (name, alg) in [
        ("rs256", Algorithm::RS256),
        ("es256", Algorithm::ES256),
        ("eddsa", Algorithm::EdDSA),
    ] {
        let f = JwtFixture::new(alg);
        g.bench_function(format!("verify_cached_{name}"), |b| {
            b.iter(|| f.verify_cached().unwrap());
        });
        g.bench_function(format!("jsonwebtoken_decode_prepared_{name}"), |b| {
            b.iter(|| f.verify_raw().unwrap());
        });
        g.bench_function(format!("jsonwebtoken_rebuild_per_request_{name}"), |b| {
            b.iter(|| f.verify_rebuild().unwrap());
        });
        g.bench_function(format!("parse_jwks_{name}"), |b| {
            b.iter(|| KeySet::from_json(black_box(f.jwks.as_bytes())).unwrap());
        });
    }
    // A token whose kid is not in the set, inside the cooldown: rejected without a fetch and
    // without any crypto.
    let f = JwtFixture::new(Algorithm::EdDSA);
    let (_, rest) = f.token.split_once('.').unwrap();
    let unknown = format!(
        "{}.{rest}",
        base64_url(br#"{"alg":"EdDSA","typ":"JWT","kid":"no-such-key"}"#)
    );
    // The first unknown kid may fetch; after that the cooldown holds.
    let _ = ready(f.verifier.verify::<serde_json::Value>(&unknown));
    g.bench_function("reject_unknown_kid_in_cooldown", |b| {
        b.iter(|| {
            let r = ready(f.verifier.verify::<serde_json::Value>(black_box(&unknown)));
            assert!(matches!(r, Err(VerifyError::UnknownKey)));
        });
    });
    g.finish();
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

criterion_group!(benches, jwks);
criterion_main!(benches);
