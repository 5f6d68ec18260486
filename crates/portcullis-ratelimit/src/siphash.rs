//! SipHash-1-3 over `(namespace word, key bytes)`, with no buffering: the memory store's keyed
//! digest. The same function as `std`'s `DefaultHasher` fed the same bytes, minus the streaming
//! overhead of several `write` calls (checked against `std`'s SipHash-2-4 with the round counts
//! as parameters).

#[derive(Clone, Copy)]
struct State {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
}

impl State {
    #[inline(always)]
    const fn round(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13);
        self.v1 ^= self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16);
        self.v3 ^= self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21);
        self.v3 ^= self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17);
        self.v1 ^= self.v2;
        self.v2 = self.v2.rotate_left(32);
    }

    #[inline(always)]
    const fn compress<const C: usize>(&mut self, m: u64) {
        self.v3 ^= m;
        let mut i = 0;
        while i < C {
            self.round();
            i += 1;
        }
        self.v0 ^= m;
    }
}

/// A keyed SipHash-C-D with a 128-bit key.
#[derive(Clone, Copy)]
pub(crate) struct SipKey {
    k0: u64,
    k1: u64,
}

impl SipKey {
    /// A fresh random key (from the operating system's randomness, through `std`'s
    /// `RandomState`, which draws its keys from it).
    pub(crate) fn random() -> Self {
        use std::hash::{BuildHasher, RandomState};
        let rs = RandomState::new();
        Self {
            k0: rs.hash_one(0x6b30_u64),
            k1: rs.hash_one(0x6b31_u64),
        }
    }

    /// SipHash-C-D of the message `word.to_le_bytes() ‖ bytes`.
    #[inline]
    pub(crate) fn hash<const C: usize, const D: usize>(self, word: u64, bytes: &[u8]) -> u64 {
        let mut s = State {
            v0: self.k0 ^ 0x736f_6d65_7073_6575,
            v1: self.k1 ^ 0x646f_7261_6e64_6f6d,
            v2: self.k0 ^ 0x6c79_6765_6e65_7261,
            v3: self.k1 ^ 0x7465_6462_7974_6573,
        };
        s.compress::<C>(word);
        let chunks = bytes.chunks_exact(8);
        let tail = chunks.remainder();
        for chunk in chunks {
            s.compress::<C>(<[u8; 8]>::try_from(chunk).map_or(0, u64::from_le_bytes));
        }
        let mut last = [0u8; 8];
        for (dst, src) in last.iter_mut().zip(tail) {
            *dst = *src;
        }
        // The final block holds the tail and the total length mod 256 in its top byte.
        let len = (bytes.len().wrapping_add(8) & 0xff) as u64;
        s.compress::<C>(u64::from_le_bytes(last) | (len << 56));
        s.v2 ^= 0xff;
        let mut i = 0;
        while i < D {
            s.round();
            i += 1;
        }
        s.v0 ^ s.v1 ^ s.v2 ^ s.v3
    }

    /// SipHash-1-3, the variant `std` uses for `HashMap`.
    #[inline]
    pub(crate) fn sip13(self, word: u64, bytes: &[u8]) -> u64 {
        self.hash::<1, 3>(word, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::hash::Hasher;

    /// The reference: `std`'s SipHash-2-4 with explicit keys, fed the same bytes.
    #[allow(deprecated)]
    fn reference(k0: u64, k1: u64, word: u64, bytes: &[u8]) -> u64 {
        let mut h = std::hash::SipHasher::new_with_keys(k0, k1);
        h.write(&word.to_le_bytes());
        h.write(bytes);
        h.finish()
    }

    #[test]
    fn matches_std_for_every_tail_length() {
        let key = SipKey {
            k0: 0x0706_0504_0302_0100,
            k1: 0x0f0e_0d0c_0b0a_0908,
        };
        let data: Vec<u8> = (0u8..=255).collect();
        for n in 0..64 {
            let bytes = &data[..n];
            assert_eq!(
                key.hash::<2, 4>(42, bytes),
                reference(key.k0, key.k1, 42, bytes),
                "{n}"
            );
        }
        // and the 1-3 variant differs from 2-4 (the round counts are really parameters)
        assert_ne!(key.sip13(42, b"x"), key.hash::<2, 4>(42, b"x"));
    }

    #[test]
    fn random_keys_differ() {
        let (a, b) = (SipKey::random(), SipKey::random());
        assert_ne!(a.sip13(1, b"k"), b.sip13(1, b"k"));
    }

    proptest! {
        #[test]
        fn matches_std(k0 in any::<u64>(), k1 in any::<u64>(), word in any::<u64>(), bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let key = SipKey { k0, k1 };
            prop_assert_eq!(key.hash::<2, 4>(word, &bytes), reference(k0, k1, word, &bytes));
        }
    }
}
