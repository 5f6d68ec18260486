//! The opaque token format: `<prefix>_<body><checksum>`.
//!
//! - `prefix`: a short lowercase tag naming the kind of token (`pca` codes, `pcr` refresh
//!   tokens, `pct` access tokens, or the caller's own), so that a leaked token is recognisable by
//!   secret scanners and a token of one kind is never mistaken for another;
//! - `body`: 256 bits from the operating system's CSPRNG in base62, always 43 characters
//!   (62^43 > 2^256), well above the 128 bits RFC 6749 §10.10 requires;
//! - `checksum`: CRC32 of `<prefix>_<body>`, in base62, always 6 characters (62^6 > 2^32).
//!
//! The checksum is not a security measure (the body's entropy is): it lets a server reject a
//! truncated, mistyped or made-up token before any hash or storage round trip, because CRC32 catches
//! every single-character change. With a prefix of up to five characters a token is at most 55
//! bytes and its keyed hash costs two SHA-256 compressions.

use std::fmt;

use portcullis_core::SecretString;

/// Characters of the base62 alphabet, in digit order.
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Random bytes in a token body (256 bits).
pub const BODY_BYTES: usize = 32;
/// Characters of a token body.
pub const BODY_LEN: usize = 43;
/// Characters of a checksum.
pub const CHECKSUM_LEN: usize = 6;
/// Longest prefix accepted.
pub const MAX_PREFIX_LEN: usize = 12;

/// A token kind's prefix: 1 to 12 characters of `[a-z0-9]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenPrefix(&'static str);

const fn valid_prefix(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > MAX_PREFIX_LEN {
        return false;
    }
    let mut rest = b;
    while let [c, tail @ ..] = rest {
        if !matches!(*c, b'a'..=b'z' | b'0'..=b'9') {
            return false;
        }
        rest = tail;
    }
    true
}

impl TokenPrefix {
    /// Authorization codes: `pca_…`.
    pub const CODE: Self = Self("pca");
    /// Refresh tokens: `pcr_…`.
    pub const REFRESH: Self = Self("pcr");
    /// Access tokens: `pct_…`.
    pub const ACCESS: Self = Self("pct");

    /// A prefix from a literal; in a `const` a bad literal is a compile error.
    ///
    /// # Panics
    /// If `s` is empty, longer than [`MAX_PREFIX_LEN`] or has a character outside `[a-z0-9]`.
    #[must_use]
    #[allow(clippy::panic)] // a bad literal is a programming error, caught at compile time in const
    pub const fn new(s: &'static str) -> Self {
        if !valid_prefix(s) {
            panic!("token prefixes are 1 to 12 characters of [a-z0-9]");
        }
        Self(s)
    }

    /// A prefix, if `s` is valid.
    #[must_use]
    pub const fn try_new(s: &'static str) -> Option<Self> {
        if valid_prefix(s) { Some(Self(s)) } else { None }
    }

    /// The prefix text (without the `_`).
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        self.0
    }

    /// The length of a whole token with this prefix.
    #[must_use]
    pub const fn token_len(&self) -> usize {
        self.0.len() + 1 + BODY_LEN + CHECKSUM_LEN
    }
}

/// Why a string is not a well-formed token. Checked in this order, before any hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenFormatError {
    /// The token does not start with the expected `<prefix>_`.
    #[error("token has the wrong prefix")]
    WrongPrefix,
    /// The token is not exactly as long as the format requires.
    #[error("token has the wrong length")]
    WrongLength,
    /// The body or checksum has a character outside the base62 alphabet.
    #[error("token has a character outside its alphabet")]
    BadAlphabet,
    /// The checksum does not match the body.
    #[error("token checksum does not match")]
    BadChecksum,
}

/// The operating system's random number generator failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RngError;

/// A freshly minted token. The plaintext is a secret: it is returned to the client once, and only
/// its hash is stored.
///
/// ```
/// use portcullis_hash::{OpaqueToken, TokenPrefix};
///
/// let token = OpaqueToken::mint(TokenPrefix::REFRESH)?;
/// assert!(token.expose_secret().starts_with("pcr_"));
/// assert_eq!(token.expose_secret().len(), 53);
/// assert_eq!(format!("{token:?}"), "OpaqueToken(pcr_…)");
/// let parsed = OpaqueToken::parse(TokenPrefix::REFRESH, token.expose_secret()).unwrap();
/// assert_eq!(parsed.as_str(), token.expose_secret());
/// # Ok::<(), portcullis_hash::RngError>(())
/// ```
pub struct OpaqueToken {
    prefix: TokenPrefix,
    text: SecretString,
}

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpaqueToken({}_…)", self.prefix.as_str())
    }
}

impl OpaqueToken {
    /// Mint a token with 256 bits from the OS CSPRNG.
    ///
    /// # Errors
    /// [`RngError`] if the operating system's generator fails (never silently weaker).
    pub fn mint(prefix: TokenPrefix) -> Result<Self, RngError> {
        let mut bytes = [0u8; BODY_BYTES];
        getrandom::fill(&mut bytes).map_err(|_| RngError)?;
        let token = Self::from_random_bytes(prefix, &bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        Ok(token)
    }

    /// A token whose body encodes the given 32 bytes. Only for tests and fixtures: real tokens
    /// must come from [`OpaqueToken::mint`].
    #[must_use]
    pub fn from_random_bytes(prefix: TokenPrefix, bytes: &[u8; BODY_BYTES]) -> Self {
        let mut text = String::with_capacity(prefix.token_len());
        text.push_str(prefix.as_str());
        text.push('_');
        let mut digits = [0u8; BODY_LEN];
        encode_base62_256(bytes, &mut digits);
        text.extend(digits.iter().map(|&d| char::from(d)));
        let mut sum = [0u8; CHECKSUM_LEN];
        encode_base62_u32(crc32fast::hash(text.as_bytes()), &mut sum);
        text.extend(sum.iter().map(|&d| char::from(d)));
        zeroize::Zeroize::zeroize(&mut digits);
        Self {
            prefix,
            text: SecretString::new(text),
        }
    }

    /// The plaintext token, to send to the client once or to hash.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        self.text.expose_secret()
    }

    /// The token's prefix.
    #[must_use]
    pub const fn prefix(&self) -> TokenPrefix {
        self.prefix
    }

    /// The plaintext as a [`SecretString`].
    #[must_use]
    pub fn into_secret(self) -> SecretString {
        self.text
    }

    /// Check that `s` is a well-formed token with the given prefix.
    ///
    /// # Errors
    /// The first [`TokenFormatError`] found: prefix, then length, then alphabet, then checksum.
    pub fn parse(prefix: TokenPrefix, s: &str) -> Result<TokenRef<'_>, TokenFormatError> {
        let rest = s
            .strip_prefix(prefix.as_str())
            .and_then(|r| r.strip_prefix('_'))
            .ok_or(TokenFormatError::WrongPrefix)?;
        check_rest(s, rest)?;
        Ok(TokenRef {
            text: s,
            prefix_len: prefix.as_str().len(),
        })
    }

    /// Check that `s` is a well-formed token with any valid prefix (for endpoints such as RFC 7009
    /// revocation that accept several kinds); [`TokenRef::prefix`] tells which.
    ///
    /// # Errors
    /// As [`OpaqueToken::parse`].
    pub fn parse_any(s: &str) -> Result<TokenRef<'_>, TokenFormatError> {
        let (prefix, rest) = s.split_once('_').ok_or(TokenFormatError::WrongPrefix)?;
        if !valid_prefix(prefix) {
            return Err(TokenFormatError::WrongPrefix);
        }
        check_rest(s, rest)?;
        Ok(TokenRef {
            text: s,
            prefix_len: prefix.len(),
        })
    }
}

/// A string checked to be a well-formed token. Borrowed from the request; `Debug` shows only the
/// prefix.
#[derive(Clone, Copy)]
pub struct TokenRef<'a> {
    text: &'a str,
    prefix_len: usize,
}

impl<'a> TokenRef<'a> {
    /// The whole token, to hash.
    #[must_use]
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// The token's prefix, without the `_`.
    #[must_use]
    pub fn prefix(&self) -> &'a str {
        self.text.get(..self.prefix_len).unwrap_or_default()
    }
}

impl fmt::Debug for TokenRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenRef({}_…)", self.prefix())
    }
}

/// Check length, alphabet and checksum of the part after `<prefix>_`.
fn check_rest(whole: &str, rest: &str) -> Result<(), TokenFormatError> {
    if rest.len() != BODY_LEN + CHECKSUM_LEN {
        return Err(TokenFormatError::WrongLength);
    }
    if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(TokenFormatError::BadAlphabet);
    }
    // All ASCII from here, so byte offsets are character boundaries.
    let split = whole.len() - CHECKSUM_LEN;
    let (signed, sum) = whole.split_at(split);
    let stated = decode_base62_u32(sum.as_bytes()).ok_or(TokenFormatError::BadChecksum)?;
    if stated != crc32fast::hash(signed.as_bytes()) {
        return Err(TokenFormatError::BadChecksum);
    }
    Ok(())
}

fn digit(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some(u32::from(b - b'0')),
        b'A'..=b'Z' => Some(u32::from(b - b'A') + 10),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 36),
        _ => None,
    }
}

fn symbol(d: u32) -> u8 {
    ALPHABET.get(d as usize).copied().unwrap_or(b'0')
}

/// 62^5: the largest power of 62 below 2^32, so five base62 digits come out of each pass of a
/// division over 32-bit limbs.
const BASE62_POW5: u64 = 916_132_832;

/// Fixed-width base62 of a 256-bit big-endian number.
///
/// Nine passes of a division by 62^5 over eight 32-bit limbs (each a `u64` division by a
/// constant, which compiles to a multiplication) give 45 digits, five per pass; the value is
/// below 2^256 < 62^43, so the top two are zero and the low 43 are the encoding. A digit-at-a-
/// time division would take 43 passes; this is what minting spends its time on.
fn encode_base62_256(bytes: &[u8; BODY_BYTES], out: &mut [u8; BODY_LEN]) {
    let mut limbs = [0u32; 8];
    for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(4)) {
        let mut be = [0u8; 4];
        be.copy_from_slice(chunk);
        *limb = u32::from_be_bytes(be);
    }
    let mut digits = [0u8; 45];
    for group in digits.rchunks_exact_mut(5) {
        let mut rem: u64 = 0;
        for limb in &mut limbs {
            let cur = (rem << 32) | u64::from(*limb);
            // cur < BASE62_POW5 * 2^32, so the quotient fits in 32 bits.
            *limb = u32::try_from(cur / BASE62_POW5).unwrap_or(0);
            rem = cur % BASE62_POW5;
        }
        // rem < 62^5 < 2^32.
        let mut r = u32::try_from(rem).unwrap_or(0);
        for d in group.iter_mut().rev() {
            *d = symbol(r % 62);
            r /= 62;
        }
    }
    for (dst, src) in out.iter_mut().rev().zip(digits.iter().rev()) {
        *dst = *src;
    }
    zeroize::Zeroize::zeroize(&mut limbs);
    zeroize::Zeroize::zeroize(&mut digits);
}

fn encode_base62_u32(mut v: u32, out: &mut [u8; CHECKSUM_LEN]) {
    for slot in out.iter_mut().rev() {
        *slot = symbol(v % 62);
        v /= 62;
    }
}

/// The value of fixed-width base62 digits, if it fits in a u32.
fn decode_base62_u32(digits: &[u8]) -> Option<u32> {
    let mut v: u64 = 0;
    for &b in digits {
        v = v * 62 + u64::from(digit(b)?);
    }
    u32::try_from(v).ok()
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::string_slice
)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn format_and_lengths() {
        let t = OpaqueToken::mint(TokenPrefix::CODE).unwrap();
        let s = t.expose_secret();
        assert_eq!(s.len(), 53);
        assert_eq!(s.len(), TokenPrefix::CODE.token_len());
        assert!(s.starts_with("pca_"));
        assert!(s[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(
            OpaqueToken::parse(TokenPrefix::CODE, s).unwrap().prefix(),
            "pca"
        );
        assert_eq!(OpaqueToken::parse_any(s).unwrap().prefix(), "pca");
    }

    #[test]
    fn base62_extremes() {
        let zero = OpaqueToken::from_random_bytes(TokenPrefix::ACCESS, &[0; 32]);
        assert!(
            zero.expose_secret()
                .starts_with(&format!("pct_{}", "0".repeat(43)))
        );
        let max = OpaqueToken::from_random_bytes(TokenPrefix::ACCESS, &[0xff; 32]);
        // 2^256 - 1 in base62 starts with a nonzero digit and still fits in 43.
        assert_eq!(max.expose_secret().len(), 53);
        assert!(OpaqueToken::parse(TokenPrefix::ACCESS, max.expose_secret()).is_ok());
        let mut out = [0u8; CHECKSUM_LEN];
        encode_base62_u32(u32::MAX, &mut out);
        assert_eq!(decode_base62_u32(&out), Some(u32::MAX));
        assert_eq!(decode_base62_u32(b"zzzzzz"), None); // 62^6 - 1 > u32::MAX
    }

    #[test]
    fn distinct_error_kinds() {
        let t = OpaqueToken::mint(TokenPrefix::REFRESH).unwrap();
        let s = t.expose_secret();
        use TokenFormatError::*;
        assert_eq!(
            OpaqueToken::parse(TokenPrefix::ACCESS, s).unwrap_err(),
            WrongPrefix
        );
        assert_eq!(
            OpaqueToken::parse(TokenPrefix::REFRESH, "pcr").unwrap_err(),
            WrongPrefix
        );
        assert_eq!(
            OpaqueToken::parse(TokenPrefix::REFRESH, &s[..52]).unwrap_err(),
            WrongLength
        );
        assert_eq!(
            OpaqueToken::parse(TokenPrefix::REFRESH, &format!("{s}0")).unwrap_err(),
            WrongLength
        );
        let mut bad = s.to_owned();
        bad.replace_range(10..11, "-");
        assert_eq!(
            OpaqueToken::parse(TokenPrefix::REFRESH, &bad).unwrap_err(),
            BadAlphabet
        );
        let mut bad = s.to_owned();
        let c = if &s[10..11] == "a" { "b" } else { "a" };
        bad.replace_range(10..11, c);
        assert_eq!(
            OpaqueToken::parse(TokenPrefix::REFRESH, &bad).unwrap_err(),
            BadChecksum
        );
        assert_eq!(OpaqueToken::parse_any("").unwrap_err(), WrongPrefix);
        assert_eq!(OpaqueToken::parse_any("PCR_x").unwrap_err(), WrongPrefix);
        assert_eq!(
            OpaqueToken::parse_any(&"é".repeat(30)).unwrap_err(),
            WrongPrefix
        );
    }

    #[test]
    fn debug_shows_prefix_only() {
        let t = OpaqueToken::mint(TokenPrefix::REFRESH).unwrap();
        let body = &t.expose_secret()[4..20];
        for shown in [
            format!("{t:?}"),
            format!("{:?}", OpaqueToken::parse_any(t.expose_secret()).unwrap()),
        ] {
            assert!(!shown.contains(body), "{shown}");
            assert!(shown.contains("pcr_"));
        }
    }

    #[test]
    fn prefixes() {
        assert!(TokenPrefix::try_new("").is_none());
        assert!(TokenPrefix::try_new("Abc").is_none());
        assert!(TokenPrefix::try_new("abcdefghijklm").is_none());
        assert_eq!(TokenPrefix::new("myapp1").token_len(), 56);
    }

    /// The obvious encoding: one division by 62 of the whole number per digit.
    fn reference_base62(bytes: &[u8; 32]) -> [u8; BODY_LEN] {
        let mut n = *bytes;
        let mut out = [0u8; BODY_LEN];
        for slot in out.iter_mut().rev() {
            let mut rem: u32 = 0;
            for byte in &mut n {
                let cur = (rem << 8) | u32::from(*byte);
                *byte = (cur / 62) as u8;
                rem = cur % 62;
            }
            *slot = ALPHABET[rem as usize];
        }
        assert!(
            n.iter().all(|b| *b == 0),
            "43 digits hold any 256-bit value"
        );
        out
    }

    #[test]
    fn base62_matches_reference_at_the_edges() {
        for bytes in [[0u8; 32], [0xff; 32], [1; 32], {
            let mut b = [0u8; 32];
            b[31] = 61;
            b
        }] {
            let mut out = [0u8; BODY_LEN];
            encode_base62_256(&bytes, &mut out);
            assert_eq!(out, reference_base62(&bytes));
        }
    }

    proptest! {
        #[test]
        fn base62_matches_reference(bytes in any::<[u8; 32]>()) {
            let mut out = [0u8; BODY_LEN];
            encode_base62_256(&bytes, &mut out);
            prop_assert_eq!(out, reference_base62(&bytes));
        }

        // covers 6749-10.10-a (format side): parse accepts exactly what mint produces.
        #[test]
        fn mint_parse_round_trip(bytes in any::<[u8; 32]>(), p in "[a-z0-9]{1,12}") {
            let prefix = TokenPrefix::try_new(Box::leak(p.into_boxed_str())).unwrap();
            let t = OpaqueToken::from_random_bytes(prefix, &bytes);
            let parsed = OpaqueToken::parse(prefix, t.expose_secret()).unwrap();
            prop_assert_eq!(parsed.as_str(), t.expose_secret());
            prop_assert_eq!(OpaqueToken::parse_any(t.expose_secret()).unwrap().prefix(), prefix.as_str());
        }

        #[test]
        fn every_single_character_change_is_caught(bytes in any::<[u8; 32]>(), pos in 0usize..53, c in any::<char>()) {
            let t = OpaqueToken::from_random_bytes(TokenPrefix::REFRESH, &bytes);
            let s = t.expose_secret();
            let original = s[pos..].chars().next().unwrap();
            prop_assume!(c != original);
            let mut changed = String::with_capacity(60);
            changed.push_str(&s[..pos]);
            changed.push(c);
            changed.push_str(&s[pos + 1..]);
            prop_assert!(OpaqueToken::parse(TokenPrefix::REFRESH, &changed).is_err());
        }

        #[test]
        fn arbitrary_input_never_panics(s in any::<String>()) {
            let _ = OpaqueToken::parse_any(&s);
            let _ = OpaqueToken::parse(TokenPrefix::CODE, &s);
        }

        #[test]
        fn distinct_bytes_give_distinct_bodies(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            prop_assume!(a != b);
            let ta = OpaqueToken::from_random_bytes(TokenPrefix::CODE, &a);
            let tb = OpaqueToken::from_random_bytes(TokenPrefix::CODE, &b);
            prop_assert_ne!(ta.expose_secret(), tb.expose_secret());
        }
    }
}
