//! Metadata (RFC 8414, RFC 9728), registration (RFC 7591), the demo protected resource
//! (RFC 6750), logout and the health check.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use portcullis_core::{ErrorCode, OAuthError};
use portcullis_rotation::{FamilyId, Introspection, TokenKind};
use serde_json::json;

use crate::clients;
use crate::form::{Params, content_type_is};
use crate::respond::{json, oauth_error, oauth_json, too_large};
use crate::session::{self, SessionCheck};
use crate::state::Shared;

/// The scope `/api/me` requires.
pub(crate) const ME_SCOPE: &str = "profile";

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
pub(crate) async fn as_metadata(State(shared): State<Arc<Shared>>) -> Response {
    let i = &shared.issuer;
    let mut doc = json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "registration_endpoint": format!("{i}/register"),
        "revocation_endpoint": format!("{i}/revoke"),
        "introspection_endpoint": format!("{i}/introspect"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
    });
    // RFC 8414 §3: empty arrays are omitted.
    if let (false, Some(m)) = (shared.scopes.is_empty(), doc.as_object_mut()) {
        m.insert(
            "scopes_supported".into(),
            shared.scopes.tokens().collect::<Vec<_>>().into(),
        );
    }
    json(StatusCode::OK, doc.to_string())
}

/// `GET /.well-known/oauth-protected-resource/api/me` (RFC 9728).
pub(crate) async fn resource_metadata(State(shared): State<Arc<Shared>>) -> Response {
    let mut doc = json!({
        "resource": shared.resource,
        "authorization_servers": [shared.issuer],
        "bearer_methods_supported": ["header"],
        "resource_name": "Portcullis demo resource",
    });
    if let (false, Some(m)) = (shared.scopes.is_empty(), doc.as_object_mut()) {
        m.insert(
            "scopes_supported".into(),
            shared.scopes.tokens().collect::<Vec<_>>().into(),
        );
    }
    json(StatusCode::OK, doc.to_string())
}

/// `POST /register` (RFC 7591).
pub(crate) async fn register(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return too_large(),
        Err(_) => {
            return oauth_error(
                ErrorCode::InvalidClientMetadata,
                "the body could not be read",
            );
        }
    };
    if !content_type_is(&headers, "application/json") {
        return oauth_error(
            ErrorCode::InvalidClientMetadata,
            "the body must be application/json",
        );
    }
    let now = shared.clock.now();
    let registered = clients::register(&shared.hasher, &shared.scopes, &body, now.as_secs());
    let registered = match registered {
        Ok(reg) => shared
            .clients
            .add(reg.client, now)
            .await
            .map(|client| (client, reg.secret, reg.response)),
        Err(e) => Err(e),
    };
    match registered {
        Ok((client, secret, response)) => {
            tracing::info!(
                client_id = %client.id,
                auth_method = client.auth_method.as_str(),
                confidential = secret.is_some(),
                "client registered"
            );
            json(StatusCode::CREATED, response.to_string())
        }
        Err((code, d)) => oauth_error(code, d),
    }
}

/// The `WWW-Authenticate` challenge of the demo resource (RFC 6750 §3, RFC 9728 §5.1).
fn challenge(
    shared: &Shared,
    error: Option<(ErrorCode, &str)>,
    scope: Option<&str>,
) -> HeaderValue {
    let mut v = format!("Bearer realm=\"{}\"", crate::respond::REALM);
    if let Some((code, description)) = error {
        v.push_str(&format!(
            ", error=\"{}\", error_description=\"{description}\"",
            code.as_str()
        ));
    }
    if let Some(s) = scope {
        v.push_str(&format!(", scope=\"{s}\""));
    }
    v.push_str(&format!(
        ", resource_metadata=\"{}\"",
        shared.resource_metadata
    ));
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

fn bearer_error(
    shared: &Shared,
    code: ErrorCode,
    description: &'static str,
    scope: Option<&str>,
) -> Response {
    let mut r = oauth_json(&OAuthError::new(code).describe(description));
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        challenge(shared, Some((code, description)), scope),
    );
    r
}

/// `GET /api/me`: the demo protected resource. The bearer token is read only from the
/// `Authorization` header (a token in the query string is ignored, OAuth 2.1 §5.1); it must be an
/// active access token whose audience is this resource and whose scope includes `profile`.
pub(crate) async fn me(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let in_query = Params::parse(uri.query().unwrap_or_default().as_bytes()).has("access_token");
    let mut auth = headers.get_all(header::AUTHORIZATION).iter();
    let (first, second) = (auth.next(), auth.next());
    if second.is_some() {
        return bearer_error(
            &shared,
            ErrorCode::InvalidRequest,
            "more than one Authorization header",
            None,
        );
    }
    let bearer = first.and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, rest) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
    });
    let Some(token) = bearer else {
        if first.is_some() && in_query {
            return bearer_error(
                &shared,
                ErrorCode::InvalidRequest,
                "more than one way of sending a token",
                None,
            );
        }
        // RFC 6750 §3.1: no credentials, no error attribute.
        let mut r = crate::respond::empty(StatusCode::UNAUTHORIZED);
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge(&shared, None, None));
        return r;
    };
    if in_query {
        return bearer_error(
            &shared,
            ErrorCode::InvalidRequest,
            "more than one way of sending a token",
            None,
        );
    }
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return bearer_error(
            &shared,
            ErrorCode::InvalidRequest,
            "the bearer token is malformed",
            None,
        );
    }
    let answer = match shared.grants.introspect(token).await {
        Ok(a) => a,
        Err(e) => return oauth_json(&e.oauth_error()),
    };
    let t = match answer {
        Introspection::Active(t) if t.kind == TokenKind::AccessToken => t,
        _ => {
            return bearer_error(
                &shared,
                ErrorCode::InvalidToken,
                "the access token is invalid, expired or revoked",
                None,
            );
        }
    };
    if !t.resources.iter().any(|r| r == &shared.resource) {
        // RFC 9700 §2.3, RFC 8707: a token for another audience is not accepted here.
        return bearer_error(
            &shared,
            ErrorCode::InvalidToken,
            "the access token is not for this resource",
            None,
        );
    }
    if !t.scope.contains(ME_SCOPE) {
        return bearer_error(
            &shared,
            ErrorCode::InsufficientScope,
            "the access token lacks the required scope",
            Some(ME_SCOPE),
        );
    }
    let body = json!({
        "sub": t.user_id,
        "client_id": t.client_id,
        "scope": t.scope.as_str(),
        "aud": t.resources,
        "exp": t.expires_at.as_secs(),
    });
    let mut r = json(StatusCode::OK, body.to_string());
    crate::respond::set_no_store(r.headers_mut());
    r
}

/// Whether a request is same-origin. `Sec-Fetch-Site` first: browsers set it themselves (a page
/// cannot forge it), and it stays exact where `Origin` does not: a form posted from a page
/// served with `Referrer-Policy: no-referrer` (every page here) carries `Origin: null` even
/// same-origin. Without it (an older browser), `Origin` must be absent or this issuer. A
/// non-browser client that sends neither has no ambient cookie to abuse.
pub(crate) fn same_origin(shared: &Shared, headers: &HeaderMap) -> bool {
    match headers.get("sec-fetch-site").map(HeaderValue::as_bytes) {
        Some(site) => matches!(site, b"same-origin" | b"none"),
        None => headers
            .get(header::ORIGIN)
            .is_none_or(|origin| origin.as_bytes() == shared.issuer.as_bytes()),
    }
}

/// `POST /logout`: revoke every grant of the user proven by the upstream session (never a user
/// named in the request).
pub(crate) async fn logout(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !same_origin(&shared, &headers) {
        tracing::warn!("cross-site logout request refused");
        return oauth_json(
            &OAuthError::new(ErrorCode::AccessDenied)
                .describe("cross-site requests are not allowed")
                .with_status(403),
        );
    }
    let user = match session::check(&shared, &headers).await {
        SessionCheck::Valid(s) => s.user_id,
        SessionCheck::Unavailable => {
            return oauth_error(
                ErrorCode::TemporarilyUnavailable,
                "sign-in cannot be checked right now",
            );
        }
        SessionCheck::Missing | SessionCheck::Invalid => {
            return oauth_json(
                &OAuthError::new(ErrorCode::AccessDenied)
                    .describe("a valid sign-in session is required")
                    .with_status(401),
            );
        }
    };
    match shared.grants.logout(&user).await {
        Ok(ids) => {
            tracing::info!(user_id = %user, families = ids.len(), "logout: every grant of the user revoked");
            let mut r = json(
                StatusCode::OK,
                json!({ "revoked_families": ids.len() }).to_string(),
            );
            crate::respond::set_no_store(r.headers_mut());
            if let Some(c) = crate::dev_idp::clear_cookie(&shared) {
                r.headers_mut().insert(header::SET_COOKIE, c);
            }
            r
        }
        Err(e) => oauth_json(&e.oauth_error()),
    }
}

/// `GET /healthz`: whether the grant store answers.
pub(crate) async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    // Any lookup is a round trip to the store; an all-zero family id is never issued.
    match shared
        .grants
        .store()
        .family(FamilyId::from_bytes([0; 16]))
        .await
    {
        Ok(_) => json(
            StatusCode::OK,
            json!({"status": "ok", "store": shared.store_kind}).to_string(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "health check: grant store unreachable");
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "unavailable", "store": shared.store_kind}).to_string(),
            )
        }
    }
}
