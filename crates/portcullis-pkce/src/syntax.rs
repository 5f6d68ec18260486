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

/// Length of a SHA-256 digest in octets (FIPS 180-4).
pub(crate) const SHA256_LEN: usize = 32;

/// The 32 octets an `S256` challenge encodes, if `s` is their canonical unpadded base64url
/// encoding: 43 characters of the base64url alphabet whose last character carries two zero
/// padding bits (RFC 4648 §3.5, §5). Only such a string can equal
/// `BASE64URL(SHA256(verifier))`, and because the encoding is canonical, two challenges are
/// equal exactly when the octets they decode to are.
pub(crate) fn decode_s256_challenge(s: &[u8]) -> Option<[u8; SHA256_LEN]> {
    if s.len() != S256_CHALLENGE_LEN {
        return None;
    }
    let mut out = [0u8; SHA256_LEN];
    let mut slots = out.iter_mut();
    // Bits not yet written out, in the low `bits` bits of `acc` (never more than 12).
    let (mut acc, mut bits) = (0u16, 0u32);
    for &c in s {
        acc = ((acc << 6) | u16::from(base64url_value(c)?)) & 0x0FFF;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            let [octet, _] = (acc >> bits).to_le_bytes();
            *slots.next()? = octet;
        }
    }
    // 43 characters carry 258 bits: 32 octets and 2 bits a canonical encoder leaves at zero.
    (bits == 2 && acc & 0b11 == 0 && slots.next().is_none()).then_some(out)
}

/// `SHA256(ASCII(verifier))` (RFC 7636 §4.2), on the stack.
#[inline]
pub(crate) fn sha256(verifier: &[u8]) -> [u8; SHA256_LEN] {
    Sha256::digest(verifier).into()
}

/// `BASE64URL(SHA256(ASCII(verifier)))`, unpadded (RFC 7636 §4.2), as a `String`.
pub(crate) fn s256_string(digest: &[u8; SHA256_LEN]) -> String {
    URL_SAFE_NO_PAD.encode(digest)
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
        let digest = decode_s256_challenge(ok).unwrap();
        assert_eq!(s256_string(&digest).as_bytes(), ok);
        // 'N' (value 13) sets a padding bit: no digest encodes to this.
        let mut bad = *ok;
        bad[42] = b'N';
        assert_eq!(decode_s256_challenge(&bad), None);
        bad[42] = b'=';
        assert_eq!(decode_s256_challenge(&bad), None);
        assert_eq!(decode_s256_challenge(&ok[..42]), None);
        assert_eq!(decode_s256_challenge(b""), None);
    }

    #[test]
    fn decoding_inverts_encoding() {
        for seed in 0..=255u8 {
            let digest: [u8; SHA256_LEN] = std::array::from_fn(|i| {
                seed.wrapping_mul(31).wrapping_add(u8::try_from(i).unwrap())
            });
            let encoded = s256_string(&digest);
            assert_eq!(decode_s256_challenge(encoded.as_bytes()), Some(digest));
        }
    }
}
