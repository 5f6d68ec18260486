//! The memory store against the full conformance suite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use portcullis_rotation::{MemoryGrantStore, conformance};

// covers 6749-4.1.2-b, 6749-4.1.2-c, 6749-4.1.3-a, 6749-6-a, 6749-10.10-a, 21-7.5.2-a,
// covers 9700-2.2.2-a, 9700-4.14.2-a, 21-4.3.1-a, 7009-2.1-a, 7009-2.1-b, 7009-2.1-c, 7009-2.2-a,
// covers 7662-2.2-a, 7636-4.6-a, 9700-2.1.1-a, 9700-4.8.2-a (through the suite's checks)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_the_conformance_suite() {
    let report = conformance::run_all(|| async { MemoryGrantStore::new() }).await;
    println!("{report}");
    assert!(report.is_success(), "{report}");
    assert_eq!(report.results.len(), conformance::checks().len());
}

#[test]
fn every_invariant_has_a_named_check() {
    let names: Vec<&str> = conformance::checks().iter().map(|c| c.name).collect();
    for i in 1..=9 {
        let prefix = format!("invariant_{i}_");
        assert!(
            names.iter().any(|n| n.starts_with(&prefix)),
            "no check for invariant {i}"
        );
    }
    for id in [
        "6749-4.1.2-b",
        "6749-4.1.2-c",
        "6749-4.1.3-a",
        "6749-6-a",
        "6749-10.10-a",
        "6749-10.10-a",
        "21-7.5.2-a",
        "9700-2.2.2-a",
        "9700-4.14.2-a",
        "21-4.3.1-a",
        "7009-2.1-a",
        "7009-2.1-b",
        "7009-2.2-a",
        "7662-2.2-a",
        "7636-4.6-a",
        "9700-2.1.1-a",
        "9700-4.8.2-a",
    ] {
        assert!(
            conformance::checks().iter().any(|c| c.covers.contains(&id)),
            "no check covers {id}"
        );
    }
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "duplicate check names");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_client_store_passes_the_client_check() {
    let store = std::sync::Arc::new(portcullis_rotation::MemoryClientStore::new());
    conformance::client_store(store).await.unwrap();
}

/// The client check is not a test that cannot fail: a store that forgets duplicates fails it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_check_catches_a_store_that_accepts_duplicates() {
    use portcullis_core::UnixTime;
    use portcullis_hash::TokenHash;
    use portcullis_rotation::{ClientRecord, ClientStore, MemoryClientStore, StoreError};

    #[derive(Debug, Default)]
    struct Forgetful(MemoryClientStore);
    #[async_trait::async_trait]
    impl ClientStore for Forgetful {
        async fn insert(&self, c: &ClientRecord) -> Result<(), StoreError> {
            match self.0.insert(c).await {
                Err(StoreError::Duplicate) => Ok(()),
                other => other,
            }
        }
        async fn get(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
            self.0.get(id).await
        }
        async fn set_secret(
            &self,
            id: &str,
            h: Option<TokenHash>,
            e: Option<UnixTime>,
        ) -> Result<bool, StoreError> {
            self.0.set_secret(id, h, e).await
        }
        async fn delete(&self, id: &str) -> Result<bool, StoreError> {
            self.0.delete(id).await
        }
        async fn count(&self) -> Result<u64, StoreError> {
            self.0.count().await
        }
    }
    let e = conformance::client_store(std::sync::Arc::new(Forgetful::default()))
        .await
        .unwrap_err();
    assert!(e.message().contains("duplicate"), "{e}");
}
