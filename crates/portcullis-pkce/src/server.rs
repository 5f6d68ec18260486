//! The two checks an authorization server makes: at `/authorize` and at `/token`.

use crate::{ChallengeMethod, CodeChallenge, PkceError};

/// Which challenge methods an authorization server accepts at `/authorize`.
///
/// The default accepts only `S256`: OAuth 2.1 and RFC 9700 §2.1.1 steer servers away from
/// `plain`, and since an absent `code_challenge_method` means `plain` (RFC 7636 §4.3), an
/// S256-only server also refuses requests that leave the method out. Allowing `plain` is an
/// explicit, greppable decision:
///
/// ```
/// use portcullis_pkce::PkcePolicy;
///
/// assert!(!PkcePolicy::default().allows_plain());
/// assert_eq!(PkcePolicy::default(), PkcePolicy::S256_ONLY);
/// let legacy = PkcePolicy::S256_ONLY.allow_plain(true);
/// assert!(legacy.allows_plain());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PkcePolicy {
    allow_plain: bool,
}

impl PkcePolicy {
    /// Accept only `S256` (the default).
    pub const S256_ONLY: Self = Self { allow_plain: false };

    /// This policy, with `plain` allowed or not.
    #[must_use]
    pub const fn allow_plain(self, allow: bool) -> Self {
        Self { allow_plain: allow }
    }

    /// Whether `plain` is accepted.
    #[must_use]
    pub const fn allows_plain(self) -> bool {
        self.allow_plain
    }

    /// The method named by an optional `code_challenge_method` parameter, if this policy
    /// accepts it. Absent (or empty) means `plain` (RFC 7636 §4.3).
    ///
    /// # Errors
    /// - [`PkceError::UnsupportedMethod`] for a name other than `S256` or `plain`.
    /// - [`PkceError::PlainNotAllowed`] for `plain`, or no method, when `plain` is not allowed.
    pub fn method(self, code_challenge_method: Option<&str>) -> Result<ChallengeMethod, PkceError> {
        match ChallengeMethod::from_param(code_challenge_method)? {
            ChallengeMethod::Plain if !self.allow_plain => Err(PkceError::PlainNotAllowed),
            method => Ok(method),
        }
    }

    /// The `/authorize` check (RFC 7636 §4.4.1): the request's `code_challenge` and
    /// `code_challenge_method` parameters, as the challenge to store with the code.
    ///
    /// Pass each parameter as received (`None` when absent; an empty value counts as absent,
    /// RFC 6749 §3.1). A server calls this once it has validated the client and redirect URI,
    /// and sends a failure as an error redirect
    /// ([`PkceError::oauth_error`]; every failure here is `invalid_request`).
    ///
    /// # Errors
    /// In this order:
    /// - [`PkceError::MissingChallenge`]: no `code_challenge`.
    /// - [`PkceError::UnsupportedMethod`]: a method other than `S256` or `plain`.
    /// - [`PkceError::PlainNotAllowed`]: `plain`, or no method, and this policy refuses `plain`.
    /// - [`PkceError::MalformedChallenge`]: the challenge does not fit its method.
    pub fn validate_authorization_request(
        self,
        code_challenge: Option<&str>,
        code_challenge_method: Option<&str>,
    ) -> Result<CodeChallenge, PkceError> {
        let challenge = match code_challenge {
            None | Some("") => return Err(PkceError::MissingChallenge),
            Some(c) => c,
        };
        let method = self.method(code_challenge_method)?;
        CodeChallenge::new(challenge, method)
    }
}

/// The `/token` check: the challenge stored with the authorization code against the request's
/// `code_verifier` parameter.
///
/// `code_verifier` must be present exactly when a challenge was stored (RFC 9700 §2.1.1 and
/// §4.8.2, OAuth 2.1 §4.1.3); an empty parameter counts as absent (RFC 6749 §3.1).
///
/// | stored challenge | `code_verifier` | result |
/// |---|---|---|
/// | some | matches | `Ok(())` |
/// | some | absent | [`PkceError::MissingVerifier`] (`invalid_grant`) |
/// | some | malformed | [`PkceError::MalformedVerifier`] (`invalid_grant`) |
/// | some | does not match | [`PkceError::VerifierMismatch`] (`invalid_grant`) |
/// | none | present | [`PkceError::UnexpectedVerifier`] (`invalid_request`) |
/// | none | absent | `Ok(())`: PKCE was not used for this code |
///
/// The stored challenge is borrowed, not consumed. **Discard it (with the code) only after this
/// returns `Ok`.** A server that removes the challenge first and then fails the request leaves
/// a code without a challenge, which the next request can redeem with no verifier at all: a
/// PKCE downgrade.
///
/// The last row is not a loophole only if challenges are never lost: with
/// [`PkcePolicy::validate_authorization_request`] every code is issued with one, so a code
/// without a stored challenge exists only if the server issued it without PKCE on purpose.
///
/// # Errors
/// As in the table.
///
/// ```
/// use portcullis_core::ErrorCode;
/// use portcullis_pkce::{CodeVerifier, PkceError, verify_token_request};
///
/// let verifier = CodeVerifier::generate()?;
/// let stored = verifier.challenge();
/// assert_eq!(verify_token_request(Some(&stored), Some(verifier.expose_secret())), Ok(()));
///
/// let err = verify_token_request(Some(&stored), None).unwrap_err();
/// assert_eq!(err, PkceError::MissingVerifier);
/// assert_eq!(err.oauth_error().code(), ErrorCode::InvalidGrant);
///
/// let err = verify_token_request(None, Some(verifier.expose_secret())).unwrap_err();
/// assert_eq!(err.oauth_error().code(), ErrorCode::InvalidRequest);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify_token_request(
    stored_challenge: Option<&CodeChallenge>,
    code_verifier: Option<&str>,
) -> Result<(), PkceError> {
    let code_verifier = code_verifier.filter(|v| !v.is_empty());
    match (stored_challenge, code_verifier) {
        (Some(challenge), Some(verifier)) => challenge.verify(verifier),
        (Some(_), None) => Err(PkceError::MissingVerifier),
        (None, Some(_)) => Err(PkceError::UnexpectedVerifier),
        (None, None) => Ok(()),
    }
}
