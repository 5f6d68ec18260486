//! The three algorithms as pure functions of (limit, stored state, now).
//!
//! Every store keeps, per key, one [`State`]: an integer time in microseconds and two counters.
//! A store's job is only to run [`decide`] atomically: read the state, decide, write the new
//! state (with a time-to-live of `state.expires_at - now`, after which the state is equivalent to
//! no state at all), all in one step. The memory store does it under a shard lock; a Redis store
//! can port these few lines of integer arithmetic to one Lua script (every product fits in 2^53
//! when `capacity × window` does, see [`MAX_SPAN_MICROS`](crate::MAX_SPAN_MICROS)).
//!
//! With `T = emission interval`, `B = burst`, `L = count`, `P = period` (all integers):
//!
//! - **GCRA** — `expires_at` is the theoretical arrival time `tat`. Let `d = max(tat, now) − now`.
//!   Admit iff `d ≤ (B − 1)·T`; then `tat' = now + d + T`. `remaining = B − ⌈d'/T⌉`,
//!   `reset = d'`, and a denial's `retry = d − (B − 1)·T`.
//! - **Fixed window** — `expires_at` is the window end, `count` the admitted requests. A window
//!   starts at the first request after the previous one ended (`end = now + P`). Admit iff
//!   `count < L`; `reset = retry = end − now`.
//! - **Sliding window** — windows `[kP, (k+1)P)`; `expires_at = (k + 2)·P` for the window `k` the
//!   state was written in, `count` and `prev` its and the previous window's admitted requests. At
//!   offset `e = now − kP`, admit iff `prev·(P − e) + (curr + 1)·P ≤ L·P`.

use std::time::Duration;

use crate::{Algorithm, Decision, Limit};

/// The state a store keeps for one key under one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct State {
    /// Microseconds since the epoch after which this state is equivalent to no state: the store
    /// may forget it then (it is the key's time-to-live).
    pub expires_at: u64,
    /// Requests admitted in the current window (unused by GCRA).
    pub count: u32,
    /// Requests admitted in the previous window (sliding window only).
    pub prev: u32,
}

/// What [`decide`] returns: the decision and, if it changed, the state to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The decision.
    pub decision: Decision,
    /// The state to write, or `None` to leave the stored state as it is.
    pub write: Option<State>,
}

fn micros(us: u64) -> Duration {
    Duration::from_micros(us)
}

fn to_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Decide one request for a key whose stored state is `state` (`None` if absent), at `now`
/// (microseconds since the epoch). With `consume`, an admitted request is counted (the returned
/// `write` holds the new state); without, nothing changes (a peek).
///
/// Never panics: all arithmetic saturates, and a state written under another quota or found after
/// the clock went backwards is read conservatively.
#[must_use]
#[inline]
pub fn decide(limit: &Limit, state: Option<State>, now: u64, consume: bool) -> Outcome {
    match limit.algorithm() {
        Algorithm::Gcra => gcra(limit, state, now, consume),
        Algorithm::FixedWindow => fixed(limit, state, now, consume),
        Algorithm::SlidingWindow => sliding(limit, state, now, consume),
    }
}

#[inline]
fn gcra(limit: &Limit, state: Option<State>, now: u64, consume: bool) -> Outcome {
    let quota = limit.quota();
    let t = quota.emission_interval_micros();
    let burst = quota.burst().get();
    let tolerance = t.get().saturating_mul(u64::from(burst - 1));
    let d = state.map_or(0, |s| s.expires_at.saturating_sub(now));
    let remaining = |d: u64| to_u32(u64::from(burst).saturating_sub(d.div_ceil(t.get())));
    if d > tolerance {
        return Outcome {
            decision: Decision {
                allowed: false,
                limit: burst,
                remaining: 0,
                reset_after: micros(d),
                retry_after: micros(d - tolerance),
            },
            write: None,
        };
    }
    let (d, write) = if consume {
        let d = d.saturating_add(t.get());
        (
            d,
            Some(State {
                expires_at: now.saturating_add(d),
                count: 0,
                prev: 0,
            }),
        )
    } else {
        (d, None)
    };
    Outcome {
        decision: Decision {
            allowed: true,
            limit: burst,
            remaining: remaining(d),
            reset_after: micros(d),
            retry_after: Duration::ZERO,
        },
        write,
    }
}

#[inline]
fn fixed(limit: &Limit, state: Option<State>, now: u64, consume: bool) -> Outcome {
    let quota = limit.quota();
    let cap = quota.count().get();
    let (end, count) = match state {
        Some(s) if s.expires_at > now => (s.expires_at, s.count),
        _ => (now.saturating_add(quota.period_micros()), 0),
    };
    let left = end - now;
    if count >= cap {
        return Outcome {
            decision: Decision {
                allowed: false,
                limit: cap,
                remaining: 0,
                reset_after: micros(left),
                retry_after: micros(left),
            },
            write: None,
        };
    }
    let (count, write) = if consume {
        let count = count + 1;
        (
            count,
            Some(State {
                expires_at: end,
                count,
                prev: 0,
            }),
        )
    } else {
        (count, None)
    };
    Outcome {
        decision: Decision {
            allowed: true,
            limit: cap,
            remaining: cap - count,
            // A window that has not started (no request yet) has nothing to reset.
            reset_after: if count == 0 {
                Duration::ZERO
            } else {
                micros(left)
            },
            retry_after: Duration::ZERO,
        },
        write,
    }
}

#[inline]
fn sliding(limit: &Limit, state: Option<State>, now: u64, consume: bool) -> Outcome {
    let quota = limit.quota();
    let p = quota.period_micros();
    let cap = quota.count().get();
    let l = u64::from(cap);
    let mut index = now / p;
    let mut e = now % p;
    let (mut curr, mut prev) = (0u64, 0u64);
    if let Some(s) = state {
        let stored = (s.expires_at / p).saturating_sub(2);
        if stored > index {
            // The clock went backwards (or another node's clock is ahead): read the state as of
            // the start of its own window, which only delays admissions.
            index = stored;
            e = 0;
        }
        if stored == index {
            curr = u64::from(s.count);
            prev = u64::from(s.prev);
        } else if stored.saturating_add(1) == index {
            prev = u64::from(s.count);
        }
    }
    // Everything below is exact integer arithmetic in u128 (no overflow for any u32 × u64).
    let (p128, l128) = (u128::from(p), u128::from(l));
    let weighted = u128::from(prev) * u128::from(p - e);
    let estimate = u64::try_from(weighted.div_ceil(p128)).unwrap_or(u64::MAX);
    let virtual_now = index.saturating_mul(p).saturating_add(e);
    let ahead = virtual_now.saturating_sub(now);
    let window_end = index.saturating_add(1).saturating_mul(p);
    let reset = |curr: u64| {
        if curr > 0 {
            window_end.saturating_add(p).saturating_sub(now)
        } else if prev > 0 {
            window_end.saturating_sub(now)
        } else {
            0
        }
    };
    let admitted = weighted + u128::from(curr + 1) * p128 <= l128 * p128;
    if !admitted {
        // Earliest offset in this window at which prev·(P − e') ≤ (L − curr − 1)·P ...
        let in_this_window = if curr < l && prev > 0 {
            let budget = u128::from(l - curr - 1) * p128 / u128::from(prev);
            let e1 = p.saturating_sub(u64::try_from(budget).unwrap_or(u64::MAX));
            (e1 < p).then(|| e1.saturating_sub(e))
        } else {
            None
        };
        // ... or else in the next window, where `curr` becomes `prev` and nothing is current.
        let retry = in_this_window.unwrap_or_else(|| {
            let e2 = if curr == 0 {
                0
            } else {
                let budget = u128::from(l - 1) * p128 / u128::from(curr);
                p.saturating_sub(u64::try_from(budget).unwrap_or(u64::MAX))
            };
            (p - e).saturating_add(e2)
        });
        return Outcome {
            decision: Decision {
                allowed: false,
                limit: cap,
                remaining: 0,
                reset_after: micros(reset(curr)),
                retry_after: micros(retry.saturating_add(ahead)),
            },
            write: None,
        };
    }
    let (curr, write) = if consume {
        let curr = curr + 1;
        (
            curr,
            Some(State {
                expires_at: index.saturating_add(2).saturating_mul(p),
                count: to_u32(curr),
                prev: to_u32(prev),
            }),
        )
    } else {
        (curr, None)
    };
    Outcome {
        decision: Decision {
            allowed: true,
            limit: cap,
            remaining: to_u32(l.saturating_sub(curr).saturating_sub(estimate)),
            reset_after: micros(reset(curr)),
            retry_after: Duration::ZERO,
        },
        write,
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::Quota;
    use proptest::prelude::*;

    const SEC: u64 = 1_000_000;
    const T0: u64 = 1_700_000_040 * SEC; // a multiple of 60 s

    fn limit(q: &str, alg: Algorithm) -> Limit {
        Limit::new("t", q.parse::<Quota>().unwrap())
            .unwrap()
            .with_algorithm(alg)
    }

    /// A one-key store over `decide`.
    struct Key<'a> {
        limit: &'a Limit,
        state: Option<State>,
    }

    impl Key<'_> {
        fn check(&mut self, now: u64) -> Decision {
            let o = decide(self.limit, self.state, now, true);
            if let Some(w) = o.write {
                self.state = Some(w);
            }
            o.decision
        }
        fn peek(&self, now: u64) -> Decision {
            let o = decide(self.limit, self.state, now, false);
            assert_eq!(o.write, None);
            o.decision
        }
        fn admitted(&mut self, now: u64, n: u32) -> u32 {
            (0..n).filter(|_| self.check(now).allowed).count() as u32
        }
    }

    // covers RLH-4-a (the r and t values behind the field)
    #[test]
    fn gcra_burst_then_one_per_interval() {
        let l = limit("10/min", Algorithm::Gcra);
        let mut k = Key {
            limit: &l,
            state: None,
        };
        assert_eq!(k.peek(T0).remaining, 10);
        for i in 0..10 {
            let d = k.check(T0);
            assert!(d.allowed);
            assert_eq!(d.remaining, 9 - i);
            assert_eq!(d.reset_after, Duration::from_secs(6 * u64::from(i + 1)));
        }
        let d = k.check(T0);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Duration::from_secs(6));
        assert_eq!(d.reset_after, Duration::from_secs(60));
        // at the edge: one microsecond early is still denied, on time is admitted, once
        assert!(!k.peek(T0 + 6 * SEC - 1).allowed);
        assert!(k.check(T0 + 6 * SEC).allowed);
        assert!(!k.check(T0 + 6 * SEC).allowed);
        // a full period of rest restores the whole burst
        assert_eq!(k.peek(T0 + 66 * SEC).remaining, 10);
        assert_eq!(k.admitted(T0 + 66 * SEC, 20), 10);
    }

    #[test]
    fn gcra_custom_burst() {
        let l = limit("10/min;burst=3", Algorithm::Gcra);
        let mut k = Key {
            limit: &l,
            state: None,
        };
        assert_eq!(k.admitted(T0, 5), 3);
        assert_eq!(k.check(T0).retry_after, Duration::from_secs(6));
        assert_eq!(k.admitted(T0 + 12 * SEC, 5), 2);
    }

    #[test]
    fn fixed_window_edges() {
        let l = limit("10/min", Algorithm::FixedWindow);
        let start = T0 + 7 * SEC; // windows start at the first request, not on the minute
        let mut k = Key {
            limit: &l,
            state: None,
        };
        assert_eq!(k.peek(start).reset_after, Duration::ZERO);
        assert_eq!(k.check(start).remaining, 9);
        assert_eq!(k.admitted(start + 30 * SEC, 20), 9);
        let d = k.check(start + 30 * SEC);
        assert_eq!(
            (d.allowed, d.retry_after, d.reset_after),
            (false, Duration::from_secs(30), Duration::from_secs(30))
        );
        assert!(!k.check(start + 60 * SEC - 1).allowed);
        // the recipe's weakness, made explicit: 2 × count across the edge
        assert_eq!(k.admitted(start + 60 * SEC, 20), 10);
        assert_eq!(
            k.peek(start + 60 * SEC).reset_after,
            Duration::from_secs(60)
        );
        assert_eq!(k.admitted(start + 120 * SEC - 1, 1), 0);
        assert_eq!(k.admitted(start + 120 * SEC, 1), 1);
    }

    #[test]
    fn sliding_window_edges() {
        let l = limit("10/min", Algorithm::SlidingWindow);
        let mut k = Key {
            limit: &l,
            state: None,
        };
        // ten in the window [T0, T0+60s), the eleventh denied
        assert_eq!(k.admitted(T0 + 50 * SEC, 11), 10);
        // at the window edge the previous ten still weigh fully
        assert!(!k.check(T0 + 60 * SEC).allowed);
        // one interval later (6 s = a tenth of the window) one request fits
        let d = k.check(T0 + 60 * SEC);
        assert_eq!(d.retry_after, Duration::from_secs(6));
        assert!(!k.peek(T0 + 66 * SEC - 1).allowed);
        assert_eq!(k.admitted(T0 + 66 * SEC, 3), 1);
        // half way: prev weighs 5, curr is 1, so 4 more
        assert_eq!(k.admitted(T0 + 90 * SEC, 10), 4);
        // a window later, prev = 5 weighs fully at the edge: 5 fit
        assert_eq!(k.admitted(T0 + 120 * SEC, 10), 5);
        // two idle windows forget everything
        assert_eq!(k.peek(T0 + 240 * SEC).remaining, 10);
        assert_eq!(k.peek(T0 + 240 * SEC).reset_after, Duration::ZERO);
    }

    #[test]
    fn sliding_worst_case_reaches_the_documented_bound() {
        let l = limit("10/min", Algorithm::SlidingWindow);
        let mut k = Key {
            limit: &l,
            state: None,
        };
        // ten at the very end of a window, then as many as possible by the end of the next:
        // 19 = 2 × 10 − 1 within one period.
        assert_eq!(k.admitted(T0 + 60 * SEC - 1, 10), 10);
        let mut total = 10;
        let mut t = T0 + 60 * SEC;
        while t < T0 + 120 * SEC - 1 {
            total += k.admitted(t, 1);
            t += SEC / 10;
        }
        assert_eq!(total, 19);
    }

    #[test]
    fn state_read_after_the_clock_went_back_is_conservative() {
        for alg in [
            Algorithm::Gcra,
            Algorithm::FixedWindow,
            Algorithm::SlidingWindow,
        ] {
            let l = limit("2/min", alg);
            let mut k = Key {
                limit: &l,
                state: None,
            };
            assert_eq!(k.admitted(T0 + 120 * SEC, 5), 2, "{alg}");
            let d = k.check(T0);
            assert!(!d.allowed, "{alg}");
            assert!(d.retry_after > Duration::from_secs(60), "{alg}: {d:?}");
        }
    }

    #[derive(Debug, Clone)]
    struct Step {
        advance: u64,
        requests: u32,
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        proptest::collection::vec(
            (prop_oneof![0u64..2_000_000, 0u64..200_000_000], 0u32..8)
                .prop_map(|(advance, requests)| Step { advance, requests }),
            1..120,
        )
    }

    fn quota() -> impl Strategy<Value = Quota> {
        (1u32..30, 1u64..300, proptest::option::of(1u32..40)).prop_map(|(c, secs, b)| {
            let q = Quota::new(c.try_into().unwrap(), Duration::from_secs(secs)).unwrap();
            match b {
                Some(b) => q.with_burst(b.try_into().unwrap()).unwrap(),
                None => q,
            }
        })
    }

    /// Times of the admitted requests.
    fn run(l: &Limit, steps: &[Step]) -> Vec<u64> {
        let mut k = Key {
            limit: l,
            state: None,
        };
        let mut now = T0 + 13;
        let mut times = Vec::new();
        for s in steps {
            now += s.advance;
            for _ in 0..s.requests {
                let before = k.peek(now);
                let d = k.check(now);
                assert_eq!(before.allowed, d.allowed, "peek and check disagree");
                if d.allowed {
                    assert_eq!(
                        d.remaining + 1,
                        before.remaining,
                        "a check consumes exactly one"
                    );
                    times.push(now);
                } else {
                    // retry-after is exact: one microsecond early denied, on time admitted
                    assert!(d.retry_after > Duration::ZERO);
                    let r = d.retry_after.as_micros() as u64;
                    assert!(
                        !k.peek(now + r - 1).allowed,
                        "admitted before retry_after {d:?}"
                    );
                    assert!(k.peek(now + r).allowed, "denied at retry_after {d:?}");
                }
            }
        }
        times
    }

    proptest! {
        // The GCRA bound from the issue: over any interval, admitted ≤ burst + rate × elapsed.
        #[test]
        fn gcra_never_exceeds_burst_plus_rate(q in quota(), steps in steps()) {
            let l = Limit::new("g", q).unwrap();
            let times = run(&l, &steps);
            let (b, c, p) = (u128::from(q.burst().get()), u128::from(q.count().get()), u128::from(q.period_micros()));
            for (i, start) in times.iter().enumerate() {
                for (j, end) in times.iter().enumerate().skip(i) {
                    let n = (j - i + 1) as u128;
                    let elapsed = u128::from(end - start);
                    // n ≤ b + elapsed·c/p, in integers
                    prop_assert!(n * p <= b * p + elapsed * c, "{n} admitted in {elapsed} µs under {q}");
                }
            }
        }

        #[test]
        fn fixed_window_never_exceeds_count_per_window(q in quota(), steps in steps()) {
            let l = Limit::new("f", q).unwrap().with_algorithm(Algorithm::FixedWindow);
            let times = run(&l, &steps);
            let (c, p) = (q.count().get() as usize, q.period_micros());
            for (i, start) in times.iter().enumerate() {
                let within = times[i..].iter().take_while(|t| **t < start + p).count();
                prop_assert!(within <= 2 * c);
            }
        }

        #[test]
        fn sliding_window_error_bound(q in quota(), steps in steps()) {
            let l = Limit::new("s", q).unwrap().with_algorithm(Algorithm::SlidingWindow);
            let times = run(&l, &steps);
            let (c, p) = (q.count().get() as usize, q.period_micros());
            for (i, start) in times.iter().enumerate() {
                let within = times[i..].iter().take_while(|t| **t < start + p).count();
                prop_assert!(within < 2 * c, "{within} admitted within one period under {q}");
                let aligned = times[i..].iter().take_while(|t| **t / p == *start / p).count();
                prop_assert!(aligned <= c);
            }
        }

        #[test]
        fn sliding_window_admits_when_raw_counts_fit(q in quota(), steps in steps()) {
            let l = Limit::new("s", q).unwrap().with_algorithm(Algorithm::SlidingWindow);
            let mut state: Option<State> = None;
            let mut now = T0;
            let p = q.period_micros();
            let mut log: Vec<u64> = Vec::new();
            for s in &steps {
                now += s.advance;
                for _ in 0..s.requests {
                    // admitted requests in the current and the previous aligned window
                    let raw = log.iter().filter(|t| **t / p + 1 >= now / p).count() as u64;
                    let o = decide(&l, state, now, true);
                    if raw < u64::from(q.count().get()) {
                        prop_assert!(o.decision.allowed);
                    }
                    if let Some(w) = o.write { state = Some(w); log.push(now); }
                }
            }
        }

        #[test]
        fn decide_never_panics(q in quota(), alg in 0u8..3, expires_at in any::<u64>(), count in any::<u32>(), prev in any::<u32>(), now in any::<u64>(), consume in any::<bool>()) {
            let alg = [Algorithm::Gcra, Algorithm::FixedWindow, Algorithm::SlidingWindow][alg as usize];
            let l = Limit::new("x", q).unwrap().with_algorithm(alg);
            let o = decide(&l, Some(State { expires_at, count, prev }), now, consume);
            prop_assert!(o.decision.remaining <= o.decision.limit);
            prop_assert_eq!(o.decision.allowed, o.decision.retry_after.is_zero());
        }
    }
}
