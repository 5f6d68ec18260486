//! What the integration tests share: the skip-or-require rule, unique key prefixes, and
//! redis-server processes (single nodes and a three-master Cluster) that a test starts for
//! itself and that are stopped when dropped.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use std::sync::Arc;

use portcullis_core::{ManualClock, UnixTime};
use portcullis_ratelimit::RateLimitStore;
use portcullis_ratelimit::conformance::ConformanceError;
use portcullis_redis::{RedisConnection, RedisRateLimitStore};
use portcullis_rotation::ClientRecord;

/// Whether CI asked for every service: then a missing one fails the test instead of skipping.
pub fn services_required() -> bool {
    std::env::var("PORTCULLIS_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The one rule: a test that cannot get what it needs is skipped, saying so and why, unless
/// `PORTCULLIS_REQUIRE_SERVICES=1`, when it fails. Returns `None` (skip) or panics (fail).
pub fn skip<T>(test: &str, why: &str) -> Option<T> {
    if services_required() {
        panic!("{test}: {why}, and PORTCULLIS_REQUIRE_SERVICES=1 requires it");
    }
    eprintln!("SKIPPED {test}: {why}");
    None
}

/// The Redis at `REDIS_URL`, connected; `None` (skipped) without it.
pub async fn redis(test: &str) -> Option<(String, RedisConnection)> {
    let Some(url) = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()) else {
        return skip(test, "REDIS_URL is not set");
    };
    match RedisConnection::connect(&url).await {
        Ok(conn) => Some((url, conn)),
        Err(e) => skip(test, &format!("no Redis at REDIS_URL: {e}")),
    }
}

/// Whether the `redis-server` and `redis-cli` binaries run; `None` (skipped) if not.
pub fn binaries(test: &str) -> Option<()> {
    let ok = |bin: &str| {
        Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ok("redis-server") && ok("redis-cli") {
        Some(())
    } else {
        skip(
            test,
            "the redis-server and redis-cli binaries are not installed",
        )
    }
}

/// The rate limiter's conformance suite, unchanged, on `conn` with every key under `prefix`,
/// on a manual clock (the stores take the caller's time).
pub async fn ratelimit_suite(conn: &RedisConnection, prefix: &str) -> Result<(), ConformanceError> {
    let clock = ManualClock::at_secs(0);
    let (c, p, factory_conn) = (clock.clone(), prefix.to_owned(), conn.clone());
    portcullis_ratelimit::conformance::run(
        move || {
            Arc::new(
                RedisRateLimitStore::new(factory_conn.clone())
                    .with_prefix(&p)
                    .unwrap()
                    .with_clock(c.clone()),
            ) as Arc<dyn RateLimitStore>
        },
        &clock,
    )
    .await
}

/// A public client registered with one redirect URI.
pub fn public_client(id: &str) -> ClientRecord {
    ClientRecord {
        client_id: id.into(),
        secret_hash: None,
        client_name: None,
        redirect_uris: vec!["https://c.example/cb".into()],
        grant_types: vec!["authorization_code".into()],
        response_types: vec!["code".into()],
        token_endpoint_auth_method: "none".into(),
        scope: None,
        metadata: "{}".into(),
        created_at: UnixTime::from_secs(1),
        secret_expires_at: None,
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A key prefix no other test (or test process) uses: `t<pid>-<name>-<n>`.
pub fn prefix(name: &str) -> String {
    format!(
        "t{}-{name}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Every key matching `pattern`, on a single node (`SCAN`).
pub async fn keys_matching(conn: &RedisConnection, pattern: &str) -> Vec<String> {
    let mut conn = conn.clone();
    let mut cursor: u64 = 0;
    let mut all = Vec::new();
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        all.extend(keys);
        if next == 0 {
            return all;
        }
        cursor = next;
    }
}

/// Delete every key under `root` (`root*`), on a single node.
pub async fn clean(conn: &RedisConnection, root: &str) {
    let keys = keys_matching(conn, &format!("{root}*")).await;
    for chunk in keys.chunks(1000) {
        let _: i64 = redis::cmd("UNLINK")
            .arg(chunk)
            .query_async(&mut conn.clone())
            .await
            .unwrap();
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "portcullis-redis-{}-{name}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether a server on `port` answers PING.
pub fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// A redis-server process on a loopback port, in its own directory; stopped (and its
/// directory removed) when dropped.
#[derive(Debug)]
pub struct Server {
    pub port: u16,
    pub dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl Server {
    /// Start a server with `args` on top of: loopback, a free port, its own directory, no RDB
    /// snapshots.
    pub fn start(name: &str, args: &[&str]) -> Self {
        let mut s = Self {
            port: free_port(),
            dir: scratch_dir(name),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            child: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(&self.dir)
            .arg("--save")
            .arg("")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers(self.port) {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kill the process (SIGKILL: no shutdown save, like a crash or a lost machine).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Run redis-cli against this server.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-h")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of three masters on loopback ports, created with `redis-cli --cluster
/// create`; stopped when dropped.
#[derive(Debug)]
pub struct Cluster {
    pub nodes: Vec<Server>,
}

impl Cluster {
    pub fn start() -> Self {
        let nodes: Vec<Server> = (0..3)
            .map(|i| {
                let bus = free_port().to_string();
                Server::start(
                    &format!("cluster{i}"),
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "5000",
                        "--cluster-port",
                        &bus,
                        "--appendonly",
                        "no",
                    ],
                )
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create runs");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = nodes.iter().all(|n| {
                let info = n.cli(&["cluster", "info"]);
                info.contains("cluster_state:ok") && info.contains("cluster_slots_assigned:16384")
            });
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "the cluster did not become ok");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { nodes }
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Server::url).collect()
    }
}

/// Where the Cluster tests run: the nodes of `REDIS_CLUSTER_URLS` (comma-separated), or a
/// Cluster this process starts (kept alive by the returned guard).
pub fn cluster(test: &str) -> Option<(Vec<String>, Option<Cluster>)> {
    if let Some(urls) = std::env::var("REDIS_CLUSTER_URLS")
        .ok()
        .filter(|u| !u.is_empty())
    {
        return Some((urls.split(',').map(str::to_owned).collect(), None));
    }
    binaries(test)?;
    let c = Cluster::start();
    Some((c.urls(), Some(c)))
}

/// Sum of `cmdstat_<name>` calls over the servers' `INFO commandstats`.
pub async fn command_calls(conns: &[RedisConnection], name: &str) -> u64 {
    let mut total = 0;
    for c in conns {
        let mut c = c.clone();
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut c)
            .await
            .unwrap();
        let key = format!("cmdstat_{name}:calls=");
        total += info
            .lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}
