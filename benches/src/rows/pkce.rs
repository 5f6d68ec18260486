//! portcullis-pkce rows: S256 verification at the token endpoint against the raw transform.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_pkce::{CodeVerifier, verify_token_request};
use sha2::{Digest as _, Sha256};

use crate::harness::{Goal, Row, Settings, compare, keep};

/// The rows of this module.
pub fn rows(settings: Settings, only: &dyn Fn(&str) -> bool) -> Vec<Row> {
    let mut rows = Vec::new();

    if only("pkce_verify_vs_raw") {
        // A generated (43-character) verifier, as presented at /token, and the challenge stored
        // at /authorize.
        let verifier = CodeVerifier::generate().unwrap();
        let presented: &str = verifier.expose_secret();
        let stored = verifier.challenge();
        assert_eq!(verify_token_request(Some(&stored), Some(presented)), Ok(()));

        // Ours: the whole token-endpoint check from the request's string and the stored
        // challenge (grammar check, SHA-256 on the stack, constant-time comparison with the
        // digest the stored S256 challenge encodes, which was decoded when it was built).
        let ours = || {
            keep(verify_token_request(
                Some(keep(&stored)),
                Some(keep(presented)),
            ))
            .unwrap();
        };
        // Baseline: the raw transform as commonly written, with nothing checked or compared.
        let (ours_ns, raw_ns) = compare(settings, ours, || {
            keep(URL_SAFE_NO_PAD.encode(Sha256::digest(keep(presented).as_bytes())));
        });
        // For transparency: the same raw transform without the String allocation.
        let (ours2_ns, raw_stack_ns) = compare(settings, ours, || {
            let mut out = [0u8; 43];
            URL_SAFE_NO_PAD
                .encode_slice(Sha256::digest(keep(presented).as_bytes()), &mut out)
                .unwrap();
            keep(out);
        });
        rows.push(
            Row::time(
                "pkce_verify_vs_raw",
                ours_ns,
                "URL_SAFE_NO_PAD.encode(Sha256::digest(verifier)) -> String, 43-char verifier",
                raw_ns,
                Goal::AtMost(1.2),
            )
            .with_note(format!(
                "against the raw transform into a stack buffer (no allocation): ours {ours2_ns:.1} ns, \
                 raw {raw_stack_ns:.1} ns, ratio {:.3}",
                ours2_ns / raw_stack_ns
            )),
        );
    }
    rows
}
