//! Configuration: command-line flags with environment equivalents (clap), validated into
//! [`Settings`] before anything is bound or built.
//!
//! Every default comes from a named constant of the crate that owns the value (lifetimes from
//! portcullis-rotation, rate limits from portcullis-ratelimit's presets), so the server never
//! restates a security default. `docs/configuration.md` lists every flag.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use portcullis_hash::IpPrefixLen;
use portcullis_ratelimit::presets::{
    AUTHORIZE_PER_IP_PER_MINUTE, AUTHORIZE_PER_USER_PER_MINUTE, TOKEN_PER_IP_PER_MINUTE,
};
use portcullis_ratelimit::{
    ClientIpResolver, FailurePolicy, ForwardedHeader, Quota, TrustedProxies,
};
use portcullis_rotation::{
    BindingAction, BindingMode, BindingPolicy, DEFAULT_ACCESS_TOKEN_LIFETIME,
    DEFAULT_CODE_LIFETIME, DEFAULT_FAMILY_LIFETIME, DEFAULT_GRACE_WINDOW,
    DEFAULT_REFRESH_IDLE_LIFETIME, RotationPolicy, Scope,
};

/// Default listen address: loopback only, so a development server is not reachable from the
/// network by accident.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Default name of the upstream session cookie: `hanko`, the cookie Hanko sets (issue 6).
pub const DEFAULT_SESSION_COOKIE: &str = "hanko";

/// Default scopes the server offers: a small demo set; `profile` is what `/api/me` requires.
pub const DEFAULT_SCOPES: &str = "profile email read write";

/// Default registration limit per client IP: the token endpoint's 10/min (issue 5's deployment
/// policy), since registration is as cheap to flood as the token endpoint.
pub const REGISTER_PER_IP_PER_MINUTE: u32 = 10;

/// Why the configuration was refused: one line, shown as is, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// A duration written as a number and a unit: `90s`, `10m`, `1h`, `14d` (or `0` / `0s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "0" {
            return Ok(Self(Duration::ZERO));
        }
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (n, unit) = s.split_at_checked(digits).ok_or("not a duration")?;
        let n: u64 = n
            .parse()
            .map_err(|_| format!("{s:?} is not a duration such as 60s, 10m, 1h or 14d"))?;
        let secs = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            _ => {
                return Err(format!(
                    "{s:?} is not a duration such as 60s, 10m, 1h or 14d"
                ));
            }
        };
        n.checked_mul(secs)
            .map(|s| Self(Duration::from_secs(s)))
            .ok_or_else(|| format!("{s:?} is too long"))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
            if s != 0 && s.is_multiple_of(len) {
                return write!(f, "{}{unit}", s / len);
            }
        }
        write!(f, "{s}s")
    }
}

/// The binding mode flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BindingFlag {
    /// No binding.
    Off,
    /// The user agent must match the one the code was exchanged with.
    UserAgent,
    /// The user agent and the client's IP prefix must match.
    UserAgentIp,
}

/// The binding action flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BindingActionFlag {
    /// Revoke the whole family.
    RevokeFamily,
    /// Refuse the request only.
    Reject,
    /// Only report a security event.
    Report,
}

/// What the rate limiter does when its store fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailureFlag {
    /// Let requests through.
    Open,
    /// Refuse requests with 503.
    Closed,
}

/// The forwarding header trusted proxies write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ForwardedFlag {
    /// `X-Forwarded-For`.
    XForwardedFor,
    /// RFC 7239 `Forwarded`.
    Forwarded,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines with `key=value` fields.
    Text,
    /// One JSON object per line.
    Json,
}

/// The command line. Every flag also reads an environment variable (shown by `--help`; the
/// values of the secret ones are never shown, and `Debug` redacts the HMAC keys and the store
/// URL, which may carry a password).
#[derive(Clone, Parser)]
#[command(
    name = "reference-server",
    version,
    about = "The Portcullis reference OAuth 2.1 authorization server."
)]
pub struct Cli {
    /// Address and port to listen on.
    #[arg(long, env = "PORTCULLIS_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// The issuer URL (https, or http on a loopback address; no path, query or fragment).
    /// Default with --dev: `http://<listen address>`.
    #[arg(long, env = "PORTCULLIS_ISSUER")]
    pub issuer: Option<String>,
    /// The HMAC key for token hashes: at least 32 bytes, raw, `base64:…` or `hex:…`.
    #[arg(long, env = "HMAC_SECRET", hide_env_values = true)]
    pub hmac_secret: Option<String>,
    /// Previous HMAC keys, comma-separated, newest first (still accepted for lookups).
    #[arg(long, env = "HMAC_PREVIOUS_SECRETS", hide_env_values = true)]
    pub hmac_previous_secrets: Option<String>,
    /// Where grants and rate-limit state live: `memory`, `redis://host:port`,
    /// `redis+cluster://host1:port1,host2:port2`, or `postgres://…` (grants in PostgreSQL, rate
    /// limits in this process's memory).
    #[arg(
        long,
        env = "PORTCULLIS_STORE",
        default_value = "memory",
        hide_env_values = true
    )]
    pub store: String,
    /// Where rate-limit state is kept: `memory` or a redis:// URL. Default: the Redis of a
    /// redis:// `--store`, otherwise this process's memory. With a postgres:// store, a Redis
    /// here shares the limits between instances.
    #[arg(long, env = "PORTCULLIS_RATELIMIT_STORE", hide_env_values = true)]
    pub ratelimit_store: Option<String>,
    /// With a postgres:// store: apply the missing schema migrations at start (otherwise the
    /// schema is only checked, and a missing or older one stops the start).
    #[arg(long, env = "PORTCULLIS_MIGRATE")]
    pub migrate: bool,
    /// The upstream identity provider's issuer (`iss` of its session JWTs).
    #[arg(long, env = "UPSTREAM_ISSUER")]
    pub upstream_issuer: Option<String>,
    /// The upstream JWKS URL. Default: `<upstream issuer>/.well-known/jwks.json`.
    #[arg(long, env = "UPSTREAM_JWKS_URL")]
    pub upstream_jwks_url: Option<String>,
    /// The audience the upstream session JWTs carry.
    #[arg(long, env = "UPSTREAM_AUDIENCE")]
    pub upstream_audience: Option<String>,
    /// The name of the cookie holding the upstream session JWT.
    #[arg(long, env = "SESSION_COOKIE", default_value = DEFAULT_SESSION_COOKIE)]
    pub session_cookie: String,
    /// Where unauthenticated users are sent to sign in; `return_to=<authorize URL>` is appended.
    #[arg(long, env = "IDP_LOGIN_URL")]
    pub idp_login_url: Option<String>,
    /// The scopes this server offers, space-separated.
    #[arg(long, env = "PORTCULLIS_SCOPES", default_value = DEFAULT_SCOPES)]
    pub scopes: String,
    /// Other resources (RFC 8707) this server issues tokens for, besides its demo resource
    /// `<issuer>/api/me`: comma-separated absolute URIs (https, or http on loopback), such as an
    /// MCP server that introspects the tokens.
    #[arg(long, env = "PORTCULLIS_RESOURCES")]
    pub resources: Option<String>,
    /// Token endpoint requests per client IP (`<n>/<period>[;burst=<n>]`).
    #[arg(long, env = "TOKEN_RATE_LIMIT", default_value_t = Quota::per_minute(TOKEN_PER_IP_PER_MINUTE))]
    pub token_rate_limit: Quota,
    /// Authorize endpoint requests per client IP.
    #[arg(long, env = "AUTHORIZE_IP_RATE_LIMIT", default_value_t = Quota::per_minute(AUTHORIZE_PER_IP_PER_MINUTE))]
    pub authorize_ip_rate_limit: Quota,
    /// Authorize endpoint requests per signed-in user.
    #[arg(long, env = "AUTHORIZE_USER_RATE_LIMIT", default_value_t = Quota::per_minute(AUTHORIZE_PER_USER_PER_MINUTE))]
    pub authorize_user_rate_limit: Quota,
    /// Registration requests per client IP.
    #[arg(long, env = "REGISTER_RATE_LIMIT", default_value_t = register_default())]
    pub register_rate_limit: Quota,
    /// What the rate limiter does when its store fails.
    #[arg(long, env = "RATE_LIMIT_ON_STORE_ERROR", value_enum, default_value_t = FailureFlag::Closed)]
    pub rate_limit_on_store_error: FailureFlag,
    /// Authorization code lifetime (at most 10m).
    #[arg(long, env = "CODE_LIFETIME", default_value_t = HumanDuration(DEFAULT_CODE_LIFETIME))]
    pub code_lifetime: HumanDuration,
    /// Access token lifetime (also capped by the upstream session's expiry).
    #[arg(long, env = "ACCESS_TOKEN_LIFETIME", default_value_t = HumanDuration(DEFAULT_ACCESS_TOKEN_LIFETIME))]
    pub access_token_lifetime: HumanDuration,
    /// Refresh token idle lifetime.
    #[arg(long, env = "REFRESH_IDLE_LIFETIME", default_value_t = HumanDuration(DEFAULT_REFRESH_IDLE_LIFETIME))]
    pub refresh_idle_lifetime: HumanDuration,
    /// Grant family absolute lifetime (never extended by rotation).
    #[arg(long, env = "FAMILY_LIFETIME", default_value_t = HumanDuration(DEFAULT_FAMILY_LIFETIME))]
    pub family_lifetime: HumanDuration,
    /// Grace window in which the previous refresh token may be presented again (at most 5m).
    #[arg(long, env = "GRACE_WINDOW", default_value_t = HumanDuration(DEFAULT_GRACE_WINDOW))]
    pub grace_window: HumanDuration,
    /// What a refresh request is compared with.
    #[arg(long, env = "BINDING", value_enum, default_value_t = BindingFlag::Off)]
    pub binding: BindingFlag,
    /// What a binding mismatch does.
    #[arg(long, env = "BINDING_ACTION", value_enum, default_value_t = BindingActionFlag::RevokeFamily)]
    pub binding_action: BindingActionFlag,
    /// IPv4 prefix length compared by `--binding user-agent-ip`.
    #[arg(long, env = "BINDING_IPV4_PREFIX", default_value_t = portcullis_hash::DEFAULT_IPV4_PREFIX)]
    pub binding_ipv4_prefix: u8,
    /// IPv6 prefix length compared by `--binding user-agent-ip`.
    #[arg(long, env = "BINDING_IPV6_PREFIX", default_value_t = portcullis_hash::DEFAULT_IPV6_PREFIX)]
    pub binding_ipv6_prefix: u8,
    /// Proxies whose forwarding header is believed: comma-separated addresses or CIDR blocks.
    #[arg(long, env = "TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// The forwarding header the trusted proxies write.
    #[arg(long, env = "FORWARDED_HEADER", value_enum, default_value_t = ForwardedFlag::XForwardedFor)]
    pub forwarded_header: ForwardedFlag,
    /// Development mode: an ephemeral HMAC key (unless HMAC_SECRET is set) and the built-in
    /// development IdP at /dev/login. Never in production.
    #[arg(long, env = "PORTCULLIS_DEV", conflicts_with_all = ["upstream_issuer", "upstream_jwks_url", "upstream_audience", "idp_login_url"])]
    pub dev: bool,
    /// Log filter: a level (`info`) or `target=level` pairs (`info,portcullis_rotation=debug`).
    #[arg(long, env = "PORTCULLIS_LOG", default_value = "info")]
    pub log: String,
    /// Log line format.
    #[arg(long, env = "PORTCULLIS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `Debug` shows every flag but the secrets: the HMAC keys are redacted, and of the store URL
/// only its kind is shown (it may carry a password).
impl fmt::Debug for Cli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const REDACTED: &str = "<redacted>";
        let secret = |v: &Option<String>| v.as_ref().map(|_| REDACTED);
        let store = StoreSpec::parse(&self.store).map_or("<invalid>", |s| s.kind());
        f.debug_struct("Cli")
            .field("listen", &self.listen)
            .field("issuer", &self.issuer)
            .field("hmac_secret", &secret(&self.hmac_secret))
            .field(
                "hmac_previous_secrets",
                &secret(&self.hmac_previous_secrets),
            )
            .field("store", &store)
            .field(
                "ratelimit_store",
                &self
                    .ratelimit_store
                    .as_deref()
                    .map(|s| StoreSpec::parse(s).map_or("<invalid>", |s| s.kind())),
            )
            .field("migrate", &self.migrate)
            .field("upstream_issuer", &self.upstream_issuer)
            .field("upstream_jwks_url", &self.upstream_jwks_url)
            .field("upstream_audience", &self.upstream_audience)
            .field("session_cookie", &self.session_cookie)
            .field("idp_login_url", &self.idp_login_url)
            .field("scopes", &self.scopes)
            .field("resources", &self.resources)
            .field("token_rate_limit", &self.token_rate_limit)
            .field("authorize_ip_rate_limit", &self.authorize_ip_rate_limit)
            .field("authorize_user_rate_limit", &self.authorize_user_rate_limit)
            .field("register_rate_limit", &self.register_rate_limit)
            .field("rate_limit_on_store_error", &self.rate_limit_on_store_error)
            .field("code_lifetime", &self.code_lifetime)
            .field("access_token_lifetime", &self.access_token_lifetime)
            .field("refresh_idle_lifetime", &self.refresh_idle_lifetime)
            .field("family_lifetime", &self.family_lifetime)
            .field("grace_window", &self.grace_window)
            .field("binding", &self.binding)
            .field("binding_action", &self.binding_action)
            .field("binding_ipv4_prefix", &self.binding_ipv4_prefix)
            .field("binding_ipv6_prefix", &self.binding_ipv6_prefix)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("forwarded_header", &self.forwarded_header)
            .field("dev", &self.dev)
            .field("log", &self.log)
            .field("log_format", &self.log_format)
            .finish()
    }
}

fn register_default() -> Quota {
    Quota::per_minute(
        std::num::NonZeroU32::new(REGISTER_PER_IP_PER_MINUTE).unwrap_or(std::num::NonZeroU32::MIN),
    )
}

/// Where grants and rate-limit state are kept. `Debug` shows the kind only: the URL may carry
/// a password.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// In this process (lost on restart; one instance only).
    Memory,
    /// A Redis URL (not built in yet).
    Redis(String),
    /// A PostgreSQL URL (not built in yet).
    Postgres(String),
}

impl StoreSpec {
    /// Parse `--store`.
    ///
    /// # Errors
    /// A [`ConfigError`] for anything but `memory`, `redis://`, `rediss://`, `postgres://` or
    /// `postgresql://`.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let s = s.trim();
        if s == "memory" {
            return Ok(Self::Memory);
        }
        let scheme = s.split_once("://").map(|(scheme, _)| scheme);
        match scheme {
            Some("redis" | "rediss" | "redis+cluster") => Ok(Self::Redis(s.to_owned())),
            Some("postgres" | "postgresql") => Ok(Self::Postgres(s.to_owned())),
            _ => Err(ConfigError::new(
                "--store must be `memory`, a redis:// URL or a postgres:// URL",
            )),
        }
    }

    /// A short name for logs (never the URL, which may hold a password).
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis(_) => "redis",
            Self::Postgres(_) => "postgres",
        }
    }
}

impl fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("Memory"),
            Self::Redis(_) => f.write_str("Redis(<url redacted>)"),
            Self::Postgres(_) => f.write_str("Postgres(<url redacted>)"),
        }
    }
}

/// Where users sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// The built-in development IdP (`--dev`).
    Dev,
    /// An external IdP.
    External {
        /// `iss` of its session JWTs.
        issuer: String,
        /// Its JWKS URL.
        jwks_url: String,
        /// The audience its session JWTs carry.
        audience: String,
        /// Its login page.
        login_url: String,
    },
}

/// Rate limits per endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Token, revocation and introspection endpoints, per client IP.
    pub token: Quota,
    /// Authorize endpoint, per client IP.
    pub authorize_ip: Quota,
    /// Authorize endpoint, per user.
    pub authorize_user: Quota,
    /// Registration, per client IP.
    pub register: Quota,
    /// What happens when the rate-limit store fails.
    pub on_store_error: FailurePolicy,
}

/// The validated configuration.
#[derive(Debug)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The issuer URL, if given (with `--dev` it may be derived from the bound address).
    pub issuer: Option<String>,
    /// The HMAC key and previous keys, still as text (parsed and checked by
    /// [`Settings::from_cli`]). `None`: generate an ephemeral key (`--dev` only).
    pub(crate) hmac: Option<(
        portcullis_core::SecretString,
        Option<portcullis_core::SecretString>,
    )>,
    /// The store.
    pub store: StoreSpec,
    /// Where rate limits are kept when not as `store` says (`--ratelimit-store`): memory or Redis.
    pub ratelimit_store: Option<StoreSpec>,
    /// Apply PostgreSQL migrations at start.
    pub migrate: bool,
    /// The upstream IdP.
    pub upstream: Upstream,
    /// The session cookie's name.
    pub session_cookie: String,
    /// The scopes offered.
    pub scopes: Scope,
    /// Resources other than the demo resource that tokens may be issued for.
    pub extra_resources: Vec<String>,
    /// Rate limits.
    pub limits: RateLimits,
    /// Lifetimes, grace window, binding.
    pub policy: RotationPolicy,
    /// How the client IP is found.
    pub client_ip: ClientIpResolver,
    /// Development mode.
    pub dev: bool,
}

/// The issuer URL, checked: RFC 8414 §2 (https, no query or fragment), http only on loopback,
/// and (a limitation of this server) no path. Returned without a trailing slash.
///
/// # Errors
/// A [`ConfigError`] naming what is wrong.
pub fn check_issuer(issuer: &str) -> Result<String, ConfigError> {
    let url = url::Url::parse(issuer)
        .map_err(|_| ConfigError::new(format!("--issuer {issuer:?} is not a valid URL")))?;
    match url.scheme() {
        "https" => {}
        "http" if host_is_loopback(&url) => {}
        _ => {
            return Err(ConfigError::new(
                "--issuer must be an https URL (http is allowed only for a loopback address)",
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() || issuer.contains(['?', '#']) {
        return Err(ConfigError::new(
            "--issuer must not have a query or fragment (RFC 8414 section 2)",
        ));
    }
    if url.path() != "/" || !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(
            "--issuer must be an origin such as https://auth.example.com (a path is not supported)",
        ));
    }
    Ok(issuer.trim_end_matches('/').to_owned())
}

/// Whether the URL's host is a loopback address or `localhost`.
pub(crate) fn host_is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn check_url(flag: &str, value: &str) -> Result<String, ConfigError> {
    let url = url::Url::parse(value)
        .map_err(|_| ConfigError::new(format!("{flag} {value:?} is not a valid URL")))?;
    match url.scheme() {
        "https" => Ok(value.to_owned()),
        "http" if host_is_loopback(&url) => Ok(value.to_owned()),
        _ => Err(ConfigError::new(format!(
            "{flag} must be an https URL (http is allowed only for a loopback address)"
        ))),
    }
}

impl Settings {
    /// Validate the command line.
    ///
    /// # Errors
    /// A [`ConfigError`] with one line saying what is wrong and how to fix it.
    pub fn from_cli(cli: &Cli) -> Result<Self, ConfigError> {
        let listen: SocketAddr = cli.listen.trim().parse().map_err(|_| {
            ConfigError::new(format!(
                "--listen {:?} is not an address and port such as 127.0.0.1:8080",
                cli.listen
            ))
        })?;
        let issuer = cli.issuer.as_deref().map(check_issuer).transpose()?;
        if issuer.is_none() && !cli.dev {
            return Err(ConfigError::new(
                "--issuer (PORTCULLIS_ISSUER) is required, for example https://auth.example.com",
            ));
        }
        let hmac = match cli.hmac_secret.as_deref().filter(|s| !s.is_empty()) {
            Some(current) => {
                // Parse now so that a short or malformed key stops the start here.
                portcullis_hash::Keyring::from_values(
                    current,
                    cli.hmac_previous_secrets.as_deref(),
                )
                .map_err(|e| ConfigError::new(e.to_string()))?;
                Some((
                    portcullis_core::SecretString::from(current),
                    cli.hmac_previous_secrets
                        .as_deref()
                        .map(portcullis_core::SecretString::from),
                ))
            }
            None if cli.dev => None,
            None => {
                return Err(ConfigError::new(
                    "HMAC_SECRET is not set: provide an HMAC key of at least 32 bytes \
                     (for example `base64:` followed by the output of `openssl rand -base64 32`), \
                     or run with --dev for an ephemeral one",
                ));
            }
        };
        let store = StoreSpec::parse(&cli.store)?;
        let ratelimit_store = match cli.ratelimit_store.as_deref().map(StoreSpec::parse) {
            None => None,
            Some(Ok(StoreSpec::Postgres(_))) => {
                return Err(ConfigError::new(
                    "--ratelimit-store must be `memory` or a redis:// URL",
                ));
            }
            Some(spec) => Some(spec.map_err(|_| {
                ConfigError::new("--ratelimit-store must be `memory` or a redis:// URL")
            })?),
        };
        let upstream = if cli.dev {
            Upstream::Dev
        } else {
            let need = |v: &Option<String>, flag: &str, env: &str| {
                v.clone().filter(|s| !s.is_empty()).ok_or_else(|| {
                    ConfigError::new(format!(
                        "{flag} ({env}) is required without --dev: the upstream identity provider"
                    ))
                })
            };
            let issuer = need(&cli.upstream_issuer, "--upstream-issuer", "UPSTREAM_ISSUER")?;
            let audience = need(
                &cli.upstream_audience,
                "--upstream-audience",
                "UPSTREAM_AUDIENCE",
            )?;
            let login_url = check_url(
                "--idp-login-url",
                &need(&cli.idp_login_url, "--idp-login-url", "IDP_LOGIN_URL")?,
            )?;
            let jwks_url = match &cli.upstream_jwks_url {
                Some(u) => u.clone(),
                None => format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')),
            };
            let jwks_url = check_url("--upstream-jwks-url", &jwks_url)?;
            Upstream::External {
                issuer,
                jwks_url,
                audience,
                login_url,
            }
        };
        let cookie = cli.session_cookie.trim();
        if cookie.is_empty()
            || !cookie
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(ConfigError::new(
                "--session-cookie must be a cookie name of letters, digits, '-', '_' or '.'",
            ));
        }
        let scopes = Scope::parse(cli.scopes.trim()).map_err(|e| {
            ConfigError::new(format!("--scopes is not a space-separated scope list: {e}"))
        })?;
        let policy = policy(cli)?;
        let mut extra_resources = Vec::new();
        for r in cli
            .resources
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if r.contains('#') {
                return Err(ConfigError::new(format!(
                    "--resources: {r:?} must not have a fragment (RFC 8707 section 2)"
                )));
            }
            extra_resources.push(check_url("--resources", r)?);
        }
        let trusted = TrustedProxies::parse(
            cli.trusted_proxies
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty()),
        )
        .map_err(|e| ConfigError::new(format!("--trusted-proxies: {e}")))?;
        let header = match cli.forwarded_header {
            ForwardedFlag::XForwardedFor => ForwardedHeader::XForwardedFor,
            ForwardedFlag::Forwarded => ForwardedHeader::Forwarded,
        };
        let client_ip = if trusted.is_empty() {
            ClientIpResolver::peer_only()
        } else {
            ClientIpResolver::behind_proxies(trusted, header)
        };
        Ok(Self {
            listen,
            issuer,
            hmac,
            store,
            ratelimit_store,
            migrate: cli.migrate,
            upstream,
            session_cookie: cookie.to_owned(),
            scopes,
            extra_resources,
            limits: RateLimits {
                token: cli.token_rate_limit,
                authorize_ip: cli.authorize_ip_rate_limit,
                authorize_user: cli.authorize_user_rate_limit,
                register: cli.register_rate_limit,
                on_store_error: match cli.rate_limit_on_store_error {
                    FailureFlag::Open => FailurePolicy::FailOpen,
                    FailureFlag::Closed => FailurePolicy::FailClosed,
                },
            },
            policy,
            client_ip,
            dev: cli.dev,
        })
    }
}

fn policy(cli: &Cli) -> Result<RotationPolicy, ConfigError> {
    fn e(flag: &'static str) -> impl Fn(portcullis_rotation::PolicyError) -> ConfigError {
        move |err| ConfigError::new(format!("{flag}: {err}"))
    }
    let mode = match cli.binding {
        BindingFlag::Off => BindingMode::Off,
        BindingFlag::UserAgent => BindingMode::UserAgent,
        BindingFlag::UserAgentIp => BindingMode::UserAgentAndIpPrefix,
    };
    let action = match cli.binding_action {
        BindingActionFlag::RevokeFamily => BindingAction::RevokeFamily,
        BindingActionFlag::Reject => BindingAction::Reject,
        BindingActionFlag::Report => BindingAction::Report,
    };
    let prefix =
        IpPrefixLen::new(cli.binding_ipv4_prefix, cli.binding_ipv6_prefix).ok_or_else(|| {
            ConfigError::new(
                "--binding-ipv4-prefix must be at most 32 and --binding-ipv6-prefix at most 128",
            )
        })?;
    RotationPolicy::default()
        .with_code_lifetime(cli.code_lifetime.0)
        .map_err(e("--code-lifetime"))?
        .with_access_lifetime(cli.access_token_lifetime.0)
        .map_err(e("--access-token-lifetime"))?
        .with_refresh_idle_lifetime(cli.refresh_idle_lifetime.0)
        .map_err(e("--refresh-idle-lifetime"))?
        .with_family_lifetime(cli.family_lifetime.0)
        .map_err(e("--family-lifetime"))?
        .with_grace_window(cli.grace_window.0)
        .map_err(e("--grace-window"))
        .map(|p| p.with_binding(BindingPolicy::new(mode, action).with_ip_prefix(prefix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["reference-server"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap()
    }

    #[test]
    fn ratelimit_store_is_memory_or_redis() {
        let read = |v: &str| Settings::from_cli(&cli(&["--dev", "--ratelimit-store", v]));
        assert_eq!(
            read("redis://127.0.0.1:6379").unwrap().ratelimit_store,
            Some(StoreSpec::Redis("redis://127.0.0.1:6379".into()))
        );
        assert_eq!(
            read("memory").unwrap().ratelimit_store,
            Some(StoreSpec::Memory)
        );
        for bad in ["postgres://u@h/db", "mysql://x"] {
            let err = read(bad).unwrap_err().to_string();
            assert!(err.contains("--ratelimit-store"), "{err}");
            assert!(!err.contains("u@h"), "{err}");
        }
        assert_eq!(
            Settings::from_cli(&cli(&["--dev"]))
                .unwrap()
                .ratelimit_store,
            None
        );
    }

    #[test]
    fn durations() {
        assert_eq!(
            "90s".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(90)
        );
        assert_eq!("14d".parse::<HumanDuration>().unwrap().to_string(), "14d");
        assert_eq!(HumanDuration(Duration::from_secs(60)).to_string(), "1m");
        assert_eq!(HumanDuration(Duration::ZERO).to_string(), "0s");
        assert!("10".parse::<HumanDuration>().is_err());
        assert!("-1s".parse::<HumanDuration>().is_err());
        assert!("1w".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn store_specs() {
        assert_eq!(StoreSpec::parse("memory").unwrap(), StoreSpec::Memory);
        assert_eq!(StoreSpec::parse("redis://h:6379").unwrap().kind(), "redis");
        assert_eq!(
            StoreSpec::parse("postgres://u@h/db").unwrap().kind(),
            "postgres"
        );
        assert!(StoreSpec::parse("mysql://x").is_err());
    }

    #[test]
    fn issuer_rules() {
        assert_eq!(
            check_issuer("https://a.example/").unwrap(),
            "https://a.example"
        );
        assert!(check_issuer("http://a.example").is_err());
        assert!(check_issuer("http://127.0.0.1:8080").is_ok());
        assert!(check_issuer("https://a.example/?x=1").is_err());
        assert!(check_issuer("https://a.example/#f").is_err());
        assert!(check_issuer("https://a.example/tenant").is_err());
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let secret = "base64:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0xMjM0";
        let previous = "hex:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        for store in [
            "redis://:redis-pass-123@h:6379",
            "redis+cluster://u:redis-pass-123@h1:1,h2:2",
            "postgres://u:redis-pass-123@h/db",
        ] {
            let c = cli(&[
                "--dev",
                "--hmac-secret",
                secret,
                "--hmac-previous-secrets",
                previous,
                "--store",
                store,
            ]);
            let settings = Settings::from_cli(&c).unwrap();
            for text in [
                format!("{c:?}"),
                format!("{settings:?}"),
                format!("{:?}", settings.store),
            ] {
                for s in ["c2VjcmV0", "00112233", "redis-pass-123"] {
                    assert!(!text.contains(s), "{s} in {text}");
                }
            }
            assert!(format!("{c:?}").contains("listen"));
            let kind = settings.store.kind();
            assert!(
                format!("{:?}", settings.store)
                    .to_lowercase()
                    .contains(kind)
            );
        }
    }

    #[test]
    fn settings_refuse_bad_values_with_one_line() {
        let bad = [
            vec!["--issuer", "https://a.example"],
            vec!["--dev", "--hmac-secret", "tiny-secret-x"],
            vec!["--dev", "--grace-window", "10m"],
            vec!["--dev", "--code-lifetime", "11m"],
            vec!["--dev", "--store", "mysql://x"],
            vec!["--dev", "--trusted-proxies", "not-an-ip"],
            vec!["--dev", "--listen", "nowhere"],
        ];
        for args in bad {
            let err = Settings::from_cli(&cli(&args)).unwrap_err();
            assert!(!err.0.contains('\n'), "{args:?}: {err}");
            assert!(!err.0.contains("tiny-secret"), "never echo a secret: {err}");
        }
        let ok = Settings::from_cli(&cli(&["--dev"])).unwrap();
        assert_eq!(ok.upstream, Upstream::Dev);
        assert_eq!(ok.limits.token.to_string(), "10/min");
        assert_eq!(ok.limits.authorize_user.to_string(), "20/min");
    }
}
