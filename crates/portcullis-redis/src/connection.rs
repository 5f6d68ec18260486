//! Connections: one managed, reconnecting connection to a single node, or a Cluster connection,
//! both with timeouts; and a round-trip counter for tests and diagnostics.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// How long one connection attempt may take: 1 s. Source: the redis crate's own default; a
/// loopback or same-zone connect takes well under a millisecond, and an authorization server's
/// request must not hang on an unreachable store.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long one command may wait for its reply: 500 ms. Source: the redis crate's own default;
/// a script of this crate runs in microseconds, so anything near this is an outage, answered
/// as a retryable error (a 503, or the limiter's failure policy) rather than a hung request.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// How many times a lost single-node connection is re-established in the background before a
/// request gives up: 2 (with 50 ms, then 100 ms between attempts). Source: long enough to ride
/// out a restart's refused connections without holding a request past about the response
/// timeout; the next request tries again anyway.
pub const DEFAULT_RECONNECT_ATTEMPTS: usize = 2;

/// The first delay between reconnection attempts: 50 ms (doubling).
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
/// The longest delay between reconnection attempts.
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(400);

/// Timeouts and reconnection of a [`RedisConnection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Per connection attempt ([`DEFAULT_CONNECT_TIMEOUT`]).
    pub connect_timeout: Duration,
    /// Per command ([`DEFAULT_RESPONSE_TIMEOUT`]).
    pub response_timeout: Duration,
    /// Reconnection attempts of a single-node connection, and retries of a Cluster request
    /// (redirections, a failed-over node) ([`DEFAULT_RECONNECT_ATTEMPTS`]).
    pub reconnect_attempts: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            reconnect_attempts: DEFAULT_RECONNECT_ATTEMPTS,
        }
    }
}

/// The connection could not be set up. Its message is one line naming where (with any
/// password replaced by `***`) and why.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConnectError {
    message: String,
    #[source]
    source: Option<redis::RedisError>,
}

impl ConnectError {
    fn new(message: String, source: Option<redis::RedisError>) -> Self {
        Self { message, source }
    }
}

/// `url` with the password of its userinfo replaced by `***`.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    format!("{scheme}://{user}@{host}{tail}")
}

fn one_line(e: &redis::RedisError) -> String {
    e.to_string().replace(['\n', '\r'], " ")
}

/// A connection to Redis: a single node through the redis crate's
/// [`ConnectionManager`] (one multiplexed connection, re-established in the background when
/// it drops), or a Redis Cluster through its async [`ClusterConnection`] (which follows
/// redirections and failovers). Both carry the timeouts of [`ConnectOptions`].
///
/// Cheap to clone; clones share the connection. Give the same connection to a
/// [`RedisGrantStore`](crate::RedisGrantStore) and a
/// [`RedisRateLimitStore`](crate::RedisRateLimitStore).
#[derive(Clone)]
pub struct RedisConnection {
    inner: Inner,
    counter: Option<RoundTripCounter>,
}

#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("cluster", &self.is_cluster())
            .field("counting", &self.counter.is_some())
            .finish_non_exhaustive()
    }
}

/// The scheme of the cluster form of a store URL: `redis+cluster://host1:port1,host2:port2`.
pub const CLUSTER_SCHEME: &str = "redis+cluster";

/// The node URLs a `redis+cluster://[user:password@]host1:port1,host2:port2[/]` URL names, each
/// as `redis://[user:password@]host:port`; `None` if `url` is not of that form.
#[must_use]
pub fn cluster_nodes(url: &str) -> Option<Vec<String>> {
    let rest = url.strip_prefix(CLUSTER_SCHEME)?.strip_prefix("://")?;
    let rest = rest.trim_end_matches('/');
    let (userinfo, hosts) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| match userinfo {
            Some(u) => format!("redis://{u}@{h}"),
            None => format!("redis://{h}"),
        })
        .collect();
    (!nodes.is_empty() && !hosts.contains('/')).then_some(nodes)
}

impl RedisConnection {
    /// Connect to a single node (`redis://[user:password@]host[:port][/db]`) with the default
    /// options, and check that it answers.
    ///
    /// # Errors
    /// [`ConnectError`], one line naming the (redacted) URL and the cause.
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        Self::connect_with(url, ConnectOptions::default()).await
    }

    /// Connect to a single node with `options`.
    ///
    /// # Errors
    /// [`ConnectError`].
    pub async fn connect_with(url: &str, options: ConnectOptions) -> Result<Self, ConnectError> {
        let shown = redact_url(url);
        let client = redis::Client::open(url).map_err(|e| {
            ConnectError::new(
                format!("invalid Redis URL {shown}: {}", one_line(&e)),
                Some(e),
            )
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.response_timeout))
            .set_number_of_retries(options.reconnect_attempts)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| {
                ConnectError::new(
                    format!("cannot reach Redis at {shown}: {}", one_line(&e)),
                    Some(e),
                )
            })?;
        let conn = Self {
            inner: Inner::Single(manager),
            counter: None,
        };
        conn.ping().await.map_err(|e| {
            ConnectError::new(
                format!("Redis at {shown} does not answer: {}", one_line(&e)),
                Some(e),
            )
        })?;
        Ok(conn)
    }

    /// Connect to a Redis Cluster through any of its nodes (`redis://host:port` each; the
    /// others are discovered), with the default options.
    ///
    /// # Errors
    /// [`ConnectError`].
    pub async fn connect_cluster<S: AsRef<str>>(nodes: &[S]) -> Result<Self, ConnectError> {
        Self::connect_cluster_with(nodes, ConnectOptions::default()).await
    }

    /// Connect to a Redis Cluster with `options`.
    ///
    /// # Errors
    /// [`ConnectError`].
    pub async fn connect_cluster_with<S: AsRef<str>>(
        nodes: &[S],
        options: ConnectOptions,
    ) -> Result<Self, ConnectError> {
        let shown = nodes
            .iter()
            .map(|n| redact_url(n.as_ref()))
            .collect::<Vec<_>>()
            .join(",");
        if nodes.is_empty() {
            return Err(ConnectError::new(
                "a Redis Cluster needs at least one node URL".to_owned(),
                None,
            ));
        }
        let urls: Vec<&str> = nodes.iter().map(AsRef::as_ref).collect();
        let client = ClusterClient::builder(urls)
            .connection_timeout(options.connect_timeout)
            .response_timeout(options.response_timeout)
            .overall_response_timeout(Some(
                options.response_timeout.saturating_mul(
                    u32::try_from(options.reconnect_attempts)
                        .unwrap_or(1)
                        .saturating_add(2),
                ),
            ))
            .retries(u32::try_from(options.reconnect_attempts).unwrap_or(u32::MAX))
            .min_retry_wait(u64::try_from(RECONNECT_MIN_DELAY.as_millis()).unwrap_or(50))
            .max_retry_wait(u64::try_from(RECONNECT_MAX_DELAY.as_millis()).unwrap_or(400))
            .build()
            .map_err(|e| {
                ConnectError::new(
                    format!("invalid Redis Cluster node URLs {shown}: {}", one_line(&e)),
                    Some(e),
                )
            })?;
        let connection = client.get_async_connection().await.map_err(|e| {
            ConnectError::new(
                format!("cannot reach Redis Cluster at {shown}: {}", one_line(&e)),
                Some(e),
            )
        })?;
        let conn = Self {
            inner: Inner::Cluster(connection),
            counter: None,
        };
        conn.ping().await.map_err(|e| {
            ConnectError::new(
                format!("Redis Cluster at {shown} does not answer: {}", one_line(&e)),
                Some(e),
            )
        })?;
        Ok(conn)
    }

    /// Connect to what a store URL names: `redis://…` is a single node,
    /// `redis+cluster://[user:password@]host1:port1,host2:port2` a Cluster (see
    /// [`cluster_nodes`]).
    ///
    /// # Errors
    /// [`ConnectError`].
    pub async fn connect_url(url: &str) -> Result<Self, ConnectError> {
        Self::connect_url_with(url, ConnectOptions::default()).await
    }

    /// [`connect_url`](Self::connect_url) with `options`.
    ///
    /// # Errors
    /// [`ConnectError`].
    pub async fn connect_url_with(
        url: &str,
        options: ConnectOptions,
    ) -> Result<Self, ConnectError> {
        if url.starts_with(CLUSTER_SCHEME) {
            let nodes = cluster_nodes(url).ok_or_else(|| {
                ConnectError::new(
                    format!(
                        "invalid Redis Cluster URL {}: expected {CLUSTER_SCHEME}://host1:port1,host2:port2",
                        redact_url(url)
                    ),
                    None,
                )
            })?;
            return Self::connect_cluster_with(&nodes, options).await;
        }
        if url.starts_with("rediss://") {
            return Err(ConnectError::new(
                format!(
                    "{}: TLS (rediss://) is not built into portcullis-redis; reach Redis over a private network or a TLS tunnel",
                    redact_url(url)
                ),
                None,
            ));
        }
        Self::connect_with(url, options).await
    }

    /// Whether this is a Cluster connection.
    #[must_use]
    pub const fn is_cluster(&self) -> bool {
        matches!(self.inner, Inner::Cluster(_))
    }

    /// Run `script` (`EVALSHA`, loading it again after a `NOSCRIPT`) with `keys` and `args`.
    pub(crate) async fn run_script<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        keys: &[String],
        args: &[String],
    ) -> redis::RedisResult<T> {
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(k);
        }
        for a in args {
            inv.arg(a);
        }
        let mut conn = self.clone();
        inv.invoke_async(&mut conn).await
    }

    /// This connection, counting every request it sends in `counter` (tests, diagnostics).
    #[must_use]
    pub fn counting(&self, counter: &RoundTripCounter) -> Self {
        Self {
            inner: self.inner.clone(),
            counter: Some(counter.clone()),
        }
    }

    async fn ping(&self) -> redis::RedisResult<()> {
        let mut c = self.clone();
        let _: Value = redis::cmd("PING").query_async(&mut c).await?;
        Ok(())
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let start = self.counter.as_ref().map(RoundTripCounter::start);
        Box::pin(async move {
            let result = match &mut self.inner {
                Inner::Single(c) => c.req_packed_command(cmd).await,
                Inner::Cluster(c) => c.req_packed_command(cmd).await,
            };
            if let (Some(counter), Some(start)) = (&self.counter, start) {
                counter.end(start);
            }
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let start = self.counter.as_ref().map(RoundTripCounter::start);
        Box::pin(async move {
            let result = match &mut self.inner {
                Inner::Single(c) => c.req_packed_commands(pipeline, offset, count).await,
                Inner::Cluster(c) => c.req_packed_commands(pipeline, offset, count).await,
            };
            if let (Some(counter), Some(start)) = (&self.counter, start) {
                counter.end(start);
            }
            result
        })
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Single(c) => c.get_db(),
            Inner::Cluster(c) => c.get_db(),
        }
    }
}

/// Counts what a [`RedisConnection::counting`] connection sends: requests (commands and
/// pipelines), and **round trips**, the number of waves of requests that were in flight
/// together. Two requests sent concurrently (to two Cluster nodes, say) are two requests and
/// one round trip; a request sent after another's reply is a second round trip.
///
/// Measured at the connection, outside the stores' logic: a store cannot report fewer round
/// trips than it makes. Waves are read off the order in which requests start and finish as the
/// caller sees them, so count on a current-thread runtime for an exact figure: on a
/// multi-thread one, a caller thread preempted between two requests of one wave may find the
/// first already answered, and count two.
#[derive(Debug, Clone, Default)]
pub struct RoundTripCounter {
    inner: Arc<CounterInner>,
}

#[derive(Debug, Default)]
struct CounterInner {
    clock: AtomicU64,
    spans: Mutex<Vec<(u64, u64)>>,
}

/// What a [`RoundTripCounter`] counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoundTrips {
    /// Requests sent.
    pub requests: usize,
    /// Waves of overlapping requests: the latency an operation pays, in round trips.
    pub round_trips: usize,
}

impl RoundTripCounter {
    /// A counter at zero.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn start(&self) -> u64 {
        self.inner.clock.fetch_add(1, Ordering::SeqCst)
    }

    fn end(&self, start: u64) {
        let end = self.inner.clock.fetch_add(1, Ordering::SeqCst);
        self.inner
            .spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((start, end));
    }

    /// What was counted since the last call (and start counting afresh).
    pub fn take(&self) -> RoundTrips {
        let mut spans = std::mem::take(
            &mut *self
                .inner
                .spans
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        spans.sort_unstable();
        let mut round_trips = 0;
        let mut wave_end: Option<u64> = None;
        for (start, end) in &spans {
            match wave_end {
                Some(e) if *start < e => wave_end = Some(e.max(*end)),
                _ => {
                    round_trips += 1;
                    wave_end = Some(*end);
                }
            }
        }
        RoundTrips {
            requests: spans.len(),
            round_trips,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("redis://user:secret@h:6379/0"),
            "redis://user:***@h:6379/0"
        );
        assert_eq!(redact_url("redis://:secret@h"), "redis://:***@h");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact_url("redis://secret@h"), "redis://***@h");
    }

    #[test]
    fn cluster_urls_name_their_nodes() {
        assert_eq!(
            cluster_nodes("redis+cluster://a:7000,b:7001/"),
            Some(vec![
                "redis://a:7000".to_owned(),
                "redis://b:7001".to_owned()
            ])
        );
        assert_eq!(
            cluster_nodes("redis+cluster://u:p@a:7000,b:7001"),
            Some(vec![
                "redis://u:p@a:7000".to_owned(),
                "redis://u:p@b:7001".to_owned()
            ])
        );
        assert_eq!(cluster_nodes("redis://a:7000"), None);
        assert_eq!(cluster_nodes("redis+cluster://"), None);
    }

    #[test]
    fn round_trips_are_waves_of_overlapping_requests() {
        let c = RoundTripCounter::new();
        // two overlapping, then one after both
        let a = c.start();
        let b = c.start();
        c.end(a);
        c.end(b);
        let d = c.start();
        c.end(d);
        assert_eq!(
            c.take(),
            RoundTrips {
                requests: 3,
                round_trips: 2
            }
        );
        assert_eq!(c.take(), RoundTrips::default());
    }
}
