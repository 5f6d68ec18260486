//! Load generator for the refresh grant with rotation, against any OAuth server.
//!
//! C workers each own one grant family and always present their newest refresh token, for a
//! fixed time, over one keep-alive HTTP/1.1 connection each; the report gives rotations per
//! second, p50 and p99 latency, and errors.
//!
//! ```text
//! # against any server: its token URL, a public client id and a file of refresh tokens
//! loadgen run --token-url http://127.0.0.1:8080/token --client-id pcl_… --tokens tokens.txt \
//!     --workers 16 --seconds 10
//! # obtain the tokens from a reference server started with --dev, by running the whole flow
//! # (register, dev sign-in, authorize, consent, code exchange) once per family
//! loadgen prepare --issuer http://127.0.0.1:8080 --families 16 --out tokens.txt
//! # both in one go
//! loadgen bench --issuer http://127.0.0.1:8080 --workers 16 --seconds 10
//! ```
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::string_slice,
    clippy::exit,
    missing_docs
)] // a command-line tool: printing is its job, and failing loudly is the right way to fail

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// PKCE pair used by `prepare` (RFC 7636 Appendix B).
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://127.0.0.1/cb";

struct Url {
    authority: String,
    path: String,
}

fn parse_url(u: &str) -> Url {
    let rest = u
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("only http:// URLs are supported here: {u}"));
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Url {
        authority: authority.to_owned(),
        path: path.to_owned(),
    }
}

async fn connect(authority: &str) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(authority).await.expect("connect");
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
}

struct Reply {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: Bytes,
}

async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    method: &str,
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<Reply, String> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", authority);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(body)).map_err(|e| e.to_string())?;
    sender.ready().await.map_err(|e| e.to_string())?;
    let res = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let (parts, body) = res.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// One request on a fresh connection (for the setup flow, where speed does not matter).
async fn once(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let u = parse_url(url);
    let mut s = connect(&u.authority).await;
    send(
        &mut s,
        method,
        &u.authority,
        &u.path,
        headers,
        Bytes::from(body.to_owned()),
    )
    .await
    .unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn json_str(body: &[u8], key: &str) -> String {
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)));
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_owned()
}

fn location(r: &Reply) -> String {
    r.headers
        .get("location")
        .unwrap_or_else(|| panic!("expected a redirect, got {}", r.status))
        .to_str()
        .unwrap()
        .to_owned()
}

fn query_param(url: &str, name: &str) -> String {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {name} in {url}"))
}

/// Register a public client and run the whole flow `families` times against a `--dev` reference
/// server. Returns the client id and one refresh token per family.
async fn prepare(issuer: &str, families: usize) -> (String, Vec<String>) {
    let json = [("content-type", "application/json")];
    let formh = [("content-type", "application/x-www-form-urlencoded")];
    let reg = once(
        "POST",
        &format!("{issuer}/register"),
        &json,
        &serde_json::json!({
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": "loadgen",
        })
        .to_string(),
    )
    .await;
    assert_eq!(reg.status, StatusCode::CREATED, "registration failed");
    let client_id = json_str(&reg.body, "client_id");
    let mut tokens = Vec::with_capacity(families);
    for i in 0..families {
        let login = once(
            "POST",
            &format!("{issuer}/dev/login"),
            &formh,
            &form(&[("username", &format!("loadgen-{i}"))]),
        )
        .await;
        let cookie = login.headers["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let q = form(&[
            ("client_id", &client_id),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "loadgen"),
        ]);
        let page = once(
            "GET",
            &format!("{issuer}/authorize?{q}"),
            &[("cookie", &cookie)],
            "",
        )
        .await;
        assert_eq!(
            page.status,
            StatusCode::OK,
            "authorize failed (rate limited? start the server with higher --authorize-*-rate-limit)"
        );
        let html = String::from_utf8_lossy(&page.body);
        let marker = "name=\"consent_token\" value=\"";
        let start = html.find(marker).expect("consent token") + marker.len();
        let token = &html[start..start + html[start..].find('"').unwrap()];
        let mut pairs = vec![("consent_token", token), ("decision", "approve")];
        let scopes: Vec<String> = html
            .match_indices("name=\"scope\" value=\"")
            .map(|(i, m)| {
                let s = &html[i + m.len()..];
                s[..s.find('"').unwrap()].to_owned()
            })
            .collect();
        for s in &scopes {
            pairs.push(("scope", s));
        }
        let consent = once(
            "POST",
            &format!("{issuer}/authorize"),
            &[
                ("cookie", &cookie),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            &form(&pairs),
        )
        .await;
        let code = query_param(&location(&consent), "code");
        let t = once(
            "POST",
            &format!("{issuer}/token"),
            &formh,
            &form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("client_id", &client_id),
            ]),
        )
        .await;
        assert_eq!(
            t.status,
            StatusCode::OK,
            "code exchange failed: {}",
            String::from_utf8_lossy(&t.body)
        );
        tokens.push(json_str(&t.body, "refresh_token"));
    }
    (client_id, tokens)
}

#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u32>,
    errors: u64,
    error_kinds: HashMap<String, u64>,
}

/// Extract `"refresh_token":"…"` without a full JSON parse (tokens are base62 with a prefix).
fn refresh_token_of(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    let key = "\"refresh_token\":\"";
    let start = text.find(key)? + key.len();
    let end = text[start..].find('"')? + start;
    Some(&text[start..end])
}

async fn worker(
    token_url: Arc<Url>,
    client_id: Arc<str>,
    mut refresh: String,
    stop: Arc<AtomicBool>,
    record: Arc<AtomicBool>,
) -> WorkerResult {
    let mut out = WorkerResult {
        latencies_us: Vec::with_capacity(1 << 18),
        ..WorkerResult::default()
    };
    let mut sender = connect(&token_url.authority).await;
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    while !stop.load(Ordering::Relaxed) {
        let body =
            format!("grant_type=refresh_token&refresh_token={refresh}&client_id={client_id}");
        let t0 = Instant::now();
        let reply = send(
            &mut sender,
            "POST",
            &token_url.authority,
            &token_url.path,
            &headers,
            Bytes::from(body),
        )
        .await;
        let us = t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        let recording = record.load(Ordering::Relaxed);
        match reply {
            Ok(r) if r.status == StatusCode::OK => match refresh_token_of(&r.body) {
                Some(next) => {
                    refresh = next.to_owned();
                    if recording {
                        out.latencies_us.push(us);
                    }
                }
                None => {
                    out.errors += 1;
                    *out.error_kinds
                        .entry("no refresh_token".into())
                        .or_default() += 1;
                    break;
                }
            },
            Ok(r) => {
                out.errors += 1;
                let kind = format!("{} {}", r.status.as_u16(), String::from_utf8_lossy(&r.body));
                *out.error_kinds.entry(kind).or_default() += 1;
                // The family is gone (or rate limited): nothing more this worker can do.
                break;
            }
            Err(e) => {
                out.errors += 1;
                *out.error_kinds.entry(e).or_default() += 1;
                sender = connect(&token_url.authority).await;
            }
        }
    }
    out
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx.min(sorted.len() - 1)]) / 1000.0
}

async fn run(
    token_url: &str,
    client_id: &str,
    tokens: Vec<String>,
    workers: usize,
    seconds: u64,
    warmup: u64,
) {
    assert!(
        tokens.len() >= workers,
        "{workers} workers need {workers} refresh tokens, got {}",
        tokens.len()
    );
    let url = Arc::new(parse_url(token_url));
    let client_id: Arc<str> = Arc::from(client_id);
    let stop = Arc::new(AtomicBool::new(false));
    let record = Arc::new(AtomicBool::new(warmup == 0));
    let handles: Vec<_> = tokens
        .into_iter()
        .take(workers)
        .map(|t| {
            tokio::spawn(worker(
                Arc::clone(&url),
                Arc::clone(&client_id),
                t,
                Arc::clone(&stop),
                Arc::clone(&record),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(warmup)).await;
    record.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let mut all = Vec::new();
    let mut errors = 0;
    let mut kinds: HashMap<String, u64> = HashMap::new();
    for h in handles {
        let r = h.await.unwrap();
        all.extend(r.latencies_us);
        errors += r.errors;
        for (k, v) in r.error_kinds {
            *kinds.entry(k).or_default() += v;
        }
    }
    all.sort_unstable();
    let n = all.len();
    println!("workers            {workers}");
    println!("duration           {elapsed:.1} s (after {warmup} s warm-up)");
    println!("rotations          {n}");
    println!("rotations/s        {:.0}", n as f64 / elapsed);
    println!("p50                {:.2} ms", percentile(&all, 0.50));
    println!("p99                {:.2} ms", percentile(&all, 0.99));
    println!("max                {:.2} ms", percentile(&all, 1.0));
    println!("errors             {errors}");
    for (k, v) in kinds {
        println!("  {v} x {k:.200}");
    }
    println!(
        "{}",
        serde_json::json!({
            "workers": workers,
            "seconds": elapsed,
            "rotations": n,
            "rotations_per_s": (n as f64 / elapsed).round(),
            "p50_ms": percentile(&all, 0.50),
            "p99_ms": percentile(&all, 0.99),
            "errors": errors,
        })
    );
}

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn num(args: &[String], name: &str, default: u64) -> u64 {
    arg(args, name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} takes a number"))
    })
}

const USAGE: &str = "usage:
  loadgen run --token-url URL --client-id ID --tokens FILE [--workers 16] [--seconds 10] [--warmup 2] [--threads 2]
  loadgen prepare --issuer URL [--families 16] --out FILE      (a reference server started with --dev)
  loadgen bench --issuer URL [--workers 16] [--seconds 10] [--warmup 2] [--threads 2]

The token file holds the client id on its first line (as `client_id <id>`, optional) and one refresh token per line.";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first().cloned() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let threads = num(&args, "--threads", 2) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .unwrap();
    let workers = num(&args, "--workers", 16) as usize;
    let seconds = num(&args, "--seconds", 10);
    let warmup = num(&args, "--warmup", 2);
    rt.block_on(async {
        match cmd.as_str() {
            "prepare" => {
                let issuer = arg(&args, "--issuer")
                    .expect("--issuer")
                    .trim_end_matches('/');
                let out = arg(&args, "--out").expect("--out");
                let families = num(&args, "--families", 16) as usize;
                let (client_id, tokens) = prepare(issuer, families).await;
                let mut text = format!("client_id {client_id}\n");
                for t in tokens {
                    text.push_str(&t);
                    text.push('\n');
                }
                std::fs::write(out, text).unwrap();
                println!("client_id {client_id}; {families} refresh tokens written to {out}");
            }
            "run" => {
                let file =
                    std::fs::read_to_string(arg(&args, "--tokens").expect("--tokens")).unwrap();
                let mut client_id = arg(&args, "--client-id").map(str::to_owned);
                let mut tokens = Vec::new();
                for line in file.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    match line.strip_prefix("client_id ") {
                        Some(id) => {
                            client_id.get_or_insert_with(|| id.to_owned());
                        }
                        None => tokens.push(line.to_owned()),
                    }
                }
                let url = arg(&args, "--token-url").expect("--token-url");
                run(
                    url,
                    &client_id.expect("--client-id"),
                    tokens,
                    workers,
                    seconds,
                    warmup,
                )
                .await;
            }
            "bench" => {
                let issuer = arg(&args, "--issuer")
                    .expect("--issuer")
                    .trim_end_matches('/');
                let (client_id, tokens) = prepare(issuer, workers).await;
                run(
                    &format!("{issuer}/token"),
                    &client_id,
                    tokens,
                    workers,
                    seconds,
                    warmup,
                )
                .await;
            }
            _ => {
                eprintln!("{USAGE}");
                std::process::exit(2);
            }
        }
    });
}
