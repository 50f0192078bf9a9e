//! What a session token costs: verifying one (RS256 signature and claims, the check every
//! request carrying a session token pays) and minting one; and what a `tinybird` template token
//! costs to mint in process (render from the cached session view + HS256).
//! `cargo bench -p identity --bench session_tokens`.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use identity::{Identity, Options};
use serde_json::json;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = std::env::temp_dir().join(format!("aviary-bench-identity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (id, sid) = rt.block_on(async {
        let opts = Options::new(format!("sqlite://{}?mode=rwc", dir.join("identity.db").display()), b"bench");
        let id = Identity::open(opts).await.unwrap().0;
        let u = id.create_user(&json!({"email_address": ["ana@acme.example"], "password": "correct horse battery"})).await.unwrap();
        let user = u["id"].as_str().unwrap().to_string();
        id.create_org(&json!({"name": "Acme", "slug": "acme", "created_by": user})).await.unwrap();
        id.create_template(&json!({
            "name": "tinybird", "lifetime": 300, "custom_signing_key": true, "signing_algorithm": "HS256",
            "signing_key": "p.admin",
            "claims": {"name": "frontend_jwt_{{org.slug}}", "limits": {"rps": 10}, "workspace_id": "w",
                "scopes": [{"type": "PIPES:READ", "resource": "top_pages", "fixed_params": {"org": "{{org.slug}}"}},
                           {"type": "PIPES:READ", "resource": "user_activity", "fixed_params": {"org": "{{org.slug}}", "user": "{{user.id}}"}}]}
        }))
        .await
        .unwrap();
        let s = id.create_session(&json!({"user_id": user})).await.unwrap();
        (id, s["id"].as_str().unwrap().to_string())
    });
    let token = rt.block_on(id.session_token(&sid, None)).unwrap();
    c.bench_function("verify session token (RS256 + claims)", |b| {
        b.iter(|| id.verify_session_signature(&token).unwrap())
    });
    c.bench_function("mint session token (RS256, cached session)", |b| {
        b.iter(|| rt.block_on(id.session_token(&sid, None)).unwrap())
    });
    c.bench_function("mint tinybird template token (HS256, cached session)", |b| {
        b.iter(|| rt.block_on(id.template_token(&sid, "tinybird", None, None)).unwrap())
    });
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
