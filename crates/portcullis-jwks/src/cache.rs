//! The JWKS cache: lock-free reads, one fetch at a time, a cooldown, stale serving.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use portcullis_core::{Clock, UnixTime};
use tokio::sync::watch;

use crate::defaults::{
    DEFAULT_BACKGROUND_CHECK, DEFAULT_COOLDOWN, DEFAULT_MAX_STALENESS, DEFAULT_MAX_TTL,
    DEFAULT_MIN_TTL, DEFAULT_REFRESH_AHEAD, DEFAULT_TTL,
};
use crate::error::{ConfigError, FetchError, VerifyError};
use crate::keys::{KeySet, Lookup, SkippedKey, VerifyKey};
use crate::rules::Parsed;
use crate::source::KeySource;

/// How the cache refreshes. Every default is a named constant in [`crate::defaults`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    min_ttl: Duration,
    max_ttl: Duration,
    default_ttl: Duration,
    cooldown: Duration,
    max_staleness: Duration,
    refresh_ahead: Duration,
    background_check: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            min_ttl: DEFAULT_MIN_TTL,
            max_ttl: DEFAULT_MAX_TTL,
            default_ttl: DEFAULT_TTL,
            cooldown: DEFAULT_COOLDOWN,
            max_staleness: DEFAULT_MAX_STALENESS,
            refresh_ahead: DEFAULT_REFRESH_AHEAD,
            background_check: DEFAULT_BACKGROUND_CHECK,
        }
    }
}

impl CacheConfig {
    /// The bounds a server's `max-age` is clamped to (defaults [`DEFAULT_MIN_TTL`],
    /// [`DEFAULT_MAX_TTL`]).
    #[must_use]
    pub const fn ttl_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.min_ttl = min;
        self.max_ttl = max;
        self
    }

    /// The freshness when the server sends no `max-age` (default [`DEFAULT_TTL`]); must lie
    /// within the TTL bounds.
    #[must_use]
    pub const fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// The least time between two fetches, whatever triggers them (default
    /// [`DEFAULT_COOLDOWN`]).
    #[must_use]
    pub const fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// How long after expiry keys keep verifying while the IdP cannot be reached (default
    /// [`DEFAULT_MAX_STALENESS`]; zero turns stale serving off).
    #[must_use]
    pub const fn max_staleness(mut self, max: Duration) -> Self {
        self.max_staleness = max;
        self
    }

    /// With background refresh, how long before expiry keys are refetched (default
    /// [`DEFAULT_REFRESH_AHEAD`]).
    #[must_use]
    pub const fn refresh_ahead(mut self, ahead: Duration) -> Self {
        self.refresh_ahead = ahead;
        self
    }

    /// The longest the background task sleeps between looks at the clock (default
    /// [`DEFAULT_BACKGROUND_CHECK`]).
    #[must_use]
    pub const fn background_check(mut self, every: Duration) -> Self {
        self.background_check = every;
        self
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.min_ttl.is_zero() {
            return Err(ConfigError::Cache("the minimum TTL must not be zero"));
        }
        if self.min_ttl > self.max_ttl {
            return Err(ConfigError::Cache("the minimum TTL is above the maximum"));
        }
        if !(self.min_ttl..=self.max_ttl).contains(&self.default_ttl) {
            return Err(ConfigError::Cache(
                "the default TTL is outside the TTL bounds",
            ));
        }
        if self.cooldown.is_zero() {
            return Err(ConfigError::Cache("the cooldown must not be zero"));
        }
        if self.background_check.is_zero() {
            return Err(ConfigError::Cache(
                "the background check interval must not be zero",
            ));
        }
        Ok(())
    }

    /// The freshness for a response that asked for `max_age`.
    fn ttl(&self, max_age: Option<Duration>) -> Duration {
        max_age.map_or(self.default_ttl, |m| m.clamp(self.min_ttl, self.max_ttl))
    }
}

/// Counters of what the cache did, readable at any time with [`JwksCache::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CacheStats {
    /// Fetches started (requests to the IdP).
    pub fetches: u64,
    /// Fetches that failed (transport, status, content type, size, or no usable key).
    pub fetch_errors: u64,
    /// Keys found in fresh cached keys, without fetching.
    pub hits: u64,
    /// Lookups that fresh cached keys could not answer (cold cache, expired keys, unknown `kid`).
    pub misses: u64,
    /// Tokens verified with expired keys (a fetch was under way, or the IdP could not be reached
    /// and the keys were within the maximum staleness).
    pub stale_serves: u64,
    /// Fetches that were wanted but not made because of the cooldown.
    pub cooldown_skips: u64,
    /// Keys skipped in the last JWK set parsed (see [`JwksCache::skipped_keys`]).
    pub skipped_keys: u64,
}

#[derive(Default)]
struct Counters {
    fetches: AtomicU64,
    fetch_errors: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    stale_serves: AtomicU64,
    cooldown_skips: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Keys as of one fetch.
struct Snapshot {
    keys: KeySet,
    fetched_at: UnixTime,
    expires_at: UnixTime,
    usable_until: UnixTime,
}

type FlightResult = Option<Result<(), FetchError>>;

/// What the slow path shares; touched only on misses, never while a fetch is under way.
#[derive(Default)]
struct Flight {
    /// The fetch under way, if any: its result is published on this channel.
    inflight: Option<watch::Receiver<FlightResult>>,
    last_attempt: Option<UnixTime>,
    last_error: Option<FetchError>,
    last_skipped: Vec<SkippedKey>,
}

struct Inner {
    source: Arc<dyn KeySource>,
    clock: Arc<dyn Clock>,
    config: CacheConfig,
    state: ArcSwapOption<Snapshot>,
    flight: Mutex<Flight>,
    counters: Counters,
}

/// A cache of the identity provider's keys.
///
/// - **Reads are lock-free**: the current keys sit behind an [`ArcSwapOption`]; a verification
///   with a known `kid` does one atomic load, a scan of a handful of keys, and the signature
///   check with the key parsed when it was fetched.
/// - **Freshness** comes from the response's `Cache-Control: max-age`, clamped to
///   [`CacheConfig::ttl_bounds`] (a default when there is none).
/// - **One fetch at a time** (single flight): concurrent misses wait for the same fetch. The fetch
///   runs in its own task when a tokio runtime is present, so a caller that gives up does not
///   abandon it. No lock is held while it runs: tokens whose keys are cached keep verifying.
/// - **At most one fetch per cooldown**, whatever asks for it: an unknown `kid`, expired keys, or
///   a retry after a failure. A flood of tokens with junk `kid`s costs the IdP at most one
///   request per cooldown.
/// - **Stale serving**: when keys have expired and the IdP cannot be reached, they keep verifying
///   for up to [`CacheConfig::max_staleness`]; after that, verification fails with
///   [`VerifyError::KeysUnavailable`]. Expired keys also serve while a refresh is under way.
/// - **Background refresh** (optional, [`JwksCache::spawn_background_refresh`]) refetches
///   shortly before expiry, so requests never wait for a fetch.
/// - A fetched set with no usable key, or one that does not parse, never replaces usable keys.
///
/// Clones share one cache.
#[derive(Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state.load();
        f.debug_struct("JwksCache")
            .field("source", &self.inner.source)
            .field("config", &self.inner.config)
            .field("keys", &state.as_ref().map(|s| &s.keys))
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

enum Refresh {
    /// A fetch ran (this caller's or one it joined), with this result.
    Fetched(Result<(), FetchError>),
    /// No fetch: the cooldown has not passed since the last one.
    CoolingDown,
}

enum Role {
    Follow(watch::Receiver<FlightResult>),
    Lead(watch::Sender<FlightResult>),
}

/// Clears the flight if the leading caller is dropped before its fetch finishes (only used when
/// there is no tokio runtime to run the fetch in its own task).
struct LeadGuard<'a> {
    inner: &'a Inner,
    tx: Option<watch::Sender<FlightResult>>,
}

impl LeadGuard<'_> {
    fn finish(mut self, result: Result<(), FetchError>) {
        if let Some(tx) = self.tx.take() {
            self.inner.finish_flight(&tx, result);
        }
    }
}

impl Drop for LeadGuard<'_> {
    fn drop(&mut self) {
        if self.tx.is_some() {
            // Dropping the sender tells the followers the fetch was abandoned.
            self.inner.flight().inflight = None;
        }
    }
}

impl Inner {
    fn flight(&self) -> MutexGuard<'_, Flight> {
        // The lock guards plain data that every writer leaves consistent; a panic elsewhere
        // while it was held cannot have broken it.
        self.flight.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fetch, parse and install; called by exactly one task at a time.
    async fn fetch_and_install(&self) -> Result<(), FetchError> {
        bump(&self.counters.fetches);
        let result = match self.source.fetch().await {
            Ok(fetched) => match KeySet::from_json(&fetched.body) {
                Ok(keys) => Ok((keys, fetched.max_age)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match result {
            Ok((keys, max_age)) => {
                let now = self.clock.now();
                let ttl = self.config.ttl(max_age);
                let expires_at = now.saturating_add(ttl);
                for s in keys.skipped() {
                    tracing::warn!(index = s.index, kid = ?s.kid, reason = %s.reason, "JWKS key skipped");
                }
                self.flight().last_skipped = keys.skipped().to_vec();
                tracing::debug!(keys = keys.len(), ?ttl, "JWKS fetched");
                self.state.store(Some(Arc::new(Snapshot {
                    keys,
                    fetched_at: now,
                    expires_at,
                    usable_until: expires_at.saturating_add(self.config.max_staleness),
                })));
                Ok(())
            }
            Err(e) => {
                bump(&self.counters.fetch_errors);
                if let FetchError::NoUsableKeys { skipped } = &e {
                    for s in skipped {
                        tracing::warn!(index = s.index, kid = ?s.kid, reason = %s.reason, "JWKS key skipped");
                    }
                    self.flight().last_skipped.clone_from(skipped);
                }
                tracing::warn!(error = %e, "JWKS fetch failed");
                Err(e)
            }
        }
    }

    fn finish_flight(&self, tx: &watch::Sender<FlightResult>, result: Result<(), FetchError>) {
        {
            let mut flight = self.flight();
            flight.inflight = None;
            flight.last_error = result.as_ref().err().cloned();
        }
        tx.send_replace(Some(result));
    }
}

impl JwksCache {
    /// A cache over `source`, with time from `clock`. Nothing is fetched until the first
    /// verification (or [`JwksCache::refresh`]).
    ///
    /// # Errors
    /// [`ConfigError::Cache`] for inconsistent durations.
    pub fn new(
        source: Arc<dyn KeySource>,
        clock: Arc<dyn Clock>,
        config: CacheConfig,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                source,
                clock,
                config,
                state: ArcSwapOption::empty(),
                flight: Mutex::new(Flight::default()),
                counters: Counters::default(),
            }),
        })
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        let c = &self.inner.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CacheStats {
            fetches: load(&c.fetches),
            fetch_errors: load(&c.fetch_errors),
            hits: load(&c.hits),
            misses: load(&c.misses),
            stale_serves: load(&c.stale_serves),
            cooldown_skips: load(&c.cooldown_skips),
            skipped_keys: u64::try_from(self.inner.flight().last_skipped.len()).unwrap_or(u64::MAX),
        }
    }

    /// The keys skipped in the last JWK set parsed, and why.
    #[must_use]
    pub fn skipped_keys(&self) -> Vec<SkippedKey> {
        self.inner.flight().last_skipped.clone()
    }

    /// When the cached keys were fetched and until when they are fresh, if any are cached.
    #[must_use]
    pub fn freshness(&self) -> Option<(UnixTime, UnixTime)> {
        self.inner
            .state
            .load()
            .as_ref()
            .map(|s| (s.fetched_at, s.expires_at))
    }

    /// Fetch now, unless a fetch is already under way (then wait for it) or the cooldown has not
    /// passed since the last one. Useful to warm the cache at startup.
    ///
    /// Within the cooldown after a successful fetch this does nothing and succeeds: the keys are
    /// as fresh as the cooldown allows.
    ///
    /// # Errors
    /// The fetch's error, or, within the cooldown after a failed fetch,
    /// [`FetchError::CoolingDown`] with that fetch's error.
    pub async fn refresh(&self) -> Result<(), FetchError> {
        match self.refresh_inner().await {
            Refresh::Fetched(r) => r,
            Refresh::CoolingDown => match self.inner.flight().last_error.clone() {
                None => Ok(()),
                Some(e) => Err(FetchError::CoolingDown(Box::new(e))),
            },
        }
    }

    /// Refresh if nothing is cached or the keys expire within [`CacheConfig::refresh_ahead`]
    /// (respecting the cooldown). Returns whether a fetch ran and succeeded. The background task
    /// calls this; it can also be driven by hand.
    pub async fn refresh_if_due(&self) -> bool {
        if !self.until_due().is_zero() {
            return false;
        }
        matches!(self.refresh_inner().await, Refresh::Fetched(Ok(())))
    }

    /// Time until a background refresh is due (zero if due now).
    fn until_due(&self) -> Duration {
        let now = self.inner.clock.now();
        match self.inner.state.load().as_ref() {
            None => Duration::ZERO,
            Some(s) => s
                .expires_at
                .saturating_sub(self.inner.config.refresh_ahead)
                .saturating_duration_since(now),
        }
    }

    /// Start a task that refreshes the keys shortly before they expire. The task stops when the
    /// returned handle is dropped, or when every clone of the cache is dropped.
    ///
    /// # Panics
    /// Outside a tokio runtime (like `tokio::spawn`).
    #[must_use = "the background refresh stops when the handle is dropped"]
    pub fn spawn_background_refresh(&self) -> BackgroundRefresh {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let handle = tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { break };
                let cache = Self { inner };
                let wait = cache.until_due().min(cache.inner.config.background_check);
                drop(cache);
                tokio::time::sleep(wait).await;
                let Some(inner) = weak.upgrade() else { break };
                let _ = Self { inner }.refresh_if_due().await;
            }
        });
        BackgroundRefresh { handle }
    }

    /// Start a fetch, join the one under way, or decline because of the cooldown.
    async fn refresh_inner(&self) -> Refresh {
        let role = {
            let mut flight = self.inner.flight();
            if let Some(rx) = &flight.inflight {
                Role::Follow(rx.clone())
            } else {
                let now = self.inner.clock.now();
                let cooling = flight
                    .last_attempt
                    .is_some_and(|last| now < last.saturating_add(self.inner.config.cooldown));
                if cooling {
                    return Refresh::CoolingDown;
                }
                flight.last_attempt = Some(now);
                let (tx, rx) = watch::channel(None);
                flight.inflight = Some(rx.clone());
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => {
                        // Its own task: the fetch completes even if every waiting caller is
                        // cancelled (a client disconnecting mid-request drops its handler).
                        let inner = Arc::clone(&self.inner);
                        drop(runtime.spawn(async move {
                            let result = inner.fetch_and_install().await;
                            inner.finish_flight(&tx, result);
                        }));
                        Role::Follow(rx)
                    }
                    Err(_) => Role::Lead(tx),
                }
            }
        };
        match role {
            Role::Follow(mut rx) => match rx.wait_for(Option::is_some).await {
                Ok(result) => {
                    Refresh::Fetched(result.clone().unwrap_or(Err(FetchError::Abandoned)))
                }
                Err(_) => Refresh::Fetched(Err(FetchError::Abandoned)),
            },
            Role::Lead(tx) => {
                let guard = LeadGuard {
                    inner: &self.inner,
                    tx: Some(tx),
                };
                let result = self.inner.fetch_and_install().await;
                guard.finish(result.clone());
                Refresh::Fetched(result)
            }
        }
    }

    /// Find the key for the token's `kid` and `alg` and run `verify` with it and the time.
    ///
    /// The fast path (fresh keys, known `kid`) takes no lock and does not await.
    pub(crate) async fn with_key<R>(
        &self,
        input: Parsed<'_>,
        verify: impl FnOnce(Parsed<'_>, &VerifyKey, UnixTime) -> Result<R, VerifyError>,
    ) -> Result<R, VerifyError> {
        let now = self.inner.clock.now();
        {
            let state = self.inner.state.load();
            if let Some(snap) = state.as_ref()
                && now < snap.expires_at
            {
                match snap.keys.find(input.kid.as_deref(), input.alg) {
                    Lookup::Found(key) => {
                        bump(&self.inner.counters.hits);
                        return verify(input, key, now);
                    }
                    Lookup::Mismatch => return Err(VerifyError::KeyMismatch),
                    Lookup::NotFound => {}
                }
            }
        }
        self.with_key_slow(input, verify, now).await
    }

    async fn with_key_slow<R>(
        &self,
        input: Parsed<'_>,
        verify: impl FnOnce(Parsed<'_>, &VerifyKey, UnixTime) -> Result<R, VerifyError>,
        now: UnixTime,
    ) -> Result<R, VerifyError> {
        let counters = &self.inner.counters;
        let serve_stale_now = self.inner.state.load_full().filter(|s| {
            now >= s.expires_at && now < s.usable_until && self.inner.flight().inflight.is_some()
        });
        if let Some(snap) = serve_stale_now {
            // A refresh is under way: do not wait for it with keys that are still usable.
            if let Lookup::Found(key) = snap.keys.find(input.kid.as_deref(), input.alg) {
                bump(&counters.stale_serves);
                return verify(input, key, now);
            }
        }
        bump(&counters.misses);
        let failure = match self.refresh_inner().await {
            Refresh::Fetched(Ok(())) => None,
            Refresh::Fetched(Err(e)) => Some(e),
            Refresh::CoolingDown => {
                bump(&counters.cooldown_skips);
                let last = self.inner.flight().last_error.clone();
                last.map(|e| FetchError::CoolingDown(Box::new(e)))
            }
        };
        let now = self.inner.clock.now();
        let unavailable = |failure: Option<FetchError>| {
            VerifyError::KeysUnavailable(failure.unwrap_or(FetchError::Abandoned))
        };
        let Some(snap) = self.inner.state.load_full() else {
            return Err(unavailable(failure));
        };
        let stale = now >= snap.expires_at;
        if stale && now >= snap.usable_until {
            return Err(unavailable(failure));
        }
        match snap.keys.find(input.kid.as_deref(), input.alg) {
            Lookup::Found(key) => {
                if stale {
                    bump(&counters.stale_serves);
                }
                verify(input, key, now)
            }
            Lookup::Mismatch => Err(VerifyError::KeyMismatch),
            Lookup::NotFound => Err(VerifyError::UnknownKey),
        }
    }
}

/// The background refresh task of a [`JwksCache`]; dropping it stops the task.
#[derive(Debug)]
pub struct BackgroundRefresh {
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for BackgroundRefresh {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_validated() {
        let s = Duration::from_secs;
        assert!(CacheConfig::default().validate().is_ok());
        assert!(
            CacheConfig::default()
                .ttl_bounds(s(10), s(5))
                .validate()
                .is_err()
        );
        assert!(
            CacheConfig::default()
                .ttl_bounds(s(0), s(5))
                .validate()
                .is_err()
        );
        assert!(CacheConfig::default().default_ttl(s(1)).validate().is_err());
        assert!(CacheConfig::default().cooldown(s(0)).validate().is_err());
        assert!(
            CacheConfig::default()
                .background_check(s(0))
                .validate()
                .is_err()
        );
    }

    #[test]
    fn ttl_is_clamped() {
        let c = CacheConfig::default();
        assert_eq!(c.ttl(None), DEFAULT_TTL);
        assert_eq!(c.ttl(Some(Duration::ZERO)), DEFAULT_MIN_TTL);
        assert_eq!(
            c.ttl(Some(Duration::from_secs(3600))),
            Duration::from_secs(3600)
        );
        assert_eq!(c.ttl(Some(Duration::MAX)), DEFAULT_MAX_TTL);
    }
}
