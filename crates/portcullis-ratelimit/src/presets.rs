//! The deployment's policy, ready to use.
//!
//! The limits the Next.js deployment this project replaces enforced (with INCR/EXPIRE keyed by a
//! spoofable header), now with GCRA, the socket peer or trusted proxies, and one atomic check:
//!
//! | endpoint | limits |
//! |---|---|
//! | token | 10/min per client IP |
//! | authorize | 10/min per client IP and 20/min per authenticated user |

use std::num::NonZeroU32;

use crate::{Limit, Quota};

const fn nonzero(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => NonZeroU32::MIN,
    }
}

/// Token endpoint requests per minute per client IP. Source: the deployment this crate replaces
/// (issue 5).
pub const TOKEN_PER_IP_PER_MINUTE: NonZeroU32 = nonzero(10);
/// Authorize endpoint requests per minute per client IP. Source: the deployment (issue 5).
pub const AUTHORIZE_PER_IP_PER_MINUTE: NonZeroU32 = nonzero(10);
/// Authorize endpoint requests per minute per authenticated user. Source: the deployment
/// (issue 5).
pub const AUTHORIZE_PER_USER_PER_MINUTE: NonZeroU32 = nonzero(20);

/// `token-ip`: 10/min per client IP (GCRA, burst 10).
#[must_use]
pub fn token_per_ip() -> Limit {
    Limit::preset("token-ip", Quota::per_minute(TOKEN_PER_IP_PER_MINUTE))
}

/// `authorize-ip`: 10/min per client IP (GCRA, burst 10).
#[must_use]
pub fn authorize_per_ip() -> Limit {
    Limit::preset(
        "authorize-ip",
        Quota::per_minute(AUTHORIZE_PER_IP_PER_MINUTE),
    )
}

/// `authorize-user`: 20/min per authenticated user (GCRA, burst 20).
#[must_use]
pub fn authorize_per_user() -> Limit {
    Limit::preset(
        "authorize-user",
        Quota::per_minute(AUTHORIZE_PER_USER_PER_MINUTE),
    )
}

#[cfg(feature = "tower")]
mod layers {
    use std::sync::Arc;

    use super::*;
    use crate::{ClientIpResolver, FailurePolicy, RateLimitLayer, RateLimitStore, Rule};

    /// The token endpoint's layer: [`token_per_ip`].
    #[must_use]
    pub fn token_endpoint(
        store: Arc<dyn RateLimitStore>,
        client_ip: ClientIpResolver,
        on_store_error: FailurePolicy,
    ) -> RateLimitLayer {
        RateLimitLayer::new(store, on_store_error)
            .client_ip(client_ip)
            .rule(Rule::per_ip(token_per_ip()))
    }

    /// The authorize endpoint's layer: [`authorize_per_ip`] and [`authorize_per_user`] (by the
    /// [`AuthenticatedUser`](crate::AuthenticatedUser) extension), checked together.
    #[must_use]
    pub fn authorize_endpoint(
        store: Arc<dyn RateLimitStore>,
        client_ip: ClientIpResolver,
        on_store_error: FailurePolicy,
    ) -> RateLimitLayer {
        RateLimitLayer::new(store, on_store_error)
            .client_ip(client_ip)
            .rule(Rule::per_ip(authorize_per_ip()))
            .rule(Rule::per_user(authorize_per_user()))
    }
}

#[cfg(feature = "tower")]
pub use layers::{authorize_endpoint, token_endpoint};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limit, MemoryStore};
    use portcullis_core::ManualClock;
    use std::time::Duration;

    #[test]
    fn presets_are_the_deployment_policy() {
        for (l, name, per_min) in [
            (token_per_ip(), "token-ip", 10),
            (authorize_per_ip(), "authorize-ip", 10),
            (authorize_per_user(), "authorize-user", 20),
        ] {
            assert_eq!(
                Limit::new(name, *l.quota()).unwrap(),
                l,
                "the preset name is valid"
            );
            assert_eq!(l.quota().to_string(), format!("{per_min}/min"));
            assert_eq!(l.quota().period(), Duration::from_secs(60));
        }
    }

    #[test]
    fn token_preset_admits_ten_then_one_every_six_seconds() {
        let clock = ManualClock::at_secs(1_700_000_000);
        let store = MemoryStore::builder().build(clock.clone());
        let l = token_per_ip();
        let admitted = (0..15)
            .filter(|_| store.check_now(&l, "203.0.113.7").allowed)
            .count();
        assert_eq!(admitted, 10);
        clock.advance(Duration::from_secs(6));
        assert!(store.check_now(&l, "203.0.113.7").allowed);
        assert!(!store.check_now(&l, "203.0.113.7").allowed);
    }
}
