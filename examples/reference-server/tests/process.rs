//! The binary as an operator runs it: bad configuration stops the start with one clear line,
//! SIGTERM shuts it down gracefully, and the structured logs carry the security events but no
//! secret and no plaintext token.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::string_slice,
    clippy::type_complexity,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use common::*;
use portcullis_rotation::ClientStore as _;
use reqwest::StatusCode;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_reference-server");

fn run_to_end(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("HMAC_SECRET")
        .env_remove("PORTCULLIS_ISSUER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_configuration_stops_with_one_clear_line() {
    let cases: Vec<(Vec<&str>, Vec<(&str, &str)>, &str)> = vec![
        (
            vec!["--issuer", "https://auth.example"],
            vec![],
            "HMAC_SECRET",
        ),
        (
            vec!["--issuer", "https://auth.example"],
            vec![("HMAC_SECRET", "too-short-secret")],
            "at least 32 bytes",
        ),
        (vec!["--dev", "--issuer", "not a url"], vec![], "--issuer"),
        (
            vec!["--dev", "--issuer", "http://auth.example"],
            vec![],
            "https",
        ),
        (
            vec!["--dev", "--store", "redis://127.0.0.1:1"],
            vec![],
            "--store: ",
        ),
        (
            vec!["--dev", "--store", "postgres://u@127.0.0.1:1/db"],
            vec![],
            "--store: ",
        ),
        (vec!["--dev", "--store", "mysql://x"], vec![], "--store"),
        (vec!["--dev", "--grace-window", "1h"], vec![], "grace"),
        (
            vec!["--dev", "--token-rate-limit", "0/min"],
            vec![],
            "token-rate-limit",
        ),
        (
            vec!["--dev", "--listen", "127.0.0.1:99999"],
            vec![],
            "--listen",
        ),
        (
            vec!["--dev", "--upstream-issuer", "https://idp.example"],
            vec![],
            "cannot be used with",
        ),
        (
            vec![
                "--issuer",
                "https://a.example",
                "--upstream-issuer",
                "https://idp.example",
                "--upstream-audience",
                "a",
                "--idp-login-url",
                "http://idp.example/login",
            ],
            vec![("HMAC_SECRET", "0123456789abcdef0123456789abcdef")],
            "--idp-login-url",
        ),
        (vec!["--bogus-flag"], vec![], "--bogus-flag"),
    ];
    for (args, env, expected) in cases {
        let (code, stderr) = run_to_end(&args, &env);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(lines[0].contains(expected), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("too-short-secret"),
            "a secret was echoed: {stderr}"
        );
    }
    // a port already in use
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let (code, stderr) = run_to_end(&["--dev", "--listen", &addr], &[]);
    assert_eq!(code, 2);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("error: cannot listen on")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    fn spawn(args: &[&str]) -> (Self, String) {
        let mut child = Command::new(BIN)
            .args(args)
            .env_remove("HMAC_SECRET")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = Self {
            child,
            lines: rx,
            seen: Vec::new(),
        };
        let addr = loop {
            let line = p
                .lines
                .recv_timeout(Duration::from_secs(20))
                .expect("server did not start");
            p.seen.push(line.clone());
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
            if v["message"] == "reference server listening" {
                break v["listen"].as_str().unwrap().to_owned();
            }
        };
        (p, addr)
    }

    fn terminate(mut self) -> (bool, Vec<String>) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(l);
        }
        (status.success(), self.seen)
    }
}

// covers MCP-SEC-a (no secret or token in logs), and the SIGTERM requirement
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_security_events_but_no_secrets_and_sigterm_stops_gracefully() {
    let (p, addr) = Proc::spawn(&[
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--log",
        "debug",
    ]);
    let s = Srv {
        running: None,
        base: format!("http://{addr}"),
        http: client(),
        user_suffix: String::new(),
    };
    let c = s.public_client().await;
    let rs = s.confidential_client("client_secret_basic").await;
    let cookie = s.login("logged-user").await;
    let q = s.code_for(&c.id, &cookie, &[], &["profile"]).await;
    let code = q["code"].clone();
    let r = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB_PORT),
            ("code_verifier", VERIFIER),
            ("client_id", &c.id),
        ])
        .await;
    let t: Value = r.json_body().await;
    let (at, rt) = (
        t["access_token"].as_str().unwrap().to_owned(),
        t["refresh_token"].as_str().unwrap().to_owned(),
    );
    let t2: Value = s.refresh(&c, &rt).await.json_body().await;
    let rt2 = t2["refresh_token"].as_str().unwrap().to_owned();
    // a replay: the security event must be logged
    assert_eq!(s.refresh(&c, &rt).await.status(), StatusCode::BAD_REQUEST);
    let _ = s.introspect(&rs, &at).await;
    let (ok, lines) = p.terminate();
    assert!(ok, "SIGTERM must end the server with success");
    let log = lines.join("\n");
    assert!(log.contains("refresh_replay_detected"), "{log}");
    assert!(log.contains("grant family revoked"));
    assert!(log.contains("shutdown signal received"));
    assert!(log.contains("server stopped"));
    let jwt = cookie.split_once('=').unwrap().1;
    let mut secrets = vec![
        code.as_str(),
        at.as_str(),
        rt.as_str(),
        rt2.as_str(),
        jwt,
        VERIFIER,
    ];
    let secret = rs.secret.clone().unwrap();
    secrets.push(&secret);
    for sec in secrets {
        // even a 20-character piece of the secret part would be a leak
        let piece = &sec[4..24];
        assert!(
            !log.contains(piece),
            "a secret or token reached the logs: {piece}"
        );
    }
    for line in &lines {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not structured: {line}"
        );
    }
}

fn srv_at(addr: &str, user_suffix: &str) -> Srv {
    Srv {
        running: None,
        base: format!("http://{addr}"),
        http: client(),
        user_suffix: user_suffix.to_owned(),
    }
}

/// Two server processes on one Redis (`--store redis://…`, one HMAC key, as instances of one
/// deployment): a client registered through one is known to the other, a refresh token minted
/// by one is refreshed by the other, 32 requests split between both race one refresh token
/// (exactly one succeeds in all), and a replay seen by either revokes the family for both.
// covers 6749-10.10-a, 9700-2.2.2-a (across processes)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_redis_share_grants_and_race_one_refresh_token() {
    let Some(url) = service("REDIS_URL") else {
        return;
    };
    let key = "two-process-test-key-two-process-test-key";
    let mut args = vec![
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--store",
        url.as_str(),
        "--hmac-secret",
        key,
    ];
    args.extend_from_slice(RELAXED);
    let (pa, addr_a) = Proc::spawn(&args);
    let (pb, addr_b) = Proc::spawn(&args);
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).unwrap();
    let suffix = format!("-{}", hex::encode(suffix));
    let a = Arc::new(srv_at(&addr_a, &suffix));
    let b = Arc::new(srv_at(&addr_b, &suffix));

    // A client registered on A, a grant minted on A, refreshed on B.
    let c = Arc::new(a.public_client().await);
    let cookie = a.login("two-procs").await;
    let (_, rt0) = a.tokens(&c, &cookie, &["profile"]).await;
    let r = b.refresh(&c, &rt0).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json_body().await;
    let rt1 = v["refresh_token"].as_str().unwrap().to_owned();
    let at1 = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(a.me(&at1).await.status(), StatusCode::OK);

    // 32 requests, half to each process, race rt1: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..32 {
        let s = Arc::clone(if i % 2 == 0 { &a } else { &b });
        let (c, rt) = (Arc::clone(&c), rt1.clone());
        tasks.push(tokio::spawn(async move {
            let r = s.refresh(&c, &rt).await;
            (r.status(), r.json_body().await)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (status, v): (StatusCode, Value) = t.await.unwrap();
        match status {
            StatusCode::OK => winners.push(v),
            StatusCode::BAD_REQUEST => assert_eq!(v["error"], "invalid_grant"),
            other => panic!("{other}: {v}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    // The losers were replays: the family is revoked on both processes.
    let won = winners[0]["refresh_token"].as_str().unwrap();
    for s in [&a, &b] {
        assert_eq!(
            error_of(s.refresh(&c, won).await, 400).await,
            "invalid_grant"
        );
    }
    let won_at = winners[0]["access_token"].as_str().unwrap();
    assert_eq!(b.me(won_at).await.status(), StatusCode::UNAUTHORIZED);

    // A replay seen by B revokes a family rotated on A.
    let (_, rt) = a.tokens(&c, &cookie, &["profile"]).await;
    let v: Value = a.refresh(&c, &rt).await.json_body().await;
    let (next_rt, next_at) = (
        v["refresh_token"].as_str().unwrap().to_owned(),
        v["access_token"].as_str().unwrap().to_owned(),
    );
    assert_eq!(
        error_of(b.refresh(&c, &rt).await, 400).await,
        "invalid_grant"
    );
    assert_eq!(
        error_of(a.refresh(&c, &next_rt).await, 400).await,
        "invalid_grant"
    );
    assert_eq!(a.me(&next_at).await.status(), StatusCode::UNAUTHORIZED);

    let (ok_a, _) = pa.terminate();
    let (ok_b, log_b) = pb.terminate();
    assert!(ok_a && ok_b);
    // The client was kept in Redis (not in either process): remove it, as registered clients
    // have no TTL.
    let conn = portcullis_redis::RedisConnection::connect(&url)
        .await
        .unwrap();
    assert!(
        portcullis_redis::RedisClientStore::new(conn)
            .delete(&c.id)
            .await
            .unwrap(),
        "the client was not in Redis"
    );
    assert!(
        log_b.join("\n").contains("refresh_replay_detected"),
        "B saw the replay and logged it"
    );
}
