//! Every way a PKCE check can fail, and the OAuth error each one is answered with.

use portcullis_core::{ErrorCode, ErrorDescription, OAuthError};

use crate::ChallengeMethod;

/// Why a PKCE check failed.
///
/// The first four variants come from the authorization endpoint
/// ([`PkcePolicy::validate_authorization_request`](crate::PkcePolicy::validate_authorization_request)),
/// the last four from the token endpoint ([`verify_token_request`](crate::verify_token_request)).
/// [`oauth_error`](Self::oauth_error) maps each to the response a server sends; this is the only
/// place the mapping is made.
///
/// | variant | endpoint | code | source |
/// |---|---|---|---|
/// | [`MissingChallenge`](Self::MissingChallenge) | authorize | `invalid_request` | RFC 7636 §4.4.1 |
/// | [`UnsupportedMethod`](Self::UnsupportedMethod) | authorize | `invalid_request` | RFC 7636 §4.4.1 |
/// | [`PlainNotAllowed`](Self::PlainNotAllowed) | authorize | `invalid_request` | RFC 7636 §4.3, §4.4.1 |
/// | [`MalformedChallenge`](Self::MalformedChallenge) | authorize | `invalid_request` | RFC 7636 §4.2, RFC 6749 §4.1.2.1 |
/// | [`MissingVerifier`](Self::MissingVerifier) | token | `invalid_grant` | RFC 9700 §2.1.1, OAuth 2.1 §4.1.3, RFC 7636 §4.6 |
/// | [`UnexpectedVerifier`](Self::UnexpectedVerifier) | token | `invalid_request` | RFC 9700 §4.8.2, OAuth 2.1 |
/// | [`MalformedVerifier`](Self::MalformedVerifier) | token | `invalid_grant` | RFC 7636 §4.1, §4.6 |
/// | [`VerifierMismatch`](Self::VerifierMismatch) | token | `invalid_grant` | RFC 7636 §4.6 |
///
/// All are sent with HTTP 400 (as a redirect at the authorization endpoint, once the client and
/// redirect URI are known to be valid).
///
/// Why `invalid_grant` for a missing or malformed verifier: the authorization code was bound to
/// a verifier, and a request that does not carry a well-formed one cannot prove possession of
/// it. RFC 7636 §4.6 answers a verifier that does not transform to the stored challenge with
/// `invalid_grant`, and a missing or malformed verifier is such a verifier; answering every
/// "this request cannot redeem this code" alike is also what Spring Authorization Server,
/// Keycloak and ory/fosite do. The one token-endpoint failure that is `invalid_request` is a
/// verifier for a code issued without a challenge, as OAuth 2.1 says: there the request, not the
/// grant, is wrong.
///
/// Neither the variants nor their messages carry the verifier or the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum PkceError {
    /// Authorization request without a `code_challenge` (or with an empty one).
    #[error("the authorization request has no code_challenge")]
    MissingChallenge,
    /// `code_challenge_method` is neither `S256` nor `plain` (the names are case-sensitive).
    #[error("the code_challenge_method is not supported")]
    UnsupportedMethod,
    /// `code_challenge_method` is `plain`, or absent (which RFC 7636 §4.3 defines as `plain`),
    /// and the policy does not allow `plain`.
    #[error(
        "the code_challenge_method is plain (or absent, which means plain) and plain is not allowed"
    )]
    PlainNotAllowed,
    /// The `code_challenge` does not fit its method: `S256` needs the 43-character base64url
    /// encoding of a SHA-256 digest, `plain` needs 43 to 128 unreserved characters.
    #[error("the code_challenge is malformed for method {method}")]
    MalformedChallenge {
        /// The method the challenge was checked against.
        method: ChallengeMethod,
    },
    /// Token request without a `code_verifier` for a code issued with a challenge.
    #[error("the token request has no code_verifier but the code was issued with a code_challenge")]
    MissingVerifier,
    /// Token request with a `code_verifier` for a code issued without a challenge (the PKCE
    /// downgrade of RFC 9700 §4.8.2).
    #[error(
        "the token request has a code_verifier but the code was issued without a code_challenge"
    )]
    UnexpectedVerifier,
    /// The `code_verifier` is not 43 to 128 characters of `[A-Za-z0-9-._~]`.
    #[error("the code_verifier is not 43 to 128 unreserved characters")]
    MalformedVerifier,
    /// The `code_verifier` does not transform to the stored challenge.
    #[error("the code_verifier does not match the code_challenge")]
    VerifierMismatch,
}

// Client-visible descriptions: fixed text, checked against RFC 6749 §5.2 at compile time.
const MISSING_CHALLENGE: ErrorDescription =
    ErrorDescription::from_static("code_challenge is required");
const UNSUPPORTED_METHOD: ErrorDescription =
    ErrorDescription::from_static("code_challenge_method must be S256");
const PLAIN_NOT_ALLOWED: ErrorDescription = ErrorDescription::from_static(
    "code_challenge_method must be S256 (plain, the default when it is absent, is not allowed)",
);
const MALFORMED_S256_CHALLENGE: ErrorDescription = ErrorDescription::from_static(
    "code_challenge must be the 43-character base64url encoding of a SHA-256 digest",
);
const MALFORMED_PLAIN_CHALLENGE: ErrorDescription = ErrorDescription::from_static(
    "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
);
const MISSING_VERIFIER: ErrorDescription = ErrorDescription::from_static(
    "code_verifier is required: the authorization request had a code_challenge",
);
const UNEXPECTED_VERIFIER: ErrorDescription = ErrorDescription::from_static(
    "code_verifier is not allowed: the authorization request had no code_challenge",
);
const MALFORMED_VERIFIER: ErrorDescription = ErrorDescription::from_static(
    "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
);
const VERIFIER_MISMATCH: ErrorDescription =
    ErrorDescription::from_static("code_verifier does not match the code_challenge");

impl PkceError {
    /// The OAuth error code for this failure (see the table on [`PkceError`]).
    #[must_use]
    pub const fn code(&self) -> ErrorCode {
        match self {
            Self::MissingChallenge
            | Self::UnsupportedMethod
            | Self::PlainNotAllowed
            | Self::MalformedChallenge { .. }
            | Self::UnexpectedVerifier => ErrorCode::InvalidRequest,
            Self::MissingVerifier | Self::MalformedVerifier | Self::VerifierMismatch => {
                ErrorCode::InvalidGrant
            }
        }
    }

    /// Whether the failure comes from the authorization endpoint (sent as an error redirect)
    /// rather than the token endpoint (sent as a JSON body).
    #[must_use]
    pub const fn is_authorization_error(&self) -> bool {
        matches!(
            self,
            Self::MissingChallenge
                | Self::UnsupportedMethod
                | Self::PlainNotAllowed
                | Self::MalformedChallenge { .. }
        )
    }

    /// The OAuth error response for this failure: its code, HTTP status 400 and a fixed,
    /// client-safe description.
    ///
    /// ```
    /// use portcullis_core::ErrorCode;
    /// use portcullis_pkce::PkceError;
    ///
    /// let e = PkceError::VerifierMismatch.oauth_error();
    /// assert_eq!(e.code(), ErrorCode::InvalidGrant);
    /// assert_eq!(e.status(), 400);
    /// ```
    #[must_use]
    pub fn oauth_error(&self) -> OAuthError {
        OAuthError::new(self.code()).with_description(self.description())
    }

    /// The description sent with the error.
    fn description(&self) -> ErrorDescription {
        match self {
            Self::MissingChallenge => MISSING_CHALLENGE,
            Self::UnsupportedMethod => UNSUPPORTED_METHOD,
            Self::PlainNotAllowed => PLAIN_NOT_ALLOWED,
            Self::MalformedChallenge {
                method: ChallengeMethod::S256,
            } => MALFORMED_S256_CHALLENGE,
            Self::MalformedChallenge {
                method: ChallengeMethod::Plain,
            } => MALFORMED_PLAIN_CHALLENGE,
            Self::MissingVerifier => MISSING_VERIFIER,
            Self::UnexpectedVerifier => UNEXPECTED_VERIFIER,
            Self::MalformedVerifier => MALFORMED_VERIFIER,
            Self::VerifierMismatch => VERIFIER_MISMATCH,
        }
    }
}
