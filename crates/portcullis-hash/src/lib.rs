//! Keyed, deterministic token hashing for OAuth servers that store only hashes.
//!
//! An authorization server must find a presented code or refresh token in its store, yet must not
//! keep the token itself: a leaked database must not be a leaked set of live credentials. A salted
//! password hash (bcrypt, Argon2) makes lookup impossible; a bare SHA-256 is fine for 256-bit random
//! tokens but not for low-entropy values such as IP addresses. This crate uses a keyed
//! HMAC-SHA256 for everything:
//!
//! - [`Keyring`]: the current key and any previous ones, loaded from `HMAC_SECRET` and
//!   `HMAC_PREVIOUS_SECRETS` (or bytes). Keys shorter than 32 bytes are refused; keys are never
//!   truncated.
//! - [`TokenHasher`]: hashes for a [`Purpose`] (domain separation: a refresh token's hash is never
//!   an access token's), with each key's state prepared once so a hash costs two SHA-256
//!   compressions. New records use the current key; lookups try [`TokenHasher::candidates`] under
//!   every key, so rotating the key does not log anyone out.
//! - [`TokenHash`]: the 32-byte result, with constant-time equality and hex/base64url forms.
//! - [`OpaqueToken`]: the token format `<prefix>_<base62 body><checksum>` with 256 bits from the OS
//!   CSPRNG and a CRC32 checksum that rejects malformed tokens before any hashing.
//! - Binding values ([`TokenHasher::hash_user_agent`], [`TokenHasher::hash_ip_prefix`]) hashed with
//!   the same keyed hasher, never a bare SHA-256.
//!
//! ```
//! use portcullis_hash::{Keyring, OpaqueToken, Purpose, TokenHasher, TokenPrefix};
//!
//! // At start: load the keys (here from values; `Keyring::from_env()` reads HMAC_SECRET).
//! let hasher = TokenHasher::new(Keyring::from_values(
//!     "base64:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
//!     None,
//! )?);
//!
//! // Issuing: mint a token, store only its hash, give the plaintext to the client once.
//! let token = OpaqueToken::mint(TokenPrefix::REFRESH)?;
//! let stored = hasher.hash(Purpose::RefreshToken, token.expose_secret().as_bytes());
//!
//! // Redeeming: reject malformed input before touching the store, then look up by hash.
//! let presented = OpaqueToken::parse(TokenPrefix::REFRESH, token.expose_secret())?;
//! let found = hasher
//!     .candidates(Purpose::RefreshToken, presented.as_str().as_bytes())
//!     .any(|candidate| candidate == stored);
//! assert!(found);
//! assert!(OpaqueToken::parse(TokenPrefix::REFRESH, "pcr_not-a-token").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod binding;
mod hasher;
mod keyring;
mod prepared;
mod token;

pub use binding::{DEFAULT_IPV4_PREFIX, DEFAULT_IPV6_PREFIX, IpPrefixLen, ip_prefix_bytes};
pub use hasher::{Purpose, TokenHash, TokenHasher};
pub use keyring::{ENV_PREVIOUS_SECRETS, ENV_SECRET, KeyError, KeyId, Keyring, MIN_KEY_LEN};
pub use token::{
    BODY_BYTES, BODY_LEN, CHECKSUM_LEN, MAX_PREFIX_LEN, OpaqueToken, RngError, TokenFormatError,
    TokenPrefix, TokenRef,
};

/// The raw keyed HMAC-SHA256 this crate is built on, without purpose separation.
///
/// Exposed for test vectors (RFC 4231) and for adopters migrating from a plain
/// `HMAC-SHA256(secret, token)` scheme: [`raw_hmac_sha256`] computes exactly that, so old hashes
/// can be recognised during a backfill. New records should use [`TokenHasher::hash`].
#[must_use]
pub fn raw_hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    prepared::PreparedHmac::new(key).mac(message)
}
