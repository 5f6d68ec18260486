//! Side-by-side performance report: `cargo run --release -p portcullis-benches --bin report`.
//!
//! Flags: `--json` prints one JSON array of rows `{"id", "ours_ns", "baseline", "baseline_ns",
//! "ratio", "goal"}`; `--quick` measures briefly (CI smoke run; goals are shown, not judged);
//! `--only <substring>` runs the rows whose id contains the substring.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::exit
)]

use portcullis_benches::harness::{Row, Settings};
use serde_json::json;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json_out = args.iter().any(|a| a == "--json");
    let quick = args.iter().any(|a| a == "--quick");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1).cloned());
    if cfg!(debug_assertions) && !quick {
        eprintln!("warning: the report was built without optimisations; run it with --release");
    }
    let settings = if quick {
        Settings::QUICK
    } else {
        Settings::FULL
    };
    let rows: Vec<Row> = portcullis_benches::rows::all(settings, only.as_deref());

    if json_out {
        let arr: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "ours_ns": finite(r.ours_ns),
                    "baseline": r.baseline,
                    "baseline_ns": finite(r.baseline_ns),
                    "ratio": finite(r.ratio),
                    "goal": r.goal.describe(),
                    "met": r.met(),
                    "note": r.note,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&arr).unwrap());
    } else {
        println!(
            "{:<40} {:>12} {:>12} {:>8} {:>8} {:>5}  baseline",
            "id", "ours ns/op", "base ns/op", "ratio", "goal", "met"
        );
        for r in &rows {
            println!(
                "{:<40} {:>12.1} {:>12.1} {:>8.3} {:>8} {:>5}  {}",
                r.id,
                r.ours_ns,
                r.baseline_ns,
                r.ratio,
                r.goal.describe(),
                if r.met() { "yes" } else { "NO" },
                r.baseline
            );
        }
        for r in rows.iter().filter(|r| r.note.is_some()) {
            println!("note: {}: {}", r.id, r.note.as_deref().unwrap_or_default());
        }
    }
    let missed: Vec<_> = rows.iter().filter(|r| !r.met()).map(|r| r.id).collect();
    if !missed.is_empty() {
        eprintln!("goals not met: {}", missed.join(", "));
        if !quick {
            std::process::exit(1);
        }
    }
}

fn finite(x: f64) -> serde_json::Value {
    if x.is_finite() {
        json!(x)
    } else {
        serde_json::Value::Null
    }
}
