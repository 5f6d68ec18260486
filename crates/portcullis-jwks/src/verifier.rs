//! The verifier: token rules plus a key cache plus a clock.

use std::sync::Arc;
use std::time::Duration;

use portcullis_core::{Clock, SystemClock};
use serde::de::DeserializeOwned;

use crate::algorithm::Algorithm;
use crate::cache::{CacheConfig, CacheStats, JwksCache};
use crate::error::{ConfigError, VerifyError};
use crate::rules::{RequiredClaim, TokenRules, TokenRulesBuilder, TypRule, Verified};
use crate::source::KeySource;

/// Verifies the JWTs of one identity provider against its cached JWKS.
///
/// Build one per IdP at startup with [`JwtVerifier::builder`], share it (it is cheap to clone and
/// `Send + Sync`), and call [`JwtVerifier::verify`] once per request: it returns the verified,
/// typed claims, so nothing downstream needs to decode the token again.
#[derive(Debug, Clone)]
pub struct JwtVerifier {
    rules: Arc<TokenRules>,
    cache: JwksCache,
}

/// Builds a [`JwtVerifier`].
#[derive(Debug)]
pub struct JwtVerifierBuilder {
    rules: TokenRulesBuilder,
    jwks_url: String,
    source: Option<Arc<dyn KeySource>>,
    clock: Arc<dyn Clock>,
    cache: CacheConfig,
    http_timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    max_jwks_bytes: Option<usize>,
}

impl JwtVerifier {
    /// A builder for tokens issued by `issuer`, the identity provider's URL.
    ///
    /// `iss` must equal `issuer` exactly, and the keys are fetched from
    /// `<issuer>/.well-known/jwks.json` unless [`JwtVerifierBuilder::jwks_url`] or
    /// [`JwtVerifierBuilder::key_source`] says otherwise.
    pub fn builder(issuer: impl Into<String>) -> JwtVerifierBuilder {
        let issuer = issuer.into();
        let jwks_url = format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/'));
        JwtVerifierBuilder {
            rules: TokenRules::builder(issuer),
            jwks_url,
            source: None,
            clock: Arc::new(SystemClock),
            cache: CacheConfig::default(),
            http_timeout: None,
            connect_timeout: None,
            max_jwks_bytes: None,
        }
    }

    /// Verify `token` and return its claims as `T`.
    ///
    /// Checks everything listed on [`TokenRules`], with the key from the cache (fetching it if
    /// needed, see [`JwksCache`]) and the time from the verifier's clock.
    ///
    /// # Errors
    /// The [`VerifyError`] of the first failed check; [`VerifyError::oauth_error`] turns it into
    /// the response to send.
    pub async fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<Verified<T>, VerifyError> {
        let parsed = self.rules.parse(token)?;
        let rules = &self.rules;
        self.cache
            .with_key(parsed, |parsed, key, now| rules.finish(parsed, key, now))
            .await
    }

    /// The key cache (to warm it, start background refresh, or read its counters).
    #[must_use]
    pub const fn cache(&self) -> &JwksCache {
        &self.cache
    }

    /// The cache's counters.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// The token rules.
    #[must_use]
    pub fn rules(&self) -> &TokenRules {
        &self.rules
    }
}

impl JwtVerifierBuilder {
    /// Accept tokens whose `aud` names `audience` (call again to accept several). At least one
    /// audience is required.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.rules = self.rules.audience(audience);
        self
    }

    /// The algorithm allow-list (default: every [`Algorithm`]).
    #[must_use]
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.rules = self.rules.algorithms(algorithms);
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat` (see [`TokenRulesBuilder::leeway`]).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.rules = self.rules.leeway(leeway);
        self
    }

    /// Require a claim (see [`TokenRulesBuilder::require`]).
    #[must_use]
    pub fn require(mut self, claim: RequiredClaim) -> Self {
        self.rules = self.rules.require(claim);
        self
    }

    /// Do not require `sub`.
    #[must_use]
    pub fn allow_missing_sub(mut self) -> Self {
        self.rules = self.rules.allow_missing_sub();
        self
    }

    /// The `typ` rule (default [`TypRule::default`]).
    #[must_use]
    pub fn typ(mut self, rule: TypRule) -> Self {
        self.rules = self.rules.typ(rule);
        self
    }

    /// The longest token accepted (see [`TokenRulesBuilder::max_token_len`]).
    #[must_use]
    pub fn max_token_len(mut self, max: usize) -> Self {
        self.rules = self.rules.max_token_len(max);
        self
    }

    /// Fetch the keys from this URL instead of `<issuer>/.well-known/jwks.json`.
    #[must_use]
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = url.into();
        self
    }

    /// Get the keys from this source instead of over HTTP.
    #[must_use]
    pub fn key_source(mut self, source: Arc<dyn KeySource>) -> Self {
        self.source = Some(source);
        self
    }

    /// Take the time from this clock (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The cache's refresh settings.
    #[must_use]
    pub fn cache_config(mut self, config: CacheConfig) -> Self {
        self.cache = config;
        self
    }

    /// The HTTP source's total timeout (see [`HttpSourceBuilder::timeout`](crate::HttpSourceBuilder::timeout)).
    #[must_use]
    pub const fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = Some(timeout);
        self
    }

    /// The HTTP source's connect timeout.
    #[must_use]
    pub const fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The HTTP source's cap on the JWKS size, in bytes.
    #[must_use]
    pub const fn max_jwks_bytes(mut self, max: usize) -> Self {
        self.max_jwks_bytes = Some(max);
        self
    }

    /// The verifier. Nothing is fetched yet.
    ///
    /// # Errors
    /// A [`ConfigError`] from the rules, the cache settings or the HTTP source.
    pub fn build(self) -> Result<JwtVerifier, ConfigError> {
        let rules = self.rules.build()?;
        let source = match self.source {
            Some(source) => source,
            None => Self::http_source(
                &self.jwks_url,
                self.http_timeout,
                self.connect_timeout,
                self.max_jwks_bytes,
            )?,
        };
        let cache = JwksCache::new(source, self.clock, self.cache)?;
        Ok(JwtVerifier {
            rules: Arc::new(rules),
            cache,
        })
    }

    #[cfg(feature = "http")]
    fn http_source(
        url: &str,
        timeout: Option<Duration>,
        connect_timeout: Option<Duration>,
        max_bytes: Option<usize>,
    ) -> Result<Arc<dyn KeySource>, ConfigError> {
        let mut b = crate::source::HttpSource::builder(url);
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        if let Some(t) = connect_timeout {
            b = b.connect_timeout(t);
        }
        if let Some(m) = max_bytes {
            b = b.max_bytes(m);
        }
        Ok(Arc::new(b.build()?))
    }

    #[cfg(not(feature = "http"))]
    fn http_source(
        _url: &str,
        _timeout: Option<Duration>,
        _connect_timeout: Option<Duration>,
        _max_bytes: Option<usize>,
    ) -> Result<Arc<dyn KeySource>, ConfigError> {
        Err(ConfigError::NoKeySource)
    }
}
