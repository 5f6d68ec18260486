//! The `code_challenge` a server stores with an authorization code.

use std::fmt;

use subtle::{Choice, ConstantTimeEq as _};

use crate::syntax::{self, SHA256_LEN};
use crate::{ChallengeMethod, PkceError};

/// A well-formed `code_challenge` together with its method.
///
/// What "well-formed" means depends on the method, so the two travel together:
///
/// - `S256`: the canonical 43-character unpadded base64url encoding of a SHA-256 digest
///   (RFC 7636 §4.2, RFC 4648 §5). Anything else could never match a verifier.
/// - `plain`: 43 to 128 characters of `[A-Za-z0-9-._~]`, the verifier grammar (RFC 7636 §4.2).
///
/// A server gets one from
/// [`PkcePolicy::validate_authorization_request`](crate::PkcePolicy::validate_authorization_request),
/// stores [`as_str`](Self::as_str) and [`method`](Self::method) with the authorization code, and
/// rebuilds it with [`CodeChallenge::new`] when the code comes back.
///
/// Equality is constant-time. A `plain` challenge *is* the verifier, so its `Debug` output
/// hides the value.
///
/// ```
/// use portcullis_pkce::{ChallengeMethod, CodeChallenge, PkceError};
///
/// let c = CodeChallenge::new("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", ChallengeMethod::S256)?;
/// assert_eq!(c.verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), Ok(()));
/// assert_eq!(
///     CodeChallenge::new("too-short", ChallengeMethod::S256),
///     Err(PkceError::MalformedChallenge { method: ChallengeMethod::S256 })
/// );
/// # Ok::<(), PkceError>(())
/// ```
#[derive(Clone)]
pub struct CodeChallenge {
    /// The challenge as sent and stored.
    value: String,
    /// What a verifier must transform to.
    expected: Expected,
}

/// What a verifier is compared with.
#[derive(Clone)]
enum Expected {
    /// The SHA-256 digest the `S256` challenge encodes (decoded once, here).
    S256([u8; SHA256_LEN]),
    /// The challenge itself.
    Plain,
}

impl CodeChallenge {
    /// A challenge from its text and method, for example as loaded from storage.
    ///
    /// # Errors
    /// [`PkceError::MalformedChallenge`] if the text does not fit the method (see the type's
    /// docs).
    pub fn new(value: impl Into<String>, method: ChallengeMethod) -> Result<Self, PkceError> {
        let value = value.into();
        let expected = match method {
            ChallengeMethod::S256 => {
                syntax::decode_s256_challenge(value.as_bytes()).map(Expected::S256)
            }
            ChallengeMethod::Plain => {
                syntax::is_verifier(value.as_bytes()).then_some(Expected::Plain)
            }
        };
        match expected {
            Some(expected) => Ok(Self { value, expected }),
            None => Err(PkceError::MalformedChallenge { method }),
        }
    }

    /// The `S256` challenge of a verifier the caller has already checked.
    pub(crate) fn from_s256_verifier(verifier: &str) -> Self {
        let digest = syntax::sha256(verifier.as_bytes());
        Self {
            value: syntax::s256_string(&digest),
            expected: Expected::S256(digest),
        }
    }

    /// The challenge text, as sent in the `code_challenge` parameter.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The challenge method.
    #[must_use]
    pub const fn method(&self) -> ChallengeMethod {
        match self.expected {
            Expected::S256(_) => ChallengeMethod::S256,
            Expected::Plain => ChallengeMethod::Plain,
        }
    }

    /// Check a presented `code_verifier` against this challenge (RFC 7636 §4.6), in constant
    /// time, without allocating and without consuming the challenge.
    ///
    /// For `S256` the verifier is hashed on the stack and its digest compared with the 32 octets
    /// the challenge encodes (decoded once, when the challenge was built). That is the RFC's
    /// `BASE64URL(SHA256(verifier)) == challenge` without the encoding step: only canonical
    /// encodings are accepted as challenges, so equal digests mean equal strings. For `plain`
    /// the verifier itself is compared with the challenge.
    ///
    /// A server normally calls [`verify_token_request`](crate::verify_token_request), which also
    /// handles a missing challenge or verifier.
    ///
    /// # Errors
    /// - [`PkceError::MalformedVerifier`] unless the verifier is 43 to 128 characters of
    ///   `[A-Za-z0-9-._~]` (checked first; the grammar is public, so this leaks nothing).
    /// - [`PkceError::VerifierMismatch`] if it does not transform to this challenge.
    pub fn verify(&self, code_verifier: &str) -> Result<(), PkceError> {
        let verifier = code_verifier.as_bytes();
        if !syntax::is_verifier(verifier) {
            return Err(PkceError::MalformedVerifier);
        }
        let matches: Choice = match &self.expected {
            Expected::S256(digest) => ct_eq(&syntax::sha256(verifier), digest),
            Expected::Plain => ct_eq(verifier, self.value.as_bytes()),
        };
        if bool::from(matches) {
            Ok(())
        } else {
            Err(PkceError::VerifierMismatch)
        }
    }
}

/// Constant-time equality of two byte strings (their lengths are not secret).
///
/// The bytes are folded into one difference word with XOR/OR, which has no data-dependent
/// branch, and only that word goes through [`subtle`]. Comparing byte by byte with `subtle`'s
/// slice `ct_eq` would be equally constant-time but puts an optimisation barrier on every byte,
/// which costs about as much as the SHA-256 it follows (about 70 ns for 43 bytes against 60 ns).
fn ct_eq(a: &[u8], b: &[u8]) -> Choice {
    if a.len() != b.len() {
        return Choice::from(0);
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    difference.ct_eq(&0)
}

impl PartialEq for CodeChallenge {
    /// Constant-time in the challenge text (a `plain` challenge is a verifier).
    fn eq(&self, other: &Self) -> bool {
        self.method() == other.method()
            && bool::from(ct_eq(self.value.as_bytes(), other.value.as_bytes()))
    }
}

impl Eq for CodeChallenge {}

impl fmt::Debug for CodeChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("CodeChallenge");
        d.field("method", &self.method());
        match self.expected {
            Expected::S256(_) => d.field("value", &self.value),
            Expected::Plain => d.field("value", &format_args!("[REDACTED]")),
        };
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const B_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn ct_eq_is_equality() {
        assert!(bool::from(ct_eq(b"", b"")));
        assert!(bool::from(ct_eq(b"abc", b"abc")));
        assert!(!bool::from(ct_eq(b"abc", b"abd")));
        assert!(!bool::from(ct_eq(b"abc", b"ab")));
        for i in 0..43 {
            let a = [b'x'; 43];
            let mut b = a;
            b[i] ^= 0x01;
            assert!(!bool::from(ct_eq(&a, &b)));
        }
    }

    #[test]
    fn plain_debug_is_redacted_s256_is_not() {
        let plain = CodeChallenge::new(B_VERIFIER, ChallengeMethod::Plain).unwrap();
        let shown = format!("{plain:?}");
        assert!(!shown.contains(B_VERIFIER), "{shown}");
        assert!(shown.contains("[REDACTED]"));
        let s256 = CodeChallenge::new(B_CHALLENGE, ChallengeMethod::S256).unwrap();
        assert!(format!("{s256:?}").contains(B_CHALLENGE));
    }

    #[test]
    fn equality_needs_same_method_and_value() {
        let a = CodeChallenge::new(B_CHALLENGE, ChallengeMethod::S256).unwrap();
        let b = CodeChallenge::new(B_CHALLENGE, ChallengeMethod::Plain).unwrap();
        assert_eq!(a, a.clone());
        assert_ne!(a, b);
    }

    #[test]
    fn plain_verifies_by_identity() {
        let c = CodeChallenge::new(B_VERIFIER, ChallengeMethod::Plain).unwrap();
        assert_eq!(c.verify(B_VERIFIER), Ok(()));
        let mut other = B_VERIFIER.to_owned();
        other.push('x');
        assert_eq!(c.verify(&other), Err(PkceError::VerifierMismatch));
    }

    #[test]
    fn s256_challenge_is_not_accepted_as_verifier_of_itself() {
        // A client replaying the challenge as the verifier must fail under S256.
        let c = CodeChallenge::new(B_CHALLENGE, ChallengeMethod::S256).unwrap();
        assert_eq!(c.verify(B_CHALLENGE), Err(PkceError::VerifierMismatch));
    }
}
