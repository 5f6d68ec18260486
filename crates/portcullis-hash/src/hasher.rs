//! Keyed, deterministic, purpose-separated hashing of tokens.

use std::fmt;

use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::keyring::{KeyId, Keyring};
use crate::prepared::PreparedHmac;

/// What a hash is for. Each purpose hashes under its own subkey, so the same bytes hashed for two
/// purposes never produce the same hash: a refresh token's hash can never be found by a lookup of
/// access tokens, and a client secret can never be replayed as a code.
///
/// The subkey of a purpose is `HMAC-SHA256(key, "portcullis-hash/v1/purpose/" || label)`; the
/// label of each purpose is fixed forever (it is part of every stored hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Purpose {
    /// Authorization codes.
    AuthorizationCode,
    /// Refresh tokens.
    RefreshToken,
    /// Opaque access tokens.
    AccessToken,
    /// Client secrets of confidential clients.
    ClientSecret,
    /// The user agent a grant is bound to.
    UserAgent,
    /// The IP prefix a grant is bound to.
    IpPrefix,
    /// A device identifier a grant is bound to.
    DeviceId,
    /// Anti-CSRF consent tokens.
    Consent,
}

impl Purpose {
    /// Every purpose.
    pub const ALL: [Self; 8] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::AccessToken,
        Self::ClientSecret,
        Self::UserAgent,
        Self::IpPrefix,
        Self::DeviceId,
        Self::Consent,
    ];

    /// The fixed label the purpose's subkey is derived from.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization-code",
            Self::RefreshToken => "refresh-token",
            Self::AccessToken => "access-token",
            Self::ClientSecret => "client-secret",
            Self::UserAgent => "user-agent",
            Self::IpPrefix => "ip-prefix",
            Self::DeviceId => "device-id",
            Self::Consent => "consent",
        }
    }
}

/// A 32-byte keyed hash of a token: what stores keep instead of the token.
///
/// Equality is constant-time. It is not secret (it is what the database holds), so `Debug` shows
/// a short hex prefix to tell records apart in diagnostics.
#[derive(Clone, Copy, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The length of a hash in bytes.
    pub const LEN: usize = 32;

    /// A hash from its bytes (as read back from storage).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A hash from a byte slice of exactly 32 bytes.
    #[must_use]
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The hash's bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex (64 characters).
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A hash from 64 hex digits.
    #[must_use]
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok().map(|()| Self(out))
    }

    /// Unpadded base64url (43 characters).
    #[must_use]
    pub fn to_base64url(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0)
    }

    /// A hash from unpadded base64url.
    #[must_use]
    pub fn from_base64url(s: &str) -> Option<Self> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()?;
        Self::from_slice(&bytes)
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::hash::Hash for TokenHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl ConstantTimeEq for TokenHash {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, ..] = self.0;
        write!(f, "TokenHash({})", hex::encode([a, b, c, d]))
    }
}

/// Per-purpose prepared states of one key.
struct PreparedKey {
    id: KeyId,
    code: PreparedHmac,
    refresh: PreparedHmac,
    access: PreparedHmac,
    client_secret: PreparedHmac,
    user_agent: PreparedHmac,
    ip_prefix: PreparedHmac,
    device_id: PreparedHmac,
    consent: PreparedHmac,
}

impl PreparedKey {
    fn new(id: KeyId, material: &[u8]) -> Self {
        let root = PreparedHmac::new(material);
        let derive = |p: Purpose| {
            let mut label = Vec::with_capacity(64);
            label.extend_from_slice(b"portcullis-hash/v1/purpose/");
            label.extend_from_slice(p.label().as_bytes());
            let mut subkey = root.mac(&label);
            let prepared = PreparedHmac::new(&subkey);
            zeroize::Zeroize::zeroize(&mut subkey);
            prepared
        };
        Self {
            id,
            code: derive(Purpose::AuthorizationCode),
            refresh: derive(Purpose::RefreshToken),
            access: derive(Purpose::AccessToken),
            client_secret: derive(Purpose::ClientSecret),
            user_agent: derive(Purpose::UserAgent),
            ip_prefix: derive(Purpose::IpPrefix),
            device_id: derive(Purpose::DeviceId),
            consent: derive(Purpose::Consent),
        }
    }

    fn get(&self, purpose: Purpose) -> &PreparedHmac {
        match purpose {
            Purpose::AuthorizationCode => &self.code,
            Purpose::RefreshToken => &self.refresh,
            Purpose::AccessToken => &self.access,
            Purpose::ClientSecret => &self.client_secret,
            Purpose::UserAgent => &self.user_agent,
            Purpose::IpPrefix => &self.ip_prefix,
            Purpose::DeviceId => &self.device_id,
            Purpose::Consent => &self.consent,
        }
    }
}

/// Hashes tokens under a [`Keyring`]: the current key for new records, every key for lookups.
///
/// Every key's per-purpose state is prepared once at construction, so a hash costs two SHA-256
/// compressions for tokens up to 55 bytes (this crate's tokens are 53) and no key schedule.
/// Cheap to share: wrap it in an `Arc`.
///
/// ```
/// use portcullis_hash::{Keyring, Purpose, TokenHasher};
///
/// let hasher = TokenHasher::new(Keyring::from_values("0123456789abcdef0123456789abcdef", None)?);
/// let stored = hasher.hash(Purpose::RefreshToken, b"pcr_example");
/// // Deterministic: the same token finds the same record.
/// assert_eq!(stored, hasher.hash(Purpose::RefreshToken, b"pcr_example"));
/// // Purpose-separated.
/// assert_ne!(stored, hasher.hash(Purpose::AccessToken, b"pcr_example"));
/// assert!(hasher.verify(Purpose::RefreshToken, b"pcr_example", &stored));
/// # Ok::<(), portcullis_hash::KeyError>(())
/// ```
pub struct TokenHasher {
    keys: Vec<PreparedKey>,
}

impl fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<KeyId> = self.keys.iter().map(|k| k.id).collect();
        f.debug_struct("TokenHasher")
            .field("key_ids", &ids)
            .finish_non_exhaustive()
    }
}

impl TokenHasher {
    /// Prepare every key of the ring. The ring (and its raw key material) can be dropped after.
    #[must_use]
    pub fn new(keyring: Keyring) -> Self {
        let keys = keyring
            .keys
            .iter()
            .map(|k| PreparedKey::new(k.id, k.material.expose_secret()))
            .collect();
        Self { keys }
    }

    /// The hash of `token` for `purpose` under the current key: what a new record stores.
    #[must_use]
    pub fn hash(&self, purpose: Purpose, token: &[u8]) -> TokenHash {
        // A hasher always has its current key (a Keyring cannot be empty).
        self.keys
            .first()
            .map_or(TokenHash([0; 32]), |k| TokenHash(k.get(purpose).mac(token)))
    }

    /// The hashes of `token` under every key, current first: what a lookup tries, in order, to
    /// find a record written before the last key rotation. Computed lazily.
    pub fn candidates<'a>(
        &'a self,
        purpose: Purpose,
        token: &'a [u8],
    ) -> impl ExactSizeIterator<Item = TokenHash> + 'a {
        self.keys
            .iter()
            .map(move |k| TokenHash(k.get(purpose).mac(token)))
    }

    /// Whether `stored` is the hash of `token` for `purpose` under any key of the ring. Every key
    /// is tried and compared in constant time, whichever matches.
    #[must_use]
    pub fn verify(&self, purpose: Purpose, token: &[u8], stored: &TokenHash) -> bool {
        let mut found = subtle::Choice::from(0);
        for candidate in self.candidates(purpose, token) {
            found |= candidate.ct_eq(stored);
        }
        found.into()
    }

    /// The current key's id.
    #[must_use]
    pub fn current_key_id(&self) -> KeyId {
        self.keys.first().map_or(KeyId::from_raw([0; 4]), |k| k.id)
    }

    /// The number of keys lookups try.
    #[must_use]
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::SecretBytes;

    fn ring(s: &str) -> Keyring {
        Keyring::new(SecretBytes::from(s.as_bytes())).unwrap()
    }

    #[test]
    fn purposes_are_separated() {
        let h = TokenHasher::new(ring("0123456789abcdef0123456789abcdef"));
        let mut seen = std::collections::HashSet::new();
        for p in Purpose::ALL {
            assert!(seen.insert(*h.hash(p, b"same bytes").as_bytes()), "{p:?}");
        }
        let labels: std::collections::HashSet<_> = Purpose::ALL.iter().map(|p| p.label()).collect();
        assert_eq!(labels.len(), Purpose::ALL.len());
    }

    #[test]
    fn lookup_after_rotation() {
        let old = "old-key-old-key-old-key-old-key-old";
        let new = "new-key-new-key-new-key-new-key-new";
        let before = TokenHasher::new(ring(old));
        let stored = before.hash(Purpose::RefreshToken, b"pcr_token");

        let after = TokenHasher::new(
            ring(new)
                .with_previous(SecretBytes::from(old.as_bytes()))
                .unwrap(),
        );
        // New records use the new key...
        assert_ne!(after.hash(Purpose::RefreshToken, b"pcr_token"), stored);
        // ...and lookups still find the old record, as the second candidate.
        let c: Vec<_> = after
            .candidates(Purpose::RefreshToken, b"pcr_token")
            .collect();
        assert_eq!(c.len(), 2);
        assert_eq!(c[1], stored);
        assert!(after.verify(Purpose::RefreshToken, b"pcr_token", &stored));
        assert!(!after.verify(Purpose::RefreshToken, b"pcr_other", &stored));
        assert!(!after.verify(Purpose::AccessToken, b"pcr_token", &stored));
        // Once the old key is dropped, the old record is no longer found.
        assert!(!TokenHasher::new(ring(new)).verify(Purpose::RefreshToken, b"pcr_token", &stored));
    }

    #[test]
    fn encodings_round_trip() {
        let h = TokenHasher::new(ring("0123456789abcdef0123456789abcdef"))
            .hash(Purpose::AccessToken, b"x");
        assert_eq!(h.to_hex().len(), 64);
        assert_eq!(TokenHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(h.to_base64url().len(), 43);
        assert_eq!(TokenHash::from_base64url(&h.to_base64url()), Some(h));
        assert_eq!(TokenHash::from_slice(h.as_bytes()), Some(h));
        assert_eq!(TokenHash::from_hex("zz"), None);
        assert_eq!(TokenHash::from_slice(&[0; 31]), None);
        assert!(format!("{h:?}").starts_with("TokenHash("));
        assert_eq!(format!("{h:?}").len(), "TokenHash(01234567)".len());
    }

    #[test]
    fn debug_shows_ids_only() {
        let secret = "debug-secret-debug-secret-debug-secret";
        let h = TokenHasher::new(ring(secret));
        let shown = format!("{h:?}");
        assert!(!shown.contains("debug-secret"));
        assert!(shown.contains(&h.current_key_id().to_string()));
    }
}
