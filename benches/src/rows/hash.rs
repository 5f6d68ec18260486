//! portcullis-hash rows: keyed hashing against a fresh HMAC per call and against the floor of two
//! SHA-256 compressions; minting against drawing the same bytes from the OS.

use hmac::{KeyInit, Mac};
use portcullis_hash::{Keyring, OpaqueToken, Purpose, TokenHasher, TokenPrefix};
use sha2::block_api::compress256;

use crate::harness::{Goal, Row, Settings, compare, keep};

/// A 32-byte key, as HMAC_SECRET would hold.
const KEY: &str = "0123456789abcdef0123456789abcdef";

/// The rows of this module.
pub fn rows(settings: Settings, only: &dyn Fn(&str) -> bool) -> Vec<Row> {
    let mut rows = Vec::new();
    let hasher = TokenHasher::new(Keyring::from_values(KEY, None).unwrap());
    let token = OpaqueToken::mint(TokenPrefix::REFRESH).unwrap();
    let msg = token.expose_secret().as_bytes().to_vec();
    assert!(msg.len() <= 55, "the token must fit one SHA-256 block");

    if only("hash_vs_naive") {
        let (ours, naive) = compare(
            settings,
            || {
                keep(hasher.hash(Purpose::RefreshToken, keep(&msg)));
            },
            || {
                let mut mac =
                    hmac::Hmac::<sha2::Sha256>::new_from_slice(keep(KEY.as_bytes())).unwrap();
                mac.update(keep(&msg));
                keep(mac.finalize().into_bytes());
            },
        );
        rows.push(Row::time(
            "hash_vs_naive",
            ours,
            "Hmac::<Sha256>::new_from_slice(key) per call, same 53-byte token",
            naive,
            Goal::AtMost(0.6),
        ));
    }

    if only("hash_vs_floor") {
        // The floor: two compression-function calls on blocks as large as the real ones.
        let mut block = [0u8; 64];
        for (b, m) in block.iter_mut().zip(&msg) {
            *b = *m;
        }
        let iv = [
            0x6a09_e667u32,
            0xbb67_ae85,
            0x3c6e_f372,
            0xa54f_f53a,
            0x510e_527f,
            0x9b05_688c,
            0x1f83_d9ab,
            0x5be0_cd19,
        ];
        let (ours, floor) = compare(
            settings,
            || {
                keep(hasher.hash(Purpose::RefreshToken, keep(&msg)));
            },
            || {
                // The outer compression of a keyed hash consumes the inner one's output, so the
                // floor is two *dependent* compressions: the second block holds the first state.
                let mut a = keep(iv);
                compress256(&mut a, &[keep(block)]);
                let mut second = [0u8; 64];
                for (dst, w) in second.chunks_exact_mut(4).zip(a) {
                    dst.copy_from_slice(&w.to_be_bytes());
                }
                let mut b = keep(iv);
                compress256(&mut b, &[second]);
                keep(b);
            },
        );
        rows.push(Row::time(
            "hash_vs_floor",
            ours,
            "two dependent SHA-256 compression-function calls (the second on the first's output)",
            floor,
            Goal::AtMost(1.15),
        ));
    }

    if only("mint_vs_osrng") {
        let (ours, os) = compare(
            settings,
            || {
                keep(OpaqueToken::mint(TokenPrefix::REFRESH).unwrap());
            },
            || {
                let mut b = [0u8; 32];
                getrandom::fill(&mut b).unwrap();
                keep(b);
            },
        );
        rows.push(Row::time(
            "mint_vs_osrng",
            ours,
            "32 bytes from the OS CSPRNG (getrandom::fill)",
            os,
            Goal::Report,
        ));
    }
    rows
}
