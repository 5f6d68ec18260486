//! Criterion benches for portcullis-hash: hashing (current key, lookup under a ring of three),
//! minting and parsing tokens.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::SecretBytes;
use portcullis_hash::{Keyring, OpaqueToken, Purpose, TokenHasher, TokenPrefix};

fn hashing(c: &mut Criterion) {
    let key = |s: &str| SecretBytes::from(s.repeat(4).as_bytes());
    let ring = Keyring::new(key("current-"))
        .unwrap()
        .with_previous(key("previous"))
        .unwrap()
        .with_previous(key("oldest--"))
        .unwrap();
    let hasher = TokenHasher::new(ring);
    let token = OpaqueToken::mint(TokenPrefix::REFRESH).unwrap();
    let bytes = token.expose_secret().as_bytes();
    let stored = hasher.hash(Purpose::RefreshToken, bytes);

    let mut g = c.benchmark_group("hash");
    g.bench_function("hash_53_bytes", |b| {
        b.iter(|| hasher.hash(Purpose::RefreshToken, black_box(bytes)));
    });
    g.bench_function("verify_ring_of_3", |b| {
        b.iter(|| hasher.verify(Purpose::RefreshToken, black_box(bytes), &stored));
    });
    let long = vec![7u8; 1024];
    g.bench_function("hash_1KiB", |b| {
        b.iter(|| hasher.hash(Purpose::ClientSecret, black_box(&long)));
    });
    g.finish();

    let mut g = c.benchmark_group("token");
    g.bench_function("mint", |b| {
        b.iter(|| OpaqueToken::mint(TokenPrefix::REFRESH).unwrap())
    });
    let s = token.expose_secret().to_owned();
    g.bench_function("parse", |b| {
        b.iter(|| OpaqueToken::parse(TokenPrefix::REFRESH, black_box(&s)).is_ok());
    });
    g.finish();
}

criterion_group!(benches, hashing);
criterion_main!(benches);
