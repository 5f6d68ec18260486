//! `cargo run --release --features aws -- gen` writes `vectors.json` (an RS256, an ES256 and an
//! EdDSA key as JWKs, and a token signed by each); then
//! `cargo run --release --features aws` and `CARGO_TARGET_DIR=target-rc cargo run --release
//! --features rc` time `jsonwebtoken::decode` (signature and claims, `DecodingKey` built once)
//! of the same tokens with each backend: median of 15 batches of 400 decodes.
use std::time::Instant;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, jwk::Jwk};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    aud: String,
    exp: u64,
    iat: u64,
}

#[cfg(feature = "aws")]
fn generate() {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair,
        RsaPublicKeyComponents,
    };
    use base64::Engine as _;
    use jsonwebtoken::{EncodingKey, Header, encode};
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let claims = Claims {
        sub: "user-1".into(),
        iss: "https://idp.example".into(),
        aud: "app".into(),
        exp: 4_000_000_000,
        iat: 1_700_000_000,
    };
    let mut out = Vec::new();

    let kp = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let der: Pkcs8V1Der<'_> = kp.as_der().unwrap();
    let public = RsaPublicKeyComponents::<Vec<u8>>::from(kp.public_key());
    let jwk = serde_json::json!({"kty": "RSA", "n": b64(&public.n), "e": b64(&public.e), "alg": "RS256"});
    let pkcs1 = pkcs8_private_key(der.as_ref()).unwrap();
    let tok = encode(&Header::new(Algorithm::RS256), &claims, &EncodingKey::from_rsa_der(pkcs1)).unwrap();
    out.push(serde_json::json!({"alg": "RS256", "jwk": jwk, "token": tok}));

    let rng = SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).unwrap();
    let p = kp.public_key().as_ref();
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65]), "alg": "ES256"});
    let tok = encode(&Header::new(Algorithm::ES256), &claims, &EncodingKey::from_ec_der(doc.as_ref())).unwrap();
    out.push(serde_json::json!({"alg": "ES256", "jwk": jwk, "token": tok}));

    let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let kp = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
    let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(kp.public_key().as_ref()), "alg": "EdDSA"});
    let tok = encode(&Header::new(Algorithm::EdDSA), &claims, &EncodingKey::from_ed_der(doc.as_ref())).unwrap();
    out.push(serde_json::json!({"alg": "EdDSA", "jwk": jwk, "token": tok}));

    std::fs::write("vectors.json", serde_json::to_string_pretty(&out).unwrap()).unwrap();
}

/// The PKCS#1 key inside a PKCS#8 document (jsonwebtoken's aws-lc-rs RSA signer wants PKCS#1).
#[cfg(feature = "aws")]
fn pkcs8_private_key(der: &[u8]) -> Option<&[u8]> {
    fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = der.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let (bytes, rest) = rest.split_at_checked(usize::from(first & 0x7f))?;
            (bytes.iter().fold(0, |a, b| (a << 8) | usize::from(*b)), rest)
        };
        let (contents, after) = rest.split_at_checked(len)?;
        Some((tag, contents, after))
    }
    let (0x30, info, _) = element(der)? else { return None };
    let (0x02, _, rest) = element(info)? else { return None };
    let (0x30, _, rest) = element(rest)? else { return None };
    let (0x04, key, _) = element(rest)? else { return None };
    Some(key)
}

fn run() {
    let vectors: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string("vectors.json").unwrap()).unwrap();
    for item in vectors {
        let alg: Algorithm = item["alg"].as_str().unwrap().parse().unwrap();
        let jwk: Jwk = serde_json::from_value(item["jwk"].clone()).unwrap();
        let token = item["token"].as_str().unwrap().to_owned();
        let key = DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = Validation::new(alg);
        validation.set_audience(&["app"]);
        validation.set_issuer(&["https://idp.example"]);
        decode::<Claims>(&token, &key, &validation).unwrap();
        let mut medians = Vec::new();
        for _ in 0..15 {
            let n = 400;
            let t = Instant::now();
            for _ in 0..n {
                std::hint::black_box(decode::<Claims>(std::hint::black_box(&token), &key, &validation).unwrap());
            }
            medians.push(t.elapsed().as_nanos() as f64 / f64::from(n));
        }
        medians.sort_by(f64::total_cmp);
        println!("{alg:?}: median {:.0} ns/decode", medians[medians.len() / 2]);
    }
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        #[cfg(feature = "aws")]
        Some("gen") => generate(),
        _ => run(),
    }
}
