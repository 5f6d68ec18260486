//! Arbitrary operation sequences (issue, exchange, refresh, replay, revoke, logout, advance the
//! clock, purge) against the memory store, every step compared with the reference model of
//! `portcullis_rotation::conformance::model` and the invariants checked after each step: every
//! token introspects as the model says, and no family ever has two live refresh tokens.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run rotation_ops -- -max_total_time=60`
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use portcullis_rotation::MemoryGrantStore;
use portcullis_rotation::conformance::model::{self, ModelConfig};

/// The memory store never waits, so polling until ready completes in one poll.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let ops = model::from_bytes(rest);
    // Long sequences add little and cost quadratically (every step re-checks every token).
    if ops.len() > 160 {
        return;
    }
    let config = ModelConfig {
        grace_window: Duration::from_secs(match first % 3 {
            0 => 0,
            1 => 30,
            _ => 300,
        }),
        namespace: String::new(),
    };
    if let Err(failure) = block_on(model::run(Arc::new(MemoryGrantStore::new()), &config, &ops)) {
        panic!("the memory store diverged from the model: {failure}");
    }
});
