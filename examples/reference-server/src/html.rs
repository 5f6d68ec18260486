//! Server-rendered pages: the consent page, error pages and the development IdP's login form.
//!
//! Pages load nothing: no scripts, no images, no fonts, no third-party anything (RFC 9700
//! §4.2.4). The one stylesheet is inline and allowed by its hash in the
//! `Content-Security-Policy`, which also forbids framing (`frame-ancestors 'none'`, RFC 9700
//! §4.16).

use std::sync::LazyLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;\
padding:0 1rem;color:#1d2433;line-height:1.5}h1{font-size:1.4rem}\
.box{border:1px solid #ccd;border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}\
label{display:block;margin:.4rem 0}code{background:#f2f3f7;padding:0 .25rem}\
button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.6rem;border-radius:6px;\
border:1px solid #889;cursor:pointer}button.primary{background:#1d4ed8;color:#fff;border-color:#1d4ed8}\
input[type=text]{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box}\
.muted{color:#5b6270;font-size:.9rem}.error{color:#a31515}";

static STYLE_HASH: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::digest(STYLE.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
});

/// HTML-escape text for element content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The `Content-Security-Policy` of every page; `form_targets` are the origins a form on the
/// page may submit to or be redirected to after submitting (besides `'self'`).
pub(crate) fn csp(form_targets: &[&str]) -> String {
    let mut form_action = String::from("'self'");
    for t in form_targets {
        form_action.push(' ');
        form_action.push_str(t);
    }
    format!(
        "default-src 'none'; style-src {}; form-action {form_action}; frame-ancestors 'none'; \
         base-uri 'none'",
        *STYLE_HASH
    )
}

/// A complete page with the security headers: CSP, `X-Frame-Options: DENY`, `no-store`.
pub(crate) fn page(status: StatusCode, title: &str, body: &str, form_targets: &[&str]) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    );
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp(form_targets)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    crate::respond::set_no_store(h);
    r
}

/// An error page: shown instead of redirecting when the client or its redirect URI cannot be
/// trusted (RFC 6749 §4.1.2.1).
pub(crate) fn error_page(status: StatusCode, error: &str, message: &str) -> Response {
    let body = format!(
        "<h1>Sign-in request refused</h1><div class=\"box\"><p class=\"error\">{}</p>\
         <p class=\"muted\">Error code: <code>{}</code>. You can close this page.</p></div>",
        escape(message),
        escape(error)
    );
    page(status, "Request refused", &body, &[])
}

/// What the consent page shows.
pub(crate) struct ConsentView<'a> {
    pub(crate) client_name: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) redirect_host: &'a str,
    pub(crate) user: &'a str,
    pub(crate) scopes: Vec<&'a str>,
    pub(crate) resources: &'a [String],
    pub(crate) consent_token: &'a str,
    pub(crate) form_target: &'a str,
}

/// The consent page: names the client and each scope; the stable form fields are a hidden
/// `consent_token`, one `scope` checkbox per requested scope, and `decision` buttons.
pub(crate) fn consent_page(v: &ConsentView<'_>) -> Response {
    let mut scopes = String::new();
    for s in &v.scopes {
        let s = escape(s);
        scopes.push_str(&format!(
            "<label><input type=\"checkbox\" name=\"scope\" value=\"{s}\" checked> \
             <code>{s}</code></label>"
        ));
    }
    if v.scopes.is_empty() {
        scopes.push_str("<p class=\"muted\">No scopes were requested.</p>");
    }
    let resources: Vec<String> = v
        .resources
        .iter()
        .map(|r| format!("<code>{}</code>", escape(r)))
        .collect();
    let body = format!(
        "<h1>Allow <em>{name}</em> to access your account?</h1>\
         <div class=\"box\"><p>Signed in as <strong>{user}</strong>.</p>\
         <p><strong>{name}</strong> (client <code>{id}</code>, returning to <code>{host}</code>) \
         asks for these permissions on {resources}. Untick any you do not want to grant.</p>\
         <form method=\"post\" action=\"/authorize\">\
         <input type=\"hidden\" name=\"consent_token\" value=\"{token}\">\
         <fieldset><legend>Scopes</legend>{scopes}</fieldset><p>\
         <button class=\"primary\" type=\"submit\" name=\"decision\" value=\"approve\" id=\"approve\">Allow</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">Deny</button></p>\
         </form></div><p class=\"muted\">Only allow applications you trust.</p>",
        name = escape(v.client_name),
        user = escape(v.user),
        id = escape(v.client_id),
        host = escape(v.redirect_host),
        resources = resources.join(", "),
        token = escape(v.consent_token),
    );
    page(StatusCode::OK, "Authorize access", &body, &[v.form_target])
}

/// The development IdP's login form.
pub(crate) fn dev_login_page(return_to: &str, error: Option<&str>) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Development sign-in</h1><div class=\"box\">\
         <p class=\"muted\">This is the built-in development identity provider (<code>--dev</code>). \
         Type any user name; you get a session cookie signed by a key made at start.</p>{error}\
         <form method=\"post\" action=\"/dev/login\">\
         <input type=\"hidden\" name=\"return_to\" value=\"{}\">\
         <label for=\"username\">User name</label>\
         <input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" autofocus required>\
         <p><button class=\"primary\" type=\"submit\" id=\"login\">Sign in</button></p></form></div>",
        escape(return_to)
    );
    page(StatusCode::OK, "Development sign-in", &body, &[])
}

/// The development home page.
pub(crate) fn dev_home(issuer: &str, user: Option<&str>) -> Response {
    let who = user.map_or_else(
        || "Not signed in. <a href=\"/dev/login\">Sign in</a>.".to_owned(),
        |u| format!("Signed in as <strong>{}</strong>.", escape(u)),
    );
    let issuer = escape(issuer);
    let body = format!(
        "<h1>Portcullis reference server</h1><div class=\"box\"><p>{who}</p>\
         <p>Metadata: <a href=\"/.well-known/oauth-authorization-server\">\
         {issuer}/.well-known/oauth-authorization-server</a></p>\
         <p class=\"muted\">Development mode: the HMAC key and the IdP's signing key live only \
         as long as this process.</p></div>"
    );
    page(StatusCode::OK, "Portcullis", &body, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn csp_forbids_framing_and_third_parties() {
        let c = csp(&["https://app.example"]);
        assert!(c.contains("frame-ancestors 'none'"));
        assert!(c.contains("default-src 'none'"));
        assert!(c.contains("form-action 'self' https://app.example"));
    }
}
