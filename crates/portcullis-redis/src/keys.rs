//! The key schema: every key name this crate writes is built here (and, for keys a script
//! derives itself, in the Lua prelude, with the same formats).

use std::fmt::Write as _;

use portcullis_hash::TokenHash;
use portcullis_rotation::FamilyId;

/// The default key prefix: `pc`.
pub const DEFAULT_PREFIX: &str = "pc";

/// The longest key prefix, in bytes.
pub const MAX_PREFIX_LEN: usize = 64;

/// Why a key prefix is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a key prefix is 1 to 64 characters of A-Z, a-z, 0-9, '-', '_', '.' and ':'")]
pub struct PrefixError;

/// Check a key prefix: 1 to [`MAX_PREFIX_LEN`] characters of `A-Za-z0-9-_.:`, so that it can
/// never open a hash tag or collide with the separators.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), PrefixError> {
    let ok = !prefix.is_empty()
        && prefix.len() <= MAX_PREFIX_LEN
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok { Ok(()) } else { Err(PrefixError) }
}

/// Lowercase hex of arbitrary bytes (user and client ids in index keys: no `{`, `}` or
/// binary in a key, and injective).
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Token kinds as one letter, in key names and token-set members.
pub(crate) const CODE: &str = "c";
pub(crate) const REFRESH: &str = "r";
pub(crate) const ACCESS: &str = "a";

/// The grant store's key names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct GrantKeys {
    prefix: String,
}

/// How many purge buckets families are spread over (by the first hex digit of their id).
pub(crate) const PURGE_BUCKETS: u8 = 16;

impl GrantKeys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `P:{F}:f` — the family's record.
    pub(crate) fn family(&self, id: &str) -> String {
        format!("{}:{{{id}}}:f", self.prefix)
    }

    /// `P:{F}:t` — the set of the family's tokens (`c:<hash>`, `r:<hash>`, `a:<hash>`).
    pub(crate) fn tokens(&self, id: &str) -> String {
        format!("{}:{{{id}}}:t", self.prefix)
    }

    /// `P:{F}:<kind>:<hash>` — one token's record on Cluster (in its family's slot).
    pub(crate) fn record(&self, id: &str, kind: &str, hash: &str) -> String {
        format!("{}:{{{id}}}:{kind}:{hash}", self.prefix)
    }

    /// `P:<kind>:{<hash>}` — a token by its hash: its record on a single node, the pointer to
    /// its family (the family id) on Cluster.
    pub(crate) fn pointer(&self, kind: &str, hash: &str) -> String {
        format!("{}:{kind}:{{{hash}}}", self.prefix)
    }

    /// `P:u:{<hex user>}` — the families of a user.
    pub(crate) fn user(&self, user: &str) -> String {
        format!("{}:u:{{{}}}", self.prefix, hex(user.as_bytes()))
    }

    /// `P:k:{<hex client>}` — the families of a client.
    pub(crate) fn client(&self, client: &str) -> String {
        format!("{}:k:{{{}}}", self.prefix, hex(client.as_bytes()))
    }

    /// `P:p:{<digit>}` — purge bucket `b` (0..16): the families whose id starts with that hex
    /// digit, a lexically ordered sorted set.
    pub(crate) fn bucket(&self, b: u8) -> String {
        format!("{}:p:{{{b:x}}}", self.prefix)
    }

    /// The purge bucket of a family.
    pub(crate) fn bucket_of(&self, id: &FamilyId) -> String {
        self.bucket(id.as_bytes().first().map_or(0, |b| b >> 4))
    }
}

/// A token hash as it appears in keys: 64 lowercase hex digits.
pub(crate) fn hash_hex(h: &TokenHash) -> String {
    h.to_hex()
}

/// The rate limiter's key of `key` under a limit: `P:rl:{<tag>}:<algorithm>:<limit>:<key>`,
/// the client key escaped (`%XX` for anything outside `A-Za-z0-9.-_:/@+`: no binary, no braces,
/// injective). One hash tag for all of a limiter's keys: a multi-key check is one script on
/// Cluster.
pub(crate) fn ratelimit_key(
    prefix: &str,
    tag: &str,
    algorithm: &str,
    limit: &str,
    key: &str,
) -> String {
    let mut s = String::with_capacity(prefix.len() + tag.len() + limit.len() + key.len() + 16);
    let _ = write!(s, "{prefix}:rl:{{{tag}}}:{algorithm}:{limit}:");
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'/' | b'@' | b'+')
        {
            s.push(char::from(b));
        } else {
            let _ = write!(s, "%{b:02X}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert!(check_prefix("pc").is_ok());
        assert!(check_prefix("tenant-1:pc").is_ok());
        for bad in ["", "a{b", "a}b", "a b", "é"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
        assert!(check_prefix(&"x".repeat(65)).is_err());
    }

    #[test]
    fn family_keys_share_the_family_tag() {
        let k = GrantKeys::new("pc");
        let id = "00112233445566778899aabbccddeeff";
        assert_eq!(k.family(id), "pc:{00112233445566778899aabbccddeeff}:f");
        assert_eq!(k.tokens(id), "pc:{00112233445566778899aabbccddeeff}:t");
        assert_eq!(
            k.record(id, REFRESH, "ab"),
            "pc:{00112233445566778899aabbccddeeff}:r:ab"
        );
        assert_eq!(k.pointer(ACCESS, "ab"), "pc:a:{ab}");
        assert_eq!(k.user("alice"), "pc:u:{616c696365}");
        assert_eq!(k.client("c}"), "pc:k:{637d}");
        assert_eq!(k.bucket(11), "pc:p:{b}");
        assert_eq!(k.bucket_of(&FamilyId::from_bytes([0xf3; 16])), "pc:p:{f}");
    }

    #[test]
    fn ratelimit_keys_escape_the_client_key() {
        assert_eq!(
            ratelimit_key("pc", "pc", "gcra", "token-ip", "203.0.113.7"),
            "pc:rl:{pc}:gcra:token-ip:203.0.113.7"
        );
        assert_eq!(
            ratelimit_key("pc", "t", "fixed", "l", "2001:db8::/56"),
            "pc:rl:{t}:fixed:l:2001:db8::/56"
        );
        assert_eq!(
            ratelimit_key("pc", "pc", "gcra", "l", "a}{b %"),
            "pc:rl:{pc}:gcra:l:a%7D%7Bb%20%25"
        );
        // injective: the escape character is escaped
        assert_ne!(
            ratelimit_key("pc", "pc", "gcra", "l", "%41"),
            ratelimit_key("pc", "pc", "gcra", "l", "A")
        );
    }
}
