//! Where a JWK set comes from: the [`KeySource`] trait, a fixed [`StaticSource`], and the HTTP
//! source.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::FetchError;

/// A JWK set document as fetched, before parsing.
#[derive(Clone, PartialEq, Eq)]
pub struct FetchedJwks {
    /// The document (`{"keys": [...]}`).
    pub body: Vec<u8>,
    /// The freshness the server asked for (`Cache-Control: max-age`; zero for `no-cache` or
    /// `no-store`), if any. The cache clamps it to its configured bounds.
    pub max_age: Option<Duration>,
}

impl fmt::Debug for FetchedJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchedJwks")
            .field("body_len", &self.body.len())
            .field("max_age", &self.max_age)
            .finish()
    }
}

/// Something that can fetch the identity provider's JWK set.
///
/// Object-safe, so a cache holds an `Arc<dyn KeySource>`. The cache calls `fetch` at most once
/// at a time and at most once per cooldown; an implementation needs no caching of its own.
#[async_trait]
pub trait KeySource: Send + Sync + fmt::Debug {
    /// Fetch the current JWK set.
    ///
    /// # Errors
    /// A [`FetchError`] saying why no document could be had.
    async fn fetch(&self) -> Result<FetchedJwks, FetchError>;
}

/// A fixed JWK set: for tests, fuzzing, a development IdP, or keys configured out of band.
#[derive(Clone)]
pub struct StaticSource {
    fetched: FetchedJwks,
}

impl StaticSource {
    /// A source that always returns `document`, with no `max-age`.
    pub fn new(document: impl Into<Vec<u8>>) -> Self {
        Self {
            fetched: FetchedJwks {
                body: document.into(),
                max_age: None,
            },
        }
    }

    /// The same source, returning `max_age` as if the server had sent it.
    #[must_use]
    pub const fn with_max_age(mut self, max_age: Duration) -> Self {
        self.fetched.max_age = Some(max_age);
        self
    }
}

impl fmt::Debug for StaticSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StaticSource").field(&self.fetched).finish()
    }
}

#[async_trait]
impl KeySource for StaticSource {
    async fn fetch(&self) -> Result<FetchedJwks, FetchError> {
        Ok(self.fetched.clone())
    }
}

/// The `max-age` of a `Cache-Control` field value (RFC 9111 §5.2.2.1), or zero for `no-store`
/// and `no-cache` (RFC 9111 §5.2.2.4, §5.2.2.5).
///
/// Directive names are case-insensitive; the first `max-age` wins (RFC 9111 §4.2.1); a value
/// that is not a non-negative integer (quoted or not) is ignored; `s-maxage` is for shared caches
/// and is ignored.
///
/// ```
/// use std::time::Duration;
/// use portcullis_jwks::source::parse_max_age;
///
/// assert_eq!(parse_max_age("public, max-age=3600"), Some(Duration::from_secs(3600)));
/// assert_eq!(parse_max_age("Max-Age=\"60\", must-revalidate"), Some(Duration::from_secs(60)));
/// assert_eq!(parse_max_age("no-store"), Some(Duration::ZERO));
/// assert_eq!(parse_max_age("public"), None);
/// assert_eq!(parse_max_age("max-age=-5"), None);
/// ```
#[must_use]
pub fn parse_max_age(cache_control: &str) -> Option<Duration> {
    let mut max_age = None;
    let mut no_cache = false;
    for directive in cache_control.split(',') {
        let (name, value) = match directive.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            no_cache = true;
        } else if name.eq_ignore_ascii_case("max-age") && max_age.is_none() {
            max_age = value
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .map(|v| v.parse::<u64>().unwrap_or(u64::MAX))
                .map(Duration::from_secs);
        }
    }
    if no_cache {
        Some(Duration::ZERO)
    } else {
        max_age
    }
}

#[cfg(feature = "http")]
pub use http::{HttpSource, HttpSourceBuilder};

#[cfg(feature = "http")]
mod http {
    use std::fmt;
    use std::net::IpAddr;
    use std::time::Duration;

    use async_trait::async_trait;
    use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
    use reqwest::{StatusCode, Url};

    use super::{FetchedJwks, KeySource, parse_max_age};
    use crate::defaults::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_HTTP_TIMEOUT, DEFAULT_MAX_JWKS_BYTES};
    use crate::error::{ConfigError, FetchError};

    /// Fetches the JWK set over HTTPS with reqwest (rustls).
    ///
    /// - `https` only; plain `http` only to a loopback address (`localhost`, `127.0.0.0/8`,
    ///   `::1`), for development IdPs and tests;
    /// - a connect timeout ([`DEFAULT_CONNECT_TIMEOUT`]) and a total timeout
    ///   ([`DEFAULT_HTTP_TIMEOUT`]);
    /// - redirects are not followed, and only a `200` whose `Content-Type` is
    ///   `application/json`, `application/jwk-set+json` or another `application/*+json` is
    ///   accepted;
    /// - the body is capped ([`DEFAULT_MAX_JWKS_BYTES`]) while it is read, so an endless or huge
    ///   response costs at most the cap;
    /// - `Cache-Control: max-age` is read and handed to the cache.
    #[derive(Clone)]
    pub struct HttpSource {
        url: Url,
        client: reqwest::Client,
        max_bytes: usize,
    }

    /// Builds an [`HttpSource`].
    #[derive(Debug, Clone)]
    pub struct HttpSourceBuilder {
        url: String,
        timeout: Duration,
        connect_timeout: Duration,
        max_bytes: usize,
    }

    impl fmt::Debug for HttpSource {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("HttpSource")
                .field("url", &self.url.as_str())
                .field("max_bytes", &self.max_bytes)
                .finish_non_exhaustive()
        }
    }

    impl HttpSource {
        /// A source for `url` with the default timeouts and size cap.
        ///
        /// # Errors
        /// See [`HttpSourceBuilder::build`].
        pub fn new(url: &str) -> Result<Self, ConfigError> {
            Self::builder(url).build()
        }

        /// A builder for a source fetching `url`.
        pub fn builder(url: impl Into<String>) -> HttpSourceBuilder {
            HttpSourceBuilder {
                url: url.into(),
                timeout: DEFAULT_HTTP_TIMEOUT,
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                max_bytes: DEFAULT_MAX_JWKS_BYTES,
            }
        }

        /// The URL fetched.
        #[must_use]
        pub fn url(&self) -> &str {
            self.url.as_str()
        }
    }

    /// Whether `url` points at this machine.
    fn is_loopback(url: &Url) -> bool {
        match url.host_str() {
            Some(host) if host.eq_ignore_ascii_case("localhost") => true,
            Some(host) => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()),
            None => false,
        }
    }

    impl HttpSourceBuilder {
        /// The total time for one request (default [`DEFAULT_HTTP_TIMEOUT`]).
        #[must_use]
        pub fn timeout(mut self, timeout: Duration) -> Self {
            self.timeout = timeout;
            self
        }

        /// The time to connect (default [`DEFAULT_CONNECT_TIMEOUT`]).
        #[must_use]
        pub fn connect_timeout(mut self, timeout: Duration) -> Self {
            self.connect_timeout = timeout;
            self
        }

        /// The largest body accepted, in bytes (default [`DEFAULT_MAX_JWKS_BYTES`]).
        #[must_use]
        pub fn max_bytes(mut self, max: usize) -> Self {
            self.max_bytes = max;
            self
        }

        /// The source.
        ///
        /// # Errors
        /// [`ConfigError::InvalidUrl`], [`ConfigError::InsecureUrl`] for `http` to anything but
        /// loopback, [`ConfigError::ZeroLimit`], or [`ConfigError::HttpClient`].
        pub fn build(self) -> Result<HttpSource, ConfigError> {
            let url = Url::parse(&self.url).map_err(|_| ConfigError::InvalidUrl)?;
            let https = match url.scheme() {
                "https" => true,
                "http" if is_loopback(&url) => false,
                _ => return Err(ConfigError::InsecureUrl),
            };
            if self.max_bytes == 0 || self.timeout.is_zero() || self.connect_timeout.is_zero() {
                return Err(ConfigError::ZeroLimit);
            }
            let client = reqwest::Client::builder()
                .https_only(https)
                .connect_timeout(self.connect_timeout)
                .timeout(self.timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("portcullis-jwks/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
            Ok(HttpSource {
                url,
                client,
                max_bytes: self.max_bytes,
            })
        }
    }

    fn transport(e: &reqwest::Error) -> FetchError {
        if e.is_timeout() {
            FetchError::Timeout
        } else {
            FetchError::Transport(e.to_string())
        }
    }

    /// Whether a `Content-Type` value names JSON.
    fn is_json(content_type: &str) -> bool {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"))
    }

    #[async_trait]
    impl KeySource for HttpSource {
        async fn fetch(&self) -> Result<FetchedJwks, FetchError> {
            let mut response = self
                .client
                .get(self.url.clone())
                .header(ACCEPT, "application/jwk-set+json, application/json")
                .send()
                .await
                .map_err(|e| transport(&e))?;
            if response.status() != StatusCode::OK {
                return Err(FetchError::Status(response.status().as_u16()));
            }
            let json = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(is_json);
            if !json {
                return Err(FetchError::NotJson);
            }
            let cache_control: Vec<&str> = response
                .headers()
                .get_all(CACHE_CONTROL)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            let max_age = parse_max_age(&cache_control.join(","));
            let too_large = FetchError::TooLarge {
                max: self.max_bytes,
            };
            let declared = response.content_length().unwrap_or(0);
            if usize::try_from(declared).map_or(true, |d| d > self.max_bytes) {
                return Err(too_large);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| transport(&e))? {
                if body.len().saturating_add(chunk.len()) > self.max_bytes {
                    return Err(too_large);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(FetchedJwks { body, max_age })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn only_https_or_loopback_http() {
            assert!(HttpSource::new("https://idp.example/.well-known/jwks.json").is_ok());
            for ok in [
                "http://127.0.0.1:8080/j",
                "http://localhost/j",
                "http://[::1]:1/j",
                "http://127.9.9.9/j",
            ] {
                assert!(HttpSource::new(ok).is_ok(), "{ok}");
            }
            for bad in [
                "http://idp.example/j",
                "http://10.0.0.1/j",
                "ftp://idp.example/j",
                "file:///etc/passwd",
            ] {
                assert_eq!(
                    HttpSource::new(bad).unwrap_err(),
                    ConfigError::InsecureUrl,
                    "{bad}"
                );
            }
            assert_eq!(
                HttpSource::new("not a url").unwrap_err(),
                ConfigError::InvalidUrl
            );
            assert_eq!(
                HttpSource::builder("https://idp.example/j")
                    .max_bytes(0)
                    .build()
                    .unwrap_err(),
                ConfigError::ZeroLimit
            );
        }

        #[test]
        fn json_content_types() {
            for ok in [
                "application/json",
                "Application/JSON; charset=utf-8",
                "application/jwk-set+json",
            ] {
                assert!(is_json(ok), "{ok}");
            }
            for bad in [
                "text/html",
                "text/plain",
                "",
                "application/jsonx",
                "text/x+json",
            ] {
                assert!(!is_json(bad), "{bad}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control() {
        let s = Duration::from_secs;
        assert_eq!(parse_max_age("max-age=0"), Some(s(0)));
        assert_eq!(parse_max_age("max-age=10, max-age=20"), Some(s(10)));
        assert_eq!(parse_max_age("s-maxage=10"), None);
        assert_eq!(parse_max_age("max-age=1x"), None);
        assert_eq!(parse_max_age("max-age"), None);
        assert_eq!(parse_max_age("max-age="), None);
        assert_eq!(
            parse_max_age("max-age=99999999999999999999999"),
            Some(s(u64::MAX))
        );
        assert_eq!(parse_max_age("max-age=60, No-Cache"), Some(s(0)));
        assert_eq!(parse_max_age(""), None);
    }
}
