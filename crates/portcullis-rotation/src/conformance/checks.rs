//! The checks, one public function each, named after what they test.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use portcullis_core::{Clock as _, ErrorCode, SecretString, UnixTime};
use portcullis_hash::{OpaqueToken, Purpose, TokenHash, TokenHasher, TokenPrefix};
use portcullis_pkce::CodeVerifier;

use super::{
    Authorization, CLIENT, Check, CheckFuture, Failure, Harness, OTHER_CLIENT, REDIRECT_URI, SCOPE,
    TEST_KEY, TEST_KEY_2, USER, ensure, keyring, model,
};
use crate::{
    BindingAction, BindingContext, BindingMode, BindingPolicy, BindingProof, CodeExchange,
    CodeOutcome, CodeRedemption, Credential, FamilyId, FamilySnapshot, Found, GrantStore,
    Introspection, Lifetimes, PurgeReport, RefreshOutcome, RefreshRequest, RefreshRotation,
    RevocationReason, RevokeResult, RotationError, RotationPolicy, SecurityEvent, StoreError,
    TokenKind, TokenPair,
};

macro_rules! check {
    ($f:ident $(, $id:literal)*) => {
        Check {
            name: stringify!($f),
            covers: &[$($id),*],
            run: |store| -> CheckFuture { Box::pin($f(store)) },
        }
    };
}

/// Every check, in the order [`run_all`](super::run_all) runs them.
#[must_use]
pub fn checks() -> Vec<Check> {
    vec![
        check!(invariant_1_only_keyed_hashes_stored),
        check!(invariant_1_lookup_across_key_rotation),
        check!(invariant_2_code_redeemed_at_most_once, "6749-4.1.2-b"),
        check!(invariant_2_refresh_redeemed_at_most_once, "21-4.3.1-a"),
        check!(invariant_2_concurrent_code_redemption_64, "6749-4.1.2-b"),
        check!(invariant_2_concurrent_refresh_grace_0_64, "9700-2.2.2-a"),
        check!(invariant_3_at_most_one_live_refresh_token),
        check!(invariant_3_concurrent_refresh_with_grace_64),
        check!(invariant_4_refresh_replay_revokes_family, "9700-2.2.2-a"),
        check!(
            invariant_4_code_replay_revokes_family,
            "6749-4.1.2-b",
            "21-7.5.2-a"
        ),
        check!(invariant_5_grace_window_reissues_only_the_previous_token),
        check!(invariant_5_grace_window_capped_in_store),
        check!(invariant_6_returned_tokens_are_stored),
        check!(invariant_6_store_failure_returns_no_token_and_changes_nothing),
        check!(invariant_7_code_lifetime_edges, "6749-4.1.2-c"),
        check!(invariant_7_refresh_idle_lifetime_edges, "9700-4.14.2-a"),
        check!(invariant_7_absolute_lifetime_not_extended_by_rotation),
        check!(invariant_7_access_lifetime_edges_and_session_cap),
        check!(invariant_8_revoke_family),
        check!(invariant_8_logout_revokes_every_family_of_the_user_only),
        check!(invariant_8_revoke_client),
        check!(invariant_8_purge_is_bounded_and_keeps_replay_evidence),
        check!(invariant_9_binding_user_agent_revokes_family),
        check!(invariant_9_binding_ip_prefix_rejects),
        check!(invariant_9_binding_report_only),
        check!(invariant_9_binding_off_ignores_changes),
        check!(invariant_9_binding_checked_on_grace_reissue),
        check!(
            std_6749_4_1_3_a_code_client_and_redirect_uri,
            "6749-4.1.3-a"
        ),
        check!(std_21_7_5_2_a_bad_replay_revokes_nothing, "21-7.5.2-a"),
        check!(
            std_7636_4_6_a_pkce_failure_keeps_the_code_bound,
            "7636-4.6-a",
            "9700-2.1.1-a"
        ),
        check!(
            std_9700_4_8_2_a_verifier_without_challenge_refused,
            "9700-4.8.2-a"
        ),
        check!(
            std_6749_6_a_refresh_client_and_scope,
            "6749-6-a",
            "9700-4.14.2-a"
        ),
        check!(
            std_6749_10_10_a_tokens_carry_256_random_bits,
            "6749-10.10-a"
        ),
        check!(
            std_9700_4_14_2_a_tampered_refresh_token_refused,
            "9700-4.14.2-a"
        ),
        check!(
            std_21_4_3_1_a_refresh_one_time_and_client_bound,
            "21-4.3.1-a"
        ),
        check!(std_7009_2_1_a_wrong_hint_still_revokes, "7009-2.1-a"),
        check!(
            std_7009_2_1_b_refresh_revocation_revokes_access_tokens,
            "7009-2.1-b"
        ),
        check!(std_7009_2_2_a_unknown_tokens_are_not_an_error, "7009-2.2-a"),
        check!(std_7009_2_1_c_other_clients_token_refused, "7009-2.1-c"),
        check!(std_7662_2_2_a_invalid_tokens_are_inactive, "7662-2.2-a"),
        check!(model_random_operation_sequences),
    ]
}

// ---------------------------------------------------------------------------------------------
// helpers

fn expect_err<T>(r: Result<T, RotationError>, code: ErrorCode, what: &str) -> Result<(), Failure> {
    match r {
        Ok(_) => Err(Failure::new(format!("{what}: succeeded, expected {code}"))),
        Err(e) if e.oauth_error().code() == code => Ok(()),
        Err(e) => Err(Failure::new(format!("{what}: got {e:?}, expected {code}"))),
    }
}

fn expect_invalid_grant<T>(r: Result<T, RotationError>, what: &str) -> Result<(), Failure> {
    expect_err(r, ErrorCode::InvalidGrant, what)
}

async fn expect_active(h: &Harness, token: &SecretString, what: &str) -> Result<(), Failure> {
    ensure!(
        h.active(token).await?,
        "{what}: expected active, is inactive"
    );
    Ok(())
}

async fn expect_inactive(h: &Harness, token: &SecretString, what: &str) -> Result<(), Failure> {
    ensure!(
        !h.active(token).await?,
        "{what}: expected inactive, is active"
    );
    Ok(())
}

fn policy(p: Result<RotationPolicy, crate::PolicyError>) -> Result<RotationPolicy, Failure> {
    p.map_err(|e| Failure::new(format!("policy: {e}")))
}

fn grace(secs: u64) -> Result<RotationPolicy, Failure> {
    policy(RotationPolicy::default().with_grace_window(Duration::from_secs(secs)))
}

fn revocation_reason(snap: &FamilySnapshot) -> Option<RevocationReason> {
    snap.family.revoked.map(|r| r.reason)
}

async fn expect_revoked(
    h: &Harness,
    family: FamilyId,
    reason: RevocationReason,
) -> Result<(), Failure> {
    let snap = h.snapshot(family).await?;
    ensure!(
        revocation_reason(&snap) == Some(reason),
        "family should be revoked for {reason:?}, is {:?}",
        snap.family.revoked
    );
    Ok(())
}

async fn expect_not_revoked(h: &Harness, family: FamilyId) -> Result<(), Failure> {
    let snap = h.snapshot(family).await?;
    ensure!(
        snap.family.revoked.is_none(),
        "family should not be revoked, is {:?}",
        snap.family.revoked
    );
    Ok(())
}

fn ua(agent: &str) -> BindingContext<'_> {
    BindingContext {
        user_agent: Some(agent),
        ip: None,
        device_id: None,
    }
}

fn ua_ip<'a>(agent: &'a str, ip: &str) -> Result<BindingContext<'a>, Failure> {
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| Failure::new(format!("bad test address {ip}")))?;
    Ok(BindingContext {
        user_agent: Some(agent),
        ip: Some(ip),
        device_id: None,
    })
}

/// Run `n` copies of a future at once (lined up on a barrier), each in its own task.
async fn race<F, Fut>(n: usize, make: F) -> Result<Vec<Result<TokenPair, RotationError>>, Failure>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<TokenPair, RotationError>> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let fut = make();
        let barrier = Arc::clone(&barrier);
        tasks.spawn(async move {
            barrier.wait().await;
            fut.await
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        out.push(r.map_err(|e| Failure::new(format!("a racing task failed: {e}")))?);
    }
    Ok(out)
}

fn refresh_task(
    h: &Harness,
    token: &SecretString,
) -> impl Future<Output = Result<TokenPair, RotationError>> + Send + 'static {
    let service = Arc::clone(h.service());
    let token = token.clone();
    async move {
        service
            .refresh(RefreshRequest {
                refresh_token: token.expose_secret(),
                client_id: CLIENT,
                scope: None,
                binding: BindingContext::default(),
            })
            .await
    }
}

fn exchange_task(
    h: &Harness,
    auth: &Authorization,
) -> impl Future<Output = Result<TokenPair, RotationError>> + Send + 'static {
    let service = Arc::clone(h.service());
    let code = auth.code.clone();
    let verifier = auth.verifier.expose_secret().to_owned();
    let client = auth.client_id.clone();
    async move {
        service
            .exchange_code(CodeExchange {
                code: code.expose_secret(),
                client_id: &client,
                redirect_uri: Some(REDIRECT_URI),
                code_verifier: Some(&verifier),
                binding: BindingContext::default(),
            })
            .await
    }
}

fn children_of(snap: &FamilySnapshot, parent: &TokenHash) -> Vec<Credential> {
    snap.credentials
        .iter()
        .filter(|c| c.parent.as_ref() == Some(parent))
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------------------------
// invariant 1

/// Invariant 1: the store holds exactly the keyed hashes of what was issued, under the current
/// key, and nothing that is a plaintext token or verifier.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_1_only_keyed_hashes_stored(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let (auth, first) = h.grant(USER, CLIENT).await?;
    let second = h.refresh(&first.refresh_token).await?;
    let snap = h.snapshot(auth.family).await?;
    let hasher = h.hasher();
    let hash = |p: Purpose, t: &SecretString| hasher.hash(p, t.expose_secret().as_bytes());
    let mut expected_credentials = vec![
        hash(Purpose::AuthorizationCode, &auth.code),
        hash(Purpose::RefreshToken, &first.refresh_token),
        hash(Purpose::RefreshToken, &second.refresh_token),
    ];
    let mut expected_access = vec![
        hash(Purpose::AccessToken, &first.access_token),
        hash(Purpose::AccessToken, &second.access_token),
    ];
    let mut stored_credentials: Vec<TokenHash> = snap.credentials.iter().map(|c| c.hash).collect();
    let mut stored_access: Vec<TokenHash> = snap.access_tokens.iter().map(|t| t.hash).collect();
    for v in [
        &mut expected_credentials,
        &mut expected_access,
        &mut stored_credentials,
        &mut stored_access,
    ] {
        v.sort_by_key(|h| *h.as_bytes());
    }
    ensure!(
        stored_credentials == expected_credentials,
        "stored credentials are not the keyed hashes of the issued code and refresh tokens"
    );
    ensure!(
        stored_access == expected_access,
        "stored access tokens are not the keyed hashes of the issued access tokens"
    );
    // Keyed: another key gives other hashes.
    let other = TokenHasher::new(keyring(TEST_KEY_2, None)?);
    ensure!(
        other.hash(
            Purpose::RefreshToken,
            first.refresh_token.expose_secret().as_bytes()
        ) != hash(Purpose::RefreshToken, &first.refresh_token),
        "hashes do not depend on the key"
    );
    // No plaintext anywhere in the records.
    let shown = format!("{snap:?}");
    for secret in [
        auth.code.expose_secret(),
        auth.verifier.expose_secret(),
        first.refresh_token.expose_secret(),
        first.access_token.expose_secret(),
        second.refresh_token.expose_secret(),
        second.access_token.expose_secret(),
    ] {
        ensure!(!shown.contains(secret), "a plaintext secret is stored");
    }
    // The PKCE challenge is kept (it is public), never the verifier.
    let code = snap
        .credentials
        .iter()
        .find(|c| c.kind == TokenKind::AuthorizationCode)
        .ok_or_else(|| Failure::new("the code record is missing"))?;
    let terms = code
        .code_terms
        .as_ref()
        .ok_or_else(|| Failure::new("the code's terms are missing"))?;
    ensure!(
        terms.challenge.as_ref() == Some(&auth.verifier.challenge()),
        "the code's PKCE challenge was not kept"
    );
    Ok(())
}

/// Invariant 1 across a key rotation: records hashed under the previous key are still found
/// (and their binding still matches), new records use the new key.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_1_lookup_across_key_rotation(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let bound = RotationPolicy::default().with_binding(BindingPolicy::new(
        BindingMode::UserAgent,
        BindingAction::RevokeFamily,
    ));
    let before = Harness::with_policy(Arc::clone(&store), bound)?;
    let auth = before.issue(USER, CLIENT).await?;
    let first = before.exchange_as(&auth, CLIENT, ua("agent/1")).await?;

    let rotated = Arc::new(TokenHasher::new(keyring(TEST_KEY_2, Some(TEST_KEY))?));
    let after = Harness::build(store, bound, Arc::clone(&rotated), before.clock().clone());
    let second = after
        .refresh_as(&first.refresh_token, CLIENT, None, ua("agent/1"))
        .await?;
    expect_active(&after, &second.refresh_token, "new refresh token").await?;
    let snap = after.snapshot(auth.family).await?;
    let new_hash = rotated.hash(
        Purpose::RefreshToken,
        second.refresh_token.expose_secret().as_bytes(),
    );
    ensure!(
        snap.credentials.iter().any(|c| c.hash == new_hash),
        "the new refresh token is not stored under the new key"
    );
    // The old-key-only service cannot find it: it is keyed by the new key.
    expect_inactive(
        &before,
        &second.refresh_token,
        "new token under the old key alone",
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// invariant 2

/// Invariant 2: a code is redeemed once; the second redemption is refused.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_2_code_redeemed_at_most_once(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let (auth, _) = h.grant(USER, CLIENT).await?;
    expect_invalid_grant(h.exchange(&auth).await, "second redemption of a code")?;
    let snap = h.snapshot(auth.family).await?;
    let code = snap
        .credentials
        .iter()
        .find(|c| c.kind == TokenKind::AuthorizationCode)
        .ok_or_else(|| Failure::new("code record missing"))?;
    ensure!(code.used_at.is_some(), "the code is not marked used");
    ensure!(
        children_of(&snap, &code.hash).len() == 1,
        "the code has more than one successor"
    );
    Ok(())
}

/// Invariant 2: a refresh token is redeemed once.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_2_refresh_redeemed_at_most_once(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let (auth, first) = h.grant(USER, CLIENT).await?;
    h.refresh(&first.refresh_token).await?;
    expect_invalid_grant(
        h.refresh(&first.refresh_token).await,
        "second redemption of a refresh token",
    )?;
    let snap = h.snapshot(auth.family).await?;
    ensure!(
        children_of(&snap, &h.refresh_hash(&first.refresh_token)).len() == 1,
        "the refresh token has more than one successor"
    );
    Ok(())
}

/// Invariant 2 under concurrency: 64 tasks redeem one code at once. Exactly one succeeds; the
/// others are valid replays, so the family ends revoked.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_2_concurrent_code_redemption_64(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let auth = h.issue(USER, CLIENT).await?;
    let results = race(64, || exchange_task(&h, &auth)).await?;
    let wins: Vec<&TokenPair> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    ensure!(
        wins.len() == 1,
        "{} of 64 redemptions succeeded",
        wins.len()
    );
    for r in &results {
        if let Err(e) = r {
            ensure!(
                e.oauth_error().code() == ErrorCode::InvalidGrant,
                "a losing redemption got {e:?}"
            );
        }
    }
    expect_revoked(&h, auth.family, RevocationReason::CodeReplay).await?;
    if let Some(win) = wins.first() {
        expect_inactive(&h, &win.refresh_token, "the winner's refresh token").await?;
        expect_inactive(&h, &win.access_token, "the winner's access token").await?;
    }
    let snap = h.snapshot(auth.family).await?;
    ensure!(
        snap.credentials
            .iter()
            .filter(|c| c.kind == TokenKind::RefreshToken)
            .count()
            == 1,
        "more than one refresh token was stored for one code"
    );
    Ok(())
}

/// Invariant 2 under concurrency, grace 0: 64 tasks redeem one refresh token at once. Exactly
/// one succeeds, and the family ends revoked with no live refresh token.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_2_concurrent_refresh_grace_0_64(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let (auth, first) = h.grant(USER, CLIENT).await?;
    let results = race(64, || refresh_task(&h, &first.refresh_token)).await?;
    let wins: Vec<&TokenPair> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    ensure!(wins.len() == 1, "{} of 64 rotations succeeded", wins.len());
    for r in &results {
        if let Err(e) = r {
            ensure!(
                e.oauth_error().code() == ErrorCode::InvalidGrant,
                "a losing rotation got {e:?}"
            );
        }
    }
    expect_revoked(&h, auth.family, RevocationReason::RefreshReplay).await?;
    ensure!(
        h.live_refresh_tokens(auth.family).await?.is_empty(),
        "a revoked family still has a live refresh token"
    );
    if let Some(win) = wins.first() {
        expect_inactive(&h, &win.refresh_token, "the winner's refresh token").await?;
        expect_inactive(&h, &win.access_token, "the winner's access token").await?;
    }
    let snap = h.snapshot(auth.family).await?;
    ensure!(
        children_of(&snap, &h.refresh_hash(&first.refresh_token)).len() == 1,
        "more than one successor was stored"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// invariant 3

/// Invariant 3: after every rotation exactly one refresh token of the family is live, the
/// latest.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_3_at_most_one_live_refresh_token(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let (auth, first) = h.grant(USER, CLIENT).await?;
    let mut issued = vec![first.refresh_token];
    for step in 0..10 {
        let last = issued
            .last()
            .ok_or_else(|| Failure::new("no token issued"))?;
        let next = h.refresh(last).await?;
        issued.push(next.refresh_token);
        let live = h.live_refresh_tokens(auth.family).await?;
        ensure!(
            live.len() == 1,
            "step {step}: {} live refresh tokens",
            live.len()
        );
        let (latest, older) = issued
            .split_last()
            .ok_or_else(|| Failure::new("no token issued"))?;
        ensure!(
            live.first() == Some(&h.refresh_hash(latest)),
            "step {step}: the live token is not the latest"
        );
        expect_active(&h, latest, "latest refresh token").await?;
        for old in older {
            expect_inactive(&h, old, "rotated-out refresh token").await?;
        }
    }
    Ok(())
}

/// Invariants 3 and 5 under concurrency: with a grace window, 64 tasks present one refresh
/// token at once. None of them revokes the family; afterwards exactly one refresh token is live
/// and it is the last one issued (the presented token's current successor).
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_3_concurrent_refresh_with_grace_64(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::with_policy(store, grace(60)?)?;
    let (auth, first) = h.grant(USER, CLIENT).await?;
    let results = race(64, || refresh_task(&h, &first.refresh_token)).await?;
    let mut wins = Vec::new();
    for r in results {
        match r {
            Ok(pair) => wins.push(pair),
            Err(e) => {
                return Err(Failure::new(format!(
                    "a rotation inside the grace window failed: {e:?}"
                )));
            }
        }
    }
    expect_not_revoked(&h, auth.family).await?;
    let live = h.live_refresh_tokens(auth.family).await?;
    ensure!(
        live.len() == 1,
        "{} live refresh tokens after the race",
        live.len()
    );
    let snap = h.snapshot(auth.family).await?;
    let presented = h.refresh_hash(&first.refresh_token);
    let head = snap
        .credentials
        .iter()
        .find(|c| c.hash == presented)
        .and_then(|c| c.successor)
        .ok_or_else(|| Failure::new("the presented token has no successor"))?;
    ensure!(
        live.first() == Some(&head),
        "the live refresh token is not the last one issued"
    );
    let mut active = Vec::new();
    for pair in &wins {
        if h.active(&pair.refresh_token).await? {
            active.push(pair);
        }
    }
    ensure!(
        active.len() == 1,
        "{} of the returned refresh tokens are active",
        active.len()
    );
    if let Some(pair) = active.first() {
        h.refresh(&pair.refresh_token).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// invariant 4

/// Invariant 4 (STANDARDS `9700-2.2.2-a`): replaying a rotated-out refresh token is
/// `invalid_grant` and revokes the family: the active refresh token and every access token.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_4_refresh_replay_revokes_family(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let (auth, first) = h.grant(USER, CLIENT).await?;
    let second = h.refresh(&first.refresh_token).await?;
    expect_invalid_grant(h.refresh(&first.refresh_token).await, "refresh replay")?;
    expect_revoked(&h, auth.family, RevocationReason::RefreshReplay).await?;
    expect_inactive(&h, &second.refresh_token, "the active refresh token").await?;
    expect_inactive(&h, &second.access_token, "the latest access token").await?;
    expect_inactive(&h, &first.access_token, "the first access token").await?;
    expect_invalid_grant(
        h.refresh(&second.refresh_token).await,
        "refresh with the revoked family's token",
    )?;
    let events = h.events();
    ensure!(
        events.iter().any(|e| matches!(
            e,
            SecurityEvent::RefreshReplayDetected { family, generation: 1, .. } if *family == auth.family
        )),
        "no replay event: {events:?}"
    );
    ensure!(
        events.iter().any(|e| matches!(
            e,
            SecurityEvent::FamilyRevoked { family, reason: RevocationReason::RefreshReplay } if *family == auth.family
        )),
        "no revocation event: {events:?}"
    );
    Ok(())
}

/// Invariant 4 for codes (STANDARDS `6749-4.1.2-b`, `21-7.5.2-a`): a valid replay of a used
/// code is `invalid_grant` and revokes every token issued from it, including after rotation.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_4_code_replay_revokes_family(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let (auth, first) = h.grant(USER, CLIENT).await?;
    let second = h.refresh(&first.refresh_token).await?;
    expect_invalid_grant(h.exchange(&auth).await, "code replay")?;
    expect_revoked(&h, auth.family, RevocationReason::CodeReplay).await?;
    for (token, what) in [
        (&first.access_token, "first access token"),
        (&second.access_token, "second access token"),
        (&second.refresh_token, "current refresh token"),
    ] {
        expect_inactive(&h, token, what).await?;
    }
    let events = h.events();
    ensure!(
        events.iter().any(
            |e| matches!(e, SecurityEvent::CodeReplayed { family, .. } if *family == auth.family)
        ),
        "no code replay event: {events:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// invariant 5

/// Invariant 5: inside the grace window only the immediately previous refresh token may be
/// presented again; it gets a fresh successor and the earlier successor is revoked. Presenting
/// the superseded successor, an older token, or the previous token at the window's edge is a
/// replay.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_5_grace_window_reissues_only_the_previous_token(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::with_policy(store, grace(30)?)?;

    // The previous token again, inside the window.
    let (a, p) = h.grant(USER, CLIENT).await?;
    let s1 = h.refresh(&p.refresh_token).await?;
    h.clock().advance(Duration::from_secs(10));
    let s2 = h.refresh(&p.refresh_token).await?;
    expect_inactive(&h, &s1.refresh_token, "superseded successor").await?;
    expect_active(&h, &s2.refresh_token, "fresh successor").await?;
    ensure!(
        h.live_refresh_tokens(a.family).await?.len() == 1,
        "more than one live refresh token after a grace reissue"
    );
    ensure!(
        s2.generation == s1.generation,
        "a grace reissue should replace generation {}, got {}",
        s1.generation,
        s2.generation
    );
    // The superseded successor is a replay.
    expect_invalid_grant(h.refresh(&s1.refresh_token).await, "superseded successor")?;
    expect_revoked(&h, a.family, RevocationReason::RefreshReplay).await?;

    // Not the immediately previous token: the chain moved on.
    let (b, p) = h.grant(USER, CLIENT).await?;
    let s1 = h.refresh(&p.refresh_token).await?;
    h.refresh(&s1.refresh_token).await?;
    expect_invalid_grant(
        h.refresh(&p.refresh_token).await,
        "older token inside the window",
    )?;
    expect_revoked(&h, b.family, RevocationReason::RefreshReplay).await?;

    // The window's edges.
    let (c, p) = h.grant(USER, CLIENT).await?;
    h.refresh(&p.refresh_token).await?;
    h.clock()
        .advance(Duration::from_secs(30) - Duration::from_micros(1));
    h.refresh(&p.refresh_token).await?;
    expect_not_revoked(&h, c.family).await?;
    h.clock().advance(Duration::from_micros(1));
    expect_invalid_grant(h.refresh(&p.refresh_token).await, "at the window's end")?;
    expect_revoked(&h, c.family, RevocationReason::RefreshReplay).await?;
    Ok(())
}

fn mint_hash(h: &Harness, kind: TokenKind) -> Result<TokenHash, Failure> {
    let t = OpaqueToken::mint(kind.prefix()).map_err(|e| Failure::new(e.to_string()))?;
    Ok(h.hasher()
        .hash(kind.purpose(), t.expose_secret().as_bytes()))
}

/// Invariant 5's cap, enforced by the store itself: a request carrying a grace window above
/// five minutes is treated as five minutes.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_5_grace_window_capped_in_store(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::with_policy(store, grace(300)?)?;
    let (a, p) = h.grant(USER, CLIENT).await?;
    h.refresh(&p.refresh_token).await?;
    let candidates = vec![h.refresh_hash(&p.refresh_token)];
    let proof = BindingProof::default();
    let lifetimes = Lifetimes {
        refresh_idle: h.service().policy().refresh_idle_lifetime(),
        access: h.service().policy().access_lifetime(),
    };
    let start = h.clock().now();
    let rotation = |now: UnixTime, successor, access| RefreshRotation {
        candidates: &candidates,
        client_id: CLIENT,
        scope: None,
        binding: &proof,
        binding_policy: BindingPolicy::default(),
        grace_window: Duration::from_secs(3600),
        successor,
        access,
        lifetimes,
        now,
    };
    let inside = start.saturating_add(Duration::from_secs(300) - Duration::from_micros(1));
    let r = h
        .store()
        .rotate_refresh(&rotation(
            inside,
            mint_hash(&h, TokenKind::RefreshToken)?,
            mint_hash(&h, TokenKind::AccessToken)?,
        ))
        .await?;
    ensure!(
        matches!(r, RefreshOutcome::GraceReissued { .. }),
        "inside five minutes: expected a grace reissue, got {r:?}"
    );
    let edge = start.saturating_add(Duration::from_secs(300));
    let r = h
        .store()
        .rotate_refresh(&rotation(
            edge,
            mint_hash(&h, TokenKind::RefreshToken)?,
            mint_hash(&h, TokenKind::AccessToken)?,
        ))
        .await?;
    ensure!(
        matches!(r, RefreshOutcome::Replayed { .. }),
        "at five minutes with a one-hour window: expected a replay, got {r:?}"
    );
    expect_revoked(&h, a.family, RevocationReason::RefreshReplay).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// invariant 6

async fn expect_stored(h: &Harness, pair: &TokenPair, what: &str) -> Result<(), Failure> {
    for (kind, token) in [
        (TokenKind::RefreshToken, &pair.refresh_token),
        (TokenKind::AccessToken, &pair.access_token),
    ] {
        let candidates: Vec<TokenHash> = h
            .hasher()
            .candidates(kind.purpose(), token.expose_secret().as_bytes())
            .collect();
        let found = h.store().find(kind, &candidates).await?;
        ensure!(
            matches!(
                (&found, kind),
                (Some(Found::Credential { .. }), TokenKind::RefreshToken)
                    | (Some(Found::Access { .. }), TokenKind::AccessToken)
            ),
            "{what}: the returned {} is not stored",
            kind.as_str()
        );
        expect_active(h, token, what).await?;
    }
    Ok(())
}

/// Invariant 6: every token returned to a client is already stored when the call returns.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_6_returned_tokens_are_stored(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::with_policy(store, grace(30)?)?;
    let (_, first) = h.grant(USER, CLIENT).await?;
    expect_stored(&h, &first, "code exchange").await?;
    let second = h.refresh(&first.refresh_token).await?;
    expect_stored(&h, &second, "rotation").await?;
    let third = h.refresh(&first.refresh_token).await?;
    expect_stored(&h, &third, "grace reissue").await?;
    Ok(())
}

/// A store that fails every redemption with a retryable error before touching the inner store.
#[derive(Debug)]
struct Unavailable(Arc<dyn GrantStore>);

fn down() -> StoreError {
    StoreError::unavailable("conformance: store down")
}

#[async_trait::async_trait]
impl GrantStore for Unavailable {
    async fn create_family(
        &self,
        family: &crate::Family,
        code: &Credential,
    ) -> Result<(), StoreError> {
        self.0.create_family(family, code).await
    }
    async fn redeem_code(&self, _: &CodeRedemption<'_>) -> Result<CodeOutcome, StoreError> {
        Err(down())
    }
    async fn rotate_refresh(&self, _: &RefreshRotation<'_>) -> Result<RefreshOutcome, StoreError> {
        Err(down())
    }
    async fn find(
        &self,
        kind: TokenKind,
        candidates: &[TokenHash],
    ) -> Result<Option<Found>, StoreError> {
        self.0.find(kind, candidates).await
    }
    async fn revoke_token(
        &self,
        _: &crate::TokenRevocation<'_>,
    ) -> Result<crate::RevokeOutcome, StoreError> {
        Err(down())
    }
    async fn revoke_family(
        &self,
        _: FamilyId,
        _: RevocationReason,
        _: UnixTime,
    ) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn revoke_user(
        &self,
        _: &str,
        _: RevocationReason,
        _: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError> {
        Err(down())
    }
    async fn revoke_client(
        &self,
        _: &str,
        _: RevocationReason,
        _: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError> {
        Err(down())
    }
    async fn family(&self, id: FamilyId) -> Result<Option<FamilySnapshot>, StoreError> {
        self.0.family(id).await
    }
    async fn purge(&self, _: UnixTime, _: usize) -> Result<PurgeReport, StoreError> {
        Err(down())
    }
}

/// Invariant 6 from the other side: when the store call fails, no token is returned, the error
/// is retryable (`temporarily_unavailable`, never a 500), and nothing was consumed or revoked.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_6_store_failure_returns_no_token_and_changes_nothing(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(Arc::clone(&store))?;
    let broken = Harness::build(
        Arc::new(Unavailable(store)),
        RotationPolicy::default(),
        Arc::clone(h.hasher()),
        h.clock().clone(),
    );
    let auth = h.issue(USER, CLIENT).await?;
    let failed = broken.exchange(&auth).await;
    ensure!(
        matches!(&failed, Err(e) if e.is_retryable()
            && e.oauth_error().code() == ErrorCode::TemporarilyUnavailable),
        "a store failure should be a retryable error, got {failed:?}"
    );
    let first = h.exchange(&auth).await?;
    let failed = broken.refresh(&first.refresh_token).await;
    ensure!(
        matches!(&failed, Err(e) if e.is_retryable() && e.oauth_error().status() == 503),
        "a store failure should be a retryable 503, got {failed:?}"
    );
    expect_not_revoked(&h, auth.family).await?;
    expect_active(&h, &first.refresh_token, "token after a failed rotation").await?;
    h.refresh(&first.refresh_token).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// invariant 7

/// Invariant 7 for codes (STANDARDS `6749-4.1.2-c`): a code is valid until one microsecond
/// before its lifetime ends; with a ten-minute policy, a code used ten minutes after issue is
/// `invalid_grant`. An expired code revokes nothing.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_7_code_lifetime_edges(store: Arc<dyn GrantStore>) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let lifetime = h.service().policy().code_lifetime();
    let a = h.issue(USER, CLIENT).await?;
    let b = h.issue(USER, CLIENT).await?;
    h.clock().advance(lifetime - Duration::from_micros(1));
    h.exchange(&a).await?;
    h.clock().advance(Duration::from_micros(1));
    expect_invalid_grant(h.exchange(&b).await, "code at the end of its lifetime")?;
    expect_not_revoked(&h, b.family).await?;

    let ten = h.with_other_policy(policy(
        RotationPolicy::default().with_code_lifetime(crate::MAX_CODE_LIFETIME),
    )?);
    let c = ten.issue(USER, CLIENT).await?;
    let d = ten.issue(USER, CLIENT).await?;
    ten.clock()
        .advance(Duration::from_secs(600) - Duration::from_micros(1));
    ten.exchange(&c).await?;
    ten.clock().advance(Duration::from_micros(1));
    expect_invalid_grant(ten.exchange(&d).await, "code used ten minutes after issue")?;
    Ok(())
}

/// Invariant 7 for refresh tokens (STANDARDS `9700-4.14.2-a`: expire after inactivity): a
/// refresh token is valid until its idle lifetime ends, each rotation starts a new period, and
/// an expired token is refused without revoking anything.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_7_refresh_idle_lifetime_edges(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let idle = Duration::from_secs(3600);
    let h = Harness::with_policy(
        store,
        policy(RotationPolicy::default().with_refresh_idle_lifetime(idle))?,
    )?;
    let (auth, first) = h.grant(USER, CLIENT).await?;
    let t0 = h.clock().now();
    ensure!(
        first.refresh_expires_at == t0.saturating_add(idle),
        "refresh expiry {:?}, expected issue + idle lifetime",
        first.refresh_expires_at
    );
    h.clock().advance(idle - Duration::from_micros(1));
    expect_active(
        &h,
        &first.refresh_token,
        "one microsecond before idle expiry",
    )
    .await?;
    let second = h.refresh(&first.refresh_token).await?;
    ensure!(
        second.refresh_expires_at == h.clock().now().saturating_add(idle),
        "rotation did not start a new idle period"
    );
    h.clock().advance(idle);
    expect_inactive(&h, &second.refresh_token, "at idle expiry").await?;
    expect_invalid_grant(
        h.refresh(&second.refresh_token).await,
        "refresh at idle expiry",
    )?;
    expect_not_revoked(&h, auth.family).await?;
    Ok(())
}

/// Invariant 7: the family's absolute lifetime is fixed at creation; rotation never extends it
/// and new tokens are capped by it.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_7_absolute_lifetime_not_extended_by_rotation(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let hour = Duration::from_secs(3600);
    let h = Harness::with_policy(
        store,
        policy(
            RotationPolicy::default()
                .with_family_lifetime(3 * hour)
                .and_then(|p| p.with_refresh_idle_lifetime(2 * hour))
                .and_then(|p| p.with_access_lifetime(hour)),
        )?,
    )?;
    let t0 = h.clock().now();
    let end = t0.saturating_add(3 * hour);
    let (auth, first) = h.grant(USER, CLIENT).await?;
    h.clock().advance(hour + hour / 2);
    let second = h.refresh(&first.refresh_token).await?;
    ensure!(
        second.refresh_expires_at == end,
        "refresh token expires {:?}, past the family's end {end:?}",
        second.refresh_expires_at
    );
    h.clock().set(end.saturating_sub(Duration::from_micros(1)));
    let third = h.refresh(&second.refresh_token).await?;
    ensure!(
        third.refresh_expires_at == end && third.access_expires_at == end,
        "tokens issued just before the family's end outlive it"
    );
    ensure!(
        third.expires_in == Duration::from_micros(1),
        "expires_in {:?}",
        third.expires_in
    );
    h.clock().set(end);
    expect_inactive(&h, &third.access_token, "access token at the family's end").await?;
    expect_inactive(
        &h,
        &third.refresh_token,
        "refresh token at the family's end",
    )
    .await?;
    expect_invalid_grant(
        h.refresh(&third.refresh_token).await,
        "refresh at the family's end",
    )?;
    let snap = h.snapshot(auth.family).await?;
    ensure!(
        snap.family.expires_at == end,
        "the family's expiry moved to {:?}",
        snap.family.expires_at
    );
    Ok(())
}

/// Invariant 7 for access tokens: valid until their lifetime ends, and capped by the upstream
/// session's expiry (after which refreshing fails too); a code cannot be issued for an expired
/// session.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_7_access_lifetime_edges_and_session_cap(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let lifetime = h.service().policy().access_lifetime();
    let (_, first) = h.grant(USER, CLIENT).await?;
    ensure!(
        first.expires_in == lifetime,
        "expires_in {:?}",
        first.expires_in
    );
    h.clock().advance(lifetime - Duration::from_micros(1));
    expect_active(&h, &first.access_token, "access token just before expiry").await?;
    h.clock().advance(Duration::from_micros(1));
    expect_inactive(&h, &first.access_token, "access token at expiry").await?;

    let session_end = h.clock().now().saturating_add(Duration::from_secs(1800));
    let auth = h.issue_with(USER, CLIENT, Some(session_end)).await?;
    let pair = h.exchange(&auth).await?;
    ensure!(
        pair.access_expires_at == session_end && pair.expires_in == Duration::from_secs(1800),
        "the access token outlives the upstream session: {:?}",
        pair.access_expires_at
    );
    h.clock().set(session_end);
    expect_inactive(&h, &pair.access_token, "access token at the session's end").await?;
    expect_invalid_grant(
        h.refresh(&pair.refresh_token).await,
        "refresh after the session's end",
    )?;
    let verifier = CodeVerifier::generate().map_err(|e| Failure::new(e.to_string()))?;
    let late = h
        .service()
        .issue_code(crate::CodeRequest {
            client_id: CLIENT.to_owned(),
            redirect_uri: REDIRECT_URI.to_owned(),
            challenge: Some(verifier.challenge()),
            scope: crate::Scope::empty(),
            resources: vec![],
            user_id: USER.to_owned(),
            session_expires_at: Some(session_end),
        })
        .await;
    ensure!(
        matches!(late, Err(RotationError::SessionExpired)),
        "a code was issued for an expired session: {late:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// invariant 8

/// Invariant 8: revoking a family by id makes every token of it inactive.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_8_revoke_family(store: Arc<dyn GrantStore>) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let (auth, first) = h.grant(USER, CLIENT).await?;
    let second = h.refresh(&first.refresh_token).await?;
    let (_, other) = h.grant(USER, CLIENT).await?;
    ensure!(
        h.service().revoke_family(auth.family).await?,
        "revoke_family reported nothing revoked"
    );
    ensure!(
        !h.service().revoke_family(auth.family).await?,
        "revoking twice reported a second revocation"
    );
    expect_revoked(&h, auth.family, RevocationReason::Administrative).await?;
    expect_inactive(&h, &second.refresh_token, "refresh token").await?;
    expect_inactive(&h, &second.access_token, "access token").await?;
    expect_invalid_grant(
        h.refresh(&second.refresh_token).await,
        "refresh after revocation",
    )?;
    expect_active(&h, &other.refresh_token, "another family of the user").await?;
    Ok(())
}

/// Invariant 8: logout revokes every family of the user, across clients, and no other user's.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_8_logout_revokes_every_family_of_the_user_only(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let (a1, p1) = h.grant("alice", CLIENT).await?;
    let (a2, p2) = h.grant("alice", CLIENT).await?;
    let (a3, p3) = h.grant("alice", OTHER_CLIENT).await?;
    let pending = h.issue("alice", CLIENT).await?;
    let (_, bob) = h.grant("bob", CLIENT).await?;
    let (_, alicia) = h.grant("alice2", CLIENT).await?;
    let mut revoked = h.service().logout("alice").await?;
    revoked.sort();
    let mut expected = vec![a1.family, a2.family, a3.family, pending.family];
    expected.sort();
    ensure!(
        revoked == expected,
        "logout revoked {revoked:?}, expected {expected:?}"
    );
    for (pair, what) in [(&p1, "first"), (&p2, "second"), (&p3, "other client's")] {
        expect_inactive(&h, &pair.refresh_token, what).await?;
        expect_inactive(&h, &pair.access_token, what).await?;
    }
    expect_invalid_grant(h.exchange(&pending).await, "exchange after logout")?;
    expect_active(&h, &bob.refresh_token, "another user's refresh token").await?;
    expect_active(&h, &bob.access_token, "another user's access token").await?;
    expect_active(
        &h,
        &alicia.access_token,
        "a user whose id extends the first's",
    )
    .await?;
    ensure!(
        h.service().logout("alice").await?.is_empty(),
        "a second logout revoked more families"
    );
    Ok(())
}

/// Invariant 8: revoking a client revokes its families and no other client's.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_8_revoke_client(store: Arc<dyn GrantStore>) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let (a, pa) = h.grant("alice", OTHER_CLIENT).await?;
    let (b, pb) = h.grant("bob", OTHER_CLIENT).await?;
    let (_, keep) = h.grant("alice", CLIENT).await?;
    let mut revoked = h.service().revoke_client(OTHER_CLIENT).await?;
    revoked.sort();
    let mut expected = vec![a.family, b.family];
    expected.sort();
    ensure!(
        revoked == expected,
        "revoked {revoked:?}, expected {expected:?}"
    );
    expect_inactive(&h, &pa.access_token, "client's token").await?;
    expect_inactive(&h, &pb.refresh_token, "client's token").await?;
    expect_active(&h, &keep.refresh_token, "another client's token").await?;
    expect_revoked(&h, a.family, RevocationReason::ClientRevoked).await?;
    Ok(())
}

/// Invariant 8: purge removes revoked and expired records in batches of at most `max`, and
/// keeps what still matters — live tokens, and used tokens that have not expired, so a replay
/// is still detected after a purge.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_8_purge_is_bounded_and_keeps_replay_evidence(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let mut revoked = Vec::new();
    for _ in 0..3 {
        let (auth, pair) = h.grant(USER, OTHER_CLIENT).await?;
        h.refresh_as(
            &pair.refresh_token,
            OTHER_CLIENT,
            None,
            BindingContext::default(),
        )
        .await?;
        revoked.push(auth.family);
    }
    h.service().revoke_client(OTHER_CLIENT).await?;
    let session_end = h.clock().now().saturating_add(Duration::from_secs(600));
    let short = h.issue_with(USER, CLIENT, Some(session_end)).await?;
    let short_pair = h.exchange(&short).await?;
    let unredeemed = h.issue(USER, CLIENT).await?;
    let (kept, p) = h.grant(USER, CLIENT).await?;
    let s = h.refresh(&p.refresh_token).await?;
    h.clock().advance(Duration::from_secs(600));

    let nothing = h.service().purge(0).await?;
    ensure!(nothing.removed == 0, "purge(0) removed {}", nothing.removed);
    let mut total = 0usize;
    let mut calls = 0;
    loop {
        let report = h.service().purge(2).await?;
        ensure!(report.removed <= 2, "purge(2) removed {}", report.removed);
        total += report.removed;
        calls += 1;
        if !report.more {
            break;
        }
        ensure!(calls < 1000, "purge does not finish");
    }
    ensure!(total > 0, "purge removed nothing");
    for id in revoked.iter().chain([&short.family]) {
        let snap = h.store().family(*id).await?;
        ensure!(snap.is_none(), "a dead family is still stored after purge");
    }
    if let Some(snap) = h.store().family(unredeemed.family).await? {
        ensure!(
            snap.credentials.is_empty(),
            "an expired code is still stored after purge"
        );
    }
    expect_inactive(&h, &short_pair.refresh_token, "expired family's token").await?;
    expect_active(&h, &s.refresh_token, "live refresh token after purge").await?;
    // The used token is still there: presenting it is still a replay.
    expect_invalid_grant(h.refresh(&p.refresh_token).await, "replay after purge")?;
    expect_revoked(&h, kept.family, RevocationReason::RefreshReplay).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// invariant 9

fn binding(mode: BindingMode, action: BindingAction) -> RotationPolicy {
    RotationPolicy::default().with_binding(BindingPolicy::new(mode, action))
}

/// Invariant 9: user-agent binding with the revoke action: a refresh from another user agent
/// revokes the family and is reported.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_9_binding_user_agent_revokes_family(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::with_policy(
        store,
        binding(BindingMode::UserAgent, BindingAction::RevokeFamily),
    )?;
    let auth = h.issue(USER, CLIENT).await?;
    let first = h.exchange_as(&auth, CLIENT, ua("agent/1")).await?;
    let second = h
        .refresh_as(&first.refresh_token, CLIENT, None, ua("agent/1"))
        .await?;
    expect_invalid_grant(
        h.refresh_as(&second.refresh_token, CLIENT, None, ua("agent/2"))
            .await,
        "refresh from another user agent",
    )?;
    expect_revoked(&h, auth.family, RevocationReason::BindingMismatch).await?;
    expect_inactive(
        &h,
        &second.access_token,
        "access token after a binding revocation",
    )
    .await?;
    expect_invalid_grant(
        h.refresh(&second.refresh_token).await,
        "refresh without a user agent",
    )?;
    let events = h.events();
    ensure!(
        events.iter().any(|e| matches!(
            e,
            SecurityEvent::BindingMismatch { action: BindingAction::RevokeFamily, mismatch, .. }
                if mismatch.user_agent && !mismatch.ip_prefix
        )),
        "no binding event: {events:?}"
    );
    Ok(())
}

/// Invariant 9: user-agent and IP-prefix binding with the reject action: the same /24 passes,
/// another network is refused without revoking anything.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_9_binding_ip_prefix_rejects(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::with_policy(
        store,
        binding(BindingMode::UserAgentAndIpPrefix, BindingAction::Reject),
    )?;
    let auth = h.issue(USER, CLIENT).await?;
    let first = h
        .exchange_as(&auth, CLIENT, ua_ip("agent", "203.0.113.7")?)
        .await?;
    let second = h
        .refresh_as(
            &first.refresh_token,
            CLIENT,
            None,
            ua_ip("agent", "203.0.113.99")?,
        )
        .await?;
    expect_invalid_grant(
        h.refresh_as(
            &second.refresh_token,
            CLIENT,
            None,
            ua_ip("agent", "198.51.100.7")?,
        )
        .await,
        "refresh from another network",
    )?;
    expect_not_revoked(&h, auth.family).await?;
    expect_active(&h, &second.refresh_token, "token after a rejected request").await?;
    h.refresh_as(
        &second.refresh_token,
        CLIENT,
        None,
        ua_ip("agent", "203.0.113.1")?,
    )
    .await?;
    let events = h.events();
    ensure!(
        events.iter().any(|e| matches!(
            e,
            SecurityEvent::BindingMismatch { action: BindingAction::Reject, mismatch, .. }
                if mismatch.ip_prefix && !mismatch.user_agent
        )),
        "no binding event: {events:?}"
    );
    Ok(())
}

/// Invariant 9: the report action rotates as usual and emits an event.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_9_binding_report_only(store: Arc<dyn GrantStore>) -> Result<(), Failure> {
    let h = Harness::with_policy(
        store,
        binding(BindingMode::UserAgent, BindingAction::Report),
    )?;
    let auth = h.issue(USER, CLIENT).await?;
    let first = h.exchange_as(&auth, CLIENT, ua("agent/1")).await?;
    let second = h
        .refresh_as(&first.refresh_token, CLIENT, None, ua("agent/2"))
        .await?;
    expect_active(
        &h,
        &second.refresh_token,
        "token rotated despite a reported mismatch",
    )
    .await?;
    expect_not_revoked(&h, auth.family).await?;
    let events = h.events();
    ensure!(
        events.iter().any(|e| matches!(
            e,
            SecurityEvent::BindingMismatch {
                action: BindingAction::Report,
                ..
            }
        )),
        "no binding event: {events:?}"
    );
    Ok(())
}

/// Invariant 9: with binding off, a changed user agent and network are not compared.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_9_binding_off_ignores_changes(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let auth = h.issue(USER, CLIENT).await?;
    let first = h
        .exchange_as(&auth, CLIENT, ua_ip("agent/1", "203.0.113.7")?)
        .await?;
    h.refresh_as(
        &first.refresh_token,
        CLIENT,
        None,
        ua_ip("agent/2", "198.51.100.7")?,
    )
    .await?;
    ensure!(
        h.events().is_empty(),
        "events with binding off: {:?}",
        h.events()
    );
    Ok(())
}

/// Invariant 9 inside the grace window: the previous token presented again from another user
/// agent is still a binding mismatch.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn invariant_9_binding_checked_on_grace_reissue(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let p = policy(
        binding(BindingMode::UserAgent, BindingAction::RevokeFamily)
            .with_grace_window(Duration::from_secs(30)),
    )?;
    let h = Harness::with_policy(store, p)?;
    let auth = h.issue(USER, CLIENT).await?;
    let first = h.exchange_as(&auth, CLIENT, ua("agent/1")).await?;
    h.refresh_as(&first.refresh_token, CLIENT, None, ua("agent/1"))
        .await?;
    expect_invalid_grant(
        h.refresh_as(&first.refresh_token, CLIENT, None, ua("agent/2"))
            .await,
        "grace reissue from another user agent",
    )?;
    expect_revoked(&h, auth.family, RevocationReason::BindingMismatch).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// STANDARDS

/// STANDARDS `6749-4.1.3-a`: a code redeemed by another client, or with a missing or different
/// `redirect_uri`, is `invalid_grant`; none of these consumes the code.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn std_6749_4_1_3_a_code_client_and_redirect_uri(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let auth = h.issue(USER, CLIENT).await?;
    expect_invalid_grant(
        h.exchange_as(&auth, OTHER_CLIENT, BindingContext::default())
            .await,
        "another client",
    )?;
    for (uri, what) in [
        (None, "missing redirect_uri"),
        (Some(""), "empty redirect_uri"),
        (
            Some("https://client.example/callback/"),
            "different redirect_uri",
        ),
        (
            Some("HTTPS://client.example/callback"),
            "differently cased redirect_uri",
        ),
    ] {
        let r = h
            .service()
            .exchange_code(CodeExchange {
                code: auth.code.expose_secret(),
                client_id: CLIENT,
                redirect_uri: uri,
                code_verifier: Some(auth.verifier.expose_secret()),
                binding: BindingContext::default(),
            })
            .await;
        expect_invalid_grant(r, what)?;
    }
    h.exchange(&auth).await?;
    expect_not_revoked(&h, auth.family).await?;
    Ok(())
}

/// STANDARDS `21-7.5.2-a`: a replay of a used code with a bad verifier or by another client is
/// denied and revokes nothing; a valid replay revokes.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn std_21_7_5_2_a_bad_replay_revokes_nothing(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let (auth, pair) = h.grant(USER, CLIENT).await?;
    let wrong = CodeVerifier::generate().map_err(|e| Failure::new(e.to_string()))?;
    let r = h
        .service()
        .exchange_code(CodeExchange {
            code: auth.code.expose_secret(),
            client_id: CLIENT,
            redirect_uri: Some(REDIRECT_URI),
            code_verifier: Some(wrong.expose_secret()),
            binding: BindingContext::default(),
        })
        .await;
    expect_invalid_grant(r, "replay with a wrong verifier")?;
    expect_invalid_grant(
        h.exchange_as(&auth, OTHER_CLIENT, BindingContext::default())
            .await,
        "replay by another client",
    )?;
    expect_not_revoked(&h, auth.family).await?;
    expect_active(&h, &pair.access_token, "access token after bad replays").await?;
    expect_active(&h, &pair.refresh_token, "refresh token after bad replays").await?;
    ensure!(
        h.events().is_empty(),
        "bad replays emitted {:?}",
        h.events()
    );
    expect_invalid_grant(h.exchange(&auth).await, "valid replay")?;
    expect_revoked(&h, auth.family, RevocationReason::CodeReplay).await?;
    Ok(())
}

/// STANDARDS `7636-4.6-a` and `9700-2.1.1-a`: a mismatched, malformed or missing verifier is
/// `invalid_grant`, and the code stays bound to its challenge: after any number of failures,
/// only the right verifier redeems it.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn std_7636_4_6_a_pkce_failure_keeps_the_code_bound(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let auth = h.issue(USER, CLIENT).await?;
    let wrong = CodeVerifier::generate().map_err(|e| Failure::new(e.to_string()))?;
    let challenge = auth.verifier.challenge();
    for (verifier, what) in [
        (Some(wrong.expose_secret()), "mismatched verifier"),
        (Some("too-short"), "malformed verifier"),
        (None, "missing verifier"),
        (Some(""), "empty verifier"),
        (Some(challenge.as_str()), "the challenge as verifier"),
        (None, "missing verifier after failures"),
    ] {
        let r = h
            .service()
            .exchange_code(CodeExchange {
                code: auth.code.expose_secret(),
                client_id: CLIENT,
                redirect_uri: Some(REDIRECT_URI),
                code_verifier: verifier,
                binding: BindingContext::default(),
            })
            .await;
        expect_invalid_grant(r, what)?;
    }
    h.exchange(&auth).await?;
    Ok(())
}

/// STANDARDS `9700-4.8.2-a`: a verifier for a code issued without a challenge is refused
/// (`invalid_request`), and that does not consume the code.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn std_9700_4_8_2_a_verifier_without_challenge_refused(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::with_policy(store, RotationPolicy::default().with_pkce_required(false))?;
    let issued = h
        .service()
        .issue_code(crate::CodeRequest {
            client_id: CLIENT.to_owned(),
            redirect_uri: REDIRECT_URI.to_owned(),
            challenge: None,
            scope: crate::Scope::parse(SCOPE).map_err(|e| Failure::new(e.to_string()))?,
            resources: vec![],
            user_id: USER.to_owned(),
            session_expires_at: None,
        })
        .await?;
    let verifier = CodeVerifier::generate().map_err(|e| Failure::new(e.to_string()))?;
    let exchange = |v: Option<&'static str>| CodeExchange {
        code: issued.code.expose_secret(),
        client_id: CLIENT,
        redirect_uri: Some(REDIRECT_URI),
        code_verifier: v,
        binding: BindingContext::default(),
    };
    let r = h
        .service()
        .exchange_code(CodeExchange {
            code_verifier: Some(verifier.expose_secret()),
            ..exchange(None)
        })
        .await;
    expect_err(r, ErrorCode::InvalidRequest, "verifier without a challenge")?;
    h.service().exchange_code(exchange(None)).await?;
    // A required-PKCE policy refuses to issue such a code at all.
    let strict = h.with_other_policy(RotationPolicy::default());
    let r = strict
        .service()
        .issue_code(crate::CodeRequest {
            client_id: CLIENT.to_owned(),
            redirect_uri: REDIRECT_URI.to_owned(),
            challenge: None,
            scope: crate::Scope::empty(),
            resources: vec![],
            user_id: USER.to_owned(),
            session_expires_at: None,
        })
        .await;
    expect_err(r, ErrorCode::InvalidRequest, "code without a challenge")?;
    Ok(())
}

/// STANDARDS `6749-6-a` (and the scope part of `9700-4.14.2-a`): another client's refresh token
/// is `invalid_grant`, a wider scope `invalid_scope`, neither consumes the token; a narrower
/// scope narrows only the access token, and the new refresh token keeps the granted scope.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn std_6749_6_a_refresh_client_and_scope(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let (_, first) = h.grant(USER, CLIENT).await?;
    expect_invalid_grant(
        h.refresh_as(
            &first.refresh_token,
            OTHER_CLIENT,
            None,
            BindingContext::default(),
        )
        .await,
        "another client's refresh token",
    )?;
    expect_err(
        h.refresh_as(
            &first.refresh_token,
            CLIENT,
            Some("read write admin"),
            BindingContext::default(),
        )
        .await,
        ErrorCode::InvalidScope,
        "wider scope",
    )?;
    let narrow = h
        .refresh_as(
            &first.refresh_token,
            CLIENT,
            Some("read"),
            BindingContext::default(),
        )
        .await?;
    ensure!(
        narrow.scope.as_str() == "read",
        "access scope {}",
        narrow.scope
    );
    let access = h
        .service()
        .introspect(narrow.access_token.expose_secret())
        .await?;
    ensure!(
        matches!(&access, Introspection::Active(t) if t.scope.as_str() == "read"),
        "narrowed access token introspects as {access:?}"
    );
    let refresh = h
        .service()
        .introspect(narrow.refresh_token.expose_secret())
        .await?;
    ensure!(
        matches!(&refresh, Introspection::Active(t) if t.scope.as_str() == "read write"),
        "the new refresh token does not keep the granted scope: {refresh:?}"
    );
    let full = h.refresh(&narrow.refresh_token).await?;
    ensure!(
        full.scope.as_str() == "read write",
        "scope after narrowing {}",
        full.scope
    );
    Ok(())
}

/// STANDARDS `6749-10.10-a`: codes and tokens carry 256 bits from the CSPRNG (the opaque token
/// format), and are all distinct.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn std_6749_10_10_a_tokens_carry_256_random_bits(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let auth = h.issue(USER, CLIENT).await?;
        let pair = h.exchange(&auth).await?;
        for (prefix, token) in [
            (TokenPrefix::CODE, &auth.code),
            (TokenPrefix::REFRESH, &pair.refresh_token),
            (TokenPrefix::ACCESS, &pair.access_token),
        ] {
            ensure!(
                OpaqueToken::parse(prefix, token.expose_secret()).is_ok(),
                "a token is not in the 256-bit opaque format"
            );
            ensure!(
                seen.insert(token.expose_secret().to_owned()),
                "a token was issued twice"
            );
        }
    }
    ensure!(
        portcullis_hash::BODY_BYTES * 8 >= 256,
        "token body below 256 bits"
    );
    Ok(())
}

/// STANDARDS `9700-4.14.2-a`: a tampered refresh token is `invalid_grant` (rejected before any
/// store access) and the real one still works.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn std_9700_4_14_2_a_tampered_refresh_token_refused(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let (_, first) = h.grant(USER, CLIENT).await?;
    let real = first.refresh_token.expose_secret();
    let mut chars: Vec<char> = real.chars().collect();
    if let Some(c) = chars.get_mut(10) {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    let tampered = SecretString::from(chars.into_iter().collect::<String>());
    expect_invalid_grant(h.refresh(&tampered).await, "tampered refresh token")?;
    let truncated = SecretString::from(real.get(..real.len() - 1).unwrap_or_default());
    expect_invalid_grant(h.refresh(&truncated).await, "truncated refresh token")?;
    let access_as_refresh = h.refresh(&first.access_token).await;
    expect_invalid_grant(access_as_refresh, "an access token as refresh token")?;
    h.refresh(&first.refresh_token).await?;
    Ok(())
}

/// STANDARDS `21-4.3.1-a`: refresh tokens are one-time-use, must match the client, and the
/// grant must be active.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn std_21_4_3_1_a_refresh_one_time_and_client_bound(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let (auth, first) = h.grant(USER, CLIENT).await?;
    expect_invalid_grant(
        h.refresh_as(
            &first.refresh_token,
            OTHER_CLIENT,
            None,
            BindingContext::default(),
        )
        .await,
        "another client",
    )?;
    let second = h.refresh(&first.refresh_token).await?;
    expect_invalid_grant(h.refresh(&first.refresh_token).await, "second use")?;
    let (auth2, third) = h.grant(USER, CLIENT).await?;
    h.service().revoke_family(auth2.family).await?;
    expect_invalid_grant(h.refresh(&third.refresh_token).await, "revoked grant")?;
    expect_inactive(&h, &second.refresh_token, "after replay").await?;
    expect_revoked(&h, auth.family, RevocationReason::RefreshReplay).await?;
    Ok(())
}

/// STANDARDS `7009-2.1-a`: a wrong `token_type_hint` still finds the token.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn std_7009_2_1_a_wrong_hint_still_revokes(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let (auth, pair) = h.grant(USER, CLIENT).await?;
    let r = h
        .service()
        .revoke_token(
            pair.access_token.expose_secret(),
            Some("refresh_token"),
            CLIENT,
        )
        .await?;
    ensure!(
        matches!(
            r,
            RevokeResult::Revoked {
                family_revoked: false,
                ..
            }
        ),
        "revoking an access token hinted as refresh token: {r:?}"
    );
    expect_inactive(&h, &pair.access_token, "revoked access token").await?;
    expect_active(
        &h,
        &pair.refresh_token,
        "its refresh token (only the access token was revoked)",
    )
    .await?;
    let r = h
        .service()
        .revoke_token(
            pair.refresh_token.expose_secret(),
            Some("access_token"),
            CLIENT,
        )
        .await?;
    ensure!(
        matches!(
            r,
            RevokeResult::Revoked {
                family_revoked: true,
                ..
            }
        ),
        "revoking a refresh token hinted as access token: {r:?}"
    );
    expect_revoked(&h, auth.family, RevocationReason::TokenRevoked).await?;
    Ok(())
}

/// STANDARDS `7009-2.1-b`: revoking a refresh token makes the grant's access tokens inactive.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn std_7009_2_1_b_refresh_revocation_revokes_access_tokens(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let (_, first) = h.grant(USER, CLIENT).await?;
    let second = h.refresh(&first.refresh_token).await?;
    h.service()
        .revoke_token(second.refresh_token.expose_secret(), None, CLIENT)
        .await?;
    expect_inactive(&h, &first.access_token, "first access token").await?;
    expect_inactive(&h, &second.access_token, "second access token").await?;
    expect_inactive(&h, &second.refresh_token, "revoked refresh token").await?;
    let events = h.events();
    ensure!(
        events.iter().any(|e| matches!(
            e,
            SecurityEvent::FamilyRevoked {
                reason: RevocationReason::TokenRevoked,
                ..
            }
        )),
        "no revocation event: {events:?}"
    );
    Ok(())
}

/// STANDARDS `7009-2.2-a`: unknown, malformed and already-revoked tokens, and bad hints, are
/// not an error.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn std_7009_2_2_a_unknown_tokens_are_not_an_error(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let unknown =
        OpaqueToken::mint(TokenPrefix::REFRESH).map_err(|e| Failure::new(e.to_string()))?;
    let (_, pair) = h.grant(USER, CLIENT).await?;
    h.service()
        .revoke_token(pair.refresh_token.expose_secret(), None, CLIENT)
        .await?;
    for (token, hint) in [
        ("not a token", None),
        ("", Some("refresh_token")),
        (unknown.expose_secret(), Some("bogus_hint")),
        (pair.refresh_token.expose_secret(), None),
        (pair.access_token.expose_secret(), Some("access_token")),
    ] {
        let r = h.service().revoke_token(token, hint, CLIENT).await;
        ensure!(
            matches!(r, Ok(RevokeResult::NothingToRevoke)),
            "revoking an unknown or inactive token: {r:?}"
        );
    }
    Ok(())
}

/// STANDARDS `7009-2.1-c`: a client cannot revoke another client's token; nothing changes.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn std_7009_2_1_c_other_clients_token_refused(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let (auth, pair) = h.grant(USER, CLIENT).await?;
    for token in [&pair.refresh_token, &pair.access_token] {
        let r = h
            .service()
            .revoke_token(token.expose_secret(), None, OTHER_CLIENT)
            .await;
        expect_err(r, ErrorCode::UnauthorizedClient, "another client's token")?;
        expect_active(&h, token, "token after a refused revocation").await?;
    }
    expect_not_revoked(&h, auth.family).await?;
    Ok(())
}

/// STANDARDS `7662-2.2-a`: every invalid token — malformed, unknown, a code, used, expired,
/// revoked — introspects as inactive, with no metadata.
///
/// # Errors
/// The first expectation that does not hold.
pub async fn std_7662_2_2_a_invalid_tokens_are_inactive(
    store: Arc<dyn GrantStore>,
) -> Result<(), Failure> {
    let h = Harness::new(store)?;
    let unknown =
        OpaqueToken::mint(TokenPrefix::ACCESS).map_err(|e| Failure::new(e.to_string()))?;
    let (auth, first) = h.grant(USER, CLIENT).await?;
    let second = h.refresh(&first.refresh_token).await?;
    let (_, third) = h.grant(USER, CLIENT).await?;
    h.service()
        .revoke_token(third.access_token.expose_secret(), None, CLIENT)
        .await?;
    let active = h
        .service()
        .introspect(second.access_token.expose_secret())
        .await?;
    ensure!(
        matches!(&active, Introspection::Active(t)
            if t.client_id == CLIENT && t.user_id == USER && t.family == auth.family
                && t.kind == TokenKind::AccessToken && t.resources == ["https://api.example/"]),
        "an active token's metadata: {active:?}"
    );
    for (token, what) in [
        ("garbage", "malformed"),
        (unknown.expose_secret(), "unknown"),
        (auth.code.expose_secret(), "a code"),
        (first.refresh_token.expose_secret(), "a used refresh token"),
        (third.access_token.expose_secret(), "a revoked access token"),
    ] {
        let r = h.service().introspect(token).await?;
        ensure!(r == Introspection::Inactive, "{what}: {r:?}");
    }
    h.clock().advance(h.service().policy().access_lifetime());
    let r = h
        .service()
        .introspect(second.access_token.expose_secret())
        .await?;
    ensure!(
        r == Introspection::Inactive,
        "an expired access token: {r:?}"
    );
    Ok(())
}

/// Random operation sequences (issue, exchange, refresh, replay, revoke, logout, advance the
/// clock, purge) checked step by step against the reference [`model`], with and without a
/// grace window.
///
/// # Errors
/// The first divergence from the model.
pub async fn model_random_operation_sequences(store: Arc<dyn GrantStore>) -> Result<(), Failure> {
    let mut total = model::ModelStats::default();
    for seed in 1..=12u64 {
        let config = model::ModelConfig {
            grace_window: if seed % 2 == 0 {
                Duration::from_secs(120)
            } else {
                Duration::ZERO
            },
            namespace: format!("seq{seed}-"),
        };
        let ops = model::generate(seed, 120);
        let stats = model::run(Arc::clone(&store), &config, &ops)
            .await
            .map_err(|f| Failure::new(format!("seed {seed}: {f}")))?;
        total.rotated += stats.rotated;
        total.replays += stats.replays;
        total.grace_reissued += stats.grace_reissued;
    }
    // The fixed sequences do reach the interesting paths.
    ensure!(
        total.rotated > 0 && total.replays > 0 && total.grace_reissued > 0,
        "the model sequences did not exercise rotation, replay and grace: {total:?}"
    );
    Ok(())
}
