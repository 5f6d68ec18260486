//! A reference model of grant families, and a driver that runs operation sequences against a
//! real service and store, comparing every answer with the model's and checking the invariants
//! after every step.
//!
//! The model is deliberately naive: vectors of families and tokens, no atomicity, no hashing.
//! Each step predicts the outcome class (success, `invalid_grant`, `invalid_scope`, …), the
//! side effects (used, superseded, family revoked), and after the step every known token must
//! introspect exactly as the model says; no family may ever have two live refresh tokens.
//!
//! The same driver runs from the conformance suite (fixed pseudo-random sequences, see
//! [`generate`]), this crate's property tests (proptest strategies over [`Op`]) and its fuzz
//! target ([`from_bytes`]).

use std::sync::Arc;
use std::time::Duration;

use portcullis_core::{Clock as _, ErrorCode, ManualClock, SecretString, UnixTime};
use portcullis_hash::TokenHasher;
use portcullis_pkce::CodeVerifier;

use super::{Failure, Harness, REDIRECT_URI, START_SECS, TEST_KEY, keyring};
use crate::{
    BindingContext, CodeExchange, CodeRequest, FamilyId, GrantStore, Introspection, RefreshRequest,
    RevokeResult, RotationError, RotationPolicy, Scope, TokenKind,
};

/// Users the operations choose from.
pub const USERS: u8 = 3;
/// Clients the operations choose from.
pub const CLIENTS: u8 = 2;
/// The scope every grant is issued with.
pub const GRANTED_SCOPE: &str = "read write";

/// The model's policy: short lifetimes so that random clock steps cross them.
///
/// # Errors
/// If the grace window is above the maximum.
pub fn policy(grace_window: Duration) -> Result<RotationPolicy, Failure> {
    RotationPolicy::default()
        .with_code_lifetime(Duration::from_secs(60))
        .and_then(|p| p.with_access_lifetime(Duration::from_secs(600)))
        .and_then(|p| p.with_refresh_idle_lifetime(Duration::from_secs(3600)))
        .and_then(|p| p.with_family_lifetime(Duration::from_secs(3 * 3600)))
        .and_then(|p| p.with_grace_window(grace_window))
        .map_err(|e| Failure::new(format!("model policy: {e}")))
}

/// How a run is set up.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// The grace window of the policy.
    pub grace_window: Duration,
    /// A prefix for user and client names, so that several runs can share one store.
    pub namespace: String,
}

/// What a refresh request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeChoice {
    /// No `scope` parameter.
    Unchanged,
    /// A subset of the granted scope.
    Narrower,
    /// More than the granted scope.
    Wider,
}

/// One operation. Indices choose among what exists so far, counted back from the most recent
/// (0 is the latest, modulo the count); an operation with nothing to choose from is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Issue a code for a user and client.
    Issue {
        /// Which user.
        user: u8,
        /// Which client.
        client: u8,
    },
    /// Exchange one of the codes issued so far (used or not: a replay).
    Exchange {
        /// Which code.
        code: u8,
        /// As the code's client, or another.
        right_client: bool,
        /// With the code's verifier, or another well-formed one.
        right_verifier: bool,
    },
    /// Refresh with one of the refresh tokens issued so far (used, superseded or not).
    Refresh {
        /// Which token.
        token: u8,
        /// As the token's client, or another.
        right_client: bool,
        /// The scope asked for.
        scope: ScopeChoice,
    },
    /// RFC 7009 revocation of a refresh token.
    RevokeRefresh {
        /// Which token.
        token: u8,
        /// By the token's client, or another.
        right_client: bool,
    },
    /// RFC 7009 revocation of an access token.
    RevokeAccess {
        /// Which token.
        token: u8,
    },
    /// Logout of a user.
    Logout {
        /// Which user.
        user: u8,
    },
    /// Revocation of every family of a client.
    RevokeClient {
        /// Which client.
        client: u8,
    },
    /// Move the clock forward.
    Advance {
        /// By this many seconds.
        secs: u32,
    },
    /// One bounded purge.
    Purge {
        /// At most this many records.
        max: u8,
    },
}

/// Operations from raw bytes, three bytes each (for fuzzing).
#[must_use]
pub fn from_bytes(data: &[u8]) -> Vec<Op> {
    data.chunks_exact(3)
        .filter_map(|chunk| {
            let &[kind, a, b] = chunk else { return None };
            Some(match kind % 9 {
                0 => Op::Issue { user: a, client: b },
                1 => Op::Exchange {
                    code: a,
                    right_client: b & 1 == 0 || b & 2 == 0,
                    right_verifier: b & 4 == 0 || b & 8 == 0,
                },
                2 | 3 => Op::Refresh {
                    token: a,
                    right_client: b & 1 == 0 || b & 2 == 0,
                    scope: match (b >> 2) % 6 {
                        0 => ScopeChoice::Narrower,
                        1 => ScopeChoice::Wider,
                        _ => ScopeChoice::Unchanged,
                    },
                },
                4 => Op::RevokeRefresh {
                    token: a,
                    right_client: b & 1 == 0,
                },
                5 => Op::RevokeAccess { token: a },
                6 if b & 1 == 0 => Op::Logout { user: a },
                6 => Op::RevokeClient { client: a },
                7 => Op::Advance {
                    secs: u32::from(a) * u32::from(b % 32 + 1),
                },
                _ => Op::Purge { max: a },
            })
        })
        .collect()
}

/// A deterministic pseudo-random sequence of `len` operations (xorshift64*).
#[must_use]
pub fn generate(seed: u64, len: usize) -> Vec<Op> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes()
    };
    // Mostly the latest item, sometimes one a little older, rarely any.
    let recent = |r: u8, a: u8| match r % 10 {
        0..=6 => 0,
        7 | 8 => 1 + a % 3,
        _ => a,
    };
    (0..len)
        .map(|_| {
            let [k, a, b, c, d, ..] = next();
            match k % 100 {
                0..=9 => Op::Issue { user: a, client: b },
                10..=23 => Op::Exchange {
                    code: recent(d, a),
                    right_client: b % 8 != 0,
                    right_verifier: c % 8 != 0,
                },
                24..=63 => Op::Refresh {
                    token: recent(d, a),
                    right_client: b % 10 != 0,
                    scope: match c % 10 {
                        0 => ScopeChoice::Narrower,
                        1 => ScopeChoice::Wider,
                        _ => ScopeChoice::Unchanged,
                    },
                },
                64..=66 => Op::RevokeRefresh {
                    token: recent(d, a),
                    right_client: b % 4 != 0,
                },
                67..=69 => Op::RevokeAccess {
                    token: recent(d, a),
                },
                70 => Op::Logout { user: a },
                71 => Op::RevokeClient { client: a },
                72..=91 => Op::Advance {
                    secs: if b % 8 == 0 {
                        u32::from(a) * 16
                    } else {
                        u32::from(a % 90)
                    },
                },
                _ => Op::Purge { max: a % 8 },
            }
        })
        .collect()
}

struct MFamily {
    id: FamilyId,
    user: u8,
    client: u8,
    revoked: bool,
    expires_at: UnixTime,
}

struct MCode {
    family: usize,
    code: SecretString,
    verifier: CodeVerifier,
    expires_at: UnixTime,
    used: bool,
}

struct MRefresh {
    family: usize,
    token: SecretString,
    expires_at: UnixTime,
    used_at: Option<UnixTime>,
    successor: Option<usize>,
    superseded: bool,
}

struct MAccess {
    family: usize,
    token: SecretString,
    expires_at: UnixTime,
    revoked: bool,
    scope: &'static str,
}

#[derive(Default)]
struct Model {
    families: Vec<MFamily>,
    codes: Vec<MCode>,
    refresh: Vec<MRefresh>,
    access: Vec<MAccess>,
}

/// What the model predicts for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Ok,
    Error(ErrorCode),
}

fn class<T>(r: &Result<T, RotationError>) -> Class {
    match r {
        Ok(_) => Class::Ok,
        Err(e) => Class::Error(e.oauth_error().code()),
    }
}

const INVALID_GRANT: Class = Class::Error(ErrorCode::InvalidGrant);

/// Index `back` counted from the most recent of `len` items.
fn pick(back: u8, len: usize) -> Option<usize> {
    (len > 0).then(|| len - 1 - usize::from(back) % len)
}

impl Model {
    fn family_live(&self, f: usize, now: UnixTime) -> bool {
        self.families
            .get(f)
            .is_some_and(|f| !f.revoked && now < f.expires_at)
    }

    fn refresh_live(&self, t: &MRefresh, now: UnixTime) -> bool {
        self.family_live(t.family, now)
            && t.used_at.is_none()
            && !t.superseded
            && now < t.expires_at
    }

    fn access_live(&self, a: &MAccess, now: UnixTime) -> bool {
        self.family_live(a.family, now) && !a.revoked && now < a.expires_at
    }

    fn revoke(&mut self, f: usize) {
        if let Some(f) = self.families.get_mut(f) {
            f.revoked = true;
        }
    }
}

/// What a run did, to show that a sequence exercised the interesting paths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// Operations that were not skipped.
    pub steps: usize,
    /// Codes exchanged.
    pub exchanged: usize,
    /// Refresh tokens rotated (not counting grace reissues).
    pub rotated: usize,
    /// Grace reissues.
    pub grace_reissued: usize,
    /// Replays that revoked a family (codes and refresh tokens).
    pub replays: usize,
    /// Requests refused without any change.
    pub refused: usize,
    /// Families revoked by RFC 7009, logout or client revocation.
    pub revoked: usize,
    /// Records purged.
    pub purged: usize,
}

struct Driver<'a> {
    stats: ModelStats,
    h: Harness,
    config: &'a ModelConfig,
    model: Model,
    idle: Duration,
    access_lifetime: Duration,
    family_lifetime: Duration,
    grace: Duration,
}

fn ensure_class(
    step: &str,
    got: Class,
    expected: Class,
    detail: &dyn std::fmt::Debug,
) -> Result<(), Failure> {
    if got == expected {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "{step}: got {got:?}, model expects {expected:?} ({detail:?})"
        )))
    }
}

impl Driver<'_> {
    fn user(&self, u: u8) -> String {
        format!("{}user{}", self.config.namespace, u % USERS)
    }

    fn client(&self, c: u8) -> String {
        format!("{}client{}", self.config.namespace, c % CLIENTS)
    }

    fn intruder(&self) -> String {
        format!("{}intruder", self.config.namespace)
    }

    fn now(&self) -> UnixTime {
        self.h.clock().now()
    }

    fn record_pair(
        &mut self,
        family: usize,
        refresh: SecretString,
        access: SecretString,
        scope: &'static str,
    ) -> usize {
        let now = self.now();
        let end = self
            .model
            .families
            .get(family)
            .map_or(now, |f| f.expires_at);
        self.model.refresh.push(MRefresh {
            family,
            token: refresh,
            expires_at: now.saturating_add(self.idle).min(end),
            used_at: None,
            successor: None,
            superseded: false,
        });
        self.model.access.push(MAccess {
            family,
            token: access,
            expires_at: now.saturating_add(self.access_lifetime).min(end),
            revoked: false,
            scope,
        });
        self.model.refresh.len() - 1
    }

    async fn step(&mut self, op: Op) -> Result<(), Failure> {
        let now = self.now();
        let service = Arc::clone(self.h.service());
        match op {
            Op::Issue { user, client } => {
                let verifier = CodeVerifier::generate().map_err(|e| Failure::new(e.to_string()))?;
                let issued = service
                    .issue_code(CodeRequest {
                        client_id: self.client(client),
                        redirect_uri: REDIRECT_URI.to_owned(),
                        challenge: Some(verifier.challenge()),
                        scope: Scope::parse(GRANTED_SCOPE)
                            .map_err(|e| Failure::new(e.to_string()))?,
                        resources: vec![],
                        user_id: self.user(user),
                        session_expires_at: None,
                    })
                    .await?;
                let expires_at = now.saturating_add(self.family_lifetime);
                self.model.families.push(MFamily {
                    id: issued.family,
                    user: user % USERS,
                    client: client % CLIENTS,
                    revoked: false,
                    expires_at,
                });
                self.model.codes.push(MCode {
                    family: self.model.families.len() - 1,
                    code: issued.code,
                    verifier,
                    expires_at: issued.expires_at,
                    used: false,
                });
            }
            Op::Exchange {
                code,
                right_client,
                right_verifier,
            } => {
                let Some(ci) = pick(code, self.model.codes.len()) else {
                    return Ok(());
                };
                let Some(c) = self.model.codes.get(ci) else {
                    return Ok(());
                };
                let fi = c.family;
                let fam_client = self.model.families.get(fi).map_or(0, |f| f.client);
                let client = if right_client {
                    self.client(fam_client)
                } else {
                    self.intruder()
                };
                let other = CodeVerifier::generate().map_err(|e| Failure::new(e.to_string()))?;
                let verifier = if right_verifier { &c.verifier } else { &other };
                let r = service
                    .exchange_code(CodeExchange {
                        code: c.code.expose_secret(),
                        client_id: &client,
                        redirect_uri: Some(REDIRECT_URI),
                        code_verifier: Some(verifier.expose_secret()),
                        binding: BindingContext::default(),
                    })
                    .await;
                let refused = !self.model.family_live(fi, now)
                    || now >= c.expires_at
                    || !right_client
                    || !right_verifier;
                let expected = if refused || c.used {
                    INVALID_GRANT
                } else {
                    Class::Ok
                };
                let replay = !refused && c.used;
                ensure_class("exchange", class(&r), expected, &r.as_ref().err())?;
                self.stats.steps += 1;
                if replay {
                    self.stats.replays += 1;
                    self.model.revoke(fi);
                } else if refused {
                    self.stats.refused += 1;
                } else {
                    self.stats.exchanged += 1;
                }
                if let Ok(pair) = r {
                    if let Some(c) = self.model.codes.get_mut(ci) {
                        c.used = true;
                    }
                    self.record_pair(fi, pair.refresh_token, pair.access_token, GRANTED_SCOPE);
                }
            }
            Op::Refresh {
                token,
                right_client,
                scope,
            } => {
                let Some(ti) = pick(token, self.model.refresh.len()) else {
                    return Ok(());
                };
                let Some(t) = self.model.refresh.get(ti) else {
                    return Ok(());
                };
                let fi = t.family;
                let fam_client = self.model.families.get(fi).map_or(0, |f| f.client);
                let client = if right_client {
                    self.client(fam_client)
                } else {
                    self.intruder()
                };
                let (scope_param, access_scope) = match scope {
                    ScopeChoice::Unchanged => (None, GRANTED_SCOPE),
                    ScopeChoice::Narrower => (Some("read"), "read"),
                    ScopeChoice::Wider => (Some("read write admin"), GRANTED_SCOPE),
                };
                let r = service
                    .refresh(RefreshRequest {
                        refresh_token: t.token.expose_secret(),
                        client_id: &client,
                        scope: scope_param,
                        binding: BindingContext::default(),
                    })
                    .await;
                // The model's decision, in the order of `decide::refresh`.
                enum Next {
                    Refuse(Class),
                    Replay,
                    Rotate,
                    Grace(usize),
                }
                let next =
                    if !self.model.family_live(fi, now) || now >= t.expires_at || !right_client {
                        // Family dead, token expired, or another client: refused, in that order.
                        Next::Refuse(INVALID_GRANT)
                    } else if scope == ScopeChoice::Wider {
                        Next::Refuse(Class::Error(ErrorCode::InvalidScope))
                    } else if t.superseded {
                        Next::Replay
                    } else if let Some(used_at) = t.used_at {
                        let in_window =
                            !self.grace.is_zero() && now < used_at.saturating_add(self.grace);
                        match t
                            .successor
                            .and_then(|s| self.model.refresh.get(s).map(|r| (s, r)))
                        {
                            Some((s, succ)) if in_window && self.model.refresh_live(succ, now) => {
                                Next::Grace(s)
                            }
                            _ => Next::Replay,
                        }
                    } else {
                        Next::Rotate
                    };
                let expected = match next {
                    Next::Refuse(c) => c,
                    Next::Replay => INVALID_GRANT,
                    Next::Rotate | Next::Grace(_) => Class::Ok,
                };
                ensure_class("refresh", class(&r), expected, &r.as_ref().err())?;
                self.stats.steps += 1;
                match (next, r) {
                    (Next::Replay, _) => {
                        self.stats.replays += 1;
                        self.model.revoke(fi);
                    }
                    (Next::Refuse(_), _) => self.stats.refused += 1,
                    (Next::Rotate, Ok(pair)) => {
                        self.stats.rotated += 1;
                        let n = self.record_pair(
                            fi,
                            pair.refresh_token,
                            pair.access_token,
                            access_scope,
                        );
                        if let Some(t) = self.model.refresh.get_mut(ti) {
                            t.used_at = Some(now);
                            t.successor = Some(n);
                        }
                    }
                    (Next::Grace(s), Ok(pair)) => {
                        self.stats.grace_reissued += 1;
                        if let Some(s) = self.model.refresh.get_mut(s) {
                            s.superseded = true;
                        }
                        let n = self.record_pair(
                            fi,
                            pair.refresh_token,
                            pair.access_token,
                            access_scope,
                        );
                        if let Some(t) = self.model.refresh.get_mut(ti) {
                            t.successor = Some(n);
                        }
                    }
                    _ => {}
                }
            }
            Op::RevokeRefresh {
                token,
                right_client,
            } => {
                let Some(t) =
                    pick(token, self.model.refresh.len()).and_then(|i| self.model.refresh.get(i))
                else {
                    return Ok(());
                };
                let fi = t.family;
                let fam_client = self.model.families.get(fi).map_or(0, |f| f.client);
                let client = if right_client {
                    self.client(fam_client)
                } else {
                    self.intruder()
                };
                let r = service
                    .revoke_token(t.token.expose_secret(), Some("refresh_token"), &client)
                    .await;
                let active = self.model.family_live(fi, now) && now < t.expires_at;
                match (active, right_client, &r) {
                    (false, _, Ok(RevokeResult::NothingToRevoke)) => {}
                    (true, false, Err(RotationError::NotClientsToken)) => {}
                    (
                        true,
                        true,
                        Ok(RevokeResult::Revoked {
                            family_revoked: true,
                            ..
                        }),
                    ) => {
                        self.stats.revoked += 1;
                        self.model.revoke(fi);
                    }
                    _ => {
                        return Err(Failure::new(format!(
                            "revoke refresh token (active {active}, right client {right_client}): {r:?}"
                        )));
                    }
                }
            }
            Op::RevokeAccess { token } => {
                let Some(ai) = pick(token, self.model.access.len()) else {
                    return Ok(());
                };
                let Some(a) = self.model.access.get(ai) else {
                    return Ok(());
                };
                let fam_client = self.model.families.get(a.family).map_or(0, |f| f.client);
                let r = service
                    .revoke_token(a.token.expose_secret(), None, &self.client(fam_client))
                    .await;
                let active = self.model.access_live(a, now);
                match (active, &r) {
                    (false, Ok(RevokeResult::NothingToRevoke)) => {}
                    (
                        true,
                        Ok(RevokeResult::Revoked {
                            family_revoked: false,
                            ..
                        }),
                    ) => {
                        if let Some(a) = self.model.access.get_mut(ai) {
                            a.revoked = true;
                        }
                    }
                    _ => {
                        return Err(Failure::new(format!(
                            "revoke access token (active {active}): {r:?}"
                        )));
                    }
                }
            }
            Op::Logout { user } => {
                let ids = service.logout(&self.user(user)).await?;
                self.stats.revoked += ids.len();
                self.revoke_owned(&ids, |f| f.user == user % USERS, now)?;
            }
            Op::RevokeClient { client } => {
                let ids = service.revoke_client(&self.client(client)).await?;
                self.stats.revoked += ids.len();
                self.revoke_owned(&ids, |f| f.client == client % CLIENTS, now)?;
            }
            Op::Advance { secs } => {
                self.h.clock().advance(Duration::from_secs(u64::from(secs)));
            }
            Op::Purge { max } => {
                let report = service.purge(usize::from(max)).await?;
                self.stats.purged += report.removed;
                if report.removed > usize::from(max) {
                    return Err(Failure::new(format!(
                        "purge({max}) removed {}",
                        report.removed
                    )));
                }
            }
        }
        Ok(())
    }

    /// A bulk revocation returned `ids`: each must be a live family of the owner; every live
    /// family of the owner is revoked in the model.
    fn revoke_owned(
        &mut self,
        ids: &[FamilyId],
        owned: impl Fn(&MFamily) -> bool,
        now: UnixTime,
    ) -> Result<(), Failure> {
        let mut expected = Vec::new();
        for (i, f) in self.model.families.iter().enumerate() {
            if owned(f) && self.model.family_live(i, now) {
                expected.push(i);
            }
        }
        for id in ids {
            let known = expected
                .iter()
                .any(|&i| self.model.families.get(i).is_some_and(|f| f.id == *id));
            if !known {
                return Err(Failure::new(format!(
                    "a bulk revocation revoked {id}, which is not a live family of the owner"
                )));
            }
        }
        for i in expected {
            self.model.revoke(i);
        }
        Ok(())
    }

    /// Every known token introspects as the model says; no family has two live refresh tokens.
    async fn sweep(&self) -> Result<(), Failure> {
        let now = self.now();
        let service = self.h.service();
        let mut live_per_family = vec![0usize; self.model.families.len()];
        for (i, t) in self.model.refresh.iter().enumerate() {
            let expected = self.model.refresh_live(t, now);
            let got = service.introspect(t.token.expose_secret()).await?;
            match (&got, expected) {
                (Introspection::Inactive, false) => {}
                (Introspection::Active(a), true) => {
                    let f = self.model.families.get(t.family);
                    if a.kind != TokenKind::RefreshToken
                        || a.scope.as_str() != GRANTED_SCOPE
                        || f.is_none_or(|f| {
                            f.id != a.family || a.client_id != self.client(f.client)
                        })
                    {
                        return Err(Failure::new(format!(
                            "refresh token {i} introspects with wrong metadata: {a:?}"
                        )));
                    }
                    if let Some(n) = live_per_family.get_mut(t.family) {
                        *n += 1;
                    }
                }
                _ => {
                    return Err(Failure::new(format!(
                        "refresh token {i}: introspects {}, model says {}",
                        got.is_active(),
                        expected
                    )));
                }
            }
        }
        if let Some((f, n)) = live_per_family.iter().enumerate().find(|(_, n)| **n > 1) {
            return Err(Failure::new(format!(
                "family {f} has {n} live refresh tokens (invariant 3)"
            )));
        }
        for (i, a) in self.model.access.iter().enumerate() {
            let expected = self.model.access_live(a, now);
            let got = service.introspect(a.token.expose_secret()).await?;
            match (&got, expected) {
                (Introspection::Inactive, false) => {}
                (Introspection::Active(t), true) if t.scope.as_str() == a.scope => {}
                _ => {
                    return Err(Failure::new(format!(
                        "access token {i}: introspects {got:?}, model says active={expected} scope={}",
                        a.scope
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Run `ops` against a service on `store`, comparing every step with the model.
///
/// Returns what the run did.
///
/// # Errors
/// The first divergence, naming the step and the operation.
pub async fn run(
    store: Arc<dyn GrantStore>,
    config: &ModelConfig,
    ops: &[Op],
) -> Result<ModelStats, Failure> {
    let policy = policy(config.grace_window)?;
    let hasher = Arc::new(TokenHasher::new(keyring(TEST_KEY, None)?));
    let h = Harness::build(store, policy, hasher, ManualClock::at_secs(START_SECS));
    let mut driver = Driver {
        stats: ModelStats::default(),
        h,
        config,
        model: Model::default(),
        idle: policy.refresh_idle_lifetime(),
        access_lifetime: policy.access_lifetime(),
        family_lifetime: policy.family_lifetime(),
        grace: policy.grace_window(),
    };
    for (i, op) in ops.iter().enumerate() {
        driver
            .step(*op)
            .await
            .map_err(|f| Failure::new(format!("step {i} {op:?}: {f}")))?;
        driver
            .sweep()
            .await
            .map_err(|f| Failure::new(format!("after step {i} {op:?}: {f}")))?;
    }
    Ok(driver.stats)
}
