//! PKCE with arbitrary verifier, challenge and method: no input panics, and both endpoint
//! checks agree with a straightforward reference (RFC 7636 grammar written out by hand,
//! SHA-256 from `sha2`, base64url written out by hand, `==` comparison).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use portcullis_pkce::{ChallengeMethod, PkceError, PkcePolicy, verify_token_request};
use sha2::{Digest, Sha256};

#[derive(Debug, Arbitrary)]
struct Input {
    verifier: Option<String>,
    challenge: Option<String>,
    method: Option<String>,
    allow_plain: bool,
    /// Replace the challenge with the reference transform of the verifier, so that the
    /// matching path is reached as often as the mismatching one.
    derive_challenge: bool,
}

fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

fn is_verifier(s: &str) -> bool {
    (43..=128).contains(&s.chars().count()) && s.chars().all(is_unreserved)
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(char::from(ALPHABET[((acc >> bits) & 63) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (6 - bits)) & 63) as usize]));
    }
    out
}

fn s256(verifier: &str) -> String {
    base64url(&Sha256::digest(verifier.as_bytes()))
}

/// An S256 challenge is well-formed iff some 32 octets encode to it.
fn is_s256_challenge(s: &str) -> bool {
    if s.len() != 43
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return false;
    }
    // Decode by hand and re-encode: canonical iff the round trip is the identity.
    let mut bytes = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            _ => 63,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((acc >> bits) as u8);
        }
    }
    bytes.len() == 32 && base64url(&bytes) == s
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

fuzz_target!(|input: Input| {
    let policy = PkcePolicy::default().allow_plain(input.allow_plain);
    let challenge = match (&input.verifier, input.derive_challenge) {
        (Some(v), true) => Some(s256(v)),
        _ => input.challenge.clone(),
    };

    // /authorize, against the reference.
    let authorized =
        policy.validate_authorization_request(challenge.as_deref(), input.method.as_deref());
    let expected_method = match nonempty(&input.method) {
        None | Some("plain") => Some(ChallengeMethod::Plain),
        Some("S256") => Some(ChallengeMethod::S256),
        Some(_) => None,
    };
    let expected = match (nonempty(&challenge), expected_method) {
        (None, _) => Err(PkceError::MissingChallenge),
        (Some(_), None) => Err(PkceError::UnsupportedMethod),
        (Some(_), Some(ChallengeMethod::Plain)) if !input.allow_plain => {
            Err(PkceError::PlainNotAllowed)
        }
        (Some(c), Some(method)) => {
            let ok = match method {
                ChallengeMethod::S256 => is_s256_challenge(c),
                _ => is_verifier(c),
            };
            if ok {
                Ok((c.to_owned(), method))
            } else {
                Err(PkceError::MalformedChallenge { method })
            }
        }
    };
    assert_eq!(
        authorized
            .as_ref()
            .map(|c| (c.as_str().to_owned(), c.method()))
            .map_err(|e| *e),
        expected
    );
    if let Err(e) = &authorized {
        assert!(e.is_authorization_error());
        assert_eq!(e.oauth_error().status(), 400);
    }

    // /token, against the reference.
    let stored = authorized.ok();
    let got = verify_token_request(stored.as_ref(), input.verifier.as_deref());
    let expected = match (&stored, nonempty(&input.verifier)) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(PkceError::UnexpectedVerifier),
        (Some(_), None) => Err(PkceError::MissingVerifier),
        (Some(_), Some(v)) if !is_verifier(v) => Err(PkceError::MalformedVerifier),
        (Some(c), Some(v)) => {
            let derived = match c.method() {
                ChallengeMethod::S256 => s256(v),
                _ => v.to_owned(),
            };
            if derived == c.as_str() {
                Ok(())
            } else {
                Err(PkceError::VerifierMismatch)
            }
        }
    };
    assert_eq!(got, expected);
    if let Err(e) = got {
        assert!(!e.is_authorization_error());
        assert_eq!(e.oauth_error().status(), 400);
    }
});
