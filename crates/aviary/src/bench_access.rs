//! `aviary bench access`: what a tenant JWT costs on the endpoint path. Loads skewed events into
//! a fresh Aviary (this binary), then calls the example `top_pages` endpoint for one large and one
//! small tenant with the admin token (`?org=…`) and with a JWT whose fixed param pins the same
//! tenant (verification, scope match, fixed params, the rate-limit check and the engine's tenant
//! filter), alternating the two at concurrency 1 and 16. Prints p50, p99, requests/s and the
//! throughput ratio JWT/admin.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result, ensure};

use crate::bench::{EVENTS_DATASOURCE, TOKEN, generate, http_client, start_aviary};
use crate::bench_query::{Measured, load_aviary, measure, settle, smallest_tenant};

const TOP_PAGES: &str = include_str!("../../../examples/web-analytics/pipes/top_pages.pipe");

/// `aviary bench access` settings.
#[derive(Debug, clap::Args)]
pub struct AccessArgs {
    /// Events to load.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: usize,
    /// Organizations the events are spread over (skewed).
    #[arg(long, default_value_t = 1_000)]
    pub orgs: usize,
    /// Requests per measurement (after 10 warm-up requests).
    #[arg(long, default_value_t = 400)]
    pub requests: usize,
}

/// Runs the benchmark and prints its table.
pub fn run(args: &AccessArgs) -> Result<ExitCode> {
    let work = std::env::temp_dir().join(format!("aviary-bench-access-{}", std::process::id()));
    eprintln!("generating {} skewed events over {} organizations…", args.events, args.orgs);
    let lines = generate(args.events, args.orgs, true);
    let batches: Vec<Vec<u8>> = lines.chunks(10_000).map(|c| (c.join("\n") + "\n").into_bytes()).collect();
    drop(lines);
    let aviary = start_aviary(
        &work.join("aviary"),
        &[("datasources/events.datasource", EVENTS_DATASOURCE), ("pipes/top_pages.pipe", TOP_PAGES)],
    )?;
    load_aviary(&aviary.base, &batches)?;
    drop(batches);
    let client = http_client()?;
    eprintln!("{} parts after merges", settle(&client, &aviary.base)?);
    let small = smallest_tenant(&client, &aviary.base)?;
    let mut report = String::from(
        "| tenant | clients | admin p50 ms | p99 ms | req/s | JWT p50 ms | p99 ms | req/s | req/s JWT/admin |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for (label, org) in [("large", "org_0000".to_string()), ("small", small)] {
        let exp = chrono::Utc::now().timestamp() + 3_600;
        let minted: serde_json::Value = client
            .post(format!("{}/v0/tokens?expiration_time={exp}", aviary.base))
            .bearer_auth(TOKEN)
            .body(
                serde_json::json!({"name": format!("bench_{org}"), "scopes": [
                    {"type": "PIPES:READ", "resource": "top_pages", "fixed_params": {"org": org}}
                ], "limits": {"rps": 1_000_000}})
                .to_string(),
            )
            .send()?
            .json()?;
        let jwt = minted["token"].as_str().context("a minted JWT")?.to_string();
        let as_admin = format!("{}/v0/pipes/top_pages.json?org={org}", aviary.base);
        let as_tenant = format!("{}/v0/pipes/top_pages.json", aviary.base);
        let call = |url: &str, token: &str| -> Result<()> {
            let r = client.get(url).bearer_auth(token).send()?;
            ensure!(r.status().is_success(), "aviary answered {}: {}", r.status(), r.text()?);
            r.bytes()?;
            Ok(())
        };
        let admin_body: serde_json::Value = client.get(&as_admin).bearer_auth(TOKEN).send()?.json()?;
        let tenant_body: serde_json::Value = client.get(&as_tenant).bearer_auth(&jwt).send()?.json()?;
        ensure!(admin_body["data"] == tenant_body["data"], "the JWT sees what the admin sees for {org}");
        for clients in [1, 16] {
            // Alternated, so drift (merges, caches) affects both sides alike.
            let mut admin: Vec<Measured> = Vec::new();
            let mut tenant: Vec<Measured> = Vec::new();
            for _ in 0..2 {
                admin.push(measure(clients, args.requests, &|| call(&as_admin, TOKEN))?);
                tenant.push(measure(clients, args.requests, &|| call(&as_tenant, &jwt))?);
            }
            let avg = |m: &[Measured], f: fn(&Measured) -> f64| m.iter().map(f).sum::<f64>() / m.len() as f64;
            let line = format!(
                "| {label} {org} | {clients} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.0} | {:.3} |",
                avg(&admin, |m| m.p50_ms),
                avg(&admin, |m| m.p99_ms),
                avg(&admin, |m| m.rps),
                avg(&tenant, |m| m.p50_ms),
                avg(&tenant, |m| m.p99_ms),
                avg(&tenant, |m| m.rps),
                avg(&tenant, |m| m.rps) / avg(&admin, |m| m.rps),
            );
            eprintln!("{line}");
            let _ = writeln!(report, "{line}");
        }
    }
    drop(aviary);
    let _ = std::fs::remove_dir_all(&work);
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}
