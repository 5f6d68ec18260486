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
        // The key block precedes the message, so the inner length counts one block more.
        let bit_len = (BLOCK as u64 + msg.len() as u64).wrapping_mul(8);
        if let Some(block) = single_block_fast(msg) {
            compress256(&mut state, &[block]);
        } else {
            let mut chunks = msg.chunks_exact(BLOCK);
            for chunk in &mut chunks {
                let mut block = [0u8; BLOCK];
                block.copy_from_slice(chunk);
                compress256(&mut state, &[block]);
            }
            finish(&mut state, chunks.remainder(), bit_len);
        }

        let block = outer_block(&state);
        let mut state = self.outer;
        compress256(&mut state, &[block]);
        state_bytes(&state)
    }
}

/// Padding of the outer hash's only block: a 32-byte digest follows the 64-byte key block, so
/// the message is 96 bytes (768 bits); bytes 0..32 are filled with the inner digest.
#[allow(clippy::indexing_slicing)] // evaluated at compile time: a bad index is a compile error
const OUTER_PADDING: [u8; BLOCK] = {
    let mut b = [0u8; BLOCK];
    b[32] = 0x80;
    let len = ((BLOCK as u64 + 32) * 8).to_be_bytes();
    let mut i = 0;
    while i < 8 {
        b[BLOCK - 8 + i] = len[i];
        i += 1;
    }
    b
};

/// The padded block of a message of 48 to 55 bytes (this crate's tokens are 50 to 54), built so
/// that each 16-byte lane is written by exactly one store.
///
/// Why: the SHA-NI compression loads its block in 16-byte lanes. If the last lane is assembled
/// from several small stores (message tail, `0x80`, length), the load cannot be forwarded from
/// the store buffer and stalls until the stores reach the cache: measured here at about 18 ns,
/// a third of the whole hash. So the last lane is computed in one SSE register: the 16 message
/// bytes ending at the message's end, shifted down, ORed with the constant padding.
#[cfg(target_arch = "x86_64")]
fn single_block_fast(msg: &[u8]) -> Option<[u8; BLOCK]> {
    use safe_arch::m128i;

    let (lanes, _) = msg.split_first_chunk::<48>()?;
    let tail_len = msg.len() - 48;
    if tail_len > 7 {
        return None;
    }
    // The 16 bytes ending at the message's end (the message is at least 48 bytes long).
    let last16: [u8; 16] = *msg.last_chunk::<16>()?;
    let v = m128i::from(last16);
    // Keep the last `tail_len` bytes, moved to the front of the lane, and OR in the padding.
    // Each arm's padding is a constant: a lane assembled in memory at run time would stall the
    // load exactly as described above.
    let last: [u8; 16] = match tail_len {
        0 => m128i::from(const { last_lane_padding(0) }),
        1 => tail_lane::<15, 1>(v),
        2 => tail_lane::<14, 2>(v),
        3 => tail_lane::<13, 3>(v),
        4 => tail_lane::<12, 4>(v),
        5 => tail_lane::<11, 5>(v),
        6 => tail_lane::<10, 6>(v),
        _ => tail_lane::<9, 7>(v),
    }
    .into();

    let mut block = [0u8; BLOCK];
    for (dst, src) in block.chunks_exact_mut(16).zip(lanes.chunks_exact(16)) {
        dst.copy_from_slice(src);
    }
    let (_, dst) = block.split_at_mut(48);
    dst.copy_from_slice(&last);
    Some(block)
}

/// The last lane of a message of `48 + T` bytes: the message's last `T` bytes (the top of `v`),
/// then the constant padding.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn tail_lane<const SHIFT: i32, const T: usize>(v: safe_arch::m128i) -> safe_arch::m128i {
    safe_arch::bitor_m128i(
        safe_arch::byte_shr_imm_u128_m128i::<SHIFT>(v),
        safe_arch::m128i::from(const { last_lane_padding(T) }),
    )
}

/// The padding in the last 16-byte lane of a message of `48 + tail` bytes (`tail <= 7`) that
/// follows the 64-byte key block: `0x80` after the message, then the bit length, big-endian.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::indexing_slicing)] // only called in `const` blocks: a bad index is a compile error
const fn last_lane_padding(tail: usize) -> [u8; 16] {
    let mut lane = [0u8; 16];
    lane[tail] = 0x80;
    let len = ((BLOCK + 48 + tail) as u64 * 8).to_be_bytes();
    let mut i = 0;
    while i < 8 {
        lane[8 + i] = len[i];
        i += 1;
    }
    lane
}

/// The outer hash's only block: the inner digest (the state words, big-endian), then constant
/// padding for a 96-byte message. Each digest lane is byte-swapped in a register and written with
/// one 16-byte store, for the same store-forwarding reason as [`single_block_fast`].
#[cfg(target_arch = "x86_64")]
fn outer_block(state: &[u32; 8]) -> [u8; BLOCK] {
    use safe_arch::{
        bitor_m128i, m128i, shl_imm_u16_m128i, shr_imm_u16_m128i, shuffle_ai_i16_h64all_m128i,
        shuffle_ai_i16_l64all_m128i,
    };
    // Swap the 16-bit halves of every 32-bit word: [w1, w0, w3, w2] in each 64-bit half.
    const SWAP_HALVES: i32 = 0b10_11_00_01;
    let mut block = OUTER_PADDING;
    let [a0, a1, a2, a3, a4, a5, a6, a7] = *state;
    for (dst, words) in block
        .chunks_exact_mut(16)
        .zip([[a0, a1, a2, a3], [a4, a5, a6, a7]])
    {
        let v = m128i::from(words);
        let v = shuffle_ai_i16_h64all_m128i::<SWAP_HALVES>(shuffle_ai_i16_l64all_m128i::<
            SWAP_HALVES,
        >(v));
        // Then swap the bytes of every 16-bit half: each word is now big-endian.
        let v = bitor_m128i(shl_imm_u16_m128i::<8>(v), shr_imm_u16_m128i::<8>(v));
        let bytes: [u8; 16] = v.into();
        dst.copy_from_slice(&bytes);
    }
    block
}

/// The outer hash's only block, portable version.
#[cfg(not(target_arch = "x86_64"))]
fn outer_block(state: &[u32; 8]) -> [u8; BLOCK] {
    let mut block = OUTER_PADDING;
    for (dst, word) in block.chunks_exact_mut(4).zip(state) {
        dst.copy_from_slice(&word.to_be_bytes());
    }
    block
}

/// Elsewhere the general path is used.
#[cfg(not(target_arch = "x86_64"))]
fn single_block_fast(_msg: &[u8]) -> Option<[u8; BLOCK]> {
    None
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
