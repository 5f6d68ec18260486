//! OAuth error codes, their HTTP statuses and their JSON bodies, in one place.

use std::fmt;
use std::str::FromStr;

/// An OAuth error code, as sent in the `error` member of a JSON body, the `error` query
/// parameter of an authorization error redirect, or the `error` attribute of a
/// `WWW-Authenticate: Bearer` challenge.
///
/// Every code any Portcullis crate produces is here, with its source. The server never invents
/// a code: crate errors map to one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1: a required parameter is missing, a parameter is
    /// repeated or malformed, or the request is otherwise malformed.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed.
    InvalidClient,
    /// RFC 6749 §5.2: the grant (code or refresh token) is invalid, expired, revoked, was issued to
    /// another client, or does not match the redirect URI or PKCE verifier.
    InvalidGrant,
    /// RFC 6749 §4.1.2.1, §5.2: the client may not use this grant or response type.
    UnauthorizedClient,
    /// RFC 6749 §5.2: the grant type is not supported.
    UnsupportedGrantType,
    /// RFC 6749 §4.1.2.1, §5.2: the scope is invalid, unknown, or wider than granted.
    InvalidScope,
    /// RFC 6749 §4.1.2.1: the resource owner or server denied the request.
    AccessDenied,
    /// RFC 6749 §4.1.2.1: the response type is not supported.
    UnsupportedResponseType,
    /// RFC 6749 §4.1.2.1: an unexpected condition (the redirect form of a 500).
    ServerError,
    /// RFC 6749 §4.1.2.1: the server is temporarily unable to handle the request.
    TemporarilyUnavailable,
    /// RFC 6750 §3.1: the access token is expired, revoked, malformed or otherwise invalid.
    InvalidToken,
    /// RFC 6750 §3.1: the token lacks the scope the resource requires.
    InsufficientScope,
    /// RFC 7009 §2.2.1: the server cannot revoke tokens of the given type.
    UnsupportedTokenType,
    /// RFC 7591 §3.2.2: a redirect URI in a registration request is invalid.
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2: a client metadata field is invalid.
    InvalidClientMetadata,
    /// RFC 7591 §3.2.2: the software statement is invalid.
    InvalidSoftwareStatement,
    /// RFC 7591 §3.2.2: the software statement is not approved.
    UnapprovedSoftwareStatement,
    /// RFC 8707 §2: the requested resource is invalid, unknown or malformed.
    InvalidTarget,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [Self; 18] = [
        Self::InvalidRequest,
        Self::InvalidClient,
        Self::InvalidGrant,
        Self::UnauthorizedClient,
        Self::UnsupportedGrantType,
        Self::InvalidScope,
        Self::AccessDenied,
        Self::UnsupportedResponseType,
        Self::ServerError,
        Self::TemporarilyUnavailable,
        Self::InvalidToken,
        Self::InsufficientScope,
        Self::UnsupportedTokenType,
        Self::InvalidRedirectUri,
        Self::InvalidClientMetadata,
        Self::InvalidSoftwareStatement,
        Self::UnapprovedSoftwareStatement,
        Self::InvalidTarget,
    ];

    /// The code as it appears on the wire, e.g. `"invalid_grant"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidSoftwareStatement => "invalid_software_statement",
            Self::UnapprovedSoftwareStatement => "unapproved_software_statement",
            Self::InvalidTarget => "invalid_target",
        }
    }

    /// The HTTP status this code is sent with when it is a response body (not a redirect).
    ///
    /// - `invalid_client` and `invalid_token`: 401 (RFC 6749 §5.2 requires 401 when the client
    ///   authenticated with the `Authorization` header, and allows it otherwise; RFC 6750 §3.1).
    /// - `insufficient_scope`: 403 (RFC 6750 §3.1).
    /// - `server_error`: 500 and `temporarily_unavailable`: 503, their HTTP equivalents
    ///   (RFC 6749 §4.1.2.1 notes they exist because a redirect cannot carry a status).
    /// - everything else: 400.
    #[must_use]
    pub const fn http_status(self) -> u16 {
        match self {
            Self::InvalidClient | Self::InvalidToken => 401,
            Self::InsufficientScope => 403,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }

    /// Whether RFC 6749 §4.1.2.1 (with RFC 8707 and OAuth 2.1) allows this code in an
    /// authorization error redirect.
    #[must_use]
    pub const fn allowed_in_authorization_response(self) -> bool {
        matches!(
            self,
            Self::InvalidRequest
                | Self::UnauthorizedClient
                | Self::AccessDenied
                | Self::UnsupportedResponseType
                | Self::InvalidScope
                | Self::ServerError
                | Self::TemporarilyUnavailable
                | Self::InvalidTarget
        )
    }

    /// Whether RFC 6749 §5.2 (with RFC 8707) allows this code in a token endpoint error.
    #[must_use]
    pub const fn allowed_in_token_response(self) -> bool {
        matches!(
            self,
            Self::InvalidRequest
                | Self::InvalidClient
                | Self::InvalidGrant
                | Self::UnauthorizedClient
                | Self::UnsupportedGrantType
                | Self::InvalidScope
                | Self::InvalidTarget
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the known error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown OAuth error code")]
pub struct UnknownErrorCode;

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or(UnknownErrorCode)
    }
}

/// Why a string cannot be an [`ErrorDescription`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "error descriptions may only contain the characters %x20-21 / %x23-5B / %x5D-7E (byte {position} is not allowed)"
)]
pub struct InvalidDescription {
    /// The byte offset of the first character that is not allowed.
    pub position: usize,
}

/// A human-readable `error_description`, restricted by construction to the characters RFC 6749
/// §5.2 allows: `%x20-21 / %x23-5B / %x5D-7E` (printable ASCII without `"` and `\`).
///
/// Because `"`, `\` and control characters cannot occur, the description can be written into a
/// JSON string, a query parameter (after percent-encoding) or a `WWW-Authenticate` quoted string
/// without escaping (STANDARDS `6749-5.2-a`).
///
/// ```
/// use portcullis_core::ErrorDescription;
///
/// assert!(ErrorDescription::new("code_verifier is required").is_ok());
/// assert!(ErrorDescription::new("bad \"quote\"").is_err());
/// assert_eq!(ErrorDescription::lossy("naïve\n").as_str(), "na?ve?");
/// const D: ErrorDescription = ErrorDescription::from_static("checked at compile time");
/// ```
///
/// A description with a forbidden character in a `const` fails to compile:
///
/// ```compile_fail
/// use portcullis_core::ErrorDescription;
/// const D: ErrorDescription = ErrorDescription::from_static("no \"quotes\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorDescription(std::borrow::Cow<'static, str>);

/// RFC 6749 §5.2: `error_description = 1*( %x20-21 / %x23-5B / %x5D-7E )`.
const fn allowed(b: u8) -> bool {
    matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// The byte offset of the first disallowed byte, if any.
const fn first_disallowed(bytes: &[u8]) -> Option<usize> {
    let mut rest = bytes;
    let mut i = 0;
    while let [b, tail @ ..] = rest {
        if !allowed(*b) {
            return Some(i);
        }
        rest = tail;
        i += 1;
    }
    None
}

impl ErrorDescription {
    /// A description, if every character is allowed.
    ///
    /// # Errors
    /// [`InvalidDescription`] with the offset of the first character that is not allowed
    /// (an empty string is refused at offset 0: the grammar requires at least one character).
    pub fn new(s: impl Into<String>) -> Result<Self, InvalidDescription> {
        let s = s.into();
        if s.is_empty() {
            return Err(InvalidDescription { position: 0 });
        }
        match first_disallowed(s.as_bytes()) {
            Some(position) => Err(InvalidDescription { position }),
            None => Ok(Self(std::borrow::Cow::Owned(s))),
        }
    }

    /// A description from a literal, checked when evaluated; in a `const` item a bad literal is
    /// a compile error.
    ///
    /// # Panics
    /// If the literal is empty or holds a character RFC 6749 §5.2 does not allow.
    #[must_use]
    #[allow(clippy::panic)] // a bad literal is a programming error, caught at compile time in const
    pub const fn from_static(s: &'static str) -> Self {
        if s.is_empty() || first_disallowed(s.as_bytes()).is_some() {
            panic!("error description holds a character RFC 6749 §5.2 does not allow");
        }
        Self(std::borrow::Cow::Borrowed(s))
    }

    /// A description from any text, replacing each disallowed character with `?` (an empty
    /// string becomes `"?"`). For text that is not fully under the caller's control.
    #[must_use]
    pub fn lossy(s: &str) -> Self {
        let mut out: String = s
            .chars()
            .map(|c| {
                u8::try_from(c)
                    .ok()
                    .filter(|b| allowed(*b))
                    .map_or('?', char::from)
            })
            .collect();
        if out.is_empty() {
            out.push('?');
        }
        Self(std::borrow::Cow::Owned(out))
    }

    /// The description text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ErrorDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An OAuth error response: a code, an optional description and the HTTP status to send.
///
/// ```
/// use portcullis_core::{ErrorCode, OAuthError};
///
/// let e = OAuthError::new(ErrorCode::InvalidClient);
/// assert_eq!(e.status(), 401);
/// assert_eq!(e.to_json(), r#"{"error":"invalid_client"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    code: ErrorCode,
    description: Option<ErrorDescription>,
    status: u16,
}

impl OAuthError {
    /// An error with the code's default status ([`ErrorCode::http_status`]) and no description.
    #[must_use]
    pub const fn new(code: ErrorCode) -> Self {
        Self {
            code,
            description: None,
            status: code.http_status(),
        }
    }

    /// This error with a description.
    #[must_use]
    pub fn with_description(mut self, description: ErrorDescription) -> Self {
        self.description = Some(description);
        self
    }

    /// This error with a description from a literal (see [`ErrorDescription::from_static`]).
    #[must_use]
    pub fn describe(self, description: &'static str) -> Self {
        self.with_description(ErrorDescription::from_static(description))
    }

    /// This error sent with another status, for the few places the RFCs allow a choice (for
    /// example `invalid_client` after failed body authentication may be 400, RFC 6749 §5.2).
    #[must_use]
    pub const fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The error code.
    #[must_use]
    pub const fn code(&self) -> ErrorCode {
        self.code
    }

    /// The description, if any.
    #[must_use]
    pub const fn description(&self) -> Option<&ErrorDescription> {
        self.description.as_ref()
    }

    /// The HTTP status to send.
    #[must_use]
    pub const fn status(&self) -> u16 {
        self.status
    }

    /// The JSON body: `{"error":"…"}` or `{"error":"…","error_description":"…"}`.
    ///
    /// Neither the code nor the description can contain a character that needs escaping in JSON,
    /// so the body is written directly.
    #[must_use]
    pub fn to_json(&self) -> String {
        match &self.description {
            None => format!(r#"{{"error":"{}"}}"#, self.code.as_str()),
            Some(d) => format!(
                r#"{{"error":"{}","error_description":"{}"}}"#,
                self.code.as_str(),
                d.as_str()
            ),
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.description {
            None => f.write_str(self.code.as_str()),
            Some(d) => write!(f, "{}: {}", self.code.as_str(), d.as_str()),
        }
    }
}

impl std::error::Error for OAuthError {}

impl From<ErrorCode> for OAuthError {
    fn from(code: ErrorCode) -> Self {
        Self::new(code)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for OAuthError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map =
            serializer.serialize_map(Some(1 + usize::from(self.description.is_some())))?;
        map.serialize_entry("error", self.code.as_str())?;
        if let Some(d) = &self.description {
            map.serialize_entry("error_description", d.as_str())?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()));
            assert_eq!(c.as_str().parse::<ErrorCode>(), Ok(c));
            // codes themselves are valid description characters (no escaping needed anywhere)
            assert!(ErrorDescription::new(c.as_str()).is_ok());
        }
        assert!("not_a_code".parse::<ErrorCode>().is_err());
    }

    #[test]
    fn statuses() {
        assert_eq!(ErrorCode::InvalidGrant.http_status(), 400);
        assert_eq!(ErrorCode::InvalidClient.http_status(), 401);
        assert_eq!(ErrorCode::InvalidToken.http_status(), 401);
        assert_eq!(ErrorCode::InsufficientScope.http_status(), 403);
        assert_eq!(ErrorCode::ServerError.http_status(), 500);
        assert_eq!(ErrorCode::TemporarilyUnavailable.http_status(), 503);
        assert_eq!(ErrorCode::UnsupportedTokenType.http_status(), 400);
        assert_eq!(ErrorCode::InvalidTarget.http_status(), 400);
        assert_eq!(
            OAuthError::new(ErrorCode::InvalidClient)
                .with_status(400)
                .status(),
            400
        );
    }

    #[test]
    fn response_kinds() {
        assert!(ErrorCode::AccessDenied.allowed_in_authorization_response());
        assert!(!ErrorCode::InvalidGrant.allowed_in_authorization_response());
        assert!(ErrorCode::InvalidGrant.allowed_in_token_response());
        assert!(!ErrorCode::AccessDenied.allowed_in_token_response());
    }

    // covers 6749-5.2-a
    #[test]
    fn description_charset_is_enforced() {
        assert!(ErrorDescription::new("").is_err());
        assert_eq!(
            ErrorDescription::new("a\"b"),
            Err(InvalidDescription { position: 1 })
        );
        assert!(ErrorDescription::new("a\\b").is_err());
        assert!(ErrorDescription::new("tab\there").is_err());
        assert!(ErrorDescription::new("é").is_err());
        assert!(ErrorDescription::new("ok: [1] {2} ~!#$%&'()*+,-./").is_ok());
    }

    #[test]
    fn json_body() {
        let e = OAuthError::new(ErrorCode::InvalidScope).describe("scope is wider than granted");
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["error"], "invalid_scope");
        assert_eq!(v["error_description"], "scope is wider than granted");
        assert_eq!(e.to_string(), "invalid_scope: scope is wider than granted");
    }

    proptest! {
        // covers 6749-5.2-a: whatever text goes in, the description obeys the grammar and the
        // body is valid JSON that round-trips.
        #[test]
        fn lossy_descriptions_are_always_valid(s in any::<String>()) {
            let d = ErrorDescription::lossy(&s);
            prop_assert!(ErrorDescription::new(d.as_str()).is_ok());
            let e = OAuthError::new(ErrorCode::InvalidRequest).with_description(d.clone());
            let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
            prop_assert_eq!(v["error_description"].as_str(), Some(d.as_str()));
        }

        #[test]
        fn new_accepts_exactly_the_grammar(s in any::<String>()) {
            let ok = !s.is_empty() && s.bytes().all(allowed);
            prop_assert_eq!(ErrorDescription::new(s).is_ok(), ok);
        }
    }
}
