//! portcullis-ratelimit rows: the memory store against `governor`'s keyed limiter, its scaling
//! across threads, and its memory per key.
//!
//! Both limiters run on a fake clock (ours [`ManualClock`], governor's `FakeRelativeClock`)
//! advanced by the same step, so every decision is an admitted request on the write path and the
//! clocks cost the same on both sides. Quota: 1000/s with a burst of 1000 on both sides.

// Bench code: a panic is the right way to fail, and the keys index their own buffers.
#![allow(
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::cast_possible_truncation
)]

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::FakeRelativeClock;
use governor::{Quota as GovQuota, RateLimiter};
use portcullis_core::ManualClock;
use portcullis_ratelimit::{Limit, MemoryStore, Quota};

use crate::harness::{Goal, Row, Settings, compare, keep, throughput};

/// Requests per second in the quota both sides use.
const RATE: u32 = 1000;
/// Keys per thread in the scaling row.
const KEYS_PER_THREAD: u32 = 8;
/// The clocks move by `BATCH` emission intervals every `BATCH` decisions.
const BATCH: u64 = 64;

fn rate() -> NonZeroU32 {
    NonZeroU32::new(RATE).unwrap()
}

fn limit() -> Limit {
    Limit::new("bench-ip", Quota::per_second(rate())).unwrap()
}

/// The i-th of `n` distinct IPv4 addresses (from 10.0.0.0/8).
pub fn ipv4(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 + i)
}

/// Strings stored back to back.
struct TextKeys {
    text: String,
    ends: Vec<usize>,
}

impl TextKeys {
    fn new(keys: impl Iterator<Item = String>) -> Self {
        let mut text = String::new();
        let mut ends = Vec::new();
        for k in keys {
            text.push_str(&k);
            ends.push(text.len());
        }
        Self { text, ends }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

/// Ours vs governor on `n` keys, visited in turn; returns (ours ns, governor ns).
fn versus_governor(settings: Settings, n: u32) -> (f64, f64) {
    let step = Duration::from_micros(1_000_000 / u64::from(RATE));
    // Our keys as text, in one contiguous buffer (a key is formatted just before its check, so it
    // is in cache; separately allocated strings would add a cache miss governor does not pay).
    let keys = TextKeys::new((0..n).map(|i| ipv4(i).to_string()));
    let addrs: Vec<IpAddr> = (0..n).map(|i| IpAddr::V4(ipv4(i))).collect();

    let clock = ManualClock::at_secs(1_700_000_000);
    let store = MemoryStore::builder()
        .max_keys(4 * n as usize + 1_000_000)
        .build(clock.clone());
    let limit = limit();
    let gov_clock = FakeRelativeClock::default();
    let gov = RateLimiter::dashmap_with_clock(GovQuota::per_second(rate()), gov_clock.clone());
    // Warm both maps: every key exists, as after the first request of each client.
    for (k, a) in (0..keys.len()).map(|i| keys.get(i)).zip(&addrs) {
        assert!(store.check_now(&limit, k).allowed);
        assert!(gov.check_key(a).is_ok());
    }

    let mut i = 0usize;
    let mut tick = 0u64;
    let ours = || {
        let d = store.check_now(&limit, keep(keys.get(i)));
        keep(d.allowed && d.remaining > 0 && d.retry_after.is_zero());
        i = if i + 1 == keys.len() { 0 } else { i + 1 };
        tick += 1;
        if tick.is_multiple_of(BATCH) {
            clock.advance(step * BATCH as u32);
        }
    };
    let mut j = 0usize;
    let mut gtick = 0u64;
    let theirs = || {
        keep(gov.check_key(keep(&addrs[j])).is_ok());
        j = if j + 1 == addrs.len() { 0 } else { j + 1 };
        gtick += 1;
        if gtick.is_multiple_of(BATCH) {
            gov_clock.advance(step * BATCH as u32);
        }
    };
    // Three times the usual batches: the 100k-key side is bound by memory latency, which other
    // processes on the machine disturb; more alternating batches make the medians steadier.
    let settings = Settings {
        batches: settings.batches * 3,
        ..settings
    };
    let (ours_ns, gov_ns) = compare(settings, ours, theirs);
    // Every decision was an admission (the write path), on both sides.
    let s = store.stats();
    assert_eq!((s.keys, s.evicted_live), (n as usize, 0));
    (ours_ns, gov_ns)
}

/// Memory per key of both limiters at one million IPv4 keys, measured by the
/// `ratelimit-memory` binary (which counts allocations with its own global allocator, so this
/// process keeps the system allocator).
fn bytes_per_key() -> Result<(f64, f64), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let sibling = exe.with_file_name(format!("ratelimit-memory{}", std::env::consts::EXE_SUFFIX));
    let output = if sibling.exists() {
        std::process::Command::new(sibling).output()
    } else {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut cmd = std::process::Command::new(cargo);
        cmd.args([
            "run",
            "-q",
            "-p",
            "portcullis-benches",
            "--bin",
            "ratelimit-memory",
        ]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        cmd.output()
    }
    .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())?;
    match (
        v["ours_bytes_per_key"].as_f64(),
        v["governor_bytes_per_key"].as_f64(),
    ) {
        (Some(o), Some(g)) => Ok((o, g)),
        _ => Err(format!("unexpected output: {v}")),
    }
}

/// The rows of this module.
pub fn rows(settings: Settings, only: &dyn Fn(&str) -> bool) -> Vec<Row> {
    let mut rows = Vec::new();

    if only("ratelimit_memory_vs_governor_1key") {
        let (ours, gov) = versus_governor(settings, 1);
        rows.push(Row::time(
            "ratelimit_memory_vs_governor_1key",
            ours,
            "governor 0.10 keyed (DashMap) check_key, 1 key, 1000/s, fake clock",
            gov,
            Goal::AtMost(1.0),
        ));
    }

    if only("ratelimit_memory_vs_governor_100k_keys") {
        let (ours, gov) = versus_governor(settings, 100_000);
        rows.push(Row::time(
            "ratelimit_memory_vs_governor_100k_keys",
            ours,
            "governor 0.10 keyed (DashMap) check_key, 100k keys in turn, 1000/s, fake clock",
            gov,
            Goal::AtMost(1.0),
        ));
    }

    if only("ratelimit_memory_2threads") {
        // Each thread cycles over its own 8 keys (governor's multi-threaded bench gives each
        // thread one key), a quota no key exhausts in the run, and a clock that is read but never
        // written (the VM's wall clock costs ~70 ns here and would hide the store; a shared
        // clock being advanced would measure that cache line instead).
        let store = MemoryStore::builder().build(ManualClock::at_secs(1_700_000_000));
        let limit = Limit::new(
            "bench-scale",
            Quota::per_second(NonZeroU32::new(1_000_000).unwrap()),
        )
        .unwrap();
        let keys: Vec<TextKeys> = (0..2u32)
            .map(|t| TextKeys::new((0..KEYS_PER_THREAD).map(|i| ipv4(t * 1024 + i).to_string())))
            .collect();
        thread_local! {
            static NEXT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
        }
        let op = |t: usize| {
            // Each thread walks its own keys with its own counter (no shared writes).
            let i = NEXT.with(|n| {
                let i = n.get();
                n.set((i + 1) % KEYS_PER_THREAD as usize);
                i
            });
            keep(store.check_now(&limit, keys[t].get(i)).allowed);
        };
        let one = throughput(settings, 1, op);
        let two = throughput(settings, 2, op);
        // Control: the same measurement of a loop that shares nothing at all, to show whether the
        // machine had two free cores during the run.
        let spin = |_: usize| {
            let mut x = keep(1u64);
            for _ in 0..16 {
                x = keep(x.wrapping_mul(3).wrapping_add(1));
            }
        };
        let control = throughput(settings, 1, spin) / throughput(settings, 2, spin);
        rows.push(
            Row::scaling(
                "ratelimit_memory_2threads",
                two,
                "the same loop on 1 thread",
                one,
                Goal::AtLeast(1.6),
            )
            .with_note(format!(
                "wall-clock ns per decision: 1 thread {one:.1}, 2 threads {two:.1}; {} cores \
                 available; a loop sharing nothing scaled {control:.2}x in the same run (below \
                 ~1.9 the machine did not have two free cores)",
                std::thread::available_parallelism().map_or(0, usize::from)
            )),
        );
    }

    if only("ratelimit_memory_bytes_per_key") {
        rows.push(match bytes_per_key() {
            Ok((ours, gov)) => Row::time(
                "ratelimit_memory_bytes_per_key",
                ours,
                "governor 0.10 keyed (DashMap<IpAddr, _>), 1M IPv4 keys",
                gov,
                Goal::AtMost(1.0),
            )
            .with_note(format!(
                "figures are heap bytes per key at one million IPv4 keys, not ns: ours {ours:.1}, governor {gov:.1} \
                 (counted by a global allocator in the ratelimit-memory binary)"
            )),
            Err(e) => Row::skipped(
                "ratelimit_memory_bytes_per_key",
                "governor 0.10 keyed (DashMap<IpAddr, _>), 1M IPv4 keys",
                format!("could not run the ratelimit-memory binary: {e}"),
            ),
        });
    }
    rows
}
