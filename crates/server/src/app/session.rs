//! Who is asking: the app's cookies (`__client`, `__session`, `__client_uat`, as in
//! `identity-api.md` §8.2), the CSRF defences (Origin check plus a per-session token) and the
//! tenant token minted for each page.

use axum::http::{HeaderMap, HeaderValue, header};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::AppState;

/// Cookie names, Clerk's.
pub(crate) const CLIENT: &str = "__client";
pub(crate) const SESSION: &str = "__session";
pub(crate) const CLIENT_UAT: &str = "__client_uat";
/// Binds the CSRF token of signed-out forms (sign in, sign up).
pub(crate) const ANONYMOUS: &str = "aviary_csrf";

/// The signed-in user of a request.
pub(crate) struct Viewer {
    /// The session id.
    pub sid: String,
    /// The user object.
    pub user: Value,
    /// The session's active organization id.
    pub org_id: Option<String>,
    /// `Set-Cookie` values to send with the answer (a refreshed `__session`).
    pub set_cookies: Vec<String>,
}

impl Viewer {
    pub fn user_id(&self) -> &str {
        self.user["id"].as_str().unwrap_or_default()
    }

    /// "Ana Lopez", or the email address.
    pub fn name(&self) -> String {
        let first = self.user["first_name"].as_str().unwrap_or_default();
        let last = self.user["last_name"].as_str().unwrap_or_default();
        let full = format!("{first} {last}").trim().to_string();
        if full.is_empty() { self.email() } else { full }
    }

    pub fn email(&self) -> String {
        self.user["email_addresses"][0]["email_address"].as_str().unwrap_or_default().to_string()
    }
}

/// The value of cookie `name`.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the app is served over HTTPS (cookies then get `Secure`).
fn secure(state: &AppState) -> bool {
    state.identity.options().app_origin.starts_with("https://")
}

/// A `Set-Cookie` value: `HttpOnly` unless `script_visible`, `SameSite=Lax`, `Path=/`,
/// `Secure` on HTTPS; `max_age` seconds (0 deletes).
pub(crate) fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    max_age: Option<i64>,
    script_visible: bool,
) -> String {
    let mut c = format!("{name}={value}; Path=/; SameSite=Lax");
    if !script_visible {
        c.push_str("; HttpOnly");
    }
    if secure(state) {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

/// The cookies of a new sign-in.
pub(crate) fn sign_in_cookies(state: &AppState, client_token: &str, session_jwt: &str) -> Vec<String> {
    vec![
        set_cookie(state, CLIENT, client_token, Some(30 * 24 * 3600), false),
        set_cookie(state, SESSION, session_jwt, None, false),
        set_cookie(state, CLIENT_UAT, &chrono::Utc::now().timestamp().to_string(), Some(30 * 24 * 3600), true),
    ]
}

/// The cookies that sign a browser out.
pub(crate) fn sign_out_cookies(state: &AppState) -> Vec<String> {
    vec![
        set_cookie(state, CLIENT, "", Some(0), false),
        set_cookie(state, SESSION, "", Some(0), false),
        set_cookie(state, CLIENT_UAT, "0", Some(30 * 24 * 3600), true),
    ]
}

/// The signed-in user, from the `__client` cookie (authoritative, so a revoked session is
/// signed out at once). `__session` is re-minted when it is missing or expires within 10 s.
pub(crate) async fn viewer(state: &AppState, headers: &HeaderMap) -> Option<Viewer> {
    let client = cookie(headers, CLIENT).filter(|c| !c.is_empty())?;
    let sessions = state.identity.client_sessions(client).await.ok()?;
    let session = sessions.into_iter().next()?;
    let sid = session["id"].as_str()?.to_string();
    let user = state.identity.get_user(session["user_id"].as_str()?).await.ok()?;
    if user["banned"] == true {
        return None;
    }
    let fresh = cookie(headers, SESSION)
        .and_then(|jwt| state.identity.verify_session_signature(jwt).ok())
        .is_some_and(|c| c.sid == sid && c.exp - chrono::Utc::now().timestamp() > 10);
    let mut set_cookies = Vec::new();
    if !fresh && let Ok(jwt) = state.identity.session_token(&sid, None).await {
        set_cookies.push(set_cookie(state, SESSION, &jwt, None, false));
    }
    Some(Viewer { sid, org_id: session["last_active_organization_id"].as_str().map(String::from), user, set_cookies })
}

/// The CSRF token bound to `binding` (the session id, or the anonymous cookie).
pub(crate) fn csrf_token(state: &AppState, binding: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(state.app_secret.as_bytes()).expect("any key length");
    mac.update(b"aviary csrf\0");
    mac.update(binding.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a state-changing request may proceed: its `Origin` (or, without one, `Referer`)
/// is the app's own, and `token` is the CSRF token bound to `binding`.
pub(crate) fn csrf_ok(state: &AppState, headers: &HeaderMap, binding: &str, token: Option<&str>) -> bool {
    let public = state.identity.options().app_origin.trim_end_matches('/').to_string();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let scheme = if public.starts_with("https://") { "https" } else { "http" };
    let own = [public, format!("{scheme}://{host}")];
    let origin = match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(o) => o.to_string(),
        None => match headers.get(header::REFERER).and_then(|v| v.to_str().ok()) {
            Some(r) => r.split('/').take(3).collect::<Vec<_>>().join("/"),
            None => return false,
        },
    };
    let expected = csrf_token(state, binding);
    own.contains(&origin) && token.is_some_and(|t| constant_eq(t.as_bytes(), expected.as_bytes()))
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Adds the `Set-Cookie` values to a response's headers.
pub(crate) fn add_cookies(headers: &mut HeaderMap, cookies: &[String]) {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            headers.append(header::SET_COOKIE, v);
        }
    }
}
