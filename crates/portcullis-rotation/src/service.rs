//! The store-agnostic service: the policy layer a server calls.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use portcullis_core::{Clock, SecretString, UnixTime};
use portcullis_hash::{OpaqueToken, Purpose, TokenHash, TokenHasher, TokenPrefix};
use portcullis_pkce::{ChallengeMethod, CodeChallenge, CodeVerifier, PkceError};

use crate::error::{GrantFailure, RotationError};
use crate::events::{EventSink, NoEvents, SecurityEvent};
use crate::store::{
    BindingProof, BindingReport, CodeOutcome, CodeRedemption, Found, GrantStore, Issued,
    PurgeReport, RefreshOutcome, RefreshRotation, Rejection, RevokeOutcome, TokenRevocation,
};
use crate::{
    Binding, BindingAction, BindingMode, CodeTerms, Credential, Family, FamilyId, Lifetimes,
    RevocationReason, RotationPolicy, Scope, TokenKind, VerifierProof,
};

/// What the server knows when it issues an authorization code (after the user consented).
#[derive(Debug, Clone)]
pub struct CodeRequest {
    /// The client the code is for.
    pub client_id: String,
    /// The `redirect_uri` of the authorization request (already matched against the client's
    /// registered URIs); the token request must repeat it exactly.
    pub redirect_uri: String,
    /// The PKCE challenge from
    /// [`PkcePolicy::validate_authorization_request`](portcullis_pkce::PkcePolicy::validate_authorization_request).
    pub challenge: Option<CodeChallenge>,
    /// The consented scope.
    pub scope: Scope,
    /// The consented resources (RFC 8707).
    pub resources: Vec<String>,
    /// The user who consented.
    pub user_id: String,
    /// When the user's upstream session expires, if it does: nothing of the grant outlives it.
    pub session_expires_at: Option<UnixTime>,
}

/// A freshly issued authorization code: the plaintext goes into the redirect once.
#[derive(Debug)]
pub struct IssuedCode {
    /// The code (redacted in `Debug`).
    pub code: SecretString,
    /// The family the code roots.
    pub family: FamilyId,
    /// When the code expires.
    pub expires_at: UnixTime,
}

/// What the server knows about the requesting client, for binding (DESIGN.md invariant 9).
/// Values are hashed with the keyed hasher; only their hashes are stored.
#[derive(Debug, Clone, Copy, Default)]
pub struct BindingContext<'a> {
    /// The `User-Agent` header (absent is `None`).
    pub user_agent: Option<&'a str>,
    /// The client's address (the socket peer, or from trusted proxies only).
    pub ip: Option<IpAddr>,
    /// A device identifier the client presents, if the deployment uses one.
    pub device_id: Option<&'a str>,
}

/// A token request with `grant_type=authorization_code`.
#[derive(Clone, Copy)]
pub struct CodeExchange<'a> {
    /// The `code` parameter.
    pub code: &'a str,
    /// The authenticated client.
    pub client_id: &'a str,
    /// The `redirect_uri` parameter.
    pub redirect_uri: Option<&'a str>,
    /// The `code_verifier` parameter.
    pub code_verifier: Option<&'a str>,
    /// The requesting client's binding values.
    pub binding: BindingContext<'a>,
}

impl fmt::Debug for CodeExchange<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeExchange")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// A token request with `grant_type=refresh_token`.
#[derive(Clone, Copy)]
pub struct RefreshRequest<'a> {
    /// The `refresh_token` parameter.
    pub refresh_token: &'a str,
    /// The authenticated client.
    pub client_id: &'a str,
    /// The `scope` parameter: the granted scope or less (RFC 6749 §6).
    pub scope: Option<&'a str>,
    /// The requesting client's binding values.
    pub binding: BindingContext<'a>,
}

impl fmt::Debug for RefreshRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshRequest")
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A successful token response: an access token and the family's next refresh token.
#[derive(Debug)]
pub struct TokenPair {
    /// The access token (redacted in `Debug`).
    pub access_token: SecretString,
    /// The refresh token (redacted in `Debug`).
    pub refresh_token: SecretString,
    /// The access token's `expires_in`.
    pub expires_in: Duration,
    /// When the access token expires.
    pub access_expires_at: UnixTime,
    /// When the refresh token expires (idle lifetime, capped by the family).
    pub refresh_expires_at: UnixTime,
    /// The access token's scope (send it as `scope` when it differs from the requested one).
    pub scope: Scope,
    /// The access token's audience.
    pub resources: Vec<String>,
    /// The family.
    pub family: FamilyId,
    /// The refresh token's generation.
    pub generation: u32,
}

impl TokenPair {
    /// The `token_type` of every access token this crate issues (RFC 6750).
    pub const TOKEN_TYPE: &'static str = "Bearer";
}

/// The metadata of an active token (RFC 7662 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveToken {
    /// Access or refresh token.
    pub kind: TokenKind,
    /// Its family.
    pub family: FamilyId,
    /// `client_id`.
    pub client_id: String,
    /// `sub`: the user.
    pub user_id: String,
    /// `scope`.
    pub scope: Scope,
    /// `aud`: the resources.
    pub resources: Vec<String>,
    /// `iat`.
    pub issued_at: UnixTime,
    /// `exp`.
    pub expires_at: UnixTime,
}

/// The answer to an introspection request. Anything not active (unknown, malformed, expired,
/// revoked, used, a code) is just [`Introspection::Inactive`]: RFC 7662 §2.2 answers
/// `{"active":false}` and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Introspection {
    /// `{"active":false}`.
    Inactive,
    /// `{"active":true, ...}`.
    Active(ActiveToken),
}

impl Introspection {
    /// Whether the token is active.
    #[must_use]
    pub const fn is_active(&self) -> bool {
        matches!(self, Self::Active(_))
    }
}

/// The result of an RFC 7009 revocation. Both are answered with 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevokeResult {
    /// The token was revoked (with its whole family, for a code or refresh token).
    Revoked {
        /// The token's family.
        family: FamilyId,
        /// Whether the family was revoked.
        family_revoked: bool,
    },
    /// The token was malformed, unknown, or already inactive: nothing to do (RFC 7009 §2.2).
    NothingToRevoke,
}

/// The grant family service: issues codes, exchanges them, rotates refresh tokens, revokes and
/// introspects, on any [`GrantStore`].
///
/// It parses and hashes presented tokens (malformed ones are refused before any hashing or
/// store access), mints and hashes new ones, derives the PKCE and binding proofs, and then makes
/// **one** store call per redemption. A plaintext token is returned only after that call
/// succeeded (DESIGN.md invariant 6). Security events go to `tracing` and to the
/// [`EventSink`].
///
/// Cheap to share: wrap it in an `Arc`.
pub struct GrantService {
    store: Arc<dyn GrantStore>,
    hasher: Arc<TokenHasher>,
    clock: Arc<dyn Clock>,
    policy: RotationPolicy,
    events: Arc<dyn EventSink>,
}

impl fmt::Debug for GrantService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrantService")
            .field("store", &self.store)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

fn rejection(r: Rejection) -> RotationError {
    match r {
        Rejection::NotFound => RotationError::InvalidGrant(GrantFailure::Unknown),
        Rejection::Expired => RotationError::InvalidGrant(GrantFailure::Expired),
        Rejection::Revoked => RotationError::InvalidGrant(GrantFailure::Revoked),
        Rejection::WrongClient => RotationError::InvalidGrant(GrantFailure::WrongClient),
        Rejection::RedirectUriMismatch => {
            RotationError::InvalidGrant(GrantFailure::RedirectUriMismatch)
        }
        Rejection::Pkce(e) => RotationError::Pkce(e),
        Rejection::ScopeWidened => RotationError::ScopeWidened,
    }
}

/// An empty parameter counts as absent (RFC 6749 §3.1).
fn present(p: Option<&str>) -> Option<&str> {
    p.filter(|s| !s.is_empty())
}

impl GrantService {
    /// A service on `store`, hashing with `hasher`, taking time from `clock`.
    #[must_use]
    pub fn new(
        store: Arc<dyn GrantStore>,
        hasher: Arc<TokenHasher>,
        clock: Arc<dyn Clock>,
        policy: RotationPolicy,
    ) -> Self {
        Self {
            store,
            hasher,
            clock,
            policy,
            events: Arc::new(NoEvents),
        }
    }

    /// This service, sending security events to `sink` as well as to `tracing`.
    #[must_use]
    pub fn with_events(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = sink;
        self
    }

    /// The policy.
    #[must_use]
    pub const fn policy(&self) -> &RotationPolicy {
        &self.policy
    }

    /// The store.
    #[must_use]
    pub const fn store(&self) -> &Arc<dyn GrantStore> {
        &self.store
    }

    /// The hasher.
    #[must_use]
    pub const fn hasher(&self) -> &Arc<TokenHasher> {
        &self.hasher
    }

    fn emit(&self, event: &SecurityEvent) {
        event.trace();
        self.events.emit(event);
    }

    fn mint(&self, kind: TokenKind) -> Result<(OpaqueToken, TokenHash), RotationError> {
        let token = OpaqueToken::mint(kind.prefix()).map_err(|_| RotationError::Rng)?;
        let hash = self
            .hasher
            .hash(kind.purpose(), token.expose_secret().as_bytes());
        Ok((token, hash))
    }

    fn candidates(&self, purpose: Purpose, token: &str) -> Vec<TokenHash> {
        self.hasher.candidates(purpose, token.as_bytes()).collect()
    }

    /// Issue an authorization code and create its family. Returns the plaintext code once.
    ///
    /// # Errors
    /// - [`RotationError::Pkce`] ([`PkceError::MissingChallenge`]) without a challenge when the
    ///   policy requires PKCE, or ([`PkceError::PlainNotAllowed`]) with a `plain` challenge the
    ///   policy refuses;
    /// - [`RotationError::InvalidRequest`] for an empty client id, redirect URI or user id;
    /// - [`RotationError::SessionExpired`] if the upstream session has already expired;
    /// - store and RNG failures.
    pub async fn issue_code(&self, req: CodeRequest) -> Result<IssuedCode, RotationError> {
        let now = self.clock.now();
        if req.client_id.is_empty() {
            return Err(RotationError::InvalidRequest("client_id is required"));
        }
        if req.redirect_uri.is_empty() {
            return Err(RotationError::InvalidRequest("redirect_uri is required"));
        }
        if req.user_id.is_empty() {
            return Err(RotationError::InvalidRequest("a user is required"));
        }
        match &req.challenge {
            None if self.policy.pkce_required() => {
                return Err(PkceError::MissingChallenge.into());
            }
            Some(c)
                if c.method() == ChallengeMethod::Plain && !self.policy.pkce().allows_plain() =>
            {
                return Err(PkceError::PlainNotAllowed.into());
            }
            _ => {}
        }
        let mut expires_at = now.saturating_add(self.policy.family_lifetime());
        if let Some(session) = req.session_expires_at {
            if session <= now {
                return Err(RotationError::SessionExpired);
            }
            expires_at = expires_at.min(session);
        }
        let (code, hash) = self.mint(TokenKind::AuthorizationCode)?;
        let id = FamilyId::generate().map_err(|_| RotationError::Rng)?;
        let code_expires_at = now
            .saturating_add(self.policy.code_lifetime())
            .min(expires_at);
        let family = Family {
            id,
            user_id: req.user_id,
            client_id: req.client_id,
            scope: req.scope,
            resources: req.resources,
            created_at: now,
            expires_at,
            binding: Binding::default(),
            revoked: None,
        };
        let credential = Credential {
            hash,
            kind: TokenKind::AuthorizationCode,
            family: id,
            generation: 0,
            parent: None,
            issued_at: now,
            expires_at: code_expires_at,
            used_at: None,
            successor: None,
            revoked_at: None,
            code_terms: Some(CodeTerms {
                redirect_uri: req.redirect_uri,
                challenge: req.challenge,
            }),
        };
        self.store.create_family(&family, &credential).await?;
        Ok(IssuedCode {
            code: code.into_secret(),
            family: id,
            expires_at: code_expires_at,
        })
    }

    fn verifier_proof(&self, verifier: Option<&str>) -> VerifierProof {
        match present(verifier) {
            None => VerifierProof::Absent,
            Some(v) => match CodeVerifier::new(v.to_owned()) {
                Err(_) => VerifierProof::Malformed,
                Ok(cv) => VerifierProof::Present {
                    s256: cv.challenge(),
                    plain: self
                        .policy
                        .pkce()
                        .allows_plain()
                        .then(|| SecretString::from(cv.expose_secret())),
                },
            },
        }
    }

    /// The binding to record at the exchange: every value presented, hashed under the current
    /// key (recorded whatever the mode, so that binding can be switched on later).
    fn binding_record(&self, ctx: &BindingContext<'_>) -> Binding {
        Binding {
            user_agent: ctx.user_agent.map(|ua| self.hasher.hash_user_agent(ua)),
            ip_prefix: ctx.ip.map(|ip| {
                self.hasher
                    .hash_ip_prefix(ip, self.policy.binding().ip_prefix())
            }),
            device_id: ctx.device_id.map(|d| self.hasher.hash_device_id(d)),
        }
    }

    /// The binding values of a refresh request, under every key; only what the mode compares.
    fn binding_proof(&self, ctx: &BindingContext<'_>) -> BindingProof {
        let binding = self.policy.binding();
        let ip = match binding.mode() {
            BindingMode::Off => return BindingProof::default(),
            BindingMode::UserAgentAndIpPrefix => true,
            _ => false,
        };
        let ip_bytes = ctx
            .ip
            .filter(|_| ip)
            .map(|addr| portcullis_hash::ip_prefix_bytes(addr, binding.ip_prefix()));
        BindingProof {
            user_agent: ctx
                .user_agent
                .map(|ua| self.candidates(Purpose::UserAgent, ua))
                .unwrap_or_default(),
            ip_prefix: ip_bytes
                .map(|b| self.hasher.candidates(Purpose::IpPrefix, &b).collect())
                .unwrap_or_default(),
            device_id: ctx
                .device_id
                .map(|d| self.candidates(Purpose::DeviceId, d))
                .unwrap_or_default(),
        }
    }

    fn pair(issued: Issued, refresh: OpaqueToken, access: OpaqueToken, now: UnixTime) -> TokenPair {
        TokenPair {
            access_token: access.into_secret(),
            refresh_token: refresh.into_secret(),
            expires_in: issued.access_expires_at.saturating_duration_since(now),
            access_expires_at: issued.access_expires_at,
            refresh_expires_at: issued.refresh_expires_at,
            scope: issued.scope,
            resources: issued.resources,
            family: issued.family,
            generation: issued.generation,
        }
    }

    const fn lifetimes(&self) -> Lifetimes {
        Lifetimes {
            refresh_idle: self.policy.refresh_idle_lifetime(),
            access: self.policy.access_lifetime(),
        }
    }

    /// Exchange an authorization code for an access token and the family's first refresh token
    /// (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3).
    ///
    /// Refused with nothing changed (the code stays unused and bound to its challenge) when the
    /// client, the redirect URI or the PKCE verifier is wrong, even for a used code
    /// (STANDARDS `21-7.5.2-a`). A used code presented with everything right is a replay: the
    /// family and every token issued from the code are revoked (`6749-4.1.2-b`).
    ///
    /// # Errors
    /// [`RotationError::InvalidGrant`], [`RotationError::Pkce`], store and RNG failures.
    pub async fn exchange_code(&self, req: CodeExchange<'_>) -> Result<TokenPair, RotationError> {
        let presented = OpaqueToken::parse(TokenPrefix::CODE, req.code)
            .map_err(|_| RotationError::InvalidGrant(GrantFailure::Malformed))?;
        let candidates = self.candidates(Purpose::AuthorizationCode, presented.as_str());
        let verifier = self.verifier_proof(req.code_verifier);
        let binding = self.binding_record(&req.binding);
        let (refresh, refresh_hash) = self.mint(TokenKind::RefreshToken)?;
        let (access, access_hash) = self.mint(TokenKind::AccessToken)?;
        let now = self.clock.now();
        let redemption = CodeRedemption {
            candidates: &candidates,
            client_id: req.client_id,
            redirect_uri: present(req.redirect_uri),
            verifier: &verifier,
            binding,
            refresh: refresh_hash,
            access: access_hash,
            lifetimes: self.lifetimes(),
            now,
        };
        match self.store.redeem_code(&redemption).await? {
            CodeOutcome::Redeemed(issued) => Ok(Self::pair(issued, refresh, access, now)),
            CodeOutcome::Rejected(r) => Err(rejection(r)),
            CodeOutcome::Replayed { family, code } => {
                self.emit(&SecurityEvent::CodeReplayed {
                    family: family.id,
                    user_id: family.user_id,
                    client_id: family.client_id,
                    code,
                });
                self.emit(&SecurityEvent::FamilyRevoked {
                    family: family.id,
                    reason: RevocationReason::CodeReplay,
                });
                Err(RotationError::InvalidGrant(GrantFailure::Replayed))
            }
        }
    }

    fn binding_event(&self, report: BindingReport, action: BindingAction) {
        self.emit(&SecurityEvent::BindingMismatch {
            family: report.family.id,
            user_id: report.family.user_id,
            client_id: report.family.client_id,
            token: report.token,
            mismatch: report.mismatch,
            action,
        });
    }

    /// Rotate a refresh token: the presented token is used up, and a new access token and
    /// refresh token are returned (RFC 6749 §6, RFC 9700 §4.14.2).
    ///
    /// A used token presented again is a replay and revokes the family, unless the policy has a
    /// grace window and this is the immediately previous token inside it (then it gets a fresh
    /// successor and the earlier successor is revoked). Another client's token is
    /// `invalid_grant`; a wider scope is `invalid_scope`; neither changes anything.
    ///
    /// # Errors
    /// [`RotationError::InvalidGrant`], [`RotationError::ScopeWidened`],
    /// [`RotationError::MalformedScope`], store and RNG failures.
    pub async fn refresh(&self, req: RefreshRequest<'_>) -> Result<TokenPair, RotationError> {
        let presented = OpaqueToken::parse(TokenPrefix::REFRESH, req.refresh_token)
            .map_err(|_| RotationError::InvalidGrant(GrantFailure::Malformed))?;
        let scope = present(req.scope).map(Scope::parse).transpose()?;
        let candidates = self.candidates(Purpose::RefreshToken, presented.as_str());
        let binding = self.binding_proof(&req.binding);
        let (refresh, refresh_hash) = self.mint(TokenKind::RefreshToken)?;
        let (access, access_hash) = self.mint(TokenKind::AccessToken)?;
        let now = self.clock.now();
        let rotation = RefreshRotation {
            candidates: &candidates,
            client_id: req.client_id,
            scope: scope.as_ref(),
            binding: &binding,
            binding_policy: self.policy.binding(),
            grace_window: self.policy.grace_window(),
            successor: refresh_hash,
            access: access_hash,
            lifetimes: self.lifetimes(),
            now,
        };
        match self.store.rotate_refresh(&rotation).await? {
            RefreshOutcome::Rotated { issued, reported } => {
                if let Some(report) = reported {
                    self.binding_event(report, BindingAction::Report);
                }
                Ok(Self::pair(issued, refresh, access, now))
            }
            RefreshOutcome::GraceReissued {
                issued,
                superseded,
                reported,
            } => {
                tracing::info!(
                    target: "portcullis_rotation::security",
                    family = %issued.family,
                    %superseded,
                    "previous refresh token presented inside the grace window; earlier successor revoked"
                );
                if let Some(report) = reported {
                    self.binding_event(report, BindingAction::Report);
                }
                Ok(Self::pair(issued, refresh, access, now))
            }
            RefreshOutcome::Rejected(r) => Err(rejection(r)),
            RefreshOutcome::Replayed {
                family,
                token,
                generation,
            } => {
                self.emit(&SecurityEvent::RefreshReplayDetected {
                    family: family.id,
                    user_id: family.user_id,
                    client_id: family.client_id,
                    token,
                    generation,
                });
                self.emit(&SecurityEvent::FamilyRevoked {
                    family: family.id,
                    reason: RevocationReason::RefreshReplay,
                });
                Err(RotationError::InvalidGrant(GrantFailure::Replayed))
            }
            RefreshOutcome::BindingMismatch {
                report,
                family_revoked,
            } => {
                let family = report.family.id;
                let action = if family_revoked {
                    BindingAction::RevokeFamily
                } else {
                    BindingAction::Reject
                };
                self.binding_event(report, action);
                if family_revoked {
                    self.emit(&SecurityEvent::FamilyRevoked {
                        family,
                        reason: RevocationReason::BindingMismatch,
                    });
                }
                Err(RotationError::InvalidGrant(GrantFailure::BindingMismatch))
            }
        }
    }

    /// RFC 7009 revocation of one token by its client.
    ///
    /// The kind is read from the token's prefix, so the `token_type_hint` is only a hint: it is
    /// accepted and not needed (§2.1: a wrong hint must not stop the search). A code or refresh
    /// token revokes its whole family, access tokens included (§2.1); an access token only
    /// itself. Malformed, unknown and inactive tokens are not an error (§2.2).
    ///
    /// # Errors
    /// [`RotationError::NotClientsToken`] for another client's active token (nothing changed);
    /// store failures.
    pub async fn revoke_token(
        &self,
        token: &str,
        token_type_hint: Option<&str>,
        client_id: &str,
    ) -> Result<RevokeResult, RotationError> {
        let _ = token_type_hint;
        let Ok(parsed) = OpaqueToken::parse_any(token) else {
            return Ok(RevokeResult::NothingToRevoke);
        };
        let Some(kind) = TokenKind::from_prefix(parsed.prefix()) else {
            return Ok(RevokeResult::NothingToRevoke);
        };
        let candidates = self.candidates(kind.purpose(), parsed.as_str());
        let req = TokenRevocation {
            kind,
            candidates: &candidates,
            client_id,
            now: self.clock.now(),
        };
        match self.store.revoke_token(&req).await? {
            RevokeOutcome::Revoked {
                family,
                family_revoked,
            } => {
                if family_revoked {
                    self.emit(&SecurityEvent::FamilyRevoked {
                        family,
                        reason: RevocationReason::TokenRevoked,
                    });
                }
                Ok(RevokeResult::Revoked {
                    family,
                    family_revoked,
                })
            }
            RevokeOutcome::WrongClient => Err(RotationError::NotClientsToken),
            RevokeOutcome::Inactive | RevokeOutcome::NotFound => Ok(RevokeResult::NothingToRevoke),
        }
    }

    /// Revoke one family (administration). Returns whether this call revoked it.
    ///
    /// # Errors
    /// Store failures.
    pub async fn revoke_family(&self, id: FamilyId) -> Result<bool, RotationError> {
        let reason = RevocationReason::Administrative;
        let revoked = self
            .store
            .revoke_family(id, reason, self.clock.now())
            .await?;
        if revoked {
            self.emit(&SecurityEvent::FamilyRevoked { family: id, reason });
        }
        Ok(revoked)
    }

    /// Logout: revoke every family of `user_id`, and so every token the user's clients hold.
    /// The user id must come from the verified session, never from the request body.
    ///
    /// # Errors
    /// Store failures.
    pub async fn logout(&self, user_id: &str) -> Result<Vec<FamilyId>, RotationError> {
        let reason = RevocationReason::Logout;
        let ids = self
            .store
            .revoke_user(user_id, reason, self.clock.now())
            .await?;
        for id in &ids {
            self.emit(&SecurityEvent::FamilyRevoked {
                family: *id,
                reason,
            });
        }
        Ok(ids)
    }

    /// Revoke every family of a client (for example when the client is deleted).
    ///
    /// # Errors
    /// Store failures.
    pub async fn revoke_client(&self, client_id: &str) -> Result<Vec<FamilyId>, RotationError> {
        let reason = RevocationReason::ClientRevoked;
        let ids = self
            .store
            .revoke_client(client_id, reason, self.clock.now())
            .await?;
        for id in &ids {
            self.emit(&SecurityEvent::FamilyRevoked {
                family: *id,
                reason,
            });
        }
        Ok(ids)
    }

    /// RFC 7662 introspection of an access or refresh token. Anything else, and anything
    /// malformed, unknown, expired, used or revoked, is [`Introspection::Inactive`].
    ///
    /// # Errors
    /// Store failures (never an answer of "inactive" for a store that could not be asked).
    pub async fn introspect(&self, token: &str) -> Result<Introspection, RotationError> {
        let Ok(parsed) = OpaqueToken::parse_any(token) else {
            return Ok(Introspection::Inactive);
        };
        let Some(kind @ (TokenKind::AccessToken | TokenKind::RefreshToken)) =
            TokenKind::from_prefix(parsed.prefix())
        else {
            return Ok(Introspection::Inactive);
        };
        let candidates = self.candidates(kind.purpose(), parsed.as_str());
        let now = self.clock.now();
        let active = match self.store.find(kind, &candidates).await? {
            Some(Found::Access { token, family }) if token.is_active(&family, now) => {
                Some(ActiveToken {
                    kind,
                    family: family.id,
                    scope: token.scope.unwrap_or_else(|| family.scope.clone()),
                    client_id: family.client_id,
                    user_id: family.user_id,
                    resources: family.resources,
                    issued_at: token.issued_at,
                    expires_at: token.expires_at,
                })
            }
            Some(Found::Credential { credential, family })
                if family.is_live(now) && credential.is_live_refresh(now) =>
            {
                Some(ActiveToken {
                    kind,
                    family: family.id,
                    scope: family.scope,
                    client_id: family.client_id,
                    user_id: family.user_id,
                    resources: family.resources,
                    issued_at: credential.issued_at,
                    expires_at: credential.expires_at,
                })
            }
            _ => None,
        };
        Ok(active.map_or(Introspection::Inactive, Introspection::Active))
    }

    /// Purge at most `max` dead records (see [`GrantStore::purge`]); call again while
    /// [`PurgeReport::more`].
    ///
    /// # Errors
    /// Store failures.
    pub async fn purge(&self, max: usize) -> Result<PurgeReport, RotationError> {
        Ok(self.store.purge(self.clock.now(), max).await?)
    }
}
