//! The identity Backend API over HTTP, on SQLite and on PostgreSQL: secret-key authentication,
//! Clerk's error bodies and content type, list and deleted shapes, bodies as JSON, forms or
//! nothing, the per-key rate limit, and the whole path the seed app depends on — a `tinybird`
//! template token minted through `/v1` reads only its organization's rows through `/v0`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, SECRET_KEY, Server, TOKEN};

async fn start(name: &str, store: &str, limit: u32) -> Server {
    let database = (store == "postgres").then(crate::postgres::fresh_database);
    Server::start_with_example(Backend::Embedded, &format!("{name}-{store}"), move |c| {
        c.database_url = database;
        c.identity_requests_per_10s = limit;
    })
    .await
}

/// Calls the Backend API; the status and the JSON body (the content type must be exactly
/// `application/json`, as `@clerk/backend` compares it).
async fn call(s: &Server, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut r = s.client.request(method, s.url(path)).bearer_auth(SECRET_KEY);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    assert_eq!(r.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"), "{path}");
    (status, r.json().await.unwrap())
}

macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name("sqlite").await
            }
            #[tokio::test]
            async fn postgres() {
                super::$name("postgres").await
            }
        }
    };
}

both!(secret_key_errors_and_shapes);
async fn secret_key_errors_and_shapes(store: &str) {
    let s = start("bapi-shapes", store, 0).await;
    // No key, a wrong key, an analytics token: 401 with Clerk's error body.
    for key in [None, Some("sk_live_wrong"), Some(TOKEN)] {
        let mut r = s.client.get(s.url("/v1/users"));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["content-type"], "application/json");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "authentication_invalid");
        assert_eq!(body["clerk_trace_id"].as_str().unwrap().len(), 32);
    }
    let (status, body) = call(&s, Method::GET, "/v1/no_such_thing", None).await;
    assert_eq!((status.as_u16(), body["errors"][0]["code"].as_str()), (404, Some("resource_not_found")));
    // JWKS: public at the well-known path, secret-key protected under /v1.
    let public: Value = s.client.get(s.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(public["keys"][0]["kty"], "RSA");
    assert_eq!(call(&s, Method::GET, "/v1/jwks", None).await.1, public);
    assert_eq!(s.client.get(s.url("/v1/jwks")).send().await.unwrap().status(), 401);
    // Default images are served.
    let img = s.client.get(ana_image(&s).await).send().await.unwrap();
    assert_eq!(img.headers()["content-type"], "image/svg+xml");
    assert!(img.text().await.unwrap().starts_with("<svg"));
    // Users: created from JSON and from a form; the list is a bare array, the count an object.
    let (status, ana) = call(
        &s,
        Method::POST,
        "/v1/users",
        Some(json!({"email_address": ["ana@acme.example"], "password": "correct horse battery"})),
    )
    .await;
    assert_eq!(status, 200, "{ana}");
    let form = s
        .client
        .post(s.url("/v1/users"))
        .bearer_auth(SECRET_KEY)
        .form(&[("email_address", "bo@acme.example"), ("password", "correct horse battery"), ("first_name", "Bo")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let (_, list) = call(&s, Method::GET, "/v1/users?limit=1", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["first_name"], "Bo");
    assert_eq!(
        call(&s, Method::GET, "/v1/users/count", None).await.1,
        json!({"object": "total_count", "total_count": 2})
    );
    let (status, err) =
        call(&s, Method::POST, "/v1/users", Some(json!({"email_address": ["cy@acme.example"], "password": "short"})))
            .await;
    assert_eq!(status, 422);
    assert_eq!(err["errors"][0]["code"], "form_password_length_too_short");
    assert_eq!(err["errors"][0]["meta"]["param_name"], "password");
    let bad = s
        .client
        .post(s.url("/v1/users"))
        .bearer_auth(SECRET_KEY)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    // Organizations and memberships answer {data, total_count}.
    let ana_id = ana["id"].as_str().unwrap();
    let (_, org) = call(
        &s,
        Method::POST,
        "/v1/organizations",
        Some(json!({"name": "Acme", "slug": "acme", "created_by": ana_id})),
    )
    .await;
    let (_, orgs) = call(&s, Method::GET, "/v1/organizations", None).await;
    assert_eq!(orgs["total_count"], 1);
    assert_eq!(orgs["data"][0]["id"], org["id"]);
    let (_, ms) = call(&s, Method::GET, "/v1/organizations/acme/memberships", None).await;
    assert_eq!((ms["total_count"].as_i64(), ms["data"][0]["role"].as_str()), (Some(1), Some("org:admin")));
    // Sessions: a bare array unless paginated=true; minting with an empty body (as the SDK sends).
    let (_, session) = call(&s, Method::POST, "/v1/sessions", Some(json!({"user_id": ana_id}))).await;
    let sid = session["id"].as_str().unwrap();
    assert!(call(&s, Method::GET, &format!("/v1/sessions?user_id={ana_id}"), None).await.1.is_array());
    assert_eq!(
        call(&s, Method::GET, &format!("/v1/sessions?user_id={ana_id}&paginated=true"), None).await.1["total_count"],
        1
    );
    let empty = s
        .client
        .post(s.url(&format!("/v1/sessions/{sid}/tokens")))
        .bearer_auth(SECRET_KEY)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 200);
    assert_eq!(empty.json::<Value>().await.unwrap()["object"], "token");
    // Deleted objects: object + id + deleted.
    let (_, deleted) = call(&s, Method::DELETE, &format!("/v1/users/{}", form_id(&s).await), None).await;
    assert_eq!(deleted["deleted"], true);
    assert_eq!(deleted["object"], "user");
    s.stop().await;
}

/// A user's default image URL (the user is created when there is none).
async fn ana_image(s: &Server) -> String {
    let (_, u) =
        call(s, Method::POST, "/v1/users", Some(json!({"username": "imagetest", "skip_password_requirement": true})))
            .await;
    let url = u["image_url"].as_str().unwrap().to_string();
    call(s, Method::DELETE, &format!("/v1/users/{}", u["id"].as_str().unwrap()), None).await;
    url
}

async fn form_id(s: &Server) -> String {
    let (_, list) = call(s, Method::GET, "/v1/users?email_address=bo@acme.example", None).await;
    list[0]["id"].as_str().unwrap().to_string()
}

both!(rate_limit_per_secret_key);
async fn rate_limit_per_secret_key(store: &str) {
    let s = start("bapi-limit", store, 20).await;
    let mut statuses = Vec::new();
    for _ in 0..25 {
        let r = s.client.get(s.url("/v1/users/count")).bearer_auth(SECRET_KEY).send().await.unwrap();
        if r.status() == 429 {
            assert!(r.headers().get("retry-after").is_some());
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["errors"][0]["code"], "too_many_requests");
            statuses.push(429);
        } else {
            statuses.push(r.status().as_u16());
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 20, "{statuses:?}");
    assert_eq!(statuses[24], 429);
    // The JWKS is never limited.
    assert_eq!(s.client.get(s.url("/v1/jwks")).bearer_auth(SECRET_KEY).send().await.unwrap().status(), 200);
    s.stop().await;
}

both!(tinybird_template_token_reads_only_its_organization);
async fn tinybird_template_token_reads_only_its_organization(store: &str) {
    let s = start("bapi-tenant", store, 0).await;
    let (_, user) = call(
        &s,
        Method::POST,
        "/v1/users",
        Some(json!({"email_address": ["gus@globex.example"], "password": "correct horse battery"})),
    )
    .await;
    let uid = user["id"].as_str().unwrap();
    call(&s, Method::POST, "/v1/organizations", Some(json!({"name": "Globex", "slug": "globex", "created_by": uid})))
        .await;
    call(&s, Method::POST, "/v1/organizations", Some(json!({"name": "Acme", "slug": "acme"}))).await;
    let template = json!({
        "name": "tinybird", "lifetime": 300, "custom_signing_key": true, "signing_algorithm": "HS256", "signing_key": TOKEN,
        "claims": {"name": "frontend_jwt_{{org.slug}}", "limits": {"rps": 10}, "workspace_id": "5a0c4c1e-1111-2222-3333-444455556666",
            "scopes": [{"type": "PIPES:READ", "resource": "top_pages", "fixed_params": {"org": "{{org.slug}}"}}]}
    });
    let (status, t) = call(&s, Method::POST, "/v1/jwt_templates", Some(template)).await;
    assert_eq!(status, 200, "{t}");
    let (_, session) = call(&s, Method::POST, "/v1/sessions", Some(json!({"user_id": uid}))).await;
    assert_eq!(session["last_active_organization_id"].as_str().map(|o| o.starts_with("org_")), Some(true));
    let sid = session["id"].as_str().unwrap();
    let (_, token) = call(&s, Method::POST, &format!("/v1/sessions/{sid}/tokens/tinybird"), None).await;
    let jwt = token["jwt"].as_str().unwrap();
    // What the admin sees for globex, and what the tenant token sees, even asking for acme.
    let (_, admin) = s.sql("SELECT path, count() AS views FROM events WHERE org = 'globex' AND event = 'page_view' GROUP BY path ORDER BY views DESC, path FORMAT JSON").await;
    assert!(!admin["data"].as_array().unwrap().is_empty(), "{admin}");
    for query in ["", "?org=acme", "?org=acme&ORG=acme"] {
        let r = s.client.get(s.url(&format!("/v0/pipes/top_pages.json{query}"))).bearer_auth(jwt).send().await.unwrap();
        assert_eq!(r.status(), 200, "{query}");
        let body: Value = r.json().await.unwrap();
        let paths: Vec<&Value> = body["data"].as_array().unwrap().iter().map(|r| &r["path"]).collect();
        let expected: Vec<&Value> = admin["data"].as_array().unwrap().iter().map(|r| &r["path"]).collect();
        assert_eq!(paths, expected, "{query}: {body}");
    }
    // Outside its scopes: another pipe, the SQL API on the data source.
    let r = s.client.get(s.url("/v0/pipes/kpis.json")).bearer_auth(jwt).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = s
        .client
        .get(s.url("/v0/sql"))
        .query(&[("q", "SELECT count() FROM events")])
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A user without an organization gets `org: null`, which the analytics API refuses.
    let (_, loner) = call(
        &s,
        Method::POST,
        "/v1/users",
        Some(json!({"email_address": ["lone@x.example"], "password": "correct horse battery"})),
    )
    .await;
    let (_, ls) = call(&s, Method::POST, "/v1/sessions", Some(json!({"user_id": loner["id"]}))).await;
    let (_, lt) =
        call(&s, Method::POST, &format!("/v1/sessions/{}/tokens/tinybird", ls["id"].as_str().unwrap()), None).await;
    let r =
        s.client.get(s.url("/v0/pipes/top_pages.json")).bearer_auth(lt["jwt"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // A revoked session mints nothing.
    call(&s, Method::POST, &format!("/v1/sessions/{sid}/revoke"), None).await;
    let (status, err) = call(&s, Method::POST, &format!("/v1/sessions/{sid}/tokens/tinybird"), None).await;
    assert_eq!((status.as_u16(), err["errors"][0]["code"].as_str()), (404, Some("resource_not_found")));
    s.stop().await;
}

both!(verify_password_locks_the_account);
async fn verify_password_locks_the_account(store: &str) {
    let s = start("bapi-lockout", store, 0).await;
    let (_, u) = call(
        &s,
        Method::POST,
        "/v1/users",
        Some(json!({"email_address": ["ana@acme.example"], "password": "correct horse battery"})),
    )
    .await;
    let path = format!("/v1/users/{}/verify_password", u["id"].as_str().unwrap());
    assert_eq!(
        call(&s, Method::POST, &path, Some(json!({"password": "correct horse battery"}))).await.1,
        json!({"verified": true})
    );
    for _ in 0..9 {
        let (status, body) = call(&s, Method::POST, &path, Some(json!({"password": "wrong"}))).await;
        assert_eq!((status.as_u16(), body["errors"][0]["code"].as_str()), (422, Some("form_password_incorrect")));
    }
    let r =
        s.client.post(s.url(&path)).bearer_auth(SECRET_KEY).json(&json!({"password": "wrong"})).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "3600");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "user_locked");
    assert_eq!(body["errors"][0]["message"], "Your account is locked. You will be able to try again in 60 minutes.");
    let (status, _) = call(&s, Method::POST, &path, Some(json!({"password": "correct horse battery"}))).await;
    assert_eq!(status, 429, "locked even with the right password");
    let unlocked = call(&s, Method::POST, &format!("/v1/users/{}/unlock", u["id"].as_str().unwrap()), None).await.1;
    assert_eq!(unlocked["locked"], false);
    assert_eq!(
        call(&s, Method::POST, &path, Some(json!({"password": "correct horse battery"}))).await.1,
        json!({"verified": true})
    );
    s.stop().await;
}
