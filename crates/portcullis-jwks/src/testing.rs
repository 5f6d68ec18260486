//! Keys and tokens for tests, benchmarks and a development identity provider (feature
//! `testing`).
//!
//! [`TestKey::generate`] makes a fresh key pair for any [`Algorithm`]; [`TestKey::jwk`] is its
//! public JWK and [`TestKey::sign`] mints a token with it (with jsonwebtoken's encoder).
//!
//! ```
//! use portcullis_jwks::Algorithm;
//! use portcullis_jwks::testing::{TestKey, jwks};
//!
//! let key = TestKey::generate(Algorithm::EdDSA, Some("k1")).unwrap();
//! let token = key.sign(&serde_json::json!({"sub": "u"})).unwrap();
//! assert_eq!(token.split('.').count(), 3);
//! assert!(jwks(&[&key]).contains("\"kid\":\"k1\""));
//! ```

use std::fmt;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};

use crate::algorithm::{Algorithm, KeyFamily};

/// A key could not be generated or a token could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("test key error: {0}")]
pub struct TestKeyError(String);

fn err(e: impl fmt::Display) -> TestKeyError {
    TestKeyError(e.to_string())
}

/// A key pair and the algorithm it signs with.
pub struct TestKey {
    alg: Algorithm,
    kid: Option<String>,
    encoding: EncodingKey,
    jwk: Value,
    public_der: Vec<u8>,
}

impl fmt::Debug for TestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TestKey {
    /// A fresh key pair for `alg` (2048-bit RSA for the RSA algorithms), with `kid` if given. Its
    /// JWK names `alg` and `use: sig`.
    ///
    /// # Errors
    /// If the crypto backend fails.
    pub fn generate(alg: Algorithm, kid: Option<&str>) -> Result<Self, TestKeyError> {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let (encoding, mut jwk, public_der) = match alg.family() {
            KeyFamily::Rsa => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(err)?;
                let pkcs8: Pkcs8V1Der<'_> = pair.as_der().map_err(err)?;
                let public = pair.public_key();
                let spki: PublicKeyX509Der<'_> = public.as_der().map_err(err)?;
                let jwk = json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                });
                let pkcs1 = pkcs8_private_key(pkcs8.as_ref())
                    .ok_or_else(|| err("unexpected PKCS#8 encoding"))?;
                (
                    EncodingKey::from_rsa_der(pkcs1),
                    jwk,
                    spki.as_ref().to_vec(),
                )
            }
            KeyFamily::P256 | KeyFamily::P384 => {
                let (signing, crv, len) = if alg.family() == KeyFamily::P256 {
                    (&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32)
                } else {
                    (&ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48)
                };
                let doc =
                    EcdsaKeyPair::generate_pkcs8(signing, &SystemRandom::new()).map_err(err)?;
                let pair = EcdsaKeyPair::from_pkcs8(signing, doc.as_ref()).map_err(err)?;
                let point = pair.public_key().as_ref();
                let (x, y) = point
                    .get(1..=len)
                    .zip(point.get(len + 1..))
                    .ok_or_else(|| err("unexpected public key encoding"))?;
                let jwk = json!({"kty": "EC", "crv": crv, "x": b64(x), "y": b64(y)});
                let spki: PublicKeyX509Der<'_> = pair.public_key().as_der().map_err(err)?;
                (
                    EncodingKey::from_ec_der(doc.as_ref()),
                    jwk,
                    spki.as_ref().to_vec(),
                )
            }
            KeyFamily::Ed25519 => {
                let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(err)?;
                let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(err)?;
                let jwk =
                    json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())});
                let spki: PublicKeyX509Der<'_> = pair.public_key().as_der().map_err(err)?;
                (
                    EncodingKey::from_ed_der(doc.as_ref()),
                    jwk,
                    spki.as_ref().to_vec(),
                )
            }
        };
        if let Value::Object(map) = &mut jwk {
            map.insert("alg".into(), alg.as_str().into());
            map.insert("use".into(), "sig".into());
            if let Some(kid) = kid {
                map.insert("kid".into(), kid.into());
            }
        }
        Ok(Self {
            alg,
            kid: kid.map(str::to_owned),
            encoding,
            jwk,
            public_der,
        })
    }

    /// The algorithm the key signs with.
    #[must_use]
    pub const fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The public key as a JWK.
    #[must_use]
    pub fn jwk(&self) -> Value {
        self.jwk.clone()
    }

    /// The public key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo): what an attacker would use as
    /// an HMAC secret in an algorithm-confusion attack.
    #[must_use]
    pub fn public_key_pem(&self) -> String {
        let body = STANDARD.encode(&self.public_der);
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        let mut rest = body.as_str();
        while !rest.is_empty() {
            let (line, tail) = rest.split_at(rest.len().min(64));
            pem.push_str(line);
            pem.push('\n');
            rest = tail;
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        pem
    }

    /// The private key, for jsonwebtoken.
    #[must_use]
    pub const fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// A header for this key: its algorithm, its `kid`, `typ: JWT`.
    #[must_use]
    pub fn header(&self) -> Header {
        let mut h = Header::new(self.alg.to_jsonwebtoken());
        h.kid.clone_from(&self.kid);
        h
    }

    /// A token with `claims`, signed by this key, with [`TestKey::header`].
    ///
    /// # Errors
    /// If the claims do not serialize or signing fails.
    pub fn sign(&self, claims: &impl Serialize) -> Result<String, TestKeyError> {
        self.sign_with(&self.header(), claims)
    }

    /// A token with `claims` and the given header, signed by this key.
    ///
    /// # Errors
    /// If the claims do not serialize or signing fails (for example a header algorithm this key
    /// cannot sign with).
    pub fn sign_with(
        &self,
        header: &Header,
        claims: &impl Serialize,
    ) -> Result<String, TestKeyError> {
        jsonwebtoken::encode(header, claims, &self.encoding).map_err(err)
    }
}

impl TestKey {
    /// A token whose header and claims are exactly the given texts (which need not be valid
    /// JSON), signed by this key with its algorithm: for hostile-token tests and fuzzing.
    ///
    /// # Errors
    /// If signing fails.
    pub fn sign_raw(&self, header: &str, claims: &str) -> Result<String, TestKeyError> {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let signature = jsonwebtoken::crypto::sign(
            input.as_bytes(),
            &self.encoding,
            self.alg.to_jsonwebtoken(),
        )
        .map_err(err)?;
        Ok(format!("{input}.{signature}"))
    }
}

/// One DER element at the start of `der`: its tag, its contents, and what follows it.
fn der_element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(n)?;
        (
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
            rest,
        )
    };
    let (contents, after) = rest.split_at_checked(len)?;
    Some((tag, contents, after))
}

/// The `privateKey` octets of a PKCS#8 `PrivateKeyInfo` (RFC 5208 §5): for RSA, the PKCS#1
/// `RSAPrivateKey` that jsonwebtoken's aws-lc-rs signer expects.
fn pkcs8_private_key(der: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const OCTET_STRING: u8 = 0x04;
    let (SEQUENCE, info, _) = der_element(der)? else {
        return None;
    };
    let (INTEGER, _version, rest) = der_element(info)? else {
        return None;
    };
    let (SEQUENCE, _algorithm, rest) = der_element(rest)? else {
        return None;
    };
    let (OCTET_STRING, key, _) = der_element(rest)? else {
        return None;
    };
    Some(key)
}

/// A JWK set document holding the public keys of `keys`.
#[must_use]
pub fn jwks(keys: &[&TestKey]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeySet;

    #[test]
    fn every_algorithm_round_trips_through_a_key_set() {
        for alg in Algorithm::ALL {
            let key = TestKey::generate(alg, Some("k")).unwrap();
            let set = KeySet::from_json(jwks(&[&key]).as_bytes()).unwrap();
            assert_eq!(set.keys().collect::<Vec<_>>(), vec![(Some("k"), alg)]);
            assert!(key.sign(&json!({"a": 1})).is_ok());
            assert!(
                key.public_key_pem()
                    .starts_with("-----BEGIN PUBLIC KEY-----\nM")
            );
        }
    }
}
