//! The conformance suite every [`RateLimitStore`] must pass (feature `conformance`).
//!
//! ```
//! use std::sync::Arc;
//! use portcullis_core::ManualClock;
//! use portcullis_ratelimit::{MemoryStore, RateLimitStore, conformance};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = ManualClock::at_secs(0);
//! let c = clock.clone();
//! let report = conformance::run(
//!     move || Arc::new(MemoryStore::builder().build(c.clone())) as Arc<dyn RateLimitStore>,
//!     &clock,
//! )
//! .await;
//! assert!(report.is_ok(), "{report:?}");
//! # });
//! ```
//!
//! The store must read its time from the given [`ManualClock`] (a Redis store runs in its
//! caller's-clock mode): the suite sets and advances it to put requests exactly on window edges.
//! Each case builds a fresh store with the factory and uses keys unique to the run, so the suite
//! can run against a shared server. It checks:
//!
//! - each algorithm's exact counts at and across window edges, `remaining`, `reset_after` and
//!   `limit`;
//! - GCRA burst (default and custom);
//! - retry-after correctness: one microsecond before `retry_after` still denied, at it admitted;
//! - a peek consumes nothing;
//! - multi-key checks: admitted only if all admit, and a denial by any key consumes none
//!   (whichever key denies), duplicates count twice;
//! - keys and limits are independent, idle state is forgotten;
//! - concurrent checks on one key never admit more than the burst.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use portcullis_core::{ManualClock, UnixTime};

use crate::{Algorithm, Check, Decision, Limit, Quota, RateLimitStore, StoreError};

/// The cases that failed, with what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate-limit store conformance failed: {}", .failures.join("; "))]
pub struct ConformanceError {
    /// One line per failed case: `case: what was expected`.
    pub failures: Vec<String>,
}

/// The names of the cases [`run`] runs, in order.
pub const CASES: [&str; 11] = [
    "gcra_burst_then_rate",
    "gcra_custom_burst",
    "fixed_window_edges",
    "sliding_window_edges",
    "retry_after_is_exact",
    "peek_consumes_nothing",
    "multi_key_user_denial_leaves_ip_untouched",
    "multi_key_ip_denial_leaves_user_untouched",
    "keys_and_limits_are_independent",
    "idle_state_is_forgotten",
    "concurrent_checks_never_exceed_the_burst",
];

/// A period all windows of the suite align to: one hour.
const HOUR_MICROS: u64 = 3_600_000_000;
/// The suite's starting time: 2027-01-15T08:00:00Z, a multiple of an hour.
const BASE_MICROS: u64 = 1_800_000_000_000_000;
const SEC: u64 = 1_000_000;

type CaseResult = Result<(), String>;

struct Ctx {
    store: Arc<dyn RateLimitStore>,
    clock: ManualClock,
    run: String,
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> CaseResult {
    if ok { Ok(()) } else { Err(what()) }
}

fn limit(name: &str, quota: &str, algorithm: Algorithm) -> Result<Limit, String> {
    let quota: Quota = quota.parse().map_err(|e| format!("{quota}: {e}"))?;
    Limit::new(name.to_owned(), quota)
        .map(|l| l.with_algorithm(algorithm))
        .map_err(|e| format!("{name}: {e}"))
}

impl Ctx {
    fn key(&self, name: &str) -> String {
        format!("conformance-{}-{name}", self.run)
    }

    fn at(&self, micros: u64) {
        self.clock.set(UnixTime::from_micros(micros));
    }

    async fn check(&self, l: &Limit, key: &str) -> Result<Decision, String> {
        self.store
            .check(l, key)
            .await
            .map_err(|e| format!("store error: {e}"))
    }

    async fn peek(&self, l: &Limit, key: &str) -> Result<Decision, String> {
        self.store
            .peek(l, key)
            .await
            .map_err(|e| format!("store error: {e}"))
    }

    /// How many of `n` checks at the current time are admitted.
    async fn admitted(&self, l: &Limit, key: &str, n: u32) -> Result<u32, String> {
        let mut ok = 0;
        for _ in 0..n {
            if self.check(l, key).await?.allowed {
                ok += 1;
            }
        }
        Ok(ok)
    }
}

async fn gcra_burst_then_rate(c: &Ctx) -> CaseResult {
    let l = limit("conf-gcra", "10/min", Algorithm::Gcra)?;
    let k = c.key("gcra");
    c.at(BASE_MICROS);
    let fresh = c.peek(&l, &k).await?;
    ensure(
        fresh.allowed && fresh.remaining == 10 && fresh.limit == 10,
        || format!("fresh key {fresh:?}"),
    )?;
    for i in 0..10u32 {
        let d = c.check(&l, &k).await?;
        ensure(
            d.allowed
                && d.remaining == 9 - i
                && d.reset_after == Duration::from_secs(6 * u64::from(i + 1)),
            || format!("request {} of the burst: {d:?}", i + 1),
        )?;
    }
    let d = c.check(&l, &k).await?;
    ensure(
        !d.allowed
            && d.remaining == 0
            && d.retry_after == Duration::from_secs(6)
            && d.reset_after == Duration::from_secs(60),
        || format!("11th request: {d:?}"),
    )?;
    c.at(BASE_MICROS + 6 * SEC - 1);
    ensure(!c.check(&l, &k).await?.allowed, || {
        "admitted 1 µs before the interval".into()
    })?;
    c.at(BASE_MICROS + 6 * SEC);
    ensure(c.admitted(&l, &k, 3).await? == 1, || {
        "not exactly one admitted after one interval".into()
    })?;
    c.at(BASE_MICROS + 66 * SEC);
    ensure(c.admitted(&l, &k, 12).await? == 10, || {
        "burst not restored after a full period".into()
    })
}

async fn gcra_custom_burst(c: &Ctx) -> CaseResult {
    let l = limit("conf-burst", "10/min;burst=3", Algorithm::Gcra)?;
    let k = c.key("burst");
    c.at(BASE_MICROS);
    ensure(c.admitted(&l, &k, 5).await? == 3, || {
        "burst of 3 not enforced".into()
    })?;
    let d = c.check(&l, &k).await?;
    ensure(
        d.limit == 3 && d.retry_after == Duration::from_secs(6),
        || format!("denial {d:?}"),
    )?;
    c.at(BASE_MICROS + 12 * SEC);
    ensure(c.admitted(&l, &k, 5).await? == 2, || {
        "two intervals did not give exactly two".into()
    })
}

async fn fixed_window_edges(c: &Ctx) -> CaseResult {
    let l = limit("conf-fixed", "10/min", Algorithm::FixedWindow)?;
    let k = c.key("fixed");
    let start = BASE_MICROS + 7 * SEC; // the window starts at the first request
    c.at(start);
    let d = c.check(&l, &k).await?;
    ensure(
        d.allowed && d.remaining == 9 && d.reset_after == Duration::from_secs(60),
        || format!("first {d:?}"),
    )?;
    c.at(start + 30 * SEC);
    ensure(c.admitted(&l, &k, 12).await? == 9, || {
        "not 10 per window".into()
    })?;
    let d = c.check(&l, &k).await?;
    ensure(
        !d.allowed
            && d.retry_after == Duration::from_secs(30)
            && d.reset_after == Duration::from_secs(30),
        || format!("denial mid-window {d:?}"),
    )?;
    c.at(start + 60 * SEC - 1);
    ensure(!c.check(&l, &k).await?.allowed, || {
        "admitted 1 µs before the window end".into()
    })?;
    c.at(start + 60 * SEC);
    ensure(c.admitted(&l, &k, 12).await? == 10, || {
        "next window not a full 10".into()
    })?;
    let d = c.peek(&l, &k).await?;
    ensure(d.reset_after == Duration::from_secs(60), || {
        format!("new window's reset {d:?}")
    })
}

async fn sliding_window_edges(c: &Ctx) -> CaseResult {
    let l = limit("conf-sliding", "10/min", Algorithm::SlidingWindow)?;
    let k = c.key("sliding");
    let w = BASE_MICROS; // a window boundary
    c.at(w + 50 * SEC);
    ensure(c.admitted(&l, &k, 11).await? == 10, || {
        "not 10 in the first window".into()
    })?;
    c.at(w + 60 * SEC);
    let d = c.check(&l, &k).await?;
    ensure(
        !d.allowed && d.retry_after == Duration::from_secs(6),
        || format!("at the edge {d:?}"),
    )?;
    c.at(w + 66 * SEC - 1);
    ensure(!c.peek(&l, &k).await?.allowed, || {
        "admitted 1 µs before retry".into()
    })?;
    c.at(w + 66 * SEC);
    ensure(c.admitted(&l, &k, 3).await? == 1, || {
        "not exactly 1 at a tenth of the window".into()
    })?;
    c.at(w + 90 * SEC);
    ensure(c.admitted(&l, &k, 10).await? == 4, || {
        "not 4 at half the window (prev weighs 5, curr 1)".into()
    })?;
    c.at(w + 120 * SEC);
    ensure(c.admitted(&l, &k, 10).await? == 5, || {
        "not 5 at the next edge (prev = 5)".into()
    })?;
    c.at(w + 240 * SEC);
    let d = c.peek(&l, &k).await?;
    ensure(d.remaining == 10 && d.reset_after.is_zero(), || {
        format!("after two idle windows {d:?}")
    })
}

async fn retry_after_is_exact(c: &Ctx) -> CaseResult {
    for (i, alg) in [
        Algorithm::Gcra,
        Algorithm::FixedWindow,
        Algorithm::SlidingWindow,
    ]
    .into_iter()
    .enumerate()
    {
        let l = limit(&format!("conf-retry-{alg}"), "7/min", alg)?;
        let k = c.key(&format!("retry-{i}"));
        let t = BASE_MICROS + 1_234_567;
        c.at(t);
        ensure(c.admitted(&l, &k, 7).await? == 7, || {
            format!("{alg}: burst")
        })?;
        let d = c.check(&l, &k).await?;
        ensure(!d.allowed && !d.retry_after.is_zero(), || {
            format!("{alg}: not denied {d:?}")
        })?;
        let r = u64::try_from(d.retry_after.as_micros()).unwrap_or(u64::MAX);
        c.at(t + r - 1);
        ensure(!c.peek(&l, &k).await?.allowed, || {
            format!("{alg}: admitted 1 µs before retry_after")
        })?;
        c.at(t + r);
        ensure(c.check(&l, &k).await?.allowed, || {
            format!("{alg}: denied at retry_after")
        })?;
    }
    Ok(())
}

async fn peek_consumes_nothing(c: &Ctx) -> CaseResult {
    let l = limit("conf-peek", "3/min", Algorithm::Gcra)?;
    let k = c.key("peek");
    c.at(BASE_MICROS);
    for _ in 0..10 {
        c.peek(&l, &k).await?;
    }
    ensure(c.admitted(&l, &k, 5).await? == 3, || {
        "peeks consumed".into()
    })?;
    let d = c.peek(&l, &k).await?;
    ensure(
        !d.allowed && d.retry_after == Duration::from_secs(20),
        || format!("peek of an exhausted key {d:?}"),
    )
}

async fn multi_key_user_denial_leaves_ip_untouched(c: &Ctx) -> CaseResult {
    let ip = limit("conf-multi-ip", "10/min", Algorithm::Gcra)?;
    let user = limit("conf-multi-user", "2/min", Algorithm::Gcra)?;
    let (ik, uk) = (c.key("multi-ip"), c.key("multi-user"));
    c.at(BASE_MICROS);
    let both = [Check::new(&ip, &ik), Check::new(&user, &uk)];
    for n in 0..2 {
        let m = c.store.check_all(&both).await.map_err(|e| e.to_string())?;
        ensure(m.allowed && m.decisions.len() == 2, || {
            format!("request {n}: {m:?}")
        })?;
    }
    let m = c.store.check_all(&both).await.map_err(|e| e.to_string())?;
    let first = m.decisions.first().copied();
    let second = m.decisions.get(1).copied();
    ensure(
        !m.allowed
            && first.is_some_and(|d| d.allowed && d.remaining == 8)
            && second.is_some_and(|d| !d.allowed),
        || format!("user denial {m:?}"),
    )?;
    ensure(m.retry_after() == Duration::from_secs(30), || {
        format!("multi retry {m:?}")
    })?;
    let d = c.peek(&ip, &ik).await?;
    ensure(d.remaining == 8, || {
        format!("the user denial consumed from the IP budget: {d:?}")
    })
}

async fn multi_key_ip_denial_leaves_user_untouched(c: &Ctx) -> CaseResult {
    let ip = limit("conf-multi2-ip", "2/min", Algorithm::FixedWindow)?;
    let user = limit("conf-multi2-user", "20/min", Algorithm::SlidingWindow)?;
    let (ik, uk) = (c.key("multi2-ip"), c.key("multi2-user"));
    c.at(BASE_MICROS);
    ensure(c.admitted(&ip, &ik, 2).await? == 2, || "ip burst".into())?;
    let both = [Check::new(&ip, &ik), Check::new(&user, &uk)];
    let m = c.store.check_all(&both).await.map_err(|e| e.to_string())?;
    ensure(!m.allowed, || format!("not denied {m:?}"))?;
    let d = c.peek(&user, &uk).await?;
    ensure(d.remaining == 20, || {
        format!("the IP denial consumed from the user budget: {d:?}")
    })?;
    // duplicates count twice: two units of a key with one left is a denial, consuming nothing
    let single = limit("conf-multi2-dup", "3/min", Algorithm::Gcra)?;
    let dk = c.key("multi2-dup");
    ensure(c.admitted(&single, &dk, 2).await? == 2, || {
        "dup setup".into()
    })?;
    let twice = [Check::new(&single, &dk), Check::new(&single, &dk)];
    let m = c.store.check_all(&twice).await.map_err(|e| e.to_string())?;
    ensure(!m.allowed, || {
        format!("two units admitted with one left {m:?}")
    })?;
    ensure(c.peek(&single, &dk).await?.remaining == 1, || {
        "the denied pair consumed".into()
    })
}

async fn keys_and_limits_are_independent(c: &Ctx) -> CaseResult {
    let a = limit("conf-indep-a", "1/hour", Algorithm::Gcra)?;
    let b = limit("conf-indep-b", "1/hour", Algorithm::Gcra)?;
    let (k1, k2) = (c.key("indep-1"), c.key("indep-2"));
    c.at(BASE_MICROS);
    ensure(c.check(&a, &k1).await?.allowed, || "a/k1".into())?;
    ensure(!c.check(&a, &k1).await?.allowed, || "a/k1 twice".into())?;
    ensure(c.check(&a, &k2).await?.allowed, || {
        "another key shares the budget".into()
    })?;
    ensure(c.check(&b, &k1).await?.allowed, || {
        "another limit shares the budget".into()
    })?;
    let fixed = a.clone().with_algorithm(Algorithm::FixedWindow);
    ensure(c.check(&fixed, &k1).await?.allowed, || {
        "another algorithm shares the state".into()
    })
}

async fn idle_state_is_forgotten(c: &Ctx) -> CaseResult {
    c.at(BASE_MICROS);
    for (i, alg) in [
        Algorithm::Gcra,
        Algorithm::FixedWindow,
        Algorithm::SlidingWindow,
    ]
    .into_iter()
    .enumerate()
    {
        let l = limit(&format!("conf-idle-{alg}"), "5/min", alg)?;
        let k = c.key(&format!("idle-{i}"));
        c.at(BASE_MICROS);
        ensure(c.admitted(&l, &k, 9).await? == 5, || {
            format!("{alg}: burst")
        })?;
        c.at(BASE_MICROS + HOUR_MICROS);
        let d = c.peek(&l, &k).await?;
        ensure(d.remaining == 5 && d.reset_after.is_zero(), || {
            format!("{alg}: after an idle hour {d:?}")
        })?;
    }
    Ok(())
}

/// Poll every future until all are done (no runtime needed; futures that wait on I/O are
/// polled together, so a remote store sees them concurrently).
async fn join_all<T>(mut futures: Vec<Pin<Box<dyn Future<Output = T> + Send + '_>>>) -> Vec<T> {
    let mut out: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futures.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

async fn concurrent_checks_never_exceed_the_burst(c: &Ctx) -> CaseResult {
    c.at(BASE_MICROS);
    for (i, alg) in [
        Algorithm::Gcra,
        Algorithm::FixedWindow,
        Algorithm::SlidingWindow,
    ]
    .into_iter()
    .enumerate()
    {
        let l = limit(&format!("conf-race-{alg}"), "10/hour", alg)?;
        let k = c.key(&format!("race-{i}"));
        type Checked<'a> = Pin<Box<dyn Future<Output = Result<Decision, StoreError>> + Send + 'a>>;
        let futures: Vec<Checked<'_>> = (0..40).map(|_| c.store.check(&l, &k)).collect();
        let results = join_all(futures).await;
        let admitted = results
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|d| d.allowed))
            .count();
        let errors = results.iter().filter(|r| r.is_err()).count();
        ensure(admitted == 10 && errors == 0, || {
            format!("{alg}: {admitted} admitted, {errors} errors of 40 concurrent")
        })?;
    }
    Ok(())
}

/// Run every case against stores built by `make_store`, all reading `clock`.
///
/// # Errors
/// [`ConformanceError`] listing each failed case.
pub async fn run<F>(make_store: F, clock: &ManualClock) -> Result<(), ConformanceError>
where
    F: Fn() -> Arc<dyn RateLimitStore>,
{
    let run = format!("{:016x}", RandomState::new().hash_one(0u8));
    let mut failures = Vec::new();
    for name in CASES {
        let ctx = Ctx {
            store: make_store(),
            clock: clock.clone(),
            run: run.clone(),
        };
        let result = match name {
            "gcra_burst_then_rate" => gcra_burst_then_rate(&ctx).await,
            "gcra_custom_burst" => gcra_custom_burst(&ctx).await,
            "fixed_window_edges" => fixed_window_edges(&ctx).await,
            "sliding_window_edges" => sliding_window_edges(&ctx).await,
            "retry_after_is_exact" => retry_after_is_exact(&ctx).await,
            "peek_consumes_nothing" => peek_consumes_nothing(&ctx).await,
            "multi_key_user_denial_leaves_ip_untouched" => {
                multi_key_user_denial_leaves_ip_untouched(&ctx).await
            }
            "multi_key_ip_denial_leaves_user_untouched" => {
                multi_key_ip_denial_leaves_user_untouched(&ctx).await
            }
            "keys_and_limits_are_independent" => keys_and_limits_are_independent(&ctx).await,
            "idle_state_is_forgotten" => idle_state_is_forgotten(&ctx).await,
            "concurrent_checks_never_exceed_the_burst" => {
                concurrent_checks_never_exceed_the_burst(&ctx).await
            }
            other => Err(format!("unknown case {other}")),
        };
        if let Err(what) = result {
            failures.push(format!("{name}: {what}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(ConformanceError { failures })
    }
}
