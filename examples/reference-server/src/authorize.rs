//! `/authorize`: GET validates the request and renders the consent page; POST takes the user's
//! decision and redirects back to the client with a code or an error.
//!
//! Order of checks on GET (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2):
//! 1. `client_id` and `redirect_uri`: a failure is shown on an error page, never redirected;
//! 2. the user's session: without one, the user is sent to sign in and comes back here, so no
//!    error is redirected to a client for an anonymous visitor;
//! 3. everything else: failures redirect to the client with `error`, `state` and `iss`.

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use portcullis_core::{ErrorCode, OAuthError};
use portcullis_pkce::PkcePolicy;
use portcullis_rotation::{CodeRequest, Scope};

use crate::clients::{Client, origin_of};
use crate::consent::{CONSENT_LIFETIME, Pending};
use crate::form::{Params, is_form};
use crate::html::{self, ConsentView};
use crate::respond::{found, see_other};
use crate::session::{Session, SessionCheck};
use crate::state::{Login, Shared};

/// Where a redirect back to the client goes, and what it always carries.
struct Back<'a> {
    redirect_uri: &'a str,
    state: Option<&'a str>,
    issuer: &'a str,
}

impl Back<'_> {
    /// The redirect URI with `params`, `state` and `iss` appended, keeping the registered URI's
    /// own query (RFC 6749 §3.1.2).
    fn url(&self, params: &[(&str, &str)]) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(s) = self.state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", self.issuer);
        let sep = if self.redirect_uri.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{sep}{}", self.redirect_uri, q.finish())
    }

    /// An error redirect (302 from GET, 303 from POST).
    fn error(&self, err: &OAuthError, see: bool) -> Response {
        let code = if err.code().allowed_in_authorization_response() {
            err.code()
        } else {
            ErrorCode::ServerError
        };
        let mut params = vec![("error", code.as_str())];
        if let Some(d) = err.description() {
            params.push(("error_description", d.as_str()));
        }
        let url = self.url(&params);
        if see { see_other(&url) } else { found(&url) }
    }
}

fn refuse(error: &str, message: &str) -> Response {
    html::error_page(StatusCode::BAD_REQUEST, error, message)
}

/// The client and redirect URI of a request, checked before anything else.
fn client_and_redirect<'p>(
    shared: &Shared,
    params: &'p Params,
) -> Result<(Arc<Client>, &'p str), Response> {
    let client_id = match params.single("client_id") {
        Err(_) => {
            return Err(refuse(
                "invalid_request",
                "The client_id parameter is repeated.",
            ));
        }
        Ok(None) => {
            return Err(refuse(
                "invalid_request",
                "The client_id parameter is missing.",
            ));
        }
        Ok(Some(id)) => id,
    };
    let Some(client) = shared.clients.get(client_id) else {
        return Err(refuse(
            "invalid_client",
            "The application is not registered here.",
        ));
    };
    let redirect_uri = match params.single("redirect_uri") {
        Err(_) => {
            return Err(refuse(
                "invalid_request",
                "The redirect_uri parameter is repeated.",
            ));
        }
        Ok(None) => {
            return Err(refuse(
                "invalid_request",
                "The redirect_uri parameter is missing.",
            ));
        }
        Ok(Some(u)) => u,
    };
    if !client.matching_redirect_uri(redirect_uri) {
        return Err(refuse(
            "invalid_request",
            "The redirect_uri is not registered for this application.",
        ));
    }
    Ok((client, redirect_uri))
}

/// Send the user to sign in, to come back to this very request.
fn to_login(shared: &Shared, uri: &Uri) -> Response {
    let path_and_query = uri.path_and_query().map_or("/authorize", |p| p.as_str());
    let target = match &shared.login {
        Login::Dev => {
            let q = form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", path_and_query)
                .finish();
            format!("/dev/login?{q}")
        }
        Login::External(login) => {
            let back = format!("{}{path_and_query}", shared.issuer);
            let q = form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", &back)
                .finish();
            let sep = if login.contains('?') { '&' } else { '?' };
            format!("{login}{sep}{q}")
        }
    };
    tracing::debug!("no upstream session: sending the user to sign in");
    found(&target)
}

/// The `resource` values of a request (RFC 8707): absolute URIs without a fragment, each one a
/// resource this server knows; the demo resource when none is given.
pub(crate) fn resources(shared: &Shared, params: &Params) -> Result<Vec<String>, OAuthError> {
    let mut out: Vec<String> = Vec::new();
    for r in params.all("resource") {
        let absolute = url::Url::parse(r).is_ok();
        if !absolute || r.contains('#') {
            return Err(OAuthError::new(ErrorCode::InvalidTarget)
                .describe("resource must be an absolute URI without a fragment"));
        }
        if !shared.knows_resource(r) {
            return Err(OAuthError::new(ErrorCode::InvalidTarget)
                .describe("resource is not a resource this server issues tokens for"));
        }
        if !out.iter().any(|o| o == r) {
            out.push(r.to_owned());
        }
    }
    if out.is_empty() {
        out.push(shared.resource.clone());
    }
    Ok(out)
}

fn invalid_request(d: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequest).describe(d)
}

/// The checks after the client, redirect URI and session: what to show the consent page for.
fn validate(
    shared: &Shared,
    client: &Client,
    params: &Params,
) -> Result<(Scope, Vec<String>, portcullis_pkce::CodeChallenge), OAuthError> {
    if params.first_duplicate(&["resource"]).is_some() {
        return Err(invalid_request("a parameter is repeated"));
    }
    match params.single("response_type") {
        Ok(None) => return Err(invalid_request("response_type is required")),
        Ok(Some("code")) => {}
        Ok(Some(_)) => {
            return Err(OAuthError::new(ErrorCode::UnsupportedResponseType)
                .describe("only response_type=code is supported"));
        }
        Err(_) => return Err(invalid_request("a parameter is repeated")),
    }
    let challenge = PkcePolicy::S256_ONLY
        .validate_authorization_request(
            params.single("code_challenge").ok().flatten(),
            params.single("code_challenge_method").ok().flatten(),
        )
        .map_err(|e| e.oauth_error())?;
    let allowed = client.scope.as_ref().unwrap_or(&shared.scopes);
    let scope = match params.single("scope").ok().flatten() {
        None => allowed.clone(),
        Some(s) => Scope::parse(s)
            .map_err(|_| OAuthError::new(ErrorCode::InvalidScope).describe("scope is malformed"))?,
    };
    if !scope.is_subset_of(allowed) {
        return Err(OAuthError::new(ErrorCode::InvalidScope)
            .describe("scope names a scope this client may not request"));
    }
    let resources = resources(shared, params)?;
    Ok((scope, resources, challenge))
}

/// `GET /authorize`.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<SessionCheck>,
    uri: Uri,
) -> Response {
    let params = Params::parse(uri.query().unwrap_or_default().as_bytes());
    // With a database, a client registered through another server is loaded first.
    if let Ok(Some(id)) = params.single("client_id")
        && shared.clients.warm(id).await.is_err()
    {
        return html::error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The application cannot be looked up right now. Try again in a minute.",
        );
    }
    let (client, redirect_uri) = match client_and_redirect(&shared, &params) {
        Ok(v) => v,
        Err(page) => return page,
    };
    let session = match session {
        SessionCheck::Valid(s) => s,
        SessionCheck::Unavailable => {
            return html::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "Sign-in cannot be checked right now. Try again in a minute.",
            );
        }
        SessionCheck::Missing | SessionCheck::Invalid => return to_login(&shared, &uri),
    };
    // A repeated `state` cannot be echoed exactly: send none.
    let state = params.single("state").ok().flatten();
    let back = Back {
        redirect_uri,
        state,
        issuer: &shared.issuer,
    };
    let (scope, resources, challenge) = match validate(&shared, &client, &params) {
        Ok(v) => v,
        Err(e) => return back.error(&e, false),
    };
    let now = shared.clock.now();
    let pending = Pending {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        state: state.map(str::to_owned),
        scope: scope.clone(),
        resources: resources.clone(),
        challenge,
        user_id: session.user_id.clone(),
        session: session.binding,
        expires_at: now.saturating_add(CONSENT_LIFETIME),
    };
    let Ok(token) = shared.consents.insert(&shared.hasher, pending, now) else {
        return back.error(
            &OAuthError::new(ErrorCode::TemporarilyUnavailable)
                .describe("too many pending sign-ins, try again later"),
            false,
        );
    };
    let origin = origin_of(redirect_uri).unwrap_or_default();
    let host = url::Url::parse(redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    html::consent_page(&ConsentView {
        client_name: client.name.as_deref().unwrap_or(&client.id),
        client_id: &client.id,
        redirect_host: &host,
        user: &session.user_id,
        scopes: scope.tokens().collect(),
        resources: &resources,
        consent_token: token.expose_secret(),
        form_target: &origin,
    })
}

/// `POST /authorize`: the consent form.
pub(crate) async fn post(
    State(shared): State<Arc<Shared>>,
    Extension(session): Extension<SessionCheck>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return refuse(
            "invalid_request",
            "The form is too large or could not be read.",
        );
    };
    if !is_form(&headers) {
        return refuse("invalid_request", "The form could not be read.");
    }
    let params = Params::parse(&body);
    // RFC 6749 §10.12: a consent without the server's CSRF token is refused.
    let Ok(Some(token)) = params.single("consent_token") else {
        return refuse("invalid_request", "The consent form is missing its token.");
    };
    let now = shared.clock.now();
    let Some(pending) = shared.consents.take(&shared.hasher, token, now) else {
        return refuse(
            "invalid_request",
            "This consent form has expired or was already used. Start again from the application.",
        );
    };
    let session: Session = match session {
        SessionCheck::Valid(s) if s.user_id == pending.user_id && s.binding == pending.session => s,
        _ => {
            tracing::warn!(client_id = %pending.client_id, "consent posted from another session; refused");
            return refuse(
                "access_denied",
                "This consent form belongs to another sign-in session.",
            );
        }
    };
    let back = Back {
        redirect_uri: &pending.redirect_uri,
        state: pending.state.as_deref(),
        issuer: &shared.issuer,
    };
    let decision = params.single("decision");
    match decision {
        Ok(Some("approve")) => {}
        Ok(Some("deny")) => {
            tracing::info!(client_id = %pending.client_id, user_id = %session.user_id, "consent denied");
            return back.error(
                &OAuthError::new(ErrorCode::AccessDenied).describe("the user denied the request"),
                true,
            );
        }
        _ => return back.error(&invalid_request("decision must be approve or deny"), true),
    }
    let chosen: Vec<&str> = params.all("scope").collect();
    if chosen.iter().any(|s| !pending.scope.contains(s)) {
        return back.error(
            &OAuthError::new(ErrorCode::InvalidScope).describe("a scope was not requested"),
            true,
        );
    }
    let Ok(scope) = Scope::from_tokens(&chosen) else {
        return back.error(
            &OAuthError::new(ErrorCode::InvalidScope).describe("scope is malformed"),
            true,
        );
    };
    if scope.is_empty() && !pending.scope.is_empty() {
        return back.error(
            &OAuthError::new(ErrorCode::AccessDenied).describe("no scope was granted"),
            true,
        );
    }
    let issued = shared
        .grants
        .issue_code(CodeRequest {
            client_id: pending.client_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            challenge: Some(pending.challenge.clone()),
            scope: scope.clone(),
            resources: pending.resources.clone(),
            user_id: session.user_id.clone(),
            session_expires_at: Some(session.expires_at),
        })
        .await;
    match issued {
        Ok(code) => {
            tracing::info!(
                client_id = %pending.client_id,
                user_id = %session.user_id,
                scope = %scope,
                family = %code.family,
                "consent approved; authorization code issued"
            );
            see_other(&back.url(&[("code", code.code.expose_secret())]))
        }
        Err(e) => back.error(&e.oauth_error(), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_url_keeps_the_registered_query() {
        let b = Back {
            redirect_uri: "https://c.example/cb?tenant=a",
            state: Some("s 1&x"),
            issuer: "https://as.example",
        };
        assert_eq!(
            b.url(&[("code", "pca_x")]),
            "https://c.example/cb?tenant=a&code=pca_x&state=s+1%26x&iss=https%3A%2F%2Fas.example"
        );
    }
}
