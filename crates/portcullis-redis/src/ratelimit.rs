//! [`RedisRateLimitStore`]: the rate limiter's [`RateLimitStore`] on Redis and Redis Cluster.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use portcullis_core::Clock;
use portcullis_ratelimit::{
    Algorithm, Check, Decision, Limit, MultiDecision, RateLimitStore, StoreError,
};
use redis::Script;

use crate::connection::RedisConnection;
use crate::keys::{self, PrefixError};

static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/ratelimit.lua")));

/// A [`RateLimitStore`] on Redis or Redis Cluster: every decision is one Lua script (one round
/// trip), a port of [`portcullis_ratelimit::decide`] that reads the key's state, decides and
/// writes the new state with its TTL (`SET … PX`) in the same step. There is no INCR-then-EXPIRE
/// gap: a key always carries the TTL after which its state is equivalent to none.
///
/// - Keys: `<prefix>:rl:{<tag>}:<algorithm>:<limit>:<client key>`, one string `"<expires_at>
///   <count> <prev>"` each (integer microseconds and counts). Every key of one store has the same
///   hash tag (the prefix, unless [`with_hash_tag`](Self::with_hash_tag)), so that
///   [`check_all`](RateLimitStore::check_all) (per IP and per user, say) is one script on Redis
///   Cluster too: all or nothing, no other request ever sees a partial result. The price: on
///   Cluster one store's limiter state lives on one master (one script per decision, a few
///   microseconds of its time); give independent limiters their own tags to spread them.
/// - Time: the server's `TIME` by default, or the caller's [`Clock`] ([`with_clock`](Self::with_clock)).
/// - Errors: [`StoreError::Timeout`] and [`StoreError::Unavailable`] (retryable) when the
///   server is down or slow, [`StoreError::Corrupt`] for a reply it cannot read. The
///   fail-open / fail-closed choice is the caller's (`portcullis_ratelimit::FailurePolicy`).
#[derive(Clone)]
pub struct RedisRateLimitStore {
    conn: RedisConnection,
    prefix: String,
    tag: String,
    clock: Option<Arc<dyn Clock>>,
}

impl fmt::Debug for RedisRateLimitStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimitStore")
            .field("conn", &self.conn)
            .field("prefix", &self.prefix)
            .field("tag", &self.tag)
            .field("server_time", &self.clock.is_none())
            .finish()
    }
}

/// One check's parameters, as the script takes them.
fn params(limit: &Limit) -> [u64; 5] {
    let q = limit.quota();
    let algorithm = match limit.algorithm() {
        Algorithm::Gcra => 0,
        Algorithm::FixedWindow => 1,
        // SlidingWindow; a later algorithm would need its own port
        _ => 2,
    };
    [
        algorithm,
        q.period_micros(),
        u64::from(q.count().get()),
        u64::from(q.burst().get()),
        q.emission_interval_micros().get(),
    ]
}

fn micros(v: i64) -> Duration {
    Duration::from_micros(u64::try_from(v).unwrap_or(0))
}

impl RedisRateLimitStore {
    /// A store on `conn` with the default prefix and the server's time.
    #[must_use]
    pub fn new(conn: RedisConnection) -> Self {
        Self {
            conn,
            prefix: keys::DEFAULT_PREFIX.to_owned(),
            tag: keys::DEFAULT_PREFIX.to_owned(),
            clock: None,
        }
    }

    /// This store with its keys under `prefix` (and, unless [`with_hash_tag`](Self::with_hash_tag)
    /// says otherwise, `prefix` as their hash tag).
    ///
    /// # Errors
    /// [`PrefixError`] unless `prefix` is 1 to 64 characters of `A-Za-z0-9-_.:`.
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, PrefixError> {
        keys::check_prefix(prefix)?;
        prefix.clone_into(&mut self.prefix);
        prefix.clone_into(&mut self.tag);
        Ok(self)
    }

    /// This store with `tag` as the hash tag of all its keys: on Cluster, all of one store's
    /// keys live in the slot of `tag` (so that a multi-key check is one script). Two stores
    /// with two tags spread two limiters over two slots.
    ///
    /// # Errors
    /// [`PrefixError`] unless `tag` is 1 to 64 characters of `A-Za-z0-9-_.:`.
    pub fn with_hash_tag(mut self, tag: &str) -> Result<Self, PrefixError> {
        keys::check_prefix(tag)?;
        tag.clone_into(&mut self.tag);
        Ok(self)
    }

    /// This store taking `now` from `clock` instead of the server's `TIME` (managed services
    /// that refuse `TIME` in scripts; tests on a manual clock). The clocks of every server
    /// sharing the keys must then agree.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The key of `key` under `limit`.
    #[must_use]
    pub fn key(&self, limit: &Limit, key: &str) -> String {
        keys::ratelimit_key(
            &self.prefix,
            &self.tag,
            limit.algorithm().as_str(),
            limit.name(),
            key,
        )
    }

    fn now(&self) -> String {
        self.clock
            .as_ref()
            .map(|c| c.now().as_micros().to_string())
            .unwrap_or_default()
    }

    /// Run the script on `checks` (one slot on Cluster: the store's hash tag).
    async fn run(
        &self,
        checks: &[(&Limit, &str)],
        consume: bool,
    ) -> Result<(bool, Vec<Decision>), StoreError> {
        let mut inv = SCRIPT.prepare_invoke();
        inv.arg(self.now())
            .arg(if consume { "1" } else { "0" })
            .arg(checks.len());
        for (limit, key) in checks {
            inv.key(self.key(limit, key));
            for p in params(limit) {
                inv.arg(p);
            }
        }
        let mut conn = self.conn.clone();
        let reply: Vec<i64> = inv
            .invoke_async(&mut conn)
            .await
            .map_err(crate::error::ratelimit)?;
        let Some((&all, rest)) = reply.split_first() else {
            return Err(StoreError::Corrupt);
        };
        if rest.len() != checks.len() * 4 {
            return Err(StoreError::Corrupt);
        }
        let decisions = rest
            .chunks_exact(4)
            .zip(checks)
            .map(|(c, (limit, _))| match *c {
                [allowed, remaining, reset, retry] => Ok(Decision {
                    allowed: allowed == 1,
                    limit: limit.capacity(),
                    remaining: u32::try_from(remaining).map_err(|_| StoreError::Corrupt)?,
                    reset_after: micros(reset),
                    retry_after: micros(retry),
                }),
                _ => Err(StoreError::Corrupt),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((all == 1, decisions))
    }

    async fn one(&self, limit: &Limit, key: &str, consume: bool) -> Result<Decision, StoreError> {
        let (_, decisions) = self.run(&[(limit, key)], consume).await?;
        decisions.first().copied().ok_or(StoreError::Corrupt)
    }
}

#[async_trait::async_trait]
impl RateLimitStore for RedisRateLimitStore {
    async fn check(&self, limit: &Limit, key: &str) -> Result<Decision, StoreError> {
        self.one(limit, key, true).await
    }

    async fn peek(&self, limit: &Limit, key: &str) -> Result<Decision, StoreError> {
        self.one(limit, key, false).await
    }

    async fn check_all(&self, checks: &[Check<'_>]) -> Result<MultiDecision, StoreError> {
        if checks.is_empty() {
            return Ok(MultiDecision {
                allowed: true,
                decisions: Vec::new(),
            });
        }
        let all: Vec<(&Limit, &str)> = checks.iter().map(|c| (c.limit, c.key)).collect();
        let (allowed, decisions) = self.run(&all, true).await?;
        Ok(MultiDecision { allowed, decisions })
    }
}
