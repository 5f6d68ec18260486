//! RFC 7636 Appendix B: the worked example of the S256 transform.

use portcullis_pkce::{
    ChallengeMethod, CodeChallenge, CodeVerifier, PkcePolicy, verify_token_request,
};
use sha2::{Digest, Sha256};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// SHA-256 of the verifier's ASCII octets, as listed in Appendix B (recomputed locally).
const VERIFIER_SHA256: [u8; 32] = [
    19, 211, 30, 150, 26, 26, 216, 236, 47, 22, 177, 12, 76, 152, 46, 8, 118, 168, 120, 173, 109,
    241, 68, 86, 110, 225, 137, 74, 203, 112, 249, 195,
];

// covers 7636-B-a
#[test]
fn appendix_b_verifier_gives_its_challenge() {
    let verifier = CodeVerifier::new(VERIFIER.to_owned()).unwrap();
    let challenge = verifier.challenge();
    assert_eq!(challenge.as_str(), CHALLENGE);
    assert_eq!(challenge.method(), ChallengeMethod::S256);
}

// covers 7636-B-a, 7636-4.2-a: BASE64URL(SHA256(ASCII(verifier))), unpadded
#[test]
fn appendix_b_intermediate_digest() {
    assert_eq!(
        Sha256::digest(VERIFIER.as_bytes()).as_slice(),
        VERIFIER_SHA256
    );
    let challenge = CodeVerifier::new(VERIFIER.to_owned()).unwrap().challenge();
    assert!(!challenge.as_str().contains('='));
    assert!(!challenge.as_str().contains('+'));
    assert!(!challenge.as_str().contains('/'));
    assert_eq!(challenge.as_str().len(), 43);
}

// covers 7636-B-a, 7636-4.6-a: the vector through the server-side checks
#[test]
fn appendix_b_round_trip_through_the_server_checks() {
    let stored = PkcePolicy::default()
        .validate_authorization_request(Some(CHALLENGE), Some("S256"))
        .unwrap();
    assert_eq!(
        stored,
        CodeChallenge::new(CHALLENGE, ChallengeMethod::S256).unwrap()
    );
    assert_eq!(verify_token_request(Some(&stored), Some(VERIFIER)), Ok(()));
}
