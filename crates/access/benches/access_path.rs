//! The per-request access path of an endpoint call with a JWT: verify the token (HS256), find
//! the pipe's scope, check its fixed params, merge them over the request's parameters and check
//! the rate limit — against the floor of a bare HMAC-SHA256 over the same bytes.
//! Run: `cargo bench -p access --bench access_path`.
// criterion's macros define undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;

use access::jwt::JwtKeys;
use access::limits::KeyedLimits;
use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value as Json, json};
use sha2::Sha256;

const WS: &str = "5a0c4c1e-1111-2222-3333-444455556666";
const ADMIN: &str = "p.eyJ1IjogIjVhMGM0YzFlIiwgImlkIjogImFkbWluIn0.Zk9x2vQ7m1Yk0pQzq3n8Jm5tR2wXyB6cD4eF8gH0iJk";

fn access_path(c: &mut Criterion) {
    let keys = JwtKeys::new(WS, ADMIN, None);
    let now = 1_800_000_000;
    let token = keys.sign(&json!({
        "workspace_id": WS,
        "name": "frontend_jwt_acme",
        "exp": now + 3600,
        "iat": now,
        "scopes": [
            {"type": "PIPES:READ", "resource": "top_pages", "fixed_params": {"org": "acme"}},
            {"type": "PIPES:READ", "resource": "kpis", "fixed_params": {"org": "acme"}},
        ],
        "limits": {"rps": 1_000_000},
    }));
    let limits = KeyedLimits::new();
    let request: Map<String, Json> = [("org", "globex"), ("date_from", "2026-01-01"), ("limit", "10")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let mut group = c.benchmark_group("access");
    group.bench_function("jwt_endpoint_path", |b| {
        b.iter(|| {
            let grant = keys.verify(black_box(&token), now).unwrap();
            let fixed = grant.pipe_read("top_pages").unwrap();
            access::grant::check_fixed_params(&fixed).unwrap();
            let mut params = request.clone();
            for (k, v) in fixed {
                params.insert(k, v);
            }
            let key = format!("{WS}/top_pages/{}", grant.token_name());
            let d = limits.check(&key, grant.rps.unwrap_or(0));
            black_box((params, d))
        })
    });
    group.bench_function("jwt_first_verification", |b| {
        b.iter(|| black_box(keys.verify_uncached(black_box(&token), now).unwrap()))
    });
    let signed = token.rsplit_once('.').unwrap().0.to_string();
    group.bench_function("hmac_sha256_floor", |b| {
        b.iter(|| {
            let mut mac = Hmac::<Sha256>::new_from_slice(ADMIN.as_bytes()).unwrap();
            mac.update(black_box(signed.as_bytes()));
            black_box(mac.finalize().into_bytes())
        })
    });
    group.finish();
}

criterion_group!(benches, access_path);
criterion_main!(benches);
