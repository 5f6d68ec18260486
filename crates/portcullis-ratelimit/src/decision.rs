//! What a store answers.

use std::time::Duration;

/// The answer for one key under one limit.
///
/// For a check that consumed, `remaining` is counted **after** this request; for a peek, or for a
/// key of a multi-key check that another key denied, it is what is available now, nothing consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is (or, for a peek, would be) admitted.
    pub allowed: bool,
    /// The most requests the limit admits at once ([`Limit::capacity`](crate::Limit::capacity)).
    pub limit: u32,
    /// How many more requests would be admitted right now.
    pub remaining: u32,
    /// How long until the key is back to its full capacity (zero if it already is). For the fixed
    /// window, the end of the current window.
    pub reset_after: Duration,
    /// Zero when allowed. When denied: the shortest wait after which the same request is
    /// admitted, exact to the microsecond (one microsecond earlier it is still denied), provided
    /// nothing else consumes from the key meanwhile.
    pub retry_after: Duration,
}

impl Decision {
    /// `retry_after` in whole seconds, rounded up and at least 1: the value of `Retry-After` for a
    /// denial (RFC 9110 §10.2.3 delay-seconds). Rounding up means a client that waits this long is
    /// never early.
    #[must_use]
    pub fn retry_after_secs(&self) -> u64 {
        ceil_secs(self.retry_after).max(1)
    }

    /// `reset_after` in whole seconds, rounded up.
    #[must_use]
    pub fn reset_after_secs(&self) -> u64 {
        ceil_secs(self.reset_after)
    }
}

/// Whole seconds, rounded up.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The answer for a request checked against several limits at once.
///
/// Admitted only if every limit admits it; then every key consumed one unit. If any denies, none
/// consumed: the decisions of the keys that would have admitted it are peeks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiDecision {
    /// Whether every limit admitted the request.
    pub allowed: bool,
    /// One decision per check, in the order the checks were given.
    pub decisions: Vec<Decision>,
}

impl MultiDecision {
    /// The longest `retry_after` among the denying limits (zero if admitted): the request can only
    /// pass when all of them allow it again.
    #[must_use]
    pub fn retry_after(&self) -> Duration {
        self.decisions
            .iter()
            .filter(|d| !d.allowed)
            .map(|d| d.retry_after)
            .max()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(retry: Duration) -> Decision {
        Decision {
            allowed: false,
            limit: 1,
            remaining: 0,
            reset_after: retry,
            retry_after: retry,
        }
    }

    // covers 9110-10.2.3-a: an integer >= 1, rounded up
    #[test]
    fn retry_after_seconds_round_up_and_are_at_least_one() {
        assert_eq!(denied(Duration::from_micros(1)).retry_after_secs(), 1);
        assert_eq!(denied(Duration::ZERO).retry_after_secs(), 1);
        assert_eq!(denied(Duration::from_secs(6)).retry_after_secs(), 6);
        assert_eq!(
            denied(Duration::from_micros(6_000_001)).retry_after_secs(),
            7
        );
        assert_eq!(
            denied(Duration::from_micros(5_999_999)).reset_after_secs(),
            6
        );
    }

    #[test]
    fn multi_retry_is_the_longest_denial() {
        let ok = Decision {
            allowed: true,
            retry_after: Duration::ZERO,
            ..denied(Duration::from_secs(100))
        };
        let m = MultiDecision {
            allowed: false,
            decisions: vec![
                ok,
                denied(Duration::from_secs(3)),
                denied(Duration::from_secs(9)),
            ],
        };
        assert_eq!(m.retry_after(), Duration::from_secs(9));
    }
}
