//! The memory store passes the conformance suite, and the suite is not vacuous: stores with
//! classic bugs fail it, naming the case.
#![cfg(feature = "conformance")]

use std::sync::Arc;

use portcullis_core::ManualClock;
use portcullis_ratelimit::{
    Check, Decision, Limit, MemoryStore, MultiDecision, RateLimitStore, StoreError, conformance,
};

fn memory(clock: &ManualClock) -> Arc<dyn RateLimitStore> {
    Arc::new(MemoryStore::builder().build(clock.clone()))
}

// covers RLH-6-a (retry-after exactness, in the suite)
#[tokio::test]
async fn memory_store_passes() {
    let clock = ManualClock::at_secs(0);
    let c = clock.clone();
    conformance::run(move || memory(&c), &clock).await.unwrap();
    // and with tiny shards and a tiny cap (everything in one lock, sweeping constantly)
    let c = clock.clone();
    conformance::run(
        move || {
            Arc::new(
                MemoryStore::builder()
                    .shards(1)
                    .max_keys(64)
                    .build(c.clone()),
            ) as Arc<dyn RateLimitStore>
        },
        &clock,
    )
    .await
    .unwrap();
}

#[derive(Debug, Clone, Copy)]
enum Bug {
    /// A peek that consumes.
    PeekConsumes,
    /// Each key of a multi-key check decided and consumed on its own (the classic non-atomic
    /// sequence of checks).
    MultiConsumesOnDeny,
    /// Retry-after rounded to whole seconds downwards (clients come back too early).
    RetryTruncated,
}

#[derive(Debug)]
struct Buggy {
    inner: MemoryStore<ManualClock>,
    bug: Bug,
}

#[async_trait::async_trait]
impl RateLimitStore for Buggy {
    async fn check(&self, limit: &Limit, key: &str) -> Result<Decision, StoreError> {
        let mut d = self.inner.check_now(limit, key);
        if let Bug::RetryTruncated = self.bug {
            d.retry_after = std::time::Duration::from_secs(d.retry_after.as_secs());
        }
        Ok(d)
    }
    async fn peek(&self, limit: &Limit, key: &str) -> Result<Decision, StoreError> {
        Ok(match self.bug {
            Bug::PeekConsumes => self.inner.check_now(limit, key),
            _ => self.inner.peek_now(limit, key),
        })
    }
    async fn check_all(&self, checks: &[Check<'_>]) -> Result<MultiDecision, StoreError> {
        Ok(match self.bug {
            Bug::MultiConsumesOnDeny => {
                let decisions: Vec<Decision> = checks
                    .iter()
                    .map(|c| self.inner.check_now(c.limit, c.key))
                    .collect();
                MultiDecision {
                    allowed: decisions.iter().all(|d| d.allowed),
                    decisions,
                }
            }
            _ => self.inner.check_all_now(checks),
        })
    }
}

#[tokio::test]
async fn buggy_stores_fail_with_the_case_named() {
    for (bug, case) in [
        (Bug::PeekConsumes, "peek_consumes_nothing"),
        (
            Bug::MultiConsumesOnDeny,
            "multi_key_user_denial_leaves_ip_untouched",
        ),
        (
            Bug::MultiConsumesOnDeny,
            "multi_key_ip_denial_leaves_user_untouched",
        ),
        (Bug::RetryTruncated, "retry_after_is_exact"),
    ] {
        let clock = ManualClock::at_secs(0);
        let c = clock.clone();
        let err = conformance::run(
            move || {
                Arc::new(Buggy {
                    inner: MemoryStore::builder().build(c.clone()),
                    bug,
                }) as Arc<dyn RateLimitStore>
            },
            &clock,
        )
        .await
        .unwrap_err();
        assert!(
            err.failures.iter().any(|f| f.starts_with(case)),
            "{bug:?} should fail {case}: {err}"
        );
    }
}
