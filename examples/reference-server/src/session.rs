//! The user's upstream session: a JWT in a cookie, verified once per request through
//! portcullis-jwks (which fetches and caches the IdP's JWKS over HTTP).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use portcullis_core::UnixTime;
use portcullis_hash::{Purpose, TokenHash};
use portcullis_jwks::{JwtVerifier, VerifyError};
use portcullis_ratelimit::AuthenticatedUser;
use serde::Deserialize;

use crate::state::Shared;

/// The claims read from the session token besides the registered ones (none: `sub` and `exp`
/// come from the registered claims the verifier already checked).
#[derive(Debug, Deserialize)]
struct SessionClaims {}

/// A verified upstream session.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The user: the session token's `sub`.
    pub(crate) user_id: String,
    /// When the session expires (`exp`): nothing issued from it outlives it.
    pub(crate) expires_at: UnixTime,
    /// A keyed hash of the session token, to bind consent tokens to this session.
    pub(crate) binding: TokenHash,
}

/// What the session cookie of a request proved.
#[derive(Debug, Clone)]
pub(crate) enum SessionCheck {
    /// No session cookie.
    Missing,
    /// A cookie whose token did not verify (or several cookies of that name).
    Invalid,
    /// The IdP's keys could not be had: neither signed in nor out.
    Unavailable,
    /// A verified session.
    Valid(Session),
}

/// The session cookie's value: `None` if absent, `Err` if present more than once or not text.
fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ()> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for pair in value.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if k.trim() == name {
                if found.is_some() {
                    return Err(());
                }
                found = Some(v.trim().trim_matches('"'));
            }
        }
    }
    Ok(found)
}

/// Verify the session cookie of a request.
pub(crate) async fn check(shared: &Shared, headers: &HeaderMap) -> SessionCheck {
    let token = match cookie_value(headers, &shared.session_cookie) {
        Ok(None) => return SessionCheck::Missing,
        Ok(Some("")) => return SessionCheck::Missing,
        Err(()) => return SessionCheck::Invalid,
        Ok(Some(t)) => t,
    };
    verify(&shared.sessions, &shared.hasher, token).await
}

async fn verify(
    verifier: &JwtVerifier,
    hasher: &portcullis_hash::TokenHasher,
    token: &str,
) -> SessionCheck {
    match verifier.verify::<SessionClaims>(token).await {
        Ok(v) => match v.registered.sub {
            Some(sub) if !sub.is_empty() => SessionCheck::Valid(Session {
                user_id: sub,
                expires_at: v.registered.exp,
                binding: hasher.hash(Purpose::Consent, token.as_bytes()),
            }),
            _ => SessionCheck::Invalid,
        },
        Err(e) if e.is_unavailable() => {
            tracing::warn!(error = %e, "upstream IdP keys unavailable");
            SessionCheck::Unavailable
        }
        Err(e) => {
            log_rejection(&e);
            SessionCheck::Invalid
        }
    }
}

fn log_rejection(e: &VerifyError) {
    tracing::info!(reason = %e, "upstream session token rejected");
}

/// Middleware for the routes that need the session: verify it once, and hand the result to the
/// rate limiter (as [`AuthenticatedUser`], for the per-user limit) and to the handler.
pub(crate) async fn middleware(
    State(shared): State<std::sync::Arc<Shared>>,
    mut req: Request,
    next: Next,
) -> Response {
    let checked = check(&shared, req.headers()).await;
    if let SessionCheck::Valid(s) = &checked {
        req.extensions_mut()
            .insert(AuthenticatedUser(s.user_id.clone()));
    }
    req.extensions_mut().insert(checked);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies() {
        let mut h = HeaderMap::new();
        assert_eq!(cookie_value(&h, "hanko"), Ok(None));
        h.append(header::COOKIE, "a=1; hanko=tok; b=2".parse().unwrap());
        assert_eq!(cookie_value(&h, "hanko"), Ok(Some("tok")));
        h.append(header::COOKIE, "hanko=other".parse().unwrap());
        assert_eq!(cookie_value(&h, "hanko"), Err(()));
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "xhanko=1; junk; =; hanko2=3".parse().unwrap(),
        );
        assert_eq!(cookie_value(&h, "hanko"), Ok(None));
    }
}
