//! Access: static tokens and their scopes, JWTs with fixed params, tenant isolation enforced by
//! the engine, rate limits — and the attack suite: every way of crossing a tenant boundary that
//! we know of, each refused with no row of another tenant in the answer.

use std::time::Duration;

use access::jwt::JwtKeys;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Backend, Server, TOKEN};

const WS: &str = "5a0c4c1e-1111-2222-3333-444455556666";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A JWT signed with `key` for the test workspace.
fn signed(key: &str, claims: Value) -> String {
    JwtKeys::new(WS, key, None).sign(&claims)
}

/// A JWT reading `pipes` with `org` fixed (any JSON value).
fn tenant_jwt(name: &str, org: Value, pipes: &[&str]) -> String {
    let scopes: Vec<Value> =
        pipes.iter().map(|p| json!({"type": "PIPES:READ", "resource": p, "fixed_params": {"org": org}})).collect();
    signed(TOKEN, json!({"workspace_id": WS, "name": name, "exp": now() + 600, "scopes": scopes}))
}

fn forge(header: Value, payload: Value, signature: &str) -> String {
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{signature}", enc(&header), enc(&payload))
}

impl Server {
    async fn get_as(&self, token: &str, path: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
        let r = self.client.get(self.url(path)).query(query).bearer_auth(token).send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// What the admin sees for `SELECT count()` of `org`'s events (`None`: every tenant).
    async fn events_of(&self, org: Option<&str>) -> u64 {
        let filter = org.map(|o| format!(" WHERE org = '{o}'")).unwrap_or_default();
        let (_, v) = self.sql(&format!("SELECT count() AS c FROM events{filter} FORMAT JSON")).await;
        v["data"][0]["c"].as_u64().unwrap()
    }

    /// The `events` number of the kpis endpoint as `token` sees it, or the refusal.
    async fn kpis_events(&self, token: &str, query: &[(&str, &str)]) -> Result<u64, (StatusCode, Value)> {
        let (status, v) = self.get_as(token, "/v0/pipes/kpis.json", query).await;
        if status != 200 {
            assert!(v.get("data").is_none(), "a refusal carries no rows: {v}");
            return Err((status, v));
        }
        Ok(v["data"][0]["events"].as_u64().unwrap())
    }
}

fn error(v: &Value) -> &str {
    v["error"].as_str().unwrap_or_default()
}

both!(fixed_params_win_over_every_way_of_sending_a_parameter);
async fn fixed_params_win_over_every_way_of_sending_a_parameter(b: Backend) {
    let s = Server::start_example(b, "fixed").await;
    let acme = s.events_of(Some("acme")).await;
    let all = s.events_of(None).await;
    assert!(acme > 0 && acme < all, "the fixture has several tenants ({acme} of {all})");
    let jwt = tenant_jwt("frontend_jwt_acme", json!("acme"), &["kpis"]);
    assert_eq!(s.kpis_events(&jwt, &[]).await.unwrap(), acme);
    for query in [
        vec![("org", "globex")],
        vec![("org", "globex"), ("org", "acme")],
        vec![("ORG", "globex")],
        vec![("Org", "globex")],
        vec![("org", "")],
    ] {
        assert_eq!(s.kpis_events(&jwt, &query).await.unwrap(), acme, "{query:?}");
    }
    // A form body and a JSON body.
    let url = s.url("/v0/pipes/kpis.json");
    let form = s.client.post(&url).bearer_auth(&jwt).form(&[("org", "globex")]).send().await.unwrap();
    assert_eq!(form.json::<Value>().await.unwrap()["data"][0]["events"], acme);
    let body = s.client.post(&url).bearer_auth(&jwt).json(&json!({"org": "globex", "ORG": "globex"})).send().await;
    assert_eq!(body.unwrap().json::<Value>().await.unwrap()["data"][0]["events"], acme);
    // `q` runs over the pipe's result only: the data source itself is not a table there.
    let (status, v) = s.get_as(&jwt, "/v0/pipes/kpis.json", &[("q", "SELECT events FROM _")]).await;
    assert_eq!((status, v["data"][0]["events"].as_u64()), (StatusCode::OK, Some(acme)));
    for q in ["SELECT count() AS events FROM events", "SELECT count() AS events FROM kpis, events"] {
        let (status, v) = s.get_as(&jwt, "/v0/pipes/kpis.json", &[("q", q)]).await;
        assert_ne!(status, StatusCode::OK, "{q}: {v}");
        assert!(v.get("data").is_none());
    }
    s.stop().await;
}

both!(forged_expired_and_misdirected_jwts_are_refused);
async fn forged_expired_and_misdirected_jwts_are_refused(b: Backend) {
    let s = Server::start_example(b, "forged").await;
    let claims = json!({"workspace_id": WS, "name": "t", "exp": now() + 600,
        "scopes": [{"type": "PIPES:READ", "resource": "kpis", "fixed_params": {"org": "acme"}}]});
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims.clone();
        f(&mut c);
        signed(TOKEN, c)
    };
    let good = signed(TOKEN, claims.clone());
    let (head, _) = good.split_once('.').unwrap();
    let tampered = {
        let mut c = claims.clone();
        c["scopes"][0]["fixed_params"]["org"] = json!("globex");
        format!("{head}.{}.{}", URL_SAFE_NO_PAD.encode(c.to_string()), good.rsplit('.').next().unwrap())
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "alg none",
            forge(json!({"alg": "none", "typ": "JWT"}), claims.clone(), ""),
            "The specified alg value is not allowed",
        ),
        ("alg RS256", forge(json!({"alg": "RS256"}), claims.clone(), "c2ln"), "The specified alg value is not allowed"),
        ("alg HS512", forge(json!({"alg": "HS512"}), claims.clone(), "c2ln"), "The specified alg value is not allowed"),
        ("another key", signed("p.not-the-admin-token", claims.clone()), "Signature verification failed"),
        ("tampered payload", tampered, "Signature verification failed"),
        ("expired", with(&|c| c["exp"] = json!(now() - 1)), "Signature has expired"),
        ("nbf in the future", with(&|c| c["nbf"] = json!(now() + 60)), "The token is not yet valid (nbf)"),
        (
            "missing exp",
            with(&|c| drop(c.as_object_mut().unwrap().remove("exp"))),
            "JWT tokens is missing the 'exp' claim",
        ),
        ("wrong workspace", with(&|c| c["workspace_id"] = json!("0000")), "Invalid workspace"),
        ("not a JWT", "garbage".into(), "Not enough segments"),
        ("unknown static token", "p.unknown".into(), "Token not found"),
    ];
    for (what, token, message) in cases {
        let (status, v) = s.get_as(&token, "/v0/pipes/kpis.json", &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {v}");
        assert!(error(&v).ends_with(message), "{what}: {v}");
        assert!(v["documentation"].as_str().unwrap().ends_with("#authentication"), "{what}");
        assert!(v.get("data").is_none());
    }
    // A scope for another pipe does not open this one.
    let (status, v) = s.get_as(&tenant_jwt("t", json!("acme"), &["top_pages"]), "/v0/pipes/kpis.json", &[]).await;
    assert_eq!(
        (status, error(&v)),
        (StatusCode::FORBIDDEN, "The token you have provided doesn't have access to this resource")
    );
    // No token at all.
    let r = s.client.get(s.url("/v0/pipes/kpis.json")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(error(&r.json().await.unwrap()), "invalid authentication token. Token is required");
    s.stop().await;
}

both!(a_tenant_scoped_read_needs_a_usable_tenant_value);
async fn a_tenant_scoped_read_needs_a_usable_tenant_value(b: Backend) {
    let s = Server::start_example(b, "tenant-values").await;
    let acme = s.events_of(Some("acme")).await;
    let globex = s.events_of(Some("globex")).await;
    let missing = "The token you have provided doesn't have a value for the tenant key 'org' of Data Source 'events'";
    // No fixed param at all: Tinybird would answer every tenant's rows here.
    let no_org = signed(
        TOKEN,
        json!({"workspace_id": WS, "name": "t", "exp": now() + 60,
        "scopes": [{"type": "PIPES:READ", "resource": "kpis"}]}),
    );
    let (status, v) = s.kpis_events(&no_org, &[("org", "globex")]).await.unwrap_err();
    assert_eq!((status, error(&v)), (StatusCode::FORBIDDEN, missing));
    for (value, message) in [
        (json!(null), "The token you have provided has an empty value for the fixed param 'org'"),
        (json!(""), "The token you have provided has an empty value for the fixed param 'org'"),
        (json!([]), "The token you have provided has an empty value for the fixed param 'org'"),
        (json!(["acme", null]), "The token you have provided has an empty value for the fixed param 'org'"),
        (json!({"$ne": ""}), "The token you have provided has an invalid value for the fixed param 'org'"),
    ] {
        let (status, v) = s.kpis_events(&tenant_jwt("t", value.clone(), &["kpis"]), &[]).await.unwrap_err();
        assert_eq!((status, error(&v)), (StatusCode::FORBIDDEN, message), "{value}");
    }
    let (status, v) = s.kpis_events(&tenant_jwt("t", json!(42), &["kpis"]), &[]).await.unwrap_err();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(error(&v).contains("wrong type for the tenant key 'org'"), "{v}");
    // A pipe whose author forgot the tenant filter still reads only the token's tenants: an
    // array is their union, an unknown tenant sees nothing.
    let careless = json!({"name": "careless", "nodes": [{"name": "n", "sql": "SELECT count() AS events FROM events", "type": "endpoint"}]});
    let r = s.client.post(s.url("/v0/pipes")).bearer_auth(TOKEN).json(&careless).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let careless_events = |token: String| {
        let s = &s;
        async move { s.get_as(&token, "/v0/pipes/careless.json", &[]).await.1["data"][0]["events"].as_u64() }
    };
    assert_eq!(careless_events(tenant_jwt("t", json!("acme"), &["careless"])).await, Some(acme));
    assert_eq!(careless_events(tenant_jwt("t", json!(["acme", "globex"]), &["careless"])).await, Some(acme + globex));
    assert_eq!(careless_events(tenant_jwt("t", json!("nobody"), &["careless"])).await, Some(0));
    assert_eq!(careless_events(TOKEN.to_string()).await, Some(s.events_of(None).await));
    assert_eq!(s.kpis_events(&tenant_jwt("t", json!("nobody"), &["kpis"]), &[]).await.unwrap(), 0);
    s.stop().await;
}

both!(static_tokens_read_tenant_scoped_pipes_only_through_a_filter);
async fn static_tokens_read_tenant_scoped_pipes_only_through_a_filter(b: Backend) {
    let s = Server::start_example(b, "static").await;
    let acme = s.events_of(Some("acme")).await;
    // The `dashboard` token comes from top_pages.pipe's `TOKEN "dashboard" READ` line.
    let (status, v) = s.get_as(TOKEN, "/v0/tokens/dashboard", &[]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["scopes"], json!([{"type": "PIPES:READ", "resource": "top_pages"}]));
    assert_eq!(v["origin"]["type"], "P");
    let dashboard = v["token"].as_str().unwrap().to_string();
    let (status, v) = s.get_as(&dashboard, "/v0/pipes/top_pages.json", &[("org", "acme")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(error(&v).contains("tenant key 'org'"), "{v}");
    // With a row filter on the data source it reads its tenant, whatever `org` it asks for.
    let r = s
        .client
        .post(s.url("/v0/tokens"))
        .bearer_auth(TOKEN)
        .query(&[
            ("name", "acme_reader"),
            ("scope", "PIPES:READ:kpis"),
            ("scope", "DATASOURCES:READ:events:org = 'acme'"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let reader = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    assert_eq!(s.kpis_events(&reader, &[("org", "globex")]).await.unwrap(), 0);
    assert_eq!(s.kpis_events(&reader, &[]).await.unwrap(), acme);
    // The admin token reads everything.
    assert_eq!(s.kpis_events(TOKEN, &[]).await.unwrap(), s.events_of(None).await);
    s.stop().await;
}

both!(the_sql_api_never_reaches_another_tenant);
async fn the_sql_api_never_reaches_another_tenant(b: Backend) {
    let s = Server::start_example(b, "sql-tenants").await;
    let acme = s.events_of(Some("acme")).await;
    let filtered = signed(
        TOKEN,
        json!({"workspace_id": WS, "name": "analyst_acme", "exp": now() + 600,
        "scopes": [{"type": "DATASOURCES:READ", "resource": "events", "filter": "org = 'acme'"},
                   {"type": "PIPES:READ", "resource": "kpis", "fixed_params": {"org": "acme"}}]}),
    );
    let count = |v: &Value| v["data"][0]["c"].as_u64();
    for q in [
        "SELECT count() AS c FROM events",
        "SELECT count() AS c FROM events WHERE org = 'globex' OR 1 = 1",
        "SELECT count() AS c FROM (SELECT * FROM events)",
        "SELECT count() AS c FROM events WHERE user IN (SELECT user FROM events WHERE org = 'globex')",
        "SELECT count() AS c FROM events AS a INNER JOIN (SELECT DISTINCT user FROM events) AS b ON a.user = b.user",
        "WITH e AS (SELECT * FROM events) SELECT count() AS c FROM e",
        "SELECT sum(events) AS c FROM kpis",
        "SELECT sum(events) AS c FROM kpis WHERE 1 = 1",
    ] {
        let (status, v) = s.get_as(&filtered, "/v0/sql", &[("q", &format!("{q} FORMAT JSON"))]).await;
        assert_eq!(status, 200, "{q}: {v}");
        assert!(count(&v).unwrap() <= acme, "{q}: {v}");
    }
    let (_, v) = s
        .get_as(&filtered, "/v0/sql", &[("q", "SELECT count() AS c FROM events WHERE org != 'acme' FORMAT JSON")])
        .await;
    assert_eq!(count(&v), Some(0));
    // The quarantine is filtered by the same rule.
    let (status, v) = s
        .get_as(
            &filtered,
            "/v0/sql",
            &[("q", "SELECT count() AS c FROM events_quarantine WHERE org != 'acme' FORMAT JSON")],
        )
        .await;
    assert_eq!((status, count(&v)), (StatusCode::OK, Some(0)), "{v}");
    // A JWT with only PIPES:READ: the pipe as a table, never its data source or service tables.
    let pipe_only = tenant_jwt("t", json!("acme"), &["kpis"]);
    let (status, v) = s.get_as(&pipe_only, "/v0/sql", &[("q", "SELECT events AS c FROM kpis FORMAT JSON")]).await;
    assert_eq!((status, count(&v)), (StatusCode::OK, Some(acme)));
    for q in [
        "SELECT count() AS c FROM events",
        "SELECT count() AS c FROM events_quarantine",
        "SELECT count() AS c FROM kpis, events",
        "SELECT count() AS c FROM tinybird.pipe_stats_rt",
    ] {
        let (status, v) = s.get_as(&pipe_only, "/v0/sql", &[("q", &format!("{q} FORMAT JSON"))]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{q}: {v}");
        assert!(error(&v).starts_with("The token you have provided doesn't have access to this resource"), "{v}");
    }
    // A pipe that reads another pipe is filtered all the way down.
    let wrapper =
        json!({"name": "wrapper", "nodes": [{"name": "w", "sql": "SELECT events FROM kpis", "type": "endpoint"}]});
    let r = s.client.post(s.url("/v0/pipes")).bearer_auth(TOKEN).json(&wrapper).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let wrapped = tenant_jwt("t", json!("acme"), &["wrapper"]);
    let (status, v) = s.get_as(&wrapped, "/v0/pipes/wrapper.json", &[("org", "globex")]).await;
    assert_eq!((status, v["data"][0]["events"].as_u64()), (StatusCode::OK, Some(acme)), "{v}");
    let no_tenant = signed(
        TOKEN,
        json!({"workspace_id": WS, "name": "t", "exp": now() + 60,
        "scopes": [{"type": "PIPES:READ", "resource": "wrapper"}]}),
    );
    let (status, _) = s.get_as(&no_tenant, "/v0/pipes/wrapper.json", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    s.stop().await;
}

both!(sql_injection_in_every_parameter_stays_inside_the_tenant);
async fn sql_injection_in_every_parameter_stays_inside_the_tenant(b: Backend) {
    let s = Server::start_example(b, "injection").await;
    let acme = s.events_of(Some("acme")).await;
    let jwt = tenant_jwt("t", json!("acme"), &["kpis", "top_pages", "user_activity", "events_per_minute"]);
    let payloads = [
        "' OR 1=1 --",
        "acme' OR org = 'globex",
        "x') OR ('1'='1",
        "2026-01-01 00:00:00' OR '1'='1",
        "1; DROP TABLE events",
        "1 UNION ALL SELECT count() FROM events",
        "\\' OR 1=1 #",
    ];
    for pipe in ["kpis", "top_pages", "user_activity", "events_per_minute"] {
        let path = format!("/v0/pipes/{pipe}.json");
        for param in ["org", "user", "date_from", "date_to", "limit", "path", "event"] {
            for payload in payloads {
                let (status, v) = s.get_as(&jwt, &path, &[(param, payload), ("user", "user_1")]).await;
                assert!(status == 200 || status == 400, "{pipe} {param}={payload}: {status} {v}");
                // Exactly what the admin sees for acme with the same request: the payload
                // reached the template as a value, never as SQL that widens the read.
                let mut admin_query = vec![("org", "acme"), ("user", "user_1")];
                if param != "org" {
                    admin_query.insert(0, (param, payload));
                }
                let (admin_status, admin) = s.get_as(TOKEN, &path, &admin_query).await;
                assert_eq!(status, admin_status, "{pipe} {param}={payload}: {v}");
                assert_eq!(v["data"], admin["data"], "{pipe} {param}={payload}");
                if pipe == "kpis" && status == 200 {
                    assert!(v["data"][0]["events"].as_u64().unwrap() <= acme, "{param}={payload}: {v}");
                }
            }
        }
    }
    assert!(s.events_of(None).await > acme, "nothing was dropped");
    s.stop().await;
}

both!(token_precedence_rate_limits_and_admin_refresh);
async fn token_precedence_rate_limits_and_admin_refresh(b: Backend) {
    let s = Server::start_example(b, "limits").await;
    let acme = s.events_of(Some("acme")).await;
    let globex = s.events_of(Some("globex")).await;
    // `?token=` comes first, the header second (spec §3.1).
    let acme_jwt = tenant_jwt("a", json!("acme"), &["kpis"]);
    let globex_jwt = tenant_jwt("g", json!("globex"), &["kpis"]);
    let r = s.client.get(s.url("/v0/pipes/kpis.json")).query(&[("token", &acme_jwt)]).bearer_auth(&globex_jwt);
    assert_eq!(r.send().await.unwrap().json::<Value>().await.unwrap()["data"][0]["events"], acme);
    assert_ne!(acme, globex);
    // limits.rps: a burst of rps, then 429 with the headers, then recovery.
    let limited = signed(
        TOKEN,
        json!({"workspace_id": WS, "name": "frontend_jwt_acme", "exp": now() + 600,
        "scopes": [{"type": "PIPES:READ", "resource": "kpis", "fixed_params": {"org": "acme"}}], "limits": {"rps": 2}}),
    );
    for remaining in [1, 0] {
        let r = s.client.get(s.url("/v0/pipes/kpis.json")).bearer_auth(&limited).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-ratelimit-limit"], "2");
        assert_eq!(r.headers()["x-ratelimit-remaining"], remaining.to_string().as_str());
    }
    let r = s.client.get(s.url("/v0/pipes/kpis.json")).bearer_auth(&limited).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    assert!(r.headers().contains_key("x-ratelimit-reset"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        error(&body),
        "Too many requests: the JWT 'frontend_jwt_acme' exceeded its limit of 2 requests per second for 'kpis'"
    );
    // Another JWT with the same name shares the bucket; another name does not.
    let same_name = signed(
        TOKEN,
        json!({"workspace_id": WS, "name": "frontend_jwt_acme", "exp": now() + 300,
        "scopes": [{"type": "PIPES:READ", "resource": "kpis", "fixed_params": {"org": "acme"}}], "limits": {"rps": 2}}),
    );
    assert_eq!(s.client.get(s.url("/v0/pipes/kpis.json")).bearer_auth(&same_name).send().await.unwrap().status(), 429);
    assert_eq!(s.kpis_events(&acme_jwt, &[]).await.unwrap(), acme);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(s.client.get(s.url("/v0/pipes/kpis.json")).bearer_auth(&limited).send().await.unwrap().status(), 200);
    // Refreshing the admin token invalidates every JWT signed with it.
    let r = s.client.post(s.url("/v0/tokens/admin%20token/refresh")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let new_admin = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let (status, v) = s.get_as(&acme_jwt, "/v0/pipes/kpis.json", &[]).await;
    assert_eq!(
        (status, error(&v)),
        (StatusCode::FORBIDDEN, "invalid authentication token. Signature verification failed")
    );
    let (status, _) = s.get_as(TOKEN, "/v0/pipes/kpis.json", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the old admin token is gone");
    let fresh = JwtKeys::new(WS, &new_admin, None).sign(&json!({"workspace_id": WS, "name": "a", "exp": now() + 60,
        "scopes": [{"type": "PIPES:READ", "resource": "kpis", "fixed_params": {"org": "acme"}}]}));
    assert_eq!(s.kpis_events(&fresh, &[]).await.unwrap(), acme);
    s.stop().await;
}

both!(the_tokens_api_and_the_scopes_of_every_route);
async fn the_tokens_api_and_the_scopes_of_every_route(b: Backend) {
    let s = Server::start_example(b, "tokens-api").await;
    let post = |query: Vec<(&'static str, &'static str)>| {
        s.client.post(s.url("/v0/tokens/")).bearer_auth(TOKEN).query(&query).send()
    };
    let r = post(vec![("name", "appender"), ("scope", "DATASOURCES:APPEND:events"), ("description", "ingest")])
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["scopes"], json!([{"type": "DATASOURCES:APPEND", "resource": "events"}]));
    assert_eq!(
        (t["origin"]["type"].as_str(), t["host"].as_str(), t["description"].as_str()),
        (Some("C"), Some("aviary"), Some("ingest"))
    );
    let appender = t["token"].as_str().unwrap().to_string();
    assert!(appender.starts_with("p."));
    // Errors of the Tokens API.
    let r = post(vec![("name", "appender"), ("scope", "ADMIN")]).await.unwrap();
    assert_eq!(
        (r.status(), error(&r.json().await.unwrap())),
        (StatusCode::BAD_REQUEST, "Token with name \"appender\" already exists")
    );
    let r = post(vec![("name", "x"), ("scope", "PIPES:EXECUTE:kpis")]).await.unwrap();
    assert_eq!(error(&r.json().await.unwrap()), "Unknown scope PIPES:EXECUTE:kpis");
    let r = post(vec![("name", "x")]).await.unwrap();
    assert_eq!(error(&r.json().await.unwrap()), "scope is mandatory");
    let r = post(vec![("name", "x"), ("scope", "DATASOURCES:READ:events:(SELECT 1)")]).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = post(vec![("name", "multi"), ("scope", "PIPES:READ:kpis,PIPES:READ:top_pages")]).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["scopes"].as_array().unwrap().len(), 2);
    let (status, v) = s.get_as(TOKEN, "/v0/tokens/nope", &[]).await;
    assert_eq!((status, error(&v)), (StatusCode::NOT_FOUND, "Token \"nope\" not found"));
    // The appender appends and does nothing else.
    let r = s.client.post(s.url("/v0/events?name=events&wait=true")).bearer_auth(&appender);
    let r = r.body(r#"{"timestamp":"2026-11-02 00:00:00","org":"acme","user":"u","event":"e","path":"/","country":"ES","duration_ms":1,"tags":[]}"#).send().await.unwrap();
    assert_eq!(r.status(), 200);
    for (path, message) in [
        ("/v0/pipes/kpis.json", "The token you have provided doesn't have access to this resource"),
        ("/v0/tokens", "The token you have provided doesn't have access to this resource"),
        ("/v0/sql?q=SELECT+1", ""),
    ] {
        let (status, v) = s.get_as(&appender, path, &[]).await;
        if message.is_empty() {
            assert_eq!(status, 200, "SELECT 1 reads no resource");
        } else {
            assert_eq!((status, error(&v)), (StatusCode::FORBIDDEN, message), "{path}");
        }
    }
    let r = s.client.post(s.url("/v0/events?name=other")).bearer_auth(&appender).body("{}").send().await.unwrap();
    assert_eq!(
        (r.status(), r.text().await.unwrap()),
        (StatusCode::FORBIDDEN, "The token does not have permission to append to 'other'\n".into())
    );
    let r = s
        .client
        .post(s.url("/v0/datasources?name=x&mode=create&schema=a%20String"))
        .bearer_auth(&appender)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error(&r.json().await.unwrap()),
        "Token does not have DATASOURCES:CREATE scope, create mode requires the DATASOURCES:CREATE scope"
    );
    let r = s.client.delete(s.url("/v0/datasources/events")).bearer_auth(&appender).send().await.unwrap();
    assert_eq!(
        error(&r.json().await.unwrap()),
        "User does not have permissions to drop Data Source \"events\", set DROP scope"
    );
    // JWTs only read.
    let jwt = tenant_jwt("t", json!("acme"), &["kpis"]);
    let r = s.client.post(s.url("/v0/events?name=events")).bearer_auth(&jwt).body("{}").send().await.unwrap();
    assert_eq!(
        (r.status(), r.text().await.unwrap()),
        (StatusCode::FORBIDDEN, "This API does not support JWT tokens\n".into())
    );
    for path in ["/v0/datasources", "/v0/tokens", "/v0/pipes"] {
        let (status, v) = s.get_as(&jwt, path, &[]).await;
        assert_eq!((status, error(&v)), (StatusCode::FORBIDDEN, "This API does not support JWT tokens"), "{path}");
    }
    // PUT replaces scopes (and creates a missing token), refresh changes the string, DELETE is 204.
    let r = s
        .client
        .put(s.url("/v0/tokens/appender"))
        .bearer_auth(TOKEN)
        .query(&[("scope", "PIPES:READ:kpis")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["scopes"], json!([{"type": "PIPES:READ", "resource": "kpis"}]));
    let r = s
        .client
        .put(s.url("/v0/tokens/created_by_put"))
        .bearer_auth(TOKEN)
        .query(&[("scope", "PIPES:READ:kpis")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s.client.post(s.url("/v0/tokens/appender/refresh")).bearer_auth(TOKEN).send().await.unwrap();
    let refreshed = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    assert_ne!(refreshed, appender);
    assert_eq!(s.get_as(&appender, "/v0/sql", &[("q", "SELECT 1")]).await.0, StatusCode::FORBIDDEN);
    let r = s.client.delete(s.url("/v0/tokens/appender")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(s.get_as(&refreshed, "/v0/sql", &[("q", "SELECT 1")]).await.0, StatusCode::FORBIDDEN);
    let (_, list) = s.get_as(TOKEN, "/v0/tokens", &[]).await;
    let names: Vec<&str> = list["tokens"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"admin token") && names.contains(&"dashboard") && names.contains(&"ingest"), "{names:?}");
    assert!(!names.contains(&"appender"));
    s.stop().await;
}

both!(jwts_minted_by_the_api_work_and_land_in_the_usage_log);
async fn jwts_minted_by_the_api_work_and_land_in_the_usage_log(b: Backend) {
    let s = Server::start_example(b, "mint").await;
    let acme = s.events_of(Some("acme")).await;
    let exp = now() + 600;
    let r = s
        .client
        .post(s.url(&format!("/v0/tokens/?expiration_time={exp}")))
        .bearer_auth(TOKEN)
        .body(json!({"name": "tenant_acme", "scopes": [{"type": "PIPES:READ", "resource": "kpis", "fixed_params": {"org": "acme"}}], "limits": {"rps": 10}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let minted: Value = r.json().await.unwrap();
    assert_eq!(
        (minted["name"].as_str(), minted["exp"].as_i64(), minted["limits"]["rps"].as_u64()),
        (Some("tenant_acme"), Some(exp), Some(10))
    );
    let jwt = minted["token"].as_str().unwrap();
    assert_eq!(s.kpis_events(jwt, &[("org", "globex")]).await.unwrap(), acme);
    for (query, body, message) in [
        (
            format!("expiration_time={}", now() - 1),
            json!({"name": "x", "scopes": [{"type": "PIPES:READ", "resource": "kpis"}]}),
            "Invalid expiration_time, it must be a future Unix timestamp",
        ),
        (
            format!("expiration_time={exp}"),
            json!({"name": "x", "scopes": [{"type": "PIPES:READ", "resource": "nope"}]}),
            "Resource 'nope' not found",
        ),
        (
            format!("expiration_time={exp}"),
            json!({"name": "x", "scopes": [{"type": "ADMIN"}]}),
            "Invalid scope 'ADMIN', only PIPES:READ and DATASOURCES:READ are allowed in JWTs",
        ),
    ] {
        let r = s
            .client
            .post(s.url(&format!("/v0/tokens?{query}")))
            .bearer_auth(TOKEN)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(
            (r.status(), error(&r.json().await.unwrap()).to_string()),
            (StatusCode::BAD_REQUEST, message.to_string())
        );
    }
    // The usage log names the token and the tenant.
    let mut seen = Value::Null;
    for _ in 0..100 {
        let (_, v) = s.sql("SELECT token_name, tenant, parameters['org'] AS org FROM tinybird.pipe_stats_rt WHERE pipe_name = 'kpis' AND token_name = 'tenant_acme' FORMAT JSON").await;
        if v["rows"].as_u64().unwrap_or(0) > 0 {
            seen = v["data"][0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, json!({"token_name": "tenant_acme", "tenant": "acme", "org": "acme"}));
    s.stop().await;
}

both!(the_tenant_filter_prunes_like_the_pipes_own_filter);
async fn the_tenant_filter_prunes_like_the_pipes_own_filter(b: Backend) {
    let s = Server::start_with_example(b, "pruning", |c| {
        c.max_body_bytes = 16 << 20;
        c.max_decompressed_bytes = 16 << 20;
    })
    .await;
    // 40,000 events over 200 organizations, sorted by org into parts: eight on the embedded
    // backend; one on ClickHouse, whose granules (8,192 rows) are larger than these parts.
    let per_part = if b == Backend::ClickHouse { 40_000 } else { 5_000 };
    let mut bodies = vec![String::new()];
    for i in 0..40_000 {
        if i % per_part == 0 {
            bodies.push(String::new());
        }
        bodies.last_mut().unwrap().push_str(&format!(
            "{{\"timestamp\":\"2026-11-02 10:{:02}:{:02}.000\",\"org\":\"o{}\",\"user\":\"u{}\",\"event\":\"page_view\",\"path\":\"/\",\"country\":\"ES\",\"duration_ms\":1,\"tags\":[]}}\n",
            (i / 60) % 60,
            i % 60,
            i % 200,
            i % 13
        ));
    }
    for body in bodies.into_iter().filter(|b| !b.is_empty()) {
        let (status, text) = s.events("name=events&wait=true", body).await;
        assert_eq!(status, 200, "{text}");
    }
    // Wait for the buffers to reach Parquet (rows in memory are all counted as read).
    let mut parts_only = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (_, v) = s.get_as(TOKEN, "/v0/sql", &[("q", "SELECT count() AS c FROM events FORMAT JSON")]).await;
        if v["statistics"]["rows_read"].as_u64() == v["data"][0]["c"].as_u64() && s.events_of(Some("o7")).await == 200 {
            let (_, one) = s.get_as(TOKEN, "/v0/pipes/kpis.json", &[("org", "o7")]).await;
            if one["statistics"]["rows_read"].as_u64().unwrap() < 40_000 {
                parts_only = true;
                break;
            }
        }
    }
    assert!(parts_only, "the events were flushed to parts");
    let (_, admin) = s.get_as(TOKEN, "/v0/pipes/kpis.json", &[("org", "o7")]).await;
    let (_, tenant) = s.get_as(&tenant_jwt("t", json!("o7"), &["kpis"]), "/v0/pipes/kpis.json", &[]).await;
    assert_eq!(tenant["data"], admin["data"]);
    let read = |v: &Value| v["statistics"]["rows_read"].as_u64().unwrap();
    assert_eq!(read(&tenant), read(&admin), "the injected filter prunes as the pipe's own WHERE does");
    // Embedded: eight parts (one per request) of 1,024-row pages, about a page per part.
    // ClickHouse: one part of five granules, one or two read.
    let most = if b == Backend::ClickHouse { 40_000 / 2 } else { 40_000 / 4 };
    assert!(read(&tenant) < most, "pruned: {} rows read", read(&tenant));
    s.stop().await;
}

both!(static_tokens_can_share_a_default_rate_and_openapi_lists_only_readable_pipes);
async fn static_tokens_can_share_a_default_rate_and_openapi_lists_only_readable_pipes(b: Backend) {
    let s = Server::start_with(b, "static-rps", |c| c.static_token_rps = 2).await;
    let r = s
        .client
        .post(s.url("/v0/tokens"))
        .bearer_auth(TOKEN)
        .query(&[("name", "reader"), ("scope", "DATASOURCES:READ:events:org = 'acme'")])
        .send()
        .await
        .unwrap();
    let reader = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let statuses: Vec<u16> = {
        let mut out = Vec::new();
        for _ in 0..3 {
            out.push(s.get_as(&reader, "/v0/sql", &[("q", "SELECT count() FROM events FORMAT JSON")]).await.0.as_u16());
        }
        out
    };
    assert_eq!(statuses, [200, 200, 429]);
    // The admin token is never limited by it.
    for _ in 0..5 {
        assert_eq!(s.sql("SELECT 1 FORMAT JSON").await.0, 200);
    }
    s.stop().await;

    let s = Server::start_example(b, "openapi-scope").await;
    let (status, doc) = s.get_as(&tenant_jwt("t", json!("acme"), &["kpis"]), "/v0/pipes/openapi.json", &[]).await;
    assert_eq!(status, 200);
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert!(paths.iter().all(|p| p.contains("/kpis.")) && !paths.is_empty(), "{paths:?}");
    let (_, all) = s.get_as(TOKEN, "/v0/pipes/openapi.json", &[]).await;
    assert!(all["paths"].as_object().unwrap().keys().any(|p| p.contains("/top_pages.")));
    s.stop().await;
}

both!(nothing_outside_the_workspace_is_readable);
/// Tables of other databases, table functions that reach files, URLs or other servers, and
/// functions that read dictionaries or other tables are refused for every token, admin too;
/// a scoped token also cannot name a data source by a qualified name.
async fn nothing_outside_the_workspace_is_readable(b: Backend) {
    let s = Server::start_example(b, "outside").await;
    let tenant = tenant_jwt("t", json!("acme"), &["kpis"]);
    let attempts = [
        "SELECT name FROM system.tables",
        "SELECT * FROM system.one",
        "SELECT * FROM remote('127.0.0.1', system.one)",
        "SELECT * FROM url('http://127.0.0.1:1/', CSV, 'a String')",
        "SELECT * FROM file('x.csv', CSV, 'a String')",
        "SELECT * FROM merge(currentDatabase(), '^events')",
        "SELECT joinGet('events', 'org', 1)",
        "SELECT dictGetString('d', 'a', toUInt64(1))",
        "SELECT count() FROM events WHERE org IN (SELECT org FROM system.one)",
        "SELECT sleepEachRow(1) FROM events",
    ];
    for q in attempts {
        for token in [TOKEN, tenant.as_str()] {
            let (status, v) = s.get_as(token, "/v0/sql", &[("q", &format!("{q} FORMAT JSON"))]).await;
            assert!(status.is_client_error(), "{q} as {token}: {status} {v}");
            assert!(v.get("data").is_none(), "{q}: {v}");
        }
    }
    // A scoped token reads the tenant's rows only, however the data source is named.
    let (status, v) = s.get_as(&tenant, "/v0/pipes/kpis.json", &[("q", "SELECT count() AS c FROM _")]).await;
    assert_eq!((status, v["data"][0]["c"].clone()), (StatusCode::OK, json!(1)));
    for q in [
        "SELECT count() AS c FROM events FINAL",
        "SELECT count() AS c FROM `events` AS e",
        "SELECT count() AS c FROM default.events",
    ] {
        let (status, v) = s.get_as(&tenant, "/v0/sql", &[("q", &format!("{q} FORMAT JSON"))]).await;
        assert!(status.is_client_error(), "{q}: {status} {v}");
    }
    s.stop().await;
}
