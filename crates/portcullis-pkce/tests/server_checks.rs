//! The authorization- and token-endpoint checks, and the exact error code of every failure.
#![allow(clippy::unwrap_used)] // test helpers fail by panicking, like the tests

use portcullis_core::ErrorCode;
use portcullis_pkce::{
    ChallengeMethod, CodeChallenge, CodeVerifier, PkceError, PkcePolicy, verify_token_request,
};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn s256() -> CodeChallenge {
    CodeChallenge::new(CHALLENGE, ChallengeMethod::S256).unwrap()
}

fn code(e: PkceError) -> ErrorCode {
    e.oauth_error().code()
}

// ---- verifier grammar ----

// covers 7636-4.1-a: 42 and 129 characters are refused, 43 and 128 accepted
#[test]
fn verifier_length_bounds() {
    let stored_43 = CodeChallenge::new("a".repeat(43), ChallengeMethod::Plain).unwrap();
    let stored_128 = CodeChallenge::new("a".repeat(128), ChallengeMethod::Plain).unwrap();
    assert_eq!(
        verify_token_request(Some(&stored_43), Some(&"a".repeat(43))),
        Ok(())
    );
    assert_eq!(
        verify_token_request(Some(&stored_128), Some(&"a".repeat(128))),
        Ok(())
    );
    for len in [1, 42, 129, 200] {
        let v = "a".repeat(len);
        let err = verify_token_request(Some(&s256()), Some(&v)).unwrap_err();
        assert_eq!(err, PkceError::MalformedVerifier, "length {len}");
        assert_eq!(err.oauth_error().status(), 400);
        assert!(CodeVerifier::new(v).is_err());
    }
}

// covers 7636-4.1-a: '+', '/' and '=' (standard base64 and padding) are not unreserved
#[test]
fn verifier_alphabet() {
    for bad in ['+', '/', '=', ' ', '%', '!', 'é', '\0'] {
        let mut v = VERIFIER.to_owned();
        v.pop();
        v.push(bad);
        let err = verify_token_request(Some(&s256()), Some(&v)).unwrap_err();
        assert_eq!(err, PkceError::MalformedVerifier, "{bad:?}");
        assert_eq!(err.oauth_error().status(), 400);
        assert!(CodeVerifier::new(v).is_err(), "{bad:?}");
    }
    // every unreserved character is accepted
    let all = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    assert!(CodeVerifier::new(all.to_owned()).is_ok());
}

// covers 7636-4.1-a: "the same ABNF applies to code_challenge"
#[test]
fn challenge_grammar() {
    let plain = PkcePolicy::S256_ONLY.allow_plain(true);
    for bad in [
        "a".repeat(42),
        "a".repeat(129),
        format!("{}+", "a".repeat(42)),
    ] {
        assert_eq!(
            plain.validate_authorization_request(Some(&bad), Some("plain")),
            Err(PkceError::MalformedChallenge {
                method: ChallengeMethod::Plain
            })
        );
    }
    assert!(
        plain
            .validate_authorization_request(Some(&"~".repeat(128)), Some("plain"))
            .is_ok()
    );
    // S256: exactly 43 base64url characters, canonically encoded
    let policy = PkcePolicy::default();
    let malformed = Err(PkceError::MalformedChallenge {
        method: ChallengeMethod::S256,
    });
    for bad in [
        CHALLENGE.split_at(42).0,                      // 42 characters
        &format!("{CHALLENGE}A"),                      // 44 characters
        &format!("{CHALLENGE}="),                      // padded
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM", // standard alphabet
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw.cM", // unreserved but not base64url
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN", // non-zero padding bits
    ] {
        assert_eq!(
            policy.validate_authorization_request(Some(bad), Some("S256")),
            malformed,
            "{bad}"
        );
    }
}

// ---- /authorize ----

// covers 7636-4.4.1-a: a missing challenge is invalid_request
#[test]
fn authorize_missing_challenge() {
    let policy = PkcePolicy::default();
    for (c, m) in [(None, Some("S256")), (Some(""), Some("S256")), (None, None)] {
        let err = policy.validate_authorization_request(c, m).unwrap_err();
        assert_eq!(err, PkceError::MissingChallenge);
        assert_eq!(code(err), ErrorCode::InvalidRequest);
        assert!(err.is_authorization_error());
        assert!(code(err).allowed_in_authorization_response());
    }
}

// covers 7636-4.4.1-a: an unsupported method is invalid_request
#[test]
fn authorize_unsupported_method() {
    for policy in [
        PkcePolicy::default(),
        PkcePolicy::default().allow_plain(true),
    ] {
        for m in ["s256", "S512", "PLAIN", "S256 "] {
            let err = policy
                .validate_authorization_request(Some(CHALLENGE), Some(m))
                .unwrap_err();
            assert_eq!(err, PkceError::UnsupportedMethod, "{m:?}");
            assert_eq!(code(err), ErrorCode::InvalidRequest);
        }
    }
}

// covers 7636-4.3-a: an absent method means plain, so an S256-only server rejects it
// covers 7636-4.4.1-a: plain is unsupported by an S256-only server: invalid_request
#[test]
fn authorize_plain_and_absent_method() {
    let policy = PkcePolicy::default();
    for m in [None, Some(""), Some("plain")] {
        let err = policy
            .validate_authorization_request(Some(CHALLENGE), m)
            .unwrap_err();
        assert_eq!(err, PkceError::PlainNotAllowed, "{m:?}");
        assert_eq!(code(err), ErrorCode::InvalidRequest);
    }
    // With plain allowed, an absent method stores a plain challenge.
    let legacy = PkcePolicy::default().allow_plain(true);
    let stored = legacy
        .validate_authorization_request(Some(VERIFIER), None)
        .unwrap();
    assert_eq!(stored.method(), ChallengeMethod::Plain);
    assert_eq!(verify_token_request(Some(&stored), Some(VERIFIER)), Ok(()));
}

// covers 7636-4.4.1-a: a malformed challenge is invalid_request
#[test]
fn authorize_malformed_challenge_code() {
    let err = PkceError::MalformedChallenge {
        method: ChallengeMethod::S256,
    };
    assert_eq!(code(err), ErrorCode::InvalidRequest);
    let err = PkceError::MalformedChallenge {
        method: ChallengeMethod::Plain,
    };
    assert_eq!(code(err), ErrorCode::InvalidRequest);
}

#[test]
fn authorize_accepts_s256() {
    let stored = PkcePolicy::default()
        .validate_authorization_request(Some(CHALLENGE), Some("S256"))
        .unwrap();
    assert_eq!(stored.as_str(), CHALLENGE);
    assert_eq!(stored.method(), ChallengeMethod::S256);
}

// ---- /token ----

// covers 7636-4.6-a: a mismatched verifier is 400 invalid_grant
#[test]
fn token_mismatch_is_invalid_grant() {
    let other = CodeVerifier::generate().unwrap();
    let err = verify_token_request(Some(&s256()), Some(other.expose_secret())).unwrap_err();
    assert_eq!(err, PkceError::VerifierMismatch);
    assert_eq!(code(err), ErrorCode::InvalidGrant);
    assert_eq!(err.oauth_error().status(), 400);
    assert!(!err.is_authorization_error());
}

// covers 9700-2.1.1-a, 21-4.1.3-a: a challenge was stored, the token request has no verifier
#[test]
fn token_missing_verifier_is_rejected() {
    for v in [None, Some("")] {
        let err = verify_token_request(Some(&s256()), v).unwrap_err();
        assert_eq!(err, PkceError::MissingVerifier);
        assert_eq!(code(err), ErrorCode::InvalidGrant);
        assert_eq!(err.oauth_error().status(), 400);
    }
}

// covers 9700-4.8.2-a, 21-4.1.3-a: no challenge was stored, the token request has a verifier
#[test]
fn token_unexpected_verifier_is_invalid_request() {
    let err = verify_token_request(None, Some(VERIFIER)).unwrap_err();
    assert_eq!(err, PkceError::UnexpectedVerifier);
    assert_eq!(code(err), ErrorCode::InvalidRequest);
    // even a malformed one: its presence is the error
    assert_eq!(
        verify_token_request(None, Some("x")),
        Err(PkceError::UnexpectedVerifier)
    );
}

// covers 21-4.1.3-a: neither side used PKCE
#[test]
fn token_without_pkce_on_either_side() {
    assert_eq!(verify_token_request(None, None), Ok(()));
    assert_eq!(verify_token_request(None, Some("")), Ok(()));
}

// covers 7636-4.1-a: a malformed verifier gets 400 (invalid_grant, see PkceError's docs)
#[test]
fn token_malformed_verifier_is_invalid_grant() {
    let err = verify_token_request(Some(&s256()), Some("short")).unwrap_err();
    assert_eq!(err, PkceError::MalformedVerifier);
    assert_eq!(code(err), ErrorCode::InvalidGrant);
    assert_eq!(err.oauth_error().status(), 400);
}

// The downgrade rule: a failed verification leaves the stored challenge usable (it is
// borrowed), so the code stays bound to it and a retry without a verifier still fails.
#[test]
fn failed_verification_does_not_consume_the_challenge() {
    let stored = s256();
    let wrong = CodeVerifier::generate().unwrap();
    assert!(verify_token_request(Some(&stored), Some(wrong.expose_secret())).is_err());
    assert_eq!(
        verify_token_request(Some(&stored), None),
        Err(PkceError::MissingVerifier)
    );
    assert_eq!(verify_token_request(Some(&stored), Some(VERIFIER)), Ok(()));
}

// ---- the error type ----

#[test]
fn every_error_has_its_code_and_a_client_safe_description() {
    use ErrorCode::{InvalidGrant, InvalidRequest};
    let cases = [
        (PkceError::MissingChallenge, InvalidRequest),
        (PkceError::UnsupportedMethod, InvalidRequest),
        (PkceError::PlainNotAllowed, InvalidRequest),
        (
            PkceError::MalformedChallenge {
                method: ChallengeMethod::S256,
            },
            InvalidRequest,
        ),
        (
            PkceError::MalformedChallenge {
                method: ChallengeMethod::Plain,
            },
            InvalidRequest,
        ),
        (PkceError::MissingVerifier, InvalidGrant),
        (PkceError::UnexpectedVerifier, InvalidRequest),
        (PkceError::MalformedVerifier, InvalidGrant),
        (PkceError::VerifierMismatch, InvalidGrant),
    ];
    for (err, expected) in cases {
        let o = err.oauth_error();
        assert_eq!(o.code(), expected, "{err:?}");
        assert_eq!(err.code(), expected);
        assert_eq!(o.status(), 400);
        let d = o.description().expect("every PKCE error has a description");
        assert!(!d.as_str().contains(VERIFIER));
        assert!(!err.to_string().is_empty());
        if err.is_authorization_error() {
            assert!(o.code().allowed_in_authorization_response(), "{err:?}");
        } else {
            assert!(o.code().allowed_in_token_response(), "{err:?}");
        }
    }
}
