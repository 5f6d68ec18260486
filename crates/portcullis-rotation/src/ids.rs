//! Identifiers: families, and the short hash prefixes that name a credential in diagnostics.

use std::fmt;

use portcullis_hash::{RngError, TokenHash};

/// The identifier of a grant family: 128 bits from the operating system's CSPRNG.
///
/// Not a secret (it never authorises anything by itself), so it appears in events, logs and
/// introspection responses. Displayed as 32 lowercase hex digits.
///
/// ```
/// use portcullis_rotation::FamilyId;
///
/// let id = FamilyId::generate()?;
/// assert_eq!(id.to_string().len(), 32);
/// assert_eq!(FamilyId::from_hex(&id.to_string()), Some(id));
/// # Ok::<(), portcullis_hash::RngError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FamilyId([u8; 16]);

impl FamilyId {
    /// A fresh random identifier.
    ///
    /// # Errors
    /// [`RngError`] if the operating system's generator fails.
    pub fn generate() -> Result<Self, RngError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|_| RngError)?;
        Ok(Self(bytes))
    }

    /// An identifier from its bytes (as read back from storage).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The identifier's bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// An identifier from 32 hex digits (either case).
    #[must_use]
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = s.as_bytes();
        if bytes.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let [hi, lo] = pair else { return None };
            *o = (hex_value(*hi)? << 4) | hex_value(*lo)?;
        }
        Some(Self(out))
    }
}

const fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FamilyId({self})")
    }
}

/// The first four bytes of a [`TokenHash`], to tell credentials apart in events and logs.
///
/// A prefix of a keyed hash reveals nothing about the token and cannot be used to look it up;
/// events carry these, never plaintext tokens and never whole hashes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashPrefix([u8; 4]);

impl HashPrefix {
    /// The prefix of `hash`.
    #[must_use]
    pub const fn of(hash: &TokenHash) -> Self {
        let [a, b, c, d, ..] = *hash.as_bytes();
        Self([a, b, c, d])
    }
}

impl fmt::Display for HashPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for HashPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HashPrefix({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_id_hex_round_trips() {
        let id = FamilyId::from_bytes([0xab; 16]);
        assert_eq!(id.to_string(), "ab".repeat(16));
        assert_eq!(FamilyId::from_hex(&"AB".repeat(16)), Some(id));
        assert_eq!(FamilyId::from_hex("ab"), None);
        assert_eq!(FamilyId::from_hex(&"zz".repeat(16)), None);
        assert_eq!(format!("{id:?}"), format!("FamilyId({})", "ab".repeat(16)));
        assert_ne!(FamilyId::generate().unwrap(), FamilyId::generate().unwrap());
    }

    #[test]
    fn hash_prefix_is_four_bytes() {
        let h = TokenHash::from_bytes([7; 32]);
        assert_eq!(HashPrefix::of(&h).to_string(), "07070707");
    }
}
