//! Real Tinybird clients against the real server: `verdin` (PyPI) sends events, appends NDJSON
//! and CSV, and reads the rows back through the SQL API and pipe endpoints;
//! `tinybird-python-sdk` (PyPI) buffers events and calls an endpoint; `@tinybirdco/mockingbird`
//! (npm) streams generated events into a data source it creates on the fly.

use std::process::Command;

use crate::process::{node_summary, start};

#[test]
fn verdin_ingests_and_reads_back() {
    let python = std::env::var("AVIARY_REF_PYTHON")
        .expect("AVIARY_REF_PYTHON must name a Python with verdin installed (scripts/test sets it up)");
    let dir = std::env::temp_dir().join(format!("aviary-verdin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let project = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/web-analytics");
    let server = start(&dir, "p.verdin-admin", &["--project", project]);
    let url = server.url.clone();
    let out = Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/verdin_ingest.py"))
        .args([&url, "p.verdin-admin"])
        .output()
        .expect("python runs");
    drop(server); // SIGKILL, and waited for
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "verdin failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(
        seen,
        serde_json::json!({
            "events": {"status": null, "successful_rows": 2, "quarantined_rows": 1},
            "ndjson_status": 200,
            "csv_status": 200,
            "count": 5
        })
    );
}

#[test]
fn mockingbird_streams_events() {
    let modules = std::env::var("AVIARY_NODE_MODULES")
        .expect("AVIARY_NODE_MODULES must name a node_modules with @tinybirdco/mockingbird (scripts/test sets it up)");
    let dir = std::env::temp_dir().join(format!("aviary-mockingbird-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = start(&dir, "p.mockingbird-admin", &[]);
    let url = server.url.clone();
    let out = Command::new("node")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/mockingbird.mjs"))
        .args([&modules, &url, "p.mockingbird-admin", "2000"])
        .output()
        .expect("node runs");
    assert!(out.status.success(), "mockingbird failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().last().is_some_and(|l| l == "{\"sent\":2000}"), "{stdout}");
    assert!(!stdout.contains("Tinybird Error"), "{stdout}");
    let v: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{url}/v0/sql"))
        .query(&[("q", "SELECT count(*) AS c, count(DISTINCT org) AS orgs FROM page_views FORMAT JSON")])
        .bearer_auth("p.mockingbird-admin")
        .send()
        .unwrap()
        .json()
        .unwrap();
    drop(server); // SIGKILL, and waited for
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(v["data"][0], serde_json::json!({"c": 2000, "orgs": 3}));
}

#[test]
fn python_sdks_read_pipe_endpoints() {
    let python = std::env::var("AVIARY_REF_PYTHON")
        .expect("AVIARY_REF_PYTHON must name a Python with verdin and tinybird-python-sdk (scripts/test sets it up)");
    let dir = std::env::temp_dir().join(format!("aviary-sdk-pipes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let project = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/web-analytics");
    let server = start(&dir, "p.sdk-admin", &["--project", project]);
    let out = Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/sdk_pipes.py"))
        .args([&server.url, "p.sdk-admin"])
        .output()
        .expect("python runs");
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "the SDKs failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(
        seen,
        serde_json::json!({
            "kpis": {"events": 30, "visitors": 7, "page_views": 30},
            "top": [{"path": "/p0", "views": 10, "visitors": 7}, {"path": "/p1", "views": 10, "visitors": 7}],
            "top_meta": [["path", "String"], ["views", "UInt64"], ["visitors", "UInt64"]],
            "pages": [2, 1],
            "over": [{"c": 3}],
            "missing": [404, "The pipe 'nope' does not exist"]
        })
    );
}

#[test]
fn openapi_document_passes_a_real_validator() {
    let python = std::env::var("AVIARY_REF_PYTHON")
        .expect("AVIARY_REF_PYTHON must name a Python with openapi-spec-validator (scripts/test sets it up)");
    let dir = std::env::temp_dir().join(format!("aviary-openapi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let project = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/web-analytics");
    let server = start(&dir.join("data"), "p.openapi-admin", &["--project", project]);
    let doc: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{}/v0/pipes/openapi.json", server.url))
        .bearer_auth("p.openapi-admin")
        .send()
        .unwrap()
        .json()
        .unwrap();
    drop(server);
    let file = dir.join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = Command::new(python).args(["-m", "openapi_spec_validator"]).arg(&file).output().expect("python runs");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let get = &doc["paths"]["/pipes/top_pages.json"]["get"];
    let names: Vec<&str> = get["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["org", "user", "date_from", "date_to", "limit"]);
    assert_eq!(
        get["parameters"][4]["schema"],
        serde_json::json!({"type": "integer", "format": "int32", "default": 10})
    );
    assert_eq!(get["parameters"][0]["description"], "Organization slug");
    let columns =
        &get["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["data"]["items"]["properties"];
    assert_eq!(
        columns,
        &serde_json::json!({"path": {"type": "string"}, "views": {"type": "integer"}, "visitors": {"type": "integer"}})
    );
    assert!(doc["paths"].get("/pipes/kpis.csv").is_some() && doc["paths"].get("/pipes/user_activity.ndjson").is_some());
}

/// A server with the example project and its fixture events; the admin token and the number of
/// `acme` events, and rows of acme's `top_pages`.
fn tenant_fixture(dir: &std::path::Path, admin: &str) -> (crate::process::Served, u64, usize) {
    let project = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/web-analytics");
    let server = start(dir, admin, &["--project", project, "--workspace-id", WORKSPACE]);
    let http = reqwest::blocking::Client::new();
    let fixture = std::fs::read_to_string(format!("{project}/fixtures/events.ndjson")).unwrap();
    let r = http.post(format!("{}/v0/events?name=events&wait=true", server.url)).bearer_auth(admin).body(fixture);
    assert_eq!(r.send().unwrap().status(), 200);
    let get = |path: &str| -> serde_json::Value {
        http.get(format!("{}{path}", server.url)).bearer_auth(admin).send().unwrap().json().unwrap()
    };
    let acme = get("/v0/pipes/kpis.json?org=acme")["data"][0]["events"].as_u64().unwrap();
    let all = get("/v0/pipes/kpis.json")["data"][0]["events"].as_u64().unwrap();
    assert!(acme > 0 && acme < all);
    let pages = get("/v0/pipes/top_pages.json?org=acme")["rows"].as_u64().unwrap() as usize;
    (server, acme, pages)
}

const WORKSPACE: &str = "5a0c4c1e-1111-2222-3333-444455556666";

#[test]
fn verdin_reads_an_endpoint_with_a_tenant_jwt() {
    let python = std::env::var("AVIARY_REF_PYTHON")
        .expect("AVIARY_REF_PYTHON must name a Python with verdin installed (scripts/test sets it up)");
    let dir = std::env::temp_dir().join(format!("aviary-verdin-jwt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (server, acme, rows) = tenant_fixture(&dir, "p.verdin-jwt-admin");
    let exp = chrono::Utc::now().timestamp() + 600;
    let scope =
        |pipe: &str| serde_json::json!({"type": "PIPES:READ", "resource": pipe, "fixed_params": {"org": "acme"}});
    let minted: serde_json::Value = reqwest::blocking::Client::new()
        .post(format!("{}/v0/tokens?expiration_time={exp}", server.url))
        .bearer_auth("p.verdin-jwt-admin")
        .body(serde_json::json!({"name": "verdin_acme", "scopes": [scope("kpis"), scope("top_pages")]}).to_string())
        .send()
        .unwrap()
        .json()
        .unwrap();
    let out = Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/verdin_jwt.py"))
        .args([&server.url, minted["token"].as_str().unwrap()])
        .output()
        .expect("python runs");
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "verdin failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    let pages: Vec<usize> = (0..rows.div_ceil(2)).map(|i| (rows - 2 * i).min(2)).collect();
    assert_eq!(seen, serde_json::json!({"events": acme, "pages": pages}));
}

#[test]
fn tinybird_sdk_mints_and_jose_signs_jwts_that_pin_the_tenant() {
    let modules = std::env::var("AVIARY_NODE_MODULES")
        .expect("AVIARY_NODE_MODULES must name a node_modules with @tinybirdco/sdk and jose (scripts/test sets it up)");
    let dir = std::env::temp_dir().join(format!("aviary-sdk-jwt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (server, acme, _) = tenant_fixture(&dir, "p.sdk-jwt-admin");
    let out = Command::new("node")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/jwt_clients.mjs"))
        .args([&modules, &server.url, "p.sdk-jwt-admin", WORKSPACE])
        .output()
        .expect("node runs");
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "the npm clients failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(
        seen,
        serde_json::json!({"sdk_events": acme, "jose_status": 200, "jose_events": acme, "jwt_cannot_mint": 403})
    );
}

/// `@clerk/backend` (npm, unchanged) against `aviary serve` on `store`: users, organization,
/// custom role and permission, the Tinybird template, sessions, template and session tokens,
/// `verifyToken` through the JWKS, `authenticateRequest` on the Bearer and cookie paths, and the
/// refusals (tampered, expired, template-as-session, revoked, wrong key).
fn clerk_backend_sdk(store: &str) {
    let modules = std::env::var("AVIARY_NODE_MODULES")
        .expect("AVIARY_NODE_MODULES must name a node_modules with @clerk/backend and jose (scripts/test sets it up)");
    let dir = std::env::temp_dir().join(format!("aviary-clerk-{store}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let database = (store == "postgres").then(crate::postgres::fresh_database);
    let mut args = vec![
        "--secret-key",
        "sk_live_clerk-sdk-test",
        "--public-url",
        "https://identity.aviary.localhost",
        "--identity-requests-per-10s",
        "0",
    ];
    if let Some(url) = &database {
        args.extend(["--database-url", url.as_str()]);
    }
    let server = start(&dir, "p.clerk-admin", &args);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/clerk_backend.mjs");
    let summary = node_summary(script, &[&modules, &server.url, "sk_live_clerk-sdk-test"]);
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["session_org_role"], "org:analyst", "{summary}");
    assert_eq!(
        summary["refused"],
        serde_json::json!({
            "tampered_payload": "token-invalid-signature",
            "tampered_signature": "signed-out",
            "template_as_session": "token-type-mismatch",
            "expired": "token-expired",
            "revoked_mint": 404
        }),
        "{summary}"
    );
}

#[test]
fn clerk_backend_sdk_on_sqlite() {
    clerk_backend_sdk("sqlite");
}

#[test]
fn clerk_backend_sdk_on_postgres() {
    clerk_backend_sdk("postgres");
}
