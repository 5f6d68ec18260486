//! The `GrantStore` trait: the smallest set of atomic primitives the service needs.

use std::fmt;
use std::time::Duration;

use portcullis_core::{SecretString, UnixTime};
use portcullis_hash::TokenHash;
use portcullis_pkce::{CodeChallenge, PkceError};

use crate::{
    AccessToken, Binding, BindingPolicy, Credential, Family, FamilyId, HashPrefix,
    RevocationReason, Scope, TokenKind,
};

/// Why a store operation failed, and whether retrying can help.
///
/// The service never turns a store error into a family revocation or a token: a failed
/// redemption leaves the credential as it was, and the client may retry. A retryable error is
/// answered `temporarily_unavailable` (503), a permanent one `server_error` (500).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached, timed out, or lost a race it could not settle (a
    /// serialization failure or deadlock after its own bounded retries). Retrying may succeed.
    #[error("the grant store is temporarily unavailable")]
    Unavailable(#[source] Option<Box<dyn std::error::Error + Send + Sync>>),
    /// A record with the same key exists already: a family id or token hash collision, which
    /// only a broken random generator or a caller bug produces.
    #[error("the grant store refused a duplicate record")]
    Duplicate,
    /// The store's schema is missing, or newer than this code knows.
    #[error("the grant store's schema is missing or not supported")]
    Schema,
    /// Any other failure retrying will not fix (for example a record that does not decode).
    #[error("the grant store failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// A retryable failure caused by `source`.
    pub fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unavailable(Some(source.into()))
    }

    /// A permanent failure caused by `source`.
    pub fn backend(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Backend(source.into())
    }

    /// Whether retrying the same request may succeed.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// The lifetimes a redemption computes new expiries from. Each expiry is capped by the family's
/// absolute expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// A new refresh token expires this long after its issue (idle lifetime).
    pub refresh_idle: Duration,
    /// A new access token expires this long after its issue.
    pub access: Duration,
}

/// What the token request proves about the PKCE verifier, derived by the service before the
/// store call so that the store can decide without hashing.
pub enum VerifierProof {
    /// No `code_verifier` (or an empty one).
    Absent,
    /// A `code_verifier` that is not 43 to 128 unreserved characters.
    Malformed,
    /// A well-formed verifier, transformed for each method the store may find stored.
    Present {
        /// `BASE64URL(SHA256(verifier))`: compared with a stored `S256` challenge.
        s256: CodeChallenge,
        /// The verifier itself, only when the PKCE policy allows `plain`: compared with a stored
        /// `plain` challenge. `None` makes every `plain` challenge fail (fail closed).
        plain: Option<SecretString>,
    },
}

impl fmt::Debug for VerifierProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Absent => f.write_str("Absent"),
            Self::Malformed => f.write_str("Malformed"),
            Self::Present { plain, .. } => f
                .debug_struct("Present")
                .field("plain", &plain.as_ref().map(|_| "[REDACTED]"))
                .finish_non_exhaustive(),
        }
    }
}

/// The binding values a refresh request presents, each hashed under every key of the ring (so
/// a family bound before a key rotation still matches). An empty list means the value was not
/// presented.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindingProof {
    /// Candidates for the `User-Agent` hash.
    pub user_agent: Vec<TokenHash>,
    /// Candidates for the IP prefix hash.
    pub ip_prefix: Vec<TokenHash>,
    /// Candidates for the device id hash.
    pub device_id: Vec<TokenHash>,
}

/// Everything a store needs to redeem an authorization code in one atomic step.
#[derive(Debug)]
pub struct CodeRedemption<'a> {
    /// The presented code hashed under every key of the ring, current key first.
    pub candidates: &'a [TokenHash],
    /// The authenticated client.
    pub client_id: &'a str,
    /// The `redirect_uri` of the token request, if any.
    pub redirect_uri: Option<&'a str>,
    /// The PKCE proof.
    pub verifier: &'a VerifierProof,
    /// The binding to record in the family (hashes under the current key).
    pub binding: Binding,
    /// The hash of the family's first refresh token, to insert on success.
    pub refresh: TokenHash,
    /// The hash of the first access token, to insert on success.
    pub access: TokenHash,
    /// Lifetimes of the new tokens.
    pub lifetimes: Lifetimes,
    /// The time of the request. A store that keeps its own time (Redis `TIME`) may use that
    /// instead, for every expiry it computes and checks.
    pub now: UnixTime,
}

/// Everything a store needs to rotate a refresh token in one atomic step.
#[derive(Debug)]
pub struct RefreshRotation<'a> {
    /// The presented refresh token hashed under every key of the ring, current key first.
    pub candidates: &'a [TokenHash],
    /// The authenticated client.
    pub client_id: &'a str,
    /// The requested scope, if any: it must be a subset of the family's scope, and becomes
    /// the new access token's scope (the new refresh token keeps the family's scope).
    pub scope: Option<&'a Scope>,
    /// The binding values presented with the request.
    pub binding: &'a BindingProof,
    /// The binding policy to apply.
    pub binding_policy: BindingPolicy,
    /// The grace window (already capped at [`MAX_GRACE_WINDOW`](crate::MAX_GRACE_WINDOW) by the
    /// policy; stores cap it again).
    pub grace_window: Duration,
    /// The hash of the successor refresh token, to insert on success.
    pub successor: TokenHash,
    /// The hash of the new access token, to insert on success.
    pub access: TokenHash,
    /// Lifetimes of the new tokens.
    pub lifetimes: Lifetimes,
    /// The time of the request (see [`CodeRedemption::now`]).
    pub now: UnixTime,
}

/// A request to revoke one token (RFC 7009).
#[derive(Debug)]
pub struct TokenRevocation<'a> {
    /// What the token's prefix says it is.
    pub kind: TokenKind,
    /// The token hashed under every key of the ring.
    pub candidates: &'a [TokenHash],
    /// The authenticated client: only its own tokens may be revoked.
    pub client_id: &'a str,
    /// The time of the request.
    pub now: UnixTime,
}

/// What was issued by a successful redemption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The family.
    pub family: FamilyId,
    /// The new refresh token's generation.
    pub generation: u32,
    /// The new access token's scope.
    pub scope: Scope,
    /// The family's resources (the access token's audience).
    pub resources: Vec<String>,
    /// When the new refresh token expires.
    pub refresh_expires_at: UnixTime,
    /// When the new access token expires.
    pub access_expires_at: UnixTime,
}

/// The ids an event names a family by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyRef {
    /// The family.
    pub id: FamilyId,
    /// Its user.
    pub user_id: String,
    /// Its client.
    pub client_id: String,
}

impl FamilyRef {
    /// The ids of `family`.
    #[must_use]
    pub fn of(family: &Family) -> Self {
        Self {
            id: family.id,
            user_id: family.user_id.clone(),
            client_id: family.client_id.clone(),
        }
    }
}

/// Which binding values did not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BindingMismatch {
    /// The user agent differs (or was not presented).
    pub user_agent: bool,
    /// The IP prefix differs (or was not presented).
    pub ip_prefix: bool,
    /// The device id differs (or was not presented).
    pub device_id: bool,
}

/// A binding mismatch, with what an event needs to name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingReport {
    /// The family.
    pub family: FamilyRef,
    /// The presented refresh token.
    pub token: HashPrefix,
    /// What did not match.
    pub mismatch: BindingMismatch,
}

/// Why a redemption was refused without changing anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// No credential with that hash (never issued, or purged).
    NotFound,
    /// The credential or its family has expired.
    Expired,
    /// The family was revoked.
    Revoked,
    /// The credential belongs to another client.
    WrongClient,
    /// The `redirect_uri` is missing or differs from the authorization request's.
    RedirectUriMismatch,
    /// The PKCE check failed; the code stays unused and bound to its challenge.
    Pkce(PkceError),
    /// The requested scope is wider than the family's.
    ScopeWidened,
}

/// The result of [`GrantStore::redeem_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeOutcome {
    /// The code was marked used; the first refresh token and access token were stored.
    Redeemed(Issued),
    /// Refused; nothing changed.
    Rejected(Rejection),
    /// The code had been redeemed before and this request passed every other check: the
    /// family has been revoked by this call (DESIGN.md invariant 4, RFC 6749 §4.1.2).
    Replayed {
        /// The revoked family.
        family: FamilyRef,
        /// The replayed code.
        code: HashPrefix,
    },
}

/// The result of [`GrantStore::rotate_refresh`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshOutcome {
    /// The token was marked used; its successor and an access token were stored.
    Rotated {
        /// What was issued.
        issued: Issued,
        /// A binding mismatch let through by [`BindingAction::Report`](crate::BindingAction).
        reported: Option<BindingReport>,
    },
    /// The token was the immediately previous one, presented again inside the grace window:
    /// its earlier successor was revoked and a fresh successor stored.
    GraceReissued {
        /// What was issued.
        issued: Issued,
        /// The earlier successor, now revoked.
        superseded: HashPrefix,
        /// A binding mismatch let through by [`BindingAction::Report`](crate::BindingAction).
        reported: Option<BindingReport>,
    },
    /// Refused; nothing changed.
    Rejected(Rejection),
    /// A used or superseded token presented outside the grace window: the family has been
    /// revoked by this call.
    Replayed {
        /// The revoked family.
        family: FamilyRef,
        /// The replayed token.
        token: HashPrefix,
        /// Its generation.
        generation: u32,
    },
    /// The request did not match the family's binding; the family was revoked if
    /// `family_revoked`, otherwise nothing changed.
    BindingMismatch {
        /// What did not match.
        report: BindingReport,
        /// Whether the policy's action revoked the family.
        family_revoked: bool,
    },
}

/// The result of [`GrantStore::revoke_token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevokeOutcome {
    /// The token was found and revoked: for a code or refresh token its whole family, for an
    /// access token that token alone.
    Revoked {
        /// Its family.
        family: FamilyId,
        /// Whether the family was revoked by this call.
        family_revoked: bool,
    },
    /// The token was found but was already inactive (expired, revoked, or its family is).
    Inactive,
    /// No such token.
    NotFound,
    /// The token belongs to another client; nothing changed.
    WrongClient,
}

/// A stored token with its family, as returned by [`GrantStore::find`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Found {
    /// A code or refresh token.
    Credential {
        /// The credential.
        credential: Credential,
        /// Its family.
        family: Family,
    },
    /// An access token.
    Access {
        /// The token.
        token: AccessToken,
        /// Its family.
        family: Family,
    },
}

/// Everything a store holds about one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilySnapshot {
    /// The family.
    pub family: Family,
    /// Its code and refresh tokens, in no particular order.
    pub credentials: Vec<Credential>,
    /// Its access tokens, in no particular order.
    pub access_tokens: Vec<AccessToken>,
}

/// The result of one bounded [`GrantStore::purge`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PurgeReport {
    /// How many records (families, credentials, access tokens) were removed; at most the
    /// `max` asked for.
    pub removed: usize,
    /// Whether the call stopped at `max` with records possibly left to purge: call again.
    pub more: bool,
}

/// Where grants live: the atomic primitives the [`GrantService`](crate::GrantService) is built
/// on.
///
/// Every redemption is **one** call that carries everything needed to decide, so that a store
/// can make the decision and the write one atomic step: one lock, one Lua script, one SQL
/// statement or short transaction. The service parses and hashes tokens, mints the new ones
/// and derives what it can (the PKCE transform, binding hashes, the requested scope); the store
/// checks and writes. The rules are the pure functions of [`decide`](crate::decide), which the
/// memory store applies as they are and other stores mirror (and the
/// conformance suite, `portcullis_rotation::conformance` behind the `conformance` feature,
/// checks).
///
/// Contracts every store keeps:
/// - Only keyed hashes are stored (the requests carry nothing else). Lookups try every
///   candidate hash; new records use the hashes given.
/// - A primitive that returns `Ok` has durably stored everything its outcome reports (the
///   service hands tokens out only after that).
/// - A primitive that returns `Err` changed nothing, or changed something that is safe to
///   leave (a revocation); it never leaves a credential marked used without its successor.
/// - Lookups of records that are revoked or expired may find them or not (purge timing), and
///   either answer must lead to the same result for the client; [`decide`](crate::decide) is
///   written so that it does.
///
/// Object-safe: a server holds an `Arc<dyn GrantStore>`.
#[async_trait::async_trait]
pub trait GrantStore: Send + Sync + fmt::Debug {
    /// Store a new family together with its authorization code (generation 0).
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] if the family id or the code hash exists; otherwise a backend
    /// failure.
    async fn create_family(&self, family: &Family, code: &Credential) -> Result<(), StoreError>;

    /// Redeem an authorization code, atomically: find it, decide with
    /// [`decide::code`](crate::decide::code), and on success mark it used, record the binding,
    /// and store the first refresh token and access token; on a replay, revoke the family.
    ///
    /// # Errors
    /// A backend failure, with nothing changed.
    async fn redeem_code(&self, req: &CodeRedemption<'_>) -> Result<CodeOutcome, StoreError>;

    /// Rotate a refresh token, atomically: find it, decide with
    /// [`decide::refresh`](crate::decide::refresh), and apply the decision (mark used and store
    /// the successor and access token; or revoke the earlier successor and store a fresh one; or
    /// revoke the family).
    ///
    /// # Errors
    /// A backend failure, with nothing changed.
    async fn rotate_refresh(&self, req: &RefreshRotation<'_>)
    -> Result<RefreshOutcome, StoreError>;

    /// Find a token of `kind` by any of its candidate hashes, with its family.
    ///
    /// # Errors
    /// A backend failure.
    async fn find(
        &self,
        kind: TokenKind,
        candidates: &[TokenHash],
    ) -> Result<Option<Found>, StoreError>;

    /// Revoke one token (RFC 7009): a code or refresh token revokes its family (and so every
    /// token of it), an access token only itself. Expired or already revoked tokens are
    /// [`RevokeOutcome::Inactive`]; another client's token is [`RevokeOutcome::WrongClient`]
    /// and nothing changes.
    ///
    /// # Errors
    /// A backend failure.
    async fn revoke_token(&self, req: &TokenRevocation<'_>) -> Result<RevokeOutcome, StoreError>;

    /// Revoke a family. Returns whether this call revoked it (false if unknown or already
    /// revoked).
    ///
    /// # Errors
    /// A backend failure.
    async fn revoke_family(
        &self,
        id: FamilyId,
        reason: RevocationReason,
        now: UnixTime,
    ) -> Result<bool, StoreError>;

    /// Revoke every family of a user; returns the families this call revoked.
    ///
    /// # Errors
    /// A backend failure (some families may have been revoked already; calling again is safe).
    async fn revoke_user(
        &self,
        user_id: &str,
        reason: RevocationReason,
        now: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError>;

    /// Revoke every family of a client; returns the families this call revoked.
    ///
    /// # Errors
    /// As [`revoke_user`](Self::revoke_user).
    async fn revoke_client(
        &self,
        client_id: &str,
        reason: RevocationReason,
        now: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError>;

    /// Everything stored about a family (for administration, diagnostics and the conformance
    /// suite).
    ///
    /// # Errors
    /// A backend failure.
    async fn family(&self, id: FamilyId) -> Result<Option<FamilySnapshot>, StoreError>;

    /// Remove at most `max` records that can no longer matter: revoked or expired families with
    /// everything in them, expired credentials, and expired or revoked access tokens. Used and
    /// superseded credentials are kept until they expire, so that replays are still detected.
    ///
    /// # Errors
    /// A backend failure (what was removed stays removed).
    async fn purge(&self, now: UnixTime, max: usize) -> Result<PurgeReport, StoreError>;
}
