//! The client's secret: the `code_verifier`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::SecretString;
use zeroize::{Zeroize as _, Zeroizing};

use crate::syntax::{self, GENERATED_VERIFIER_ENTROPY};
use crate::{CodeChallenge, PkceError};

/// A PKCE `code_verifier`: 43 to 128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1).
///
/// The verifier is the client's secret until it is sent to the token endpoint, so it is held
/// like one: its memory is zeroized on drop, `Debug` prints `CodeVerifier([REDACTED])`, and
/// there is no `Display`, `PartialEq` or `Clone`. Read it with
/// [`expose_secret`](Self::expose_secret) when building the token request.
///
/// ```
/// use portcullis_pkce::CodeVerifier;
///
/// let verifier = CodeVerifier::generate()?;
/// assert_eq!(verifier.expose_secret().len(), 43);
/// assert_eq!(format!("{verifier:?}"), "CodeVerifier([REDACTED])");
/// # Ok::<(), portcullis_pkce::GenerateError>(())
/// ```
///
/// ```compile_fail
/// # use portcullis_pkce::CodeVerifier;
/// let a = CodeVerifier::generate().unwrap();
/// let b = CodeVerifier::generate().unwrap();
/// let _ = a == b; // no PartialEq: a secret is compared in constant time, by verification
/// ```
///
/// ```compile_fail
/// # use portcullis_pkce::CodeVerifier;
/// println!("{}", CodeVerifier::generate().unwrap()); // no Display
/// ```
pub struct CodeVerifier(SecretString);

/// The operating system's random number generator failed, so no verifier was generated.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct GenerateError(#[source] getrandom::Error);

impl CodeVerifier {
    /// A new verifier: 32 octets from the operating system's CSPRNG, base64url-encoded without
    /// padding into 43 characters, as RFC 7636 §4.1 recommends (256 bits of entropy).
    ///
    /// # Errors
    /// [`GenerateError`] if the operating system cannot supply randomness.
    pub fn generate() -> Result<Self, GenerateError> {
        let mut entropy = Zeroizing::new([0u8; GENERATED_VERIFIER_ENTROPY]);
        getrandom::fill(entropy.as_mut_slice()).map_err(GenerateError)?;
        Ok(Self::from_entropy(&entropy))
    }

    /// The verifier that encodes `entropy` (used by [`generate`](Self::generate) and by tests
    /// with the RFC 7636 Appendix B octets).
    pub(crate) fn from_entropy(entropy: &[u8; GENERATED_VERIFIER_ENTROPY]) -> Self {
        // `encode` allocates the exact output length once, so no unzeroized copy is left behind.
        Self(SecretString::new(URL_SAFE_NO_PAD.encode(entropy)))
    }

    /// A verifier from its text, for example one a client loaded from its own storage.
    ///
    /// The string is taken by value so that it is zeroized whether or not it is accepted.
    /// A server checking a presented verifier does not need this: it passes the parameter to
    /// [`verify_token_request`](crate::verify_token_request) as a `&str`.
    ///
    /// # Errors
    /// [`PkceError::MalformedVerifier`] unless the text is 43 to 128 characters of
    /// `[A-Za-z0-9-._~]`.
    pub fn new(mut verifier: String) -> Result<Self, PkceError> {
        if syntax::is_verifier(verifier.as_bytes()) {
            Ok(Self(SecretString::new(verifier)))
        } else {
            verifier.zeroize();
            Err(PkceError::MalformedVerifier)
        }
    }

    /// The `S256` challenge for this verifier, `BASE64URL(SHA256(ASCII(verifier)))`
    /// (RFC 7636 §4.2), to send in the authorization request.
    #[must_use]
    pub fn challenge(&self) -> CodeChallenge {
        CodeChallenge::from_s256_verifier(self.expose_secret())
    }

    /// The verifier's text, to put in the token request. Every call site is a place where the
    /// secret leaves its wrapper: keep the borrow short and never log it.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeVerifier([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChallengeMethod;
    use proptest::prelude::*;

    /// RFC 7636 Appendix B: the 32 octets and the verifier they encode.
    const APPENDIX_B_OCTETS: [u8; 32] = [
        116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37,
        77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
    ];

    // covers 7636-B-a (the octets-to-verifier step; the challenge step is in tests/)
    #[test]
    fn appendix_b_octets_encode_to_the_verifier() {
        let v = CodeVerifier::from_entropy(&APPENDIX_B_OCTETS);
        assert_eq!(
            v.expose_secret(),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
        assert_eq!(
            v.challenge().as_str(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn generated_verifiers_are_well_formed_and_distinct() {
        let a = CodeVerifier::generate().unwrap();
        let b = CodeVerifier::generate().unwrap();
        assert_eq!(a.expose_secret().len(), 43);
        assert!(syntax::is_verifier(a.expose_secret().as_bytes()));
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn debug_is_redacted() {
        let v = CodeVerifier::from_entropy(&APPENDIX_B_OCTETS);
        let shown = format!("{v:?} {v:#?}");
        assert!(!shown.contains("dBjf"));
        assert_eq!(format!("{v:?}"), "CodeVerifier([REDACTED])");
    }

    proptest! {
        // A verifier from any 32 octets verifies against its own challenge and no other.
        #[test]
        fn verifies_against_own_challenge_only(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            let va = CodeVerifier::from_entropy(&a);
            let vb = CodeVerifier::from_entropy(&b);
            let ca = va.challenge();
            prop_assert_eq!(ca.method(), ChallengeMethod::S256);
            prop_assert_eq!(ca.verify(va.expose_secret()), Ok(()));
            prop_assert_eq!(vb.challenge().verify(vb.expose_secret()), Ok(()));
            if a != b {
                prop_assert_eq!(ca.verify(vb.expose_secret()), Err(PkceError::VerifierMismatch));
                prop_assert_eq!(vb.challenge().verify(va.expose_secret()), Err(PkceError::VerifierMismatch));
            }
        }
    }
}
