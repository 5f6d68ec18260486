//! Properties of the grammar, the transform and the checks, against straightforward references.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_pkce::{
    ChallengeMethod, CodeChallenge, CodeVerifier, PkceError, PkcePolicy, verify_token_request,
};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

/// RFC 7636 §4.1 `43*128unreserved`, written the obvious way.
fn reference_is_verifier(s: &str) -> bool {
    (43..=128).contains(&s.chars().count())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
}

/// A 43-character canonical base64url encoding of 32 octets.
fn reference_is_s256_challenge(s: &str) -> bool {
    s.len() == 43 && URL_SAFE_NO_PAD.decode(s).is_ok_and(|d| d.len() == 32)
}

fn reference_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Strings near the grammar's edges: the unreserved set plus `+ / =` and a space, 38 to 133 long.
fn near_verifier() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~+/= -]{38,133}"
}

/// Strings near the S256 challenge shape.
fn near_s256_challenge() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.~+/=-]{41,45}"
}

fn any_method() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("S256".to_owned())),
        Just(Some("plain".to_owned())),
        Just(Some(String::new())),
        any::<String>().prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    // covers 7636-4.2-a, 7636-4.6-a: a generated verifier always verifies against its own
    // challenge and never against another's.
    #[test]
    fn generated_verifier_matches_own_challenge_only(_seed in any::<u8>()) {
        let a = CodeVerifier::generate().unwrap();
        let b = CodeVerifier::generate().unwrap();
        let (ca, cb) = (a.challenge(), b.challenge());
        prop_assert_eq!(ca.as_str(), reference_s256(a.expose_secret()));
        prop_assert_eq!(verify_token_request(Some(&ca), Some(a.expose_secret())), Ok(()));
        prop_assert_eq!(verify_token_request(Some(&cb), Some(b.expose_secret())), Ok(()));
        prop_assert_eq!(
            verify_token_request(Some(&ca), Some(b.expose_secret())),
            Err(PkceError::VerifierMismatch)
        );
        prop_assert_eq!(
            verify_token_request(Some(&cb), Some(a.expose_secret())),
            Err(PkceError::VerifierMismatch)
        );
    }

    // covers 7636-4.1-a: a verifier is accepted iff it matches the ABNF.
    #[test]
    fn verifier_accepted_iff_abnf(s in prop_oneof![near_verifier(), any::<String>()]) {
        let expected = reference_is_verifier(&s);
        prop_assert_eq!(CodeVerifier::new(s.clone()).is_ok(), expected);
        // At the token endpoint a well-formed verifier reaches the comparison, any other is
        // malformed.
        let stored = CodeVerifier::generate().unwrap().challenge();
        let got = verify_token_request(Some(&stored), Some(&s));
        if s.is_empty() {
            prop_assert_eq!(got, Err(PkceError::MissingVerifier));
        } else if expected {
            prop_assert_eq!(got, Err(PkceError::VerifierMismatch));
        } else {
            prop_assert_eq!(got, Err(PkceError::MalformedVerifier));
        }
    }

    // covers 7636-4.1-a (the same ABNF for code_challenge) and 7636-4.2-a (S256 shape)
    #[test]
    fn challenge_accepted_iff_grammar(
        s in prop_oneof![near_verifier(), near_s256_challenge(), any::<String>()]
    ) {
        prop_assert_eq!(
            CodeChallenge::new(s.clone(), ChallengeMethod::Plain).is_ok(),
            reference_is_verifier(&s)
        );
        prop_assert_eq!(
            CodeChallenge::new(s.clone(), ChallengeMethod::S256).is_ok(),
            reference_is_s256_challenge(&s)
        );
    }

    // Any verifier against any well-formed challenge: the result agrees with the reference.
    #[test]
    fn verify_agrees_with_reference(v in near_verifier(), c in near_verifier(), plain in any::<bool>()) {
        let (method, value) = if plain {
            (ChallengeMethod::Plain, c.clone())
        } else {
            (ChallengeMethod::S256, reference_s256(&c))
        };
        let Ok(stored) = CodeChallenge::new(value.clone(), method) else {
            return Ok(());
        };
        let expected = if !reference_is_verifier(&v) {
            Err(PkceError::MalformedVerifier)
        } else {
            let matches = if plain { v == value } else { reference_s256(&v) == value };
            if matches { Ok(()) } else { Err(PkceError::VerifierMismatch) }
        };
        prop_assert_eq!(stored.verify(&v), expected);
        // and the matching verifier always passes
        if reference_is_verifier(&c) {
            prop_assert_eq!(stored.verify(&c), Ok(()));
        }
    }

    // Arbitrary input never panics any parser or check.
    #[test]
    fn arbitrary_input_never_panics(
        challenge in proptest::option::of(any::<String>()),
        method in any_method(),
        verifier in proptest::option::of(any::<String>()),
        allow_plain in any::<bool>(),
    ) {
        let policy = PkcePolicy::default().allow_plain(allow_plain);
        let _ = ChallengeMethod::from_param(method.as_deref());
        let _ = policy.method(method.as_deref());
        let stored = policy.validate_authorization_request(challenge.as_deref(), method.as_deref());
        if let Ok(stored) = &stored {
            prop_assert!(allow_plain || stored.method() == ChallengeMethod::S256);
        }
        if let Some(v) = &verifier {
            let _ = CodeVerifier::new(v.clone());
        }
        let result = verify_token_request(stored.as_ref().ok(), verifier.as_deref());
        if let Err(e) = result {
            prop_assert_eq!(e.oauth_error().status(), 400);
        }
    }
}
