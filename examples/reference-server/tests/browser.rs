//! The consent page in a real headless Chromium, driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`): sign in at the development IdP, see the consent page, untick one scope,
//! approve, and arrive at the client's redirect with a code whose token carries only the
//! remaining scope.
//!
//! Without the browser the test says it is skipped, unless `PORTCULLIS_REQUIRE_SERVICES=1`
//! (CI), where a missing browser fails it. Install: `apt-get install -y chromium chromium-driver`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::string_slice,
    clippy::type_complexity,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A minimal W3C WebDriver client: just the commands this test needs.
struct Driver {
    http: reqwest::Client,
    base: String,
    session: String,
    process: Child,
    _profile: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Driver {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = client();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.json_body().await["value"]["ready"] == true
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = std::env::temp_dir().join(format!("portcullis-chromium-{port}"));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let r = http
            .post(format!("{base}/session"))
            .json_value(&caps)
            .send()
            .await
            .unwrap();
        let v = r.json_body().await;
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_owned();
        Self {
            http,
            base,
            session,
            process,
            _profile: TempDir(profile),
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json_value(&b);
        }
        let v = req.send().await.unwrap().json_body().await;
        assert!(v["value"].get("error").is_none(), "webdriver {path}: {v}");
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn source(&self) -> String {
        self.cmd(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().unwrap().to_owned()
    }

    async fn click(&self, el: &str) {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn type_into(&self, el: &str, text: &str) {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn selected(&self, el: &str) -> bool {
        self.cmd(
            reqwest::Method::GET,
            &format!("/element/{el}/selected"),
            None,
        )
        .await
            == true
    }

    async fn wait_for_url(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let u = self.url().await;
            if u.starts_with(prefix) {
                return u;
            }
            assert!(Instant::now() < deadline, "never reached {prefix}; at {u}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn quit(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

trait JsonValue {
    fn json_value(self, v: &Value) -> Self;
}

impl JsonValue for reqwest::RequestBuilder {
    fn json_value(self, v: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(v.to_string())
    }
}

/// The client's redirect endpoint: a page that says it got a code.
async fn client_callback() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/cb",
        axum::routing::get(|| async { axum::response::Html("<p>client got the redirect</p>") }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/cb")
}

// covers 9700-4.16-a, 9700-4.2.4-a, 9700-4.12-a, 6749-4.1.2-a (in a real browser)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_in_headless_chromium() {
    let required = std::env::var("PORTCULLIS_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !std::path::Path::new(p).exists())
        .collect();
    if !missing.is_empty() {
        assert!(
            !required,
            "PORTCULLIS_REQUIRE_SERVICES=1 but {missing:?} missing: apt-get install -y chromium chromium-driver"
        );
        eprintln!(
            "SKIPPED consent_in_headless_chromium: {missing:?} not installed (apt-get install -y chromium chromium-driver)"
        );
        return;
    }
    let s = start(&[]).await;
    let c = s.public_client().await;
    let callback = client_callback().await;
    let driver = Driver::start().await;
    let q = form(&[
        ("client_id", &c.id),
        ("redirect_uri", &callback),
        ("response_type", "code"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("scope", "profile read"),
        ("state", "browser-state"),
    ]);
    driver.goto(&format!("{}/authorize?{q}", s.base)).await;
    // not signed in: the development IdP's login form
    driver.wait_for_url(&format!("{}/dev/login", s.base)).await;
    let user = driver.find("#username").await;
    driver.type_into(&user, "browser-user").await;
    let login = driver.find("#login").await;
    driver.click(&login).await;
    // back at /authorize: the consent page names the client, the user and each scope
    driver.wait_for_url(&format!("{}/authorize?", s.base)).await;
    let page = driver.source().await;
    assert!(page.contains("Test public client"), "{page}");
    assert!(page.contains("browser-user"));
    let profile = driver.find("input[name=scope][value=profile]").await;
    let read = driver.find("input[name=scope][value=read]").await;
    assert!(driver.selected(&profile).await && driver.selected(&read).await);
    driver.find("input[type=hidden][name=consent_token]").await;
    // untick `read`, approve
    driver.click(&read).await;
    assert!(!driver.selected(&read).await);
    let approve = driver.find("button[name=decision][value=approve]").await;
    driver.click(&approve).await;
    let arrived = driver.wait_for_url(&callback).await;
    driver.quit().await;
    let p = query_of(&arrived);
    assert_eq!(p["state"], "browser-state");
    assert_eq!(p["iss"], s.base);
    let r = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &p["code"]),
            ("redirect_uri", &callback),
            ("code_verifier", VERIFIER),
            ("client_id", &c.id),
        ])
        .await;
    let t = r.json_body().await;
    assert_eq!(t["scope"], "profile", "{t}");
    let me = s
        .me(t["access_token"].as_str().unwrap())
        .await
        .json_body()
        .await;
    assert_eq!(me["sub"], "browser-user");
    assert_eq!(me["scope"], "profile");
}
