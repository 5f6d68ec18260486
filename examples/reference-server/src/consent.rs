//! Pending consents: what the consent page was shown for, kept server-side and found by the
//! page's `consent_token`.
//!
//! The token is a fresh 256-bit opaque token (`pcc_…`); only its keyed hash
//! (`Purpose::Consent`) is kept. It is bound to the request (everything the code will be issued
//! for is stored with it, not taken from the form) and to the session (the keyed hash of the
//! session token that saw the page), and taken out on first use, whatever the outcome: single
//! use (RFC 6749 §10.12).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use portcullis_core::{SecretString, UnixTime};
use portcullis_hash::{OpaqueToken, Purpose, TokenHash, TokenHasher, TokenPrefix};
use portcullis_pkce::CodeChallenge;
use portcullis_rotation::Scope;

/// How long a consent page stays valid: 10 minutes. Source: the longest authorization code
/// lifetime RFC 6749 §4.1.2 recommends; a user reads a consent page in far less.
pub(crate) const CONSENT_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// Most pending consents kept: 100,000. Source: /authorize is rate limited per IP and per user;
/// the bound keeps a distributed flood from growing memory without limit.
pub(crate) const MAX_PENDING: usize = 100_000;

/// The prefix of consent tokens.
pub(crate) const CONSENT_PREFIX: TokenPrefix = TokenPrefix::new("pcc");

/// One authorization request waiting for the user's decision.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) state: Option<String>,
    pub(crate) scope: Scope,
    pub(crate) resources: Vec<String>,
    pub(crate) challenge: CodeChallenge,
    pub(crate) user_id: String,
    pub(crate) session: TokenHash,
    pub(crate) expires_at: UnixTime,
}

/// The pending consents.
#[derive(Debug, Default)]
pub(crate) struct ConsentStore {
    pending: Mutex<HashMap<TokenHash, Pending>>,
}

impl ConsentStore {
    /// Keep `pending` and return its consent token (plaintext, for the page only).
    pub(crate) fn insert(
        &self,
        hasher: &TokenHasher,
        pending: Pending,
        now: UnixTime,
    ) -> Result<SecretString, ()> {
        let token = OpaqueToken::mint(CONSENT_PREFIX).map_err(|_| ())?;
        let hash = hasher.hash(Purpose::Consent, token.expose_secret().as_bytes());
        let mut map = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_PENDING {
            map.retain(|_, p| p.expires_at > now);
            if map.len() >= MAX_PENDING {
                return Err(());
            }
        }
        map.insert(hash, pending);
        Ok(token.into_secret())
    }

    /// Take the pending consent of `token` out (single use); `None` if the token is malformed,
    /// unknown, used or expired.
    pub(crate) fn take(&self, hasher: &TokenHasher, token: &str, now: UnixTime) -> Option<Pending> {
        let parsed = OpaqueToken::parse(CONSENT_PREFIX, token).ok()?;
        let candidates: Vec<TokenHash> = hasher
            .candidates(Purpose::Consent, parsed.as_str().as_bytes())
            .collect();
        let mut map = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let found = candidates.iter().find_map(|h| map.remove(h))?;
        drop(map);
        (found.expires_at > now).then_some(found)
    }

    /// Drop expired entries.
    pub(crate) fn purge(&self, now: UnixTime) -> usize {
        let mut map = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let before = map.len();
        map.retain(|_, p| p.expires_at > now);
        before - map.len()
    }
}
