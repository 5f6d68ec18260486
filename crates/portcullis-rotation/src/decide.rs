//! The rules of a redemption, as pure functions of the stored records and the request.
//!
//! A store finds the records, calls (or mirrors) these functions, and applies the decision in
//! the same atomic step. The memory store calls them as they are; a Redis script or an SQL
//! statement implements the same rules, and the conformance suite checks that it does.
//!
//! # The order of the checks
//!
//! Every check that refuses without changing anything comes first; only a request that passes
//! all of them can trigger a revocation. So a replay with the wrong client, redirect URI or
//! PKCE verifier revokes nothing and leaves the code bound to its challenge (STANDARDS
//! `21-7.5.2-a`), while a replay that passes them all revokes the family (`6749-4.1.2-b`).
//!
//! Expiry is checked before use. A store that drops records at their expiry (a Redis TTL, a
//! purge) then answers exactly as one that keeps them: an expired credential is refused, used
//! or not, and never revokes anything.
//!
//! Code: kind, family revoked, expired (code or family), client, redirect URI, PKCE, **used →
//! replay: revoke the family**, redeem.
//!
//! Refresh: kind, family revoked, expired (token or family), client, scope, **superseded →
//! replay**, **used → grace reissue if allowed, else replay**, binding (per its action),
//! rotate.

use std::time::Duration;

use portcullis_core::UnixTime;
use portcullis_hash::TokenHash;
use portcullis_pkce::{ChallengeMethod, CodeChallenge, PkceError};
use subtle::{Choice, ConstantTimeEq as _};

use crate::store::{BindingMismatch, BindingProof, CodeRedemption, RefreshRotation, Rejection};
use crate::{
    Binding, BindingAction, BindingMode, BindingPolicy, Credential, Family, Lifetimes,
    MAX_GRACE_WINDOW, TokenKind, VerifierProof,
};

/// The PKCE check at the token endpoint, on what the service derived from the presented
/// verifier. The same table as [`portcullis_pkce::verify_token_request`]:
///
/// | stored challenge | verifier | result |
/// |---|---|---|
/// | some | matches | `Ok(())` |
/// | some | absent | [`PkceError::MissingVerifier`] |
/// | some | malformed | [`PkceError::MalformedVerifier`] |
/// | some | does not match | [`PkceError::VerifierMismatch`] |
/// | none | present (even malformed) | [`PkceError::UnexpectedVerifier`] |
/// | none | absent | `Ok(())` |
///
/// Comparisons are constant-time.
///
/// # Errors
/// As in the table.
pub fn pkce(stored: Option<&CodeChallenge>, proof: &VerifierProof) -> Result<(), PkceError> {
    match (stored, proof) {
        (None, VerifierProof::Absent) => Ok(()),
        (None, _) => Err(PkceError::UnexpectedVerifier),
        (Some(_), VerifierProof::Absent) => Err(PkceError::MissingVerifier),
        (Some(_), VerifierProof::Malformed) => Err(PkceError::MalformedVerifier),
        (Some(challenge), VerifierProof::Present { s256, plain }) => {
            let matches: bool = match challenge.method() {
                // portcullis-pkce's constant-time challenge equality.
                ChallengeMethod::S256 => s256 == challenge,
                ChallengeMethod::Plain => plain.as_ref().is_some_and(|p| {
                    p.expose_secret()
                        .as_bytes()
                        .ct_eq(challenge.as_str().as_bytes())
                        .into()
                }),
                // A method this crate does not know cannot be verified: fail closed.
                _ => false,
            };
            if matches {
                Ok(())
            } else {
                Err(PkceError::VerifierMismatch)
            }
        }
    }
}

/// Whether a stored binding hash is among the presented candidates (constant-time). A value
/// the exchange did not record is not compared.
fn binding_matches(stored: Option<TokenHash>, presented: &[TokenHash]) -> bool {
    match stored {
        None => true,
        Some(s) => presented
            .iter()
            .fold(Choice::from(0), |found, p| found | p.ct_eq(&s))
            .into(),
    }
}

/// The binding check (DESIGN.md invariant 9): which of the values the policy compares differ
/// from those recorded at the code exchange. `None` when everything compared matches (or the
/// mode is [`BindingMode::Off`]).
///
/// A value recorded at the exchange must be presented again and match; a value the exchange
/// did not record is not compared. A device id is compared whenever the mode is not `Off`.
#[must_use]
pub fn binding(
    policy: &BindingPolicy,
    stored: &Binding,
    presented: &BindingProof,
) -> Option<BindingMismatch> {
    let (ua, ip) = match policy.mode() {
        BindingMode::UserAgent => (true, false),
        BindingMode::UserAgentAndIpPrefix => (true, true),
        // Off, and any mode this version does not know, compares nothing.
        _ => return None,
    };
    let mismatch = BindingMismatch {
        user_agent: ua && !binding_matches(stored.user_agent, &presented.user_agent),
        ip_prefix: ip && !binding_matches(stored.ip_prefix, &presented.ip_prefix),
        device_id: !binding_matches(stored.device_id, &presented.device_id),
    };
    (mismatch.user_agent || mismatch.ip_prefix || mismatch.device_id).then_some(mismatch)
}

/// When a refresh token issued at `now` expires: after the idle lifetime, never after the
/// family.
#[must_use]
pub fn refresh_expiry(family: &Family, lifetimes: &Lifetimes, now: UnixTime) -> UnixTime {
    now.saturating_add(lifetimes.refresh_idle)
        .min(family.expires_at)
}

/// When an access token issued at `now` expires: after its lifetime, never after the family
/// (whose expiry is never after the upstream session's).
#[must_use]
pub fn access_expiry(family: &Family, lifetimes: &Lifetimes, now: UnixTime) -> UnixTime {
    now.saturating_add(lifetimes.access).min(family.expires_at)
}

/// What a store does with a code redemption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeDecision {
    /// Refuse; change nothing.
    Reject(Rejection),
    /// A valid replay of a used code: revoke the family
    /// ([`RevocationReason::CodeReplay`](crate::RevocationReason::CodeReplay)).
    Replay,
    /// Mark the code used, record the binding, store the first refresh token and access token.
    Redeem,
}

/// Decide a code redemption (see the module docs for the order).
#[must_use]
pub fn code(family: &Family, code: &Credential, req: &CodeRedemption<'_>) -> CodeDecision {
    let now = req.now;
    if code.kind != TokenKind::AuthorizationCode || code.family != family.id {
        return CodeDecision::Reject(Rejection::NotFound);
    }
    if family.revoked.is_some() {
        return CodeDecision::Reject(Rejection::Revoked);
    }
    if now >= code.expires_at || now >= family.expires_at {
        return CodeDecision::Reject(Rejection::Expired);
    }
    if family.client_id != req.client_id {
        return CodeDecision::Reject(Rejection::WrongClient);
    }
    let Some(terms) = &code.code_terms else {
        // A code stored without its terms cannot be checked: fail closed.
        return CodeDecision::Reject(Rejection::RedirectUriMismatch);
    };
    if req.redirect_uri != Some(terms.redirect_uri.as_str()) {
        return CodeDecision::Reject(Rejection::RedirectUriMismatch);
    }
    if let Err(e) = pkce(terms.challenge.as_ref(), req.verifier) {
        return CodeDecision::Reject(Rejection::Pkce(e));
    }
    if code.used_at.is_some() {
        return CodeDecision::Replay;
    }
    CodeDecision::Redeem
}

/// What a store does with a refresh rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshDecision {
    /// Refuse; change nothing.
    Reject(Rejection),
    /// A used or superseded token outside the grace window: revoke the family
    /// ([`RevocationReason::RefreshReplay`](crate::RevocationReason::RefreshReplay)).
    Replay,
    /// The binding does not match: refuse, and revoke the family
    /// ([`RevocationReason::BindingMismatch`](crate::RevocationReason::BindingMismatch)) if
    /// `revoke`.
    Binding {
        /// What differs.
        mismatch: BindingMismatch,
        /// Whether to revoke the family.
        revoke: bool,
    },
    /// Mark the token used, store its successor and an access token.
    Rotate {
        /// A mismatch let through by [`BindingAction::Report`].
        reported: Option<BindingMismatch>,
    },
    /// Revoke the token's earlier successor `supersede`, store a fresh successor (the token's
    /// new `successor`) and an access token.
    GraceReissue {
        /// The earlier successor to revoke.
        supersede: TokenHash,
        /// A mismatch let through by [`BindingAction::Report`].
        reported: Option<BindingMismatch>,
    },
}

/// Decide a refresh rotation (see the module docs for the order). `successor` is the record
/// `token.successor` names, if the token has been used and the record is still stored.
///
/// The grace window (capped at [`MAX_GRACE_WINDOW`]) applies only to the immediately previous
/// token: one whose successor is still live (unused, not superseded, not expired), presented
/// less than the window after its first use.
#[must_use]
pub fn refresh(
    family: &Family,
    token: &Credential,
    successor: Option<&Credential>,
    req: &RefreshRotation<'_>,
) -> RefreshDecision {
    let now = req.now;
    if token.kind != TokenKind::RefreshToken || token.family != family.id {
        return RefreshDecision::Reject(Rejection::NotFound);
    }
    if family.revoked.is_some() {
        return RefreshDecision::Reject(Rejection::Revoked);
    }
    if now >= token.expires_at || now >= family.expires_at {
        return RefreshDecision::Reject(Rejection::Expired);
    }
    if family.client_id != req.client_id {
        return RefreshDecision::Reject(Rejection::WrongClient);
    }
    if let Some(scope) = req.scope
        && !scope.is_subset_of(&family.scope)
    {
        return RefreshDecision::Reject(Rejection::ScopeWidened);
    }
    if token.revoked_at.is_some() {
        // Superseded by a grace reissue: whoever holds it lost the race or stole it.
        return RefreshDecision::Replay;
    }
    let grace_for = if let Some(used_at) = token.used_at {
        let grace = req.grace_window.min(MAX_GRACE_WINDOW);
        let in_window = grace > Duration::ZERO && now < used_at.saturating_add(grace);
        match successor {
            Some(s)
                if in_window
                    && Some(s.hash) == token.successor
                    && s.family == family.id
                    && s.is_live_refresh(now) =>
            {
                Some(s.hash)
            }
            _ => return RefreshDecision::Replay,
        }
    } else {
        None
    };
    let reported = match binding(&req.binding_policy, &family.binding, req.binding) {
        None => None,
        Some(mismatch) => match req.binding_policy.action() {
            BindingAction::Report => Some(mismatch),
            BindingAction::Reject => {
                return RefreshDecision::Binding {
                    mismatch,
                    revoke: false,
                };
            }
            // RevokeFamily, and any action this version does not know: the strictest.
            _ => {
                return RefreshDecision::Binding {
                    mismatch,
                    revoke: true,
                };
            }
        },
    };
    match grace_for {
        Some(supersede) => RefreshDecision::GraceReissue {
            supersede,
            reported,
        },
        None => RefreshDecision::Rotate { reported },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BindingPolicy, FamilyId, Scope};
    use portcullis_core::SecretString;
    use portcullis_pkce::{CodeVerifier, verify_token_request};
    use proptest::prelude::*;

    fn proof(verifier: Option<&str>, allow_plain: bool) -> VerifierProof {
        match verifier.filter(|v| !v.is_empty()) {
            None => VerifierProof::Absent,
            Some(v) => match CodeVerifier::new(v.to_owned()) {
                Err(_) => VerifierProof::Malformed,
                Ok(cv) => VerifierProof::Present {
                    s256: cv.challenge(),
                    plain: allow_plain.then(|| SecretString::from(cv.expose_secret())),
                },
            },
        }
    }

    const B_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const B_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    // covers 7636-4.6-a, 9700-2.1.1-a, 9700-4.8.2-a (the store-side table)
    #[test]
    fn pkce_table() {
        let s256 = CodeChallenge::new(B_CHALLENGE, ChallengeMethod::S256).unwrap();
        let plain = CodeChallenge::new(B_VERIFIER, ChallengeMethod::Plain).unwrap();
        assert_eq!(pkce(Some(&s256), &proof(Some(B_VERIFIER), false)), Ok(()));
        assert_eq!(
            pkce(Some(&s256), &proof(None, false)),
            Err(PkceError::MissingVerifier)
        );
        assert_eq!(
            pkce(Some(&s256), &proof(Some("short"), false)),
            Err(PkceError::MalformedVerifier)
        );
        assert_eq!(
            pkce(Some(&s256), &proof(Some(&"a".repeat(43)), false)),
            Err(PkceError::VerifierMismatch)
        );
        assert_eq!(
            pkce(None, &proof(Some(B_VERIFIER), false)),
            Err(PkceError::UnexpectedVerifier)
        );
        assert_eq!(
            pkce(None, &proof(Some("x"), false)),
            Err(PkceError::UnexpectedVerifier)
        );
        assert_eq!(pkce(None, &proof(Some(""), false)), Ok(()));
        // plain only when the service passed the plain form
        assert_eq!(pkce(Some(&plain), &proof(Some(B_VERIFIER), true)), Ok(()));
        assert_eq!(
            pkce(Some(&plain), &proof(Some(B_VERIFIER), false)),
            Err(PkceError::VerifierMismatch)
        );
        // the challenge itself is no verifier under S256
        assert_eq!(
            pkce(Some(&s256), &proof(Some(B_CHALLENGE), false)),
            Err(PkceError::VerifierMismatch)
        );
    }

    proptest! {
        // The store-side check agrees with portcullis-pkce's own token-endpoint check.
        #[test]
        fn pkce_agrees_with_portcullis_pkce(
            verifier in proptest::option::of("[A-Za-z0-9._~-]{0,130}|[ -~]{0,50}"),
            stored_from in proptest::option::of(("[A-Za-z0-9._~-]{43,60}", any::<bool>())),
        ) {
            let stored = stored_from.and_then(|(v, s256)| {
                if s256 {
                    CodeVerifier::new(v).ok().map(|cv| cv.challenge())
                } else {
                    CodeChallenge::new(v, ChallengeMethod::Plain).ok()
                }
            });
            let expected = verify_token_request(stored.as_ref(), verifier.as_deref());
            prop_assert_eq!(pkce(stored.as_ref(), &proof(verifier.as_deref(), true)), expected);
            // and with a matching verifier it passes
            if let Some(c) = &stored && c.method() == ChallengeMethod::Plain {
                prop_assert_eq!(pkce(Some(c), &proof(Some(c.as_str()), true)), Ok(()));
            }
        }
    }

    fn h(b: u8) -> TokenHash {
        TokenHash::from_bytes([b; 32])
    }

    #[test]
    fn binding_modes() {
        let stored = Binding {
            user_agent: Some(h(1)),
            ip_prefix: Some(h(2)),
            device_id: None,
        };
        let same = BindingProof {
            user_agent: vec![h(9), h(1)],
            ip_prefix: vec![h(2)],
            device_id: vec![],
        };
        let other_ip = BindingProof {
            ip_prefix: vec![h(3)],
            ..same.clone()
        };
        let ua = BindingPolicy::new(BindingMode::UserAgent, BindingAction::Reject);
        let both = BindingPolicy::new(BindingMode::UserAgentAndIpPrefix, BindingAction::Reject);
        let off = BindingPolicy::default();
        assert_eq!(binding(&ua, &stored, &same), None);
        assert_eq!(binding(&both, &stored, &same), None);
        assert_eq!(binding(&ua, &stored, &other_ip), None);
        assert_eq!(
            binding(&both, &stored, &other_ip),
            Some(BindingMismatch {
                ip_prefix: true,
                ..BindingMismatch::default()
            })
        );
        assert_eq!(binding(&off, &stored, &BindingProof::default()), None);
        // a recorded value that is not presented again is a mismatch
        assert_eq!(
            binding(&ua, &stored, &BindingProof::default()),
            Some(BindingMismatch {
                user_agent: true,
                ..BindingMismatch::default()
            })
        );
        // device id compared whenever binding is on
        let with_device = Binding {
            device_id: Some(h(5)),
            ..stored
        };
        assert!(binding(&ua, &with_device, &same).is_some_and(|m| m.device_id));
        assert_eq!(binding(&off, &with_device, &same), None);
    }

    fn family(now: UnixTime) -> Family {
        Family {
            id: FamilyId::from_bytes([1; 16]),
            user_id: "u".into(),
            client_id: "c".into(),
            scope: Scope::parse("a b").unwrap(),
            resources: vec![],
            created_at: now,
            expires_at: now.saturating_add(Duration::from_secs(1000)),
            binding: Binding::default(),
            revoked: None,
        }
    }

    fn refresh_token(f: &Family, hash: u8, now: UnixTime) -> Credential {
        Credential {
            hash: h(hash),
            kind: TokenKind::RefreshToken,
            family: f.id,
            generation: 1,
            parent: None,
            issued_at: now,
            expires_at: now.saturating_add(Duration::from_secs(100)),
            used_at: None,
            successor: None,
            revoked_at: None,
            code_terms: None,
        }
    }

    #[test]
    fn refresh_order_and_grace() {
        let t0 = UnixTime::from_secs(1_000);
        let f = family(t0);
        let proof = BindingProof::default();
        let req = |now: UnixTime, grace: u64| RefreshRotation {
            candidates: &[],
            client_id: "c",
            scope: None,
            binding: &proof,
            binding_policy: BindingPolicy::default(),
            grace_window: Duration::from_secs(grace),
            successor: h(50),
            access: h(51),
            lifetimes: Lifetimes {
                refresh_idle: Duration::from_secs(100),
                access: Duration::from_secs(10),
            },
            now,
        };
        let t = refresh_token(&f, 1, t0);
        assert_eq!(
            refresh(&f, &t, None, &req(t0, 0)),
            RefreshDecision::Rotate { reported: None }
        );
        // used, successor live
        let mut used = t.clone();
        used.used_at = Some(t0);
        used.successor = Some(h(2));
        let s = refresh_token(&f, 2, t0);
        assert_eq!(
            refresh(&f, &used, Some(&s), &req(t0, 0)),
            RefreshDecision::Replay
        );
        let t1 = t0.saturating_add(Duration::from_secs(9));
        assert_eq!(
            refresh(&f, &used, Some(&s), &req(t1, 10)),
            RefreshDecision::GraceReissue {
                supersede: h(2),
                reported: None
            }
        );
        // the window's edge: exactly `grace` after first use is outside
        let t2 = t0.saturating_add(Duration::from_secs(10));
        assert_eq!(
            refresh(&f, &used, Some(&s), &req(t2, 10)),
            RefreshDecision::Replay
        );
        // not the immediately previous token: its successor was used
        let mut s_used = s.clone();
        s_used.used_at = Some(t0);
        assert_eq!(
            refresh(&f, &used, Some(&s_used), &req(t1, 10)),
            RefreshDecision::Replay
        );
        // a grace window above the cap is capped
        let late = t0.saturating_add(MAX_GRACE_WINDOW);
        let mut long_lived = s.clone();
        long_lived.expires_at = late.saturating_add(Duration::from_secs(1));
        let mut used_long = used.clone();
        used_long.expires_at = long_lived.expires_at;
        let just_inside = late.saturating_sub(Duration::from_micros(1));
        assert!(matches!(
            refresh(&f, &used_long, Some(&long_lived), &req(just_inside, 3600)),
            RefreshDecision::GraceReissue { .. }
        ));
        assert_eq!(
            refresh(&f, &used_long, Some(&long_lived), &req(late, 3600)),
            RefreshDecision::Replay
        );
        // superseded is a replay
        let mut superseded = t.clone();
        superseded.revoked_at = Some(t0);
        assert_eq!(
            refresh(&f, &superseded, None, &req(t0, 10)),
            RefreshDecision::Replay
        );
        // refusals that change nothing come before replay detection
        let mut wrong = req(t0, 0);
        wrong.client_id = "other";
        assert_eq!(
            refresh(&f, &used, Some(&s), &wrong),
            RefreshDecision::Reject(Rejection::WrongClient)
        );
        let wide = Scope::parse("a b c").unwrap();
        let mut widen = req(t0, 0);
        widen.scope = Some(&wide);
        assert_eq!(
            refresh(&f, &used, Some(&s), &widen),
            RefreshDecision::Reject(Rejection::ScopeWidened)
        );
        let expired_at = t0.saturating_add(Duration::from_secs(100));
        assert_eq!(
            refresh(&f, &used, Some(&s), &req(expired_at, 0)),
            RefreshDecision::Reject(Rejection::Expired)
        );
        let mut revoked = f;
        revoked.revoked = Some(crate::Revocation {
            at: t0,
            reason: crate::RevocationReason::Logout,
        });
        assert_eq!(
            refresh(&revoked, &t, None, &req(t0, 0)),
            RefreshDecision::Reject(Rejection::Revoked)
        );
    }
}
