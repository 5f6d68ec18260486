//! The `code_challenge_method` parameter.

use std::fmt;
use std::str::FromStr;

use crate::PkceError;

/// A PKCE code challenge method (RFC 7636 §4.2; IANA "PKCE Code Challenge Methods").
///
/// Names are case-sensitive: `s256` is not `S256`.
///
/// ```
/// use portcullis_pkce::{ChallengeMethod, PkceError};
///
/// assert_eq!("S256".parse(), Ok(ChallengeMethod::S256));
/// assert_eq!("s256".parse::<ChallengeMethod>(), Err(PkceError::UnsupportedMethod));
/// // An absent parameter means plain (RFC 7636 §4.3).
/// assert_eq!(ChallengeMethod::from_param(None), Ok(ChallengeMethod::Plain));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChallengeMethod {
    /// `code_challenge = BASE64URL(SHA256(ASCII(code_verifier)))`, the method every server must
    /// implement (RFC 7636 §4.2) and the only one Portcullis accepts by default.
    S256,
    /// `code_challenge = code_verifier`. A challenge seen in the front channel is the verifier
    /// itself, so `plain` protects only against attackers who see the authorization response
    /// but not the request; OAuth 2.1 and RFC 9700 §2.1.1 steer servers away from it.
    Plain,
}

impl ChallengeMethod {
    /// The method's name on the wire: `"S256"` or `"plain"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::S256 => "S256",
            Self::Plain => "plain",
        }
    }

    /// The method named by an optional `code_challenge_method` parameter, without applying any
    /// policy.
    ///
    /// An absent parameter means `plain` (RFC 7636 §4.3), and so does an empty one, which
    /// OAuth treats as absent (RFC 6749 §3.1).
    ///
    /// # Errors
    /// [`PkceError::UnsupportedMethod`] for any other name.
    pub fn from_param(param: Option<&str>) -> Result<Self, PkceError> {
        match param {
            None | Some("") => Ok(Self::Plain),
            Some(name) => name.parse(),
        }
    }
}

impl FromStr for ChallengeMethod {
    type Err = PkceError;

    /// Exactly `S256` or `plain`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "S256" => Ok(Self::S256),
            "plain" => Ok(Self::Plain),
            _ => Err(PkceError::UnsupportedMethod),
        }
    }
}

impl fmt::Display for ChallengeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in [ChallengeMethod::S256, ChallengeMethod::Plain] {
            assert_eq!(m.as_str().parse(), Ok(m));
            assert_eq!(m.to_string(), m.as_str());
        }
    }

    // covers 7636-4.3-a
    #[test]
    fn absent_or_empty_means_plain() {
        assert_eq!(
            ChallengeMethod::from_param(None),
            Ok(ChallengeMethod::Plain)
        );
        assert_eq!(
            ChallengeMethod::from_param(Some("")),
            Ok(ChallengeMethod::Plain)
        );
    }

    #[test]
    fn unknown_and_miscased_names_are_unsupported() {
        for name in ["s256", "PLAIN", "Plain", "S512", "S256 ", " S256", "sha256"] {
            assert_eq!(
                ChallengeMethod::from_param(Some(name)),
                Err(PkceError::UnsupportedMethod),
                "{name:?}"
            );
        }
    }
}
