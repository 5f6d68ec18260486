//! The token, revocation and introspection endpoints (RFC 6749 §3.2 and §5, RFC 7009,
//! RFC 7662). Every response carries `Cache-Control: no-store` and `Pragma: no-cache` (set by a
//! layer on these routes).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use portcullis_core::{ErrorCode, OAuthError};
use portcullis_hash::OpaqueToken;
use portcullis_rotation::{
    BindingContext, CodeExchange, Found, Introspection, RefreshRequest, TokenKind, TokenPair,
};
use serde::Serialize;

use crate::clients::{self, AuthError, Client};
use crate::form::{Params, is_form};
use crate::respond::{empty, invalid_client, json, oauth_error, oauth_json, too_large};
use crate::state::Shared;

/// The successful token response (RFC 6749 §5.1).
#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: &'a str,
    scope: &'a str,
}

/// A parsed form request to one of these endpoints, or the response refusing it.
fn read_form(
    headers: &HeaderMap,
    uri: &Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Params, Response> {
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
        Err(_) => {
            return Err(oauth_error(
                ErrorCode::InvalidRequest,
                "the request body could not be read",
            ));
        }
    };
    if !is_form(headers) {
        return Err(oauth_error(
            ErrorCode::InvalidRequest,
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    // RFC 6749 §2.3.1: client credentials never travel in the URI.
    let query = Params::parse(uri.query().unwrap_or_default().as_bytes());
    if query.has("client_secret") {
        return Err(oauth_error(
            ErrorCode::InvalidRequest,
            "client credentials must not be sent in the query string",
        ));
    }
    Ok(Params::parse(&body))
}

/// Authenticate the client or answer with the right refusal.
async fn client(
    shared: &Shared,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Arc<Client>, Response> {
    // With a database, a client registered through another server is loaded first (on the
    // memory store there is nothing to load, and the hot path does no extra parsing).
    if shared.clients.is_persistent() {
        let body_id = params.single("client_id").ok().flatten().map(str::to_owned);
        let basic_id = clients::basic_credentials(headers)
            .ok()
            .flatten()
            .map(|(id, _)| id);
        for id in body_id.iter().chain(basic_id.iter()) {
            shared.clients.warm(id).await.map_err(|e| {
                oauth_json(&portcullis_rotation::RotationError::Store(e).oauth_error())
            })?;
        }
    }
    clients::authenticate(&shared.clients, &shared.hasher, headers, params).map_err(|e| match e {
        AuthError::Malformed(d) => oauth_error(ErrorCode::InvalidRequest, d),
        AuthError::Failed => {
            tracing::info!(
                client_id = params.single("client_id").ok().flatten().unwrap_or("-"),
                "client authentication failed"
            );
            invalid_client()
        }
    })
}

fn required<'a>(params: &'a Params, name: &'static str) -> Result<&'a str, Response> {
    match params.single(name) {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(oauth_error(
            ErrorCode::InvalidRequest,
            "a required parameter is missing",
        )),
        Err(_) => Err(oauth_error(
            ErrorCode::InvalidRequest,
            "a parameter is repeated",
        )),
    }
}

fn optional<'a>(params: &'a Params, name: &'static str) -> Result<Option<&'a str>, Response> {
    params
        .single(name)
        .map_err(|_| oauth_error(ErrorCode::InvalidRequest, "a parameter is repeated"))
}

fn token_response(pair: &TokenPair) -> Response {
    let body = TokenResponse {
        access_token: pair.access_token.expose_secret(),
        token_type: TokenPair::TOKEN_TYPE,
        expires_in: pair.expires_in.as_secs(),
        refresh_token: pair.refresh_token.expose_secret(),
        scope: pair.scope.as_str(),
    };
    match serde_json::to_string(&body) {
        Ok(s) => json(StatusCode::OK, s),
        Err(_) => oauth_error(ErrorCode::ServerError, "could not encode the response"),
    }
}

/// `POST /token`.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match token_inner(&shared, peer, &headers, &uri, body).await {
        Ok(r) | Err(r) => r,
    }
}

async fn token_inner(
    shared: &Shared,
    peer: SocketAddr,
    headers: &HeaderMap,
    uri: &Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Response> {
    let params = read_form(headers, uri, body)?;
    if params.first_duplicate(&["resource"]).is_some() {
        return Err(oauth_error(
            ErrorCode::InvalidRequest,
            "a parameter is repeated",
        ));
    }
    let grant_type = required(&params, "grant_type")?;
    if grant_type != "authorization_code" && grant_type != "refresh_token" {
        return Err(oauth_error(
            ErrorCode::UnsupportedGrantType,
            "only authorization_code and refresh_token are supported",
        ));
    }
    let client = client(shared, headers, &params).await?;
    // RFC 8707: a resource at the token endpoint must be one the grant holds.
    if params.all("resource").next().is_some() {
        let asked = crate::authorize::resources(shared, &params).map_err(|e| oauth_json(&e))?;
        check_granted_resources(shared, grant_type, &params, &asked, &client.id).await?;
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let ip = shared.client_ip.resolve_headers(peer.ip(), headers).addr;
    let binding = BindingContext {
        user_agent,
        ip: Some(ip),
        device_id: None,
    };
    let result = if grant_type == "authorization_code" {
        let code = required(&params, "code")?;
        let redirect_uri = optional(&params, "redirect_uri")?;
        let code_verifier = optional(&params, "code_verifier")?;
        shared
            .grants
            .exchange_code(CodeExchange {
                code,
                client_id: &client.id,
                redirect_uri,
                code_verifier,
                binding,
            })
            .await
    } else {
        if !client.refresh_allowed {
            return Err(oauth_error(
                ErrorCode::UnauthorizedClient,
                "this client did not register the refresh_token grant",
            ));
        }
        let refresh_token = required(&params, "refresh_token")?;
        let scope = optional(&params, "scope")?;
        shared
            .grants
            .refresh(RefreshRequest {
                refresh_token,
                client_id: &client.id,
                scope,
                binding,
            })
            .await
    };
    match result {
        Ok(pair) => {
            tracing::debug!(client_id = %client.id, family = %pair.family, generation = pair.generation, grant_type, "tokens issued");
            Ok(token_response(&pair))
        }
        Err(e) => {
            tracing::debug!(client_id = %client.id, grant_type, error = %e, "token request refused");
            Err(oauth_json(&e.oauth_error()))
        }
    }
}

/// The resources of the grant a token request presents, if it can be found: a read-only
/// look-up before the redemption (a family's resources never change).
///
/// Only a credential that the redemption could succeed with is checked here: unused, not
/// revoked, in a live family of this very client. Anything else goes on to the redemption, which
/// answers for it, so that a replayed token still revokes its family (DESIGN invariant 4) even
/// with a bad `resource`, and another client's token never reveals its grant's resources.
async fn check_granted_resources(
    shared: &Shared,
    grant_type: &str,
    params: &Params,
    asked: &[String],
    client_id: &str,
) -> Result<(), Response> {
    let (kind, name) = if grant_type == "authorization_code" {
        (TokenKind::AuthorizationCode, "code")
    } else {
        (TokenKind::RefreshToken, "refresh_token")
    };
    let Ok(Some(token)) = params.single(name) else {
        return Ok(());
    };
    let candidates: Vec<_> = shared
        .hasher
        .candidates(kind.purpose(), token.as_bytes())
        .collect();
    let found = shared
        .grants
        .store()
        .find(kind, &candidates)
        .await
        .map_err(|e| oauth_json(&portcullis_rotation::RotationError::Store(e).oauth_error()))?;
    let granted = match found {
        Some(Found::Credential { credential, family })
            if credential.used_at.is_none()
                && credential.revoked_at.is_none()
                && family.revoked.is_none()
                && family.client_id == client_id =>
        {
            family.resources
        }
        // Unknown, used, revoked, another client's, or another kind of record: the redemption
        // answers for it.
        _ => return Ok(()),
    };
    if asked.iter().all(|a| granted.contains(a)) {
        Ok(())
    } else {
        Err(oauth_error(
            ErrorCode::InvalidTarget,
            "resource is not one the grant was authorized for",
        ))
    }
}

/// `POST /revoke` (RFC 7009).
pub(crate) async fn revoke(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let inner = async {
        let params = read_form(&headers, &uri, body)?;
        if params.first_duplicate(&[]).is_some() {
            return Err(oauth_error(
                ErrorCode::InvalidRequest,
                "a parameter is repeated",
            ));
        }
        let client = client(&shared, &headers, &params).await?;
        let token = required(&params, "token")?;
        // §2.1: the hint is only a hint; an unknown hint is ignored (§2.2 still answers 200).
        let hint = optional(&params, "token_type_hint")?;
        // §2.2.1: a well-formed token of a kind this server does not issue cannot be revoked here.
        if OpaqueToken::parse_any(token)
            .is_ok_and(|parsed| TokenKind::from_prefix(parsed.prefix()).is_none())
        {
            return Err(oauth_error(
                ErrorCode::UnsupportedTokenType,
                "this server does not revoke tokens of this type",
            ));
        }
        shared
            .grants
            .revoke_token(token, hint, &client.id)
            .await
            .map_err(|e| oauth_json(&e.oauth_error()))?;
        Ok(empty(StatusCode::OK))
    };
    match inner.await {
        Ok(r) | Err(r) => r,
    }
}

/// The body of an active introspection answer (RFC 7662 §2.2).
#[derive(Serialize)]
struct Active<'a> {
    active: bool,
    scope: &'a str,
    client_id: &'a str,
    sub: &'a str,
    aud: &'a [String],
    iss: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
}

/// `POST /introspect` (RFC 7662): only for confidential clients, which must authenticate.
pub(crate) async fn introspect(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let inner = async {
        let params = read_form(&headers, &uri, body)?;
        let client = client(&shared, &headers, &params).await?;
        if !client.is_confidential() {
            // §2.1: the caller must be authorized; a public client proves nothing.
            return Err(invalid_client());
        }
        if params.first_duplicate(&[]).is_some() {
            return Err(oauth_error(
                ErrorCode::InvalidRequest,
                "a parameter is repeated",
            ));
        }
        let token = required(&params, "token")?;
        let answer = shared
            .grants
            .introspect(token)
            .await
            .map_err(|e| oauth_json(&e.oauth_error()))?;
        let body = match answer {
            Introspection::Inactive => r#"{"active":false}"#.to_owned(),
            Introspection::Active(t) => serde_json::to_string(&Active {
                active: true,
                scope: t.scope.as_str(),
                client_id: &t.client_id,
                sub: &t.user_id,
                aud: &t.resources,
                iss: &shared.issuer,
                iat: t.issued_at.as_secs(),
                exp: t.expires_at.as_secs(),
                token_type: (t.kind == TokenKind::AccessToken).then_some("Bearer"),
            })
            .map_err(|_| oauth_json(&OAuthError::new(ErrorCode::ServerError)))?,
        };
        Ok(json(StatusCode::OK, body))
    };
    match inner.await {
        Ok(r) | Err(r) => r,
    }
}
