//! The conformance suite is not vacuous: stores that break an invariant fail the checks named
//! after it. Each broken store wraps the memory store and breaks one rule.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use portcullis_core::UnixTime;
use portcullis_hash::TokenHash;
use portcullis_rotation::conformance::{self, Report};
use portcullis_rotation::{
    CodeOutcome, CodeRedemption, Credential, Family, FamilyId, FamilySnapshot, Found, GrantStore,
    MemoryGrantStore, PurgeReport, RefreshOutcome, RefreshRotation, RevocationReason,
    RevokeOutcome, StoreError, TokenKind, TokenRevocation,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    /// Ignores the configured grace window and always allows five minutes.
    AlwaysGrace,
    /// Logout and client revocation do nothing.
    NoBulkRevocation,
    /// Introspection lookups forget that a family was revoked.
    ForgetsRevocation,
    /// Purge reports more than it was allowed to remove.
    UnboundedPurge,
}

#[derive(Debug)]
struct Broken {
    inner: MemoryGrantStore,
    flaw: Flaw,
}

#[async_trait::async_trait]
impl GrantStore for Broken {
    async fn create_family(&self, family: &Family, code: &Credential) -> Result<(), StoreError> {
        self.inner.create_family(family, code).await
    }
    async fn redeem_code(&self, req: &CodeRedemption<'_>) -> Result<CodeOutcome, StoreError> {
        self.inner.redeem_code(req).await
    }
    async fn rotate_refresh(
        &self,
        req: &RefreshRotation<'_>,
    ) -> Result<RefreshOutcome, StoreError> {
        if self.flaw == Flaw::AlwaysGrace {
            let widened = RefreshRotation {
                grace_window: Duration::from_secs(300),
                ..*req
            };
            return self.inner.rotate_refresh(&widened).await;
        }
        self.inner.rotate_refresh(req).await
    }
    async fn find(
        &self,
        kind: TokenKind,
        candidates: &[TokenHash],
    ) -> Result<Option<Found>, StoreError> {
        let found = self.inner.find(kind, candidates).await?;
        if self.flaw != Flaw::ForgetsRevocation {
            return Ok(found);
        }
        Ok(found.map(|f| match f {
            Found::Credential {
                credential,
                mut family,
            } => {
                family.revoked = None;
                Found::Credential { credential, family }
            }
            Found::Access { token, mut family } => {
                family.revoked = None;
                Found::Access { token, family }
            }
            other => other,
        }))
    }
    async fn revoke_token(&self, req: &TokenRevocation<'_>) -> Result<RevokeOutcome, StoreError> {
        self.inner.revoke_token(req).await
    }
    async fn revoke_family(
        &self,
        id: FamilyId,
        reason: RevocationReason,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.inner.revoke_family(id, reason, now).await
    }
    async fn revoke_user(
        &self,
        user_id: &str,
        reason: RevocationReason,
        now: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError> {
        if self.flaw == Flaw::NoBulkRevocation {
            return Ok(Vec::new());
        }
        self.inner.revoke_user(user_id, reason, now).await
    }
    async fn revoke_client(
        &self,
        client_id: &str,
        reason: RevocationReason,
        now: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError> {
        if self.flaw == Flaw::NoBulkRevocation {
            return Ok(Vec::new());
        }
        self.inner.revoke_client(client_id, reason, now).await
    }
    async fn family(&self, id: FamilyId) -> Result<Option<FamilySnapshot>, StoreError> {
        self.inner.family(id).await
    }
    async fn purge(&self, now: UnixTime, max: usize) -> Result<PurgeReport, StoreError> {
        let r = self.inner.purge(now, usize::MAX).await?;
        if self.flaw == Flaw::UnboundedPurge {
            return Ok(r);
        }
        Ok(PurgeReport {
            removed: r.removed.min(max),
            more: false,
        })
    }
}

async fn run(flaw: Flaw) -> Report {
    conformance::run_all(move || async move {
        Broken {
            inner: MemoryGrantStore::new(),
            flaw,
        }
    })
    .await
}

fn failed(report: &Report) -> Vec<&'static str> {
    report.failures().iter().map(|r| r.name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_that_ignores_the_grace_window_fails() {
    let report = run(Flaw::AlwaysGrace).await;
    let failed = failed(&report);
    assert!(
        failed.contains(&"invariant_2_concurrent_refresh_grace_0_64"),
        "{report}"
    );
    assert!(
        failed.contains(&"invariant_4_refresh_replay_revokes_family"),
        "{report}"
    );
    assert!(
        failed.contains(&"model_random_operation_sequences"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_without_bulk_revocation_fails() {
    let report = run(Flaw::NoBulkRevocation).await;
    let failed = failed(&report);
    assert!(
        failed.contains(&"invariant_8_logout_revokes_every_family_of_the_user_only"),
        "{report}"
    );
    assert!(failed.contains(&"invariant_8_revoke_client"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_that_forgets_revocations_fails() {
    let report = run(Flaw::ForgetsRevocation).await;
    let failed = failed(&report);
    assert!(
        failed.contains(&"invariant_4_refresh_replay_revokes_family"),
        "{report}"
    );
    assert!(
        failed.contains(&"std_7009_2_1_b_refresh_revocation_revokes_access_tokens"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_with_an_unbounded_purge_fails() {
    let report = run(Flaw::UnboundedPurge).await;
    assert!(
        failed(&report).contains(&"invariant_8_purge_is_bounded_and_keeps_replay_evidence"),
        "{report}"
    );
}
