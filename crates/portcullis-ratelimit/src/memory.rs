//! A sharded in-process store with bounded memory.

use std::fmt;

use portcullis_core::{Clock, SystemClock};

use crate::algorithm::{self, State};
use crate::siphash::SipKey;
use crate::table::{Slot, Table};
use crate::{Check, Decision, Limit, MultiDecision, RateLimitStore, StoreError};

/// Default cap on the number of keys a [`MemoryStore`] holds: one million. At the measured
/// 24-byte slot plus hash-table overhead (under 60 bytes per key, see the benches' report row
/// `ratelimit_memory_bytes_per_key`) that is under 60 MiB, and a million distinct clients per idle
/// period is far beyond what one authorization server sees.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// Default number of shards: 256. Source: two threads on random keys meet on a shard lock (and
/// move its cache line between cores) with probability 1/256 per decision; the padded locks cost
/// 32 KiB, and each shard's table starts empty.
pub const DEFAULT_SHARDS: usize = 256;

/// A shard does not sweep idle keys before it holds this many (sweeping tiny tables is waste).
const MIN_SWEEP_LEN: usize = 64;

#[derive(Default)]
struct Shard {
    table: Table,
    /// Hard cap on `table.len()`.
    cap: usize,
    /// Sweep idle keys when an insertion finds the table this full.
    sweep_at: usize,
    evicted_idle: u64,
    evicted_live: u64,
}

/// The shard lock: a spin lock whose waiters yield to the scheduler. Its critical sections are a
/// few dozen nanoseconds with no allocation for existing keys, so a waiter rarely spins; taking
/// it is one atomic compare-exchange and releasing it one plain store (`std`'s `Mutex` pays a
/// second atomic on release, about a fifth of a decision's cost).
type Lock<T> = spin::mutex::SpinMutex<T, spin::relax::Yield>;
type Guard<'a, T> = spin::mutex::SpinMutexGuard<'a, T>;

/// A shard on its own cache lines, so that two threads on two shards do not contend.
#[repr(align(128))]
struct Padded(Lock<Shard>);

impl Shard {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            sweep_at: MIN_SWEEP_LEN.min(cap),
            ..Self::default()
        }
    }

    fn get(&self, digest: u64) -> Option<State> {
        self.table.find(digest).map(|s| s.state)
    }

    /// Decide one request and write its outcome.
    #[inline]
    fn decide(&mut self, digest: u64, limit: &Limit, now: u64, consume: bool) -> Decision {
        if let Some(slot) = self.table.find_mut(digest) {
            let o = algorithm::decide(limit, Some(slot.state), now, consume);
            if let Some(w) = o.write {
                slot.state = w;
            }
            return o.decision;
        }
        let o = algorithm::decide(limit, None, now, consume);
        if let Some(w) = o.write {
            self.insert(digest, w, now);
        }
        o.decision
    }

    fn put(&mut self, digest: u64, state: State, now: u64) {
        match self.table.find_mut(digest) {
            Some(slot) => slot.state = state,
            None => self.insert(digest, state, now),
        }
    }

    /// Insert a key that is not in the table, keeping the table under its cap.
    fn insert(&mut self, digest: u64, state: State, now: u64) {
        if self.table.len() >= self.sweep_at {
            self.sweep(now);
        }
        self.table.insert_new(Slot { digest, state });
    }

    /// Forget idle keys; if the shard is still full of live keys, forget the ones closest to
    /// expiry until it is 7/8 full. The table then fits itself to twice its length (giving memory
    /// back), and the next sweep is set at twice the live size (so sweeps cost O(1) amortised per
    /// insertion) but never above the cap.
    fn sweep(&mut self, now: u64) {
        let before = self.table.len();
        self.table.retain(|s| s.state.expires_at > now);
        self.evicted_idle += (before - self.table.len()) as u64;
        if self.table.len() >= self.cap {
            // Room for the key being inserted, and for an eighth more before the next sweep.
            self.evict_live((self.cap - self.cap / 8).min(self.cap.saturating_sub(1)));
        }
        let len = self.table.len();
        self.sweep_at = len.saturating_mul(2).max(MIN_SWEEP_LEN).min(self.cap);
    }

    /// Evict the live keys closest to expiry until `target` remain: each of them is the key
    /// whose forgetting grants the least (a GCRA key with `tat` one second ahead regains one
    /// second's worth of requests).
    fn evict_live(&mut self, target: usize) {
        let excess = self.table.len().saturating_sub(target);
        if excess == 0 {
            return;
        }
        let mut times: Vec<u64> = self.table.iter().map(|s| s.state.expires_at).collect();
        let (_, threshold, _) = times.select_nth_unstable(excess - 1);
        let threshold = *threshold;
        let below = times.iter().filter(|t| **t < threshold).count();
        let mut ties = excess - below;
        self.table.retain(|s| {
            if s.state.expires_at < threshold {
                false
            } else if s.state.expires_at == threshold && ties > 0 {
                ties -= 1;
                false
            } else {
                true
            }
        });
        self.evicted_live += excess as u64;
        tracing::warn!(
            target: "portcullis_ratelimit",
            evicted = excess,
            "memory rate-limit store full of live keys: evicted the keys closest to expiry \
             (raise max_keys, or key IPv6 clients by prefix)"
        );
    }
}

/// Counters of a [`MemoryStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MemoryStats {
    /// Keys held now.
    pub keys: usize,
    /// Keys forgotten because they were idle (their state had expired).
    pub evicted_idle: u64,
    /// Keys forgotten while still live because the store was full (each such eviction gives a
    /// client back part of its budget; a non-zero count means `max_keys` is too low for the load
    /// or someone is flooding keys).
    pub evicted_live: u64,
    /// Bytes of heap held by the shards' tables.
    pub heap_bytes: usize,
}

/// Configuration of a [`MemoryStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStoreBuilder {
    max_keys: usize,
    shards: usize,
}

impl Default for MemoryStoreBuilder {
    fn default() -> Self {
        Self {
            max_keys: DEFAULT_MAX_KEYS,
            shards: DEFAULT_SHARDS,
        }
    }
}

impl MemoryStoreBuilder {
    /// The most keys the store holds (default [`DEFAULT_MAX_KEYS`]); at least one per shard.
    #[must_use]
    pub const fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// The number of shards, rounded up to a power of two (default [`DEFAULT_SHARDS`]).
    #[must_use]
    pub const fn shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// The store, reading time from `clock`.
    #[must_use]
    pub fn build<C: Clock>(self, clock: C) -> MemoryStore<C> {
        let shards = self.shards.clamp(1, 1 << 16).next_power_of_two();
        let max_keys = self.max_keys.max(shards);
        let per_shard = max_keys / shards;
        MemoryStore {
            shards: (0..shards)
                .map(|_| Padded(Lock::new(Shard::new(per_shard))))
                .collect(),
            mask: shards - 1,
            key: SipKey::random(),
            clock,
            max_keys: per_shard * shards,
        }
    }
}

/// The in-process [`RateLimitStore`]: sharded, exact under contention, with bounded memory.
///
/// - **Atomic**: each decision runs under its shard's lock, so concurrent requests on one key
///   never admit more than the quota. A multi-key check locks its shards in ascending order.
/// - **Lean**: a decision on an existing key hashes once, takes one uncontended lock and
///   allocates nothing. The synchronous [`check_now`](Self::check_now),
///   [`peek_now`](Self::peek_now) and [`check_all_now`](Self::check_all_now) are the core; the
///   async trait methods call them.
/// - **Bounded**: keys are stored as a 24-byte slot (a 64-bit keyed digest of the limit's
///   namespace and the key, plus the [`State`]). Idle keys, whose state has expired, are swept
///   whenever a shard doubles; the store never holds more than `max_keys` keys, and when full of
///   live keys it forgets those closest to expiry (counted in [`MemoryStats::evicted_live`] and
///   logged). Key IPv6 clients by prefix (the default of
///   [`ClientIpResolver`](crate::ClientIpResolver)) so one client cannot mint keys by the
///   billion.
/// - **Keys**: two distinct keys share a budget only if their 64-bit digests collide. The digest
///   is SipHash-1-3 (the keyed function `std` uses against hash flooding) under a per-store random
///   key, so nobody can aim for a collision; by chance, the probability among a million live keys
///   is about 3 × 10⁻⁸. (Two limit names whose 64-bit [`Limit::namespace`] ids collide would
///   share keys; names are chosen by the operator, not by clients.)
///
/// ```
/// use portcullis_core::ManualClock;
/// use portcullis_ratelimit::{Limit, MemoryStore, Quota};
///
/// let clock = ManualClock::at_secs(1_700_000_000);
/// let store = MemoryStore::builder().max_keys(10_000).build(clock.clone());
/// let limit = Limit::new("token-ip", "2/min".parse::<Quota>()?)?;
/// assert!(store.check_now(&limit, "203.0.113.7").allowed);
/// assert!(store.check_now(&limit, "203.0.113.7").allowed);
/// let d = store.check_now(&limit, "203.0.113.7");
/// assert!(!d.allowed);
/// assert_eq!(d.retry_after.as_secs(), 30);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MemoryStore<C = SystemClock> {
    shards: Box<[Padded]>,
    mask: usize,
    key: SipKey,
    clock: C,
    max_keys: usize,
}

impl<C> fmt::Debug for MemoryStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.shards.len())
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}

impl MemoryStore<SystemClock> {
    /// A store with the default configuration on the system clock.
    #[must_use]
    pub fn new() -> Self {
        MemoryStoreBuilder::default().build(SystemClock)
    }
}

impl Default for MemoryStore<SystemClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore<SystemClock> {
    /// A builder (max keys, shards).
    #[must_use]
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder::default()
    }
}

impl<C: Clock> MemoryStore<C> {
    /// The cap on keys (rounded down to a multiple of the shard count).
    #[must_use]
    pub const fn max_keys(&self) -> usize {
        self.max_keys
    }

    #[inline]
    fn digest(&self, limit: &Limit, key: &str) -> u64 {
        // SipHash-1-3 under the store's random key, of the limit's namespace word and the key;
        // never 0, which marks an empty slot (0 and 1 share a slot, a 2^-63 chance).
        self.key.sip13(limit.namespace(), key.as_bytes()).max(1)
    }

    fn shard_index(&self, digest: u64) -> usize {
        // The table indexes its slots with the low bits; the shard takes bits 40.. so the two
        // are independent.
        usize::try_from(digest >> 40).unwrap_or_default() & self.mask
    }

    #[inline]
    fn lock(&self, index: usize) -> Guard<'_, Shard> {
        #[allow(clippy::indexing_slicing)] // index is masked by len - 1 (len is a power of two)
        let shard = &self.shards[index & self.mask];
        shard.0.lock()
    }

    fn now(&self) -> u64 {
        self.clock.now().as_micros()
    }

    /// Check one request and count it if admitted (the synchronous core of
    /// [`RateLimitStore::check`]).
    pub fn check_now(&self, limit: &Limit, key: &str) -> Decision {
        let digest = self.digest(limit, key);
        let now = self.now();
        self.lock(self.shard_index(digest))
            .decide(digest, limit, now, true)
    }

    /// What [`check_now`](Self::check_now) would answer, consuming nothing.
    pub fn peek_now(&self, limit: &Limit, key: &str) -> Decision {
        let digest = self.digest(limit, key);
        let now = self.now();
        self.lock(self.shard_index(digest))
            .decide(digest, limit, now, false)
    }

    /// Check one request against several limits atomically; none consumes if any denies (the
    /// synchronous core of [`RateLimitStore::check_all`]).
    pub fn check_all_now(&self, checks: &[Check<'_>]) -> MultiDecision {
        let digests: Vec<(u64, usize)> = checks
            .iter()
            .map(|c| {
                let d = self.digest(c.limit, c.key);
                (d, self.shard_index(d))
            })
            .collect();
        let mut order: Vec<usize> = digests.iter().map(|(_, s)| *s).collect();
        order.sort_unstable();
        order.dedup();
        // Ascending shard order: two multi-key checks can never wait for each other in a cycle.
        let mut guards: Vec<(usize, Guard<'_, Shard>)> =
            order.iter().map(|&i| (i, self.lock(i))).collect();
        let now = self.now();
        let stored = |guards: &[(usize, Guard<'_, Shard>)], digest: u64, shard: usize| {
            guards
                .iter()
                .find(|(i, _)| *i == shard)
                .and_then(|(_, g)| g.get(digest))
        };

        // Decide each in order against the state as earlier checks of this call would leave it.
        let mut pending: Vec<Option<State>> = Vec::with_capacity(checks.len());
        let mut decisions = Vec::with_capacity(checks.len());
        for (i, (check, &(digest, shard))) in checks.iter().zip(&digests).enumerate() {
            let earlier = digests
                .iter()
                .zip(&pending)
                .take(i)
                .rev()
                .find(|((d, _), w)| *d == digest && w.is_some())
                .and_then(|(_, w)| *w);
            let state = earlier.or_else(|| stored(&guards, digest, shard));
            let o = algorithm::decide(check.limit, state, now, true);
            pending.push(o.write);
            decisions.push(o.decision);
        }
        let allowed = decisions.iter().all(|d| d.allowed);
        if allowed {
            for (&(digest, shard), write) in digests.iter().zip(&pending) {
                if let (Some(state), Some((_, g))) =
                    (write, guards.iter_mut().find(|(i, _)| *i == shard))
                {
                    g.put(digest, *state, now);
                }
            }
        } else {
            // Nothing consumed: report the keys that would have admitted as peeks.
            for ((check, &(digest, shard)), d) in checks.iter().zip(&digests).zip(&mut decisions) {
                if d.allowed {
                    let state = stored(&guards, digest, shard);
                    *d = algorithm::decide(check.limit, state, now, false).decision;
                }
            }
        }
        MultiDecision { allowed, decisions }
    }

    /// Forget every idle key now and give unused memory back (the store also does this by
    /// itself as shards grow; call this from a timer to shrink after a burst of clients).
    pub fn purge_expired(&self) {
        let now = self.now();
        for i in 0..self.shards.len() {
            self.lock(i).sweep(now);
        }
    }

    /// Counters: keys held, evictions, heap bytes.
    #[must_use]
    pub fn stats(&self) -> MemoryStats {
        let mut stats = MemoryStats::default();
        for i in 0..self.shards.len() {
            let shard = self.lock(i);
            stats.keys += shard.table.len();
            stats.evicted_idle += shard.evicted_idle;
            stats.evicted_live += shard.evicted_live;
            stats.heap_bytes += shard.table.allocation_size();
        }
        stats
    }

    /// The number of keys held.
    #[must_use]
    pub fn len(&self) -> usize {
        (0..self.shards.len())
            .map(|i| self.lock(i).table.len())
            .sum()
    }

    /// Whether no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait::async_trait]
impl<C: Clock> RateLimitStore for MemoryStore<C> {
    async fn check(&self, limit: &Limit, key: &str) -> Result<Decision, StoreError> {
        Ok(self.check_now(limit, key))
    }

    async fn peek(&self, limit: &Limit, key: &str) -> Result<Decision, StoreError> {
        Ok(self.peek_now(limit, key))
    }

    async fn check_all(&self, checks: &[Check<'_>]) -> Result<MultiDecision, StoreError> {
        Ok(self.check_all_now(checks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Algorithm, Quota};
    use portcullis_core::ManualClock;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    fn limit(name: &str, q: &str) -> Limit {
        Limit::new(name.to_owned(), q.parse::<Quota>().unwrap()).unwrap()
    }

    #[test]
    fn slot_is_24_bytes() {
        assert_eq!(size_of::<Slot>(), 24);
    }

    #[test]
    fn limits_namespace_keys() {
        let clock = ManualClock::at_secs(1_700_000_000);
        let store = MemoryStore::builder().build(clock);
        let a = limit("a", "1/min");
        let b = limit("b", "1/min");
        assert!(store.check_now(&a, "k").allowed);
        assert!(!store.check_now(&a, "k").allowed);
        assert!(store.check_now(&b, "k").allowed);
        assert!(store.check_now(&a, "k2").allowed);
        let fixed = a.with_algorithm(Algorithm::FixedWindow);
        assert!(store.check_now(&fixed, "k").allowed);
    }

    #[test]
    fn exact_under_contention() {
        let clock = ManualClock::at_secs(1_700_000_000);
        let store = Arc::new(MemoryStore::builder().shards(4).build(clock));
        for alg in [
            Algorithm::Gcra,
            Algorithm::FixedWindow,
            Algorithm::SlidingWindow,
        ] {
            let l = limit("hot", "1000/hour").with_algorithm(alg);
            let admitted = Arc::new(AtomicU32::new(0));
            std::thread::scope(|s| {
                for _ in 0..8 {
                    let (store, l, admitted) = (&store, &l, &admitted);
                    s.spawn(move || {
                        for _ in 0..500 {
                            if store.check_now(l, "one-key").allowed {
                                admitted.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    });
                }
            });
            assert_eq!(admitted.load(Ordering::Relaxed), 1000, "{alg}");
        }
    }

    #[test]
    fn multi_key_duplicates_count_twice() {
        let store = MemoryStore::builder().build(ManualClock::at_secs(1_700_000_000));
        let l = limit("d", "3/min");
        let two = [Check::new(&l, "k"), Check::new(&l, "k")];
        assert!(store.check_all_now(&two).allowed);
        let m = store.check_all_now(&two);
        assert!(!m.allowed);
        assert!(m.decisions[0].allowed && !m.decisions[1].allowed);
        // nothing consumed by the denied pair: one unit left
        assert_eq!(store.peek_now(&l, "k").remaining, 1);
        assert!(store.check_all_now(&[Check::new(&l, "k")]).allowed);
        assert!(store.check_all_now(&[]).allowed);
    }

    #[test]
    fn idle_keys_are_swept_as_the_table_grows() {
        let clock = ManualClock::at_secs(1_700_000_000);
        let store = MemoryStore::builder()
            .shards(1)
            .max_keys(1_000_000)
            .build(clock.clone());
        let l = limit("i", "10/min");
        for i in 0..10_000 {
            store.check_now(&l, &format!("old-{i}"));
        }
        clock.advance(Duration::from_secs(7));
        for i in 0..10_000 {
            store.check_now(&l, &format!("new-{i}"));
        }
        let stats = store.stats();
        assert!(stats.evicted_idle >= 5_000, "{stats:?}");
        assert!(stats.keys < 16_000, "{stats:?}");
        assert_eq!(stats.evicted_live, 0);
        clock.advance(Duration::from_secs(7));
        store.purge_expired();
        let stats = store.stats();
        assert_eq!(stats.keys, 0);
        assert!(stats.heap_bytes < 16 * 1024, "{stats:?}");
        assert!(store.is_empty());
    }

    #[test]
    fn a_one_key_shard_holds_one_key() {
        let clock = ManualClock::at_secs(1_700_000_000);
        let store = MemoryStore::builder().shards(4).max_keys(4).build(clock);
        let l = limit("one", "1/hour");
        for i in 0..100 {
            store.check_now(&l, &format!("k{i}"));
            assert!(store.len() <= 4, "{:?}", store.stats());
        }
        assert_eq!(store.max_keys(), 4);
    }

    #[test]
    fn live_eviction_takes_the_keys_closest_to_expiry() {
        let clock = ManualClock::at_secs(1_700_000_000);
        let store = MemoryStore::builder()
            .shards(1)
            .max_keys(100)
            .build(clock.clone());
        let l = limit("e", "1/hour");
        for i in 0..100 {
            store.check_now(&l, &format!("k{i}"));
            clock.advance(Duration::from_secs(1));
        }
        assert_eq!(store.len(), 100);
        store.check_now(&l, "newcomer");
        let stats = store.stats();
        assert!(stats.keys <= 100 && stats.evicted_live > 0, "{stats:?}");
        // the oldest (closest to expiry) were evicted, the newest kept their state
        assert!(store.peek_now(&l, "k0").allowed);
        assert!(!store.peek_now(&l, "k99").allowed);
        assert!(!store.peek_now(&l, "newcomer").allowed);
    }
}
