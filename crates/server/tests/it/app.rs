//! The app over HTTP, without a browser: redirects and tokens of signed-out visitors, CSRF,
//! sign-in errors and lockout, no tenant token without an organization, invitations, member
//! rights, the token hand-off (header = page), and the admin pages' gate. The full journey in a
//! real browser is `crates/aviary/tests/it/app.rs`.

use std::collections::HashMap;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::harness::{Backend, SECRET_KEY, Server, TOKEN};

/// A cookie-keeping client that does not follow redirects.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// The page's CSRF token.
    fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
        self.body[at..].split('"').next().unwrap().to_string()
    }

    fn meta(&self, name: &str) -> Option<String> {
        let needle = format!("name=\"{name}\" content=\"");
        let at = self.body.find(&needle)? + needle.len();
        Some(self.body[at..].split('"').next()?.to_string())
    }
}

impl Browser {
    fn new(server: &Server) -> Browser {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { client, base: server.base.clone(), cookies: HashMap::new() }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Answer {
        let cookie: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let r = req.header("cookie", cookie.join("; ")).send().await.unwrap();
        for c in r.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        let (status, headers) = (r.status(), r.headers().clone());
        Answer { status, headers, body: r.text().await.unwrap() }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    /// A form post from the app's own origin.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let origin = self.base.clone();
        self.post_from(path, fields, &origin).await
    }

    async fn post_from(&mut self, path: &str, fields: &[(&str, &str)], origin: &str) -> Answer {
        let req = self.client.post(format!("{}{path}", self.base)).header("origin", origin).form(fields);
        self.send(req).await
    }

    /// Signs up through the form (lands on the organizations page).
    async fn sign_up(&mut self, email: &str) {
        let form = self.get("/sign-up").await;
        let a = self
            .post("/sign-up", &[("csrf", &form.csrf()), ("email", email), ("password", "correct horse battery")])
            .await;
        assert_eq!((a.status, a.location()), (StatusCode::SEE_OTHER, "/orgs?m=welcome"), "{}", a.body);
    }

    async fn sign_in(&mut self, email: &str, password: &str) -> Answer {
        let form = self.get("/sign-in").await;
        self.post("/sign-in", &[("csrf", &form.csrf()), ("email", email), ("password", password)]).await
    }

    async fn create_org(&mut self, name: &str, slug: &str) {
        let page = self.get("/orgs").await;
        let a = self.post("/orgs", &[("csrf", &page.csrf()), ("name", name), ("slug", slug)]).await;
        assert_eq!((a.status, a.location()), (StatusCode::SEE_OTHER, "/"), "{}", a.body);
    }
}

async fn bapi(s: &Server, path: &str, body: Value) -> Value {
    let r = s.client.post(s.url(path)).bearer_auth(SECRET_KEY).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

/// The example server with the `tinybird` template, and `admins` as workspace admins.
async fn start(name: &str, admins: &[&str]) -> Server {
    let admins: Vec<String> = admins.iter().map(|a| a.to_string()).collect();
    let s = Server::start_with_example(Backend::Embedded, name, move |c| c.workspace_admins = admins).await;
    bapi(
        &s,
        "/v1/jwt_templates",
        json!({"name": "tinybird", "lifetime": 300, "custom_signing_key": true, "signing_algorithm": "HS256", "signing_key": TOKEN,
            "claims": {"name": "frontend_jwt_{{org.slug}}", "limits": {"rps": 10}, "workspace_id": "5a0c4c1e-1111-2222-3333-444455556666",
                "scopes": [{"type": "PIPES:READ", "resource": "top_pages", "fixed_params": {"org": "{{org.slug}}"}}]}}),
    )
    .await;
    s
}

#[tokio::test]
async fn signed_out_visitors_get_no_token_and_forms_need_their_origin_and_token() {
    let s = start("app-signed-out", &[]).await;
    let mut b = Browser::new(&s);
    let home = b.get("/").await;
    assert_eq!((home.status, home.location()), (StatusCode::SEE_OTHER, "/sign-in?next=/"));
    let token = b.get("/app/token").await;
    assert_eq!(token.status, 401);
    assert!(token.headers.get("access-control-allow-origin").is_none());
    let form = b.get("/sign-in").await;
    assert_eq!(form.status, 200);
    assert!(form.headers.get("x-tinybird-token").is_none() && form.meta("aviary-tenant-token").is_none());
    let csp = form.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(form.headers["cache-control"], "no-store");
    // A post from elsewhere, or without the token, is refused before anything is checked.
    let csrf = form.csrf();
    let fields = [("csrf", csrf.as_str()), ("email", "x@y.example"), ("password", "whatever it is")];
    assert_eq!(b.post_from("/sign-in", &fields, "https://evil.example").await.status, 403);
    assert_eq!(b.post("/sign-in", &fields[1..]).await.status, 403);
    assert_eq!(b.post("/sign-in", &[("csrf", "0".repeat(64).as_str()), fields[1], fields[2]]).await.status, 403);
    // The right form gets the generic error.
    let wrong = b.post("/sign-in", &fields).await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("The email address or password is incorrect."));
    s.stop().await;
}

#[tokio::test]
async fn sign_in_locks_the_account_after_ten_failures() {
    let s = start("app-lockout", &[]).await;
    bapi(&s, "/v1/users", json!({"email_address": ["ana@acme.example"], "password": "correct horse battery"})).await;
    let mut b = Browser::new(&s);
    for _ in 0..9 {
        assert_eq!(b.sign_in("ana@acme.example", "wrong password").await.status, 422);
    }
    let locked = b.sign_in("ana@acme.example", "wrong password").await;
    assert_eq!(locked.status, 429);
    assert_eq!(locked.headers["retry-after"], "3600");
    assert!(
        locked.body.contains("Your account is locked. You will be able to try again in 60 minutes."),
        "{}",
        locked.body
    );
    assert_eq!(b.sign_in("ana@acme.example", "correct horse battery").await.status, 429);
    s.stop().await;
}

#[tokio::test]
async fn no_tenant_token_without_an_organization_then_header_and_page_agree() {
    let s = start("app-no-org", &[]).await;
    let mut b = Browser::new(&s);
    b.sign_up("eve@acme.example").await;
    assert!(b.cookies.contains_key("__client") && b.cookies.contains_key("__session"));
    let home = b.get("/").await;
    assert_eq!((home.status, home.location()), (StatusCode::SEE_OTHER, "/orgs?m=pick"));
    assert_eq!(b.get("/app/token").await.status, 409);
    b.create_org("Acme", "acme").await;
    let dash = b.get("/").await;
    assert_eq!(dash.status, 200);
    let header = dash.headers["x-tinybird-token"].to_str().unwrap().to_string();
    assert_eq!(dash.meta("aviary-tenant-token").as_deref(), Some(header.as_str()));
    assert_eq!(dash.meta("aviary-org").as_deref(), Some("acme"));
    // /app/token: a fresh token for the same organization, read by the analytics API as acme.
    let fresh: Value = serde_json::from_str(&b.get("/app/token").await.body).unwrap();
    assert_eq!(fresh["org"], "acme");
    let jwt = fresh["token"].as_str().unwrap();
    let r = s.client.get(s.url("/v0/pipes/top_pages.json?org=globex")).bearer_auth(jwt).send().await.unwrap();
    let rows: Value = r.json().await.unwrap();
    let (_, admin) =
        s.sql("SELECT count() AS c FROM events WHERE org = 'acme' AND event = 'page_view' FORMAT JSON").await;
    let views: u64 = rows["data"].as_array().unwrap().iter().map(|r| r["views"].as_u64().unwrap()).sum();
    assert_eq!(views, admin["data"][0]["c"].as_u64().unwrap());
    // Signing out kills the cookies' session.
    let page = b.get("/account").await;
    let out = b.post("/sign-out", &[("csrf", &page.csrf())]).await;
    assert_eq!(out.location(), "/sign-in?m=signed-out");
    assert_eq!(b.get("/").await.status, StatusCode::SEE_OTHER);
    s.stop().await;
}

#[tokio::test]
async fn invitations_and_member_rights() {
    let s = start("app-invite", &[]).await;
    let mut ana = Browser::new(&s);
    ana.sign_up("ana@acme.example").await;
    ana.create_org("Acme", "acme").await;
    let orgs = ana.get("/orgs").await;
    let invited =
        ana.post("/orgs/invite", &[("csrf", &orgs.csrf()), ("email", "bo@acme.example"), ("role", "org:member")]).await;
    assert_eq!(invited.location(), "/orgs?m=invited");
    let outbox = s.workspace_outbox().await;
    let link = outbox
        .iter()
        .find(|(to, _, _)| to == "bo@acme.example")
        .and_then(|(_, _, l)| l.clone())
        .expect("an invitation link");
    let path = link.split_once("://").unwrap().1.split_once('/').unwrap().1;
    // Bo follows the link signed out: sign up first, then accept with a button (not the GET).
    let mut bo = Browser::new(&s);
    let to_sign_up = bo.get(&format!("/{path}")).await;
    assert!(to_sign_up.location().starts_with("/sign-up?next=/invitations/accept"), "{}", to_sign_up.location());
    bo.sign_up("bo@acme.example").await;
    let accept = bo.get(&format!("/{path}")).await;
    assert!(accept.body.contains("Join Acme"), "{}", accept.body);
    assert_eq!(bo.get("/app/token").await.status, 409, "viewing the invitation accepts nothing");
    let ticket = path.split("ticket=").nth(1).unwrap();
    let done = bo.post("/invitations/accept", &[("csrf", &accept.csrf()), ("ticket", ticket)]).await;
    assert_eq!(done.location(), "/");
    let token: Value = serde_json::from_str(&bo.get("/app/token").await.body).unwrap();
    assert_eq!(token["org"], "acme");
    // A member cannot manage members; the admin can remove the member, whose token page then
    // has no organization.
    let ana_id = bapi_users(&s, "ana@acme.example").await;
    let bo_id = bapi_users(&s, "bo@acme.example").await;
    let page = bo.get("/orgs").await;
    assert_eq!(bo.post("/orgs/members/remove", &[("csrf", &page.csrf()), ("user_id", &ana_id)]).await.status, 403);
    let page = ana.get("/orgs").await;
    assert!(page.body.contains("bo@acme.example"));
    let removed = ana.post("/orgs/members/remove", &[("csrf", &page.csrf()), ("user_id", &bo_id)]).await;
    assert_eq!(removed.location(), "/orgs?m=updated");
    assert_eq!(bo.get("/app/token").await.status, 409);
    // The last admin cannot leave.
    let page = ana.get("/orgs").await;
    let leave = ana.post("/orgs/leave", &[("csrf", &page.csrf())]).await;
    assert_eq!(leave.status, 422);
    assert!(leave.body.contains("must keep at least one member who can manage members"), "{}", leave.body);
    s.stop().await;
}

async fn bapi_users(s: &Server, email: &str) -> String {
    let r =
        s.client.get(s.url(&format!("/v1/users?email_address={email}"))).bearer_auth(SECRET_KEY).send().await.unwrap();
    let users: Value = r.json().await.unwrap();
    users[0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn admin_pages_are_for_verified_workspace_admins() {
    let s = start("app-admin", &["ana@acme.example", "eve@acme.example"]).await;
    // Ana's address is verified (created through the Backend API); Eve signs up unverified.
    let ana_id =
        bapi(&s, "/v1/users", json!({"email_address": ["ana@acme.example"], "password": "correct horse battery"}))
            .await;
    bapi(&s, "/v1/organizations", json!({"name": "Acme", "slug": "acme", "created_by": ana_id["id"]})).await;
    let mut ana = Browser::new(&s);
    assert_eq!(ana.sign_in("ana@acme.example", "correct horse battery").await.status, StatusCode::SEE_OTHER);
    let list = ana.get("/admin/templates").await;
    assert_eq!(list.status, 200);
    let at = list.body.find("/admin/templates/jtmp_").unwrap() + 17;
    let id = &list.body[at..at + 32];
    let edit = ana.get(&format!("/admin/templates/{id}")).await;
    let claims = r#"{"name": "frontend_jwt_{{org.slug}}", "who": "{{user.primary_email_address}}"}"#;
    let preview = ana
        .post(
            &format!("/admin/templates/{id}"),
            &[
                ("csrf", &edit.csrf()),
                ("name", "tinybird"),
                ("claims", claims),
                ("lifetime", "300"),
                ("allowed_clock_skew", "5"),
                ("action", "preview"),
                ("preview_user", "ana@acme.example"),
                ("preview_org", "acme"),
            ],
        )
        .await;
    assert!(
        preview.body.contains("frontend_jwt_acme") && preview.body.contains("ana@acme.example"),
        "{}",
        preview.body
    );
    let bad = ana
        .post(
            &format!("/admin/templates/{id}"),
            &[
                ("csrf", &edit.csrf()),
                ("name", "tinybird"),
                ("claims", r#"{"sub": "x"}"#),
                ("lifetime", "300"),
                ("allowed_clock_skew", "5"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("reserved claim"), "{}", bad.body);
    assert_eq!(ana.get("/admin/usage").await.status, 200);
    let mut eve = Browser::new(&s);
    eve.sign_up("eve@acme.example").await;
    assert_eq!(eve.get("/admin/usage").await.status, 403, "an unverified address is not an admin");
    assert_eq!(eve.get("/admin/templates").await.status, 403);
    s.stop().await;
}
