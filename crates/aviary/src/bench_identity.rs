//! `aviary bench identity`: what identity costs. Starts a fresh Aviary (this binary), sets up a
//! user, an organization, the seed's `tinybird` template and a session through the Backend API,
//! then mints over HTTP for a fixed time from many connections — template tokens (HS256, the
//! tenant token of every page view) and session tokens (RS256) — and compares the rate with
//! Clerk's documented Backend API limit (1,000 requests per 10 s per instance). Last, sign-in
//! latency in process with the default Argon2id cost (OWASP's 19 MiB, 2 passes, 1 lane).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use crate::bench::{EVENTS_DATASOURCE, TOKEN, start_aviary_with};

/// Clerk's documented production limit: 1,000 Backend API requests per 10 s per instance.
const CLERK_REQUESTS_PER_SECOND: f64 = 100.0;
const SECRET_KEY: &str = "sk_live_bench-identity";

/// `aviary bench identity` settings.
#[derive(Debug, clap::Args)]
pub struct IdentityArgs {
    /// Seconds each mint measurement runs.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent keep-alive connections minting.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Sign-ins measured.
    #[arg(long, default_value_t = 40)]
    pub sign_ins: usize,
}

/// Runs the benchmark and prints its table.
pub fn run(args: &IdentityArgs) -> Result<ExitCode> {
    let work = std::env::temp_dir().join(format!("aviary-bench-identity-{}", std::process::id()));
    let server = start_aviary_with(
        &work.join("aviary"),
        &[("datasources/events.datasource", EVENTS_DATASOURCE)],
        &["--secret-key", SECRET_KEY, "--identity-requests-per-10s", "0"],
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let report = runtime.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(args.connections * 2).build()?;
        let sid = setup(&client, &server.base).await?;
        let mut report = String::from(
            "| measurement | connections | requests/s | p50 ms | p99 ms | vs Clerk's 100 req/s limit |\n|---|---|---|---|---|---|\n",
        );
        for (label, path) in [
            ("template token (tinybird, HS256)", format!("/v1/sessions/{sid}/tokens/tinybird")),
            ("session token (RS256)", format!("/v1/sessions/{sid}/tokens")),
        ] {
            for connections in [1, args.connections] {
                let url = format!("{}{path}", server.base);
                let m = hammer(&client, &url, connections, Duration::from_secs(args.seconds)).await?;
                let line = format!(
                    "| {label} | {connections} | {:.0} | {:.3} | {:.3} | {:.1}× |",
                    m.rps,
                    m.p50_ms,
                    m.p99_ms,
                    m.rps / CLERK_REQUESTS_PER_SECOND
                );
                eprintln!("{line}");
                let _ = writeln!(report, "{line}");
            }
        }
        anyhow::Ok(report)
    })?;
    drop(server);
    let mut report = report;
    let sign_in = runtime.block_on(sign_in_latency(&work.join("sign-in"), args.sign_ins))?;
    let _ = writeln!(
        report,
        "\nsign-in (Argon2id m=19456 KiB, t=2, p=1; verify + session): p50 {:.1} ms, p99 {:.1} ms over {} sign-ins",
        sign_in.0, sign_in.1, args.sign_ins
    );
    let _ = std::fs::remove_dir_all(&work);
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// A user in an organization, the `tinybird` template, a session: the session id.
async fn setup(client: &reqwest::Client, base: &str) -> Result<String> {
    let post = |path: &str, body: Value| {
        let req = client.post(format!("{base}{path}")).bearer_auth(SECRET_KEY).json(&body);
        async move {
            let r = req.send().await?;
            let status = r.status();
            let v: Value = r.json().await?;
            ensure!(status.is_success(), "{status}: {v}");
            anyhow::Ok(v)
        }
    };
    let user =
        post("/v1/users", json!({"email_address": ["ana@acme.example"], "password": "correct horse battery"})).await?;
    let uid = user["id"].as_str().context("a user id")?;
    post("/v1/organizations", json!({"name": "Acme", "slug": "acme", "created_by": uid})).await?;
    post(
        "/v1/jwt_templates",
        json!({
            "name": "tinybird", "lifetime": 300, "custom_signing_key": true, "signing_algorithm": "HS256", "signing_key": TOKEN,
            "claims": {"name": "frontend_jwt_{{org.slug}}", "limits": {"rps": 10}, "workspace_id": "w",
                "scopes": [{"type": "PIPES:READ", "resource": "top_pages", "fixed_params": {"org": "{{org.slug}}"}},
                           {"type": "PIPES:READ", "resource": "user_activity", "fixed_params": {"org": "{{org.slug}}", "user": "{{user.id}}"}}]}
        }),
    )
    .await?;
    let session = post("/v1/sessions", json!({"user_id": uid})).await?;
    Ok(session["id"].as_str().context("a session id")?.to_string())
}

struct Measured {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// `connections` tasks POST `url` back to back for `length` (after a short warm-up).
async fn hammer(client: &reqwest::Client, url: &str, connections: usize, length: Duration) -> Result<Measured> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url, stop) = (client.clone(), url.to_string(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let warm_until = Instant::now() + Duration::from_millis(500);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r =
                    client.post(&url).bearer_auth(SECRET_KEY).header("content-type", "application/json").send().await?;
                ensure!(r.status().is_success(), "mint answered {}", r.status());
                r.bytes().await?;
                if t > warm_until {
                    times.push(t.elapsed());
                }
            }
            anyhow::Ok(times)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let wall = started.elapsed().as_secs_f64();
    let mut times = Vec::new();
    for t in tasks {
        times.extend(t.await??);
    }
    ensure!(!times.is_empty(), "no request completed");
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)].as_secs_f64() * 1e3;
    Ok(Measured { rps: times.len() as f64 / wall, p50_ms: at(0.5), p99_ms: at(0.99) })
}

/// p50 and p99 of `n` sign-ins (ms) against a fresh SQLite store with the default cost.
async fn sign_in_latency(dir: &std::path::Path, n: usize) -> Result<(f64, f64)> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let opts = identity::Options::new(format!("sqlite://{}?mode=rwc", dir.join("identity.db").display()), b"bench");
    let (id, _) = identity::Identity::open(opts).await?;
    id.create_user(&json!({"email_address": ["ana@acme.example"], "password": "correct horse battery"})).await?;
    let mut times = Vec::new();
    for _ in 0..n.max(1) {
        let t = Instant::now();
        id.sign_in("ana@acme.example", "correct horse battery", None).await?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[((times.len() as f64 * 0.99) as usize).min(times.len() - 1)]))
}
