//! A flood of one million random keys stays under the configured cap.

use std::net::Ipv6Addr;
use std::time::Duration;

use portcullis_core::ManualClock;
use portcullis_ratelimit::{ClientIpResolver, MemoryStore, presets};

/// xorshift64*: a deterministic stream of random-looking numbers.
fn rng(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn a_million_random_keys_stay_under_the_cap() {
    const CAP: usize = 10_000;
    let clock = ManualClock::at_secs(1_700_000_000);
    let store = MemoryStore::builder().max_keys(CAP).build(clock.clone());
    let limit = presets::token_per_ip();
    let mut next = rng(0x9e37_79b9_7f4a_7c15);
    let mut peak = 0;
    let mut peak_heap = 0;
    for i in 0..1_000_000u32 {
        // random IPv6 addresses keyed per address (/128), the worst case for the store
        let key = Ipv6Addr::from((u128::from(next()) << 64) | u128::from(next())).to_string();
        store.check_now(&limit, &key);
        if i % 4096 == 0 {
            clock.advance(Duration::from_millis(1));
            let s = store.stats();
            peak = peak.max(s.keys);
            peak_heap = peak_heap.max(s.heap_bytes);
        }
    }
    let s = store.stats();
    assert!(s.keys <= CAP && peak <= CAP, "{s:?}, peak {peak}");
    assert!(
        s.evicted_live > 0,
        "the flood must have forced evictions: {s:?}"
    );
    // at most 128 heap bytes per key of the cap, whatever the flood
    assert!(peak_heap <= CAP * 128, "heap grew to {peak_heap} bytes");
    // the flood's keys expire like any others, and the memory comes back
    clock.advance(Duration::from_secs(61));
    store.purge_expired();
    let after = store.stats();
    assert_eq!(after.keys, 0);
    assert!(after.heap_bytes < 64 * 1024, "{after:?}");
}

#[test]
fn ipv6_clients_are_keyed_by_prefix_so_rotating_addresses_mints_nothing() {
    let clock = ManualClock::at_secs(1_700_000_000);
    let store = MemoryStore::builder().build(clock);
    let limit = presets::token_per_ip();
    let resolver = ClientIpResolver::peer_only();
    let mut next = rng(7);
    let prefix = 0x2001_0db8_0001_0002u128 << 64;
    let admitted = (0..100)
        .filter(|_| {
            let ip = Ipv6Addr::from(prefix | u128::from(next())).into();
            let key = resolver.key(&resolver.resolve(ip, []));
            store.check_now(&limit, &key).allowed
        })
        .count();
    assert_eq!(admitted, 10);
    assert_eq!(store.len(), 1);
}
