//! Run with `cargo run -p example-quickstart`.
//!
//! A tour of what the foundation crates do, printed step by step: load or generate an HMAC key,
//! mint a refresh token, store only its keyed hash, reject a mistyped token before any lookup,
//! find the record again after a key rotation, and do a PKCE S256 round trip (including the
//! failures a server must answer with `invalid_grant`). No plaintext token is printed in full.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use portcullis_core::{ErrorCode, SecretBytes};
use portcullis_hash::{Keyring, OpaqueToken, Purpose, TokenHasher, TokenPrefix};
use portcullis_pkce::{CodeVerifier, PkcePolicy, verify_token_request};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The first characters of a token, enough to recognise it, never the whole secret.
fn shown(token: &str) -> String {
    let head: String = token.chars().take(8).collect();
    format!("{head}… ({} chars)", token.len())
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    println!("== 1. Keys");
    let keyring = match Keyring::from_env() {
        Ok(ring) => {
            println!(
                "HMAC_SECRET loaded: {} key(s), current key id {}",
                ring.len(),
                ring.current_key_id()
            );
            ring
        }
        Err(e) => {
            println!("HMAC_SECRET not usable ({e});");
            println!("using an ephemeral random key for this run only.");
            Keyring::generate()?
        }
    };
    let old_key_material = SecretBytes::from(b"a-previous-key-of-at-least-32-bytes!".as_slice());
    let hasher = TokenHasher::new(keyring);

    println!("\n== 2. Mint a refresh token, store only its keyed hash");
    let token = OpaqueToken::mint(TokenPrefix::REFRESH)?;
    let stored = hasher.hash(Purpose::RefreshToken, token.expose_secret().as_bytes());
    println!(
        "token returned to the client once: {}",
        shown(token.expose_secret())
    );
    println!("what the store keeps:              {}", stored.to_hex());
    println!("Debug of the token:                {token:?}");

    println!("\n== 3. Redeem: parse first, then look up by hash");
    let presented = OpaqueToken::parse(TokenPrefix::REFRESH, token.expose_secret())?;
    let found = hasher.verify(
        Purpose::RefreshToken,
        presented.as_str().as_bytes(),
        &stored,
    );
    println!("well-formed, and found in the store: {found}");
    let mut typo = token.expose_secret().to_owned();
    let last = typo.pop().map_or('0', |c| if c == 'a' { 'b' } else { 'a' });
    typo.push(last);
    match OpaqueToken::parse(TokenPrefix::REFRESH, &typo) {
        Ok(_) => println!("a mistyped token parsed (unexpected)"),
        Err(e) => println!("a mistyped token is rejected before any hashing: {e}"),
    }
    let as_access = hasher.verify(Purpose::AccessToken, presented.as_str().as_bytes(), &stored);
    println!("the same bytes hashed as an access token match the record: {as_access}");

    println!("\n== 4. Key rotation: records hashed under the previous key are still found");
    let before = TokenHasher::new(Keyring::new(old_key_material.clone())?);
    let old_record = before.hash(Purpose::RefreshToken, token.expose_secret().as_bytes());
    let rotated = TokenHasher::new(Keyring::generate()?.with_previous(old_key_material)?);
    println!(
        "new current key {}, lookups try {} keys; old record found: {}",
        rotated.current_key_id(),
        rotated.key_count(),
        rotated.verify(
            Purpose::RefreshToken,
            token.expose_secret().as_bytes(),
            &old_record
        )
    );

    println!("\n== 5. PKCE (RFC 7636, S256)");
    let verifier = CodeVerifier::generate()?;
    let challenge = verifier.challenge();
    println!(
        "client sends code_challenge={} method={}",
        challenge.as_str(),
        challenge.method().as_str()
    );
    let stored_challenge = PkcePolicy::default()
        .validate_authorization_request(Some(challenge.as_str()), Some("S256"))?;
    let refused =
        PkcePolicy::default().validate_authorization_request(Some(challenge.as_str()), None);
    println!(
        "a request without code_challenge_method (= plain) is refused: {}",
        refused.map_or_else(|e| e.oauth_error().to_json(), |_| "accepted".into())
    );
    let wrong = CodeVerifier::generate()?;
    let err = verify_token_request(Some(&stored_challenge), Some(wrong.expose_secret()))
        .err()
        .map(|e| e.oauth_error());
    println!(
        "a wrong verifier: {}",
        err.map_or_else(|| "accepted".into(), |e| e.to_json())
    );
    let missing = verify_token_request(Some(&stored_challenge), None)
        .err()
        .map(|e| e.oauth_error().code());
    println!(
        "no verifier at all is refused too: {}",
        missing == Some(ErrorCode::InvalidGrant)
    );
    verify_token_request(Some(&stored_challenge), Some(verifier.expose_secret()))?;
    println!(
        "the right verifier verifies (in constant time); only now may the server discard the challenge."
    );
    Ok(())
}
