//! Registered clients: RFC 7591 dynamic registration, redirect URI rules and matching, and
//! client authentication at the token, revocation and introspection endpoints.
//!
//! Client secrets are stored only as keyed hashes (`Purpose::ClientSecret`) and compared in
//! constant time by `TokenHasher::verify`. The registry lives in memory, or in the store with a
//! `postgres://` or `redis://` store ([`ClientRegistry`]).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use portcullis_core::UnixTime;
use portcullis_core::{ErrorCode, SecretString};
use portcullis_hash::{OpaqueToken, Purpose, TokenHash, TokenHasher, TokenPrefix};
use portcullis_rotation::{ClientRecord, ClientStore, Scope};

use crate::config::host_is_loopback;
use crate::form::Params;

/// Most clients the in-memory registry holds: 100,000. Source: registration is rate limited per
/// IP; this bound keeps a distributed registration flood from growing memory without limit
/// (about 1 KiB per client, so at most ~100 MiB).
pub(crate) const MAX_CLIENTS: usize = 100_000;

/// Most redirect URIs one client may register: 20. Source: real clients register one to a few;
/// the bound keeps matching cheap.
pub(crate) const MAX_REDIRECT_URIS: usize = 20;

/// Longest redirect URI accepted: 2,000 characters (the practical URL limit of browsers).
pub(crate) const MAX_REDIRECT_URI_LEN: usize = 2_000;

/// Longest `client_name`: 200 characters.
pub(crate) const MAX_CLIENT_NAME_LEN: usize = 200;

/// The prefix of issued client secrets: `pcs_…` (same format as every Portcullis token, so
/// leaked secrets are recognisable).
pub(crate) const CLIENT_SECRET_PREFIX: TokenPrefix = TokenPrefix::new("pcs");

/// How a client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthMethod {
    /// A public client: no secret; PKCE protects its codes.
    None,
    /// HTTP Basic with the secret.
    SecretBasic,
    /// The secret in the form body.
    SecretPost,
}

impl AuthMethod {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::SecretBasic => "client_secret_basic",
            Self::SecretPost => "client_secret_post",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "client_secret_basic" => Some(Self::SecretBasic),
            "client_secret_post" => Some(Self::SecretPost),
            _ => None,
        }
    }
}

/// A registered client.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) redirect_uris: Vec<String>,
    pub(crate) auth_method: AuthMethod,
    pub(crate) secret: Option<TokenHash>,
    pub(crate) refresh_allowed: bool,
    pub(crate) scope: Option<Scope>,
}

impl Client {
    pub(crate) fn is_confidential(&self) -> bool {
        self.secret.is_some()
    }

    /// Whether `presented` matches a registered URI: exact string comparison (RFC 6749
    /// §3.1.2.3), except that for the loopback IP literals `127.0.0.1` and `[::1]` the port may
    /// differ (RFC 8252 §7.3, RFC 9700 §2.1); never for `localhost`.
    pub(crate) fn matching_redirect_uri(&self, presented: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|registered| redirect_uri_matches(registered, presented))
    }
}

/// The authority (host and port) of an `http://` URI and the rest after it.
fn split_http(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("http://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(rest.split_at(end))
}

/// The host of an authority with its port removed (`[::1]:80` -> `[::1]`).
fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .and_then(|i| authority.get(..=i))
            .unwrap_or(authority);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// The loopback IP literals whose port may differ (RFC 8252 §7.3: `127.0.0.1` and `[::1]`).
/// `localhost` is not one: it is a name that can resolve to another interface (RFC 8252 §8.3,
/// OAuth 2.1 §8.4.2: NOT RECOMMENDED), so a `localhost` redirect URI is matched exactly.
fn loopback_literal(host: &str) -> bool {
    host == "127.0.0.1" || host == "[::1]"
}

/// Exact match, or an `http` URI on a loopback IP literal that differs only in its port.
pub(crate) fn redirect_uri_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Some((reg_auth, reg_rest)), Some((pre_auth, pre_rest))) =
        (split_http(registered), split_http(presented))
    else {
        return false;
    };
    let host = host_of(reg_auth);
    loopback_literal(host)
        && host == host_of(pre_auth)
        && reg_rest == pre_rest
        && pre_auth
            .get(host.len()..)
            .is_some_and(|port| port.is_empty() || is_port(port))
}

fn is_port(s: &str) -> bool {
    s.strip_prefix(':')
        .is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Why a redirect URI cannot be registered (RFC 7591 `invalid_redirect_uri`).
fn check_redirect_uri(uri: &str) -> Result<(), &'static str> {
    if uri.len() > MAX_REDIRECT_URI_LEN {
        return Err("a redirect URI is too long");
    }
    // Stored and sent back exactly as registered (in `Location`): only printable ASCII, so
    // no whitespace or control character the URL parser would silently drop, and no raw
    // non-ASCII (RFC 3986 §2: percent-encode it).
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a redirect URI must be printable ASCII (percent-encode anything else)");
    }
    if uri.contains('#') {
        return Err("a redirect URI must not have a fragment");
    }
    let url = url::Url::parse(uri).map_err(|_| "a redirect URI must be an absolute URI")?;
    match url.scheme() {
        "https" => {}
        "http" if host_is_loopback(&url) => {}
        "http" => return Err("http redirect URIs are allowed only for loopback addresses"),
        _ => return Err("a redirect URI must use https (or http on a loopback address)"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a redirect URI must not carry credentials");
    }
    Ok(())
}

/// The origin of a URI (`scheme://host[:port]`), for the consent page's `form-action`.
pub(crate) fn origin_of(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    Some(url.origin().ascii_serialization()).filter(|o| o != "null")
}

/// The client registry: in memory, or in the store (a [`ClientStore`]: PostgreSQL's
/// `portcullis_clients`, or Redis) with the memory map as its cache.
///
/// With a `postgres://` or `redis://` store, registered clients are written to the store before
/// the registration is answered, so every server on the same store knows them; the map then only
/// caches them. A client never changes after registration, so a cached client is never stale
/// and dropping the cache loses nothing.
#[derive(Debug, Default)]
pub(crate) struct ClientRegistry {
    clients: RwLock<HashMap<String, Arc<Client>>>,
    backing: Option<Arc<dyn ClientStore>>,
}

impl ClientRegistry {
    /// A registry kept in `backing` when given, else in memory only.
    pub(crate) fn new(backing: Option<Arc<dyn ClientStore>>) -> Self {
        Self {
            clients: RwLock::default(),
            backing,
        }
    }

    /// Whether clients are kept in a store (so [`ClientRegistry::warm`] has work to do).
    pub(crate) fn is_persistent(&self) -> bool {
        self.backing.is_some()
    }

    /// A client known to this process (call [`ClientRegistry::warm`] first to look in the
    /// store).
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Client>> {
        self.clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Make sure a client registered through another server is in the cache.
    ///
    /// # Errors
    /// The store's error when it cannot be asked.
    pub(crate) async fn warm(&self, id: &str) -> Result<(), portcullis_rotation::StoreError> {
        let Some(backing) = &self.backing else {
            return Ok(());
        };
        if self.get(id).is_some() {
            return Ok(());
        }
        if let Some(client) = backing.get(id).await?.and_then(from_record) {
            self.cache(Arc::new(client));
        }
        Ok(())
    }

    /// Register a client: into the store first when there is one, then the cache.
    ///
    /// # Errors
    /// `temporarily_unavailable` when the store cannot keep it, or the registry is full (in
    /// memory, or in Redis at its cap).
    pub(crate) async fn add(
        &self,
        client: Client,
        now: UnixTime,
    ) -> Result<Arc<Client>, RegistrationError> {
        let client = Arc::new(client);
        if let Some(backing) = &self.backing {
            backing
                .insert(&to_record(&client, now))
                .await
                .map_err(|e| {
                    if let portcullis_rotation::StoreError::Backend(b) = &e
                        && b.is::<portcullis_rotation::RegistryFull>()
                    {
                        return (
                            ErrorCode::TemporarilyUnavailable,
                            "the client registry is full",
                        );
                    }
                    tracing::warn!(error = %e, "client registration could not be stored");
                    (
                        ErrorCode::TemporarilyUnavailable,
                        "the client registry is unavailable",
                    )
                })?;
            self.cache(Arc::clone(&client));
            return Ok(client);
        }
        let mut map = self.clients.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_CLIENTS {
            return Err((
                ErrorCode::TemporarilyUnavailable,
                "the client registry is full",
            ));
        }
        map.insert(client.id.clone(), Arc::clone(&client));
        Ok(client)
    }

    /// Cache a client of the store; a full cache is emptied first (it only caches).
    fn cache(&self, client: Arc<Client>) {
        let mut map = self.clients.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_CLIENTS {
            map.clear();
        }
        map.insert(client.id.clone(), client);
    }
}

/// The stored form of a client.
fn to_record(client: &Client, now: UnixTime) -> ClientRecord {
    let mut grant_types = vec!["authorization_code".to_owned()];
    if client.refresh_allowed {
        grant_types.push("refresh_token".to_owned());
    }
    ClientRecord {
        client_id: client.id.clone(),
        secret_hash: client.secret,
        client_name: client.name.clone(),
        redirect_uris: client.redirect_uris.clone(),
        grant_types,
        response_types: vec!["code".to_owned()],
        token_endpoint_auth_method: client.auth_method.as_str().to_owned(),
        scope: client.scope.as_ref().map(|s| s.as_str().to_owned()),
        metadata: "{}".to_owned(),
        created_at: now,
        secret_expires_at: None,
    }
}

/// A client from its stored form; `None` for a record this server could not have written.
fn from_record(record: ClientRecord) -> Option<Client> {
    let auth_method = AuthMethod::parse(&record.token_endpoint_auth_method)?;
    if (auth_method == AuthMethod::None) != record.secret_hash.is_none() {
        return None;
    }
    let scope = match record.scope {
        None => None,
        Some(s) => Some(Scope::parse(&s).ok()?),
    };
    Some(Client {
        refresh_allowed: record.grant_types.iter().any(|g| g == "refresh_token"),
        id: record.client_id,
        name: record.client_name,
        redirect_uris: record.redirect_uris,
        auth_method,
        secret: record.secret_hash,
        scope,
    })
}

/// A registration failure: the code and a fixed description.
pub(crate) type RegistrationError = (ErrorCode, &'static str);

/// What a successful registration returns: the client to store (with
/// [`ClientRegistry::add`]) and, for a confidential client, the plaintext secret (shown once).
pub(crate) struct Registered {
    pub(crate) client: Client,
    pub(crate) secret: Option<SecretString>,
    pub(crate) response: serde_json::Value,
}

/// Register a client from an RFC 7591 registration request.
pub(crate) fn register(
    hasher: &TokenHasher,
    offered: &Scope,
    body: &[u8],
    now_secs: u64,
) -> Result<Registered, RegistrationError> {
    use serde_json::Value;
    let meta_err = |d| (ErrorCode::InvalidClientMetadata, d);
    let doc: Value =
        serde_json::from_slice(body).map_err(|_| meta_err("the body is not a JSON object"))?;
    let Value::Object(doc) = doc else {
        return Err(meta_err("the body is not a JSON object"));
    };
    let uris = match doc.get("redirect_uris") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => {
            return Err((
                ErrorCode::InvalidRedirectUri,
                "redirect_uris must be a non-empty array",
            ));
        }
    };
    if uris.len() > MAX_REDIRECT_URIS {
        return Err((ErrorCode::InvalidRedirectUri, "too many redirect_uris"));
    }
    let mut redirect_uris = Vec::with_capacity(uris.len());
    for u in uris {
        let Value::String(u) = u else {
            return Err((
                ErrorCode::InvalidRedirectUri,
                "each redirect URI must be a string",
            ));
        };
        check_redirect_uri(u).map_err(|d| (ErrorCode::InvalidRedirectUri, d))?;
        redirect_uris.push(u.clone());
    }
    let str_field = |name: &str| -> Result<Option<&str>, RegistrationError> {
        match doc.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(meta_err("a metadata field has the wrong type")),
        }
    };
    // RFC 7591 §2: the default is client_secret_basic.
    let auth_method = match str_field("token_endpoint_auth_method")? {
        None => AuthMethod::SecretBasic,
        Some(m) => AuthMethod::parse(m).ok_or(meta_err(
            "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post",
        ))?,
    };
    let list_field = |name: &str, default: &[&str]| -> Result<Vec<String>, RegistrationError> {
        match doc.get(name) {
            None | Some(Value::Null) => Ok(default.iter().map(|s| (*s).to_owned()).collect()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(meta_err("a metadata list holds a non-string")),
                })
                .collect(),
            Some(_) => Err(meta_err("a metadata field has the wrong type")),
        }
    };
    let grant_types = list_field("grant_types", &["authorization_code"])?;
    if grant_types.is_empty()
        || grant_types
            .iter()
            .any(|g| g != "authorization_code" && g != "refresh_token")
    {
        return Err(meta_err(
            "grant_types may hold only authorization_code and refresh_token",
        ));
    }
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err(meta_err("grant_types must include authorization_code"));
    }
    let response_types = list_field("response_types", &["code"])?;
    if response_types.iter().any(|r| r != "code") {
        return Err(meta_err("response_types may hold only code"));
    }
    let name = str_field("client_name")?.map(str::to_owned);
    if name
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_CLIENT_NAME_LEN || n.chars().any(char::is_control))
    {
        return Err(meta_err(
            "client_name is too long or has control characters",
        ));
    }
    let scope = match str_field("scope")? {
        None | Some("") => None,
        Some(s) => {
            let s = Scope::parse(s).map_err(|_| meta_err("scope is malformed"))?;
            if !s.is_subset_of(offered) {
                return Err(meta_err("scope names a scope this server does not offer"));
            }
            Some(s)
        }
    };
    let id =
        client_id().map_err(|()| (ErrorCode::ServerError, "could not generate a client id"))?;
    let (secret, secret_hash) = if auth_method == AuthMethod::None {
        (None, None)
    } else {
        let s = OpaqueToken::mint(CLIENT_SECRET_PREFIX)
            .map_err(|_| (ErrorCode::ServerError, "could not generate a client secret"))?;
        let hash = hasher.hash(Purpose::ClientSecret, s.expose_secret().as_bytes());
        (Some(s.into_secret()), Some(hash))
    };
    let refresh_allowed = grant_types.iter().any(|g| g == "refresh_token");
    let client = Client {
        id,
        name,
        redirect_uris,
        auth_method,
        secret: secret_hash,
        refresh_allowed,
        scope,
    };
    let mut response = serde_json::json!({
        "client_id": client.id,
        "client_id_issued_at": now_secs,
        "redirect_uris": client.redirect_uris,
        "token_endpoint_auth_method": client.auth_method.as_str(),
        "grant_types": grant_types,
        "response_types": response_types,
    });
    if let Value::Object(map) = &mut response {
        if let Some(n) = &client.name {
            map.insert("client_name".into(), n.clone().into());
        }
        if let Some(s) = &client.scope {
            map.insert("scope".into(), s.as_str().into());
        }
        if let Some(s) = &secret {
            map.insert("client_secret".into(), s.expose_secret().clone().into());
            // RFC 7591 §3.2.1: required when a secret is issued; 0 means it never expires.
            map.insert("client_secret_expires_at".into(), 0.into());
        }
    }
    Ok(Registered {
        client,
        secret,
        response,
    })
}

fn client_id() -> Result<String, ()> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|_| ())?;
    Ok(format!("pcl_{}", hex::encode(b)))
}

/// Why client authentication failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthError {
    /// Malformed: two methods at once, mismatched ids, a malformed header, a repeated
    /// parameter (400 `invalid_request`).
    Malformed(&'static str),
    /// Unknown client, wrong or missing secret (401 `invalid_client`, one answer for all, so
    /// the response is no oracle for which client ids exist).
    Failed,
}

/// Authenticate the client of a token, revocation or introspection request: `client_secret_basic`
/// (id and secret form-urlencoded inside Basic, RFC 6749 §2.3.1), `client_secret_post`, or a
/// public client by `client_id` alone.
pub(crate) fn authenticate(
    registry: &ClientRegistry,
    hasher: &TokenHasher,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Arc<Client>, AuthError> {
    let body_id = params
        .single("client_id")
        .map_err(|_| AuthError::Malformed("client_id is repeated"))?;
    let body_secret = params
        .single("client_secret")
        .map_err(|_| AuthError::Malformed("client_secret is repeated"))?;
    let basic = basic_credentials(headers)?;
    let (id, secret, used) = match (basic, body_secret) {
        (Some(_), Some(_)) => {
            return Err(AuthError::Malformed(
                "more than one client authentication method",
            ));
        }
        (Some((id, secret)), None) => {
            if body_id.is_some_and(|b| b != id) {
                return Err(AuthError::Malformed(
                    "client_id does not match the Authorization header",
                ));
            }
            (
                id,
                Some(SecretString::from(secret)),
                AuthMethod::SecretBasic,
            )
        }
        (None, Some(secret)) => {
            let Some(id) = body_id else {
                return Err(AuthError::Malformed("client_id is required"));
            };
            (
                id.to_owned(),
                Some(SecretString::from(secret)),
                AuthMethod::SecretPost,
            )
        }
        (None, None) => {
            let Some(id) = body_id else {
                return Err(AuthError::Failed);
            };
            (id.to_owned(), None, AuthMethod::None)
        }
    };
    let client = registry.get(&id);
    match (client, secret) {
        (Some(c), None) if !c.is_confidential() && used == AuthMethod::None => Ok(c),
        (Some(c), Some(secret)) => match &c.secret {
            Some(stored)
                if hasher.verify(
                    Purpose::ClientSecret,
                    secret.expose_secret().as_bytes(),
                    stored,
                ) =>
            {
                Ok(c)
            }
            _ => Err(AuthError::Failed),
        },
        (None, Some(secret)) => {
            // Spend the same work as a real check, so timing does not tell unknown ids apart.
            let _ = hasher.hash(Purpose::ClientSecret, secret.expose_secret().as_bytes());
            Err(AuthError::Failed)
        }
        _ => Err(AuthError::Failed),
    }
}

/// The id and secret of an `Authorization: Basic` header, each form-urlencoded-decoded
/// (RFC 6749 §2.3.1). `None` without such a header.
pub(crate) fn basic_credentials(
    headers: &HeaderMap,
) -> Result<Option<(String, String)>, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::Malformed("more than one Authorization header"));
    }
    let value = value
        .to_str()
        .map_err(|_| AuthError::Malformed("malformed Authorization header"))?;
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Err(AuthError::Failed);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthError::Failed);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| AuthError::Failed)?;
    let decoded = String::from_utf8(decoded).map_err(|_| AuthError::Failed)?;
    let (id, secret) = decoded.split_once(':').ok_or(AuthError::Failed)?;
    // One form-urlencoded value each (RFC 6749 §2.3.1, Appendix B): `+` is a space, `%XX` a
    // byte. Decoded whole: a raw `&` would end the value for a form parser, silently dropping
    // the rest of the secret, so it is kept as a literal `&`.
    let decode = |s: &str| -> String {
        let whole = s.replace('&', "%26");
        form_urlencoded::parse(format!("x={whole}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((decode(id), decode(secret))))
}

#[cfg(test)]
mod tests {
    use super::*;

    // covers 6749-3.1.2.3-a, 9700-2.1-a (unit level; the end-to-end tests repeat them over HTTP)
    #[test]
    fn matching() {
        let m = redirect_uri_matches;
        assert!(m("https://c.example/cb", "https://c.example/cb"));
        assert!(!m("https://c.example/cb", "https://c.example/cb/"));
        assert!(!m("https://c.example/cb", "HTTPS://c.example/cb"));
        assert!(!m("https://c.example:443/cb", "https://c.example:444/cb"));
        assert!(m("http://127.0.0.1/cb", "http://127.0.0.1:53127/cb"));
        assert!(m("http://127.0.0.1:1/cb", "http://127.0.0.1:53127/cb"));
        assert!(m("http://[::1]/cb", "http://[::1]:8080/cb"));
        assert!(!m("http://localhost/cb", "http://localhost:8080/cb"));
        assert!(!m("http://localhost:1/cb", "http://localhost:8080/cb"));
        assert!(m("http://localhost:8080/cb", "http://localhost:8080/cb"));
        assert!(!m("http://127.0.0.1/cb", "http://127.0.0.1:53127/cb2"));
        assert!(!m("http://127.0.0.1/cb", "http://127.0.0.2:53127/cb"));
        assert!(!m(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:53127@evil.example/cb"
        ));
        assert!(!m("http://127.0.0.1/cb", "http://127.0.0.1:/cb"));
        assert!(!m("http://c.example/cb", "http://c.example:80/cb"));
    }

    // covers 6749-2.3.1-a (unit level)
    #[test]
    fn basic_credentials_are_form_urlencoded_whole() {
        let basic = |raw: &str| {
            let mut h = HeaderMap::new();
            let v = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            );
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
            basic_credentials(&h).unwrap().unwrap()
        };
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(basic("a%26b:c%3Ad"), pair("a&b", "c:d"));
        assert_eq!(basic("a+b:c%2B"), pair("a b", "c+"));
        // nothing after a raw `&` or `=` is dropped: the secret is the whole value
        assert_eq!(
            basic("pcl_x:pcs_secret&junk"),
            pair("pcl_x", "pcs_secret&junk")
        );
        assert_eq!(basic("pcl_x&y=z:s"), pair("pcl_x&y=z", "s"));
        assert_eq!(basic("id:"), pair("id", ""));
    }

    #[test]
    fn registration_rules() {
        assert!(check_redirect_uri("https://c.example/cb?x=1").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:9/cb").is_ok());
        assert!(check_redirect_uri("http://c.example/cb").is_err());
        assert!(check_redirect_uri("https://c.example/cb#f").is_err());
        assert!(check_redirect_uri("/cb").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
        assert!(check_redirect_uri("https://u:p@c.example/cb").is_err());
        assert!(check_redirect_uri("https://c.exa\nmple/cb").is_err());
        assert!(check_redirect_uri("https://c.example/caf\u{e9}").is_err());
        assert!(check_redirect_uri("https://c.example/caf%C3%A9").is_ok());
    }
}
