//! [`PostgresGrantStore`]: the [`GrantStore`] on PostgreSQL.

use std::fmt;
use std::future::Future;
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use portcullis_core::UnixTime;
use portcullis_hash::TokenHash;
use portcullis_rotation::decide::{self, CodeDecision, RefreshDecision};
use portcullis_rotation::{
    BindingMode, BindingPolicy, BindingReport, CodeOutcome, CodeRedemption, Credential, Family,
    FamilyId, FamilyRef, FamilySnapshot, Found, GrantStore, HashPrefix, Issued, Lifetimes,
    PurgeReport, RefreshOutcome, RefreshRotation, Rejection, RevocationReason, RevokeOutcome,
    Scope, StoreError, TokenKind, TokenRevocation, VerifierProof,
};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Executor as _, Postgres, Transaction};

use crate::codec::{self, col, family_id, hashes, micros};
use crate::options::{DEFAULT_PING_AFTER_IDLE, PostgresOptions, valid_schema_name};
use crate::retry::{Fault, TryError, backoff, classify};
use crate::{PostgresClientStore, PostgresError, schema, sql};

/// Counts of what the store sent, since it was built (all clones share them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PostgresStats {
    /// SQL statements sent, each one round trip on a connection that has prepared it (`BEGIN`
    /// and `COMMIT` count as statements).
    pub statements: u64,
    /// Explicit transactions (redemptions that needed the locked path, snapshots).
    pub transactions: u64,
    /// Tries repeated after a retryable failure.
    pub retries: u64,
}

#[derive(Debug, Default)]
struct Counters {
    statements: AtomicU64,
    transactions: AtomicU64,
    retries: AtomicU64,
}

/// A [`GrantStore`] on PostgreSQL, over an sqlx connection pool. Cheap to clone (the pool and
/// counters are shared).
///
/// - **Redemption in one round trip.** A code exchange or refresh rotation is one SQL statement
///   (a CTE): it reads the credential with its family, checks everything a plain redemption
///   needs, marks the credential used `WHERE used_at IS NULL` and inserts the successor and the
///   access token from the update's `RETURNING`. Of two concurrent redemptions, the second's
///   update waits for the first to commit, re-checks `used_at`, and updates nothing.
/// - **Everything else in one short transaction.** A replay, a grace reissue, a binding
///   mismatch, a `plain` PKCE challenge, or a lost race: the statement returns the state it
///   read, the rules of [`decide`] run on it, and when they call for a write the store locks the
///   rows (`FOR UPDATE`), decides again on what it locked, and writes — then commits.
/// - **Invariants the database enforces**: one live refresh token per family (a partial unique
///   index), a used credential always names its successor, one code per family, hash and id
///   lengths, consistent revocation columns (see `migrations/`).
/// - **Retries**: serialization failures, deadlocks and lost connections are retried up to
///   [`PostgresOptions::with_max_attempts`] times, then surface as
///   [`StoreError::Unavailable`] (retryable, a 503): never a revocation. A redemption whose
///   connection died after its commit is recognised on the retry (its successor is already
///   stored under the hash it carries) and reported as done.
///
/// Build it with [`connect`](Self::connect), then [`migrate`](Self::migrate) or
/// [`check_schema`](Self::check_schema) before serving; [`open`](Self::open) does connect and
/// check in one call.
#[derive(Clone)]
pub struct PostgresGrantStore {
    pool: PgPool,
    max_attempts: u32,
    counters: Arc<Counters>,
}

impl fmt::Debug for PostgresGrantStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresGrantStore")
            .field("pool_size", &self.pool.size())
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

/// The pool options `options` describe.
fn pool_options(options: &PostgresOptions) -> PgPoolOptions {
    let schema = options.schema.clone();
    PgPoolOptions::new()
        .max_connections(options.max_connections)
        .min_connections(options.min_connections)
        .acquire_timeout(options.acquire_timeout)
        .idle_timeout(options.idle_timeout)
        .max_lifetime(options.max_lifetime)
        // A ping on every acquisition would double the round trips of a redemption; ping only
        // connections idle for a while, and let the retries handle one that died in use.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= DEFAULT_PING_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .after_connect(move |conn, _| {
            let schema = schema.clone();
            Box::pin(async move {
                if let Some(schema) = schema {
                    // `schema` was checked to be letters, digits and `_`: quoting is safe.
                    conn.execute(sqlx::AssertSqlSafe(format!(
                        "SET search_path TO \"{schema}\""
                    )))
                    .await?;
                }
                Ok(())
            })
        })
}

/// The connection options of `url` with `options` applied.
fn connect_options(
    url: &str,
    options: &PostgresOptions,
) -> Result<PgConnectOptions, PostgresError> {
    check_schema_option(options)?;
    // The URL's own error message may echo the URL (and its password): keep it out.
    let connect = PgConnectOptions::from_str(url).map_err(|_| {
        PostgresError::Config("the PostgreSQL URL does not parse (postgres://user@host/db)".into())
    })?;
    Ok(apply(connect, options))
}

/// `options`' connection settings on `connect`.
fn apply(connect: PgConnectOptions, options: &PostgresOptions) -> PgConnectOptions {
    // Every statement of this store is a prepared statement whose best plan does not depend on
    // its parameters (lookups by unique key, bounded deletes by index). PostgreSQL's default
    // plans each of the first executions anew, and may keep doing so; for the redemption CTE
    // that planning costs more than executing it. One generic plan per connection instead.
    let mut connect = connect
        .application_name(&options.application_name)
        .options([("plan_cache_mode", "force_generic_plan")]);
    if let Some(timeout) = options.statement_timeout {
        connect = connect.options([("statement_timeout", format!("{}ms", timeout.as_millis()))]);
    }
    connect
}

fn check_schema_option(options: &PostgresOptions) -> Result<(), PostgresError> {
    match &options.schema {
        Some(schema) if !valid_schema_name(schema) => Err(PostgresError::Config(
            "the schema name must be 1 to 63 letters, digits or _, not starting with a digit"
                .to_owned(),
        )),
        _ => Ok(()),
    }
}

/// The binding values the policy compares (user agent, IP prefix, device id), as
/// [`decide::binding`] does: nothing when binding is off (or a mode this version does not know).
fn binding_checks(policy: &BindingPolicy) -> (bool, bool, bool) {
    match policy.mode() {
        BindingMode::UserAgent => (true, false, true),
        BindingMode::UserAgentAndIpPrefix => (true, true, true),
        _ => (false, false, false),
    }
}

/// What a redemption issued, from the family and the request (the same values the statement
/// wrote: expiries capped by the family).
fn issued(
    family: &Family,
    generation: u32,
    scope: Option<&Scope>,
    lifetimes: &Lifetimes,
    now: UnixTime,
) -> Issued {
    let narrowed = scope.filter(|s| **s != family.scope).cloned();
    Issued {
        family: family.id,
        generation,
        scope: narrowed.unwrap_or_else(|| family.scope.clone()),
        resources: family.resources.clone(),
        refresh_expires_at: decide::refresh_expiry(family, lifetimes, now),
        access_expires_at: decide::access_expiry(family, lifetimes, now),
    }
}

/// The narrowed access-token scope a rotation stores (`NULL`: the family's).
fn narrowed<'a>(family: &Family, scope: Option<&'a Scope>) -> Option<&'a str> {
    scope.filter(|s| **s != family.scope).map(Scope::as_str)
}

fn opt_bytes(h: Option<TokenHash>) -> Option<[u8; 32]> {
    h.map(|h| *h.as_bytes())
}

fn unexpected(what: &str) -> StoreError {
    StoreError::backend(codec::Corrupt(format!("unexpected result: {what}")))
}

impl PostgresGrantStore {
    /// Connect to the database at `url` (`postgres://user:password@host:port/db?sslmode=...`)
    /// with `options`. Opens one connection to fail early when the database is unreachable;
    /// does not look at the schema (call [`migrate`](Self::migrate) or
    /// [`check_schema`](Self::check_schema) next).
    ///
    /// # Errors
    /// [`PostgresError::Config`] for a bad URL or option, [`PostgresError::Connect`] when the
    /// database cannot be reached.
    pub async fn connect(url: &str, options: &PostgresOptions) -> Result<Self, PostgresError> {
        let connect = connect_options(url, options)?;
        let pool = pool_options(options)
            .connect_with(connect)
            .await
            .map_err(PostgresError::Connect)?;
        Ok(Self::build(pool, options.max_attempts))
    }

    /// As [`connect`](Self::connect), from connection options built in code (TLS roots, a
    /// socket path, settings a URL cannot carry); `options` adds the application name, the
    /// statement timeout, the schema and the pool settings.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_with(
        connect: PgConnectOptions,
        options: &PostgresOptions,
    ) -> Result<Self, PostgresError> {
        check_schema_option(options)?;
        let pool = pool_options(options)
            .connect_with(apply(connect, options))
            .await
            .map_err(PostgresError::Connect)?;
        Ok(Self::build(pool, options.max_attempts))
    }

    /// As [`connect`](Self::connect), without opening a connection now: the first call does.
    ///
    /// # Errors
    /// [`PostgresError::Config`] for a bad URL or option.
    pub fn connect_lazy(url: &str, options: &PostgresOptions) -> Result<Self, PostgresError> {
        let connect = connect_options(url, options)?;
        Ok(Self::build(
            pool_options(options).connect_lazy_with(connect),
            options.max_attempts,
        ))
    }

    /// Connect and check the schema: the store is ready to serve.
    ///
    /// # Errors
    /// As [`connect`](Self::connect) and [`check_schema`](Self::check_schema).
    pub async fn open(url: &str, options: &PostgresOptions) -> Result<Self, PostgresError> {
        let store = Self::connect(url, options).await?;
        store.check_schema().await?;
        Ok(store)
    }

    /// A store on a pool the application built (its own options, `search_path`, TLS). Retries
    /// use [`DEFAULT_MAX_ATTEMPTS`](crate::DEFAULT_MAX_ATTEMPTS). The schema is not checked.
    #[must_use]
    pub fn from_pool(pool: PgPool) -> Self {
        Self::build(pool, crate::DEFAULT_MAX_ATTEMPTS)
    }

    fn build(pool: PgPool, max_attempts: u32) -> Self {
        Self {
            pool,
            max_attempts: max_attempts.max(1),
            counters: Arc::new(Counters::default()),
        }
    }

    /// The pool (for health checks, or the application's own queries).
    #[must_use]
    pub const fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The client registry in the same database (schema version 2).
    #[must_use]
    pub fn clients(&self) -> PostgresClientStore {
        PostgresClientStore::new(self.pool.clone())
    }

    /// What the store has sent so far.
    #[must_use]
    pub fn stats(&self) -> PostgresStats {
        PostgresStats {
            statements: self.counters.statements.load(Ordering::Relaxed),
            transactions: self.counters.transactions.load(Ordering::Relaxed),
            retries: self.counters.retries.load(Ordering::Relaxed),
        }
    }

    /// Apply the migrations this build ships that the database lacks (sqlx's migrator, see
    /// [`migrator`](crate::migrator)), then check the schema. Safe to run from several servers
    /// at once (an advisory lock serialises them) and at every start.
    ///
    /// # Errors
    /// [`PostgresError::Migrate`] if a migration fails (it is rolled back), or the schema check's
    /// error — for example a database already migrated by a newer release.
    pub async fn migrate(&self) -> Result<u32, PostgresError> {
        // Refuse to touch a schema newer than this build before the migrator looks at it.
        if let Err(e @ PostgresError::SchemaTooNew { .. }) = schema::check(&self.pool).await {
            return Err(e);
        }
        schema::migrator()
            .run(&self.pool)
            .await
            .map_err(PostgresError::Migrate)?;
        self.check_schema().await
    }

    /// Check that the schema on the search path is the version this build knows
    /// ([`SCHEMA_VERSION`](crate::SCHEMA_VERSION)); returns it.
    ///
    /// # Errors
    /// [`PostgresError::SchemaMissing`], [`PostgresError::SchemaOutdated`] or
    /// [`PostgresError::SchemaTooNew`], each one line that says what to do; or a connection or
    /// query error.
    pub async fn check_schema(&self) -> Result<u32, PostgresError> {
        schema::check(&self.pool).await
    }

    fn sent(&self, n: u64) {
        self.counters.statements.fetch_add(n, Ordering::Relaxed);
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, TryError> {
        self.counters.transactions.fetch_add(1, Ordering::Relaxed);
        self.sent(1);
        Ok(self.pool.begin().await?)
    }

    async fn commit(&self, tx: Transaction<'static, Postgres>) -> Result<(), TryError> {
        self.sent(1);
        Ok(tx.commit().await?)
    }

    /// Run `attempt` until it succeeds, fails for good, or has been tried `max_attempts` times.
    /// `attempt` gets whether an earlier try lost its connection (so a write may have landed).
    async fn retrying<'a, T, F, Fut>(
        &'a self,
        what: &'static str,
        mut attempt: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut(bool) -> Fut,
        Fut: Future<Output = Result<T, TryError>> + 'a,
    {
        let mut after_connection_loss = false;
        let mut tries = 0u32;
        loop {
            tries += 1;
            let fault = match attempt(after_connection_loss).await {
                Ok(v) => return Ok(v),
                Err(e) => classify(e),
            };
            let source = match fault {
                Fault::Fatal(e) => return Err(e),
                Fault::RolledBack(e) => e,
                Fault::Connection(e) => {
                    after_connection_loss = true;
                    e
                }
            };
            if tries >= self.max_attempts {
                tracing::warn!(
                    target: "portcullis_postgres",
                    operation = what,
                    tries,
                    error = %source,
                    "giving up after retryable failures"
                );
                return Err(StoreError::unavailable(source));
            }
            tracing::debug!(
                target: "portcullis_postgres",
                operation = what,
                tries,
                error = %source,
                "retrying"
            );
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(backoff(tries + 1)).await;
        }
    }

    // --- create ---------------------------------------------------------------------------

    async fn create_once(
        &self,
        family: &Family,
        code: &Credential,
        after_connection_loss: bool,
    ) -> Result<(), TryError> {
        let terms = code
            .code_terms
            .as_ref()
            .ok_or_else(|| StoreError::backend(codec::Corrupt("a code without terms".into())))?;
        let challenge = terms.challenge.as_ref();
        self.sent(1);
        let result = sqlx::query(sql::CREATE_FAMILY)
            .bind(family.id.as_bytes().as_slice())
            .bind(&family.user_id)
            .bind(&family.client_id)
            .bind(family.scope.as_str())
            .bind(&family.resources)
            .bind(micros(family.created_at))
            .bind(micros(family.expires_at))
            .bind(opt_bytes(family.binding.user_agent))
            .bind(opt_bytes(family.binding.ip_prefix))
            .bind(opt_bytes(family.binding.device_id))
            .bind(code.hash.as_bytes().as_slice())
            .bind(&terms.redirect_uri)
            .bind(challenge.map(|c| c.as_str()))
            .bind(challenge.map(|c| c.method().as_str()))
            .bind(micros(code.issued_at))
            .bind(micros(code.expires_at))
            .execute(&self.pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() && after_connection_loss => {
                // An earlier try may have committed before its connection died: the family id
                // is 128 random bits, so a stored code with our hash in our family is ours.
                self.sent(1);
                let ours: Option<i32> = sqlx::query_scalar(
                    "SELECT 1 FROM portcullis_authorization_codes \
                     WHERE family_id = $1 AND code_hash = $2",
                )
                .bind(family.id.as_bytes().as_slice())
                .bind(code.hash.as_bytes().as_slice())
                .fetch_optional(&self.pool)
                .await?;
                if ours.is_some() {
                    Ok(())
                } else {
                    Err(StoreError::Duplicate.into())
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    // --- code redemption ------------------------------------------------------------------

    async fn redeem_once(&self, req: &CodeRedemption<'_>) -> Result<CodeOutcome, TryError> {
        let (verifier_kind, s256): (i16, Option<&str>) = match req.verifier {
            VerifierProof::Absent => (0, None),
            VerifierProof::Present { s256, .. } => (2, Some(s256.as_str())),
            // Malformed, and any proof this version does not know: never the one-statement path.
            _ => (1, None),
        };
        self.sent(1);
        let row = sqlx::query(sql::REDEEM_CODE)
            .bind(hashes(req.candidates))
            .bind(req.client_id)
            .bind(req.redirect_uri)
            .bind(micros(req.now))
            .bind(verifier_kind)
            .bind(s256)
            .bind(opt_bytes(req.binding.user_agent))
            .bind(opt_bytes(req.binding.ip_prefix))
            .bind(opt_bytes(req.binding.device_id))
            .bind(req.refresh.as_bytes().as_slice())
            .bind(req.access.as_bytes().as_slice())
            .bind(micros(req.now.saturating_add(req.lifetimes.refresh_idle)))
            .bind(micros(req.now.saturating_add(req.lifetimes.access)))
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(CodeOutcome::Rejected(Rejection::NotFound));
        };
        let family = codec::family(&row)?;
        let code = codec::code(&row)?;
        if col::<Option<i64>>(&row, "new_refresh_expires_at")?.is_some()
            || code.successor == Some(req.refresh)
        {
            // Redeemed by this statement, or by an earlier try of this request whose reply was
            // lost (its successor carries this request's fresh hash).
            return Ok(CodeOutcome::Redeemed(issued(
                &family,
                1,
                None,
                &req.lifetimes,
                req.now,
            )));
        }
        match decide::code(&family, &code, req) {
            CodeDecision::Reject(r) => Ok(CodeOutcome::Rejected(r)),
            _ => {
                let id: i64 = col(&row, "c_id")?;
                self.redeem_locked(req, id).await
            }
        }
    }

    /// The locked path of a code redemption: lock the code, then its family; decide on what is
    /// locked; apply; commit.
    async fn redeem_locked(
        &self,
        req: &CodeRedemption<'_>,
        code_id: i64,
    ) -> Result<CodeOutcome, TryError> {
        let mut tx = self.begin().await?;
        self.sent(1);
        let Some(row) = sqlx::query(sql::LOCK_CODE)
            .bind(code_id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(CodeOutcome::Rejected(Rejection::NotFound));
        };
        let code = codec::code(&row)?;
        self.sent(1);
        let Some(row) = sqlx::query(sql::LOCK_FAMILY)
            .bind(code.family.as_bytes().as_slice())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(CodeOutcome::Rejected(Rejection::NotFound));
        };
        let family = codec::family(&row)?;
        if code.successor == Some(req.refresh) {
            return Ok(CodeOutcome::Redeemed(issued(
                &family,
                1,
                None,
                &req.lifetimes,
                req.now,
            )));
        }
        let outcome = match decide::code(&family, &code, req) {
            CodeDecision::Reject(r) => return Ok(CodeOutcome::Rejected(r)),
            CodeDecision::Replay => {
                self.revoke_in(&mut tx, family.id, RevocationReason::CodeReplay, req.now)
                    .await?;
                CodeOutcome::Replayed {
                    family: FamilyRef::of(&family),
                    code: HashPrefix::of(&code.hash),
                }
            }
            CodeDecision::Redeem => {
                let out = issued(&family, 1, None, &req.lifetimes, req.now);
                self.sent(1);
                let done = sqlx::query(sql::APPLY_REDEEM)
                    .bind(code_id)
                    .bind(micros(req.now))
                    .bind(opt_bytes(req.binding.user_agent))
                    .bind(opt_bytes(req.binding.ip_prefix))
                    .bind(opt_bytes(req.binding.device_id))
                    .bind(req.refresh.as_bytes().as_slice())
                    .bind(micros(out.refresh_expires_at))
                    .bind(req.access.as_bytes().as_slice())
                    .bind(micros(out.access_expires_at))
                    .fetch_optional(&mut *tx)
                    .await?;
                if done.is_none() {
                    // Dropping the transaction rolls it back.
                    return Err(unexpected("a locked code could not be redeemed").into());
                }
                CodeOutcome::Redeemed(out)
            }
            // A decision this version does not know: change nothing.
            _ => return Err(unexpected("an unknown code decision").into()),
        };
        self.commit(tx).await?;
        Ok(outcome)
    }

    // --- refresh rotation -----------------------------------------------------------------

    async fn rotate_once(&self, req: &RefreshRotation<'_>) -> Result<RefreshOutcome, TryError> {
        let (ua, ip, device) = binding_checks(&req.binding_policy);
        self.sent(1);
        let row = sqlx::query(sql::ROTATE_REFRESH)
            .bind(hashes(req.candidates))
            .bind(req.client_id)
            .bind(req.scope.map(Scope::as_str))
            .bind(micros(req.now))
            .bind(req.successor.as_bytes().as_slice())
            .bind(req.access.as_bytes().as_slice())
            .bind(micros(req.now.saturating_add(req.lifetimes.refresh_idle)))
            .bind(micros(req.now.saturating_add(req.lifetimes.access)))
            .bind(ua)
            .bind(hashes(&req.binding.user_agent))
            .bind(ip)
            .bind(hashes(&req.binding.ip_prefix))
            .bind(device)
            .bind(hashes(&req.binding.device_id))
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(RefreshOutcome::Rejected(Rejection::NotFound));
        };
        let family = codec::family(&row)?;
        if let Some(generation) = col::<Option<i64>>(&row, "new_generation")? {
            return Ok(RefreshOutcome::Rotated {
                issued: issued(
                    &family,
                    codec::generation(generation)?,
                    req.scope,
                    &req.lifetimes,
                    req.now,
                ),
                reported: None,
            });
        }
        let successor = codec::successor(&row)?;
        let mut token = codec::refresh(&row, false)?;
        token.successor = successor.as_ref().map(|s| s.hash);
        if let Some(s) = successor.as_ref().filter(|s| s.hash == req.successor) {
            // An earlier try of this request committed before its reply was lost.
            return Ok(RefreshOutcome::Rotated {
                issued: issued(&family, s.generation, req.scope, &req.lifetimes, req.now),
                reported: None,
            });
        }
        match decide::refresh(&family, &token, successor.as_ref(), req) {
            RefreshDecision::Reject(r) => Ok(RefreshOutcome::Rejected(r)),
            _ => {
                let id: i64 = col(&row, "r_id")?;
                self.rotate_locked(req, family.id, id).await
            }
        }
    }

    /// The locked path of a rotation: lock the family (`FOR NO KEY UPDATE`), the token and its
    /// successor; decide on what is locked; apply; commit.
    async fn rotate_locked(
        &self,
        req: &RefreshRotation<'_>,
        family_id: FamilyId,
        token_id: i64,
    ) -> Result<RefreshOutcome, TryError> {
        let not_found = Ok(RefreshOutcome::Rejected(Rejection::NotFound));
        let mut tx = self.begin().await?;
        self.sent(1);
        let Some(row) = sqlx::query(sql::LOCK_FAMILY)
            .bind(family_id.as_bytes().as_slice())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return not_found;
        };
        let family = codec::family(&row)?;
        self.sent(1);
        let Some(row) = sqlx::query(sql::LOCK_REFRESH)
            .bind(token_id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return not_found;
        };
        let token = codec::refresh(&row, true)?;
        let successor = match col::<Option<i64>>(&row, "r_replaced_by_id")? {
            None => None,
            Some(id) => {
                self.sent(1);
                match sqlx::query(sql::LOCK_REFRESH)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                {
                    Some(row) => Some(codec::refresh(&row, true)?),
                    None => None,
                }
            }
        };
        if let Some(s) = successor.as_ref().filter(|s| s.hash == req.successor) {
            return Ok(RefreshOutcome::Rotated {
                issued: issued(&family, s.generation, req.scope, &req.lifetimes, req.now),
                reported: None,
            });
        }
        let report = |mismatch| BindingReport {
            family: FamilyRef::of(&family),
            token: HashPrefix::of(&token.hash),
            mismatch,
        };
        let outcome = match decide::refresh(&family, &token, successor.as_ref(), req) {
            RefreshDecision::Reject(r) => return Ok(RefreshOutcome::Rejected(r)),
            RefreshDecision::Replay => {
                self.revoke_in(&mut tx, family.id, RevocationReason::RefreshReplay, req.now)
                    .await?;
                RefreshOutcome::Replayed {
                    family: FamilyRef::of(&family),
                    token: HashPrefix::of(&token.hash),
                    generation: token.generation,
                }
            }
            RefreshDecision::Binding { mismatch, revoke } => {
                if revoke {
                    self.revoke_in(
                        &mut tx,
                        family.id,
                        RevocationReason::BindingMismatch,
                        req.now,
                    )
                    .await?;
                }
                RefreshOutcome::BindingMismatch {
                    report: report(mismatch),
                    family_revoked: revoke,
                }
            }
            RefreshDecision::Rotate { reported } => {
                let out = issued(
                    &family,
                    token.generation.saturating_add(1),
                    req.scope,
                    &req.lifetimes,
                    req.now,
                );
                self.sent(1);
                let done = sqlx::query(sql::APPLY_ROTATE)
                    .bind(token_id)
                    .bind(micros(req.now))
                    .bind(req.successor.as_bytes().as_slice())
                    .bind(micros(out.refresh_expires_at))
                    .bind(req.access.as_bytes().as_slice())
                    .bind(narrowed(&family, req.scope))
                    .bind(micros(out.access_expires_at))
                    .fetch_optional(&mut *tx)
                    .await?;
                if done.is_none() {
                    return Err(unexpected("a locked refresh token could not be rotated").into());
                }
                RefreshOutcome::Rotated {
                    issued: out,
                    reported: reported.map(report),
                }
            }
            RefreshDecision::GraceReissue {
                supersede,
                reported,
            } => {
                let superseded = successor
                    .as_ref()
                    .filter(|s| s.hash == supersede)
                    .ok_or_else(|| unexpected("a grace reissue without its successor"))?;
                let superseded_id = col::<Option<i64>>(&row, "r_replaced_by_id")?
                    .ok_or_else(|| unexpected("a grace reissue without its successor"))?;
                let out = issued(
                    &family,
                    superseded.generation,
                    req.scope,
                    &req.lifetimes,
                    req.now,
                );
                self.sent(1);
                let done = sqlx::query(sql::APPLY_GRACE)
                    .bind(token_id)
                    .bind(micros(req.now))
                    .bind(superseded_id)
                    .bind(req.successor.as_bytes().as_slice())
                    .bind(micros(out.refresh_expires_at))
                    .bind(req.access.as_bytes().as_slice())
                    .bind(narrowed(&family, req.scope))
                    .bind(micros(out.access_expires_at))
                    .fetch_optional(&mut *tx)
                    .await?;
                if done.is_none() {
                    return Err(unexpected("a locked grace reissue could not be applied").into());
                }
                RefreshOutcome::GraceReissued {
                    issued: out,
                    superseded: HashPrefix::of(&supersede),
                    reported: reported.map(report),
                }
            }
            _ => return Err(unexpected("an unknown refresh decision").into()),
        };
        self.commit(tx).await?;
        Ok(outcome)
    }

    /// Revoke a locked family inside `tx`.
    async fn revoke_in(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        id: FamilyId,
        reason: RevocationReason,
        now: UnixTime,
    ) -> Result<(), TryError> {
        self.sent(1);
        sqlx::query(sql::REVOKE_FAMILY)
            .bind(id.as_bytes().as_slice())
            .bind(micros(now))
            .bind(reason.as_str())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    // --- lookups and revocation -----------------------------------------------------------

    async fn find_once(
        &self,
        kind: TokenKind,
        candidates: &[TokenHash],
    ) -> Result<Option<Found>, TryError> {
        let query = match kind {
            TokenKind::AuthorizationCode => sql::FIND_CODE,
            TokenKind::RefreshToken => sql::FIND_REFRESH,
            TokenKind::AccessToken => sql::FIND_ACCESS,
            _ => return Ok(None),
        };
        self.sent(1);
        let Some(row) = sqlx::query(query)
            .bind(hashes(candidates))
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let family = codec::family(&row)?;
        Ok(Some(match kind {
            TokenKind::AuthorizationCode => Found::Credential {
                credential: codec::code(&row)?,
                family,
            },
            TokenKind::RefreshToken => Found::Credential {
                credential: codec::refresh(&row, true)?,
                family,
            },
            _ => Found::Access {
                token: codec::access(&row)?,
                family,
            },
        }))
    }

    async fn revoke_token_once(
        &self,
        req: &TokenRevocation<'_>,
    ) -> Result<RevokeOutcome, TryError> {
        let query = match req.kind {
            TokenKind::AuthorizationCode => sql::REVOKE_CODE,
            TokenKind::RefreshToken => sql::REVOKE_REFRESH,
            TokenKind::AccessToken => sql::REVOKE_ACCESS,
            _ => return Ok(RevokeOutcome::NotFound),
        };
        self.sent(1);
        let Some(row) = sqlx::query(query)
            .bind(hashes(req.candidates))
            .bind(micros(req.now))
            .bind(req.client_id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(RevokeOutcome::NotFound);
        };
        let family = family_id(&col::<Vec<u8>>(&row, "family")?)?;
        // Inactive before the client check, as the memory store: a purge may already have
        // dropped such a token, and the answer must not depend on it.
        if !col::<bool>(&row, "active")? {
            return Ok(RevokeOutcome::Inactive);
        }
        if col::<String>(&row, "client_id")? != req.client_id {
            return Ok(RevokeOutcome::WrongClient);
        }
        if col::<bool>(&row, "revoked")? {
            Ok(RevokeOutcome::Revoked {
                family,
                family_revoked: req.kind != TokenKind::AccessToken,
            })
        } else {
            // A concurrent revocation got there first.
            Ok(RevokeOutcome::Inactive)
        }
    }

    async fn revoke_owned_once(
        &self,
        query: &'static str,
        owner: &str,
        reason: RevocationReason,
        now: UnixTime,
    ) -> Result<Vec<FamilyId>, TryError> {
        self.sent(1);
        let rows: Vec<Vec<u8>> = sqlx::query_scalar(query)
            .bind(owner)
            .bind(micros(now))
            .bind(reason.as_str())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|id| family_id(id))
            .collect::<Result<_, _>>()?)
    }

    async fn snapshot_once(&self, id: FamilyId) -> Result<Option<FamilySnapshot>, TryError> {
        // One consistent snapshot of the four tables.
        self.counters.transactions.fetch_add(1, Ordering::Relaxed);
        self.sent(1);
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let id_bytes = id.as_bytes().as_slice();
        self.sent(1);
        let Some(row) = sqlx::query(sql::FAMILY)
            .bind(id_bytes)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let family = codec::family(&row)?;
        self.sent(3);
        let codes: Vec<PgRow> = sqlx::query(sql::FAMILY_CODES)
            .bind(id_bytes)
            .fetch_all(&mut *tx)
            .await?;
        let refresh: Vec<PgRow> = sqlx::query(sql::FAMILY_REFRESH)
            .bind(id_bytes)
            .fetch_all(&mut *tx)
            .await?;
        let access: Vec<PgRow> = sqlx::query(sql::FAMILY_ACCESS)
            .bind(id_bytes)
            .fetch_all(&mut *tx)
            .await?;
        self.commit(tx).await?;
        let mut credentials = codes
            .iter()
            .map(codec::code)
            .collect::<Result<Vec<_>, _>>()?;
        for row in &refresh {
            credentials.push(codec::refresh(row, true)?);
        }
        Ok(Some(FamilySnapshot {
            family,
            credentials,
            access_tokens: access.iter().map(codec::access).collect::<Result<_, _>>()?,
        }))
    }

    async fn purge_once(&self, now: UnixTime, max: usize) -> Result<PurgeReport, TryError> {
        let mut removed = 0usize;
        let now = micros(now);
        let limit = |removed: usize| i64::try_from(max.saturating_sub(removed)).unwrap_or(i64::MAX);
        // Everything of revoked or expired families, children first, then the families.
        for query in [
            sql::PURGE_DEAD_ACCESS,
            sql::PURGE_DEAD_REFRESH,
            sql::PURGE_DEAD_CODES,
            sql::PURGE_DEAD_FAMILIES,
        ] {
            if removed >= max {
                return Ok(PurgeReport {
                    removed,
                    more: true,
                });
            }
            self.sent(1);
            let n = sqlx::query(query)
                .bind(now)
                .bind(limit(removed))
                .execute(&self.pool)
                .await?
                .rows_affected();
            removed = removed.saturating_add(usize::try_from(n).unwrap_or(usize::MAX));
        }
        // Expired or revoked records of live families; remember the families they were in.
        let mut touched: Vec<Vec<u8>> = Vec::new();
        for query in [
            sql::PURGE_EXPIRED_ACCESS,
            sql::PURGE_REVOKED_ACCESS,
            sql::PURGE_REFRESH,
            sql::PURGE_CODES,
        ] {
            if removed >= max {
                return Ok(PurgeReport {
                    removed,
                    more: true,
                });
            }
            self.sent(1);
            let families: Vec<Vec<u8>> = sqlx::query_scalar(query)
                .bind(now)
                .bind(limit(removed))
                .fetch_all(&self.pool)
                .await?;
            removed = removed.saturating_add(families.len());
            touched.extend(families);
        }
        // Families those deletions left empty can never be used again.
        touched.sort_unstable();
        touched.dedup();
        if !touched.is_empty() {
            if removed >= max {
                return Ok(PurgeReport {
                    removed,
                    more: true,
                });
            }
            self.sent(1);
            let n = sqlx::query(sql::PURGE_EMPTY_FAMILIES)
                .bind(&touched)
                .bind(limit(removed))
                .execute(&self.pool)
                .await?
                .rows_affected();
            removed = removed.saturating_add(usize::try_from(n).unwrap_or(usize::MAX));
        }
        Ok(PurgeReport {
            removed,
            more: removed >= max && max > 0,
        })
    }
}

#[async_trait::async_trait]
impl GrantStore for PostgresGrantStore {
    async fn create_family(&self, family: &Family, code: &Credential) -> Result<(), StoreError> {
        if code.kind != TokenKind::AuthorizationCode
            || code.family != family.id
            || code.code_terms.is_none()
        {
            return Err(StoreError::backend(codec::Corrupt(
                "create_family needs the family's authorization code with its terms".into(),
            )));
        }
        self.retrying("create_family", |after_loss| {
            self.create_once(family, code, after_loss)
        })
        .await
    }

    async fn redeem_code(&self, req: &CodeRedemption<'_>) -> Result<CodeOutcome, StoreError> {
        self.retrying("redeem_code", |_| self.redeem_once(req))
            .await
    }

    async fn rotate_refresh(
        &self,
        req: &RefreshRotation<'_>,
    ) -> Result<RefreshOutcome, StoreError> {
        self.retrying("rotate_refresh", |_| self.rotate_once(req))
            .await
    }

    async fn find(
        &self,
        kind: TokenKind,
        candidates: &[TokenHash],
    ) -> Result<Option<Found>, StoreError> {
        self.retrying("find", |_| self.find_once(kind, candidates))
            .await
    }

    async fn revoke_token(&self, req: &TokenRevocation<'_>) -> Result<RevokeOutcome, StoreError> {
        self.retrying("revoke_token", |_| self.revoke_token_once(req))
            .await
    }

    async fn revoke_family(
        &self,
        id: FamilyId,
        reason: RevocationReason,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.retrying("revoke_family", |_| async move {
            self.sent(1);
            let n = sqlx::query(sql::REVOKE_FAMILY)
                .bind(id.as_bytes().as_slice())
                .bind(micros(now))
                .bind(reason.as_str())
                .execute(&self.pool)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
        .await
    }

    async fn revoke_user(
        &self,
        user_id: &str,
        reason: RevocationReason,
        now: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError> {
        self.retrying("revoke_user", |_| {
            self.revoke_owned_once(sql::REVOKE_USER, user_id, reason, now)
        })
        .await
    }

    async fn revoke_client(
        &self,
        client_id: &str,
        reason: RevocationReason,
        now: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError> {
        self.retrying("revoke_client", |_| {
            self.revoke_owned_once(sql::REVOKE_CLIENT, client_id, reason, now)
        })
        .await
    }

    async fn family(&self, id: FamilyId) -> Result<Option<FamilySnapshot>, StoreError> {
        self.retrying("family", |_| self.snapshot_once(id)).await
    }

    async fn purge(&self, now: UnixTime, max: usize) -> Result<PurgeReport, StoreError> {
        if max == 0 {
            return Ok(PurgeReport::default());
        }
        self.retrying("purge", |_| self.purge_once(now, max)).await
    }
}
