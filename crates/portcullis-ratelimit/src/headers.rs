//! The IETF rate-limit fields, `Retry-After`, and the 429 response.
//!
//! Field names and syntax follow draft-ietf-httpapi-ratelimit-headers (draft 09 and later): two
//! structured-field Lists whose members are the policy names, with parameters.
//!
//! ```text
//! RateLimit-Policy: "authorize-ip";q=10;w=60, "authorize-user";q=20;w=60
//! RateLimit: "authorize-ip";r=7;t=18, "authorize-user";r=19;t=3
//! ```
//!
//! - `RateLimit-Policy` (`RLH-3-a`): per limit, `q` = [`Limit::capacity`] (the requests admitted
//!   at once) and `w` = the seconds over which they are admitted (the period for the windows,
//!   `burst × emission interval` for GCRA), rounded up.
//! - `RateLimit` (`RLH-4-a`): per limit, `r` = remaining and `t` = seconds until reset, rounded
//!   up. On an admitted request every limit is listed with its reset. On a denial only the
//!   denying limits are listed, with `r=0` and `t` = the seconds until a request is admitted
//!   again, and `Retry-After` is the largest of those `t` (`RLH-6-a`: never earlier than the end of
//!   any listed `t`), an integer of at least 1 (`9110-10.2.3-a`).
//! - The obsolete `RateLimit-Limit`, `-Remaining` and `-Reset` are never sent, and the fields are
//!   headers, never trailers.
//! - The 429 carries `Cache-Control: no-store` (`6585-4-a`) and a small JSON body
//!   `{"error":"temporarily_unavailable","error_description":"rate limit exceeded"}`.

use std::fmt::Write as _;
use std::time::Duration;

use portcullis_core::{ErrorCode, OAuthError};

use crate::decision::ceil_secs;
use crate::{Decision, Limit};

/// `RateLimit-Policy` (lower case, as HTTP/2 and HTTP/3 send it).
pub const RATELIMIT_POLICY: &str = "ratelimit-policy";
/// `RateLimit`.
pub const RATELIMIT: &str = "ratelimit";
/// `Retry-After`.
pub const RETRY_AFTER: &str = "retry-after";
/// The header that says a request was decided without the store, because the store failed:
/// `fail-open` (the request was let through) or `fail-closed` (it was refused with 503).
pub const DEGRADED: &str = "portcullis-ratelimit-degraded";

/// The values of the rate-limit fields for one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitFields {
    /// The `RateLimit-Policy` value.
    pub policy: String,
    /// The `RateLimit` value.
    pub rate_limit: String,
    /// The `Retry-After` delay in seconds: `Some` (at least 1) exactly when the request is denied.
    pub retry_after: Option<u64>,
}

/// One `RateLimit-Policy` member: `"name";q=10;w=60`.
#[must_use]
pub fn policy_item(limit: &Limit) -> String {
    format!(
        "\"{}\";q={};w={}",
        limit.name(),
        limit.capacity(),
        ceil_secs(Duration::from_micros(limit.window_micros())).max(1)
    )
}

impl RateLimitFields {
    /// The fields for a request checked against `limits` with these `decisions` (one per limit,
    /// in order), admitted if `allowed`.
    #[must_use]
    pub fn new<'a>(
        checks: impl IntoIterator<Item = (&'a Limit, &'a Decision)>,
        allowed: bool,
    ) -> Self {
        let mut policy = String::new();
        let mut rate_limit = String::new();
        let mut retry_after: Option<u64> = None;
        for (limit, d) in checks {
            if !policy.is_empty() {
                policy.push_str(", ");
            }
            policy.push_str(&policy_item(limit));
            let t = if allowed {
                d.reset_after_secs()
            } else if !d.allowed {
                let t = d.retry_after_secs();
                retry_after = Some(retry_after.map_or(t, |r| r.max(t)));
                t
            } else {
                continue;
            };
            if !rate_limit.is_empty() {
                rate_limit.push_str(", ");
            }
            let r = if d.allowed { d.remaining } else { 0 };
            // Writing to a String cannot fail.
            let _ = write!(rate_limit, "\"{}\";r={r};t={t}", limit.name());
        }
        if !allowed && retry_after.is_none() {
            // Denied without a denying decision cannot come from a store; stay safe anyway.
            retry_after = Some(1);
        }
        Self {
            policy,
            rate_limit,
            retry_after,
        }
    }

    /// The JSON body of the 429 response.
    #[must_use]
    pub fn body() -> String {
        Self::oauth_error().to_json()
    }

    /// The OAuth error of the 429 response: `temporarily_unavailable`, status 429.
    #[must_use]
    pub fn oauth_error() -> OAuthError {
        OAuthError::new(ErrorCode::TemporarilyUnavailable)
            .with_status(429)
            .describe("rate limit exceeded")
    }
}

#[cfg(feature = "http")]
mod http_impl {
    use super::*;
    use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
    use http::{HeaderMap, Response, StatusCode};

    fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
        if value.is_empty() {
            return;
        }
        // Every value here is built from digits, separators and limit names restricted to
        // [A-Za-z0-9._-], so it is always a valid header value.
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }

    impl RateLimitFields {
        /// Write `RateLimit-Policy`, `RateLimit` and (for a denial) `Retry-After` into `headers`.
        pub fn apply(&self, headers: &mut HeaderMap) {
            set(headers, RATELIMIT_POLICY, &self.policy);
            set(headers, RATELIMIT, &self.rate_limit);
            if let Some(secs) = self.retry_after {
                headers.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
            }
        }

        /// The 429 response: the fields above, `Cache-Control: no-store`, and the JSON body.
        #[must_use]
        pub fn too_many_requests<B: From<String>>(&self) -> Response<B> {
            let mut response = Response::new(B::from(Self::body()));
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            let headers = response.headers_mut();
            self.apply(headers);
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
    }

    /// The response of a fail-closed limiter whose store failed: 503 `temporarily_unavailable`,
    /// `Retry-After: 1`, `Cache-Control: no-store` and the [`DEGRADED`] header.
    #[must_use]
    pub fn store_unavailable<B: From<String>>(error: &crate::StoreError) -> Response<B> {
        let mut response = Response::new(B::from(error.oauth_error().to_json()));
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        let headers = response.headers_mut();
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from(1u64));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            HeaderName::from_static(DEGRADED),
            HeaderValue::from_static("fail-closed"),
        );
        response
    }
}

#[cfg(feature = "http")]
pub use http_impl::store_unavailable;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Quota;

    fn limit(name: &str, q: &str) -> Limit {
        Limit::new(name.to_owned(), q.parse::<Quota>().unwrap()).unwrap()
    }

    fn decision(allowed: bool, remaining: u32, reset: u64, retry_us: u64) -> Decision {
        Decision {
            allowed,
            limit: 10,
            remaining,
            reset_after: Duration::from_secs(reset),
            retry_after: Duration::from_micros(retry_us),
        }
    }

    // covers RLH-3-a, RLH-4-a
    #[test]
    fn admitted_lists_every_policy() {
        let ip = limit("authorize-ip", "10/min");
        let user = limit("authorize-user", "20/min");
        let f = RateLimitFields::new(
            [
                (&ip, &decision(true, 7, 18, 0)),
                (&user, &decision(true, 19, 3, 0)),
            ],
            true,
        );
        assert_eq!(
            f.policy,
            r#""authorize-ip";q=10;w=60, "authorize-user";q=20;w=60"#
        );
        assert_eq!(
            f.rate_limit,
            r#""authorize-ip";r=7;t=18, "authorize-user";r=19;t=3"#
        );
        assert_eq!(f.retry_after, None);
    }

    // covers RLH-4-a, RLH-6-a, 9110-10.2.3-a
    #[test]
    fn denied_lists_the_denying_policies_and_retry_after_is_never_earlier() {
        let ip = limit("ip", "10/min");
        let user = limit("user", "20/min;burst=5");
        let f = RateLimitFields::new(
            [
                (&ip, &decision(false, 0, 60, 5_000_001)),
                (&user, &decision(true, 4, 40, 0)),
            ],
            false,
        );
        assert_eq!(f.policy, r#""ip";q=10;w=60, "user";q=5;w=15"#);
        assert_eq!(f.rate_limit, r#""ip";r=0;t=6"#);
        assert_eq!(f.retry_after, Some(6));
        let two = RateLimitFields::new(
            [
                (&ip, &decision(false, 0, 1, 1)),
                (&user, &decision(false, 0, 9, 8_000_000)),
            ],
            false,
        );
        assert_eq!(two.rate_limit, r#""ip";r=0;t=1, "user";r=0;t=8"#);
        assert_eq!(two.retry_after, Some(8));
    }

    // covers 6585-4-a
    #[cfg(feature = "http")]
    #[test]
    fn too_many_requests_response() {
        let ip = limit("ip", "10/min");
        let f = RateLimitFields::new([(&ip, &decision(false, 0, 60, 6_000_000))], false);
        let r: http::Response<String> = f.too_many_requests();
        assert_eq!(r.status(), 429);
        let h = r.headers();
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["retry-after"], "6");
        assert_eq!(h["ratelimit"], r#""ip";r=0;t=6"#);
        assert_eq!(h["ratelimit-policy"], r#""ip";q=10;w=60"#);
        assert_eq!(h["content-type"], "application/json");
        assert!(h.get("ratelimit-remaining").is_none() && h.get("ratelimit-limit").is_none());
        let body: serde_json::Value = serde_json::from_str(r.body()).unwrap();
        assert_eq!(body["error"], "temporarily_unavailable");
        assert!(r.body().len() < 100);
    }
}
