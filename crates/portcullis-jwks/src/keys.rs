//! A JWK set parsed once into verification keys.

use std::fmt;

use aws_lc_rs::signature::{ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use serde_json::Value;

use crate::algorithm::{Algorithm, KeyFamily};
use crate::defaults::MIN_RSA_BITS;
use crate::error::FetchError;

/// The largest RSA modulus accepted, in bits: the upper bound of the aws-lc-rs verification
/// parameters (`RSA_PKCS1_2048_8192_*`), the same ones jsonwebtoken uses.
const MAX_RSA_BITS: usize = 8192;

/// A JWK set (RFC 7517 §5) parsed into keys ready to verify signatures.
///
/// Each usable key is parsed once, here, into the crypto backend's own verification key (an
/// aws-lc-rs `ParsedPublicKey`), bound to exactly one algorithm (RFC 8725 §3.1): its own `alg`,
/// or, when the JWK has none, the one its type allows (`ES256` for P-256, `ES384` for P-384,
/// `EdDSA` for Ed25519, and `RS256` for RSA, the algorithm JWS and OpenID Connect default to).
///
/// Keys that cannot be used are skipped and reported in [`KeySet::skipped`], never fatal to the
/// rest of the set: keys for encryption (`use: enc`, `key_ops` without `verify`, an encryption
/// `alg`), symmetric keys (`kty: oct`: HMAC against a published key is never allowed), keys that
/// carry private members, unsupported key types, curves or algorithms, an `alg` that contradicts
/// the key type, RSA moduli outside 2048..=8192 bits, malformed keys, and a second key with the
/// same `kid` and algorithm as an earlier one.
///
/// ```
/// use portcullis_jwks::{KeySet, SkipReason};
///
/// let jwks = br#"{"keys":[
///     {"kty":"oct","k":"c2VjcmV0","kid":"hmac"},
///     {"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
/// ]}"#;
/// let set = KeySet::from_json(jwks).unwrap();
/// assert_eq!(set.len(), 1);
/// assert_eq!(set.skipped()[0].reason, SkipReason::Symmetric);
/// ```
pub struct KeySet {
    keys: Vec<VerifyKey>,
    skipped: Vec<SkippedKey>,
}

/// One usable key.
pub(crate) struct VerifyKey {
    kid: Option<Box<str>>,
    alg: Algorithm,
    key: ParsedPublicKey,
}

impl VerifyKey {
    /// Whether `signature` is a valid signature of `message` under this key and its algorithm.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self.alg.digest() {
            // The same verification as `verify_sig`, with the one-shot digest instead of a
            // streaming digest context (aws-lc-rs checks that the digest is the key's).
            Some(digest) => {
                let digest = aws_lc_rs::digest::digest(digest, message);
                self.key.verify_digest_sig(&digest, signature).is_ok()
            }
            None => self.key.verify_sig(message, signature).is_ok(),
        }
    }

    #[cfg(test)]
    pub(crate) fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

/// A key of the set that was not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Its position in the `keys` array.
    pub index: usize,
    /// Its `kid`, if it had a string one.
    pub kid: Option<String>,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// Why a key of a JWK set was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// Not for signature verification: `use` other than `sig`, `key_ops` without `verify`, or an
    /// encryption algorithm.
    NotForSignature,
    /// A symmetric (`kty: oct`) key: tokens are never verified with HMAC against a published key.
    Symmetric,
    /// The JWK carries private key members (`d`, `p`, …): the IdP has published a private key,
    /// which is not trusted.
    PrivateKey,
    /// A `kty` other than `RSA`, `EC` and `OKP`.
    UnsupportedKeyType,
    /// A curve other than P-256, P-384 and Ed25519.
    UnsupportedCurve,
    /// An `alg` this crate does not verify.
    UnsupportedAlgorithm,
    /// An `alg` that does not fit the key type or curve.
    AlgorithmMismatch,
    /// An RSA modulus outside 2048..=8192 bits.
    KeySize,
    /// Missing or undecodable members, wrong lengths, or not a valid public key.
    Malformed,
    /// The same `kid` and algorithm as an earlier key of the set.
    DuplicateKid,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotForSignature => "not a signature verification key",
            Self::Symmetric => "symmetric key",
            Self::PrivateKey => "carries private key members",
            Self::UnsupportedKeyType => "unsupported key type",
            Self::UnsupportedCurve => "unsupported curve",
            Self::UnsupportedAlgorithm => "unsupported algorithm",
            Self::AlgorithmMismatch => "algorithm does not fit the key",
            Self::KeySize => "RSA modulus size out of range",
            Self::Malformed => "malformed key",
            Self::DuplicateKid => "duplicate kid",
        })
    }
}

/// The result of looking a token's key up.
pub(crate) enum Lookup<'a> {
    /// The key to verify with.
    Found(&'a VerifyKey),
    /// No key has this `kid` (or, without a `kid`, no single key fits the algorithm).
    NotFound,
    /// The `kid` names keys, but none for this algorithm.
    Mismatch,
}

/// Private members of RSA, EC and OKP JWKs (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

impl KeySet {
    /// Parse a JWK set document (`{"keys": [...]}`).
    ///
    /// # Errors
    /// [`FetchError::InvalidJwks`] if the document is not a JSON object with a `keys` array, and
    /// [`FetchError::NoUsableKeys`] if every key was skipped.
    pub fn from_json(document: &[u8]) -> Result<Self, FetchError> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<Value>,
        }
        let doc: Document =
            serde_json::from_slice(document).map_err(|e| FetchError::InvalidJwks(e.to_string()))?;
        let mut keys: Vec<VerifyKey> = Vec::with_capacity(doc.keys.len());
        let mut skipped = Vec::new();
        for (index, value) in doc.keys.iter().enumerate() {
            let kid = value.get("kid").and_then(Value::as_str).map(str::to_owned);
            let parsed = parse_key(value).and_then(|k| {
                let duplicate =
                    k.kid.is_some() && keys.iter().any(|e| e.kid == k.kid && e.alg == k.alg);
                if duplicate {
                    Err(SkipReason::DuplicateKid)
                } else {
                    Ok(k)
                }
            });
            match parsed {
                Ok(k) => keys.push(k),
                Err(reason) => skipped.push(SkippedKey { index, kid, reason }),
            }
        }
        if keys.is_empty() {
            return Err(FetchError::NoUsableKeys { skipped });
        }
        Ok(Self { keys, skipped })
    }

    /// How many usable keys the set holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no usable key (never true for a set built by [`KeySet::from_json`]).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys that were skipped, and why.
    #[must_use]
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// The usable keys as `(kid, algorithm)` pairs, in document order.
    pub fn keys(&self) -> impl Iterator<Item = (Option<&str>, Algorithm)> {
        self.keys.iter().map(|k| (k.kid.as_deref(), k.alg))
    }

    /// The key for a token with this `kid` and algorithm.
    ///
    /// With a `kid`, only keys with that `kid` are candidates, and one of them must be bound to
    /// `alg`. Without a `kid`, exactly one key of the set must be bound to `alg` (several would
    /// make the choice ambiguous, and trying each would multiply the cost of a forged token).
    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        if let Some(kid) = kid {
            let mut named = false;
            for k in &self.keys {
                if k.kid.as_deref() == Some(kid) {
                    if k.alg == alg {
                        return Lookup::Found(k);
                    }
                    named = true;
                }
            }
            return if named {
                Lookup::Mismatch
            } else {
                Lookup::NotFound
            };
        }
        let mut fitting = self.keys.iter().filter(|k| k.alg == alg);
        match (fitting.next(), fitting.next()) {
            (Some(k), None) => Lookup::Found(k),
            (Some(_), Some(_)) => Lookup::NotFound,
            (None, _) if self.keys.len() == 1 => Lookup::Mismatch,
            (None, _) => Lookup::NotFound,
        }
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Keys<'a>(&'a [VerifyKey]);
        impl fmt::Debug for Keys<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|k| (k.kid.as_deref(), k.alg)))
                    .finish()
            }
        }
        f.debug_struct("KeySet")
            .field("keys", &Keys(&self.keys))
            .field("skipped", &self.skipped)
            .finish()
    }
}

fn b64(s: &str) -> Result<Vec<u8>, SkipReason> {
    URL_SAFE_NO_PAD.decode(s).map_err(|_| SkipReason::Malformed)
}

/// The algorithm a JWK names, if it is a signature algorithm this crate verifies.
fn key_algorithm(alg: KeyAlgorithm) -> Result<Algorithm, SkipReason> {
    match alg {
        KeyAlgorithm::RS256 => Ok(Algorithm::RS256),
        KeyAlgorithm::RS384 => Ok(Algorithm::RS384),
        KeyAlgorithm::RS512 => Ok(Algorithm::RS512),
        KeyAlgorithm::PS256 => Ok(Algorithm::PS256),
        KeyAlgorithm::PS384 => Ok(Algorithm::PS384),
        KeyAlgorithm::PS512 => Ok(Algorithm::PS512),
        KeyAlgorithm::ES256 => Ok(Algorithm::ES256),
        KeyAlgorithm::ES384 => Ok(Algorithm::ES384),
        KeyAlgorithm::EdDSA => Ok(Algorithm::EdDSA),
        KeyAlgorithm::RSA1_5 | KeyAlgorithm::RSA_OAEP | KeyAlgorithm::RSA_OAEP_256 => {
            Err(SkipReason::NotForSignature)
        }
        _ => Err(SkipReason::UnsupportedAlgorithm),
    }
}

/// Bits in a big-endian unsigned integer without leading zero octets.
fn bit_len(n: &[u8]) -> usize {
    match n.first() {
        None => 0,
        Some(&first) => (n.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

fn parse_key(value: &Value) -> Result<VerifyKey, SkipReason> {
    let obj = value.as_object().ok_or(SkipReason::Malformed)?;
    let kid = match obj.get("kid") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str().into()),
        Some(_) => return Err(SkipReason::Malformed),
    };
    match obj.get("kty").and_then(Value::as_str) {
        Some("RSA" | "EC" | "OKP") => {}
        Some("oct") => return Err(SkipReason::Symmetric),
        Some(_) => return Err(SkipReason::UnsupportedKeyType),
        None => return Err(SkipReason::Malformed),
    }
    if PRIVATE_MEMBERS.iter().any(|m| obj.contains_key(*m)) {
        return Err(SkipReason::PrivateKey);
    }
    let jwk: Jwk = serde_json::from_value(value.clone()).map_err(|_| SkipReason::Malformed)?;
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(_) => return Err(SkipReason::NotForSignature),
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err(SkipReason::NotForSignature);
    }
    let named = jwk.common.key_algorithm.map(key_algorithm).transpose()?;
    let (alg, key) = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let alg = named.unwrap_or(Algorithm::RS256);
            let params = alg.rsa_params().ok_or(SkipReason::AlgorithmMismatch)?;
            let n = b64(&p.n)?;
            let e = b64(&p.e)?;
            let bits = bit_len(&n);
            if n.first() == Some(&0) || e.first() == Some(&0) || e.is_empty() {
                return Err(SkipReason::Malformed);
            }
            // A public exponent must be odd and at least 3 (RFC 8017 §3.1); `e = 1` would make
            // every message its own signature. More than 32 bits is refused, as by BoringSSL
            // and aws-lc.
            if e.len() > 4 || e.last().is_none_or(|last| last & 1 == 0) || e == [1] {
                return Err(SkipReason::Malformed);
            }
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(SkipReason::KeySize);
            }
            let key = RsaPublicKeyComponents { n: &n, e: &e }
                .to_parsed_public_key(params)
                .map_err(|_| SkipReason::Malformed)?;
            (alg, key)
        }
        AlgorithmParameters::EllipticCurve(p) => {
            let (fits, len) = match p.curve {
                EllipticCurve::P256 => (Algorithm::ES256, 32),
                EllipticCurve::P384 => (Algorithm::ES384, 48),
                _ => return Err(SkipReason::UnsupportedCurve),
            };
            let alg = named.unwrap_or(fits);
            if alg != fits {
                return Err(SkipReason::AlgorithmMismatch);
            }
            let (x, y) = (b64(&p.x)?, b64(&p.y)?);
            if x.len() != len || y.len() != len {
                return Err(SkipReason::Malformed);
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let params = alg.point_params().ok_or(SkipReason::AlgorithmMismatch)?;
            let key = ParsedPublicKey::new(params, &point).map_err(|_| SkipReason::Malformed)?;
            (alg, key)
        }
        AlgorithmParameters::OctetKeyPair(p) => {
            if p.curve != EllipticCurve::Ed25519 {
                return Err(SkipReason::UnsupportedCurve);
            }
            let alg = named.unwrap_or(Algorithm::EdDSA);
            if alg.family() != KeyFamily::Ed25519 {
                return Err(SkipReason::AlgorithmMismatch);
            }
            let x = b64(&p.x)?;
            if x.len() != 32 {
                return Err(SkipReason::Malformed);
            }
            let params = alg.point_params().ok_or(SkipReason::AlgorithmMismatch)?;
            let key = ParsedPublicKey::new(params, &x).map_err(|_| SkipReason::Malformed)?;
            (alg, key)
        }
        AlgorithmParameters::OctetKey(_) => return Err(SkipReason::Symmetric),
        _ => {
            // `kty` is RSA, EC or OKP but the members did not parse as such a key: an unknown
            // curve name, or missing or mistyped members.
            let known = ["P-256", "P-384", "P-521", "Ed25519"];
            return match obj.get("crv").and_then(Value::as_str) {
                Some(crv) if !known.contains(&crv) => Err(SkipReason::UnsupportedCurve),
                _ => Err(SkipReason::Malformed),
            };
        }
    };
    Ok(VerifyKey { kid, alg, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8037 Appendix A.2: the Ed25519 public key.
    const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    /// A P-256 public key (RFC 7515 Appendix A.3).
    const EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const EC_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
    /// The RSA public key of RFC 7515 Appendix A.2 (2048 bits).
    const RSA_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";

    fn set(keys: &str) -> Result<KeySet, FetchError> {
        KeySet::from_json(format!(r#"{{"keys":[{keys}]}}"#).as_bytes())
    }

    fn skipped(key: &str) -> SkipReason {
        let s = set(&format!(
            r#"{key}, {{"kty":"OKP","crv":"Ed25519","x":"{ED_X}","kid":"good"}}"#
        ))
        .unwrap();
        assert_eq!(s.len(), 1, "{key}");
        assert_eq!(s.skipped().len(), 1, "{key}");
        s.skipped()[0].reason
    }

    #[test]
    fn usable_keys_get_one_algorithm_each() {
        let s = set(&format!(
            r#"{{"kty":"RSA","n":"{RSA_N}","e":"AQAB","kid":"r"}},
               {{"kty":"RSA","n":"{RSA_N}","e":"AQAB","kid":"p","alg":"PS384","use":"sig"}},
               {{"kty":"EC","crv":"P-256","x":"{EC_X}","y":"{EC_Y}","kid":"e","key_ops":["verify"]}},
               {{"kty":"OKP","crv":"Ed25519","x":"{ED_X}"}}"#
        ))
        .unwrap();
        let keys: Vec<_> = s.keys().collect();
        assert_eq!(
            keys,
            vec![
                (Some("r"), Algorithm::RS256),
                (Some("p"), Algorithm::PS384),
                (Some("e"), Algorithm::ES256),
                (None, Algorithm::EdDSA),
            ]
        );
        assert!(s.skipped().is_empty());
        assert!(format!("{s:?}").contains("PS384"));
    }

    #[test]
    fn unusable_keys_are_skipped_with_their_reason() {
        use SkipReason as R;
        let rsa = |extra: &str| format!(r#"{{"kty":"RSA","n":"{RSA_N}","e":"AQAB"{extra}}}"#);
        assert_eq!(skipped(&rsa(r#","use":"enc""#)), R::NotForSignature);
        assert_eq!(
            skipped(&rsa(r#","key_ops":["encrypt"]"#)),
            R::NotForSignature
        );
        assert_eq!(skipped(&rsa(r#","alg":"RSA-OAEP""#)), R::NotForSignature);
        assert_eq!(skipped(&rsa(r#","alg":"HS256""#)), R::UnsupportedAlgorithm);
        assert_eq!(skipped(&rsa(r#","alg":"ES256""#)), R::AlgorithmMismatch);
        assert_eq!(skipped(&rsa(r#","alg":"none""#)), R::UnsupportedAlgorithm);
        assert_eq!(skipped(&rsa(r#","d":"AQAB""#)), R::PrivateKey);
        assert_eq!(skipped(&rsa(r#","kid":7"#)), R::Malformed);
        assert_eq!(
            skipped(r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#),
            R::KeySize
        );
        // Exponents: 1, even, zero-padded, longer than 32 bits.
        for e in ["AQ", "Ag", "AAEAAQ", "AQAAAAE"] {
            assert_eq!(
                skipped(&format!(r#"{{"kty":"RSA","n":"{RSA_N}","e":"{e}"}}"#)),
                R::Malformed,
                "e = {e}"
            );
        }
        assert!(set(&format!(r#"{{"kty":"RSA","n":"{RSA_N}","e":"Aw"}}"#)).is_ok());
        assert_eq!(skipped(r#"{"kty":"RSA","e":"AQAB"}"#), R::Malformed);
        assert_eq!(
            skipped(r#"{"kty":"RSA","n":"!!","e":"AQAB"}"#),
            R::Malformed
        );
        assert_eq!(skipped(r#"{"kty":"oct","k":"c2VjcmV0"}"#), R::Symmetric);
        assert_eq!(skipped(r#"{"kty":"XYZ"}"#), R::UnsupportedKeyType);
        assert_eq!(skipped(r#"{"n":"AQAB"}"#), R::Malformed);
        assert_eq!(skipped(r#""a string""#), R::Malformed);
        assert_eq!(
            skipped(&format!(
                r#"{{"kty":"EC","crv":"P-521","x":"{EC_X}","y":"{EC_Y}"}}"#
            )),
            R::UnsupportedCurve
        );
        assert_eq!(
            skipped(&format!(
                r#"{{"kty":"EC","crv":"secp256k1","x":"{EC_X}","y":"{EC_Y}"}}"#
            )),
            R::UnsupportedCurve
        );
        assert_eq!(
            skipped(&format!(
                r#"{{"kty":"EC","crv":"P-256","x":"{EC_X}","y":"{EC_X}"}}"#
            )),
            R::Malformed,
            "a point not on the curve"
        );
        assert_eq!(
            skipped(&format!(
                r#"{{"kty":"EC","crv":"P-256","x":"{EC_X}","y":"{EC_Y}","alg":"ES384"}}"#
            )),
            R::AlgorithmMismatch
        );
        assert_eq!(
            skipped(&format!(
                r#"{{"kty":"OKP","crv":"Ed25519","x":"{EC_X}AA"}}"#
            )),
            R::Malformed
        );
        assert_eq!(
            skipped(&format!(
                r#"{{"kty":"OKP","crv":"Ed25519","x":"{ED_X}","alg":"RS256"}}"#
            )),
            R::AlgorithmMismatch
        );
        assert_eq!(
            skipped(&format!(
                r#"{{"kty":"OKP","crv":"Ed25519","x":"{ED_X}","kid":"good"}}"#
            )),
            R::DuplicateKid
        );
    }

    #[test]
    fn junk_documents_are_errors() {
        for doc in [
            &b"not json"[..],
            b"{}",
            b"[]",
            b"{\"keys\":{}}",
            b"{\"keys\":7}",
            b"",
        ] {
            assert!(matches!(
                KeySet::from_json(doc),
                Err(FetchError::InvalidJwks(_))
            ));
        }
        assert_eq!(
            KeySet::from_json(br#"{"keys":[]}"#).unwrap_err(),
            FetchError::NoUsableKeys { skipped: vec![] }
        );
        let Err(FetchError::NoUsableKeys { skipped }) =
            KeySet::from_json(br#"{"keys":[{"kty":"oct","k":"AA","kid":"h"},1]}"#)
        else {
            panic!("expected NoUsableKeys")
        };
        assert_eq!(
            skipped,
            vec![
                SkippedKey {
                    index: 0,
                    kid: Some("h".into()),
                    reason: SkipReason::Symmetric
                },
                SkippedKey {
                    index: 1,
                    kid: None,
                    reason: SkipReason::Malformed
                },
            ]
        );
    }

    // covers 8725-3.1-a: a key is found only for its own single algorithm.
    #[test]
    fn lookup_by_kid_and_algorithm() {
        let s = set(&format!(
            r#"{{"kty":"RSA","n":"{RSA_N}","e":"AQAB","kid":"r","alg":"RS256"}},
               {{"kty":"EC","crv":"P-256","x":"{EC_X}","y":"{EC_Y}","kid":"e"}}"#
        ))
        .unwrap();
        assert!(
            matches!(s.find(Some("r"), Algorithm::RS256), Lookup::Found(k) if k.kid() == Some("r"))
        );
        assert!(matches!(
            s.find(Some("r"), Algorithm::PS256),
            Lookup::Mismatch
        ));
        assert!(matches!(
            s.find(Some("r"), Algorithm::RS384),
            Lookup::Mismatch
        ));
        assert!(matches!(
            s.find(Some("x"), Algorithm::RS256),
            Lookup::NotFound
        ));
        assert!(matches!(
            s.find(Some("../../etc/passwd"), Algorithm::RS256),
            Lookup::NotFound
        ));
        // Without a kid, the single key bound to the algorithm.
        assert!(matches!(s.find(None, Algorithm::ES256), Lookup::Found(k) if k.kid() == Some("e")));
        assert!(matches!(s.find(None, Algorithm::EdDSA), Lookup::NotFound));
    }

    #[test]
    fn lookup_without_kid_needs_exactly_one_candidate() {
        let one = set(&format!(r#"{{"kty":"RSA","n":"{RSA_N}","e":"AQAB"}}"#)).unwrap();
        assert!(matches!(one.find(None, Algorithm::RS256), Lookup::Found(_)));
        assert!(matches!(one.find(None, Algorithm::PS256), Lookup::Mismatch));
        let two = set(&format!(
            r#"{{"kty":"RSA","n":"{RSA_N}","e":"AQAB"}},{{"kty":"RSA","n":"{RSA_N}","e":"AQAB"}}"#
        ))
        .unwrap();
        assert!(matches!(two.find(None, Algorithm::RS256), Lookup::NotFound));
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[1]), 1);
        assert_eq!(bit_len(&[0x80, 0]), 16);
        assert_eq!(bit_len(&b64(RSA_N).unwrap()), 2048);
    }
}
