//! End-to-end tests of the reference server over real HTTP: a server on an ephemeral port, its
//! development IdP's JWKS fetched by portcullis-jwks over HTTP, and the memory store. Each test
//! names the STANDARDS.md lines it covers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::string_slice,
    clippy::type_complexity,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use portcullis_core::{Clock, ManualClock, SystemClock};
use portcullis_hash::{OpaqueToken, TokenPrefix};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

// covers 6749-4.1.2-a, 9700-2.2.2-a, 21-4.3.1-a, 7009-2-a, 7009-2.1-b, 7662-2.2-a, MCP-SEC-a
#[tokio::test]
async fn whole_flow_on_the_memory_store() {
    let s = start(&[]).await;
    // register (a public client, as an MCP client would) and a confidential one to introspect
    let c = s.public_client().await;
    let rs = s.confidential_client("client_secret_post").await;
    // authorize without a session: sent to the IdP, and back to this very request
    let q = s.authorize_query(&c.id, &[]);
    let r = s.get_authorize(&q, None).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let login = location(&r).unwrap();
    assert!(login.starts_with("/dev/login?return_to="), "{login}");
    assert_eq!(query_of(&login)["return_to"], format!("/authorize?{q}"));
    // sign in, consent, code
    let cookie = s.login("alice").await;
    let back = s.code_for(&c.id, &cookie, &[], &["profile", "read"]).await;
    assert_eq!(back["state"], "st-42");
    assert_eq!(back["iss"], s.base);
    // token
    let r = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &back["code"]),
            ("redirect_uri", CB_PORT),
            ("code_verifier", VERIFIER),
            ("client_id", &c.id),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json_body().await;
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "profile read");
    let (at1, rt1) = (
        t["access_token"].as_str().unwrap().to_owned(),
        t["refresh_token"].as_str().unwrap().to_owned(),
    );
    // resource
    let me: Value = s.me(&at1).await.json_body().await;
    assert_eq!(me["sub"], s.user("alice"));
    assert_eq!(me["aud"][0], format!("{}/api/me", s.base));
    // refresh rotates
    let r = s.refresh(&c, &rt1).await;
    assert_eq!(r.status(), StatusCode::OK);
    let t2: Value = r.json_body().await;
    let rt2 = t2["refresh_token"].as_str().unwrap().to_owned();
    let at2 = t2["access_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    assert_eq!(s.introspect(&rs, &rt2).await["active"], true);
    // replay of the rotated-out token: invalid_grant, and the whole family is revoked
    assert_eq!(
        error_of(s.refresh(&c, &rt1).await, 400).await,
        "invalid_grant"
    );
    assert_eq!(s.introspect(&rs, &rt2).await, json!({"active": false}));
    assert_eq!(s.introspect(&rs, &at2).await, json!({"active": false}));
    assert_eq!(s.me(&at2).await.status(), StatusCode::UNAUTHORIZED);
    // a second grant, revoked through RFC 7009 by its refresh token: its access token dies too
    let (at3, rt3) = s.tokens(&c, &cookie, &["profile"]).await;
    let active = s.introspect(&rs, &at3).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], c.id.as_str());
    assert_eq!(active["sub"], s.user("alice"));
    assert_eq!(active["scope"], "profile");
    let r = s
        .post_form(
            "/revoke",
            &form(&[("token", &rt3), ("client_id", &c.id)]),
            HeaderMap::new(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(s.introspect(&rs, &at3).await, json!({"active": false}));
    // logout revokes every remaining grant of the session's user
    let (at4, _) = s.tokens(&c, &cookie, &["profile"]).await;
    let (at5, _) = s.tokens(&c, &cookie, &["read"]).await;
    let r = s
        .http
        .post(s.url("/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json_body().await["revoked_families"], 2);
    for at in [at4, at5] {
        assert_eq!(s.me(&at).await.status(), StatusCode::UNAUTHORIZED);
    }
}

// covers 8414-2-a, 8414-3-a, 9207-2-a, 9700-2.1.1-b, MCP-AS-a, 9728-3-a, MCP-PRM-a
#[tokio::test]
async fn metadata_documents() {
    let s = start(&[]).await;
    let m: Value = s
        .http
        .get(s.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json_body()
        .await;
    assert_eq!(m["issuer"], s.base.as_str());
    for k in [
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ] {
        assert!(m[k].as_str().unwrap().starts_with(&s.base), "{k}");
    }
    assert_eq!(m["response_types_supported"], json!(["code"]));
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        json!(["none", "client_secret_basic", "client_secret_post"])
    );
    for (_, v) in m.as_object().unwrap() {
        assert_ne!(v, &json!([]), "empty arrays are omitted");
    }
    let p: Value = s
        .http
        .get(s.url("/.well-known/oauth-protected-resource/api/me"))
        .send()
        .await
        .unwrap()
        .json_body()
        .await;
    assert_eq!(p["resource"], format!("{}/api/me", s.base));
    assert_eq!(p["authorization_servers"], json!([s.base]));
}

// covers 6749-4.1.2.1-a, 6749-3.1.2.3-a, 21-2.3.1-a
#[tokio::test]
async fn bad_client_or_redirect_uri_gets_a_page_never_a_redirect() {
    let s = start(&[]).await;
    let c = s
        .register(json!({"redirect_uris": ["https://c.example/cb"], "token_endpoint_auth_method": "none"}))
        .await;
    let cookie = s.login("bob").await;
    let base = |cid: &str, ru: &str| {
        form(&[
            ("client_id", cid),
            ("redirect_uri", ru),
            ("response_type", "code"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "s"),
        ])
    };
    let cases = [
        base("pcl_unknown", "https://c.example/cb"),
        base(&c.id, "https://c.example/cb/"),
        base(&c.id, "HTTPS://c.example/cb"),
        base(&c.id, "https://evil.example/cb"),
        form(&[("client_id", &c.id), ("response_type", "code")]),
        form(&[("redirect_uri", "https://c.example/cb")]),
        format!("{}&client_id={}", base(&c.id, "https://c.example/cb"), c.id),
        format!(
            "{}&redirect_uri=https%3A%2F%2Fc.example%2Fcb",
            base(&c.id, "https://c.example/cb")
        ),
    ];
    for q in cases {
        for cookie in [None, Some(cookie.as_str())] {
            let r = s.get_authorize(&q, cookie).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{q}");
            assert!(location(&r).is_none(), "{q}");
            assert!(r.text().await.unwrap().contains("refused"));
        }
    }
    // the exact registered URI works
    let r = s
        .get_authorize(&base(&c.id, "https://c.example/cb"), Some(&cookie))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

// covers 6749-4.1.2.1-b, 21-10.1-a, 7636-4.4.1-a, 7636-4.3-a, 21-4.1.2.1-a, 9207-2-a, 6749-3.1-a, 8707-2-a, MCP-PKCE-a
#[tokio::test]
async fn request_errors_redirect_with_error_state_and_iss() {
    let s = start(&[]).await;
    let c = s.public_client().await;
    let cookie = s.login("carol").await;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("response_type", "")], "invalid_request"),
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("scope", "admin")], "invalid_scope"),
        (vec![("scope", "read  write")], "invalid_scope"),
        (vec![("resource", "/relative")], "invalid_target"),
        (
            vec![("resource", "https://x.example/api#frag")],
            "invalid_target",
        ),
        (
            vec![("resource", "https://other.example/api")],
            "invalid_target",
        ),
    ];
    for (extra, expected) in cases {
        let q = s.authorize_query(&c.id, &extra);
        let r = s.get_authorize(&q, Some(&cookie)).await;
        assert_eq!(r.status(), StatusCode::FOUND, "{extra:?}");
        let loc = location(&r).unwrap();
        assert!(loc.starts_with(CB_PORT), "{loc}");
        let p = query_of(&loc);
        assert_eq!(p["error"], expected, "{extra:?}");
        assert_eq!(p["state"], "st-42");
        assert_eq!(p["iss"], s.base);
        assert!(!p.contains_key("code"));
    }
    // a repeated parameter (after client and redirect URI are known) is invalid_request
    let q = format!("{}&scope=read", s.authorize_query(&c.id, &[]));
    let p = query_of(&location(&s.get_authorize(&q, Some(&cookie)).await).unwrap());
    assert_eq!(p["error"], "invalid_request");
    // an empty parameter counts as absent, an unknown one is ignored: state="" is not echoed
    let q = format!("{}&unknown=1", s.authorize_query(&c.id, &[("state", "")]));
    let r = s.get_authorize(&q, Some(&cookie)).await;
    assert_eq!(r.status(), StatusCode::OK);
    // resource repeated with the same value is allowed (RFC 8707), and becomes the audience
    let res = format!("{}/api/me", s.base);
    let q = format!(
        "{}&resource={}",
        s.authorize_query(&c.id, &[("resource", &res)]),
        enc(&res)
    );
    assert_eq!(
        s.get_authorize(&q, Some(&cookie)).await.status(),
        StatusCode::OK
    );
}

// covers 9700-2.1-a, 6749-4.1.2-a
#[tokio::test]
async fn loopback_port_and_registered_query_are_honoured() {
    let s = start(&[]).await;
    let c = s
        .register(json!({"redirect_uris": ["http://127.0.0.1/cb?tenant=a"], "token_endpoint_auth_method": "none"}))
        .await;
    let cookie = s.login("dave").await;
    let q = form(&[
        ("client_id", &c.id),
        ("redirect_uri", "http://127.0.0.1:53127/cb?tenant=a"),
        ("response_type", "code"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("scope", "profile"),
        ("state", "a b&c"),
    ]);
    let token = s.consent_token(&q, &cookie).await;
    let r = s
        .post_consent(
            &cookie,
            &form(&[
                ("consent_token", &token),
                ("decision", "approve"),
                ("scope", "profile"),
            ]),
        )
        .await;
    let loc = location(&r).unwrap();
    assert!(
        loc.starts_with("http://127.0.0.1:53127/cb?tenant=a&code=pca_"),
        "{loc}"
    );
    let p = query_of(&loc);
    assert_eq!(p["state"], "a b&c");
    assert_eq!(p["tenant"], "a");
}

// covers 9700-2.1-a, 21-2.3.1-a, 6749-3.1.2.3-a
#[tokio::test]
async fn only_loopback_ip_literals_may_change_the_port() {
    // RFC 8252 §7.3 / §8.3, RFC 9700 §2.1: the port exception is for the loopback IP literals;
    // `localhost` is a name (it can resolve elsewhere) and is matched exactly.
    let s = start(&[]).await;
    let cookie = s.login("lou").await;
    let c = s
        .register(json!({
            "redirect_uris": ["http://localhost/cb", "http://localhost:4000/cb", "http://[::1]/cb"],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    let q = |ru: &str| {
        form(&[
            ("client_id", &c.id),
            ("redirect_uri", ru),
            ("response_type", "code"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "s"),
        ])
    };
    for refused in [
        "http://localhost:53127/cb",
        "http://localhost:4001/cb",
        "http://LOCALHOST/cb",
    ] {
        let r = s.get_authorize(&q(refused), Some(&cookie)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{refused}");
        assert!(location(&r).is_none(), "{refused}");
    }
    for accepted in [
        "http://localhost/cb",
        "http://localhost:4000/cb",
        "http://[::1]/cb",
        "http://[::1]:53127/cb",
    ] {
        let r = s.get_authorize(&q(accepted), Some(&cookie)).await;
        assert_eq!(r.status(), StatusCode::OK, "{accepted}");
    }
}

// covers 9700-4.11.2-a, 9700-2.1-b, 9700-4.12-a
#[tokio::test]
async fn users_sign_in_before_any_redirect_and_login_never_redirects_elsewhere() {
    let s = start(&[]).await;
    let c = s.public_client().await;
    // an anonymous visitor with a bad response_type is sent to sign in, not to the client
    let q = s.authorize_query(&c.id, &[("response_type", "token")]);
    let r = s.get_authorize(&q, None).await;
    assert!(location(&r).unwrap().starts_with("/dev/login?"));
    // a junk session cookie is the same as none
    let r = s
        .get_authorize(&q, Some("hanko=eyJhbGciOiJub25lIn0.e30."))
        .await;
    assert!(location(&r).unwrap().starts_with("/dev/login?"));
    // login answers 303, and only ever back to /authorize
    for rt in [
        "https://evil.example/",
        "//evil.example/x",
        "/authorize?x=1",
    ] {
        let r = s
            .http
            .post(s.url("/dev/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("username", "eve"), ("return_to", rt)]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let loc = location(&r).unwrap();
        assert!(loc == "/" || loc == "/authorize?x=1", "{loc}");
    }
}

#[tokio::test]
async fn dev_login_refuses_cross_site_posts() {
    // Login CSRF: a page elsewhere must not sign the visitor in as the attacker's user (who
    // would then consent, and the attacker's account would receive the grant).
    let s = start(&[]).await;
    for (h, v) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let r = s
            .http
            .post(s.url("/dev/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(h, v)
            .body(form(&[
                ("username", "attacker"),
                ("return_to", "/authorize?x=1"),
            ]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{h}: {v}");
        assert!(r.headers().get("set-cookie").is_none(), "{h}: {v}");
        assert!(location(&r).is_none(), "{h}: {v}");
    }
    // the same form from the server's own page works: what a browser sends (pages here are
    // served with `Referrer-Policy: no-referrer`, so a same-origin form post says `Origin: null`)
    for headers in [
        vec![("origin", "null"), ("sec-fetch-site", "same-origin")],
        vec![("origin", s.base.as_str())],
    ] {
        let mut req = s
            .http
            .post(s.url("/dev/login"))
            .header("content-type", "application/x-www-form-urlencoded");
        for (h, v) in &headers {
            req = req.header(*h, *v);
        }
        let r = req.body(form(&[("username", "me")])).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{headers:?}");
        assert!(r.headers().get("set-cookie").is_some());
    }
}

// covers 9700-4.16-a, 9700-4.2.4-a, 9700-2.6-b, 6749-10.12-a
#[tokio::test]
async fn consent_page_and_its_csrf_token() {
    let s = start(&[]).await;
    let c = s.public_client().await;
    let cookie = s.login("frank").await;
    let q = s.authorize_query(&c.id, &[("scope", "profile read write")]);
    let r = s
        .http
        .get(format!("{}/authorize?{q}", s.base))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert_eq!(r.headers()["cache-control"], "no-store");
    let page = r.text().await.unwrap();
    assert!(page.contains("Test public client"));
    for scope in ["profile", "read", "write"] {
        assert!(
            page.contains(&format!("name=\"scope\" value=\"{scope}\"")),
            "{scope}"
        );
    }
    assert!(page.contains("name=\"decision\" value=\"approve\""));
    assert!(page.contains("name=\"decision\" value=\"deny\""));
    for third_party in ["src=", "<script", "<link", "<img", "@import", "url("] {
        assert!(!page.contains(third_party), "{third_party}");
    }
    let token = extract_consent_token(&page);
    // no token, a made-up token, the right token from another session: all refused, no redirect
    let other = s.login("mallory").await;
    for (body, who) in [
        (
            form(&[("decision", "approve"), ("scope", "profile")]),
            &cookie,
        ),
        (
            form(&[("consent_token", "pcc_nope"), ("decision", "approve")]),
            &cookie,
        ),
        (
            form(&[("consent_token", &token), ("decision", "approve")]),
            &other,
        ),
    ] {
        let r = s.post_consent(who, &body).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        assert!(location(&r).is_none());
    }
    // the token was used up by the attempt from the other session: single use
    let r = s
        .post_consent(
            &cookie,
            &form(&[("consent_token", &token), ("decision", "approve")]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // a fresh one works once
    let token = s.consent_token(&q, &cookie).await;
    let body = form(&[
        ("consent_token", &token),
        ("decision", "approve"),
        ("scope", "read"),
    ]);
    assert_eq!(
        s.post_consent(&cookie, &body).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        s.post_consent(&cookie, &body).await.status(),
        StatusCode::BAD_REQUEST
    );
}

// covers 6749-4.1.2.1-b, 9700-4.12-a
#[tokio::test]
async fn deny_redirects_with_access_denied() {
    let s = start(&[]).await;
    let c = s.public_client().await;
    let cookie = s.login("gina").await;
    let token = s
        .consent_token(&s.authorize_query(&c.id, &[]), &cookie)
        .await;
    let r = s
        .post_consent(
            &cookie,
            &form(&[("consent_token", &token), ("decision", "deny")]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let p = query_of(&location(&r).unwrap());
    assert_eq!(p["error"], "access_denied");
    assert_eq!(p["state"], "st-42");
    assert_eq!(p["iss"], s.base);
}

async fn code(s: &Srv, c: &Registered, cookie: &str) -> String {
    s.code_for(&c.id, cookie, &[], &["profile"]).await["code"].clone()
}

fn code_req<'a>(code: &'a str, client: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CB_PORT),
        ("code_verifier", verifier),
        ("client_id", client),
    ]
}

// covers 6749-4.1.2-b, 21-7.5.2-a, 6749-10.10-a
#[tokio::test]
async fn code_is_single_use_and_a_replay_revokes_its_tokens() {
    let s = start(&[]).await;
    let c = s.public_client().await;
    let rs = s.confidential_client("client_secret_basic").await;
    let cookie = s.login("hank").await;
    let code = code(&s, &c, &cookie).await;
    // 53 characters: pca_ + 43 base62 digits (256 bits from the CSPRNG) + checksum
    assert!(OpaqueToken::parse(TokenPrefix::CODE, &code).is_ok());
    let r = s.token(&code_req(&code, &c.id, VERIFIER)).await;
    let t: Value = r.json_body().await;
    let at = t["access_token"].as_str().unwrap().to_owned();
    assert!(OpaqueToken::parse(TokenPrefix::ACCESS, &at).is_ok());
    // a replay with a wrong verifier is refused and revokes nothing
    let bad = "a".repeat(43);
    assert_eq!(
        error_of(s.token(&code_req(&code, &c.id, &bad)).await, 400).await,
        "invalid_grant"
    );
    assert_eq!(s.introspect(&rs, &at).await["active"], true);
    // a valid replay is refused and revokes what the first redemption issued
    assert_eq!(
        error_of(s.token(&code_req(&code, &c.id, VERIFIER)).await, 400).await,
        "invalid_grant"
    );
    assert_eq!(s.introspect(&rs, &at).await, json!({"active": false}));
}

// covers 6749-4.1.2-c
#[tokio::test]
async fn an_old_code_is_refused() {
    if skip_on_redis_time("an_old_code_is_refused") {
        return;
    }
    let clock = ManualClock::new(SystemClock.now());
    let handle = clock.clone();
    let mut args = RELAXED.to_vec();
    args.extend(["--code-lifetime", "10m"]);
    let s = start_exact(&args, Some(Arc::new(clock) as Arc<dyn Clock>)).await;
    let c = s.public_client().await;
    let cookie = s.login("ivy").await;
    let code = code(&s, &c, &cookie).await;
    handle.advance(Duration::from_secs(10 * 60 + 1));
    assert_eq!(
        error_of(s.token(&code_req(&code, &c.id, VERIFIER)).await, 400).await,
        "invalid_grant"
    );
}

// covers 6749-4.1.3-a, 21-10.2-a, 9700-2.1.1-a, 21-4.1.3-a, 7636-4.6-a, 7636-4.1-a, 7636-B-a
#[tokio::test]
async fn code_exchange_checks_client_redirect_uri_and_verifier() {
    let s = start(&[]).await;
    let c = s.public_client().await;
    let other = s.public_client().await;
    let cookie = s.login("jack").await;
    let code = code(&s, &c, &cookie).await;
    let (v42, v129) = ("a".repeat(42), "a".repeat(129));
    let (plus, eq, slash) = (format!("{v42}+"), format!("{v42}="), format!("{v42}/"));
    let cases: Vec<(Vec<(&str, &str)>, u16, &str)> = vec![
        (code_req(&code, &other.id, VERIFIER), 400, "invalid_grant"),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", VERIFIER),
                ("client_id", &c.id),
            ],
            400,
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", VERIFIER),
                ("client_id", &c.id),
            ],
            400,
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB_PORT),
                ("client_id", &c.id),
            ],
            400,
            "invalid_grant",
        ),
        (
            code_req(&code, &c.id, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK"),
            400,
            "invalid_grant",
        ),
        (code_req(&code, &c.id, &v42), 400, "invalid_grant"),
        (code_req(&code, &c.id, &v129), 400, "invalid_grant"),
        (code_req(&code, &c.id, &plus), 400, "invalid_grant"),
        (code_req(&code, &c.id, &eq), 400, "invalid_grant"),
        (code_req(&code, &c.id, &slash), 400, "invalid_grant"),
    ];
    for (req, status, err) in cases {
        assert_eq!(error_of(s.token(&req).await, status).await, err, "{req:?}");
    }
    // none of those consumed the code: the right request still works (the Appendix B pair)
    assert_eq!(
        s.token(&code_req(&code, &c.id, VERIFIER)).await.status(),
        StatusCode::OK
    );
}

// covers 6749-5.1-a, 21-3.2.3-a, 6749-5.2-a
#[tokio::test]
async fn token_responses_are_never_cached_and_errors_are_rfc_json() {
    let s = start(&[]).await;
    let c = s.public_client().await;
    let cookie = s.login("kim").await;
    let code = code(&s, &c, &cookie).await;
    let ok = s.token(&code_req(&code, &c.id, VERIFIER)).await;
    let bad = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "junk"),
            ("client_id", &c.id),
        ])
        .await;
    let unauth = s
        .token(&[("grant_type", "refresh_token"), ("refresh_token", "junk")])
        .await;
    let get = s.http.get(s.url("/token")).send().await.unwrap();
    for r in [&ok, &bad, &unauth, &get] {
        assert_eq!(r.headers()["cache-control"], "no-store", "{}", r.status());
        assert_eq!(r.headers()["pragma"], "no-cache", "{}", r.status());
    }
    let t: Value = ok.json_body().await;
    assert!(
        t["access_token"].is_string() && t["token_type"] == "Bearer" && t["scope"] == "profile"
    );
    for (r, status) in [(bad, 400), (unauth, 401)] {
        assert_eq!(r.status().as_u16(), status);
        let text = r.text().await.unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let allowed = [
            "invalid_request",
            "invalid_client",
            "invalid_grant",
            "unauthorized_client",
            "unsupported_grant_type",
            "invalid_scope",
        ];
        assert!(allowed.contains(&v["error"].as_str().unwrap()));
        let d = v["error_description"].as_str().unwrap_or("");
        assert!(
            d.bytes()
                .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
        );
    }
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    let raw = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

// covers 6749-5.2-b, 6749-2.3.1-a, 9700-2.5-a, 21-2.4.1-a, 6749-6-a
#[tokio::test]
async fn confidential_client_authentication() {
    let s = start(&[]).await;
    let c = s.confidential_client("client_secret_basic").await;
    assert!(c.secret.as_deref().unwrap().starts_with("pcs_"));
    assert_eq!(c.body["client_secret_expires_at"], 0);
    let secret = c.secret.clone().unwrap();
    let cookie = s.login("lee").await;
    let code = code(&s, &c, &cookie).await;
    let mut req = code_req(&code, &c.id, VERIFIER);
    req.retain(|(k, _)| *k != "client_id");
    let body = form(&req);
    // wrong secret over Basic: 401 with a Basic challenge
    let mut h = HeaderMap::new();
    h.insert("authorization", basic(&c.id, "pcs_wrong").parse().unwrap());
    let r = s.post_form("/token", &body, h).await;
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=")
    );
    assert_eq!(error_of(r, 401).await, "invalid_client");
    // the right secret with junk after a raw `&` is a different secret
    let mut h = HeaderMap::new();
    let raw = format!("{}:{}&junk", c.id, c.secret.as_deref().unwrap());
    use base64::Engine as _;
    let junk = base64::engine::general_purpose::STANDARD.encode(raw);
    h.insert("authorization", format!("Basic {junk}").parse().unwrap());
    assert_eq!(
        error_of(s.post_form("/token", &body, h).await, 401).await,
        "invalid_client"
    );
    // no secret at all for a confidential client: refused
    let mut with_id = req.clone();
    with_id.push(("client_id", &c.id));
    assert_eq!(
        error_of(s.token(&with_id).await, 401).await,
        "invalid_client"
    );
    // a secret in the query string is refused
    let r = s
        .http
        .post(format!("{}/token?client_secret={}", s.base, enc(&secret)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&with_id))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r, 400).await, "invalid_request");
    // both methods at once: invalid_request
    let mut h = HeaderMap::new();
    h.insert("authorization", basic(&c.id, &secret).parse().unwrap());
    let mut both = with_id.clone();
    both.push(("client_secret", &secret));
    assert_eq!(
        error_of(s.post_form("/token", &form(&both), h).await, 400).await,
        "invalid_request"
    );
    // Basic with the id percent-encoded beyond need (form-urlencoded first): accepted
    let mut h = HeaderMap::new();
    let odd_id = c.id.replace('_', "%5F");
    let raw = format!("{odd_id}:{}", enc(&secret));
    h.insert(
        "authorization",
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
        .parse()
        .unwrap(),
    );
    let r = s.post_form("/token", &body, h).await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json_body().await;
    let rt = t["refresh_token"].as_str().unwrap();
    // client_secret_post works too, and the new refresh token keeps the scope
    let r = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", &c.id),
            ("client_secret", &secret),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t2: Value = r.json_body().await;
    assert_eq!(t2["scope"], "profile");
    // a confidential client's refresh without authentication is refused
    let rt2 = t2["refresh_token"].as_str().unwrap();
    assert_eq!(
        error_of(
            s.token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt2),
                ("client_id", &c.id)
            ])
            .await,
            401
        )
        .await,
        "invalid_client"
    );
}

// covers 6749-6-a, 9700-4.14.2-a
#[tokio::test]
async fn refresh_is_bound_to_client_and_scope() {
    let s = start(&[]).await;
    let c = s.public_client().await;
    let other = s.public_client().await;
    let cookie = s.login("max").await;
    let (_, rt) = s.tokens(&c, &cookie, &["profile", "read"]).await;
    // another client's refresh token
    assert_eq!(
        error_of(s.refresh(&other, &rt).await, 400).await,
        "invalid_grant"
    );
    // a wider scope
    let r = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", &c.id),
            ("scope", "profile read write"),
        ])
        .await;
    assert_eq!(error_of(r, 400).await, "invalid_scope");
    // a tampered token
    let mut tampered = rt.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    assert_eq!(
        error_of(s.refresh(&c, &tampered).await, 400).await,
        "invalid_grant"
    );
    // none of that harmed the grant: a narrower scope works, and the next token keeps the grant
    let r = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", &c.id),
            ("scope", "read"),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json_body().await;
    assert_eq!(t["scope"], "read");
    let r = s.refresh(&c, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.json_body().await["scope"], "profile read");
}

// covers 9700-4.14.2-a
#[tokio::test]
async fn refresh_tokens_expire_after_inactivity() {
    if skip_on_redis_time("refresh_tokens_expire_after_inactivity") {
        return;
    }
    let clock = ManualClock::new(SystemClock.now());
    let handle = clock.clone();
    let mut args = RELAXED.to_vec();
    args.extend(["--refresh-idle-lifetime", "30m"]);
    let s = start_exact(&args, Some(Arc::new(clock) as Arc<dyn Clock>)).await;
    let c = s.public_client().await;
    let cookie = s.login("nia").await;
    let (_, rt) = s.tokens(&c, &cookie, &["profile"]).await;
    handle.advance(Duration::from_secs(31 * 60));
    assert_eq!(
        error_of(s.refresh(&c, &rt).await, 400).await,
        "invalid_grant"
    );
}

// covers 9700-2.4-a, 21-10.1-a, 6749-3.1-a
#[tokio::test]
async fn other_grant_types_and_methods() {
    let s = start(&[]).await;
    let c = s.public_client().await;
    for g in [
        "password",
        "client_credentials",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
    ] {
        let r = s
            .token(&[
                ("grant_type", g),
                ("client_id", &c.id),
                ("username", "a"),
                ("password", "b"),
            ])
            .await;
        assert_eq!(error_of(r, 400).await, "unsupported_grant_type", "{g}");
    }
    assert_eq!(
        error_of(s.token(&[("client_id", &c.id)]).await, 400).await,
        "invalid_request"
    );
    let r = s
        .http
        .get(s.url("/token?grant_type=refresh_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", &c.id),
        ])
        .await;
    assert_eq!(error_of(r, 400).await, "invalid_request");
}

// covers 9700-2.2.2-a, 21-4.3.1-a
#[tokio::test]
async fn fifty_concurrent_refreshes_of_one_token() {
    let s = start(&[]).await;
    let c = s.public_client().await;
    let rs = s.confidential_client("client_secret_post").await;
    let cookie = s.login("olga").await;
    let (at, rt) = s.tokens(&c, &cookie, &["profile"]).await;
    let s = Arc::new(s);
    let c = Arc::new(c);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (s, c, rt) = (Arc::clone(&s), Arc::clone(&c), rt.clone());
        tasks.push(tokio::spawn(async move {
            let r = s.refresh(&c, &rt).await;
            let status = r.status();
            let v: Value = r.json_body().await;
            (status, v)
        }));
    }
    let mut ok = Vec::new();
    for t in tasks {
        let (status, v) = t.await.unwrap();
        if status == StatusCode::OK {
            ok.push(v);
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(v["error"], "invalid_grant");
        }
    }
    assert_eq!(ok.len(), 1, "exactly one redemption succeeds");
    // with grace 0, the losers' presentations were replays: the family is revoked
    let winner = &ok[0];
    for t in [
        winner["refresh_token"].as_str().unwrap(),
        winner["access_token"].as_str().unwrap(),
        at.as_str(),
    ] {
        assert_eq!(s.introspect(&rs, t).await, json!({"active": false}));
    }
}

// covers 7009-2-a, 7009-2.2-a, 7009-2.1-a, 7009-2.1-b, 7009-2.1-c, 7009-2.2.1-a
#[tokio::test]
async fn revocation() {
    let s = start(&[]).await;
    let c = s.public_client().await;
    let other = s.public_client().await;
    let rs = s.confidential_client("client_secret_post").await;
    let cookie = s.login("pat").await;
    let revoke = |pairs: Vec<(&'static str, String)>| {
        let body = form(
            &pairs
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        );
        let s = &s;
        async move { s.post_form("/revoke", &body, HeaderMap::new()).await }
    };
    // unknown, malformed tokens and odd hints: 200
    for (t, hint) in [
        ("pcr_unknown", "refresh_token"),
        ("garbage", "access_token"),
        ("x", "nonsense"),
    ] {
        let r = revoke(vec![
            ("token", t.into()),
            ("token_type_hint", hint.into()),
            ("client_id", c.id.clone()),
        ])
        .await;
        assert_eq!(r.status(), StatusCode::OK, "{t}");
    }
    // an access token revoked with the wrong hint is still found
    let (at, rt) = s.tokens(&c, &cookie, &["profile"]).await;
    let r = revoke(vec![
        ("token", at.clone()),
        ("token_type_hint", "refresh_token".into()),
        ("client_id", c.id.clone()),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(s.introspect(&rs, &at).await["active"], false);
    assert_eq!(s.introspect(&rs, &rt).await["active"], true);
    // another client's token: refused, nothing changed
    let r = revoke(vec![("token", rt.clone()), ("client_id", other.id.clone())]).await;
    assert_eq!(error_of(r, 400).await, "unauthorized_client");
    assert_eq!(s.introspect(&rs, &rt).await["active"], true);
    // revoking the refresh token kills the grant's access tokens
    let r2 = s.refresh(&c, &rt).await.json_body().await;
    let (at2, rt2) = (
        r2["access_token"].as_str().unwrap().to_owned(),
        r2["refresh_token"].as_str().unwrap().to_owned(),
    );
    assert_eq!(
        revoke(vec![("token", rt2.clone()), ("client_id", c.id.clone())])
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(s.introspect(&rs, &at2).await["active"], false);
    // a well-formed token of a kind this server does not issue
    let foreign = OpaqueToken::mint(TokenPrefix::new("pcx")).unwrap();
    let r = revoke(vec![
        ("token", foreign.expose_secret().to_owned()),
        ("client_id", c.id.clone()),
    ])
    .await;
    assert_eq!(error_of(r, 400).await, "unsupported_token_type");
    // client authentication is required
    assert_eq!(
        error_of(revoke(vec![("token", rt2)]).await, 401).await,
        "invalid_client"
    );
}

// covers 7662-2.1-a, 7662-2.2-a
#[tokio::test]
async fn introspection() {
    let s = start(&[]).await;
    let c = s.public_client().await;
    let rs = s.confidential_client("client_secret_basic").await;
    let cookie = s.login("quinn").await;
    let (at, _) = s.tokens(&c, &cookie, &["profile"]).await;
    // unauthenticated, or a public client: 401, never active:false
    for body in [
        form(&[("token", &at)]),
        form(&[("token", &at), ("client_id", &c.id)]),
    ] {
        let r = s.post_form("/introspect", &body, HeaderMap::new()).await;
        assert_eq!(error_of(r, 401).await, "invalid_client");
    }
    let a = s.introspect(&rs, &at).await;
    assert_eq!(a["active"], true);
    assert_eq!(a["token_type"], "Bearer");
    assert_eq!(a["iss"], s.base.as_str());
    let code = code(&s, &c, &cookie).await;
    for junk in [
        "",
        "x",
        "pct_",
        &code,
        "pcr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &"z".repeat(5000),
    ] {
        if junk.is_empty() {
            continue;
        }
        assert_eq!(
            s.introspect(&rs, junk).await,
            json!({"active": false}),
            "{junk:.20}"
        );
    }
}

// covers 7591-3.2.1-a, 7591-3.2.2-a, 9700-2.6-a, MCP-REG-a
#[tokio::test]
async fn registration() {
    let s = start(&[]).await;
    let r = s
        .register_json(json!({
            "redirect_uris": ["https://app.example/cb", "http://[::1]/cb"],
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": "App",
            "scope": "profile read",
            "logo_uri": "https://app.example/logo.png"
        }))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: Value = r.json_body().await;
    assert!(v["client_id"].as_str().unwrap().starts_with("pcl_"));
    assert!(v["client_secret"].as_str().unwrap().starts_with("pcs_"));
    assert_eq!(v["client_secret_expires_at"], 0);
    assert_eq!(
        v["redirect_uris"],
        json!(["https://app.example/cb", "http://[::1]/cb"])
    );
    assert_eq!(v["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(
        v["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(v["client_name"], "App");
    assert_eq!(v["scope"], "profile read");
    let bad_uri = [
        json!({"redirect_uris": ["http://app.example/cb"]}),
        json!({"redirect_uris": ["https://app.example/cb#x"]}),
        json!({"redirect_uris": ["/cb"]}),
        json!({"redirect_uris": ["com.example.app:/cb"]}),
        json!({"redirect_uris": []}),
        json!({"client_name": "no uris"}),
    ];
    for doc in bad_uri {
        assert_eq!(
            error_of(s.register_json(doc.clone()).await, 400).await,
            "invalid_redirect_uri",
            "{doc}"
        );
    }
    let bad_meta = [
        json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
        json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["password"]}),
        json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
        json!({"redirect_uris": ["https://a.example/cb"], "scope": "admin"}),
        json!({"redirect_uris": ["https://a.example/cb"], "client_name": 7}),
        json!(["not an object"]),
    ];
    for doc in bad_meta {
        assert_eq!(
            error_of(s.register_json(doc.clone()).await, 400).await,
            "invalid_client_metadata",
            "{doc}"
        );
    }
}

// covers 7591-3.2.2-a
#[tokio::test]
async fn redirect_uris_that_cannot_be_sent_back_are_refused_at_registration() {
    // The URL parser drops tabs and newlines and accepts non-ASCII, but the redirect URI is
    // stored and sent back as registered: one that is not printable ASCII cannot be a
    // `Location`, so the server would mint a code and then fail with a 500.
    let s = start(&[]).await;
    for uri in [
        "https://c.exa\nmple/cb",
        "https://c.example/cb\r\nSet-Cookie: x=1",
        "https://c.example/\tcb",
        "https://c.example/caf\u{e9}",
        "https://c.example/a b",
        " https://c.example/cb",
        "https://c.example/cb\u{7f}",
    ] {
        let r = s
            .register_json(json!({"redirect_uris": [uri], "token_endpoint_auth_method": "none"}))
            .await;
        assert_eq!(error_of(r, 400).await, "invalid_redirect_uri", "{uri:?}");
    }
    // percent-encoded forms are fine, and the whole flow works with them
    let c = s
        .register(json!({
            "redirect_uris": ["https://c.example/caf%C3%A9?x=a%20b"],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    let cookie = s.login("zoe").await;
    let q = form(&[
        ("client_id", &c.id),
        ("redirect_uri", "https://c.example/caf%C3%A9?x=a%20b"),
        ("response_type", "code"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("scope", "profile"),
    ]);
    let token = s.consent_token(&q, &cookie).await;
    let r = s
        .post_consent(
            &cookie,
            &form(&[
                ("consent_token", &token),
                ("decision", "approve"),
                ("scope", "profile"),
            ]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&r)
            .unwrap()
            .starts_with("https://c.example/caf%C3%A9?x=a%20b&code=pca_")
    );
}

// covers 21-5.1-a, 6750-3-a, 9728-5.1-a, MCP-ERR-a, MCP-RES-a, MCP-PASS-a
#[tokio::test]
async fn protected_resource() {
    let s = start(&[]).await;
    let c = s.public_client().await;
    let cookie = s.login("rita").await;
    let (at, rt) = s.tokens(&c, &cookie, &["profile", "read"]).await;
    let (at_read, _) = s.tokens(&c, &cookie, &["read"]).await;
    let prm = format!(
        "resource_metadata=\"{}/.well-known/oauth-protected-resource/api/me\"",
        s.base
    );
    // no credentials: 401, a challenge without error
    let r = s.http.get(s.url("/api/me")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let ch = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        ch.starts_with("Bearer ") && ch.contains(&prm) && !ch.contains("error="),
        "{ch}"
    );
    // a valid token in the query string is ignored
    let r = s
        .http
        .get(format!("{}/api/me?access_token={at}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        !r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=")
    );
    // two methods at once
    let r = s
        .http
        .get(format!("{}/api/me?access_token={at}", s.base))
        .header("authorization", format!("Bearer {at}"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r, 400).await, "invalid_request");
    // a bad token, a refresh token, a token of another server: 401 invalid_token
    let other = start(&[]).await;
    let oc = other.public_client().await;
    let ocookie = other.login("rita").await;
    let (foreign, _) = other.tokens(&oc, &ocookie, &["profile"]).await;
    for bad in ["pct_nope", rt.as_str(), foreign.as_str()] {
        let r = s.me(bad).await;
        let ch = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(
            ch.contains("error=\"invalid_token\"") && ch.contains(&prm),
            "{ch}"
        );
        assert_eq!(error_of(r, 401).await, "invalid_token");
    }
    // insufficient scope: 403 with the scope and the metadata URL
    let r = s.me(&at_read).await;
    let ch = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        ch.contains("error=\"insufficient_scope\"")
            && ch.contains("scope=\"profile\"")
            && ch.contains(&prm),
        "{ch}"
    );
    assert_eq!(error_of(r, 403).await, "insufficient_scope");
    // the audience: a resource at /authorize and /token that is not this one is refused
    let q = s.authorize_query(&c.id, &[("resource", "https://other.example/mcp")]);
    let p = query_of(&location(&s.get_authorize(&q, Some(&cookie)).await).unwrap());
    assert_eq!(p["error"], "invalid_target");
    let res = format!("{}/api/me", s.base);
    let back = s
        .code_for(&c.id, &cookie, &[("resource", &res)], &["profile"])
        .await;
    let mut req = code_req(&back["code"], &c.id, VERIFIER);
    req.push(("resource", "https://other.example/mcp"));
    assert_eq!(error_of(s.token(&req).await, 400).await, "invalid_target");
    req.pop();
    req.push(("resource", &res));
    let t: Value = s.token(&req).await.json_body().await;
    assert_eq!(
        s.me(t["access_token"].as_str().unwrap()).await.status(),
        StatusCode::OK
    );
    assert_eq!(s.me(&at).await.status(), StatusCode::OK);
}

// covers 7009-2-a (logout variant): only the session's user, never a user from the body
#[tokio::test]
async fn logout_uses_the_session_user_and_refuses_cross_site_requests() {
    let s = start(&[]).await;
    let c = s.public_client().await;
    let alice = s.login("alice").await;
    let bob = s.login("bob").await;
    let (at_alice, _) = s.tokens(&c, &alice, &["profile"]).await;
    let (at_bob, _) = s.tokens(&c, &bob, &["profile"]).await;
    // cross-site: refused, nothing revoked
    for (h, v) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let r = s
            .http
            .post(s.url("/logout"))
            .header("cookie", &bob)
            .header(h, v)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    // no session: refused, whatever the body says
    let r = s
        .http
        .post(s.url("/logout"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user_id=alice&sub=alice")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(s.me(&at_alice).await.status(), StatusCode::OK);
    // bob's session naming alice in the body revokes bob's grants only
    let r = s
        .http
        .post(s.url("/logout"))
        .header("cookie", &bob)
        .header("origin", &s.base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user_id=alice&sub=alice")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json_body().await["revoked_families"], 1);
    assert_eq!(s.me(&at_bob).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(s.me(&at_alice).await.status(), StatusCode::OK);
}

// covers 6749-2.3.1-a (brute-force protection), 9700-gap, RLH-3-a, RLH-4-a, RLH-6-a, 6585-4-a, 9110-10.2.3-a
#[tokio::test]
async fn token_endpoint_is_rate_limited_per_ip_with_the_issue_defaults() {
    if skip_on_redis_time("token_endpoint_is_rate_limited_per_ip_with_the_issue_defaults") {
        return;
    }
    // No relaxed limits: the defaults (token 10/min per IP). Time stands still (a manual clock),
    // so no budget refills while the test runs, however slow the machine.
    let frozen = Arc::new(ManualClock::new(SystemClock.now())) as Arc<dyn Clock>;
    let s = start_exact(&[], Some(frozen)).await;
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..11 {
        let r = s
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("client_id", "c"),
                ("client_secret", "guess"),
            ])
            .await;
        statuses.push(r.status().as_u16());
        last = Some(r);
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    let r = last.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let h = r.headers();
    assert_eq!(h["cache-control"], "no-store");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    let policy = h["ratelimit-policy"].to_str().unwrap();
    assert!(
        policy.contains("q=10") && policy.contains("w=60"),
        "{policy}"
    );
    let rl = h["ratelimit"].to_str().unwrap();
    assert!(rl.contains("r=0"), "{rl}");
    let t: u64 = rl
        .split("t=")
        .nth(1)
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= t, "Retry-After {retry} is not earlier than t={t}");
    // the same budget covers revocation and introspection (they also check client secrets)
    let r = s
        .post_form(
            "/introspect",
            "token=x&client_id=c&client_secret=guess",
            HeaderMap::new(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn authorize_is_rate_limited_per_user() {
    let frozen = Arc::new(ManualClock::new(SystemClock.now())) as Arc<dyn Clock>;
    let s = start_exact(
        &[
            "--authorize-ip-rate-limit",
            "1000/min",
            "--register-rate-limit",
            "100/min",
        ],
        Some(frozen),
    )
    .await;
    let c = s.public_client().await;
    let cookie = s.login("sam").await;
    let q = s.authorize_query(&c.id, &[]);
    let mut codes = Vec::new();
    for _ in 0..21 {
        codes.push(s.get_authorize(&q, Some(&cookie)).await.status().as_u16());
    }
    assert_eq!(&codes[..20], &[200; 20]);
    assert_eq!(codes[20], 429);
    // another user from the same IP still gets through
    let other = s.login("tom").await;
    assert_eq!(
        s.get_authorize(&q, Some(&other)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn health() {
    let s = start(&[]).await;
    let v: Value = s
        .http
        .get(s.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json_body()
        .await;
    assert_eq!(v, json!({"status": "ok", "store": e2e_store_kind()}));
}

#[tokio::test]
async fn graceful_shutdown_stops_accepting() {
    let mut s = start(&[]).await;
    assert_eq!(
        s.http.get(s.url("/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );
    s.running.take().unwrap().shutdown().await;
    assert!(client().get(s.url("/healthz")).send().await.is_err());
}

// covers 9700-2.3-a, MCP-RES-a, 8707-2-a
#[tokio::test]
async fn audience_is_checked_against_the_resource() {
    let mcp = "https://mcp.example/mcp";
    let s = start(&["--resources", mcp]).await;
    let c = s.public_client().await;
    let rs = s.confidential_client("client_secret_post").await;
    let cookie = s.login("uma").await;
    // a token for another resource of this server: valid, but not for /api/me
    let back = s
        .code_for(&c.id, &cookie, &[("resource", mcp)], &["profile"])
        .await;
    let mut req = code_req(&back["code"], &c.id, VERIFIER);
    // asking /token for a resource the grant does not hold is invalid_target, and changes nothing
    req.push(("resource", "https://mcp.example/other"));
    assert_eq!(error_of(s.token(&req).await, 400).await, "invalid_target");
    req.pop();
    let me_res = format!("{}/api/me", s.base);
    req.push(("resource", &me_res));
    assert_eq!(error_of(s.token(&req).await, 400).await, "invalid_target");
    req.pop();
    req.push(("resource", mcp));
    let t: Value = s.token(&req).await.json_body().await;
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(s.introspect(&rs, at).await["aud"], json!([mcp]));
    let r = s.me(at).await;
    let ch = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(ch.contains("error=\"invalid_token\""), "{ch}");
    assert_eq!(error_of(r, 401).await, "invalid_token");
    // refresh with a resource the grant does not hold
    let rt = t["refresh_token"].as_str().unwrap();
    let r = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", &c.id),
            ("resource", &me_res),
        ])
        .await;
    assert_eq!(error_of(r, 400).await, "invalid_target");
    let r = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", &c.id),
            ("resource", mcp),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// Tests that move (or freeze) a manual clock cannot run on Redis: its store takes time from the
/// server's `TIME` (portcullis-redis' default), which a manual clock does not move; and on one
/// Redis every test server's per-IP limiter state for 127.0.0.1 is shared.
#[allow(clippy::print_stderr)] // saying why a test is skipped is the point
fn skip_on_redis_time(test: &str) -> bool {
    let skip = e2e_store_kind() == "redis";
    if skip {
        eprintln!(
            "SKIPPED {test}: on Redis time comes from the server's TIME, not the test's manual clock"
        );
    }
    skip
}

// covers 9700-2.2.2-a, 6749-4.1.2-b: a bad `resource` must not hide a replay from detection,
// and another client's token must not reveal its grant's resources.
#[tokio::test]
async fn a_bad_resource_does_not_hide_a_replay() {
    let mcp = "https://mcp.example/mcp";
    let s = start(&["--resources", mcp]).await;
    let c = s.public_client().await;
    let other = s.public_client().await;
    let cookie = s.login("rita").await;
    let back = s
        .code_for(&c.id, &cookie, &[("resource", mcp)], &["profile"])
        .await;
    let req = code_req(&back["code"], &c.id, VERIFIER);
    let t: Value = s.token(&req).await.json_body().await;
    let rt1 = t["refresh_token"].as_str().unwrap().to_owned();
    // a resource this server serves, but which the grant does not hold
    let me_res = format!("{}/api/me", s.base);
    let refresh = |rt: String, client: String, resource: Option<String>| {
        let s = &s;
        async move {
            let mut p = vec![
                ("grant_type", "refresh_token".to_owned()),
                ("refresh_token", rt),
                ("client_id", client),
            ];
            if let Some(r) = resource {
                p.push(("resource", r));
            }
            let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
            s.token(&p).await
        }
    };
    // another client presenting the token learns nothing about its resources
    let r = refresh(rt1.clone(), other.id.clone(), Some(me_res.clone())).await;
    assert_eq!(error_of(r, 400).await, "invalid_grant");
    // rotate once, then replay the rotated-out token with a resource the grant never held
    let t2: Value = refresh(rt1.clone(), c.id.clone(), None)
        .await
        .json_body()
        .await;
    let rt2 = t2["refresh_token"].as_str().unwrap().to_owned();
    let r = refresh(rt1, c.id.clone(), Some(me_res.clone())).await;
    assert_eq!(error_of(r, 400).await, "invalid_grant");
    // the replay was detected: the family is revoked, so the live token is dead too
    let r = refresh(rt2, c.id.clone(), None).await;
    assert_eq!(error_of(r, 400).await, "invalid_grant");
}

async fn post_from(s: &Srv, ua: &str, xff: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
    let mut h = HeaderMap::new();
    h.insert("user-agent", ua.parse().unwrap());
    h.insert("x-forwarded-for", xff.parse().unwrap());
    s.post_form("/token", &form(pairs), h).await
}

#[tokio::test]
async fn binding_to_the_user_agent_and_ip_through_trusted_proxies() {
    let s = start(&[
        "--binding",
        "user-agent-ip",
        "--trusted-proxies",
        "127.0.0.1",
    ])
    .await;
    let c = s.public_client().await;
    let rs = s.confidential_client("client_secret_post").await;
    let cookie = s.login("vic").await;
    let code = code(&s, &c, &cookie).await;
    let r = post_from(
        &s,
        "app/1.0",
        "203.0.113.7",
        &code_req(&code, &c.id, VERIFIER),
    )
    .await;
    let t: Value = r.json_body().await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    // same user agent, same /24 (through the trusted proxy): rotates
    let pairs = [
        ("grant_type", "refresh_token"),
        ("client_id", c.id.as_str()),
        ("refresh_token", rt.as_str()),
    ];
    let r = post_from(&s, "app/1.0", "203.0.113.99", &pairs).await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json_body().await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    // another network: the family is revoked (the default action)
    let pairs = [
        ("grant_type", "refresh_token"),
        ("client_id", c.id.as_str()),
        ("refresh_token", rt.as_str()),
    ];
    let r = post_from(&s, "app/1.0", "198.51.100.1", &pairs).await;
    assert_eq!(error_of(r, 400).await, "invalid_grant");
    assert_eq!(s.introspect(&rs, &rt).await, json!({"active": false}));
}

#[tokio::test]
async fn a_spoofed_forwarding_header_is_no_fresh_budget() {
    if skip_on_redis_time("a_spoofed_forwarding_header_is_no_fresh_budget") {
        return;
    }
    let frozen = Arc::new(ManualClock::new(SystemClock.now())) as Arc<dyn Clock>;
    let s = start_exact(&[], Some(frozen)).await;
    for i in 0..11 {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            format!("198.51.100.{i}").parse().unwrap(),
        );
        let r = s
            .post_form(
                "/token",
                "grant_type=refresh_token&refresh_token=x&client_id=c",
                h,
            )
            .await;
        let expected = if i < 10 { 401 } else { 429 };
        assert_eq!(r.status().as_u16(), expected, "request {i}");
    }
}
