//! Keyring parsing on arbitrary values of HMAC_SECRET / HMAC_PREVIOUS_SECRETS: never panics,
//! never accepts a key shorter than 32 bytes, and errors never echo the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_hash::{KeyError, Keyring, MIN_KEY_LEN};

fuzz_target!(|input: (&str, Option<&str>)| {
    let (current, previous) = input;
    match Keyring::from_values(current, previous) {
        Ok(ring) => {
            assert!(!ring.is_empty());
            let decoded = Keyring::parse_secret(current).expect("accepted value decodes");
            assert!(decoded.expose_secret().len() >= MIN_KEY_LEN);
        }
        Err(e) => {
            let shown = format!("{e} {e:?}");
            // Messages are fixed ASCII text plus variable names; an input with a character they
            // never contain must not appear in them.
            let distinctive = current.chars().any(|c| !c.is_ascii_graphic() && c != ' ');
            if current.len() >= 4 && distinctive && !matches!(e, KeyError::Missing { .. }) {
                assert!(!shown.contains(current), "error echoes the secret");
            }
        }
    }
    let _ = Keyring::parse_secret(current);
});
