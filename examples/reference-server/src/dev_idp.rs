//! The development identity provider (`--dev`): `/dev/login` signs a user in by name and sets
//! the session cookie to a JWT signed by a key generated at start; `/dev/jwks.json` publishes
//! the key. The server verifies these sessions like any IdP's: portcullis-jwks fetches the JWKS
//! over real HTTP from this very server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use portcullis_core::Clock;
use portcullis_jwks::Algorithm;
use portcullis_jwks::testing::{TestKey, jwks};

use crate::config::ConfigError;
use crate::form::{Params, is_form};
use crate::html;
use crate::respond::see_other;
use crate::session::{self, SessionCheck};
use crate::state::Shared;

/// Lifetime of a development session: 1 hour (what Hanko's default session lasts).
pub(crate) const DEV_SESSION_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// `max-age` of the development JWKS: 5 minutes (portcullis-jwks clamps it to its own bounds).
const JWKS_MAX_AGE: &str = "public, max-age=300";

/// Longest development user name.
const MAX_USERNAME_LEN: usize = 64;

/// The development IdP.
pub(crate) struct DevIdp {
    key: TestKey,
    jwks: String,
    issuer: String,
    jwks_fetch_url: String,
    secure_cookie: bool,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DevIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIdp")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl DevIdp {
    pub(crate) fn new(
        issuer: &str,
        local: SocketAddr,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        let key = TestKey::generate(Algorithm::EdDSA, Some("dev-1"))
            .map_err(|e| ConfigError::new(format!("could not generate the dev IdP key: {e}")))?;
        let jwks = jwks(&[&key]);
        // Fetch our own JWKS over loopback, whatever public name the issuer has.
        let ip = local.ip();
        let host = if ip.is_unspecified() || ip.is_loopback() {
            if ip.is_ipv6() {
                "[::1]".to_owned()
            } else {
                "127.0.0.1".to_owned()
            }
        } else {
            return Err(ConfigError::new(
                "--dev must listen on a loopback or unspecified address (the dev IdP's JWKS is fetched over loopback http)",
            ));
        };
        Ok(Self {
            key,
            jwks,
            issuer: format!("{issuer}/dev"),
            jwks_fetch_url: format!("http://{host}:{}/dev/jwks.json", local.port()),
            secure_cookie: issuer.starts_with("https://"),
            clock,
        })
    }

    pub(crate) fn issuer(&self) -> String {
        self.issuer.clone()
    }

    pub(crate) fn audience(&self) -> &'static str {
        "portcullis-dev"
    }

    pub(crate) fn jwks_fetch_url(&self) -> String {
        self.jwks_fetch_url.clone()
    }

    fn mint(&self, user: &str) -> Result<String, ()> {
        let now = self.clock.now().as_secs();
        let mut sid = [0u8; 16];
        getrandom::fill(&mut sid).map_err(|_| ())?;
        let claims = serde_json::json!({
            "iss": self.issuer,
            "aud": [self.audience()],
            "sub": user,
            "iat": now,
            "exp": now + DEV_SESSION_LIFETIME.as_secs(),
            "session_id": hex::encode(sid),
        });
        self.key.sign(&claims).map_err(|_| ())
    }
}

/// Only `/authorize` requests may be returned to after login: never an arbitrary URL
/// (RFC 9700 §4.11: no open redirector).
fn safe_return_to(r: Option<&str>) -> &str {
    match r {
        Some(r) if r.starts_with("/authorize?") && !r.contains(['\\', '\r', '\n']) => r,
        _ => "/",
    }
}

/// `GET /dev/jwks.json`.
pub(crate) async fn jwks_json(State(shared): State<Arc<Shared>>) -> Response {
    let Some(idp) = &shared.dev_idp else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, JWKS_MAX_AGE),
        ],
        idp.jwks.clone(),
    )
        .into_response()
}

/// `GET /dev/login`.
pub(crate) async fn login_form(uri: Uri) -> Response {
    let params = Params::parse(uri.query().unwrap_or_default().as_bytes());
    let return_to = safe_return_to(params.single("return_to").ok().flatten());
    html::dev_login_page(return_to, None)
}

/// `POST /dev/login`: set the session cookie and go back (303, RFC 9700 §4.12).
pub(crate) async fn login_submit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let Some(idp) = &shared.dev_idp else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Login CSRF: a form posted from another site must not sign the visitor in as someone
    // else (the attacker's user, whose account would then receive the visitor's consent).
    if !crate::endpoints::same_origin(&shared, &headers) {
        tracing::warn!("cross-site development sign-in refused");
        return html::error_page(
            StatusCode::FORBIDDEN,
            "access_denied",
            "Sign-in forms from other sites are refused.",
        );
    }
    let Ok(body) = body else {
        return html::error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The form could not be read.",
        );
    };
    if !is_form(&headers) {
        return html::error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The form could not be read.",
        );
    }
    let params = Params::parse(&body);
    let return_to = safe_return_to(params.single("return_to").ok().flatten()).to_owned();
    let user = match params.single("username") {
        Ok(Some(u))
            if u.len() <= MAX_USERNAME_LEN
                && u.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b)) =>
        {
            u.to_owned()
        }
        _ => {
            let mut r = html::dev_login_page(
                &return_to,
                Some("Use 1 to 64 letters, digits, '.', '_', '@' or '-'."),
            );
            *r.status_mut() = StatusCode::BAD_REQUEST;
            return r;
        }
    };
    let Ok(jwt) = idp.mint(&user) else {
        return html::error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Could not sign the session.",
        );
    };
    tracing::info!(user = %user, "development IdP sign-in");
    let cookie = format!(
        "{}={jwt}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        shared.session_cookie,
        DEV_SESSION_LIFETIME.as_secs(),
        if idp.secure_cookie { "; Secure" } else { "" }
    );
    let mut r = see_other(&return_to);
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `GET /` in development mode.
pub(crate) async fn home(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let user = match session::check(&shared, &headers).await {
        SessionCheck::Valid(s) => Some(s.user_id),
        _ => None,
    };
    html::dev_home(&shared.issuer, user.as_deref())
}

/// The `Set-Cookie` that ends a development session.
pub(crate) fn clear_cookie(shared: &Shared) -> Option<HeaderValue> {
    shared.dev_idp.as_ref()?;
    HeaderValue::from_str(&format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
        shared.session_cookie
    ))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // covers 9700-2.1-b (unit level)
    #[test]
    fn return_to_is_never_an_arbitrary_url() {
        assert_eq!(
            safe_return_to(Some("/authorize?client_id=x")),
            "/authorize?client_id=x"
        );
        assert_eq!(safe_return_to(Some("https://evil.example/")), "/");
        assert_eq!(safe_return_to(Some("//evil.example/authorize?")), "/");
        assert_eq!(safe_return_to(Some("/authorize?\\@evil")), "/");
        assert_eq!(safe_return_to(None), "/");
    }
}
