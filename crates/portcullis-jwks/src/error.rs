//! Errors, and their mapping to OAuth error responses in one place.

use std::fmt;

use portcullis_core::{ErrorCode, OAuthError};

/// Why a token was rejected.
///
/// Every variant maps to an RFC 6750 error through [`VerifyError::oauth_error`]: a bad token is
/// `invalid_token` (401); keys that cannot be had because the identity provider is down are
/// `temporarily_unavailable` (503), so a server tells "your token is bad" apart from "we cannot
/// check it right now". The `Display` text is for logs: it never contains the token, and the
/// client-facing description from `oauth_error` never contains internal detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The token is not a well-formed compact JWS/JWT.
    #[error("malformed token: {0}")]
    Malformed(Malformed),
    /// The token is longer than the configured maximum; it was refused before any decoding.
    #[error("token is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// The token's length in bytes.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// No key in the identity provider's set matches the token's `kid` (or, without a `kid`, no
    /// single key fits its algorithm).
    #[error("no key of the identity provider matches the token")]
    UnknownKey,
    /// The `alg` header names an algorithm that is not on the allow-list (this includes `none`
    /// and every HMAC algorithm, which are never allowed).
    #[error("token algorithm is not allowed")]
    DisallowedAlgorithm,
    /// The key named by `kid` exists but is not for the token's algorithm (the key's own `alg`,
    /// `kty` or curve disagrees with the header).
    #[error("the key named by the token is not for the token's algorithm")]
    KeyMismatch,
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("token is not yet valid")]
    NotYetValid,
    /// `iss` is missing or is not the configured issuer.
    #[error("token issuer is not the expected one")]
    WrongIssuer,
    /// `aud` is missing or names none of the configured audiences.
    #[error("token audience is not an expected one")]
    WrongAudience,
    /// A claim the verifier requires is missing.
    #[error("required claim `{0}` is missing")]
    MissingClaim(&'static str),
    /// The `typ` header is not accepted by the verifier's type rule (for example an access token
    /// presented where a session token is expected).
    #[error("token type is not accepted")]
    WrongType,
    /// The token has a `crit` header; no extension is understood, so it is rejected
    /// (RFC 7515 §4.1.11).
    #[error("token has a critical header extension")]
    CriticalHeader,
    /// The identity provider's keys could not be obtained (it is down, or served something that
    /// is not a usable JWKS) and no cached keys are usable.
    #[error("identity provider keys are unavailable: {0}")]
    KeysUnavailable(#[source] FetchError),
}

/// Which part of a token is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// Not three dot-separated parts, or an empty header or payload.
    Structure,
    /// No signature: the third part is empty (an unsigned token).
    MissingSignature,
    /// A part is not unpadded base64url.
    Encoding,
    /// The header is not a JSON object with a string `alg`, or has a duplicate or mistyped member.
    Header,
    /// The claims are not a JSON object of the expected shape (including the caller's type).
    Claims,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Structure => "not a compact JWS of three parts",
            Self::MissingSignature => "the signature is missing",
            Self::Encoding => "a part is not base64url",
            Self::Header => "the header is not valid",
            Self::Claims => "the claims are not valid",
        })
    }
}

impl VerifyError {
    /// The OAuth error to answer with (RFC 6750 §3.1): `invalid_token` (401) for every rejection
    /// of the token itself, `temporarily_unavailable` (503) when the keys are unavailable.
    ///
    /// The description is generic on purpose: it tells a client its token expired (so it can
    /// refresh), and nothing else about why a token was refused.
    ///
    /// ```
    /// use portcullis_jwks::VerifyError;
    ///
    /// let e = VerifyError::Expired.oauth_error();
    /// assert_eq!(e.status(), 401);
    /// assert_eq!(e.to_json(), r#"{"error":"invalid_token","error_description":"the token has expired"}"#);
    /// assert_eq!(VerifyError::BadSignature.oauth_error().code().as_str(), "invalid_token");
    /// ```
    #[must_use]
    pub fn oauth_error(&self) -> OAuthError {
        match self {
            Self::KeysUnavailable(_) => OAuthError::new(ErrorCode::TemporarilyUnavailable)
                .describe("token verification is temporarily unavailable"),
            Self::Expired => {
                OAuthError::new(ErrorCode::InvalidToken).describe("the token has expired")
            }
            Self::Malformed(_)
            | Self::TooLarge { .. }
            | Self::UnknownKey
            | Self::DisallowedAlgorithm
            | Self::KeyMismatch
            | Self::BadSignature
            | Self::NotYetValid
            | Self::WrongIssuer
            | Self::WrongAudience
            | Self::MissingClaim(_)
            | Self::WrongType
            | Self::CriticalHeader => {
                OAuthError::new(ErrorCode::InvalidToken).describe("the token is invalid")
            }
        }
    }

    /// Whether the failure is on our side (the keys are unavailable) rather than the token's:
    /// the same token may verify later.
    #[must_use]
    pub const fn is_unavailable(&self) -> bool {
        matches!(self, Self::KeysUnavailable(_))
    }
}

/// Why the JWKS could not be fetched or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The request did not complete in time.
    #[error("the request timed out")]
    Timeout,
    /// The connection or the HTTP exchange failed.
    #[error("transport error: {0}")]
    Transport(String),
    /// The response status was not 200.
    #[error("unexpected HTTP status {0}")]
    Status(u16),
    /// The response was not JSON (`Content-Type` not `application/json`,
    /// `application/jwk-set+json` or another `+json` type).
    #[error("the response is not JSON")]
    NotJson,
    /// The body was larger than the configured cap.
    #[error("the response is larger than {max} bytes")]
    TooLarge {
        /// The configured cap in bytes.
        max: usize,
    },
    /// The body is not a JWKS (`{"keys": [...]}`).
    #[error("the response is not a JWK set: {0}")]
    InvalidJwks(String),
    /// The JWKS parsed, but none of its keys is usable (each was skipped; see
    /// [`JwksCache::skipped_keys`](crate::JwksCache::skipped_keys) for the last set that had any).
    #[error("the JWK set has no usable key ({} skipped)", skipped.len())]
    NoUsableKeys {
        /// The keys that were skipped, and why.
        skipped: Vec<crate::keys::SkippedKey>,
    },
    /// A fetch failed recently and the cooldown has not passed, so no new request was made; this
    /// is the error of that failed fetch.
    #[error("cooling down after a failed fetch: {0}")]
    CoolingDown(Box<Self>),
    /// The fetch was abandoned before it finished (its task was cancelled).
    #[error("the fetch was abandoned")]
    Abandoned,
}

/// A verifier or source that cannot be built as configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The URL does not parse.
    #[error("invalid URL")]
    InvalidUrl,
    /// The JWKS URL is not `https` (plain `http` is only allowed to a loopback address).
    #[error("the JWKS URL must use https (http is only allowed to a loopback address)")]
    InsecureUrl,
    /// No audience was configured: `aud` must be checked (RFC 8725 §3.9).
    #[error("at least one audience must be configured")]
    NoAudience,
    /// The issuer is empty.
    #[error("the issuer must not be empty")]
    NoIssuer,
    /// The algorithm allow-list is empty.
    #[error("the algorithm allow-list is empty")]
    NoAlgorithms,
    /// The leeway is larger than [`MAX_LEEWAY`](crate::defaults::MAX_LEEWAY).
    #[error("the leeway is larger than the maximum of five minutes")]
    LeewayTooLarge,
    /// A cache duration is inconsistent (for example the minimum TTL above the maximum).
    #[error("inconsistent cache durations: {0}")]
    Cache(&'static str),
    /// A limit is zero.
    #[error("a size limit must not be zero")]
    ZeroLimit,
    /// Neither a JWKS URL nor a key source was given (only possible without the `http` feature).
    #[error("no key source configured")]
    NoKeySource,
    /// The HTTP client could not be built.
    #[error("the HTTP client could not be built: {0}")]
    HttpClient(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rejection_is_invalid_token_and_unavailable_is_503() {
        let rejections = [
            VerifyError::Malformed(Malformed::Structure),
            VerifyError::TooLarge { len: 9, max: 8 },
            VerifyError::UnknownKey,
            VerifyError::DisallowedAlgorithm,
            VerifyError::KeyMismatch,
            VerifyError::BadSignature,
            VerifyError::Expired,
            VerifyError::NotYetValid,
            VerifyError::WrongIssuer,
            VerifyError::WrongAudience,
            VerifyError::MissingClaim("sub"),
            VerifyError::WrongType,
            VerifyError::CriticalHeader,
        ];
        for e in rejections {
            let o = e.oauth_error();
            assert_eq!(o.code(), ErrorCode::InvalidToken, "{e}");
            assert_eq!(o.status(), 401);
            assert!(!e.is_unavailable());
        }
        let down = VerifyError::KeysUnavailable(FetchError::Status(502));
        assert!(down.is_unavailable());
        let o = down.oauth_error();
        assert_eq!(o.code(), ErrorCode::TemporarilyUnavailable);
        assert_eq!(o.status(), 503);
        // No internal detail (the upstream status) reaches the client.
        assert!(!o.to_json().contains("502"));
    }
}
