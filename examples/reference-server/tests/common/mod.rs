//! Helpers for the end-to-end tests: a server on an ephemeral port with the development IdP
//! (whose JWKS the server fetches over real HTTP), and an HTTP client that does the OAuth flow.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::string_slice,
    clippy::type_complexity,
    clippy::print_stderr,
    dead_code,
    unreachable_pub
)]

use std::collections::HashMap;
use std::sync::Arc;

use clap::Parser as _;
use portcullis_core::Clock;
use reference_server::config::{Cli, Settings};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;

/// RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const CB: &str = "http://127.0.0.1/cb";
pub const CB_PORT: &str = "http://127.0.0.1:53127/cb";

pub struct Srv {
    pub running: Option<reference_server::Running>,
    pub base: String,
    pub http: Client,
    /// Appended to user names on a shared store (`PORTCULLIS_E2E_STORE`), where every test
    /// server and every earlier run share one database: logging out `alice` must revoke only
    /// this test's grants. Empty on the memory store.
    pub user_suffix: String,
}

impl Drop for Srv {
    fn drop(&mut self) {
        // Servers end with the test's runtime; nothing to do.
    }
}

/// Generous limits so that tests are not rate limited unless they mean to be.
pub const RELAXED: &[&str] = &[
    "--token-rate-limit",
    "100000/min",
    "--authorize-ip-rate-limit",
    "100000/min",
    "--authorize-user-rate-limit",
    "100000/min",
    "--register-rate-limit",
    "100000/min",
];

/// `PORTCULLIS_E2E_STORE`: when set (a `postgres://` or `redis://` URL), every test server that
/// does not name its own `--store` runs on that store instead of memory, so the whole suite can
/// be run once per shared store.
pub fn e2e_store() -> Option<String> {
    std::env::var("PORTCULLIS_E2E_STORE")
        .ok()
        .filter(|v| !v.is_empty())
}

/// The URL in `var` (`REDIS_URL`, `DATABASE_URL`), or `None` after printing that the test is
/// skipped; with `PORTCULLIS_REQUIRE_SERVICES=1` a missing variable fails the test instead.
pub fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            let required = std::env::var("PORTCULLIS_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "PORTCULLIS_REQUIRE_SERVICES=1 but {var} is not set"
            );
            eprintln!("SKIPPED: {var} is not set");
            None
        }
    }
}

/// The store kind `/healthz` names for the servers of this run.
pub fn e2e_store_kind() -> &'static str {
    match e2e_store() {
        Some(u) if u.starts_with("postgres") => "postgres",
        Some(_) => "redis",
        None => "memory",
    }
}

pub fn settings(extra: &[&str]) -> Settings {
    let mut args = vec!["reference-server", "--dev", "--listen", "127.0.0.1:0"];
    let store = e2e_store();
    if let Some(url) = &store
        && !extra.contains(&"--store")
    {
        args.extend_from_slice(&["--store", url.as_str()]);
        if url.starts_with("postgres") {
            args.push("--migrate");
        }
    }
    args.extend_from_slice(extra);
    Settings::from_cli(&Cli::try_parse_from(args).unwrap()).unwrap()
}

pub async fn start(extra: &[&str]) -> Srv {
    let mut all: Vec<&str> = RELAXED.to_vec();
    all.extend_from_slice(extra);
    start_exact(&all, None).await
}

pub async fn start_exact(args: &[&str], clock: Option<Arc<dyn Clock>>) -> Srv {
    let s = settings(args);
    let running = match clock {
        Some(c) => reference_server::start_with_clock(s, c).await.unwrap(),
        None => reference_server::start(s).await.unwrap(),
    };
    let base = running.issuer().to_owned();
    let user_suffix = if e2e_store().is_some() {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).unwrap();
        format!("-{}", hex::encode(b))
    } else {
        String::new()
    };
    Srv {
        running: Some(running),
        base,
        http: client(),
        user_suffix,
    }
}

pub fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub struct Registered {
    pub id: String,
    pub secret: Option<String>,
    pub body: Value,
}

pub fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The query parameters of a URL.
pub fn query_of(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

pub fn location(r: &Response) -> Option<String> {
    r.headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
}

impl Srv {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn register_json(&self, doc: Value) -> Response {
        self.http
            .post(self.url("/register"))
            .header("content-type", "application/json")
            .body(doc.to_string())
            .send()
            .await
            .unwrap()
    }

    /// A public client (`none`) with refresh, redirecting to `CB`.
    pub async fn public_client(&self) -> Registered {
        self.register(serde_json::json!({
            "redirect_uris": [CB],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": "Test public client",
        }))
        .await
    }

    pub async fn confidential_client(&self, method: &str) -> Registered {
        self.register(serde_json::json!({
            "redirect_uris": [CB],
            "token_endpoint_auth_method": method,
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": "Test confidential client",
        }))
        .await
    }

    pub async fn register(&self, doc: Value) -> Registered {
        let r = self.register_json(doc).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json_body().await;
        Registered {
            id: body["client_id"].as_str().unwrap().to_owned(),
            secret: body["client_secret"].as_str().map(str::to_owned),
            body,
        }
    }

    /// Sign in at the development IdP; returns the `Cookie` header value.
    /// The user name the server sees for `user` (see [`Srv::user_suffix`]).
    pub fn user(&self, user: &str) -> String {
        format!("{user}{}", self.user_suffix)
    }

    pub async fn login(&self, user: &str) -> String {
        let r = self
            .http
            .post(self.url("/dev/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("username", &self.user(user))]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let set = r.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
        set.split(';').next().unwrap().to_owned()
    }

    pub fn authorize_query(&self, client_id: &str, extra: &[(&str, &str)]) -> String {
        let mut pairs = vec![
            ("client_id", client_id),
            ("redirect_uri", CB_PORT),
            ("response_type", "code"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("scope", "profile read"),
            ("state", "st-42"),
        ];
        for (k, v) in extra {
            pairs.retain(|(pk, _)| pk != k);
            if !v.is_empty() || *k == "__keep_empty" {
                pairs.push((k, v));
            }
        }
        form(&pairs)
    }

    pub async fn get_authorize(&self, query: &str, cookie: Option<&str>) -> Response {
        let mut req = self.http.get(format!("{}/authorize?{query}", self.base));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }

    /// The consent page's token for an authorization request.
    pub async fn consent_token(&self, query: &str, cookie: &str) -> String {
        let r = self.get_authorize(query, Some(cookie)).await;
        assert_eq!(r.status(), StatusCode::OK, "{:?}", location(&r));
        let page = r.text().await.unwrap();
        extract_consent_token(&page)
    }

    pub async fn post_consent(&self, cookie: &str, body: &str) -> Response {
        self.http
            .post(self.url("/authorize"))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    /// Run authorize + consent (approving `scopes`) and return the redirect's parameters.
    pub async fn code_for(
        &self,
        client_id: &str,
        cookie: &str,
        extra: &[(&str, &str)],
        scopes: &[&str],
    ) -> HashMap<String, String> {
        let q = self.authorize_query(client_id, extra);
        let token = self.consent_token(&q, cookie).await;
        let mut pairs = vec![("consent_token", token.as_str()), ("decision", "approve")];
        for s in scopes {
            pairs.push(("scope", s));
        }
        let r = self.post_consent(cookie, &form(&pairs)).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let loc = location(&r).unwrap();
        assert!(loc.starts_with(CB_PORT), "{loc}");
        query_of(&loc)
    }

    pub async fn post_form(&self, path: &str, body: &str, headers: HeaderMap) -> Response {
        self.http
            .post(self.url(path))
            .headers(headers)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    pub async fn token(&self, pairs: &[(&str, &str)]) -> Response {
        self.post_form("/token", &form(pairs), HeaderMap::new())
            .await
    }

    /// A fresh grant for a public client: (access token, refresh token).
    pub async fn tokens(&self, c: &Registered, cookie: &str, scopes: &[&str]) -> (String, String) {
        let q = self.code_for(&c.id, cookie, &[], scopes).await;
        let r = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &q["code"]),
                ("redirect_uri", CB_PORT),
                ("code_verifier", VERIFIER),
                ("client_id", &c.id),
            ])
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json_body().await;
        (
            v["access_token"].as_str().unwrap().to_owned(),
            v["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn refresh(&self, c: &Registered, rt: &str) -> Response {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", &c.id),
        ])
        .await
    }

    /// Introspect with a confidential client's credentials.
    pub async fn introspect(&self, c: &Registered, token: &str) -> Value {
        let r = self
            .post_form(
                "/introspect",
                &form(&[
                    ("token", token),
                    ("client_id", &c.id),
                    ("client_secret", c.secret.as_deref().unwrap()),
                ]),
                HeaderMap::new(),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json_body().await
    }

    pub async fn me(&self, token: &str) -> Response {
        self.http
            .get(self.url("/api/me"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap()
    }
}

pub fn extract_consent_token(page: &str) -> String {
    let marker = "name=\"consent_token\" value=\"";
    let start = page.find(marker).expect("consent page has a consent_token") + marker.len();
    let end = page[start..].find('"').unwrap() + start;
    page[start..end].to_owned()
}

pub trait JsonBody {
    async fn json_body(self) -> Value;
}

impl JsonBody for Response {
    async fn json_body(self) -> Value {
        let text = self.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    }
}

/// The `error` member of a JSON error response, after checking its status.
pub async fn error_of(r: Response, status: u16) -> String {
    assert_eq!(r.status().as_u16(), status, "{:?}", r.headers());
    let v = r.json_body().await;
    v["error"].as_str().unwrap().to_owned()
}
