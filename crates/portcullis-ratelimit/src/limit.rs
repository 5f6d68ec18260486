//! A named limit: a quota under an algorithm.

use std::borrow::Cow;
use std::fmt;

use crate::Quota;

/// The longest limit name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// How requests are counted against a [`Quota`].
///
/// | algorithm | state per key | admits | notes |
/// |---|---|---|---|
/// | [`Gcra`](Self::Gcra) (default) | one time | `burst` at once, then one per `period / count` | smooth; exact |
/// | [`FixedWindow`](Self::FixedWindow) | window end + count | `count` per window that starts at the first request | the INCR/EXPIRE recipe, made atomic; up to `2 × count` across a window edge |
/// | [`SlidingWindow`](Self::SlidingWindow) | window end + two counts | `count` per sliding period, approximated | see below |
///
/// The sliding window is the **approximated** two-counter sliding window: windows are aligned to
/// multiples of the period since the Unix epoch, and a request at fraction `f` of the current
/// window is admitted when `prev × (1 − f) + curr + 1 ≤ count`, where `prev` and `curr` are the
/// requests admitted in the previous and the current window. It is exact when the previous
/// window's requests were evenly spread. Error bound, for any request pattern: it never admits
/// more than `count` requests within one aligned window, and never more than `2 × count − 1`
/// within any interval of one period (an exact sliding window would admit `count`; a fixed window
/// up to `2 × count`); the worst case needs the previous window's requests bunched at its very end.
/// It may also deny before an exact window would when the previous window's requests were bunched
/// at its start, but it always admits a request when `prev + curr + 1 ≤ count`. Both bounds are
/// property-tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// Generic cell rate algorithm (a virtual-scheduling token bucket).
    #[default]
    Gcra,
    /// Fixed window starting at a key's first request.
    FixedWindow,
    /// Approximated sliding window (two counters, epoch-aligned windows).
    SlidingWindow,
}

impl Algorithm {
    /// A short stable tag (`gcra`, `fixed`, `sliding`), for store keys.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Gcra => "gcra",
            Self::FixedWindow => "fixed",
            Self::SlidingWindow => "sliding",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a limit name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// The name is empty, longer than [`MAX_NAME_LEN`], or has a character other than ASCII
    /// letters, digits, `-`, `_` and `.`.
    #[error("a limit name is 1 to 64 characters of A-Z, a-z, 0-9, '-', '_' and '.'")]
    Name,
}

/// A named limit: a [`Quota`] counted by an [`Algorithm`].
///
/// The name identifies the limit in store keys (the same client key under two limits has two
/// budgets) and in the `RateLimit-Policy` and `RateLimit` fields. It is restricted to a safe
/// alphabet so it can be written into a structured-field string and a Redis key without escaping.
///
/// ```
/// use portcullis_ratelimit::{Algorithm, Limit, Quota};
///
/// let ip = Limit::new("token-ip", "10/min".parse::<Quota>()?)?;
/// assert_eq!(ip.algorithm(), Algorithm::Gcra);
/// let fixed = ip.clone().with_algorithm(Algorithm::FixedWindow);
/// assert_eq!(fixed.name(), "token-ip");
/// assert!(Limit::new("bad name", "10/min".parse::<Quota>()?).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Limit {
    name: Cow<'static, str>,
    quota: Quota,
    algorithm: Algorithm,
    /// FNV-1a of (name, 0xff, algorithm tag): a store-independent id of the key namespace, so a
    /// store hashes one word for it instead of the name.
    namespace: u64,
}

/// FNV-1a, 64 bits (only over operator-chosen names, never over client input).
fn namespace(name: &str, algorithm: Algorithm) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    name.bytes()
        .chain([0xff])
        .chain(algorithm.as_str().bytes())
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Limit {
    /// A GCRA limit.
    ///
    /// # Errors
    /// [`LimitError::Name`] if the name is not 1 to 64 characters of `A-Za-z0-9-_.`.
    pub fn new(name: impl Into<Cow<'static, str>>, quota: Quota) -> Result<Self, LimitError> {
        let name = name.into();
        if !valid_name(&name) {
            return Err(LimitError::Name);
        }
        Ok(Self {
            namespace: namespace(&name, Algorithm::Gcra),
            name,
            quota,
            algorithm: Algorithm::Gcra,
        })
    }

    /// A limit whose name is a literal known to be valid (the presets); checked in tests.
    pub(crate) fn preset(name: &'static str, quota: Quota) -> Self {
        debug_assert!(valid_name(name));
        Self {
            namespace: namespace(name, Algorithm::Gcra),
            name: Cow::Borrowed(name),
            quota,
            algorithm: Algorithm::Gcra,
        }
    }

    /// This limit counted by another algorithm.
    #[must_use]
    pub fn with_algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self.namespace = namespace(&self.name, algorithm);
        self
    }

    /// A 64-bit id of (name, algorithm), the namespace of this limit's keys in a store.
    #[must_use]
    pub const fn namespace(&self) -> u64 {
        self.namespace
    }

    /// The name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The quota.
    #[must_use]
    pub const fn quota(&self) -> &Quota {
        &self.quota
    }

    /// The algorithm.
    #[must_use]
    pub const fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The most requests admitted at once: the burst for GCRA, the count for the windows. This is
    /// [`Decision::limit`](crate::Decision::limit) and the `q` of the `RateLimit-Policy` field.
    #[must_use]
    pub const fn capacity(&self) -> u32 {
        match self.algorithm {
            Algorithm::Gcra => self.quota.burst().get(),
            Algorithm::FixedWindow | Algorithm::SlidingWindow => self.quota.count().get(),
        }
    }

    /// The time over which [`capacity`](Self::capacity) requests are admitted, in microseconds:
    /// `burst × emission interval` for GCRA, the period for the windows.
    #[must_use]
    #[allow(clippy::cast_lossless)] // `u64::from` is not const
    pub const fn window_micros(&self) -> u64 {
        match self.algorithm {
            Algorithm::Gcra => self
                .quota
                .emission_interval_micros()
                .get()
                .saturating_mul(self.quota.burst().get() as u64),
            Algorithm::FixedWindow | Algorithm::SlidingWindow => self.quota.period_micros(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let q: Quota = "1/s".parse().unwrap();
        assert!(Limit::new("a", q).is_ok());
        assert!(Limit::new("authorize-user.v2_x", q).is_ok());
        assert!(Limit::new("x".repeat(64), q).is_ok());
        for bad in ["", "a b", "a\"b", "a\\b", "a:b", "é", "a{b}"] {
            assert_eq!(Limit::new(bad, q), Err(LimitError::Name), "{bad:?}");
        }
        assert!(Limit::new("x".repeat(65), q).is_err());
    }

    #[test]
    fn capacity_and_window() {
        let q: Quota = "10/min;burst=4".parse().unwrap();
        let l = Limit::new("l", q).unwrap();
        assert_eq!((l.capacity(), l.window_micros()), (4, 24_000_000));
        let f = l.with_algorithm(Algorithm::FixedWindow);
        assert_eq!((f.capacity(), f.window_micros()), (10, 60_000_000));
        assert_eq!(f.algorithm().to_string(), "fixed");
    }
}
