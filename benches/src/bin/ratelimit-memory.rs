//! Heap bytes per key of the memory rate limiter and of governor's keyed limiter at one million
//! IPv4 keys, counted by a global allocator: `cargo run --release -p portcullis-benches --bin
//! ratelimit-memory`. Prints one JSON object; the report's `ratelimit_memory_bytes_per_key` row
//! runs it (a separate process, so the report itself keeps the plain system allocator).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;
use std::net::IpAddr;
use std::num::NonZeroU32;

use cap::Cap;
use governor::clock::FakeRelativeClock;
use governor::{Quota as GovQuota, RateLimiter};
use portcullis_benches::rows::ratelimit::ipv4;
use portcullis_core::ManualClock;
use portcullis_ratelimit::{Limit, MemoryStore, Quota};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// Keys inserted on each side.
const KEYS: u32 = 1_000_000;

fn main() {
    let rate = NonZeroU32::new(10).unwrap();

    // Ours: the addresses as the layer keys them (their text form), a cap above the key count so
    // nothing is evicted.
    let keys: Vec<String> = (0..KEYS).map(|i| ipv4(i).to_string()).collect();
    let limit = Limit::new("token-ip", Quota::per_minute(rate)).unwrap();
    let before = ALLOCATOR.allocated();
    let store = MemoryStore::builder()
        .max_keys(2 * KEYS as usize)
        .build(ManualClock::at_secs(1_700_000_000));
    for k in &keys {
        assert!(store.check_now(&limit, k).allowed);
    }
    let ours = ALLOCATOR.allocated() - before;
    assert_eq!(store.len(), KEYS as usize);
    drop(store);

    let addrs: Vec<IpAddr> = (0..KEYS).map(|i| IpAddr::V4(ipv4(i))).collect();
    let before = ALLOCATOR.allocated();
    let gov =
        RateLimiter::dashmap_with_clock(GovQuota::per_minute(rate), FakeRelativeClock::default());
    for a in &addrs {
        assert!(gov.check_key(a).is_ok());
    }
    let theirs = ALLOCATOR.allocated() - before;
    assert_eq!(gov.len(), KEYS as usize);

    println!(
        "{}",
        serde_json::json!({
            "keys": KEYS,
            "ours_bytes_per_key": ours as f64 / f64::from(KEYS),
            "governor_bytes_per_key": theirs as f64 / f64::from(KEYS),
        })
    );
}
