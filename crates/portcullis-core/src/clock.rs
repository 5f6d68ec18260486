//! Time as the crates see it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// A point in time: whole microseconds since the Unix epoch (UTC).
///
/// Microseconds as an integer, because every store keeps times as integers (Redis scripts run on
/// Lua doubles, which hold integers exactly only up to 2^53; microseconds since 1970 stay below that
/// until the year 2255).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(u64);

impl UnixTime {
    /// The Unix epoch itself.
    pub const EPOCH: Self = Self(0);

    /// A time from microseconds since the epoch.
    #[must_use]
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// A time from whole seconds since the epoch (saturating at the far future).
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    /// Microseconds since the epoch.
    #[must_use]
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch, rounded down.
    #[must_use]
    pub const fn as_secs(self) -> u64 {
        self.0 / 1_000_000
    }

    /// This time plus `d`, saturating at the far future instead of wrapping.
    #[must_use]
    pub fn saturating_add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(duration_micros(d)))
    }

    /// This time minus `d`, saturating at the epoch.
    #[must_use]
    pub fn saturating_sub(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(duration_micros(d)))
    }

    /// How long after `earlier` this time is; zero if it is not after it.
    #[must_use]
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    /// The earlier of two times.
    #[must_use]
    pub fn min(self, other: Self) -> Self {
        Ord::min(self, other)
    }
}

/// A duration in whole microseconds, saturating at `u64::MAX` (about 584,000 years).
fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl fmt::Debug for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UnixTime({}.{:06})",
            self.0 / 1_000_000,
            self.0 % 1_000_000
        )
    }
}

impl From<SystemTime> for UnixTime {
    /// Times before the epoch map to the epoch.
    fn from(t: SystemTime) -> Self {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(Self::EPOCH, |d| Self(duration_micros(d)))
    }
}

/// Where the current time comes from.
///
/// Every Portcullis crate that needs the time takes a `Clock` instead of calling
/// [`SystemTime::now`] inline, so tests can put expiry exactly on its edge. Implementations must be
/// cheap: `now` is called on every token check.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> UnixTime;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> UnixTime {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> UnixTime {
        (**self).now()
    }
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        UnixTime::from(SystemTime::now())
    }
}

/// A clock that moves only when told to. Clones share one time.
///
/// ```
/// use std::time::Duration;
/// use portcullis_core::{Clock, ManualClock};
///
/// let clock = ManualClock::at_secs(100);
/// let handle = clock.clone();
/// handle.advance(Duration::from_millis(1500));
/// assert_eq!(clock.now().as_micros(), 101_500_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    micros: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock showing `t`.
    #[must_use]
    pub fn new(t: UnixTime) -> Self {
        Self {
            micros: Arc::new(AtomicU64::new(t.as_micros())),
        }
    }

    /// A clock showing `secs` seconds after the epoch.
    #[must_use]
    pub fn at_secs(secs: u64) -> Self {
        Self::new(UnixTime::from_secs(secs))
    }

    /// Move this clock (and every clone of it) forward by `d`.
    pub fn advance(&self, d: Duration) {
        let step = duration_micros(d);
        // fetch_update cannot fail with a closure that always returns Some.
        let _ = self
            .micros
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |m| {
                Some(m.saturating_add(step))
            });
    }

    /// Set this clock (and every clone of it) to `t`, which may be earlier than now.
    pub fn set(&self, t: UnixTime) {
        self.micros.store(t.as_micros(), Ordering::Release);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.micros.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_time() {
        let a = ManualClock::at_secs(10);
        let b = a.clone();
        a.advance(Duration::from_secs(5));
        assert_eq!(b.now(), UnixTime::from_secs(15));
        b.set(UnixTime::from_secs(3));
        assert_eq!(a.now().as_secs(), 3);
    }

    #[test]
    fn arithmetic_saturates() {
        let t = UnixTime::from_micros(u64::MAX - 1);
        assert_eq!(
            t.saturating_add(Duration::from_secs(1)).as_micros(),
            u64::MAX
        );
        assert_eq!(
            UnixTime::EPOCH.saturating_sub(Duration::from_secs(1)),
            UnixTime::EPOCH
        );
        assert_eq!(
            UnixTime::from_secs(1).saturating_duration_since(UnixTime::from_secs(2)),
            Duration::ZERO
        );
        assert_eq!(UnixTime::from_secs(u64::MAX).as_micros(), u64::MAX);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > UnixTime::from_secs(1_577_836_800));
    }

    #[test]
    fn clock_is_object_safe() {
        let c: Arc<dyn Clock> = Arc::new(ManualClock::at_secs(7));
        assert_eq!(c.now().as_secs(), 7);
        assert_eq!(
            format!("{:?}", UnixTime::from_micros(7_000_001)),
            "UnixTime(7.000001)"
        );
    }
}
