//! Benchmarks for the Portcullis crates.
//!
//! Two ways in:
//! - `cargo bench -p portcullis-benches`: criterion benches, one file per crate under `benches/`.
//! - `cargo run --release -p portcullis-benches --bin report`: the side-by-side report. Each row
//!   measures our code and a baseline in the same run, interleaved, and prints the median ns/op of
//!   each, their ratio and the row's goal. `--json` prints the rows as one JSON array; `--quick`
//!   measures briefly (for CI smoke runs; its figures are noisy and its goals are not judged).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

pub mod harness;
pub mod rows;
