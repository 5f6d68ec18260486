//! Every way a service call can fail, and the one place it is mapped to an OAuth error.

use portcullis_core::{ErrorCode, ErrorDescription, OAuthError};
use portcullis_pkce::PkceError;

use crate::StoreError;
use crate::scope::ScopeError;

/// Why a grant was refused with `invalid_grant`. For logs and metrics: the client sees the same
/// description whatever the reason, so the answer is no oracle for which check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrantFailure {
    /// The token is not well-formed (rejected before any hashing or store access).
    Malformed,
    /// No such code or refresh token (never issued, or purged).
    Unknown,
    /// The code, the refresh token or its family has expired.
    Expired,
    /// The family was revoked.
    Revoked,
    /// The code or refresh token was issued to another client (RFC 6749 §4.1.3, §6).
    WrongClient,
    /// The `redirect_uri` is missing or differs from the authorization request's (RFC 6749
    /// §4.1.3).
    RedirectUriMismatch,
    /// A used credential was presented again: the family has been revoked.
    Replayed,
    /// The refresh request does not match the family's binding.
    BindingMismatch,
}

impl GrantFailure {
    /// A stable lowercase name for logs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::WrongClient => "wrong_client",
            Self::RedirectUriMismatch => "redirect_uri_mismatch",
            Self::Replayed => "replayed",
            Self::BindingMismatch => "binding_mismatch",
        }
    }
}

impl std::fmt::Display for GrantFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a [`GrantService`](crate::GrantService) call failed.
///
/// [`oauth_error`](Self::oauth_error) is the response to send; it is the only place this crate
/// maps failures to OAuth codes:
///
/// | variant | code | status |
/// |---|---|---|
/// | [`InvalidGrant`](Self::InvalidGrant) | `invalid_grant` | 400 |
/// | [`Pkce`](Self::Pkce) | as [`PkceError::oauth_error`] (`invalid_grant`, or `invalid_request` for a verifier without a challenge) | 400 |
/// | [`ScopeWidened`](Self::ScopeWidened) | `invalid_scope` | 400 |
/// | [`MalformedScope`](Self::MalformedScope) | `invalid_scope` | 400 |
/// | [`InvalidRequest`](Self::InvalidRequest) | `invalid_request` | 400 |
/// | [`NotClientsToken`](Self::NotClientsToken) | `unauthorized_client` | 400 |
/// | [`SessionExpired`](Self::SessionExpired) | `access_denied` | 400 |
/// | [`Store`](Self::Store), retryable | `temporarily_unavailable` | 503 |
/// | [`Store`](Self::Store), permanent; [`Rng`](Self::Rng) | `server_error` | 500 |
///
/// A retryable store failure is never a 500 and never revokes anything: the client may retry.
/// Descriptions are fixed text that carries no internal detail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotationError {
    /// The code or refresh token cannot be redeemed (RFC 6749 §5.2 `invalid_grant`).
    #[error("invalid grant ({0})")]
    InvalidGrant(GrantFailure),
    /// The PKCE check failed (the code stays unused and bound to its challenge), or a code was
    /// to be issued without the challenge the policy requires.
    #[error(transparent)]
    Pkce(#[from] PkceError),
    /// A refresh request asked for a scope wider than the grant's (RFC 6749 §6).
    #[error("the requested scope is wider than the grant's")]
    ScopeWidened,
    /// The `scope` parameter is not a valid scope (RFC 6749 §3.3).
    #[error("malformed scope: {0}")]
    MalformedScope(#[from] ScopeError),
    /// A request parameter is missing or malformed.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// RFC 7009 revocation of a token issued to another client (refused, nothing changed).
    #[error("the token was issued to another client")]
    NotClientsToken,
    /// A code was to be issued for an upstream session that has already expired.
    #[error("the upstream session has expired")]
    SessionExpired,
    /// The store failed; see [`StoreError::is_retryable`].
    #[error("grant store error")]
    Store(#[from] StoreError),
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Rng,
}

const GRANT: ErrorDescription =
    ErrorDescription::from_static("the grant is invalid, expired or revoked");
const WIDER: ErrorDescription =
    ErrorDescription::from_static("the requested scope is wider than the grant");
const MALFORMED_SCOPE: ErrorDescription = ErrorDescription::from_static("scope is malformed");
const NOT_YOURS: ErrorDescription =
    ErrorDescription::from_static("the token was not issued to this client");
const SESSION: ErrorDescription = ErrorDescription::from_static("the sign-in session has expired");
const RETRY: ErrorDescription =
    ErrorDescription::from_static("temporarily unavailable, retry later");

impl RotationError {
    /// The OAuth error to answer with (see the table on the type).
    #[must_use]
    pub fn oauth_error(&self) -> OAuthError {
        match self {
            Self::InvalidGrant(_) => {
                OAuthError::new(ErrorCode::InvalidGrant).with_description(GRANT)
            }
            Self::Pkce(e) => e.oauth_error(),
            Self::ScopeWidened => OAuthError::new(ErrorCode::InvalidScope).with_description(WIDER),
            Self::MalformedScope(_) => {
                OAuthError::new(ErrorCode::InvalidScope).with_description(MALFORMED_SCOPE)
            }
            Self::InvalidRequest(what) => OAuthError::new(ErrorCode::InvalidRequest)
                .with_description(ErrorDescription::lossy(what)),
            Self::NotClientsToken => {
                OAuthError::new(ErrorCode::UnauthorizedClient).with_description(NOT_YOURS)
            }
            Self::SessionExpired => {
                OAuthError::new(ErrorCode::AccessDenied).with_description(SESSION)
            }
            Self::Store(e) if e.is_retryable() => {
                OAuthError::new(ErrorCode::TemporarilyUnavailable).with_description(RETRY)
            }
            Self::Store(_) | Self::Rng => OAuthError::new(ErrorCode::ServerError),
        }
    }

    /// Whether the client may retry the same request (a retryable store failure).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_retryable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping() {
        let code = |e: RotationError| e.oauth_error().code();
        assert_eq!(
            code(RotationError::InvalidGrant(GrantFailure::Replayed)),
            ErrorCode::InvalidGrant
        );
        assert_eq!(
            code(RotationError::Pkce(PkceError::UnexpectedVerifier)),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(RotationError::Pkce(PkceError::VerifierMismatch)),
            ErrorCode::InvalidGrant
        );
        assert_eq!(code(RotationError::ScopeWidened), ErrorCode::InvalidScope);
        let retry = RotationError::Store(StoreError::unavailable("connection reset"));
        assert!(retry.is_retryable());
        assert_eq!(retry.oauth_error().status(), 503);
        let fatal = RotationError::Store(StoreError::Schema);
        assert!(!fatal.is_retryable());
        assert_eq!(fatal.oauth_error().status(), 500);
        // Every invalid_grant reason reads the same to the client.
        let a = RotationError::InvalidGrant(GrantFailure::WrongClient).oauth_error();
        let b = RotationError::InvalidGrant(GrantFailure::Unknown).oauth_error();
        assert_eq!(a, b);
        // No internal detail in the body.
        assert!(!retry.oauth_error().to_json().contains("connection"));
    }
}
