//! Criterion benches for portcullis-pkce: generating a verifier, deriving its S256 challenge,
//! and the token-endpoint check (match, mismatch, and a 128-character verifier).
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_pkce::{ChallengeMethod, CodeChallenge, CodeVerifier, verify_token_request};

fn pkce(c: &mut Criterion) {
    let verifier = CodeVerifier::generate().unwrap();
    let stored = verifier.challenge();
    let other = CodeVerifier::generate().unwrap();
    let long = "~".repeat(128);
    let long_stored = CodeVerifier::new(long.clone()).unwrap().challenge();
    let authorize_challenge = stored.as_str().to_owned();

    let mut g = c.benchmark_group("pkce");
    g.bench_function("generate_verifier", |b| {
        b.iter(|| CodeVerifier::generate().unwrap());
    });
    g.bench_function("derive_s256_challenge", |b| {
        b.iter(|| black_box(&verifier).challenge());
    });
    g.bench_function("validate_authorize_s256", |b| {
        b.iter(|| {
            CodeChallenge::new(
                black_box(authorize_challenge.as_str()),
                ChallengeMethod::S256,
            )
        });
    });
    g.bench_function("verify_match_43", |b| {
        b.iter(|| verify_token_request(Some(&stored), Some(black_box(verifier.expose_secret()))));
    });
    g.bench_function("verify_mismatch_43", |b| {
        b.iter(|| verify_token_request(Some(&stored), Some(black_box(other.expose_secret()))));
    });
    g.bench_function("verify_match_128", |b| {
        b.iter(|| verify_token_request(Some(&long_stored), Some(black_box(long.as_str()))));
    });
    g.finish();
}

criterion_group!(benches, pkce);
criterion_main!(benches);
