//! HMAC keys: the current one and any number of previous ones, loaded from the environment or
//! from bytes.

use std::fmt;

use base64::Engine as _;
use portcullis_core::SecretBytes;

use crate::prepared::PreparedHmac;

/// The shortest key accepted: 32 bytes, the output size of SHA-256 (RFC 2104 §3 recommends keys
/// no shorter than the hash output; shorter keys weaken the MAC).
pub const MIN_KEY_LEN: usize = 32;

/// The environment variable holding the current key.
pub const ENV_SECRET: &str = "HMAC_SECRET";
/// The environment variable holding previous keys, comma-separated, newest first.
pub const ENV_PREVIOUS_SECRETS: &str = "HMAC_PREVIOUS_SECRETS";

/// Why a key or key ring was refused. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A required variable is not set (or is empty).
    #[error("{name} is not set: provide an HMAC key of at least {MIN_KEY_LEN} bytes")]
    Missing {
        /// Where the key was expected (an environment variable name or `"key"`).
        name: String,
    },
    /// The key is shorter than [`MIN_KEY_LEN`] bytes.
    #[error(
        "{name} is {len} bytes long; an HMAC key must be at least {MIN_KEY_LEN} bytes \
         (for example `base64:` followed by the output of `openssl rand -base64 32`)"
    )]
    TooShort {
        /// Where the key came from.
        name: String,
        /// Its length in bytes after decoding.
        len: usize,
    },
    /// A `base64:` value is not valid base64.
    #[error("{name} starts with `base64:` but the rest is not valid base64")]
    InvalidBase64 {
        /// Where the key came from.
        name: String,
    },
    /// A `hex:` value is not valid hex.
    #[error("{name} starts with `hex:` but the rest is not valid hex")]
    InvalidHex {
        /// Where the key came from.
        name: String,
    },
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Rng,
}

/// A short, public identifier of a key: the first 4 bytes of HMAC(key, "portcullis-hash/v1/key-id"),
/// in hex. It tells keys apart in logs and records without revealing anything about them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 4]);

impl KeyId {
    pub(crate) const fn from_raw(b: [u8; 4]) -> Self {
        Self(b)
    }

    /// The id's bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> [u8; 4] {
        self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// One HMAC key with its id. Key material is held in a [`SecretBytes`].
pub(crate) struct Key {
    pub(crate) id: KeyId,
    pub(crate) material: SecretBytes,
}

/// The current HMAC key and the previous ones still accepted for lookups.
///
/// New hashes always use the current key; a store finds records hashed under a previous key by
/// trying each key's hash in turn (see [`TokenHasher::candidates`](crate::TokenHasher::candidates)).
/// To rotate: make the old current key the first previous key, deploy a new current key, and
/// drop the previous key once every record hashed under it has expired.
///
/// # Reading a secret string
///
/// [`Keyring::parse_secret`] reads a value as follows, and nothing else is guessed:
/// - `base64:<value>`: standard or URL-safe base64, padded or not;
/// - `hex:<value>`: hexadecimal;
/// - anything else: the UTF-8 bytes of the string, exactly as given (not trimmed).
///
/// A value such as `3q2+7w==...` that *looks* like base64 is therefore read as raw bytes unless it
/// carries the `base64:` prefix. This is deliberate: services that pass `process.env.HMAC_SECRET`
/// or `os.Getenv("HMAC_SECRET")` straight to their HMAC use the string's bytes as the key, and
/// reading the same value the same way keeps their stored hashes valid. The length rule applies
/// to the decoded bytes.
///
/// `HMAC_PREVIOUS_SECRETS` is a comma-separated list, newest first; whitespace around each entry
/// is ignored and empty entries are skipped (a raw secret containing a comma or surrounding
/// whitespace must be given in `base64:` or `hex:` form).
///
/// ```
/// use portcullis_hash::Keyring;
///
/// let ring = Keyring::from_values(
///     "base64:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
///     Some("an-old-raw-secret-that-is-at-least-32-bytes"),
/// )?;
/// assert_eq!(ring.len(), 2);
/// assert!(Keyring::from_values("too short", None).is_err());
/// # Ok::<(), portcullis_hash::KeyError>(())
/// ```
pub struct Keyring {
    pub(crate) keys: Vec<Key>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.key_ids())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// A key ring with one current key.
    ///
    /// # Errors
    /// [`KeyError::TooShort`] if the key has fewer than [`MIN_KEY_LEN`] bytes.
    pub fn new(current: SecretBytes) -> Result<Self, KeyError> {
        Ok(Self {
            keys: vec![make_key("key", current)?],
        })
    }

    /// Add a previous key (accepted for lookups, never used for new hashes). Add newest first.
    ///
    /// # Errors
    /// [`KeyError::TooShort`] if the key has fewer than [`MIN_KEY_LEN`] bytes.
    pub fn with_previous(mut self, previous: SecretBytes) -> Result<Self, KeyError> {
        self.keys.push(make_key("previous key", previous)?);
        Ok(self)
    }

    /// A key ring with a fresh random 32-byte key from the OS CSPRNG, for development and tests.
    /// Hashes made with it are useless after a restart.
    ///
    /// # Errors
    /// [`KeyError::Rng`] if the operating system's generator fails.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = vec![0u8; MIN_KEY_LEN];
        getrandom::fill(&mut bytes).map_err(|_| KeyError::Rng)?;
        Self::new(SecretBytes::new(bytes))
    }

    /// A key ring from `HMAC_SECRET` and the optional `HMAC_PREVIOUS_SECRETS`.
    ///
    /// # Errors
    /// [`KeyError::Missing`] if `HMAC_SECRET` is unset or empty, and any error of
    /// [`Keyring::from_values`].
    pub fn from_env() -> Result<Self, KeyError> {
        let current = std::env::var(ENV_SECRET).ok().filter(|v| !v.is_empty());
        let Some(current) = current.map(portcullis_core::SecretString::new) else {
            return Err(KeyError::Missing {
                name: ENV_SECRET.to_owned(),
            });
        };
        let previous = std::env::var(ENV_PREVIOUS_SECRETS)
            .ok()
            .map(portcullis_core::SecretString::new);
        Self::from_values_named(
            current.expose_secret(),
            previous.as_ref().map(|p| p.expose_secret().as_str()),
            ENV_SECRET,
            ENV_PREVIOUS_SECRETS,
        )
    }

    /// A key ring from the textual values of `HMAC_SECRET` and `HMAC_PREVIOUS_SECRETS` (see the
    /// type's docs for how values are read).
    ///
    /// # Errors
    /// [`KeyError`] naming the offending variable: too short, bad base64 or hex, or missing.
    pub fn from_values(current: &str, previous: Option<&str>) -> Result<Self, KeyError> {
        Self::from_values_named(current, previous, ENV_SECRET, ENV_PREVIOUS_SECRETS)
    }

    fn from_values_named(
        current: &str,
        previous: Option<&str>,
        current_name: &str,
        previous_name: &str,
    ) -> Result<Self, KeyError> {
        if current.is_empty() {
            return Err(KeyError::Missing {
                name: current_name.to_owned(),
            });
        }
        let mut keys = vec![make_key(
            current_name,
            parse_secret_named(current, current_name)?,
        )?];
        let entries = previous
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty());
        for (i, entry) in entries.enumerate() {
            let name = format!("{previous_name} entry {}", i + 1);
            keys.push(make_key(&name, parse_secret_named(entry, &name)?)?);
        }
        Ok(Self { keys })
    }

    /// Decode one secret value (`base64:…`, `hex:…` or raw bytes; see the type's docs). The length
    /// is not checked here.
    ///
    /// # Errors
    /// [`KeyError::InvalidBase64`] or [`KeyError::InvalidHex`].
    pub fn parse_secret(value: &str) -> Result<SecretBytes, KeyError> {
        parse_secret_named(value, "key")
    }

    /// The number of keys (current plus previous).
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a key ring holds at least its current key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The current key's id.
    #[must_use]
    pub fn current_key_id(&self) -> KeyId {
        self.keys.first().map_or(KeyId([0; 4]), |k| k.id)
    }

    /// Every key's id, current first.
    #[must_use]
    pub fn key_ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(|k| k.id).collect()
    }
}

fn parse_secret_named(value: &str, name: &str) -> Result<SecretBytes, KeyError> {
    if let Some(b64) = value.strip_prefix("base64:") {
        let b64 = b64.trim_end_matches('=');
        let engine = if b64.contains(['-', '_']) {
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
        } else {
            &base64::engine::general_purpose::STANDARD_NO_PAD
        };
        engine
            .decode(b64)
            .map(SecretBytes::new)
            .map_err(|_| KeyError::InvalidBase64 {
                name: name.to_owned(),
            })
    } else if let Some(h) = value.strip_prefix("hex:") {
        hex::decode(h)
            .map(SecretBytes::new)
            .map_err(|_| KeyError::InvalidHex {
                name: name.to_owned(),
            })
    } else {
        Ok(SecretBytes::new(value.as_bytes().to_vec()))
    }
}

fn make_key(name: &str, material: SecretBytes) -> Result<Key, KeyError> {
    let len = material.expose_secret().len();
    if len < MIN_KEY_LEN {
        return Err(KeyError::TooShort {
            name: name.to_owned(),
            len,
        });
    }
    let tag = PreparedHmac::new(material.expose_secret()).mac(b"portcullis-hash/v1/key-id");
    let id = KeyId([tag[0], tag[1], tag[2], tag[3]]);
    Ok(Key { id, material })
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::string_slice
)]
mod tests {
    use super::*;

    const RAW32: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn short_keys_are_refused_with_their_length() {
        let err = Keyring::from_values("short", None).unwrap_err();
        assert_eq!(
            err,
            KeyError::TooShort {
                name: "HMAC_SECRET".into(),
                len: 5
            }
        );
        assert!(err.to_string().contains("at least 32 bytes"));
        assert!(!err.to_string().contains("short\""));
        let err = Keyring::from_values(RAW32, Some("also-short")).unwrap_err();
        assert!(
            matches!(err, KeyError::TooShort { ref name, len: 10 } if name == "HMAC_PREVIOUS_SECRETS entry 1")
        );
        // 31 bytes: one short.
        assert!(Keyring::from_values(&RAW32[..31], None).is_err());
        assert!(Keyring::from_values(RAW32, None).is_ok());
    }

    #[test]
    fn forms_are_read_as_documented() {
        // base64 of RAW32, padded, standard and url-safe, and hex: all the same key.
        let b64 = "base64:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        let b64_nopad = "base64:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";
        let hexed = format!("hex:{}", hex::encode(RAW32));
        let id = Keyring::from_values(RAW32, None).unwrap().current_key_id();
        for v in [b64, b64_nopad, hexed.as_str()] {
            assert_eq!(
                Keyring::from_values(v, None).unwrap().current_key_id(),
                id,
                "{v}"
            );
        }
        // An unprefixed base64-looking string is raw bytes: a different key.
        let raw = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        assert_ne!(
            Keyring::from_values(raw, None).unwrap().current_key_id(),
            id
        );
        // url-safe alphabet
        let bytes: Vec<u8> = (0..48).map(|i| (i * 5 + 250) as u8).collect();
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
        assert!(url.contains(['-', '_']));
        let r = Keyring::parse_secret(&format!("base64:{url}")).unwrap();
        assert_eq!(r.expose_secret(), &bytes);
        assert!(matches!(
            Keyring::from_values("base64:!!!", None),
            Err(KeyError::InvalidBase64 { .. })
        ));
        assert!(matches!(
            Keyring::from_values("hex:zz", None),
            Err(KeyError::InvalidHex { .. })
        ));
        // A 20-byte key given in base64 is still too short after decoding.
        assert!(matches!(
            Keyring::from_values("base64:AAAAAAAAAAAAAAAAAAAAAAAAAAA=", None),
            Err(KeyError::TooShort { len: 20, .. })
        ));
    }

    #[test]
    fn long_keys_are_not_truncated() {
        // Two keys that share their first 64 bytes but differ afterwards must differ.
        let a = "x".repeat(64) + "a";
        let b = "x".repeat(64) + "b";
        let ka = Keyring::from_values(&a, None).unwrap().current_key_id();
        let kb = Keyring::from_values(&b, None).unwrap().current_key_id();
        assert_ne!(ka, kb);
        let c = "y".repeat(40) + "c";
        let d = "y".repeat(40) + "d";
        assert_ne!(
            Keyring::from_values(&c, None).unwrap().current_key_id(),
            Keyring::from_values(&d, None).unwrap().current_key_id()
        );
    }

    #[test]
    fn previous_list_parsing() {
        let prev = format!(" {RAW32}x , ,base64:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY= ");
        let ring = Keyring::from_values(&format!("{RAW32}yy"), Some(&prev)).unwrap();
        assert_eq!(ring.len(), 3);
        let ids = ring.key_ids();
        assert_eq!(ids[0], ring.current_key_id());
        assert_ne!(ids[0], ids[1]);
        assert!(Keyring::from_values("", None).is_err());
    }

    #[test]
    fn debug_and_errors_show_no_key_material() {
        let secret = "super-secret-value-that-is-long-enough!";
        let ring = Keyring::from_values(secret, Some(secret)).unwrap();
        let shown = format!("{ring:?} {ring:#?}");
        assert!(!shown.contains("super-secret"));
        assert!(shown.contains(&ring.current_key_id().to_string()));
        let e = Keyring::from_values("super-secret", None).unwrap_err();
        assert!(!format!("{e} {e:?}").contains("super-secret"));
    }

    #[test]
    fn generated_keys_differ() {
        let a = Keyring::generate().unwrap();
        let b = Keyring::generate().unwrap();
        assert_ne!(a.current_key_id(), b.current_key_id());
    }
}
