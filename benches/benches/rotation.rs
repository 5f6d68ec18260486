//! Criterion benches for portcullis-rotation on the memory store: a whole refresh rotation
//! through the service, the store's atomic rotate primitive alone (hashes precomputed, so no
//! crypto), a code exchange, introspection, and the crypto floor of a rotation (one mint plus
//! one keyed hash) for comparison.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_benches::rows::rotation::{Chain, block_on, service};
use portcullis_core::{ManualClock, UnixTime};
use portcullis_hash::{Keyring, OpaqueToken, Purpose, TokenHash, TokenHasher, TokenPrefix};
use portcullis_pkce::CodeVerifier;
use portcullis_rotation::{
    BindingContext, BindingPolicy, BindingProof, CodeExchange, CodeRequest, GrantService,
    GrantStore, Lifetimes, MemoryGrantStore, RefreshOutcome, RefreshRotation, RotationPolicy,
    Scope,
};

const KEY: &str = "0123456789abcdef0123456789abcdef";

/// A distinct, uniformly spread hash per counter value (no crypto: the store does not care).
fn counter_hash(n: u64) -> TokenHash {
    let mut bytes = [0u8; 32];
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in bytes.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    TokenHash::from_bytes(bytes)
}

fn request(verifier: &CodeVerifier) -> CodeRequest {
    CodeRequest {
        client_id: "bench-client".into(),
        redirect_uri: "https://client.example/cb".into(),
        challenge: Some(verifier.challenge()),
        scope: Scope::parse("read write").unwrap(),
        resources: vec![],
        user_id: "bench-user".into(),
        session_expires_at: None,
    }
}

fn rotation(c: &mut Criterion) {
    let mut g = c.benchmark_group("rotation");

    let mut chain = Chain::new(service(), "bench-user");
    g.bench_function("refresh_via_service_memory", |b| b.iter(|| chain.step()));

    // The store primitive alone: a chain of precomputed hashes, a new family every 1024
    // rotations (as the service bench does), so no family grows without bound.
    let store = Arc::new(MemoryGrantStore::new());
    let hasher = Arc::new(TokenHasher::new(Keyring::from_values(KEY, None).unwrap()));
    let clock = ManualClock::at_secs(1_700_000_000);
    let svc = GrantService::new(
        store.clone(),
        hasher.clone(),
        Arc::new(clock),
        RotationPolicy::default(),
    );
    let new_family = || {
        let verifier = CodeVerifier::generate().unwrap();
        let issued = block_on(svc.issue_code(request(&verifier))).unwrap();
        let pair = block_on(svc.exchange_code(CodeExchange {
            code: issued.code.expose_secret(),
            client_id: "bench-client",
            redirect_uri: Some("https://client.example/cb"),
            code_verifier: Some(verifier.expose_secret()),
            binding: BindingContext::default(),
        }))
        .unwrap();
        let hash = hasher.hash(
            Purpose::RefreshToken,
            pair.refresh_token.expose_secret().as_bytes(),
        );
        (hash, pair)
    };
    let (mut current, pair) = new_family();
    let mut n = 0u64;
    let proof = BindingProof::default();
    let lifetimes = Lifetimes {
        refresh_idle: Duration::from_secs(3600),
        access: Duration::from_secs(3600),
    };
    let now = UnixTime::from_secs(1_700_000_000);
    g.bench_function("store_rotate_refresh_only", |b| {
        b.iter(|| {
            n += 2;
            if n.is_multiple_of(2048) {
                block_on(svc.logout("bench-user")).unwrap();
                block_on(svc.purge(usize::MAX)).unwrap();
                current = new_family().0;
            }
            let successor = counter_hash(n);
            let candidates = [current];
            let out = block_on(store.rotate_refresh(&RefreshRotation {
                candidates: &candidates,
                client_id: "bench-client",
                scope: None,
                binding: &proof,
                binding_policy: BindingPolicy::default(),
                grace_window: Duration::ZERO,
                successor,
                access: counter_hash(n + 1),
                lifetimes,
                now,
            }))
            .unwrap();
            assert!(matches!(out, RefreshOutcome::Rotated { .. }));
            current = successor;
        });
    });

    g.bench_function("issue_and_exchange_code", |b| {
        b.iter(|| {
            let v = CodeVerifier::generate().unwrap();
            let issued = block_on(svc.issue_code(request(&v))).unwrap();
            black_box(
                block_on(svc.exchange_code(CodeExchange {
                    code: issued.code.expose_secret(),
                    client_id: "bench-client",
                    redirect_uri: Some("https://client.example/cb"),
                    code_verifier: Some(v.expose_secret()),
                    binding: BindingContext::default(),
                }))
                .unwrap(),
            )
        });
    });

    let access = pair.access_token;
    g.bench_function("introspect_access_token", |b| {
        b.iter(|| {
            assert!(
                block_on(svc.introspect(black_box(access.expose_secret())))
                    .unwrap()
                    .is_active()
            );
        });
    });

    g.bench_function("crypto_floor_mint_plus_hash", |b| {
        b.iter(|| {
            let t = OpaqueToken::mint(TokenPrefix::REFRESH).unwrap();
            black_box(hasher.hash(Purpose::RefreshToken, t.expose_secret().as_bytes()))
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = rotation
}
criterion_main!(benches);
