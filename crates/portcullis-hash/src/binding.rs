//! Keyed hashes of what a grant can be bound to: the user agent and the client's IP prefix.
//!
//! A bare SHA-256 of an IP address is no protection: the whole IPv4 space is hashed in seconds.
//! These values are hashed with the keyed [`TokenHasher`], under their own purposes, so a leaked
//! table reveals nothing without the key.

use std::net::IpAddr;

use crate::hasher::{Purpose, TokenHash, TokenHasher};

/// Default IPv4 prefix length: a /24, the usual size of one customer's or one NAT pool's block,
/// so a client moving between addresses of one network keeps its binding.
pub const DEFAULT_IPV4_PREFIX: u8 = 24;
/// Default IPv6 prefix length: a /56, the allocation RIPE-690 recommends for residential
/// customers (the network a client's changing addresses stay within).
pub const DEFAULT_IPV6_PREFIX: u8 = 56;

/// How much of an address binds a grant: the first `v4` bits of IPv4 and `v6` bits of IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPrefixLen {
    v4: u8,
    v6: u8,
}

impl Default for IpPrefixLen {
    fn default() -> Self {
        Self {
            v4: DEFAULT_IPV4_PREFIX,
            v6: DEFAULT_IPV6_PREFIX,
        }
    }
}

impl IpPrefixLen {
    /// Prefix lengths, if `v4 <= 32` and `v6 <= 128`.
    #[must_use]
    pub const fn new(v4: u8, v6: u8) -> Option<Self> {
        if v4 <= 32 && v6 <= 128 {
            Some(Self { v4, v6 })
        } else {
            None
        }
    }

    /// The IPv4 prefix length.
    #[must_use]
    pub const fn v4(&self) -> u8 {
        self.v4
    }

    /// The IPv6 prefix length.
    #[must_use]
    pub const fn v6(&self) -> u8 {
        self.v6
    }
}

/// The canonical bytes of `ip`'s prefix: family, prefix length, then the address with every bit
/// past the prefix cleared. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) count as IPv4, so a
/// dual-stack listener sees one client as one prefix.
#[must_use]
pub fn ip_prefix_bytes(ip: IpAddr, len: IpPrefixLen) -> [u8; 18] {
    let mut out = [0u8; 18];
    let (family, bits, addr): (u8, u8, [u8; 16]) = match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let mut a = [0u8; 16];
            for (d, s) in a.iter_mut().zip(v4.octets()) {
                *d = s;
            }
            (4, len.v4, a)
        }
        IpAddr::V6(v6) => (6, len.v6, v6.octets()),
    };
    out[0] = family;
    out[1] = bits;
    for (i, (d, s)) in out.iter_mut().skip(2).zip(addr).enumerate() {
        let bit_start = i * 8;
        let keep = usize::from(bits).saturating_sub(bit_start).min(8);
        // keep in 0..=8: mask off the low (8 - keep) bits.
        let mask = if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
        *d = s & mask;
    }
    out
}

impl TokenHasher {
    /// The keyed hash of a `User-Agent` value (hashed as given; an absent header is the empty
    /// string).
    #[must_use]
    pub fn hash_user_agent(&self, user_agent: &str) -> TokenHash {
        self.hash(Purpose::UserAgent, user_agent.as_bytes())
    }

    /// The keyed hash of `ip`'s prefix (see [`ip_prefix_bytes`]).
    #[must_use]
    pub fn hash_ip_prefix(&self, ip: IpAddr, len: IpPrefixLen) -> TokenHash {
        self.hash(Purpose::IpPrefix, &ip_prefix_bytes(ip, len))
    }

    /// The keyed hash of a device identifier.
    #[must_use]
    pub fn hash_device_id(&self, device_id: &str) -> TokenHash {
        self.hash(Purpose::DeviceId, device_id.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Keyring;

    fn hasher() -> TokenHasher {
        TokenHasher::new(Keyring::from_values("0123456789abcdef0123456789abcdef", None).unwrap())
    }

    #[test]
    fn same_prefix_same_hash() {
        let h = hasher();
        let d = IpPrefixLen::default();
        let a = h.hash_ip_prefix("203.0.113.7".parse().unwrap(), d);
        assert_eq!(a, h.hash_ip_prefix("203.0.113.250".parse().unwrap(), d));
        assert_ne!(a, h.hash_ip_prefix("203.0.114.7".parse().unwrap(), d));
        // IPv4-mapped IPv6 is the same client.
        assert_eq!(
            a,
            h.hash_ip_prefix("::ffff:203.0.113.9".parse().unwrap(), d)
        );
        let v6 = h.hash_ip_prefix("2001:db8:aa:bb00::1".parse().unwrap(), d);
        assert_eq!(
            v6,
            h.hash_ip_prefix("2001:db8:aa:bbff:ffff::2".parse().unwrap(), d)
        );
        assert_ne!(
            v6,
            h.hash_ip_prefix("2001:db8:aa:cc00::1".parse().unwrap(), d)
        );
    }

    #[test]
    fn prefix_lengths_apply() {
        let full = IpPrefixLen::new(32, 128).unwrap();
        assert_ne!(
            ip_prefix_bytes("10.0.0.1".parse().unwrap(), full),
            ip_prefix_bytes("10.0.0.2".parse().unwrap(), full)
        );
        let none = IpPrefixLen::new(0, 0).unwrap();
        assert_eq!(
            ip_prefix_bytes("10.0.0.1".parse().unwrap(), none),
            ip_prefix_bytes("192.168.0.2".parse().unwrap(), none)
        );
        let odd = IpPrefixLen::new(20, 60).unwrap();
        let b = ip_prefix_bytes("10.1.255.255".parse().unwrap(), odd);
        assert_eq!(&b[..6], &[4, 20, 10, 1, 0xf0, 0]);
        assert!(IpPrefixLen::new(33, 0).is_none());
        assert!(IpPrefixLen::new(0, 129).is_none());
    }

    #[test]
    fn binding_hashes_are_keyed_and_separated() {
        let h = hasher();
        let other = TokenHasher::new(
            Keyring::from_values("another-key-another-key-another-key", None).unwrap(),
        );
        assert_ne!(h.hash_user_agent("curl/8"), other.hash_user_agent("curl/8"));
        assert_ne!(h.hash_user_agent("x"), h.hash_device_id("x"));
    }
}
