//! The store conformance suite: every invariant of DESIGN.md, checked against any
//! [`GrantStore`]. Behind the `conformance` feature.
//!
//! Every store runs the very same checks: the memory store in this crate's tests, the Redis and
//! PostgreSQL stores in theirs. Give [`run_all`] a factory that makes a fresh, empty store; each
//! check gets its own store, its own [`ManualClock`] (nothing sleeps), and drives it through a
//! real [`GrantService`]:
//!
//! ```
//! use portcullis_rotation::{MemoryGrantStore, conformance};
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() {
//! let report = conformance::run_all(|| async { MemoryGrantStore::new() }).await;
//! assert!(report.is_success(), "{report}");
//! # }
//! ```
//!
//! Run it on a multi-threaded tokio runtime (`#[tokio::test(flavor = "multi_thread")]`): the
//! concurrency checks spawn 64 tasks that redeem one credential at once, and only worker threads
//! make that a real race. Each check is also a public function (named after the invariant or
//! STANDARDS id it covers) taking an `Arc<dyn GrantStore>`, so a store's test suite can run one
//! check at a time; [`checks`] lists them with the STANDARDS ids they cover.
//!
//! Checks report failures as values ([`Failure`]); nothing here panics. The [`model`] module
//! adds random operation sequences checked against a reference model, shared with this
//! crate's property tests and fuzz target.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use portcullis_core::{ManualClock, SecretString, UnixTime};
use portcullis_hash::{Keyring, Purpose, TokenHash, TokenHasher};
use portcullis_pkce::CodeVerifier;

use crate::{
    BindingContext, CodeExchange, CodeRequest, FamilyId, FamilySnapshot, GrantService, GrantStore,
    RecordingSink, RefreshRequest, RotationError, RotationPolicy, Scope, SecurityEvent, StoreError,
    TokenPair,
};

mod checks;
mod clients;
pub mod model;

pub use checks::*;
pub use clients::client_store;

/// Why a check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(String);

impl Failure {
    /// A failure with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

impl From<RotationError> for Failure {
    fn from(e: RotationError) -> Self {
        Self(format!("unexpected service error: {e:?}"))
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self(format!("unexpected store error: {e:?}"))
    }
}

/// Return a [`Failure`] from the enclosing function unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !($cond) {
            return Err($crate::conformance::Failure::new(format!($($fmt)+)));
        }
    };
}
pub(crate) use ensure;

/// The HMAC key the suite hashes with.
pub const TEST_KEY: &str = "portcullis-conformance-suite-key-0001";
/// A second key, for the key rotation check.
pub const TEST_KEY_2: &str = "portcullis-conformance-suite-key-0002";
/// The client most checks use.
pub const CLIENT: &str = "client-a";
/// Another registered client.
pub const OTHER_CLIENT: &str = "client-b";
/// The redirect URI codes are issued with.
pub const REDIRECT_URI: &str = "https://client.example/callback";
/// The user most checks use.
pub const USER: &str = "user-1";
/// The scope grants are issued with.
pub const SCOPE: &str = "read write";
/// Where the manual clock starts (2023-11-14T22:13:20Z).
pub const START_SECS: u64 = 1_700_000_000;

/// A code issued by the harness, with what is needed to redeem it.
#[derive(Debug)]
pub struct Authorization {
    /// The plaintext code.
    pub code: SecretString,
    /// The PKCE verifier it was issued for.
    pub verifier: CodeVerifier,
    /// Its family.
    pub family: FamilyId,
    /// The client it was issued to.
    pub client_id: String,
}

/// A service on a store under test, with a manual clock and an event recorder.
#[derive(Debug, Clone)]
pub struct Harness {
    service: Arc<GrantService>,
    store: Arc<dyn GrantStore>,
    clock: ManualClock,
    events: Arc<RecordingSink>,
    hasher: Arc<TokenHasher>,
}

fn keyring(current: &str, previous: Option<&str>) -> Result<Keyring, Failure> {
    Keyring::from_values(current, previous).map_err(|e| Failure::new(format!("keyring: {e}")))
}

impl Harness {
    /// A harness with the default policy.
    ///
    /// # Errors
    /// Never in practice (the test key is valid).
    pub fn new(store: Arc<dyn GrantStore>) -> Result<Self, Failure> {
        Self::with_policy(store, RotationPolicy::default())
    }

    /// A harness with `policy`.
    ///
    /// # Errors
    /// Never in practice (the test key is valid).
    pub fn with_policy(
        store: Arc<dyn GrantStore>,
        policy: RotationPolicy,
    ) -> Result<Self, Failure> {
        let hasher = Arc::new(TokenHasher::new(keyring(TEST_KEY, None)?));
        Ok(Self::build(
            store,
            policy,
            hasher,
            ManualClock::at_secs(START_SECS),
        ))
    }

    /// A harness from its parts.
    #[must_use]
    pub fn build(
        store: Arc<dyn GrantStore>,
        policy: RotationPolicy,
        hasher: Arc<TokenHasher>,
        clock: ManualClock,
    ) -> Self {
        let events = Arc::new(RecordingSink::new());
        let service = GrantService::new(
            Arc::clone(&store),
            Arc::clone(&hasher),
            Arc::new(clock.clone()),
            policy,
        )
        .with_events(events.clone());
        Self {
            service: Arc::new(service),
            store,
            clock,
            events,
            hasher,
        }
    }

    /// Another harness on the same store and clock with another policy (and its own events).
    #[must_use]
    pub fn with_other_policy(&self, policy: RotationPolicy) -> Self {
        Self::build(
            Arc::clone(&self.store),
            policy,
            Arc::clone(&self.hasher),
            self.clock.clone(),
        )
    }

    /// The service.
    #[must_use]
    pub fn service(&self) -> &Arc<GrantService> {
        &self.service
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn GrantStore> {
        &self.store
    }

    /// The clock.
    #[must_use]
    pub const fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// The hasher.
    #[must_use]
    pub fn hasher(&self) -> &Arc<TokenHasher> {
        &self.hasher
    }

    /// The security events so far.
    #[must_use]
    pub fn events(&self) -> Vec<SecurityEvent> {
        self.events.events()
    }

    /// Issue a code for `user` and `client` with a fresh S256 challenge and the suite's scope.
    ///
    /// # Errors
    /// If issuing fails.
    pub async fn issue(&self, user: &str, client: &str) -> Result<Authorization, Failure> {
        self.issue_with(user, client, None).await
    }

    /// Issue a code whose grant ends with the upstream session at `session_expires_at`.
    ///
    /// # Errors
    /// If issuing fails.
    pub async fn issue_with(
        &self,
        user: &str,
        client: &str,
        session_expires_at: Option<UnixTime>,
    ) -> Result<Authorization, Failure> {
        let verifier = CodeVerifier::generate().map_err(|e| Failure::new(e.to_string()))?;
        let issued = self
            .service
            .issue_code(CodeRequest {
                client_id: client.to_owned(),
                redirect_uri: REDIRECT_URI.to_owned(),
                challenge: Some(verifier.challenge()),
                scope: Scope::parse(SCOPE).map_err(|e| Failure::new(e.to_string()))?,
                resources: vec!["https://api.example/".to_owned()],
                user_id: user.to_owned(),
                session_expires_at,
            })
            .await?;
        Ok(Authorization {
            code: issued.code,
            verifier,
            family: issued.family,
            client_id: client.to_owned(),
        })
    }

    /// Exchange a code as its client, with its verifier and the right redirect URI.
    ///
    /// # Errors
    /// The service's error.
    pub async fn exchange(&self, auth: &Authorization) -> Result<TokenPair, RotationError> {
        self.exchange_as(auth, &auth.client_id, BindingContext::default())
            .await
    }

    /// Exchange a code as `client` with `binding`.
    ///
    /// # Errors
    /// The service's error.
    pub async fn exchange_as(
        &self,
        auth: &Authorization,
        client: &str,
        binding: BindingContext<'_>,
    ) -> Result<TokenPair, RotationError> {
        self.service
            .exchange_code(CodeExchange {
                code: auth.code.expose_secret(),
                client_id: client,
                redirect_uri: Some(REDIRECT_URI),
                code_verifier: Some(auth.verifier.expose_secret()),
                binding,
            })
            .await
    }

    /// Issue and exchange: a fresh family with its first token pair.
    ///
    /// # Errors
    /// If either step fails.
    pub async fn grant(
        &self,
        user: &str,
        client: &str,
    ) -> Result<(Authorization, TokenPair), Failure> {
        let auth = self.issue(user, client).await?;
        let pair = self.exchange(&auth).await?;
        Ok((auth, pair))
    }

    /// Refresh as [`CLIENT`] with no scope and no binding values.
    ///
    /// # Errors
    /// The service's error.
    pub async fn refresh(&self, token: &SecretString) -> Result<TokenPair, RotationError> {
        self.refresh_as(token, CLIENT, None, BindingContext::default())
            .await
    }

    /// Refresh as `client`, asking for `scope`, presenting `binding`.
    ///
    /// # Errors
    /// The service's error.
    pub async fn refresh_as(
        &self,
        token: &SecretString,
        client: &str,
        scope: Option<&str>,
        binding: BindingContext<'_>,
    ) -> Result<TokenPair, RotationError> {
        self.service
            .refresh(RefreshRequest {
                refresh_token: token.expose_secret(),
                client_id: client,
                scope,
                binding,
            })
            .await
    }

    /// Whether a token introspects as active.
    ///
    /// # Errors
    /// If introspection fails.
    pub async fn active(&self, token: &SecretString) -> Result<bool, Failure> {
        Ok(self
            .service
            .introspect(token.expose_secret())
            .await?
            .is_active())
    }

    /// The store's snapshot of a family, which must exist.
    ///
    /// # Errors
    /// If the family is not stored.
    pub async fn snapshot(&self, family: FamilyId) -> Result<FamilySnapshot, Failure> {
        self.store
            .family(family)
            .await?
            .ok_or_else(|| Failure::new(format!("family {family} is not stored")))
    }

    /// How many refresh tokens of a family the store holds as live now.
    ///
    /// # Errors
    /// If the family is not stored.
    pub async fn live_refresh_tokens(&self, family: FamilyId) -> Result<Vec<TokenHash>, Failure> {
        let now = portcullis_core::Clock::now(&self.clock);
        let snap = self.snapshot(family).await?;
        if !snap.family.is_live(now) {
            return Ok(Vec::new());
        }
        Ok(snap
            .credentials
            .iter()
            .filter(|c| c.is_live_refresh(now))
            .map(|c| c.hash)
            .collect())
    }

    /// The hash a refresh token is stored under (current key).
    #[must_use]
    pub fn refresh_hash(&self, token: &SecretString) -> TokenHash {
        self.hasher
            .hash(Purpose::RefreshToken, token.expose_secret().as_bytes())
    }
}

/// The future a check returns.
pub type CheckFuture = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send>>;

/// One named check.
#[derive(Clone, Copy)]
pub struct Check {
    /// The check's name: the invariant (1–9) or STANDARDS id it tests.
    pub name: &'static str,
    /// The STANDARDS ids it covers.
    pub covers: &'static [&'static str],
    /// Run it on a fresh store.
    pub run: fn(Arc<dyn GrantStore>) -> CheckFuture,
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check")
            .field("name", &self.name)
            .field("covers", &self.covers)
            .finish_non_exhaustive()
    }
}

/// The outcome of one check.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// The check's name.
    pub name: &'static str,
    /// The STANDARDS ids it covers.
    pub covers: &'static [&'static str],
    /// `Ok` or why it failed.
    pub outcome: Result<(), Failure>,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// One entry per check, in order.
    pub results: Vec<CheckResult>,
}

impl Report {
    /// How many checks passed.
    #[must_use]
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.outcome.is_ok()).count()
    }

    /// The checks that failed.
    #[must_use]
    pub fn failures(&self) -> Vec<&CheckResult> {
        self.results.iter().filter(|r| r.outcome.is_err()).collect()
    }

    /// Whether every check passed (and there was at least one).
    #[must_use]
    pub fn is_success(&self) -> bool {
        !self.results.is_empty() && self.results.iter().all(|r| r.outcome.is_ok())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.results {
            match &r.outcome {
                Ok(()) => writeln!(f, "ok    {}", r.name)?,
                Err(e) => writeln!(f, "FAIL  {}: {e}", r.name)?,
            }
        }
        write!(
            f,
            "{} of {} conformance checks passed",
            self.passed(),
            self.results.len()
        )
    }
}

/// Run every check of [`checks`], each on a fresh store from `factory`.
pub async fn run_all<F, Fut, S>(factory: F) -> Report
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: GrantStore + 'static,
{
    run_matching(factory, |_| true).await
}

/// Run the checks whose name `select` accepts, each on a fresh store from `factory`.
pub async fn run_matching<F, Fut, S>(factory: F, select: impl Fn(&str) -> bool) -> Report
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: GrantStore + 'static,
{
    let mut report = Report::default();
    for check in checks().into_iter().filter(|c| select(c.name)) {
        let store: Arc<dyn GrantStore> = Arc::new(factory().await);
        let outcome = (check.run)(store).await;
        report.results.push(CheckResult {
            name: check.name,
            covers: check.covers,
            outcome,
        });
    }
    report
}
