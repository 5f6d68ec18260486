//! portcullis-redis rows, against the Redis at `REDIS_URL` (skipped with a note when none is
//! reachable): one limiter decision and one refresh rotation against one `PING` (and one bare
//! `INCR`) on the same connection, and decisions and rotations per second with 16 concurrent
//! tasks.
//!
//! The report is synchronous: a current-thread tokio runtime drives each call with `block_on`,
//! the same way for ours and for the baseline, so the runtime's cost falls on both sides.
#![allow(clippy::indexing_slicing, clippy::cast_precision_loss)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portcullis_core::{SecretString, SystemClock};
use portcullis_hash::{Keyring, TokenHasher};
use portcullis_pkce::CodeVerifier;
use portcullis_ratelimit::{Limit, Quota, RateLimitStore};
use portcullis_redis::{RedisConnection, RedisGrantStore, RedisRateLimitStore};
use portcullis_rotation::{
    BindingContext, CodeExchange, CodeRequest, GrantService, RefreshRequest, RotationPolicy, Scope,
};
use tokio::runtime::Runtime;

use crate::harness::{Goal, Row, Settings, compare};

const VS_PING: &str = "redis_ratelimit_vs_ping";
const VS_INCR: &str = "redis_ratelimit_vs_incr";
const ROTATION_VS_PING: &str = "redis_rotation_vs_ping";
const FLOOR: &str = "redis_script_floor_vs_ping";
const REFERENCE: &str = "redis_reference_script_vs_ping";
const LIMITER_REFERENCE: &str = "redis_reference_limiter_vs_incr";
const DECISIONS_16: &str = "redis_ratelimit_16_tasks";
const ROTATIONS_16: &str = "redis_rotations_16_tasks";

const PING: &str = "one PING on the same connection (one round trip, no work)";
const INCR: &str =
    "one bare INCR on the same connection (the INCR-then-EXPIRE recipe's steady state)";
const ONE_TASK: &str = "the same operation from 1 task (wall-clock ns per operation)";

/// A 32-byte key, as HMAC_SECRET would hold.
const KEY: &str = "0123456789abcdef0123456789abcdef";

/// Rotations per family before a chain starts a new one (a real family rotates a few times a
/// day; a family's token set should not grow for the whole measurement).
const ROTATIONS_PER_FAMILY: u32 = 256;

/// Client keys the limiter rows cycle through.
const CLIENT_KEYS: usize = 1024;

/// Concurrent tasks of the throughput rows.
const TASKS: usize = 16;

fn all_ids() -> [&'static str; 8] {
    [
        VS_PING,
        VS_INCR,
        ROTATION_VS_PING,
        FLOOR,
        REFERENCE,
        LIMITER_REFERENCE,
        DECISIONS_16,
        ROTATIONS_16,
    ]
}

fn skipped(only: &dyn Fn(&str) -> bool, why: &str) -> Vec<Row> {
    all_ids()
        .into_iter()
        .filter(|id| only(id))
        .map(|id| {
            let baseline = match id {
                VS_INCR | LIMITER_REFERENCE => INCR,
                FLOOR | REFERENCE => PING,
                DECISIONS_16 | ROTATIONS_16 => ONE_TASK,
                _ => PING,
            };
            Row::skipped(id, baseline, why)
        })
        .collect()
}

/// One family's refresh chain on a Redis store.
struct Chain {
    service: Arc<GrantService>,
    token: SecretString,
    rotations: u32,
}

async fn start_family(service: &GrantService) -> SecretString {
    let verifier = CodeVerifier::generate().unwrap();
    let issued = service
        .issue_code(CodeRequest {
            client_id: "bench-client".into(),
            redirect_uri: "https://client.example/cb".into(),
            challenge: Some(verifier.challenge()),
            scope: Scope::parse("read write").unwrap(),
            resources: vec![],
            user_id: "bench-user".into(),
            session_expires_at: None,
        })
        .await
        .unwrap();
    service
        .exchange_code(CodeExchange {
            code: issued.code.expose_secret(),
            client_id: "bench-client",
            redirect_uri: Some("https://client.example/cb"),
            code_verifier: Some(verifier.expose_secret()),
            binding: BindingContext::default(),
        })
        .await
        .unwrap()
        .refresh_token
}

impl Chain {
    async fn new(service: Arc<GrantService>) -> Self {
        let token = start_family(&service).await;
        Self {
            service,
            token,
            rotations: 0,
        }
    }

    async fn step(&mut self) {
        if self.rotations == ROTATIONS_PER_FAMILY {
            self.token = start_family(&self.service).await;
            self.rotations = 0;
        }
        let pair = self
            .service
            .refresh(RefreshRequest {
                refresh_token: self.token.expose_secret(),
                client_id: "bench-client",
                scope: None,
                binding: BindingContext::default(),
            })
            .await
            .unwrap();
        self.token = pair.refresh_token;
        self.rotations += 1;
    }
}

/// Wall-clock ns per operation of `tasks` tasks each running `op` in a loop for `span`.
fn concurrent<F, Fut>(rt: &Runtime, tasks: usize, span: Duration, op: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for t in 0..tasks {
            let (op, done) = (Arc::clone(&op), Arc::clone(&done));
            set.spawn(async move {
                let mut i = 0usize;
                while start.elapsed() < span {
                    op(t * 1_000_000 + i).await;
                    i += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        while set.join_next().await.is_some() {}
    });
    start.elapsed().as_secs_f64() * 1e9 / done.load(Ordering::Relaxed).max(1) as f64
}

/// The rows of this module.
pub fn rows(settings: Settings, only: &dyn Fn(&str) -> bool) -> Vec<Row> {
    if !all_ids().into_iter().any(only) {
        return Vec::new();
    }
    let Some(url) = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()) else {
        return skipped(only, "REDIS_URL is not set: no Redis to measure");
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let conn = match rt.block_on(RedisConnection::connect(&url)) {
        Ok(c) => c,
        Err(e) => return skipped(only, &format!("no Redis reachable: {e}")),
    };
    let prefix = format!("bench-{}", std::process::id());
    let mut rows = Vec::new();

    let limiter = RedisRateLimitStore::new(conn.clone())
        .with_prefix(&prefix)
        .unwrap();
    // Always admitted (a decision still reads, decides and writes the key's state).
    let limit = Limit::new("bench-ip", "1000000/min".parse::<Quota>().unwrap()).unwrap();
    let keys: Vec<String> = (0..CLIENT_KEYS)
        .map(|i| format!("198.51.{}.{}", i / 256, i % 256))
        .collect();
    let mut n = 0usize;
    let mut decide = || {
        n = n.wrapping_add(1);
        let d = rt
            .block_on(limiter.check(&limit, &keys[n % CLIENT_KEYS]))
            .unwrap();
        assert!(d.allowed);
    };
    let ping_conn = conn.clone();
    let ping = || {
        let mut c = ping_conn.clone();
        let _: String = rt.block_on(redis::cmd("PING").query_async(&mut c)).unwrap();
    };
    let incr_key = format!("{prefix}:incr");
    let incr = || {
        let mut c = ping_conn.clone();
        let _: i64 = rt
            .block_on(redis::cmd("INCR").arg(&incr_key).query_async(&mut c))
            .unwrap();
    };

    if only(VS_PING) {
        let (ours, base) = compare(settings, &mut decide, ping);
        rows.push(
            Row::time(VS_PING, ours, PING, base, Goal::AtMost(1.5)).with_note(
                "ours: RedisRateLimitStore::check (GCRA), one EVALSHA that reads the key's state, \
                 decides and writes it with its TTL; server TIME; 1024 client keys",
            ),
        );
    }
    if only(VS_INCR) {
        let (ours, base) = compare(settings, &mut decide, incr);
        rows.push(
            Row::time(VS_INCR, ours, INCR, base, Goal::AtMost(1.2)).with_note(
                "the recipe is fast only because it is not atomic (and a crash between INCR and \
             EXPIRE leaves a key with no TTL); ours is one atomic script",
            ),
        );
    }
    if only(LIMITER_REFERENCE) {
        // The premise of redis_ratelimit_vs_incr's goal: the simplest atomic counter, the
        // INCR-then-PEXPIRE recipe as one script, over the same keys.
        let counter = redis::Script::new(
            r"local n = redis.call('INCR', KEYS[1])
            if n == 1 then redis.call('PEXPIRE', KEYS[1], 60000) end
            return n",
        );
        let mut n = 0usize;
        let (ours, base) = compare(
            settings,
            || {
                n = n.wrapping_add(1);
                let mut c = conn.clone();
                let mut inv = counter.prepare_invoke();
                inv.key(format!("{prefix}:refrl:{}", keys[n % CLIENT_KEYS]));
                let _: i64 = rt.block_on(inv.invoke_async(&mut c)).unwrap();
            },
            incr,
        );
        rows.push(
            Row::time(LIMITER_REFERENCE, ours, INCR, base, Goal::Report).with_note(
                "the issue's premise for redis_ratelimit_vs_incr: the simplest atomic counter (INCR \
                 and, on a new key, PEXPIRE, in one script; no decision logic), 1024 keys",
            ),
        );
    }

    let service = Arc::new(GrantService::new(
        Arc::new(
            RedisGrantStore::new(conn.clone())
                .with_prefix(&prefix)
                .unwrap(),
        ),
        Arc::new(TokenHasher::new(Keyring::from_values(KEY, None).unwrap())),
        Arc::new(SystemClock),
        RotationPolicy::default(),
    ));
    if only(ROTATION_VS_PING) {
        let mut chain = rt.block_on(Chain::new(Arc::clone(&service)));
        let (ours, base) = compare(settings, || rt.block_on(chain.step()), ping);
        rows.push(
            Row::time(ROTATION_VS_PING, ours, PING, base, Goal::AtMost(1.5)).with_note(
                "ours: GrantService::refresh on RedisGrantStore (single node): parse, hash, mint \
                 and hash two tokens, one EVALSHA that checks and marks the token used and writes \
                 the successor and the access token with TTLs and adds both to the family's \
                 token set; a new family every 256 rotations",
            ),
        );
    }

    if only(FLOOR) {
        // What any script with a rotation's arguments costs before it does anything: the
        // EVALSHA call itself, its 3 keys and 7 arguments, and a rotation's packed reply.
        let empty = redis::Script::new(concat!(
            r"return {'R\n' .. ARGV[4] .. '\n\n\n' .. ARGV[7] .. '\n2\nread write\n[]\n",
            r"1797602451592120\n1796396451592623\n0\n0\n0\n0\n', 'user', 'client'}",
        ));
        let h = "1c467c7e89654a0f6776c530dedd465b8c6b11c1e0d8c41f5709f8701887c621";
        let packed =
            format!("0\n\n0\n{h}\n{h}\n1209600000000\n3600000000\n0\n0\n0\nrevoke\n1\n0\n0\n0");
        let (ours, base) = compare(
            settings,
            || {
                let mut c = conn.clone();
                let mut inv = empty.prepare_invoke();
                for kind in ["r", "r", "a"] {
                    inv.key(format!("{prefix}:{kind}:{{{h}}}"));
                }
                for a in [prefix.as_str(), "", "1", "", "client-a", packed.as_str(), h] {
                    inv.arg(a);
                }
                let _: Vec<String> = rt.block_on(inv.invoke_async(&mut c)).unwrap();
            },
            ping,
        );
        rows.push(Row::time(FLOOR, ours, PING, base, Goal::Report).with_note(
            "an empty Lua script called with a rotation's keys and arguments and returning a \
                 rotation's reply: the floor under redis_rotation_vs_ping before any work",
        ));
    }

    if only(REFERENCE) {
        // The premise of redis_rotation_vs_ping's goal, measured the same way: a script shaped
        // like a rotation with no logic at all. Six commands (TIME, read the token and its
        // family, mark the token used, write the successor and the access token with TTLs),
        // record-sized constant values, a fresh successor and access key per call, each call
        // reading the token the previous one wrote.
        let reference = redis::Script::new(
            r"redis.call('TIME')
            redis.call('GET', KEYS[1])
            redis.call('GET', KEYS[4])
            redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
            redis.call('SET', KEYS[2], ARGV[1], 'PX', 60000, 'NX')
            redis.call('SET', KEYS[3], ARGV[2], 'PX', 60000, 'NX')
            return 1",
        );
        // record-sized values, as the stores write them
        let record = concat!(
            r#"{"f":"1c467c7e89654a0f6776c530dedd465b","k":"r","g":"2","#,
            r#""p":"1c467c7e89654a0f6776c530dedd465b8c6b11c1e0d8c41f5709f8701887c621","#,
            r#""ia":"1764851234567890","ea":"1764851234567890"}"#
        );
        let access = r#"{"f":"1c467c7e89654a0f6776c530dedd465b","ia":"1764851234567890","ea":"1764851234567890"}"#;
        let family = concat!(
            r#"{"u":"bench-user","c":"bench-client","s":"read write","r":"[]","#,
            r#""ca":"1764851234567890","ex":"1764851234567890"}"#
        );
        let mut c = conn.clone();
        let _: () = rt
            .block_on(
                redis::cmd("SET")
                    .arg(format!("{prefix}:ref:f"))
                    .arg(family)
                    .arg("PX")
                    .arg(600_000)
                    .query_async(&mut c),
            )
            .unwrap();
        let mut i = 0u64;
        let (ours, base) = compare(
            settings,
            || {
                let mut c = conn.clone();
                let mut inv = reference.prepare_invoke();
                inv.key(format!("{prefix}:ref:r:{i}"))
                    .key(format!("{prefix}:ref:r:{}", i + 1))
                    .key(format!("{prefix}:ref:a:{i}"))
                    .key(format!("{prefix}:ref:f"))
                    .arg(record)
                    .arg(access);
                i += 1;
                let _: i64 = rt.block_on(inv.invoke_async(&mut c)).unwrap();
            },
            ping,
        );
        rows.push(Row::time(REFERENCE, ours, PING, base, Goal::Report).with_note(
            "the issue's premise for redis_rotation_vs_ping: a six-command script shaped like a \
             rotation (TIME, two GETs, three SETs with TTLs), constant values, no logic; \
             redis_rotation_vs_ping's goal of 1.5 leaves the rotation's logic this row's margin",
        ));
    }

    let span = settings.batch * u32::try_from(settings.batches).unwrap_or(1);
    if only(DECISIONS_16) {
        let mt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        // The connection's driver must run on the runtime that measures: connect there.
        let conn = mt.block_on(RedisConnection::connect(&url)).unwrap();
        let limiter = Arc::new(RedisRateLimitStore::new(conn).with_prefix(&prefix).unwrap());
        let keys = Arc::new(keys.clone());
        let run = |tasks: usize| {
            let (limiter, keys, limit) = (Arc::clone(&limiter), Arc::clone(&keys), limit.clone());
            concurrent(&mt, tasks, span, move |i| {
                let (limiter, keys, limit) =
                    (Arc::clone(&limiter), Arc::clone(&keys), limit.clone());
                async move {
                    let d = limiter.check(&limit, &keys[i % CLIENT_KEYS]).await.unwrap();
                    assert!(d.allowed);
                }
            })
        };
        let one = run(1);
        let many = run(TASKS);
        rows.push(
            Row::scaling(DECISIONS_16, many, ONE_TASK, one, Goal::Report).with_note(format!(
                "{:.0} decisions/s with 16 tasks on one multiplexed connection ({:.0}/s from 1 \
                 task); {} cores, the server on the same machine",
                1e9 / many,
                1e9 / one,
                std::thread::available_parallelism().map_or(0, |n| n.get())
            )),
        );
    }
    if only(ROTATIONS_16) {
        let mt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let conn = mt.block_on(RedisConnection::connect(&url)).unwrap();
        let service = Arc::new(GrantService::new(
            Arc::new(RedisGrantStore::new(conn).with_prefix(&prefix).unwrap()),
            Arc::new(TokenHasher::new(Keyring::from_values(KEY, None).unwrap())),
            Arc::new(SystemClock),
            RotationPolicy::default(),
        ));
        let run = |tasks: usize| {
            let chains: Arc<Vec<tokio::sync::Mutex<Chain>>> = Arc::new(
                (0..tasks)
                    .map(|_| tokio::sync::Mutex::new(mt.block_on(Chain::new(Arc::clone(&service)))))
                    .collect(),
            );
            concurrent(&mt, tasks, span, move |i| {
                let chains = Arc::clone(&chains);
                async move {
                    let t = (i / 1_000_000) % chains.len();
                    chains[t].lock().await.step().await;
                }
            })
        };
        let one = run(1);
        let many = run(TASKS);
        rows.push(
            Row::scaling(ROTATIONS_16, many, ONE_TASK, one, Goal::Report).with_note(format!(
                "{:.0} rotations/s with 16 tasks, each rotating its own family, on one \
                 multiplexed connection ({:.0}/s from 1 task)",
                1e9 / many,
                1e9 / one
            )),
        );
    }

    // Leave nothing behind.
    rt.block_on(async {
        let mut c = conn.clone();
        let mut cursor: u64 = 0;
        loop {
            let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}:*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut c)
                .await
                .unwrap();
            if !found.is_empty() {
                let _: i64 = redis::cmd("UNLINK")
                    .arg(&found)
                    .query_async(&mut c)
                    .await
                    .unwrap();
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    });
    rows
}
