//! The rotation crate's conformance suite, unchanged, against PostgreSQL: every check on a
//! fresh store in a schema of its own, several checks at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::sync::Arc;

use portcullis_rotation::GrantStore;
use portcullis_rotation::conformance::{self, Report};
use tokio::sync::Semaphore;

/// Checks running at once (each with its own pool of at most 8 connections).
const PARALLEL_CHECKS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store_passes_the_conformance_suite() {
    let Some(url) = common::database("postgres_store_passes_the_conformance_suite").await else {
        return;
    };
    let gate = Arc::new(Semaphore::new(PARALLEL_CHECKS));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, check) in conformance::checks().into_iter().enumerate() {
        let url = url.clone();
        let gate = Arc::clone(&gate);
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            let schema = common::TestSchema::create(&url).await;
            let store: Arc<dyn GrantStore> = Arc::new(schema.store().await);
            let outcome = (check.run)(store).await;
            schema.drop_schema().await;
            (
                index,
                conformance::CheckResult {
                    name: check.name,
                    covers: check.covers,
                    outcome,
                },
            )
        });
    }
    let mut results = Vec::new();
    while let Some(done) = tasks.join_next().await {
        results.push(done.unwrap());
    }
    results.sort_by_key(|(i, _)| *i);
    let report = Report {
        results: results.into_iter().map(|(_, r)| r).collect(),
    };
    eprintln!("{report}");
    assert_eq!(report.results.len(), conformance::checks().len());
    assert!(report.is_success(), "{report}");
}
