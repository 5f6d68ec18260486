//! Bad input over real HTTP: malformed forms, duplicate parameters, oversized bodies and
//! headers, wrong content types, junk tokens and junk cookies. Every answer is a 4xx with the
//! right error code; never a 5xx, never a panic (the server keeps answering afterwards).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::string_slice,
    clippy::type_complexity,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::json;

const FORM_ENDPOINTS: [&str; 4] = ["/token", "/revoke", "/introspect", "/authorize"];

async fn post_raw(s: &Srv, path: &str, ct: Option<&str>, body: Vec<u8>) -> reqwest::Response {
    let mut req = s.http.post(s.url(path)).body(body);
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    req.send().await.unwrap()
}

// covers 6749-3.1-a, 6749-5.2-a
#[tokio::test]
async fn malformed_forms_and_wrong_content_types() {
    let s = start(&[]).await;
    let c = s.public_client().await;
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"&&&===&=&".to_vec(),
        b"grant_type=%ZZ%&code=%".to_vec(),
        vec![0xff, 0xfe, b'=', 0x00, b'&', 0x80],
        b"grant_type=refresh_token&refresh_token=\x00\x01".to_vec(),
        format!(
            "grant_type=refresh_token&refresh_token={}&client_id={}",
            "%F0%9F%92%A9".repeat(50),
            c.id
        )
        .into_bytes(),
        format!(
            "grant_type=authorization_code&code=pca_x&client_id={}&code_verifier=%00",
            c.id
        )
        .into_bytes(),
    ];
    for path in ["/token", "/revoke", "/introspect"] {
        for body in &bodies {
            let r = post_raw(
                &s,
                path,
                Some("application/x-www-form-urlencoded"),
                body.clone(),
            )
            .await;
            let status = r.status().as_u16();
            assert!((400..500).contains(&status), "{path} {body:?}: {status}");
            let v = r.json_body().await;
            let e = v["error"].as_str().unwrap();
            assert!(
                [
                    "invalid_request",
                    "invalid_client",
                    "invalid_grant",
                    "unsupported_grant_type"
                ]
                .contains(&e),
                "{path}: {e}"
            );
        }
        for ct in [
            None,
            Some("application/json"),
            Some("text/plain"),
            Some("multipart/form-data; boundary=x"),
            Some("application/x-www-form-urlencodedX"),
        ] {
            let r = post_raw(
                &s,
                path,
                ct,
                format!("grant_type=refresh_token&client_id={}", c.id).into_bytes(),
            )
            .await;
            assert_eq!(error_of(r, 400).await, "invalid_request", "{path} {ct:?}");
        }
    }
    // the consent form: wrong content type, garbage, no token -> 400 page, no redirect
    let cookie = s.login("u1").await;
    for (ct, body) in [
        (Some("application/json"), b"{}".to_vec()),
        (Some("application/x-www-form-urlencoded"), vec![0xff, 0x00]),
        (None, b"consent_token=x".to_vec()),
    ] {
        let mut req = s
            .http
            .post(s.url("/authorize"))
            .header("cookie", &cookie)
            .body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(r.headers().get("location").is_none());
    }
    // registration: wrong content type and broken JSON
    for (ct, body) in [
        ("text/plain", "{}"),
        ("application/json", "{\"redirect_uris\": ["),
        ("application/json", "null"),
        ("application/json", "\u{0}"),
    ] {
        let r = post_raw(&s, "/register", Some(ct), body.as_bytes().to_vec()).await;
        let e = error_of(r, 400).await;
        assert!(
            e == "invalid_client_metadata" || e == "invalid_redirect_uri",
            "{ct} {body}: {e}"
        );
    }
}

// covers 6749-3.1-a
#[tokio::test]
async fn duplicate_parameters() {
    let s = start(&[]).await;
    let c = s.public_client().await;
    let rs = s.confidential_client("client_secret_post").await;
    let secret = rs.secret.clone().unwrap();
    let cases = [
        (
            "/token",
            format!(
                "grant_type=refresh_token&refresh_token=a&refresh_token=b&client_id={}",
                c.id
            ),
        ),
        (
            "/token",
            format!(
                "grant_type=refresh_token&refresh_token=a&client_id={}&client_id={}",
                c.id, c.id
            ),
        ),
        (
            "/token",
            format!(
                "grant_type=authorization_code&code=a&code=a&client_id={}",
                c.id
            ),
        ),
        (
            "/token",
            format!(
                "grant_type=refresh_token&refresh_token=a&scope=x&scope=y&client_id={}",
                c.id
            ),
        ),
        ("/revoke", format!("token=a&token=b&client_id={}", c.id)),
        (
            "/introspect",
            format!("token=a&token=b&client_id={}&client_secret={secret}", rs.id),
        ),
        (
            "/introspect",
            format!(
                "token=a&client_id={}&client_secret={secret}&client_secret={secret}",
                rs.id
            ),
        ),
    ];
    for (path, body) in cases {
        let r = s.post_form(path, &body, HeaderMap::new()).await;
        assert_eq!(error_of(r, 400).await, "invalid_request", "{path} {body}");
    }
    // consent: a repeated consent_token or decision
    let cookie = s.login("u2").await;
    let token = s
        .consent_token(&s.authorize_query(&c.id, &[]), &cookie)
        .await;
    let r = s
        .post_consent(
            &cookie,
            &form(&[
                ("consent_token", &token),
                ("consent_token", &token),
                ("decision", "approve"),
            ]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let token = s
        .consent_token(&s.authorize_query(&c.id, &[]), &cookie)
        .await;
    let r = s
        .post_consent(
            &cookie,
            &form(&[
                ("consent_token", &token),
                ("decision", "approve"),
                ("decision", "deny"),
            ]),
        )
        .await;
    assert_eq!(query_of(&location(&r).unwrap())["error"], "invalid_request");
}

#[tokio::test]
async fn oversized_bodies_and_headers() {
    let s = start(&[]).await;
    let big = vec![b'a'; 17 * 1024];
    for path in FORM_ENDPOINTS {
        let r = post_raw(
            &s,
            path,
            Some("application/x-www-form-urlencoded"),
            big.clone(),
        )
        .await;
        let status = r.status().as_u16();
        assert!(status == 413 || status == 400, "{path}: {status}");
    }
    let r = post_raw(
        &s,
        "/token",
        Some("application/x-www-form-urlencoded"),
        big.clone(),
    )
    .await;
    assert_eq!(error_of(r, 413).await, "invalid_request");
    let r = post_raw(
        &s,
        "/register",
        Some("application/json"),
        vec![b' '; 70 * 1024],
    )
    .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // headers: one huge cookie, and many headers
    let r = s
        .http
        .get(s.url("/healthz"))
        .header("cookie", format!("hanko={}", "a".repeat(40 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let mut req = s.http.post(s.url("/token"));
    for i in 0..400 {
        req = req.header(format!("x-junk-{i}"), "b".repeat(100));
    }
    assert_eq!(
        req.send().await.unwrap().status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    // a megabyte of headers: hyper refuses it before the router (a 4xx or a closed connection),
    // and the server keeps serving
    let r = s
        .http
        .get(s.url("/healthz"))
        .header("x-huge", "c".repeat(1024 * 1024))
        .send()
        .await;
    if let Ok(r) = r {
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    assert_eq!(
        s.http.get(s.url("/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );
}

// covers 6750-3-a, 21-5.1-a
#[tokio::test]
async fn junk_tokens_and_authorization_headers() {
    let s = start(&[]).await;
    let c = s.public_client().await;
    let rs = s.confidential_client("client_secret_basic").await;
    let junk = [
        "x".to_owned(),
        "pct_".to_owned(),
        "pct_".to_owned() + &"A".repeat(49),
        "pcr_".to_owned() + &"0".repeat(49),
        "pca_€€€€".to_owned(),
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.".to_owned(),
        "a".repeat(10_000),
    ];
    for t in &junk {
        assert_eq!(
            error_of(s.refresh(&c, t).await, 400).await,
            "invalid_grant",
            "{t:.20}"
        );
        let r = s
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", t),
                ("redirect_uri", CB_PORT),
                ("code_verifier", VERIFIER),
                ("client_id", &c.id),
            ])
            .await;
        assert_eq!(error_of(r, 400).await, "invalid_grant");
        assert_eq!(s.introspect(&rs, t).await, json!({"active": false}));
        let r = s
            .post_form(
                "/revoke",
                &form(&[("token", t), ("client_id", &c.id)]),
                HeaderMap::new(),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = s.me(t).await;
        let status = r.status().as_u16();
        assert!(status == 401 || status == 400, "{t:.20}: {status}");
    }
    for h in [
        "Bearer",
        "Bearer ",
        "Basic abc",
        "Bearer a b",
        "bearer\tx",
        "Negotiate x",
        "Bearer \u{7f}",
    ] {
        let Ok(value) = reqwest::header::HeaderValue::from_str(h) else {
            continue;
        };
        let r = s
            .http
            .get(s.url("/api/me"))
            .header("authorization", value.clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(status == 400 || status == 401, "{h:?}: {status}");
        assert!(r.headers().contains_key("www-authenticate"), "{h:?}");
        let r = s
            .http
            .post(s.url("/token"))
            .header("authorization", value)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=refresh_token&refresh_token=x")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(status == 400 || status == 401, "{h:?}: {status}");
    }
    // two Authorization headers
    let r = s
        .http
        .get(s.url("/api/me"))
        .header("authorization", "Bearer a")
        .header("authorization", "Bearer b")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r, 400).await, "invalid_request");
    // Basic with junk base64 and without a colon
    for b in ["Basic !!!", "Basic YWJj", "Basic "] {
        let r = s
            .http
            .post(s.url("/introspect"))
            .header("authorization", b)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("token=x")
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r, 401).await, "invalid_client");
    }
}

// covers 9700-4.11.2-a (a junk session is no session)
#[tokio::test]
async fn junk_cookies() {
    let s = start(&[]).await;
    let c = s.public_client().await;
    let q = s.authorize_query(&c.id, &[]);
    let good = s.login("u3").await;
    let good_value = good.split_once('=').unwrap().1.to_owned();
    let mut tampered = good_value.clone();
    tampered.insert(tampered.len() / 2, 'x');
    let cookies = [
        "hanko=".to_owned(),
        "hanko=junk".to_owned(),
        "hanko=a.b.c".to_owned(),
        "hanko=eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.".to_owned(),
        "hanko=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln".to_owned(),
        format!("hanko={tampered}"),
        format!("hanko={}", "A".repeat(9000)),
        format!("{good}; hanko=junk"),
        "hanko=\"unterminated".to_owned(),
        ";;;=;hanko".to_owned(),
    ];
    for cookie in &cookies {
        let r = s.get_authorize(&q, Some(cookie)).await;
        assert_eq!(r.status(), StatusCode::FOUND, "{cookie:.40}");
        assert!(
            location(&r).unwrap().starts_with("/dev/login?"),
            "{cookie:.40}"
        );
        let r = s
            .http
            .post(s.url("/logout"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{cookie:.40}");
        let r = s
            .post_consent(cookie, "consent_token=pcc_x&decision=approve")
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    // the good cookie still works
    assert_eq!(
        s.get_authorize(&q, Some(&good)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let s = start(&[]).await;
    for (m, p) in [
        ("GET", "/nope"),
        ("DELETE", "/token"),
        ("PUT", "/register"),
        ("GET", "/logout"),
        ("GET", "/revoke"),
        ("POST", "/healthz"),
        ("GET", "/../../etc/passwd"),
    ] {
        let r = s
            .http
            .request(m.parse().unwrap(), s.url(p))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{m} {p}: {}", r.status());
    }
}
