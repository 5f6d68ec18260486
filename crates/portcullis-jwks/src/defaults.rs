//! Every numeric default of the crate, with where it comes from.
//!
//! Two widely deployed remote-JWKS implementations set the baseline: panva/jose's
//! `createRemoteJWKSet` (`cooldownDuration` 30 000 ms, `cacheMaxAge` 600 000 ms,
//! `timeoutDuration` 5 000 ms) and nimbus-jose-jwt's `JWKSourceBuilder`
//! (`DEFAULT_RATE_LIMIT_MIN_INTERVAL` 30 000 ms, `DEFAULT_CACHE_TIME_TO_LIVE` 300 000 ms,
//! `DEFAULT_REFRESH_AHEAD_TIME` 30 000 ms, `DEFAULT_HTTP_SIZE_LIMIT` 51 200 bytes).

use std::time::Duration;

/// At most one fetch of the JWKS per this interval, whatever triggers it (an unknown `kid`, an
/// expired set, a failed fetch being retried). jose's `cooldownDuration` and nimbus's
/// `DEFAULT_RATE_LIMIT_MIN_INTERVAL` are both 30 s: long enough that a flood of tokens with junk
/// `kid`s costs the IdP at most two requests a minute per process, short enough that a real key
/// rotation is picked up within half a minute.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);

/// How long keys are fresh when the response has no usable `Cache-Control: max-age`: jose's
/// `cacheMaxAge` default (10 minutes).
pub const DEFAULT_TTL: Duration = Duration::from_secs(10 * 60);

/// The shortest freshness a `max-age` can ask for (a smaller value, `no-cache` or `no-store` is
/// raised to this): nimbus's `DEFAULT_CACHE_TIME_TO_LIVE` (5 minutes). Rotation does not wait
/// for it, because an unknown `kid` refetches after the cooldown.
pub const DEFAULT_MIN_TTL: Duration = Duration::from_secs(5 * 60);

/// The longest freshness a `max-age` can ask for: one day. Large IdPs publish `max-age` of a few
/// hours (auth0's jwks-rsa-java caches keys for 10 hours by default); a key the IdP withdraws
/// (for example after a compromise) stops being trusted at the latest this long after the last
/// fetch, plus [`DEFAULT_MAX_STALENESS`] if the IdP is unreachable.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How long expired keys keep verifying while the IdP cannot be reached: one hour, long enough
/// to ride out an IdP deploy or a short outage without logging every user out, short enough that
/// an outage is noticed (each stale serve is counted) before withdrawn keys matter.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(60 * 60);

/// With background refresh, keys are refetched this long before they expire: nimbus's
/// `DEFAULT_REFRESH_AHEAD_TIME` (30 s).
pub const DEFAULT_REFRESH_AHEAD: Duration = Duration::from_secs(30);

/// The background refresh task looks at the clock at least this often (it sleeps until the
/// refresh is due, but never longer, so a clock that jumps is noticed). The check is a few atomic
/// loads.
pub const DEFAULT_BACKGROUND_CHECK: Duration = Duration::from_secs(1);

/// Total time for one JWKS request (connect, TLS, headers and body): jose's `timeoutDuration`
/// (5 s).
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// Time to establish the TCP connection: 3 s covers the first SYN and its retransmission with
/// TCP's initial retransmission timeout of 1 s, doubled once (RFC 6298 §2.1, §5.5).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The largest JWKS body accepted: nimbus's `DEFAULT_HTTP_SIZE_LIMIT` (51 200 bytes). A set of
/// ten 4096-bit RSA keys is about 8 KiB.
pub const DEFAULT_MAX_JWKS_BYTES: usize = 51_200;

/// The longest token accepted; longer input is refused before any decoding. Session tokens travel
/// in a cookie, and browsers only promise 4096 bytes per cookie (RFC 6265 §6.1); 8 KiB also
/// matches the common 8 KiB limit on one HTTP header line (nginx `large_client_header_buffers`).
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

/// Clock skew tolerated on `exp`, `nbf` and `iat`: 60 s, jsonwebtoken's `Validation` default.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// The largest leeway a verifier can be configured with: RFC 7519 §4.1.4 allows "a small leeway,
/// usually no more than a few minutes"; five minutes is also the customary Kerberos maximum
/// clock skew.
pub const MAX_LEEWAY: Duration = Duration::from_secs(5 * 60);

/// The smallest RSA modulus accepted in a JWKS, in bits: RFC 7518 §3.3 ("a key of size 2048 bits
/// or larger MUST be used"), and the lower bound of the aws-lc-rs verification parameters.
pub const MIN_RSA_BITS: usize = 2048;
