//! The app (`/`): server-rendered pages to sign up, sign in, manage organizations and watch the
//! active organization's analytics live. Every authenticated page mints the tenant token from
//! the JWT template named `tinybird` in process, sets it on `x-tinybird-token` and embeds the
//! same token in the page (`seed-app.md` §7.1); the page's script (`assets/app.js`) queries `/v0`
//! with it and renews it through `/app/token`.

mod admin;
mod session;
mod views;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::Markup;
use serde_json::{Value, json};

use crate::AppState;
use session::{ANONYMOUS, Viewer, csrf_ok, csrf_token, viewer};
use views::{Page, ViewerBar};

/// The template every page mints the tenant token from.
pub const TENANT_TEMPLATE: &str = "tinybird";
/// The permission that lets a member manage the organization's members.
const MANAGE_MEMBERS: &str = "org:sys_memberships:manage";

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(dashboard))
        .route("/token", get(token_page))
        .route("/app/token", get(token_json))
        .route("/sign-in", get(sign_in_form).post(sign_in))
        .route("/sign-up", get(sign_up_form).post(sign_up))
        .route("/sign-out", post(sign_out))
        .route("/orgs", get(orgs_page).post(create_org))
        .route("/orgs/switch", post(switch_org))
        .route("/orgs/members/role", post(member_role))
        .route("/orgs/members/remove", post(member_remove))
        .route("/orgs/invite", post(invite))
        .route("/orgs/leave", post(leave))
        .route("/invitations/accept", get(invitation_page).post(accept_invitation))
        .route("/verify-email", get(verify_page).post(verify_email))
        .route("/account", get(account_page))
        .route("/account/password", post(change_password))
        .route("/admin/templates", get(admin::templates))
        .route("/admin/templates/{id}", get(admin::template).post(admin::save_template))
        .route("/admin/usage", get(admin::usage))
        .route("/assets/app.js", get(|| async { asset("text/javascript", include_str!("../../assets/app.js")) }))
        .route("/assets/app.css", get(|| async { asset("text/css", include_str!("../../assets/app.css")) }))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// The public origin of the app (and of the analytics API it calls).
fn origin(state: &AppState) -> String {
    state.identity.options().app_origin.trim_end_matches('/').to_string()
}

/// Security headers of every page: a strict CSP (scripts and styles only from this origin, no
/// inline code), no framing, no caching (pages carry tokens), no referrer leaks.
fn harden(state: &AppState, headers: &mut HeaderMap) {
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' {}; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        origin(state)
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}

/// A 303 to `to` with cookies.
fn redirect(state: &AppState, to: &str, cookies: &[String]) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    session::add_cookies(r.headers_mut(), cookies);
    harden(state, r.headers_mut());
    r
}

/// Where to go after signing in: a local path only (no `//host` or scheme).
fn local(next: Option<&String>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.clone(),
        _ => "/".into(),
    }
}

/// The viewer's header bar data: their organizations.
async fn bar(state: &AppState, v: &Viewer) -> (Vec<(String, String)>, Vec<Value>) {
    let params =
        identity::ListParams::new(vec![("limit".into(), "100".into()), ("order_by".into(), "+created_at".into())]);
    let memberships = state.identity.user_memberships(v.user_id(), &params).await.map(|(m, _)| m).unwrap_or_default();
    let orgs = memberships
        .iter()
        .map(|m| {
            (
                m["organization"]["id"].as_str().unwrap_or_default().to_string(),
                m["organization"]["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    (orgs, memberships)
}

/// A signed-in page: layout, cookies, security headers, and the tenant token when given.
async fn page(
    state: &AppState,
    v: &Viewer,
    title: &str,
    nav: &str,
    token: Option<(&str, i64, &str)>,
    flash: Option<Result<&str, &str>>,
    body: Markup,
) -> Response {
    let (orgs, _) = bar(state, v).await;
    let csrf = csrf_token(state, &v.sid);
    let api = origin(state);
    let markup = views::layout(
        &Page {
            title,
            nav,
            viewer: Some(ViewerBar {
                name: &v.name(),
                csrf: &csrf,
                orgs: &orgs,
                active: v.org_id.as_deref(),
                admin: admin::is_admin(state, v),
            }),
            token,
            api_base: &api,
            flash,
        },
        body,
    );
    let mut r = axum::response::Html(markup.into_string()).into_response();
    if let Some((jwt, _, _)) = token
        && let Ok(h) = HeaderValue::from_str(jwt)
    {
        r.headers_mut().insert("x-tinybird-token", h);
    }
    session::add_cookies(r.headers_mut(), &v.set_cookies);
    harden(state, r.headers_mut());
    r
}

/// A signed-out page (sign in, sign up, verification); sets the anonymous CSRF cookie.
fn public_page(
    state: &AppState,
    status: StatusCode,
    title: &str,
    nav: &str,
    flash: Option<Result<&str, &str>>,
    anon: &str,
    body: Markup,
) -> Response {
    let api = origin(state);
    let markup = views::layout(&Page { title, nav, viewer: None, token: None, api_base: &api, flash }, body);
    let mut r = (status, axum::response::Html(markup.into_string())).into_response();
    let cookie = format!("{ANONYMOUS}={anon}; Path=/; SameSite=Strict; HttpOnly");
    session::add_cookies(r.headers_mut(), &[cookie]);
    harden(state, r.headers_mut());
    r
}

/// The anonymous CSRF binding: the cookie's value, or a new one.
fn anonymous(headers: &HeaderMap) -> String {
    session::cookie(headers, ANONYMOUS)
        .filter(|v| v.len() >= 32)
        .map(String::from)
        .unwrap_or_else(|| identity::ids::random_token(24))
}

/// The anonymous CSRF binding of a signed-out form post when its checks pass.
fn anonymous_post(s: &AppState, headers: &HeaderMap, f: &HashMap<String, String>) -> Option<String> {
    let anon = anonymous(headers);
    csrf_ok(s, headers, &anon, f.get("csrf").map(String::as_str)).then_some(anon)
}

fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, "This form expired or came from another site; reload the page and try again.\n")
        .into_response()
}

/// Mints the tenant token for the viewer's active organization: `(jwt, exp)`.
async fn mint(state: &AppState, v: &Viewer) -> Result<(String, i64), identity::Error> {
    let jwt = state.identity.template_token(&v.sid, TENANT_TEMPLATE, None, Some(&origin(state))).await?;
    Ok((jwt.clone(), exp_of(&jwt)))
}

/// `exp` of a JWT we just minted.
fn exp_of(jwt: &str) -> i64 {
    use base64::Engine;
    jwt.split('.')
        .nth(1)
        .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|c| c["exp"].as_i64())
        .unwrap_or(0)
}

/// The active organization's object, when there is one the viewer still belongs to.
async fn active_org(state: &AppState, v: &Viewer) -> Option<Value> {
    state.identity.get_org(v.org_id.as_deref()?).await.ok()
}

fn sign_in_redirect(state: &AppState, path: &str) -> Response {
    let next: String = url_encode(path);
    redirect(state, &format!("/sign-in?next={next}"), &[])
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn dashboard(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some(v) = viewer(&s, &headers).await else { return sign_in_redirect(&s, "/") };
    let Some(org) = active_org(&s, &v).await else { return redirect(&s, "/orgs?m=pick", &v.set_cookies) };
    let name = org["name"].as_str().unwrap_or_default().to_string();
    let slug = org["slug"].as_str().unwrap_or_default().to_string();
    match mint(&s, &v).await {
        Ok((jwt, exp)) => {
            page(&s, &v, &name, "dashboard", Some((&jwt, exp, &slug)), None, views::dashboard(&name, 30)).await
        }
        Err(e) => {
            let text = mint_problem(&e);
            page(&s, &v, &name, "dashboard", None, None, views::notice(&name, &text, None)).await
        }
    }
}

fn mint_problem(e: &identity::Error) -> String {
    match e {
        identity::Error::NotFound("jwt template") => format!(
            "This server has no JWT template named “{TENANT_TEMPLATE}” yet, so no tenant token can be minted. \
             An administrator creates it with the Backend API (see docs/identity.md)."
        ),
        e => format!("The tenant token could not be minted: {e}"),
    }
}

async fn token_page(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some(v) = viewer(&s, &headers).await else { return sign_in_redirect(&s, "/token") };
    let Some(org) = active_org(&s, &v).await else { return redirect(&s, "/orgs?m=pick", &v.set_cookies) };
    let slug = org["slug"].as_str().unwrap_or_default().to_string();
    match mint(&s, &v).await {
        Ok((jwt, exp)) => page(&s, &v, "Token", "token", Some((&jwt, exp, &slug)), None, views::token(&jwt)).await,
        Err(e) => page(&s, &v, "Token", "token", None, None, views::notice("Token", &mint_problem(&e), None)).await,
    }
}

/// `GET /app/token`: a fresh tenant token for the session's active organization (same origin
/// only: no CORS headers; never cached).
async fn token_json(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let json_answer = |status: StatusCode, body: Value, cookies: &[String]| {
        let mut r = (status, axum::Json(body)).into_response();
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        session::add_cookies(r.headers_mut(), cookies);
        r
    };
    let Some(v) = viewer(&s, &headers).await else {
        return json_answer(StatusCode::UNAUTHORIZED, json!({"error": "signed out"}), &[]);
    };
    let Some(org) = active_org(&s, &v).await else {
        return json_answer(StatusCode::CONFLICT, json!({"error": "no active organization"}), &v.set_cookies);
    };
    match mint(&s, &v).await {
        Ok((jwt, exp)) => {
            json_answer(StatusCode::OK, json!({"token": jwt, "exp": exp, "org": org["slug"]}), &v.set_cookies)
        }
        Err(e) => json_answer(StatusCode::SERVICE_UNAVAILABLE, json!({"error": mint_problem(&e)}), &v.set_cookies),
    }
}

type Fields = Form<HashMap<String, String>>;

fn field<'a>(f: &'a HashMap<String, String>, k: &str) -> &'a str {
    f.get(k).map(String::as_str).unwrap_or_default()
}

async fn sign_in_form(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(v) = viewer(&s, &headers).await {
        return redirect(&s, &local(q.get("next")), &v.set_cookies);
    }
    let anon = anonymous(&headers);
    let flash = match q.get("m").map(String::as_str) {
        Some("signed-out") => Some(Ok("You are signed out.")),
        Some("verified") => Some(Ok("Your email address is verified.")),
        _ => None,
    };
    public_page(
        &s,
        StatusCode::OK,
        "Sign in",
        "sign-in",
        flash,
        &anon,
        views::sign_in(&csrf_token(&s, &anon), "", &local(q.get("next"))),
    )
}

async fn sign_in(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Fields,
) -> Response {
    let Some(anon) = anonymous_post(&s, &headers, &f) else { return forbidden() };
    let email = field(&f, "email");
    let next = local(f.get("next"));
    match s.identity.sign_in(email, field(&f, "password"), Some(peer.ip())).await {
        Ok(signed) => {
            let jwt = s.identity.session_token(&signed.session_id, None).await.unwrap_or_default();
            redirect(&s, &next, &session::sign_in_cookies(&s, &signed.client_token, &jwt))
        }
        Err(e) => {
            let (status, retry) = match &e {
                identity::Error::Locked { retry_after } | identity::Error::TooManyRequests { retry_after } => {
                    (StatusCode::TOO_MANY_REQUESTS, Some(*retry_after))
                }
                identity::Error::IncorrectPassword | identity::Error::Banned => {
                    (StatusCode::UNPROCESSABLE_ENTITY, None)
                }
                _ => (StatusCode::INTERNAL_SERVER_ERROR, None),
            };
            let message = match &e {
                identity::Error::IncorrectPassword => "The email address or password is incorrect.".to_string(),
                identity::Error::TooManyRequests { retry_after } => {
                    format!(
                        "Too many sign-in attempts from your network. Try again in {} minutes.",
                        retry_after.div_ceil(60)
                    )
                }
                e => e.to_string(),
            };
            let body = views::sign_in(&csrf_token(&s, &anon), email, &next);
            let mut r = public_page(&s, status, "Sign in", "sign-in", Some(Err(&message)), &anon, body);
            if let Some(secs) = retry
                && let Ok(v) = HeaderValue::from_str(&secs.to_string())
            {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
    }
}

async fn sign_up_form(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(v) = viewer(&s, &headers).await {
        return redirect(&s, "/", &v.set_cookies);
    }
    let anon = anonymous(&headers);
    public_page(
        &s,
        StatusCode::OK,
        "Sign up",
        "sign-up",
        None,
        &anon,
        views::sign_up(&csrf_token(&s, &anon), "", "", "", &local(q.get("next"))),
    )
}

async fn sign_up(
    State(s): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Fields,
) -> Response {
    let Some(anon) = anonymous_post(&s, &headers, &f) else { return forbidden() };
    let (email, password) = (field(&f, "email"), field(&f, "password"));
    let (first, last) = (field(&f, "first_name"), field(&f, "last_name"));
    let next = local(f.get("next"));
    let outcome = match s.identity.sign_up(email, password, Some(first), Some(last)).await {
        Ok(_) => s.identity.sign_in(email, password, Some(peer.ip())).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(signed) => {
            let jwt = s.identity.session_token(&signed.session_id, None).await.unwrap_or_default();
            let to = if next == "/" { "/orgs?m=welcome".to_string() } else { next };
            redirect(&s, &to, &session::sign_in_cookies(&s, &signed.client_token, &jwt))
        }
        Err(e) => {
            let body = views::sign_up(&csrf_token(&s, &anon), email, first, last, &next);
            public_page(
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Sign up",
                "sign-up",
                Some(Err(&e.to_string())),
                &anon,
                body,
            )
        }
    }
}

async fn sign_out(State(s): State<Arc<AppState>>, headers: HeaderMap, Form(f): Fields) -> Response {
    let Some(v) = viewer(&s, &headers).await else { return redirect(&s, "/sign-in", &session::sign_out_cookies(&s)) };
    if !csrf_ok(&s, &headers, &v.sid, f.get("csrf").map(String::as_str)) {
        return forbidden();
    }
    let _ = s.identity.end_session(&v.sid).await;
    redirect(&s, "/sign-in?m=signed-out", &session::sign_out_cookies(&s))
}

/// The viewer after the CSRF check of a signed-in form, or the response to send instead.
async fn signed_in_post(
    s: &AppState,
    headers: &HeaderMap,
    f: &HashMap<String, String>,
    path: &str,
) -> Result<Viewer, Response> {
    let Some(v) = viewer(s, headers).await else { return Err(sign_in_redirect(s, path)) };
    if !csrf_ok(s, headers, &v.sid, f.get("csrf").map(String::as_str)) {
        return Err(forbidden());
    }
    Ok(v)
}

async fn orgs_page(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(v) = viewer(&s, &headers).await else { return sign_in_redirect(&s, "/orgs") };
    let flash = match q.get("m").map(String::as_str) {
        Some("pick") => Some(Ok("Pick or create an organization to see its analytics.")),
        Some("welcome") => Some(Ok("Welcome! Create your organization, or accept an invitation from your email.")),
        Some("invited") => Some(Ok("Invitation sent. The link is in the outbox (and the server log).")),
        Some("left") => Some(Ok("You left the organization.")),
        Some("updated") => Some(Ok("Saved.")),
        _ => None,
    };
    orgs_view(&s, &v, flash, StatusCode::OK).await
}

async fn orgs_view(s: &AppState, v: &Viewer, flash: Option<Result<&str, &str>>, status: StatusCode) -> Response {
    let (_, memberships) = bar(s, v).await;
    let active = active_org(s, v).await;
    let mine = active.as_ref().and_then(|o| memberships.iter().find(|m| m["organization"]["id"] == o["id"]));
    let is_admin =
        mine.is_some_and(|m| m["permissions"].as_array().is_some_and(|p| p.iter().any(|x| x == MANAGE_MEMBERS)));
    let all =
        identity::ListParams::new(vec![("limit".into(), "500".into()), ("order_by".into(), "+created_at".into())]);
    let (members, invitations) = match &active {
        Some(o) => {
            let id = o["id"].as_str().unwrap_or_default();
            let members = s.identity.list_memberships(id, &all).await.map(|x| x.0).unwrap_or_default();
            let invitations = if is_admin {
                s.identity.pending_invitations(id, &all).await.map(|x| x.0).unwrap_or_default()
            } else {
                Vec::new()
            };
            (members, invitations)
        }
        None => (Vec::new(), Vec::new()),
    };
    let roles: Vec<(String, String)> = s
        .identity
        .list_roles(&all)
        .await
        .map(|(r, _)| {
            r.iter()
                .map(|x| {
                    (
                        x["key"].as_str().unwrap_or_default().to_string(),
                        x["name"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let csrf = csrf_token(s, &v.sid);
    let body = views::orgs(&views::OrgsPage {
        csrf: &csrf,
        memberships: &memberships,
        active: active.as_ref().filter(|_| mine.is_some()),
        members: &members,
        invitations: &invitations,
        is_admin,
        roles: &roles,
    });
    let mut r = page(s, v, "Organizations", "orgs", None, flash, body).await;
    *r.status_mut() = status;
    r
}

/// Where an organization form goes: `to` when the change was made, the page with the error
/// otherwise.
async fn after(s: &AppState, v: &Viewer, outcome: Result<Value, identity::Error>, to: &str) -> Response {
    match outcome {
        Ok(_) => redirect(s, to, &v.set_cookies),
        Err(e) => orgs_error(s, v, e).await,
    }
}

/// Answers a failed organization form with the page and the error.
async fn orgs_error(s: &AppState, v: &Viewer, e: identity::Error) -> Response {
    let text = match &e {
        identity::Error::Invalid { long_message, .. } => long_message.clone(),
        e => e.to_string(),
    };
    orgs_view(s, v, Some(Err(&text)), StatusCode::UNPROCESSABLE_ENTITY).await
}

async fn create_org(State(s): State<Arc<AppState>>, headers: HeaderMap, Form(f): Fields) -> Response {
    let v = match signed_in_post(&s, &headers, &f, "/orgs").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut body = json!({"name": field(&f, "name"), "created_by": v.user_id()});
    if !field(&f, "slug").is_empty() {
        body["slug"] = json!(field(&f, "slug"));
    }
    match s.identity.create_org(&body).await {
        Ok(org) => {
            let _ = s.identity.set_active_organization(&v.sid, org["id"].as_str()).await;
            redirect(&s, "/", &v.set_cookies)
        }
        Err(e) => orgs_error(&s, &v, e).await,
    }
}

async fn switch_org(State(s): State<Arc<AppState>>, headers: HeaderMap, Form(f): Fields) -> Response {
    let v = match signed_in_post(&s, &headers, &f, "/orgs").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match s.identity.set_active_organization(&v.sid, Some(field(&f, "org"))).await {
        Ok(_) => {
            let mut cookies = v.set_cookies.clone();
            // A new session token for the new organization, and the client's update time.
            if let Ok(jwt) = s.identity.session_token(&v.sid, None).await {
                cookies.push(session::set_cookie(&s, session::SESSION, &jwt, None, false));
            }
            cookies.push(session::set_cookie(
                &s,
                session::CLIENT_UAT,
                &chrono::Utc::now().timestamp().to_string(),
                Some(30 * 24 * 3600),
                true,
            ));
            redirect(&s, "/", &cookies)
        }
        Err(e) => orgs_error(&s, &v, e).await,
    }
}

/// The viewer, when they manage the members of their active organization, with its id.
async fn admin_of_active(
    s: &AppState,
    headers: &HeaderMap,
    f: &HashMap<String, String>,
) -> Result<(Viewer, String), Response> {
    let v = signed_in_post(s, headers, f, "/orgs").await?;
    let Some(org) = v.org_id.clone() else { return Err(redirect(s, "/orgs?m=pick", &v.set_cookies)) };
    let params = identity::ListParams::new(vec![("user_id".into(), v.user_id().to_string())]);
    let mine = s.identity.list_memberships(&org, &params).await.map(|x| x.0).unwrap_or_default();
    let admin = mine
        .first()
        .is_some_and(|m| m["permissions"].as_array().is_some_and(|p| p.iter().any(|x| x == MANAGE_MEMBERS)));
    if !admin {
        return Err((StatusCode::FORBIDDEN, "Only the organization's admins manage its members.\n").into_response());
    }
    Ok((v, org))
}

async fn member_role(State(s): State<Arc<AppState>>, headers: HeaderMap, Form(f): Fields) -> Response {
    let (v, org) = match admin_of_active(&s, &headers, &f).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    after(
        &s,
        &v,
        s.identity.update_membership(&org, field(&f, "user_id"), &json!({"role": field(&f, "role")})).await,
        "/orgs?m=updated",
    )
    .await
}

async fn member_remove(State(s): State<Arc<AppState>>, headers: HeaderMap, Form(f): Fields) -> Response {
    let (v, org) = match admin_of_active(&s, &headers, &f).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    after(&s, &v, s.identity.remove_membership(&org, field(&f, "user_id")).await, "/orgs?m=updated").await
}

async fn invite(State(s): State<Arc<AppState>>, headers: HeaderMap, Form(f): Fields) -> Response {
    let (v, org) = match admin_of_active(&s, &headers, &f).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let body = json!({"email_address": field(&f, "email"), "role": field(&f, "role"), "inviter_user_id": v.user_id()});
    after(&s, &v, s.identity.create_invitation(&org, &body).await, "/orgs?m=invited").await
}

async fn leave(State(s): State<Arc<AppState>>, headers: HeaderMap, Form(f): Fields) -> Response {
    let v = match signed_in_post(&s, &headers, &f, "/orgs").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(org) = v.org_id.clone() else { return redirect(&s, "/orgs", &v.set_cookies) };
    after(&s, &v, s.identity.remove_membership(&org, v.user_id()).await, "/orgs?m=left").await
}

async fn invitation_page(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let ticket = q.get("ticket").cloned().unwrap_or_default();
    let here = format!("/invitations/accept?ticket={}", url_encode(&ticket));
    let Some(v) = viewer(&s, &headers).await else {
        return redirect(&s, &format!("/sign-up?next={}", url_encode(&here)), &[]);
    };
    match s.identity.invitation_for_ticket(&ticket).await {
        Ok(inv) => {
            let org = s.identity.get_org(inv["organization_id"].as_str().unwrap_or_default()).await.unwrap_or_default();
            let body = views::invitation(
                &csrf_token(&s, &v.sid),
                &ticket,
                org["name"].as_str().unwrap_or_default(),
                inv["role_name"].as_str().unwrap_or_default(),
            );
            page(&s, &v, "Invitation", "orgs", None, None, body).await
        }
        Err(_) => {
            page(
                &s,
                &v,
                "Invitation",
                "orgs",
                None,
                None,
                views::notice(
                    "Invitation",
                    "This invitation was used, revoked or has expired.",
                    Some(("/orgs", "Organizations")),
                ),
            )
            .await
        }
    }
}

async fn accept_invitation(State(s): State<Arc<AppState>>, headers: HeaderMap, Form(f): Fields) -> Response {
    let v = match signed_in_post(&s, &headers, &f, "/orgs").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match s.identity.accept_invitation(field(&f, "ticket"), v.user_id()).await {
        Ok(inv) => {
            let _ = s.identity.set_active_organization(&v.sid, inv["organization_id"].as_str()).await;
            redirect(&s, "/", &v.set_cookies)
        }
        Err(e) => orgs_error(&s, &v, e).await,
    }
}

async fn verify_page(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let anon = anonymous(&headers);
    let ticket = q.get("ticket").cloned().unwrap_or_default();
    public_page(&s, StatusCode::OK, "Verify", "", None, &anon, views::verify_email(&csrf_token(&s, &anon), &ticket))
}

async fn verify_email(State(s): State<Arc<AppState>>, headers: HeaderMap, Form(f): Fields) -> Response {
    let Some(anon) = anonymous_post(&s, &headers, &f) else { return forbidden() };
    match s.identity.verify_email(field(&f, "ticket")).await {
        Ok(_) => redirect(&s, "/sign-in?m=verified", &[]),
        Err(_) => public_page(
            &s,
            StatusCode::NOT_FOUND,
            "Verify",
            "",
            Some(Err("This link was used or has expired.")),
            &anon,
            views::notice("Verify your email address", "Sign in to get a new link.", Some(("/sign-in", "Sign in"))),
        ),
    }
}

async fn account_page(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(v) = viewer(&s, &headers).await else { return sign_in_redirect(&s, "/account") };
    let flash = (q.get("m").map(String::as_str) == Some("password"))
        .then_some(Ok("Password changed. Other sessions were signed out."));
    let body = views::account(&csrf_token(&s, &v.sid), &v.email());
    page(&s, &v, "Account", "account", None, flash, body).await
}

async fn change_password(State(s): State<Arc<AppState>>, headers: HeaderMap, Form(f): Fields) -> Response {
    let v = match signed_in_post(&s, &headers, &f, "/account").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match s.identity.change_password(v.user_id(), field(&f, "current"), field(&f, "new"), Some(&v.sid)).await {
        Ok(_) => redirect(&s, "/account?m=password", &v.set_cookies),
        Err(e) => {
            let text = match &e {
                identity::Error::IncorrectPassword => "The current password is incorrect.".to_string(),
                identity::Error::Invalid { message, .. } => message.clone(),
                e => e.to_string(),
            };
            let body = views::account(&csrf_token(&s, &v.sid), &v.email());
            let mut r = page(&s, &v, "Account", "account", None, Some(Err(&text)), body).await;
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            r
        }
    }
}
