//! Policies: lifetimes, the grace window, binding and PKCE, with named defaults and their sources.

use std::time::Duration;

use portcullis_hash::IpPrefixLen;
use portcullis_pkce::PkcePolicy;

/// Default authorization code lifetime: 60 seconds. DESIGN.md ("code (short, default 60 s)");
/// RFC 9700 §4.2.2 wants codes short-lived and single-use, and a code is redeemed by the client
/// right after the redirect, so a minute is ample.
pub const DEFAULT_CODE_LIFETIME: Duration = Duration::from_secs(60);

/// Longest authorization code lifetime a policy accepts: 10 minutes. RFC 6749 §4.1.2: "A maximum
/// authorization code lifetime of 10 minutes is RECOMMENDED" (STANDARDS `6749-4.1.2-c`).
pub const MAX_CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// Default access token lifetime: 1 hour, the `expires_in` of RFC 6749 §4.2.2's example and the
/// figure issue 3 names. Opaque bearer tokens are checked against the store on every use, so
/// revocation takes effect at once; the lifetime bounds what a token copied out of a resource
/// server's logs is worth. It is further capped by the family's expiry, which is never later
/// than the upstream session's (see [`RotationPolicy`]).
pub const DEFAULT_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// Default refresh token idle lifetime: 14 days. RFC 9700 §4.14.2: refresh tokens "SHOULD
/// expire if the client has been inactive for some time" and leaves the period open; two weeks
/// keeps a weekly-used client signed in and ends forgotten grants within a fortnight. Each
/// rotation starts a new idle period, never past the family's absolute expiry.
pub const DEFAULT_REFRESH_IDLE_LIFETIME: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// Default family absolute lifetime: 90 days, fixed when the family is created and never
/// extended by rotation (DESIGN.md invariant 7). 90 days is the refresh token lifetime of Okta's
/// org authorization server (Okta support, "Refresh Token Expiration Behavior"); RFC 9700 §4.14.2
/// leaves the figure to the deployment.
pub const DEFAULT_FAMILY_LIFETIME: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// Default grace window: none. DESIGN.md invariant 5 ("default 0"): any second presentation of
/// a used refresh token is a replay (RFC 9700 §4.14.2, refresh token rotation).
pub const DEFAULT_GRACE_WINDOW: Duration = Duration::ZERO;

/// Longest grace window a policy accepts: 5 minutes. DESIGN.md invariant 5 ("capped at 5
/// minutes"): long enough for a client's retry after a lost response, short enough that a
/// stolen previous token is worth little.
pub const MAX_GRACE_WINDOW: Duration = Duration::from_secs(5 * 60);

/// What a refresh request is compared with (DESIGN.md invariant 9).
///
/// The binding values are recorded, as keyed hashes, when the code is exchanged, and compared
/// inside the store's redeem step on every refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum BindingMode {
    /// No comparison (the default: user agents change with every browser update and client IPs
    /// with every network, so binding is a deliberate choice).
    #[default]
    Off,
    /// The `User-Agent` must be the one the code was exchanged with.
    UserAgent,
    /// The `User-Agent` and the client's IP prefix (see [`BindingPolicy::ip_prefix`]) must both
    /// be the ones the code was exchanged with.
    UserAgentAndIpPrefix,
}

/// What happens when a refresh request does not match its family's binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum BindingAction {
    /// Treat the request as theft: revoke the whole family and answer `invalid_grant` (the
    /// default once binding is on).
    #[default]
    RevokeFamily,
    /// Refuse this request with `invalid_grant`; the token stays usable by a matching client.
    Reject,
    /// Rotate as usual and only emit a security event (to measure before enforcing).
    Report,
}

impl BindingAction {
    /// A stable lowercase name, for events and storage.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RevokeFamily => "revoke_family",
            Self::Reject => "reject",
            Self::Report => "report",
        }
    }
}

/// The binding policy: what is compared and what a mismatch does.
///
/// A device id, when the code exchange recorded one, is compared whenever the mode is not
/// [`BindingMode::Off`].
///
/// ```
/// use portcullis_rotation::{BindingAction, BindingMode, BindingPolicy};
///
/// let p = BindingPolicy::new(BindingMode::UserAgentAndIpPrefix, BindingAction::Reject);
/// assert_eq!(p.ip_prefix().v4(), 24);
/// assert_eq!(BindingPolicy::default().mode(), BindingMode::Off);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BindingPolicy {
    mode: BindingMode,
    action: BindingAction,
    ip_prefix: IpPrefixLen,
}

impl BindingPolicy {
    /// A policy with the default IP prefix lengths (/24 for IPv4, /56 for IPv6, from
    /// portcullis-hash).
    #[must_use]
    pub fn new(mode: BindingMode, action: BindingAction) -> Self {
        Self {
            mode,
            action,
            ip_prefix: IpPrefixLen::default(),
        }
    }

    /// This policy with other IP prefix lengths.
    #[must_use]
    pub const fn with_ip_prefix(mut self, ip_prefix: IpPrefixLen) -> Self {
        self.ip_prefix = ip_prefix;
        self
    }

    /// What is compared.
    #[must_use]
    pub const fn mode(&self) -> BindingMode {
        self.mode
    }

    /// What a mismatch does.
    #[must_use]
    pub const fn action(&self) -> BindingAction {
        self.action
    }

    /// How much of an address is compared.
    #[must_use]
    pub const fn ip_prefix(&self) -> IpPrefixLen {
        self.ip_prefix
    }
}

/// Why a policy value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A lifetime of zero.
    #[error("{0} must be longer than zero")]
    ZeroLifetime(&'static str),
    /// A code lifetime above [`MAX_CODE_LIFETIME`].
    #[error("the authorization code lifetime may be at most 10 minutes (RFC 6749 section 4.1.2)")]
    CodeLifetimeTooLong,
    /// A grace window above [`MAX_GRACE_WINDOW`].
    #[error("the grace window may be at most 5 minutes")]
    GraceWindowTooLong,
}

/// Everything the service decides by configuration.
///
/// Built from [`RotationPolicy::default`] and the `with_*` methods, which refuse values outside
/// their bounds, so a policy in hand is always valid.
///
/// The family's absolute expiry is fixed when its code is issued: the creation time plus
/// [`family_lifetime`](Self::family_lifetime), or the upstream session's expiry if that is
/// earlier. A grant never outlives the session it came from; so every access token is capped by
/// the session's expiry, and refreshing after it fails. A server that grants offline access
/// beyond the session passes no session expiry.
///
/// ```
/// use std::time::Duration;
/// use portcullis_rotation::{RotationPolicy, DEFAULT_CODE_LIFETIME};
///
/// let p = RotationPolicy::default().with_grace_window(Duration::from_secs(10))?;
/// assert_eq!(p.code_lifetime(), DEFAULT_CODE_LIFETIME);
/// assert!(RotationPolicy::default().with_grace_window(Duration::from_secs(301)).is_err());
/// assert!(RotationPolicy::default().with_code_lifetime(Duration::from_secs(601)).is_err());
/// # Ok::<(), portcullis_rotation::PolicyError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    code_lifetime: Duration,
    access_lifetime: Duration,
    refresh_idle_lifetime: Duration,
    family_lifetime: Duration,
    grace_window: Duration,
    binding: BindingPolicy,
    pkce: PkcePolicy,
    require_pkce: bool,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        Self {
            code_lifetime: DEFAULT_CODE_LIFETIME,
            access_lifetime: DEFAULT_ACCESS_TOKEN_LIFETIME,
            refresh_idle_lifetime: DEFAULT_REFRESH_IDLE_LIFETIME,
            family_lifetime: DEFAULT_FAMILY_LIFETIME,
            grace_window: DEFAULT_GRACE_WINDOW,
            binding: BindingPolicy::new(BindingMode::Off, BindingAction::RevokeFamily),
            pkce: PkcePolicy::S256_ONLY,
            // OAuth 2.1 §4.1.1 and RFC 9700 §2.1.1: PKCE for every authorization code.
            require_pkce: true,
        }
    }
}

fn nonzero(d: Duration, what: &'static str) -> Result<Duration, PolicyError> {
    if d.is_zero() {
        Err(PolicyError::ZeroLifetime(what))
    } else {
        Ok(d)
    }
}

impl RotationPolicy {
    /// This policy with another authorization code lifetime.
    ///
    /// # Errors
    /// Zero, or above [`MAX_CODE_LIFETIME`].
    pub fn with_code_lifetime(mut self, d: Duration) -> Result<Self, PolicyError> {
        if d > MAX_CODE_LIFETIME {
            return Err(PolicyError::CodeLifetimeTooLong);
        }
        self.code_lifetime = nonzero(d, "the authorization code lifetime")?;
        Ok(self)
    }

    /// This policy with another access token lifetime.
    ///
    /// # Errors
    /// Zero.
    pub fn with_access_lifetime(mut self, d: Duration) -> Result<Self, PolicyError> {
        self.access_lifetime = nonzero(d, "the access token lifetime")?;
        Ok(self)
    }

    /// This policy with another refresh token idle lifetime.
    ///
    /// # Errors
    /// Zero.
    pub fn with_refresh_idle_lifetime(mut self, d: Duration) -> Result<Self, PolicyError> {
        self.refresh_idle_lifetime = nonzero(d, "the refresh token idle lifetime")?;
        Ok(self)
    }

    /// This policy with another family absolute lifetime.
    ///
    /// # Errors
    /// Zero.
    pub fn with_family_lifetime(mut self, d: Duration) -> Result<Self, PolicyError> {
        self.family_lifetime = nonzero(d, "the family lifetime")?;
        Ok(self)
    }

    /// This policy with another grace window.
    ///
    /// # Errors
    /// Above [`MAX_GRACE_WINDOW`].
    pub fn with_grace_window(mut self, d: Duration) -> Result<Self, PolicyError> {
        if d > MAX_GRACE_WINDOW {
            return Err(PolicyError::GraceWindowTooLong);
        }
        self.grace_window = d;
        Ok(self)
    }

    /// This policy with another binding policy.
    #[must_use]
    pub const fn with_binding(mut self, binding: BindingPolicy) -> Self {
        self.binding = binding;
        self
    }

    /// This policy with another PKCE policy (which challenge methods codes may be issued with).
    #[must_use]
    pub const fn with_pkce(mut self, pkce: PkcePolicy) -> Self {
        self.pkce = pkce;
        self
    }

    /// This policy with PKCE required for every code (the default) or optional. Optional PKCE is
    /// for OAuth 2.0 confidential clients only; a code issued without a challenge still refuses a
    /// verifier at the token endpoint (RFC 9700 §4.8.2).
    #[must_use]
    pub const fn with_pkce_required(mut self, required: bool) -> Self {
        self.require_pkce = required;
        self
    }

    /// The authorization code lifetime.
    #[must_use]
    pub const fn code_lifetime(&self) -> Duration {
        self.code_lifetime
    }

    /// The access token lifetime (before the cap by the family's expiry).
    #[must_use]
    pub const fn access_lifetime(&self) -> Duration {
        self.access_lifetime
    }

    /// The refresh token idle lifetime.
    #[must_use]
    pub const fn refresh_idle_lifetime(&self) -> Duration {
        self.refresh_idle_lifetime
    }

    /// The family absolute lifetime.
    #[must_use]
    pub const fn family_lifetime(&self) -> Duration {
        self.family_lifetime
    }

    /// The grace window.
    #[must_use]
    pub const fn grace_window(&self) -> Duration {
        self.grace_window
    }

    /// The binding policy.
    #[must_use]
    pub const fn binding(&self) -> BindingPolicy {
        self.binding
    }

    /// The PKCE policy.
    #[must_use]
    pub const fn pkce(&self) -> PkcePolicy {
        self.pkce
    }

    /// Whether every code must be issued with a PKCE challenge.
    #[must_use]
    pub const fn pkce_required(&self) -> bool {
        self.require_pkce
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let p = RotationPolicy::default();
        assert_eq!(p.grace_window(), Duration::ZERO);
        assert_eq!(p.binding(), BindingPolicy::default());
        assert!(p.pkce_required());
        assert!(!p.pkce().allows_plain());
        assert!(p.with_code_lifetime(MAX_CODE_LIFETIME).is_ok());
        assert_eq!(
            p.with_code_lifetime(Duration::ZERO),
            Err(PolicyError::ZeroLifetime("the authorization code lifetime"))
        );
        assert!(p.with_grace_window(MAX_GRACE_WINDOW).is_ok());
        assert_eq!(
            p.with_grace_window(MAX_GRACE_WINDOW + Duration::from_micros(1)),
            Err(PolicyError::GraceWindowTooLong)
        );
        assert!(p.with_access_lifetime(Duration::ZERO).is_err());
        assert!(p.with_refresh_idle_lifetime(Duration::ZERO).is_err());
        assert!(p.with_family_lifetime(Duration::ZERO).is_err());
    }
}
