//! How many requests, over how long, with how much burst.

use std::fmt;
use std::num::{NonZeroU32, NonZeroU64};
use std::str::FromStr;
use std::time::Duration;

/// Microseconds per second.
const MICROS_PER_SEC: u64 = 1_000_000;

/// The longest period or span (burst × emission interval) a quota may have: 2^50 µs, about 35.7
/// years. Source: every store keeps times as integer microseconds, and a Redis script computes
/// with Lua doubles, which hold integers exactly only below 2^53; `now` (about 2^50.6 µs in 2025)
/// plus a span of at most 2^50 stays below 2^53 until the year 2180.
pub const MAX_SPAN_MICROS: u64 = 1 << 50;

/// Why a quota cannot be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuotaError {
    /// The string is not of the form `<count>/<period>[;burst=<n>]`.
    #[error("a quota looks like `10/min`, `20/hour`, `100/15min` or `10/min;burst=20`")]
    Syntax,
    /// The count or the burst is zero; a limit of zero requests is not a quota.
    #[error("a quota's count and burst must be at least 1")]
    Zero,
    /// The period unit is not one of `s`, `sec`, `second`, `min`, `minute`, `h`, `hour`, `d`, `day`
    /// (plural forms allowed).
    #[error("unknown period unit (use s, min, hour or day)")]
    Unit,
    /// A number does not fit, or the period or span is longer than [`MAX_SPAN_MICROS`], or the
    /// period is shorter than one microsecond per request.
    #[error("quota out of range (period and burst x interval at most 2^50 microseconds)")]
    Range,
}

/// A quota: `count` requests per `period`, with bursts of up to `burst` requests.
///
/// Zero is impossible by construction: the count and burst are [`NonZeroU32`] and the period is at
/// least one microsecond. The burst defaults to the count, so `10/min` admits ten requests at once
/// and then one every six seconds (GCRA), or ten per minute-long window (the window algorithms,
/// which ignore the burst).
///
/// ```
/// use portcullis_ratelimit::Quota;
/// use std::time::Duration;
///
/// let q: Quota = "10/min".parse().unwrap();
/// assert_eq!(q.count().get(), 10);
/// assert_eq!(q.period(), Duration::from_secs(60));
/// assert_eq!(q.burst().get(), 10);
/// assert_eq!(q.emission_interval(), Duration::from_secs(6));
///
/// let q: Quota = "20/hour;burst=5".parse().unwrap();
/// assert_eq!((q.count().get(), q.burst().get()), (20, 5));
/// assert_eq!(q.to_string(), "20/hour;burst=5");
///
/// assert!("0/min".parse::<Quota>().is_err());
/// assert!("10 per minute".parse::<Quota>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    count: NonZeroU32,
    period_us: NonZeroU64,
    burst: NonZeroU32,
    /// `ceil(period / count)` in microseconds, never zero.
    interval_us: NonZeroU64,
}

/// `ceil(a / b)` for `b > 0`.
const fn div_ceil(a: u64, b: NonZeroU64) -> u64 {
    a.div_ceil(b.get())
}

impl Quota {
    /// `count` requests per `period`, burst equal to `count`.
    ///
    /// # Errors
    /// [`QuotaError::Range`] if the period is shorter than one microsecond or longer than
    /// [`MAX_SPAN_MICROS`].
    pub fn new(count: NonZeroU32, period: Duration) -> Result<Self, QuotaError> {
        let period_us = u64::try_from(period.as_micros()).map_err(|_| QuotaError::Range)?;
        let period_us = NonZeroU64::new(period_us).ok_or(QuotaError::Range)?;
        Self::from_micros(count, period_us, count)
    }

    /// `count` requests per second.
    #[must_use]
    pub const fn per_second(count: NonZeroU32) -> Self {
        Self::fixed(count, MICROS_PER_SEC)
    }

    /// `count` requests per minute.
    #[must_use]
    pub const fn per_minute(count: NonZeroU32) -> Self {
        Self::fixed(count, 60 * MICROS_PER_SEC)
    }

    /// `count` requests per hour.
    #[must_use]
    pub const fn per_hour(count: NonZeroU32) -> Self {
        Self::fixed(count, 3_600 * MICROS_PER_SEC)
    }

    /// `count` requests per day.
    #[must_use]
    pub const fn per_day(count: NonZeroU32) -> Self {
        Self::fixed(count, 86_400 * MICROS_PER_SEC)
    }

    /// A quota whose period is a constant of at least one second and at most a day: the interval is
    /// non-zero and `count × ceil(period / count) < period + count` stays far below the span limit.
    #[allow(clippy::cast_lossless)] // `u64::from` is not const
    const fn fixed(count: NonZeroU32, period_us: u64) -> Self {
        let period = match NonZeroU64::new(period_us) {
            Some(p) => p,
            None => NonZeroU64::MIN,
        };
        let count64 = match NonZeroU64::new(count.get() as u64) {
            Some(c) => c,
            None => NonZeroU64::MIN,
        };
        let interval = match NonZeroU64::new(div_ceil(period_us, count64)) {
            Some(i) => i,
            None => NonZeroU64::MIN,
        };
        Self {
            count,
            period_us: period,
            burst: count,
            interval_us: interval,
        }
    }

    fn from_micros(
        count: NonZeroU32,
        period_us: NonZeroU64,
        burst: NonZeroU32,
    ) -> Result<Self, QuotaError> {
        if period_us.get() > MAX_SPAN_MICROS {
            return Err(QuotaError::Range);
        }
        let count64 = NonZeroU64::from(count);
        let interval =
            NonZeroU64::new(div_ceil(period_us.get(), count64)).ok_or(QuotaError::Range)?;
        let span = interval
            .get()
            .checked_mul(u64::from(burst.get()))
            .ok_or(QuotaError::Range)?;
        if span > MAX_SPAN_MICROS {
            return Err(QuotaError::Range);
        }
        Ok(Self {
            count,
            period_us,
            burst,
            interval_us: interval,
        })
    }

    /// This quota with another burst (GCRA only: the most requests admitted at one instant).
    ///
    /// # Errors
    /// [`QuotaError::Range`] if `burst × emission interval` exceeds [`MAX_SPAN_MICROS`].
    pub fn with_burst(self, burst: NonZeroU32) -> Result<Self, QuotaError> {
        Self::from_micros(self.count, self.period_us, burst)
    }

    /// Requests per period.
    #[must_use]
    pub const fn count(&self) -> NonZeroU32 {
        self.count
    }

    /// The period.
    #[must_use]
    pub const fn period(&self) -> Duration {
        Duration::from_micros(self.period_us.get())
    }

    /// The period in microseconds.
    #[must_use]
    pub const fn period_micros(&self) -> u64 {
        self.period_us.get()
    }

    /// The most requests GCRA admits at one instant.
    #[must_use]
    pub const fn burst(&self) -> NonZeroU32 {
        self.burst
    }

    /// GCRA's emission interval: `period / count`, rounded **up** to a whole microsecond so the
    /// limiter never admits more than the quota (`7/min` admits one request every 8,571,429 µs).
    #[must_use]
    pub const fn emission_interval(&self) -> Duration {
        Duration::from_micros(self.interval_us.get())
    }

    /// The emission interval in microseconds (never zero).
    #[must_use]
    pub const fn emission_interval_micros(&self) -> NonZeroU64 {
        self.interval_us
    }
}

/// One period unit: its names and its length in seconds.
const UNITS: &[(&[&str], u64)] = &[
    (&["s", "sec", "secs", "second", "seconds"], 1),
    (&["m", "min", "mins", "minute", "minutes"], 60),
    (&["h", "hr", "hour", "hours"], 3_600),
    (&["d", "day", "days"], 86_400),
];

/// A positive decimal integer of at most 10 digits (no sign, no leading `+`).
fn parse_number(s: &str) -> Result<u64, QuotaError> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QuotaError::Syntax);
    }
    s.parse::<u64>().map_err(|_| QuotaError::Syntax)
}

fn parse_nonzero_u32(s: &str) -> Result<NonZeroU32, QuotaError> {
    let n = parse_number(s)?;
    let n = u32::try_from(n).map_err(|_| QuotaError::Range)?;
    NonZeroU32::new(n).ok_or(QuotaError::Zero)
}

impl FromStr for Quota {
    type Err = QuotaError;

    /// Parses `<count>/<period>[;burst=<n>]` where `<period>` is an optional multiplier and a
    /// unit: `10/min`, `20/hour`, `5/s`, `100/15min`, `10/min;burst=20`. Surrounding whitespace is
    /// ignored; nothing else is.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (rate, burst) = match s.split_once(';') {
            Some((rate, rest)) => {
                let value = rest
                    .trim()
                    .strip_prefix("burst=")
                    .ok_or(QuotaError::Syntax)?;
                (rate.trim(), Some(parse_nonzero_u32(value)?))
            }
            None => (s, None),
        };
        let (count, period) = rate.split_once('/').ok_or(QuotaError::Syntax)?;
        let count = parse_nonzero_u32(count)?;
        let digits = period.bytes().take_while(u8::is_ascii_digit).count();
        let (multiplier, unit) = period.split_at_checked(digits).ok_or(QuotaError::Syntax)?;
        let multiplier = if multiplier.is_empty() {
            1
        } else {
            let m = parse_number(multiplier)?;
            if m == 0 {
                return Err(QuotaError::Zero);
            }
            m
        };
        let unit_secs = UNITS
            .iter()
            .find(|(names, _)| names.contains(&unit))
            .map(|(_, secs)| *secs)
            .ok_or(if unit.is_empty() {
                QuotaError::Syntax
            } else {
                QuotaError::Unit
            })?;
        let period_us = multiplier
            .checked_mul(unit_secs)
            .and_then(|secs| secs.checked_mul(MICROS_PER_SEC))
            .and_then(NonZeroU64::new)
            .ok_or(QuotaError::Range)?;
        Self::from_micros(count, period_us, burst.unwrap_or(count))
    }
}

impl fmt::Display for Quota {
    /// The canonical string, which parses back to the same quota when the period is a whole
    /// number of seconds: `10/min`, `100/15min`, `7/90s`, `10/min;burst=20`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.period_us.get();
        write!(f, "{}/", self.count)?;
        if us.is_multiple_of(MICROS_PER_SEC) {
            let secs = us / MICROS_PER_SEC;
            let (n, unit) = if secs.is_multiple_of(86_400) {
                (secs / 86_400, "day")
            } else if secs.is_multiple_of(3_600) {
                (secs / 3_600, "hour")
            } else if secs.is_multiple_of(60) {
                (secs / 60, "min")
            } else {
                (secs, "s")
            };
            if n != 1 {
                write!(f, "{n}")?;
            }
            f.write_str(unit)?;
        } else {
            // Sub-second periods only come from `Quota::new`; show them in microseconds.
            write!(f, "{us}us")?;
        }
        if self.burst != self.count {
            write!(f, ";burst={}", self.burst)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(s: &str) -> Quota {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_deployment_strings() {
        let t = q("10/min");
        assert_eq!(
            (t.count().get(), t.period(), t.burst().get()),
            (10, Duration::from_secs(60), 10)
        );
        let a = q("20/hour");
        assert_eq!(
            (a.count().get(), a.period()),
            (20, Duration::from_secs(3600))
        );
        assert_eq!(a.emission_interval(), Duration::from_secs(180));
        assert_eq!(q(" 5/s ").period(), Duration::from_secs(1));
        assert_eq!(q("100/15min").period(), Duration::from_secs(900));
        assert_eq!(q("1/day").period(), Duration::from_secs(86_400));
        assert_eq!(q("10/min;burst=20").burst().get(), 20);
        assert_eq!(q("10/min; burst=3").burst().get(), 3);
        assert_eq!(q("10/minutes"), q("10/min"));
        assert_eq!(Quota::per_minute(NonZeroU32::new(10).unwrap()), q("10/min"));
        assert_eq!(Quota::per_hour(NonZeroU32::new(20).unwrap()), q("20/hour"));
        assert_eq!(Quota::per_second(NonZeroU32::new(3).unwrap()), q("3/s"));
        assert_eq!(Quota::per_day(NonZeroU32::new(7).unwrap()), q("7/day"));
    }

    #[test]
    fn invalid_strings_are_clear_errors() {
        assert_eq!("0/min".parse::<Quota>(), Err(QuotaError::Zero));
        assert_eq!("10/0min".parse::<Quota>(), Err(QuotaError::Zero));
        assert_eq!("10/min;burst=0".parse::<Quota>(), Err(QuotaError::Zero));
        assert_eq!("10/fortnight".parse::<Quota>(), Err(QuotaError::Unit));
        assert_eq!("10/MIN".parse::<Quota>(), Err(QuotaError::Unit));
        for bad in [
            "",
            "10",
            "/min",
            "10/",
            "-1/min",
            "+1/min",
            "1.5/min",
            "10 / min",
            "10/min;",
            "10/min;burst",
            "10/min;rate=3",
            "ten/min",
            "10/15",
            "10/min;burst=-1",
        ] {
            assert!(bad.parse::<Quota>().is_err(), "{bad:?} parsed");
        }
        assert_eq!("99999999999/min".parse::<Quota>(), Err(QuotaError::Syntax));
        assert_eq!("4294967296/min".parse::<Quota>(), Err(QuotaError::Range));
        assert_eq!("1/9999999999day".parse::<Quota>(), Err(QuotaError::Range));
        // 2^50 µs is about 13,031 days
        assert!("1/13031day".parse::<Quota>().is_ok());
        assert_eq!("1/13032day".parse::<Quota>(), Err(QuotaError::Range));
        assert_eq!(
            "1/day;burst=100000".parse::<Quota>(),
            Err(QuotaError::Range)
        );
        assert_eq!(
            Quota::new(NonZeroU32::MIN, Duration::from_nanos(999)),
            Err(QuotaError::Range)
        );
    }

    #[test]
    fn interval_rounds_up() {
        let seven = q("7/min");
        assert_eq!(seven.emission_interval_micros().get(), 8_571_429);
        assert!(seven.emission_interval_micros().get() * 7 >= seven.period_micros());
        let many = Quota::new(NonZeroU32::new(3).unwrap(), Duration::from_micros(2)).unwrap();
        assert_eq!(many.emission_interval_micros().get(), 1);
        assert_eq!(many.to_string(), "3/2us");
    }

    proptest! {
        #[test]
        fn display_round_trips(count in 1u32..1_000_000, mult in 1u64..1000, unit in 0usize..4, burst in proptest::option::of(1u32..1000)) {
            let (names, secs) = UNITS[unit];
            let s = match burst {
                Some(b) => format!("{count}/{mult}{};burst={b}", names[0]),
                None => format!("{count}/{mult}{}", names[0]),
            };
            if let Ok(parsed) = s.parse::<Quota>() {
                prop_assert_eq!(parsed.period_micros(), mult * secs * MICROS_PER_SEC);
                prop_assert_eq!(parsed.to_string().parse::<Quota>(), Ok(parsed));
            }
        }

        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = s.parse::<Quota>();
        }
    }
}
