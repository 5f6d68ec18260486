//! The RFC 7636 grammar and the S256 transform, on bytes, without allocation.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

/// Shortest `code_verifier` and `code_challenge`: RFC 7636 §4.1 and §4.2 (`43*128unreserved`).
pub const VERIFIER_MIN_LEN: usize = 43;

/// Longest `code_verifier` and `code_challenge`: RFC 7636 §4.1 and §4.2 (`43*128unreserved`).
pub const VERIFIER_MAX_LEN: usize = 128;

/// Length of an `S256` `code_challenge`: a SHA-256 digest is 32 octets (FIPS 180-4), and
/// unpadded base64url (RFC 7636 §4.2 and Appendix A, RFC 4648 §5) writes 32 octets as
/// `ceil(32 * 8 / 6) = 43` characters.
pub const S256_CHALLENGE_LEN: usize = 43;

/// Octets of OS randomness in a generated verifier: RFC 7636 §4.1 RECOMMENDS a 32-octet
/// sequence, base64url-encoded to 43 characters (256 bits of entropy; RFC 6749 §10.10 asks for
/// at least 128).
pub const GENERATED_VERIFIER_ENTROPY: usize = 32;

/// RFC 3986 §2.3 `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"`.
///
/// Written with non-short-circuit operators so that a loop over it vectorises.
#[inline]
pub(crate) const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() | (b == b'-') | (b == b'.') | (b == b'_') | (b == b'~')
}

/// RFC 7636 §4.1 `code-verifier = 43*128unreserved` (and §4.2 `code-challenge`, the same
/// grammar).
#[inline]
pub(crate) fn is_verifier(s: &[u8]) -> bool {
    (VERIFIER_MIN_LEN..=VERIFIER_MAX_LEN).contains(&s.len())
        && s.iter().fold(true, |ok, &b| ok & is_unreserved(b))
}

/// The 6-bit value of a base64url character (RFC 4648 §5), if it is one.
const fn base64url_value(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

/// Whether `s` is the canonical unpadded base64url encoding of 32 octets: 43 characters of the
/// base64url alphabet whose last character carries two zero padding bits (RFC 4648 §3.5). Only
/// such a string can equal `BASE64URL(SHA256(verifier))` for any verifier.
pub(crate) fn is_s256_challenge(s: &[u8]) -> bool {
    // 43 characters carry 258 bits; the last character holds the final 4 bits of the digest and
    // 2 bits that a canonical encoder sets to zero.
    let [body @ .., last] = s else {
        return false;
    };
    s.len() == S256_CHALLENGE_LEN
        && body.iter().all(|&b| base64url_value(b).is_some())
        && base64url_value(*last).is_some_and(|v| v & 0b11 == 0)
}

/// `BASE64URL(SHA256(ASCII(verifier)))`, unpadded (RFC 7636 §4.2), written into a stack buffer.
///
/// Returns `false` only if the encoder reports a size that cannot happen for a 32-octet input;
/// callers treat that as a failed verification (fail closed).
#[inline]
pub(crate) fn s256_into(verifier: &[u8], out: &mut [u8; S256_CHALLENGE_LEN]) -> bool {
    let digest = Sha256::digest(verifier);
    matches!(
        URL_SAFE_NO_PAD.encode_slice(digest, out),
        Ok(S256_CHALLENGE_LEN)
    )
}

/// `BASE64URL(SHA256(ASCII(verifier)))`, unpadded (RFC 7636 §4.2), as a `String`.
pub(crate) fn s256_string(verifier: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreserved_is_exactly_rfc3986() {
        let mut expected: Vec<u8> = (b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .chain(b'0'..=b'9')
            .chain(*b"-._~")
            .collect();
        expected.sort_unstable();
        let got: Vec<u8> = (0..=255u8).filter(|&b| is_unreserved(b)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn base64url_alphabet_values() {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for (i, &b) in alphabet.iter().enumerate() {
            assert_eq!(base64url_value(b), Some(u8::try_from(i).unwrap()));
        }
        assert_eq!((0..=255u8).filter_map(base64url_value).count(), 64);
    }

    #[test]
    fn s256_challenge_must_be_canonical() {
        // The RFC 7636 Appendix B challenge ends in 'M' (value 12, low bits 00).
        let ok = b"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(is_s256_challenge(ok));
        // 'N' (value 13) sets a padding bit: no digest encodes to this.
        let mut bad = *ok;
        bad[42] = b'N';
        assert!(!is_s256_challenge(&bad));
        assert!(!is_s256_challenge(&ok[..42]));
        assert!(!is_s256_challenge(b""));
    }

    #[test]
    fn stack_and_string_encodings_agree() {
        let v = b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let mut buf = [0u8; S256_CHALLENGE_LEN];
        assert!(s256_into(v, &mut buf));
        assert_eq!(buf.as_slice(), s256_string(v).as_bytes());
    }
}
