//! Proof Key for Code Exchange (RFC 7636) for OAuth 2.1 clients and authorization servers.
//!
//! An authorization code travels through the browser, where it can be intercepted. PKCE binds
//! the code to a secret that never does: the client makes up a random [`CodeVerifier`], sends
//! only its [`CodeChallenge`] (`BASE64URL(SHA256(verifier))`) in the authorization request, and
//! proves possession of the verifier when it redeems the code. A stolen code is useless without
//! the verifier.
//!
//! # Client side
//!
//! [`CodeVerifier::generate`] draws 32 octets from the operating system's CSPRNG and encodes
//! them as the 43-character verifier RFC 7636 §4.1 recommends. The verifier is a secret until
//! it is used: it is zeroized on drop, its `Debug` is redacted, and it has no `Display` or
//! `PartialEq`. [`CodeVerifier::challenge`] derives the `S256` challenge to send.
//!
//! # Server side
//!
//! Two functions, one per endpoint, each returning a [`PkceError`] whose
//! [`oauth_error`](PkceError::oauth_error) is the exact response to send:
//!
//! - At `/authorize`, [`PkcePolicy::validate_authorization_request`] turns the
//!   `code_challenge` and `code_challenge_method` parameters into a [`CodeChallenge`] to store
//!   with the code. A missing challenge, an unknown method, `plain` when the policy refuses it
//!   (and a missing method *is* `plain`, RFC 7636 §4.3), or a challenge that does not fit its
//!   method are all `invalid_request` (RFC 7636 §4.4.1). The default policy is S256-only.
//! - At `/token`, [`verify_token_request`] checks the stored challenge (if any) against the
//!   `code_verifier` parameter (if any). A verifier must be present exactly when a challenge was
//!   stored: a missing verifier is `invalid_grant` (RFC 9700 §2.1.1), a verifier for a code
//!   issued without a challenge is `invalid_request` (RFC 9700 §4.8.2, OAuth 2.1), and a
//!   malformed or mismatched verifier is `invalid_grant` (RFC 7636 §4.6). The table on
//!   [`PkceError`] lists every failure, its code and why.
//!
//! The comparison is constant-time ([`subtle`]) and allocation-free: the verifier is hashed on
//! the stack and its digest compared with the one the stored `S256` challenge encodes, which
//! was decoded once when the challenge was built.
//!
//! # Discard the challenge only after a successful verification
//!
//! Verification borrows the stored challenge; it never consumes it. That is deliberate. A
//! server must remove the stored challenge (together with the code, which is single-use anyway)
//! **only after** [`verify_token_request`] returned `Ok`. A popular framework once discarded
//! the challenge as soon as the code was looked up: a request with a wrong verifier failed, but
//! left behind a code with no challenge, and the next request redeemed it with no verifier at
//! all. On failure, either leave the code and its challenge as they were or revoke the code
//! outright; never leave a code that has lost its challenge.
//!
//! # Example
//!
//! ```
//! use portcullis_core::ErrorCode;
//! use portcullis_pkce::{ChallengeMethod, CodeChallenge, CodeVerifier, PkcePolicy, verify_token_request};
//!
//! // Client: a fresh verifier per authorization request, and its S256 challenge.
//! let verifier = CodeVerifier::generate()?;
//! let challenge = verifier.challenge();
//! let (code_challenge, code_challenge_method) = (challenge.as_str(), challenge.method().as_str());
//! assert_eq!(code_challenge_method, "S256");
//!
//! // Server, at /authorize: validate the parameters and store the challenge with the code.
//! let policy = PkcePolicy::default(); // S256 only
//! let stored = policy.validate_authorization_request(Some(code_challenge), Some(code_challenge_method))?;
//! let (stored_value, stored_method) = (stored.as_str().to_owned(), stored.method());
//!
//! // An S256-only server refuses a request without a method: absent means plain.
//! let refused = policy.validate_authorization_request(Some(code_challenge), None).unwrap_err();
//! assert_eq!(refused.oauth_error().code(), ErrorCode::InvalidRequest);
//!
//! // Server, at /token: load the challenge stored with the code and check the verifier.
//! let stored = CodeChallenge::new(stored_value, stored_method)?;
//! let wrong = CodeVerifier::generate()?;
//! let err = verify_token_request(Some(&stored), Some(wrong.expose_secret())).unwrap_err();
//! assert_eq!(err.oauth_error().code(), ErrorCode::InvalidGrant);
//! // The failed attempt did not consume the stored challenge, so the code is still bound to it.
//! verify_token_request(Some(&stored), Some(verifier.expose_secret()))?;
//! // Only now delete the code and its challenge, and issue tokens.
//! # let _ = ChallengeMethod::S256;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Standards
//!
//! RFC 7636 §4.1 (verifier grammar), §4.2 (S256, Appendix B test vector), §4.3 (absent method
//! means `plain`), §4.4.1 and §4.6 (error codes); RFC 9700 §2.1.1 and §4.8.2 (PKCE downgrade);
//! OAuth 2.1 §4.1.3 (a verifier exactly when a challenge was sent).
#![forbid(unsafe_code)]

mod challenge;
mod error;
mod method;
mod server;
mod syntax;
mod verifier;

pub use challenge::CodeChallenge;
pub use error::PkceError;
pub use method::ChallengeMethod;
pub use server::{PkcePolicy, verify_token_request};
pub use syntax::{
    GENERATED_VERIFIER_ENTROPY, S256_CHALLENGE_LEN, VERIFIER_MAX_LEN, VERIFIER_MIN_LEN,
};
pub use verifier::{CodeVerifier, GenerateError};
