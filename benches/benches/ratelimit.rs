//! Criterion benches for portcullis-ratelimit: a decision on the memory store (one key, 100k
//! keys, each algorithm, a peek, a two-key check, the async trait path) next to governor's keyed
//! `check_key` with the same quota and a fake clock.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use governor::clock::FakeRelativeClock;
use governor::{Quota as GovQuota, RateLimiter};
use portcullis_core::ManualClock;
use portcullis_ratelimit::{Algorithm, Check, Limit, MemoryStore, Quota, RateLimitStore};

const KEYS: u32 = 100_000;

fn ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 + i)
}

fn ratelimit(c: &mut Criterion) {
    let rate = NonZeroU32::new(1000).unwrap();
    let step = Duration::from_millis(1);
    let keys: Vec<String> = (0..KEYS).map(|i| ip(i).to_string()).collect();
    let addrs: Vec<IpAddr> = (0..KEYS).map(|i| IpAddr::V4(ip(i))).collect();
    let mut g = c.benchmark_group("ratelimit");

    for alg in [
        Algorithm::Gcra,
        Algorithm::FixedWindow,
        Algorithm::SlidingWindow,
    ] {
        let clock = ManualClock::at_secs(1_700_000_000);
        let store = MemoryStore::builder().build(clock.clone());
        let limit = Limit::new("bench", Quota::per_second(rate))
            .unwrap()
            .with_algorithm(alg);
        g.bench_function(format!("memory_check_1key_{alg}"), |b| {
            b.iter(|| {
                clock.advance(step);
                black_box(store.check_now(&limit, black_box("10.0.0.1")))
            });
        });
    }

    let clock = ManualClock::at_secs(1_700_000_000);
    let store = MemoryStore::builder().build(clock.clone());
    let limit = Limit::new("bench", Quota::per_second(rate)).unwrap();
    for k in &keys {
        store.check_now(&limit, k);
    }
    let mut i = 0usize;
    g.bench_function("memory_check_100k_keys", |b| {
        b.iter(|| {
            clock.advance(step);
            i = (i + 1) % keys.len();
            black_box(store.check_now(&limit, &keys[i]))
        });
    });
    g.bench_function("memory_peek_1key", |b| {
        b.iter(|| black_box(store.peek_now(&limit, black_box("10.0.0.1"))));
    });
    let user = Limit::new("bench-user", Quota::per_second(rate)).unwrap();
    g.bench_function("memory_check_all_ip_and_user", |b| {
        b.iter(|| {
            clock.advance(step);
            black_box(
                store
                    .check_all_now(&[Check::new(&limit, "10.0.0.1"), Check::new(&user, "user-42")]),
            )
        });
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dyn_store: &dyn RateLimitStore = &store;
    g.bench_function("memory_check_1key_async_dyn", |b| {
        b.iter(|| {
            clock.advance(step);
            black_box(
                rt.block_on(dyn_store.check(&limit, black_box("10.0.0.1")))
                    .unwrap(),
            )
        });
    });

    let gov_clock = FakeRelativeClock::default();
    let gov = RateLimiter::dashmap_with_clock(GovQuota::per_second(rate), gov_clock.clone());
    for a in &addrs {
        let _ = gov.check_key(a);
    }
    g.bench_function("governor_check_key_1key", |b| {
        b.iter(|| {
            gov_clock.advance(step);
            black_box(gov.check_key(black_box(&addrs[1])).is_ok())
        });
    });
    let mut j = 0usize;
    g.bench_function("governor_check_key_100k_keys", |b| {
        b.iter(|| {
            gov_clock.advance(step);
            j = (j + 1) % addrs.len();
            black_box(gov.check_key(&addrs[j]).is_ok())
        });
    });
    g.finish();
}

criterion_group!(benches, ratelimit);
criterion_main!(benches);
