//! Quota strings on arbitrary input: never panics; whatever parses has a non-zero count, burst
//! and interval within the span limit, and its canonical form parses back to the same quota.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_ratelimit::{MAX_SPAN_MICROS, Quota};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(q) = s.parse::<Quota>() else {
        return;
    };
    assert!(q.count().get() >= 1 && q.burst().get() >= 1);
    assert!(q.period_micros() >= 1_000_000 && q.period_micros() <= MAX_SPAN_MICROS);
    let interval = q.emission_interval_micros().get();
    // the interval rounds up: count intervals cover the period, never less
    assert!(interval * u64::from(q.count().get()) >= q.period_micros());
    assert!(interval * u64::from(q.burst().get()) <= MAX_SPAN_MICROS);
    let canonical = q.to_string();
    assert_eq!(canonical.parse::<Quota>(), Ok(q), "{canonical}");
});
