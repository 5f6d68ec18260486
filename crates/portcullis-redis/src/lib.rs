//! Redis and Redis Cluster stores for Portcullis: [`RedisGrantStore`] keeps grant families
//! (the rotation crate's [`GrantStore`](portcullis_rotation::GrantStore)) and
//! [`RedisRateLimitStore`] keeps rate-limit state (the rate limiter's
//! [`RateLimitStore`](portcullis_ratelimit::RateLimitStore)), so that several server
//! processes share one set of grants and one budget per client; [`RedisClientStore`] keeps
//! registered clients (the rotation crate's [`ClientStore`](portcullis_rotation::ClientStore)),
//! so that every process knows the clients registered through any of them.
//!
//! # How it stays correct
//!
//! Every operation that reads and writes is **one Lua script** run by `EVALSHA` (the redis
//! crate's [`Script`](redis::Script) loads it again after a `NOSCRIPT`, after a restart or a
//! failover). Redis runs a script alone, so the check and the write of a redemption are one
//! atomic step: two concurrent redemptions of one refresh token never both succeed, whichever
//! server process they reach. Every grant and limiter key a script writes gets its TTL in the
//! same command (`SET … PX`, or `KEEPTTL` on an update): no crash between two commands can leave
//! a key without one, the failure behind the classic INCR-then-EXPIRE permanent lock-out.
//! Registered clients ([`RedisClientStore`]) are the exception: they are kept until deleted,
//! and bounded by [`RedisClientStore::with_max_clients`].
//!
//! Times are integer microseconds, exact in Lua's doubles (below 2^53). By default they come
//! from the server's `TIME`, so that every server process agrees; [`TimeSource::Caller`] (grants)
//! and [`RedisRateLimitStore::with_clock`] use the caller's clock instead, for managed services
//! that refuse `TIME` in scripts, and for tests on a manual clock.
//!
//! On Redis Cluster all the keys one script touches share a hash tag (a family's keys the tag
//! `{<family id>}`, a limiter's keys one tag per store), so every operation runs there; a token
//! presented on Cluster is first looked up by its hash (a pointer to its family), then its
//! family's script runs: two round trips for a redemption, one on a single node, where the
//! script finds the token's record by its hash itself. The key schema with sizes, the round
//! trips of every operation and why, the routing decision, and how to run this in production
//! are in `docs/operations.md` ("Redis").
//!
//! | | single node | Cluster |
//! |---|---|---|
//! | a rate-limit decision (`check`, `peek`, `check_all`) | 1 round trip | 1 |
//! | issuing a code (`create_family`) | 1 | 1 (five requests at once) |
//! | a code exchange or refresh rotation | 1 | 2 |
//! | introspection (`find`), RFC 7009 revocation | 1 | 2 |
//! | revoking a family, reading one | 1 | 1 |
//! | logout (`revoke_user`), `revoke_client` | 1 | 2 |
//!
//! Connections are the redis crate's [`ConnectionManager`](redis::aio::ConnectionManager) (a
//! single node, reconnecting in the background) or its async Cluster connection, with connect
//! and response timeouts ([`ConnectOptions`]); a store error says whether a retry can help
//! (`is_retryable`), so that the token endpoint answers 503 and the limiter's layer applies its
//! fail-open or fail-closed policy. TLS is not built in (`rediss://` is refused with a clear
//! error).
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use portcullis_core::SystemClock;
//! use portcullis_hash::{Keyring, TokenHasher};
//! use portcullis_ratelimit::{Limit, Quota, RateLimitStore};
//! use portcullis_redis::{RedisConnection, RedisGrantStore, RedisRateLimitStore};
//! use portcullis_rotation::{GrantService, RotationPolicy};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // One connection (single node; or RedisConnection::connect_cluster(&[...]) for a Cluster),
//! // shared by both stores.
//! let conn = RedisConnection::connect_url("redis://127.0.0.1:6379").await?;
//!
//! let grants = GrantService::new(
//!     Arc::new(RedisGrantStore::new(conn.clone())),
//!     Arc::new(TokenHasher::new(Keyring::from_env()?)),
//!     Arc::new(SystemClock),
//!     RotationPolicy::default(),
//! );
//!
//! let limiter = RedisRateLimitStore::new(conn);
//! let per_ip = Limit::new("token-ip", "10/min".parse::<Quota>()?)?;
//! let decision = limiter.check(&per_ip, "203.0.113.7").await?;
//! assert!(decision.allowed);
//! # let _ = grants;
//! # Ok(())
//! # }
//! ```
//!
//! The same stores run the rotation crate's and the rate limiter's conformance suites unchanged
//! (this crate's integration tests, against a real Redis and a real three-master Cluster).
#![forbid(unsafe_code)]

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

mod clients;
mod connection;
mod error;
mod grant;
mod keys;
mod ratelimit;

pub use clients::RedisClientStore;
pub use connection::{
    CLUSTER_SCHEME, ConnectError, ConnectOptions, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_RECONNECT_ATTEMPTS, DEFAULT_RESPONSE_TIMEOUT, RedisConnection, RoundTripCounter,
    RoundTrips, cluster_nodes, redact_url,
};
pub use grant::RedisGrantStore;
pub use keys::{DEFAULT_PREFIX, MAX_PREFIX_LEN, PrefixError};
pub use ratelimit::RedisRateLimitStore;

/// Where a [`RedisGrantStore`] takes the time it checks expiries against and stamps records
/// with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TimeSource {
    /// The server's `TIME`, read inside each script (the default): every server process agrees
    /// on what has expired, whatever their clocks. The family's and the code's times given to
    /// `create_family` are moved by `TIME - created_at`, so that the whole store is on the
    /// server's clock (lifetimes are kept).
    #[default]
    Server,
    /// The `now` of each request (the service's [`Clock`](portcullis_core::Clock)): for managed
    /// services that refuse `TIME` in scripts, and for tests on a manual clock. The clocks of
    /// every server process must then agree.
    Caller,
}

/// Poll every future until all are done, concurrently, on the current task (no spawning).
pub(crate) async fn join_all<T>(futures: Vec<impl Future<Output = T>>) -> Vec<T> {
    let mut futures: Vec<Pin<Box<_>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futures.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
