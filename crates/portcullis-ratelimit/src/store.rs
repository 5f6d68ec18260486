//! The storage trait every backend implements.

use std::fmt;

use portcullis_core::{ErrorCode, OAuthError};

use crate::{Decision, Limit, MultiDecision};

/// One key checked under one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check<'a> {
    /// The limit (its name namespaces the key: one key under two limits has two budgets).
    pub limit: &'a Limit,
    /// The client's key under that limit (an IP, a user id, a route).
    pub key: &'a str,
}

impl<'a> Check<'a> {
    /// A check of `key` under `limit`.
    #[must_use]
    pub const fn new(limit: &'a Limit, key: &'a str) -> Self {
        Self { limit, key }
    }
}

/// Why a store could not decide.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or refused the operation; retrying may help.
    #[error("rate-limit store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The backend did not answer in time; retrying may help.
    #[error("rate-limit store timed out")]
    Timeout,
    /// The backend answered something this crate cannot read (a bug or a foreign key); retrying
    /// will not help.
    #[error("rate-limit store returned an unreadable reply")]
    Corrupt,
}

impl StoreError {
    /// Whether retrying the same operation can help.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Timeout)
    }

    /// The OAuth error a server sends when it fails closed: `temporarily_unavailable` (503), with
    /// no internal detail.
    #[must_use]
    pub fn oauth_error(&self) -> OAuthError {
        OAuthError::new(ErrorCode::TemporarilyUnavailable).describe("rate limiter unavailable")
    }
}

/// Where rate-limit state lives: the memory store here, Redis in `portcullis-redis`.
///
/// Every operation is **one atomic step** on the store: read the key's [`State`](crate::State),
/// run [`decide`](crate::decide), write the new state with a time-to-live of
/// `state.expires_at − now`. A Redis store runs each method as one Lua script (one round trip);
/// times are integer microseconds, and the store takes `now` from its own clock (the memory
/// store's [`Clock`](portcullis_core::Clock), or the Redis server's `TIME`).
///
/// The trait is object-safe, so a server can hold an `Arc<dyn RateLimitStore>`. Every
/// implementation must pass the conformance suite (feature `conformance`).
#[async_trait::async_trait]
pub trait RateLimitStore: Send + Sync + fmt::Debug {
    /// Check one request against `limit` for `key`, and count it if admitted.
    async fn check(&self, limit: &Limit, key: &str) -> Result<Decision, StoreError>;

    /// What [`check`](Self::check) would answer now, consuming nothing.
    async fn peek(&self, limit: &Limit, key: &str) -> Result<Decision, StoreError>;

    /// Check one request against several limits at once (per IP and per user, say). Admitted only
    /// if every check admits it, and then each consumes one unit; if any denies, **none**
    /// consumes. Atomic as a whole: no other operation sees a partial result. The same
    /// limit and key given twice count twice.
    ///
    /// On Redis this is one script over all the keys: decide each against its state (and the
    /// states earlier keys of the call would leave), and write only if all admit. On Redis
    /// Cluster the keys of one call must share a slot for that script to run; a cluster store
    /// has to choose a key schema that guarantees it (for example one hash tag for a limiter's
    /// keys) rather than give up the all-or-nothing contract.
    async fn check_all(&self, checks: &[Check<'_>]) -> Result<MultiDecision, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_whether_to_retry_and_leak_nothing() {
        let e = StoreError::Unavailable("connection refused to 10.0.0.7:6379".into());
        assert!(e.is_retryable());
        assert!(StoreError::Timeout.is_retryable());
        assert!(!StoreError::Corrupt.is_retryable());
        let o = e.oauth_error();
        assert_eq!(o.status(), 503);
        assert!(!o.to_json().contains("10.0.0.7"));
        assert!(!e.to_string().contains("10.0.0.7"));
    }
}
