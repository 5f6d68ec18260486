//! Verify the JWTs of an upstream identity provider against its cached JWKS, strictly.
//!
//! A server that signs users in at an identity provider (IdP) receives, on every request, a JWT
//! the IdP signed with a key it publishes at `<idp>/.well-known/jwks.json` (Hanko's session
//! cookie, an OpenID Connect ID token). This crate verifies such tokens so that the three things
//! that usually go wrong do not:
//!
//! - **Speed.** The JWKS is fetched once and each key is parsed once into the crypto backend's
//!   verification key; a verification with a known `kid` takes no lock, makes no allocation for
//!   keys, and does not parse any key. It costs less than one plain `jsonwebtoken::decode` with a
//!   key prepared in advance (see *Performance* below).
//! - **Robustness.** The IdP rotates keys (an unknown `kid` triggers one refetch), goes down
//!   (cached keys keep serving up to a maximum staleness, then verification says
//!   [`VerifyError::KeysUnavailable`], a 503, not a 401), or is flooded with tokens carrying junk
//!   `kid`s (at most one fetch per cooldown, and concurrent misses share one fetch). See
//!   [`JwksCache`].
//! - **Strictness** (RFC 8725). An explicit algorithm allow-list that cannot even name `none` or
//!   HMAC; each key bound to exactly one algorithm, which must be the token's; `iss`, `aud`,
//!   `exp`, `nbf`, `iat` checked with a bounded leeway and time from a [`Clock`]; required claims;
//!   a `typ` rule so that an access token is not taken for a session token; `crit` rejected; a
//!   maximum token length checked before anything is decoded. See [`TokenRules`] for the list
//!   and order of checks.
//!
//! Every failure is a [`VerifyError`], and [`VerifyError::oauth_error`] maps it, in one place, to
//! the RFC 6750 response: `invalid_token` (401), or `temporarily_unavailable` (503) when the IdP's
//! keys cannot be had.
//!
//! # Example
//!
//! Build a verifier for an IdP, verify a token from a request, read its typed claims:
//!
//! ```
//! use portcullis_jwks::{Algorithm, JwtVerifier, VerifyError};
//! use serde::Deserialize;
//!
//! /// The claims this application reads from the IdP's session token.
//! #[derive(Debug, Deserialize)]
//! struct Session {
//!     sub: String,
//!     session_id: String,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let idp = dev_idp::start().await;
//! # let idp_url = idp.url.as_str();
//! # let token_from_cookie = idp.token.as_str();
//! // Once, at startup: keys come from `<idp_url>/.well-known/jwks.json`.
//! let verifier = JwtVerifier::builder(idp_url)
//!     .audience("my-app")
//!     .algorithms([Algorithm::RS256, Algorithm::EdDSA])
//!     .build()?;
//! // Optional: fetch now, and keep the keys fresh in the background.
//! verifier.cache().refresh().await?;
//! let _refresher = verifier.cache().spawn_background_refresh();
//!
//! // On each request: one verification, typed claims back.
//! match verifier.verify::<Session>(token_from_cookie).await {
//!     Ok(verified) => {
//!         assert_eq!(verified.claims.sub, "user-42");
//!         assert_eq!(verified.claims.session_id, "s-1");
//!         assert_eq!(verified.registered.aud, ["my-app"]);
//!     }
//!     Err(e) => {
//!         // 401 invalid_token, or 503 temporarily_unavailable if the IdP is down.
//!         let response = e.oauth_error();
//!         panic!("{} {}", response.status(), response.to_json());
//!     }
//! }
//! // A tampered token is refused.
//! let tampered = format!("{token_from_cookie}x");
//! assert!(matches!(
//!     verifier.verify::<Session>(&tampered).await,
//!     Err(VerifyError::BadSignature | VerifyError::Malformed(_))
//! ));
//! assert_eq!(verifier.stats().fetches, 1);
//! # Ok(())
//! # }
//! # mod dev_idp {
//! #     use axum::{Router, routing::get};
//! #     use portcullis_jwks::{Algorithm, testing::{TestKey, jwks}};
//! #     pub struct Idp { pub url: String, pub token: String }
//! #     pub async fn start() -> Idp {
//! #         let key = TestKey::generate(Algorithm::EdDSA, Some("k1")).unwrap();
//! #         let set = jwks(&[&key]);
//! #         let app = Router::new().route("/.well-known/jwks.json", get(move || {
//! #             let set = set.clone();
//! #             async move { ([("content-type", "application/json")], set) }
//! #         }));
//! #         let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! #         let url = format!("http://{}", listener.local_addr().unwrap());
//! #         tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
//! #         let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
//! #         let token = key.sign(&serde_json::json!({
//! #             "iss": url, "aud": ["my-app"], "sub": "user-42", "session_id": "s-1",
//! #             "iat": now, "exp": now + 3600,
//! #         })).unwrap();
//! #         Idp { url, token }
//! #     }
//! # }
//! ```
//!
//! (Plain `http` is accepted only for loopback addresses, as in this example's local IdP; real
//! IdPs are fetched over `https`.)
//!
//! # Performance, and the choice of crypto backend
//!
//! `jsonwebtoken` 11 has two crypto backends. `jsonwebtoken::decode` (signature and claims) of
//! the same tokens with a `DecodingKey` built once, median of 15 batches of 400, on this
//! project's 2-core build machine (details, program and commands in `docs/backend.md` of this
//! crate):
//!
//! | algorithm | `rust_crypto` | `aws_lc_rs` | ratio |
//! |-----------|--------------:|------------:|------:|
//! | RS256     | 192–197 µs    | 21.5–22.8 µs | 8.9× |
//! | ES256     | 277–313 µs    | 52.5–54.9 µs | 5.5× |
//! | EdDSA     | 38.0–39.8 µs  | 39.3–40.8 µs | 1.0× |
//!
//! **Decision: `aws_lc_rs`.** RSA, the algorithm most IdPs sign with, is about 9× faster there,
//! ES256 5.5×, and aws-lc-rs is also the provider rustls (and so reqwest) uses here, so its C
//! library is built once.
//!
//! A `DecodingKey` holds only the key's bytes: jsonwebtoken rebuilds the backend key on every
//! call (for RSA from `n` and `e`, with a new Montgomery context; for EC by decoding and checking
//! the point), and parses the header twice. This crate parses each key once into an aws-lc-rs
//! `ParsedPublicKey` bound to one algorithm and verifies with it directly, keeping every check
//! (allow-list, key/algorithm binding, claims); jsonwebtoken still provides the JWK types, test
//! token encoding, and the reference verdicts `tests/differential.rs` compares against.
//!
//! Report rows (`cargo run --release -p portcullis-benches --bin report -- --only jwt`; ours vs.
//! `jsonwebtoken::decode` with a prepared `DecodingKey` and the same validation, interleaved,
//! median of three comparisons of 31 batches; run at a raised priority on one core of the shared
//! machine):
//!
//! | row | ours | baseline | ratio | goal |
//! |-----|-----:|---------:|------:|-----:|
//! | `jwt_cached_vs_raw_rs256` | 13.3–13.6 µs | 16.6–16.9 µs | 0.797–0.803 | ≤ 0.80: on the edge |
//! | `jwt_cached_vs_raw_es256` | 36.1 µs | 38.4 µs | 0.94 | ≤ 1.00: met |
//! | `jwt_cached_vs_raw_eddsa` | 25.6–26.0 µs | 26.8–27.3 µs | 0.95 | ≤ 1.00: met |
//! | `jwt_cached_vs_rebuild_rs256` | 13.4 µs | 17.7–17.9 µs | 0.75–0.76 | report |
//!
//! On this machine the prepared RSA key itself verifies only 1.16× faster than jsonwebtoken's
//! per-call rebuild (0.86), not the 1.35× the goal was set from, and header and claims parsing
//! plus base64 cost about 1 µs on top of the signature (the cache lookup about 25 ns); so the
//! RS256 row sits on its goal, met in some runs and missed by a fraction of a percent in others.
//! See `docs/backend.md`.
//!
//! # Features
//!
//! - `http` (default): [`HttpSource`], the reqwest/rustls JWKS fetcher.
//! - `testing`: [`testing`], key generation and token minting for tests, benchmarks and a
//!   development IdP.
//!
//! [`Clock`]: portcullis_core::Clock
#![forbid(unsafe_code)]

mod algorithm;
mod cache;
pub mod defaults;
mod error;
mod keys;
mod rules;
pub mod source;
#[cfg(feature = "testing")]
pub mod testing;
mod verifier;

pub use algorithm::{Algorithm, AlgorithmSet};
pub use cache::{BackgroundRefresh, CacheConfig, CacheStats, JwksCache};
pub use error::{ConfigError, FetchError, Malformed, VerifyError};
pub use keys::{KeySet, SkipReason, SkippedKey};
pub use rules::{
    RegisteredClaims, RequiredClaim, TokenRules, TokenRulesBuilder, TypRule, Verified,
    VerifiedHeader,
};
pub use source::{FetchedJwks, KeySource, StaticSource};
#[cfg(feature = "http")]
pub use source::{HttpSource, HttpSourceBuilder};
pub use verifier::{JwtVerifier, JwtVerifierBuilder};
