//! HMAC-SHA256 with the key schedule done once.
//!
//! HMAC(K, m) = H((K' ^ opad) || H((K' ^ ipad) || m)), where K' is the key padded to one block
//! (hashed first if longer than a block). The two blocks `K' ^ ipad` and `K' ^ opad` depend only
//! on the key, so their compressed states are computed once; each MAC then costs one compression
//! per 64-byte block of the padded inner message plus one for the outer hash. For the token format
//! of this crate (53 bytes) that is exactly two compressions, the physical floor.
//!
//! The implementation drives `sha2`'s raw compression function and is checked against the `hmac`
//! crate on the RFC 4231 vectors and, by proptest, on arbitrary keys and messages.

use sha2::Digest;
use sha2::block_api::compress256;
use zeroize::Zeroize;

/// SHA-256 block size in bytes.
const BLOCK: usize = 64;
/// SHA-256 initial hash value (FIPS 180-4 §5.3.3).
const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// The compressed inner and outer states of an HMAC-SHA256 key. Key-equivalent: zeroized on drop
/// and never printed.
#[derive(Clone)]
pub(crate) struct PreparedHmac {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl Drop for PreparedHmac {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

impl std::fmt::Debug for PreparedHmac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreparedHmac { .. }")
    }
}

impl PreparedHmac {
    /// Prepare a key of any length (RFC 2104: keys longer than a block are hashed first; shorter
    /// keys are zero-padded. Nothing is ever truncated).
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut padded = [0u8; BLOCK];
        let mut hashed: [u8; 32] = [0; 32];
        let material: &[u8] = if key.len() > BLOCK {
            hashed = sha2::Sha256::digest(key).into();
            &hashed
        } else {
            key
        };
        // `material.len() <= BLOCK`, so the zip copies all of it.
        for (dst, src) in padded.iter_mut().zip(material) {
            *dst = *src;
        }
        hashed.zeroize();
        let mut ipad = [0u8; BLOCK];
        let mut opad = [0u8; BLOCK];
        for ((i, o), k) in ipad.iter_mut().zip(opad.iter_mut()).zip(padded) {
            *i = k ^ 0x36;
            *o = k ^ 0x5c;
        }
        let mut inner = IV;
        let mut outer = IV;
        compress256(&mut inner, &[ipad]);
        compress256(&mut outer, &[opad]);
        padded.zeroize();
        ipad.zeroize();
        opad.zeroize();
        Self { inner, outer }
    }

    /// HMAC-SHA256 of `msg` under this key.
    pub(crate) fn mac(&self, msg: &[u8]) -> [u8; 32] {
        let mut state = self.inner;
        let mut chunks = msg.chunks_exact(BLOCK);
        for chunk in &mut chunks {
            let mut block = [0u8; BLOCK];
            block.copy_from_slice(chunk);
            compress256(&mut state, &[block]);
        }
        // The key block precedes the message, so the inner length counts one block more.
        let bit_len = (BLOCK as u64 + msg.len() as u64).wrapping_mul(8);
        finish(&mut state, chunks.remainder(), bit_len);
        let inner_digest = state_bytes(&state);

        let mut state = self.outer;
        finish(&mut state, &inner_digest, (BLOCK as u64 + 32) * 8);
        state_bytes(&state)
    }
}

/// Pad and compress the final partial block (`tail.len() < 64`) of a message of `bit_len` bits.
fn finish(state: &mut [u32; 8], tail: &[u8], bit_len: u64) {
    let mut block = [0u8; BLOCK];
    let (head, _) = block.split_at_mut(tail.len());
    head.copy_from_slice(tail);
    if let Some(b) = block.get_mut(tail.len()) {
        *b = 0x80;
    }
    if tail.len() >= BLOCK - 8 {
        // No room for the length: it goes in a block of its own.
        compress256(state, &[block]);
        block = [0u8; BLOCK];
    }
    let (_, len) = block.split_at_mut(BLOCK - 8);
    len.copy_from_slice(&bit_len.to_be_bytes());
    compress256(state, &[block]);
}

fn state_bytes(state: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (dst, word) in out.chunks_exact_mut(4).zip(state) {
        dst.copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::string_slice
)]
mod tests {
    use super::*;
    use hmac::{KeyInit, Mac};
    use proptest::prelude::*;

    fn reference(key: &[u8], msg: &[u8]) -> [u8; 32] {
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        m.update(msg);
        m.finalize().into_bytes().into()
    }

    #[test]
    fn every_padding_boundary_matches_hmac_crate() {
        for key_len in [0, 1, 20, 32, 63, 64, 65, 131] {
            let key: Vec<u8> = (0..key_len).map(|i| (i * 7 + 3) as u8).collect();
            let p = PreparedHmac::new(&key);
            for msg_len in 0..=200 {
                let msg: Vec<u8> = (0..msg_len).map(|i| (i * 13 + 1) as u8).collect();
                assert_eq!(
                    p.mac(&msg),
                    reference(&key, &msg),
                    "key {key_len} msg {msg_len}"
                );
            }
        }
    }

    #[test]
    fn debug_hides_state() {
        assert_eq!(
            format!("{:?}", PreparedHmac::new(b"k")),
            "PreparedHmac { .. }"
        );
    }

    proptest! {
        #[test]
        fn matches_hmac_crate(key in proptest::collection::vec(any::<u8>(), 0..200),
                              msg in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(PreparedHmac::new(&key).mac(&msg), reference(&key, &msg));
        }
    }
}
