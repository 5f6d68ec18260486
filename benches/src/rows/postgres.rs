//! portcullis-postgres rows, against the PostgreSQL at `DATABASE_URL` (skipped with a note when
//! none is reachable): a refresh rotation against the floor of any durable write (one
//! single-row autocommit INSERT on the same connection), rotations per second with 16 tasks,
//! and the statements and wire round trips of one rotation.
// Bench code: a panic is the right way to fail; buffers are indexed within checked lengths.
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portcullis_core::{ManualClock, SecretString};
use portcullis_hash::{Keyring, TokenHasher};
use portcullis_pkce::CodeVerifier;
use portcullis_postgres::sqlx::postgres::{PgConnectOptions, PgSslMode};
use portcullis_postgres::sqlx::{self, Connection as _, Executor as _};
use portcullis_postgres::{PostgresGrantStore, PostgresOptions};
use portcullis_rotation::{
    BindingContext, CodeExchange, CodeRequest, GrantService, GrantStore, RefreshRequest,
    RotationPolicy, Scope,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

use crate::harness::{Goal, Row, Settings, compare};

const VS_INSERT: &str = "postgres_rotation_vs_insert";
const TASKS_16: &str = "postgres_rotations_16_tasks";
const ROUND_TRIPS: &str = "postgres_round_trips_per_rotation";

const INSERT_BASELINE: &str = "one single-row INSERT (bytea + bigint), autocommit, same connection";

/// A 32-byte key, as HMAC_SECRET would hold.
const KEY: &str = "0123456789abcdef0123456789abcdef";

/// The single-row write every baseline makes: as wide as a token row's key.
const INSERT: &str = "INSERT INTO bench_insert (h, t) VALUES ($1, $2)";

/// A schema of the bench's own, dropped at the end.
struct Bench {
    url: String,
    schema: String,
}

impl Bench {
    async fn setup(url: &str) -> Result<Self, String> {
        let mut conn =
            tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(url))
                .await
                .map_err(|_| "no answer within 5 s".to_owned())?
                .map_err(|e| e.to_string())?;
        let schema = format!("portcullis_bench_{:016x}", getrandom::u64().unwrap());
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .await
            .map_err(|e| e.to_string())?;
        conn.execute(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {schema}.bench_insert (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
             h bytea NOT NULL, t bigint NOT NULL)"
        )))
        .await
        .map_err(|e| e.to_string())?;
        let _ = conn.close().await;
        let bench = Self {
            url: url.to_owned(),
            schema,
        };
        // Tables once; every store below opens its own pool on the schema.
        bench
            .store(&bench.options(1))
            .await?
            .migrate()
            .await
            .map_err(|e| e.to_string())?;
        Ok(bench)
    }

    fn options(&self, connections: u32) -> PostgresOptions {
        PostgresOptions::new()
            .with_schema(Some(self.schema.clone()))
            .with_max_connections(connections)
            .with_application_name("portcullis-bench")
    }

    async fn store(&self, options: &PostgresOptions) -> Result<PostgresGrantStore, String> {
        PostgresGrantStore::connect(&self.url, options)
            .await
            .map_err(|e| e.to_string())
    }

    async fn teardown(&self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.url).await {
            let _ = conn
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {} CASCADE",
                    self.schema
                )))
                .await;
            let _ = conn.close().await;
        }
    }
}

fn service(store: &PostgresGrantStore) -> Arc<GrantService> {
    let hasher = TokenHasher::new(Keyring::from_values(KEY, None).unwrap());
    Arc::new(GrantService::new(
        Arc::new(store.clone()) as Arc<dyn GrantStore>,
        Arc::new(hasher),
        Arc::new(ManualClock::at_secs(1_700_000_000)),
        RotationPolicy::default(),
    ))
}

/// A fresh family's first refresh token.
async fn first_token(service: &GrantService, user: &str) -> SecretString {
    let verifier = CodeVerifier::generate().unwrap();
    let code = service
        .issue_code(CodeRequest {
            client_id: "bench-client".into(),
            redirect_uri: "https://bench.example/cb".into(),
            challenge: Some(verifier.challenge()),
            scope: Scope::parse("read write").unwrap(),
            resources: vec![],
            user_id: user.into(),
            session_expires_at: None,
        })
        .await
        .unwrap();
    service
        .exchange_code(CodeExchange {
            code: code.code.expose_secret(),
            client_id: "bench-client",
            redirect_uri: Some("https://bench.example/cb"),
            code_verifier: Some(verifier.expose_secret()),
            binding: BindingContext::default(),
        })
        .await
        .unwrap()
        .refresh_token
}

/// One refresh rotation through the service: parse, hash, mint two tokens, one store call.
async fn rotate(service: &GrantService, token: &mut SecretString) {
    let pair = service
        .refresh(RefreshRequest {
            refresh_token: token.expose_secret(),
            client_id: "bench-client",
            scope: None,
            binding: BindingContext::default(),
        })
        .await
        .unwrap();
    *token = pair.refresh_token;
}

async fn insert(store: &PostgresGrantStore, n: i64) {
    sqlx::query(INSERT)
        .bind([7u8; 32].as_slice())
        .bind(n)
        .execute(store.pool())
        .await
        .unwrap();
}

/// The rows of this module.
pub fn rows(settings: Settings, only: &dyn Fn(&str) -> bool) -> Vec<Row> {
    let wanted: Vec<&'static str> = [VS_INSERT, TASKS_16, ROUND_TRIPS]
        .into_iter()
        .filter(|id| only(id))
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let skip = |why: String| -> Vec<Row> {
        wanted
            .iter()
            .map(|id| Row::skipped(id, INSERT_BASELINE, why.clone()))
            .collect()
    };
    let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        return skip("skipped: DATABASE_URL is not set".to_owned());
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bench = match rt.block_on(Bench::setup(&url)) {
        Ok(b) => b,
        Err(e) => {
            return skip(format!(
                "skipped: no PostgreSQL reachable at DATABASE_URL ({e})"
            ));
        }
    };
    let mut rows = Vec::new();
    if wanted.contains(&VS_INSERT) {
        rows.push(vs_insert(settings, &rt, &bench));
    }
    if wanted.contains(&TASKS_16) {
        rows.push(sixteen_tasks(settings, &rt, &bench));
    }
    if wanted.contains(&ROUND_TRIPS) {
        rows.push(round_trips(&rt, &bench));
    }
    rt.block_on(bench.teardown());
    rows
}

fn synchronous_commit(rt: &Runtime, store: &PostgresGrantStore) -> String {
    rt.block_on(
        sqlx::query_scalar::<_, String>("SELECT current_setting('synchronous_commit')")
            .fetch_one(store.pool()),
    )
    .unwrap_or_else(|_| "?".to_owned())
}

/// One rotation against one INSERT, interleaved, on a pool of one connection.
fn vs_insert(settings: Settings, rt: &Runtime, bench: &Bench) -> Row {
    let store = rt.block_on(bench.store(&bench.options(1))).unwrap();
    let service = service(&store);
    let mut token = rt.block_on(first_token(&service, "bench-user"));
    // Warm up: prepare every statement on the connection.
    for n in 0..20 {
        rt.block_on(rotate(&service, &mut token));
        rt.block_on(insert(&store, n));
    }
    let mut n = 0i64;
    let (ours, base) = compare(
        settings,
        || rt.block_on(rotate(&service, &mut token)),
        || {
            n += 1;
            rt.block_on(insert(&store, n));
        },
    );
    let sync = synchronous_commit(rt, &store);
    Row::time(VS_INSERT, ours, INSERT_BASELINE, base, Goal::AtMost(2.0)).with_note(format!(
        "both durable (synchronous_commit={sync}): one commit each; a rotation is one statement \
         (mark used WHERE used_at IS NULL, insert successor and access token) through \
         GrantService::refresh, token parsing, hashing and minting included"
    ))
}

/// Wall-clock ns per operation when 16 tasks each run `op` (which returns how many operations
/// it did).
async fn sixteen<F, Fut>(op: F) -> f64
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = u64> + Send + 'static,
{
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..16 {
        tasks.spawn(op(t));
    }
    let mut total = 0u64;
    while let Some(n) = tasks.join_next().await {
        total += n.unwrap();
    }
    start.elapsed().as_secs_f64() * 1e9 / total.max(1) as f64
}

/// 16 tasks, each rotating its own family, on a pool of 16 connections; the baseline is 16
/// tasks of INSERTs on another pool of 16.
fn sixteen_tasks(settings: Settings, rt: &Runtime, bench: &Bench) -> Row {
    let duration = (settings.batch * u32::try_from(settings.batches).unwrap_or(1) * 3)
        .max(Duration::from_millis(50));
    let store = rt.block_on(bench.store(&bench.options(16))).unwrap();
    let service = service(&store);
    let tokens: Vec<SecretString> = (0..16)
        .map(|t| rt.block_on(first_token(&service, &format!("bench-user-{t}"))))
        .collect();
    let tokens = Arc::new(std::sync::Mutex::new(tokens));
    let run_rotations = || {
        rt.block_on(sixteen(|t| {
            let service = Arc::clone(&service);
            let mut token = tokens.lock().unwrap()[t].clone();
            let tokens = Arc::clone(&tokens);
            async move {
                let end = Instant::now() + duration;
                let mut n = 0;
                while Instant::now() < end {
                    rotate(&service, &mut token).await;
                    n += 1;
                }
                tokens.lock().unwrap()[t] = token;
                n
            }
        }))
    };
    let counter = Arc::new(AtomicU64::new(0));
    let run_inserts = || {
        rt.block_on(sixteen(|_| {
            let store = store.clone();
            let counter = Arc::clone(&counter);
            async move {
                let end = Instant::now() + duration;
                let mut n = 0;
                while Instant::now() < end {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    insert(&store, i64::try_from(i).unwrap_or(i64::MAX)).await;
                    n += 1;
                }
                n
            }
        }))
    };
    // Warm up both (every connection prepares its statements), then measure alternately.
    run_rotations();
    run_inserts();
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        ours.push(run_rotations());
        base.push(run_inserts());
    }
    ours.sort_by(f64::total_cmp);
    base.sort_by(f64::total_cmp);
    let (ours, base) = (ours[1], base[1]);
    Row::time(
        TASKS_16,
        ours,
        "16 tasks of single-row autocommit INSERTs, 16 connections",
        base,
        Goal::Report,
    )
    .with_note(format!(
        "{:.0} rotations/s with 16 tasks on 16 connections ({:.0} INSERTs/s); for comparison, \
         the issue's hand-written one-statement CTE under pgbench with 16 clients: 4,225/s",
        1e9 / ours,
        1e9 / base
    ))
}

/// Counts the round trips a client makes through it: every `Sync` (extended protocol) or
/// `Query` (simple protocol) message the client sends ends one exchange with the server.
struct CountingProxy {
    addr: SocketAddr,
    round_trips: Arc<AtomicU64>,
}

async fn write_all(stream: &TcpStream, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        stream.writable().await?;
        match stream.try_write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Forward `from` to `to`; when `count` is set, parse the frontend protocol and count.
async fn pump(from: Arc<TcpStream>, to: Arc<TcpStream>, count: Option<Arc<AtomicU64>>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut typed = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if from.readable().await.is_err() {
            return;
        }
        let n = match from.try_read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        };
        if write_all(&to, &buf[..n]).await.is_err() {
            return;
        }
        let Some(count) = &count else { continue };
        pending.extend_from_slice(&buf[..n]);
        // Untyped messages first (SSLRequest, StartupMessage: length, then a code), then
        // typed ones (a type byte, then a length that counts itself).
        loop {
            let header = if typed { 5 } else { 8 };
            if pending.len() < header {
                break;
            }
            let at = usize::from(typed);
            let len = u32::from_be_bytes(pending[at..at + 4].try_into().unwrap()) as usize;
            let total = len + at;
            if pending.len() < total {
                break;
            }
            if typed {
                if matches!(pending[0], b'S' | b'Q') {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            } else if u32::from_be_bytes(pending[4..8].try_into().unwrap()) == 196_608 {
                typed = true; // the StartupMessage (protocol 3.0)
            }
            pending.drain(..total);
        }
    }
}

async fn counting_proxy(upstream: SocketAddr) -> CountingProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let round_trips = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&round_trips);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(upstream).await else {
                continue;
            };
            let (client, server) = (Arc::new(client), Arc::new(server));
            tokio::spawn(pump(
                Arc::clone(&client),
                Arc::clone(&server),
                Some(Arc::clone(&count)),
            ));
            tokio::spawn(pump(server, client, None));
        }
    });
    CountingProxy { addr, round_trips }
}

/// Statements (the store's own count) and wire round trips (counted by a proxy) per rotation,
/// against one INSERT through the same pool.
fn round_trips(rt: &Runtime, bench: &Bench) -> Row {
    const N: u64 = 200;
    let measured = rt.block_on(async {
        let connect = PgConnectOptions::from_str(&bench.url).map_err(|e| e.to_string())?;
        let host = connect.get_host().to_owned();
        let upstream = tokio::net::lookup_host((host.as_str(), connect.get_port()))
            .await
            .map_err(|e| e.to_string())?
            .next()
            .ok_or("the database host does not resolve")?;
        let proxy = counting_proxy(upstream).await;
        // Through the proxy, in clear text (so that the proxy can read the protocol).
        let connect = connect
            .host("127.0.0.1")
            .port(proxy.addr.port())
            .ssl_mode(PgSslMode::Disable);
        let store = PostgresGrantStore::connect_with(connect, &bench.options(1))
            .await
            .map_err(|e| e.to_string())?;
        let service = service(&store);
        let mut token = first_token(&service, "bench-round-trips").await;
        for n in 0..10 {
            rotate(&service, &mut token).await;
            insert(&store, n).await;
        }
        // Let the last connection return to the pool (its release ping) before counting.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (stats, wire) = (store.stats(), proxy.round_trips.load(Ordering::Relaxed));
        for _ in 0..N {
            rotate(&service, &mut token).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let statements = (store.stats().statements - stats.statements) as f64 / N as f64;
        let transactions = (store.stats().transactions - stats.transactions) as f64 / N as f64;
        let rotation_trips = (proxy.round_trips.load(Ordering::Relaxed) - wire) as f64 / N as f64;
        let wire = proxy.round_trips.load(Ordering::Relaxed);
        for n in 0..N {
            insert(&store, i64::try_from(n).unwrap()).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let insert_trips = (proxy.round_trips.load(Ordering::Relaxed) - wire) as f64 / N as f64;
        Ok::<_, String>((statements, transactions, rotation_trips, insert_trips))
    });
    match measured {
        Err(e) => Row::skipped(
            ROUND_TRIPS,
            "round trips of one INSERT",
            format!("skipped: {e}"),
        ),
        Ok((statements, transactions, rotation_trips, insert_trips)) => Row::time(
            ROUND_TRIPS,
            rotation_trips,
            "round trips of one INSERT through the same pool (counts, not ns)",
            insert_trips,
            Goal::Report,
        )
        .with_note(format!(
            "per rotation: {statements:.2} SQL statements, {transactions:.2} explicit \
             transactions, {rotation_trips:.2} round trips on the wire (Sync/Query messages \
             counted by a proxy; {insert_trips:.2} for one INSERT): one for the statement and \
             one for the ping sqlx sends when a connection goes back to the pool, off the \
             request path"
        )),
    }
}
