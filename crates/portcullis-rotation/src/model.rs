//! The records a store keeps: families, single-use credentials, access tokens, binding data.

use portcullis_core::UnixTime;
use portcullis_hash::{TokenHash, TokenPrefix};
use portcullis_pkce::CodeChallenge;

use crate::{FamilyId, Scope};

/// The kinds of token this crate issues, each with its own prefix and hash purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenKind {
    /// A single-use authorization code (`pca_…`).
    AuthorizationCode,
    /// A single-use, rotating refresh token (`pcr_…`).
    RefreshToken,
    /// A bearer access token (`pct_…`).
    AccessToken,
}

impl TokenKind {
    /// The token format prefix of this kind.
    #[must_use]
    pub const fn prefix(self) -> TokenPrefix {
        match self {
            Self::AuthorizationCode => TokenPrefix::CODE,
            Self::RefreshToken => TokenPrefix::REFRESH,
            Self::AccessToken => TokenPrefix::ACCESS,
        }
    }

    /// The kind a token prefix names, if any.
    #[must_use]
    pub fn from_prefix(prefix: &str) -> Option<Self> {
        [
            Self::AuthorizationCode,
            Self::RefreshToken,
            Self::AccessToken,
        ]
        .into_iter()
        .find(|k| k.prefix().as_str() == prefix)
    }

    /// The hash purpose of this kind (domain separation between kinds).
    #[must_use]
    pub const fn purpose(self) -> portcullis_hash::Purpose {
        match self {
            Self::AuthorizationCode => portcullis_hash::Purpose::AuthorizationCode,
            Self::RefreshToken => portcullis_hash::Purpose::RefreshToken,
            Self::AccessToken => portcullis_hash::Purpose::AccessToken,
        }
    }

    /// A stable lowercase name (`authorization_code`, `refresh_token`, `access_token`), as in RFC
    /// 7009 `token_type_hint` values and for storage.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::AccessToken => "access_token",
        }
    }
}

/// Why a family was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevocationReason {
    /// A used authorization code was presented again (with the right client and verifier).
    CodeReplay,
    /// A used or superseded refresh token was presented outside the grace window.
    RefreshReplay,
    /// A refresh request did not match the family's binding and the policy says revoke.
    BindingMismatch,
    /// The client revoked one of the family's codes or refresh tokens (RFC 7009).
    TokenRevoked,
    /// The server revoked the family by id.
    Administrative,
    /// The user logged out: every family of the user is revoked.
    Logout,
    /// Every family of the client was revoked (for example the client was deleted).
    ClientRevoked,
}

impl RevocationReason {
    /// Every reason.
    pub const ALL: [Self; 7] = [
        Self::CodeReplay,
        Self::RefreshReplay,
        Self::BindingMismatch,
        Self::TokenRevoked,
        Self::Administrative,
        Self::Logout,
        Self::ClientRevoked,
    ];

    /// A stable lowercase name, for events and storage.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CodeReplay => "code_replay",
            Self::RefreshReplay => "refresh_replay",
            Self::BindingMismatch => "binding_mismatch",
            Self::TokenRevoked => "token_revoked",
            Self::Administrative => "administrative",
            Self::Logout => "logout",
            Self::ClientRevoked => "client_revoked",
        }
    }

    /// The reason named by [`as_str`](Self::as_str).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// When and why a family was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// When.
    pub at: UnixTime,
    /// Why.
    pub reason: RevocationReason,
}

/// What a family is bound to: keyed hashes (never the values) recorded when the code is
/// exchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Binding {
    /// The keyed hash of the `User-Agent` the code was exchanged with.
    pub user_agent: Option<TokenHash>,
    /// The keyed hash of the client's IP prefix at the exchange.
    pub ip_prefix: Option<TokenHash>,
    /// The keyed hash of a device identifier the client presented at the exchange.
    pub device_id: Option<TokenHash>,
}

/// Everything issued from one authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    /// The family's id.
    pub id: FamilyId,
    /// The user (resource owner) who authorized.
    pub user_id: String,
    /// The client the grant was issued to.
    pub client_id: String,
    /// The consented scope. Refresh tokens always carry it; access tokens carry it or less.
    pub scope: Scope,
    /// The consented resources (RFC 8707), the audience of its access tokens.
    pub resources: Vec<String>,
    /// When the family was created (its code was issued).
    pub created_at: UnixTime,
    /// The absolute expiry, fixed at creation: nothing of the family is valid from this time on.
    pub expires_at: UnixTime,
    /// What refresh requests are compared with, recorded at the code exchange.
    pub binding: Binding,
    /// Set once, when the family is revoked.
    pub revoked: Option<Revocation>,
}

impl Family {
    /// Whether the family can still be used at `now`: not revoked and not expired.
    #[must_use]
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.revoked.is_none() && now < self.expires_at
    }
}

/// What a code redemption is checked against, kept with the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeTerms {
    /// The `redirect_uri` of the authorization request, compared by exact string equality
    /// (RFC 6749 §4.1.3, §3.1.2.3).
    pub redirect_uri: String,
    /// The PKCE challenge, if the code was issued with one. Never removed: a failed
    /// verification leaves the code bound to it.
    pub challenge: Option<CodeChallenge>,
}

/// A single-use credential: the family's authorization code or one of its refresh tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The keyed hash of the credential (the only form a store keeps).
    pub hash: TokenHash,
    /// [`TokenKind::AuthorizationCode`] or [`TokenKind::RefreshToken`].
    pub kind: TokenKind,
    /// The family it belongs to.
    pub family: FamilyId,
    /// 0 for the code, 1 for the first refresh token, one more per rotation.
    pub generation: u32,
    /// The credential whose redemption issued this one.
    pub parent: Option<TokenHash>,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// When it stops being valid (never after the family's expiry).
    pub expires_at: UnixTime,
    /// When it was redeemed; set once.
    pub used_at: Option<UnixTime>,
    /// The refresh token its redemption issued (the latest one, after a grace reissue).
    pub successor: Option<TokenHash>,
    /// Set when a grace reissue superseded this (unused) refresh token.
    pub revoked_at: Option<UnixTime>,
    /// For codes: the redirect URI and PKCE challenge.
    pub code_terms: Option<CodeTerms>,
}

impl Credential {
    /// Whether this is a refresh token that can be redeemed at `now` (ignoring the family).
    #[must_use]
    pub fn is_live_refresh(&self, now: UnixTime) -> bool {
        self.kind == TokenKind::RefreshToken
            && self.used_at.is_none()
            && self.revoked_at.is_none()
            && now < self.expires_at
    }
}

/// An access token record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The keyed hash of the token.
    pub hash: TokenHash,
    /// The family it belongs to: revoking the family makes it inactive.
    pub family: FamilyId,
    /// Its scope when narrower than the family's (a refresh request with `scope`); `None` means
    /// the family's scope.
    pub scope: Option<Scope>,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// When it expires (never after the family's expiry).
    pub expires_at: UnixTime,
    /// Set when this token alone was revoked (RFC 7009).
    pub revoked_at: Option<UnixTime>,
}

impl AccessToken {
    /// Whether the token is active at `now`, given its family.
    #[must_use]
    pub fn is_active(&self, family: &Family, now: UnixTime) -> bool {
        family.is_live(now) && self.revoked_at.is_none() && now < self.expires_at
    }
}
