//! Response helpers and the small middlewares every route shares.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use portcullis_core::{ErrorCode, OAuthError};

/// The realm of `WWW-Authenticate` challenges.
pub(crate) const REALM: &str = "portcullis";

/// The most header bytes (names and values) a request may carry: 32 KiB. Source: room for a few
/// kilobytes of upstream session JWT in a cookie plus ordinary browser headers; hyper's own cap
/// (about 400 KiB) is far above what any legitimate request here needs.
pub(crate) const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The largest form body accepted by the OAuth endpoints: 16 KiB. Source: the longest legitimate
/// form here (a token request with a 128-character verifier and a few resources) is well under
/// 1 KiB.
pub(crate) const MAX_FORM_BYTES: usize = 16 * 1024;

/// The largest registration document accepted: 64 KiB (a client with many redirect URIs).
pub(crate) const MAX_REGISTRATION_BYTES: usize = 64 * 1024;

/// An OAuth error as a JSON response with its status.
pub(crate) fn oauth_json(err: &OAuthError) -> Response {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        err.to_json(),
    )
        .into_response()
}

/// An OAuth error from a code with a fixed description.
pub(crate) fn oauth_error(code: ErrorCode, description: &'static str) -> Response {
    oauth_json(&OAuthError::new(code).describe(description))
}

/// 401 `invalid_client` with a `Basic` challenge (RFC 6749 §5.2: required when the client tried
/// the `Authorization` header; sent always, since a 401 needs a challenge).
pub(crate) fn invalid_client() -> Response {
    let mut r = oauth_json(
        &OAuthError::new(ErrorCode::InvalidClient).describe("client authentication failed"),
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"portcullis\", charset=\"UTF-8\""),
    );
    r
}

/// 413 `invalid_request`: the body is larger than the endpoint accepts.
pub(crate) fn too_large() -> Response {
    let mut r = oauth_error(ErrorCode::InvalidRequest, "the request body is too large");
    *r.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    r
}

/// A JSON body with a status.
pub(crate) fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `Cache-Control: no-store` and `Pragma: no-cache` on every response of a route (RFC 6749
/// §5.1, OAuth 2.1 §3.2.3), including errors and rate-limit refusals.
pub(crate) async fn no_store(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    set_no_store(res.headers_mut());
    res
}

pub(crate) fn set_no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Refuse requests with more than [`MAX_HEADER_BYTES`] of headers (431), and add the headers
/// every response carries.
pub(crate) async fn guard(req: Request, next: Next) -> Response {
    let size: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    let mut res = if size > MAX_HEADER_BYTES {
        let mut r = oauth_error(ErrorCode::InvalidRequest, "request headers are too large");
        *r.status_mut() = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
        r
    } else {
        next.run(req).await
    };
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// 405 for the OAuth endpoints that take only POST, as an OAuth error body.
pub(crate) async fn post_only() -> Response {
    let mut r = oauth_error(ErrorCode::InvalidRequest, "this endpoint accepts only POST");
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}

/// 404 for unknown paths.
pub(crate) async fn not_found() -> Response {
    json(StatusCode::NOT_FOUND, r#"{"error":"not_found"}"#.to_owned())
}

/// A 303 redirect.
pub(crate) fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut().insert(header::LOCATION, v);
            r
        }
        Err(_) => oauth_error(ErrorCode::ServerError, "redirect location is not valid"),
    }
}

/// A 302 redirect.
pub(crate) fn found(location: &str) -> Response {
    let mut r = see_other(location);
    if r.status() == StatusCode::SEE_OTHER {
        *r.status_mut() = StatusCode::FOUND;
    }
    r
}

/// An empty response with a status.
pub(crate) fn empty(status: StatusCode) -> Response {
    (status, Body::empty()).into_response()
}
