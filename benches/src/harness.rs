//! A small, dependency-free timing harness for the report: interleaved batches, median ns/op.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// How long and how often to measure.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Target wall time of one batch.
    pub batch: Duration,
    /// Batches per side; the median batch is reported.
    pub batches: usize,
}

impl Settings {
    /// Full measurement: 31 batches of about 10 ms per side.
    pub const FULL: Self = Self {
        batch: Duration::from_millis(10),
        batches: 31,
    };
    /// Smoke measurement for CI: 5 batches of about 1 ms per side.
    pub const QUICK: Self = Self {
        batch: Duration::from_millis(1),
        batches: 5,
    };
}

/// What a row promises about its ratio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// The ratio must be at most this.
    AtMost(f64),
    /// The ratio must be at least this.
    AtLeast(f64),
    /// The figure is reported; there is no goal.
    Report,
}

impl Goal {
    /// Whether `ratio` meets the goal.
    #[must_use]
    pub fn met(self, ratio: f64) -> bool {
        match self {
            Self::AtMost(g) => ratio <= g,
            Self::AtLeast(g) => ratio >= g,
            Self::Report => true,
        }
    }

    /// The goal as text, e.g. `<= 0.60`.
    #[must_use]
    pub fn describe(self) -> String {
        match self {
            Self::AtMost(g) => format!("<= {g:.2}"),
            Self::AtLeast(g) => format!(">= {g:.2}"),
            Self::Report => "report".to_owned(),
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Row {
    /// Stable identifier, e.g. `hash_vs_naive`.
    pub id: &'static str,
    /// Median ns per operation of our code.
    pub ours_ns: f64,
    /// What the baseline is.
    pub baseline: String,
    /// Median ns per operation of the baseline.
    pub baseline_ns: f64,
    /// `ours_ns / baseline_ns`, except for throughput-scaling rows (see [`Row::scaling`]).
    pub ratio: f64,
    /// The goal for `ratio`.
    pub goal: Goal,
    /// A note printed under the table (for example why a row was skipped).
    pub note: Option<String>,
}

impl Row {
    /// A time row: `ratio = ours_ns / baseline_ns` (lower is better for us).
    #[must_use]
    pub fn time(
        id: &'static str,
        ours_ns: f64,
        baseline: impl Into<String>,
        baseline_ns: f64,
        goal: Goal,
    ) -> Self {
        Self {
            id,
            ours_ns,
            baseline: baseline.into(),
            baseline_ns,
            ratio: ours_ns / baseline_ns,
            goal,
            note: None,
        }
    }

    /// A scaling row: `ours_ns` and `baseline_ns` are wall-clock ns per operation across all
    /// threads (with N threads and with 1), and `ratio = baseline_ns / ours_ns` is the speed-up
    /// (higher is better for us).
    #[must_use]
    pub fn scaling(
        id: &'static str,
        ours_ns: f64,
        baseline: impl Into<String>,
        baseline_ns: f64,
        goal: Goal,
    ) -> Self {
        Self {
            ratio: baseline_ns / ours_ns,
            ..Self::time(id, ours_ns, baseline, baseline_ns, goal)
        }
    }

    /// A row that could not be measured here (for example no Redis reachable).
    #[must_use]
    pub fn skipped(id: &'static str, baseline: impl Into<String>, why: impl Into<String>) -> Self {
        Self {
            id,
            ours_ns: f64::NAN,
            baseline: baseline.into(),
            baseline_ns: f64::NAN,
            ratio: f64::NAN,
            goal: Goal::Report,
            note: Some(why.into()),
        }
    }

    /// This row with a note.
    #[must_use]
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Whether the row meets its goal (a skipped row does not fail).
    #[must_use]
    pub fn met(&self) -> bool {
        self.ratio.is_nan() || self.goal.met(self.ratio)
    }
}

/// Run `f` in batches until one batch takes about `settings.batch`; returns iterations per batch.
fn calibrate(settings: Settings, f: &mut dyn FnMut()) -> u64 {
    let mut iters: u64 = 1;
    loop {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        let took = start.elapsed();
        if took >= settings.batch / 2 || iters >= 1 << 30 {
            let per = took.as_secs_f64() / iters as f64;
            let want = settings.batch.as_secs_f64() / per.max(1e-10);
            // `want` is positive and finite here; float-to-int `as` saturates, and the clamp
            // bounds it anyway.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let iters = (want as u64).clamp(1, 1 << 32);
            return iters;
        }
        iters *= 2;
    }
}

/// Time one batch of `iters` calls; returns ns per call.
fn batch(iters: u64, f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_secs_f64() * 1e9 / iters as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Median ns/op of `ours` and of `baseline`, measured in alternating batches so that drift in
/// the machine's speed affects both sides alike.
pub fn compare(
    settings: Settings,
    mut ours: impl FnMut(),
    mut baseline: impl FnMut(),
) -> (f64, f64) {
    let n_ours = calibrate(settings, &mut ours);
    let n_base = calibrate(settings, &mut baseline);
    let mut a = Vec::with_capacity(settings.batches);
    let mut b = Vec::with_capacity(settings.batches);
    for _ in 0..settings.batches {
        a.push(batch(n_ours, &mut ours));
        b.push(batch(n_base, &mut baseline));
    }
    (median(a), median(b))
}

/// Median ns/op of one function.
pub fn measure(settings: Settings, mut f: impl FnMut()) -> f64 {
    let n = calibrate(settings, &mut f);
    median((0..settings.batches).map(|_| batch(n, &mut f)).collect())
}

/// Wall-clock ns per operation when `threads` threads each run `op(thread_index)` in a loop for
/// about `settings.batch * settings.batches` in total (median over a few rounds).
pub fn throughput(settings: Settings, threads: usize, op: impl Fn(usize) + Sync) -> f64 {
    let rounds = 5;
    let per_round = settings.batch * u32::try_from(settings.batches).unwrap_or(u32::MAX) / rounds;
    let mut results = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        let total: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let op = &op;
                    s.spawn(move || {
                        let mut n = 0u64;
                        while start.elapsed() < per_round {
                            for _ in 0..64 {
                                op(t);
                            }
                            n += 64;
                        }
                        n
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        results.push(start.elapsed().as_secs_f64() * 1e9 / total as f64);
    }
    median(results)
}

/// Keep a value alive and opaque to the optimiser.
pub fn keep<T>(v: T) -> T {
    black_box(v)
}
