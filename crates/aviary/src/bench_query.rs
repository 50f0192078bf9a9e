//! `aviary bench query`: tenant-scoped endpoint latency. Generates skewed events (a few large
//! tenants, many small) shaped like the example `events`, loads them into a fresh Aviary (this
//! binary) and a fresh ClickHouse, then calls the example `top_pages` and `kpis` endpoints for
//! one large and one small tenant — through `/v0/pipes/<pipe>.json` on Aviary, and as the same
//! rendered SQL over ClickHouse's HTTP interface — at concurrency 1 and 16, and through a third
//! server: Aviary on its ClickHouse backend over that same ClickHouse. Prints p50, p99,
//! requests/s, the p50 ratios, and the rows Aviary read for the small tenant against its rows.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::bench::{EVENTS_DATASOURCE, TOKEN, generate, http_client, load, sql_count, start_aviary, start_clickhouse};

const TOP_PAGES: &str = include_str!("../../../examples/web-analytics/pipes/top_pages.pipe");
const KPIS: &str = include_str!("../../../examples/web-analytics/pipes/kpis.pipe");

/// `aviary bench query` settings.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// Table sizes to measure, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1000000,10000000")]
    pub events: Vec<usize>,
    /// Organizations the events are spread over (skewed).
    #[arg(long, default_value_t = 1_000)]
    pub orgs: usize,
    /// Requests per measurement (after 10 warm-up requests).
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// The `clickhouse-server` binary.
    #[arg(long, default_value = "/usr/sbin/clickhouse-server")]
    pub clickhouse_server: PathBuf,
}

/// Latencies of one measurement.
pub(crate) struct Measured {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub rps: f64,
}

/// Runs `requests` calls of `call` from `concurrency` threads.
pub(crate) fn measure(concurrency: usize, requests: usize, call: &(dyn Fn() -> Result<()> + Sync)) -> Result<Measured> {
    for _ in 0..10 {
        call()?;
    }
    let times = Mutex::new(Vec::with_capacity(requests));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = (0..concurrency)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < requests {
                        let t = Instant::now();
                        call()?;
                        times.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(t.elapsed());
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        }
        Ok(())
    })?;
    let wall = started.elapsed().as_secs_f64();
    let mut times = times.into_inner().unwrap_or_default();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)].as_secs_f64() * 1e3;
    Ok(Measured { p50_ms: at(0.5), p99_ms: at(0.99), rps: times.len() as f64 / wall })
}

/// Sends `batches` to a running Aviary's Events API with `wait=true`, waiting out 503s.
pub(crate) fn load_aviary(base: &str, batches: &[Vec<u8>]) -> Result<()> {
    let url = format!("{base}/v0/events?name=events&wait=true");
    load(batches, 4, None, |client, body| {
        loop {
            let r = client.post(&url).bearer_auth(TOKEN).body(body.to_vec()).send()?;
            if r.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE {
                ensure!(r.status().is_success(), "aviary answered {}", r.status());
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .map(drop)
}

/// The organization with the fewest events.
pub(crate) fn smallest_tenant(client: &reqwest::blocking::Client, base: &str) -> Result<String> {
    let text = client
        .post(format!("{base}/v0/sql"))
        .bearer_auth(TOKEN)
        .body("SELECT org FROM events GROUP BY org ORDER BY count() ASC, org LIMIT 1 FORMAT JSONEachRow")
        .send()?
        .text()?;
    let v: serde_json::Value = serde_json::from_str(text.trim()).context("smallest tenant")?;
    Ok(v["org"].as_str().context("smallest tenant")?.to_string())
}

/// The endpoint of `pipe_text` rendered for `org`, as one ClickHouse 18.16 query (no CTEs there:
/// earlier nodes become subqueries).
fn clickhouse_sql(name: &str, pipe_text: &str, org: &str) -> Result<String> {
    let pipe = datafiles::Pipe::parse_text(name, pipe_text).map_err(anyhow::Error::msg)?;
    let mut params = template::Params::default();
    params.insert("org", org);
    let mut rendered: Vec<(String, String)> = Vec::new();
    for node in &pipe.nodes {
        let mut sql = match &node.template {
            Some(t) => t.render(&params).map_err(|e| anyhow::anyhow!("{e}"))?.sql,
            None => node.sql.clone(),
        };
        for (earlier, text) in &rendered {
            sql = sql.replace(&format!("FROM {earlier}"), &format!("FROM ({text}) AS {earlier}"));
        }
        rendered.push((node.name.clone(), sql));
    }
    let mut sql = rendered.pop().map(|(_, sql)| sql).unwrap_or_default();
    // ClickHouse 18.16 wants a bare number after LIMIT (newer releases take `toInt32('10')`).
    while let Some(at) = sql.find("LIMIT toInt32('") {
        let digits_at = at + "LIMIT toInt32('".len();
        let Some(len) = sql[digits_at..].find("')") else { break };
        let n = sql[digits_at..digits_at + len].to_string();
        sql.replace_range(at..digits_at + len + 2, &format!("LIMIT {n}"));
    }
    Ok(sql)
}

/// Waits until the server's merges are done (`aviary_parts` unchanged for 10 s, after the time
/// a partition takes to count as quiet); returns the part count.
pub(crate) fn settle(client: &reqwest::blocking::Client, base: &str) -> Result<u64> {
    let parts = || -> Result<u64> {
        let text = client.get(format!("{base}/metrics")).bearer_auth(TOKEN).send()?.text()?;
        let line = text.lines().find(|l| l.starts_with("aviary_parts ")).context("aviary_parts in /metrics")?;
        Ok(line.trim_start_matches("aviary_parts ").trim().parse::<f64>()? as u64)
    };
    std::thread::sleep(Duration::from_secs(25));
    let mut last = parts()?;
    for _ in 0..36 {
        std::thread::sleep(Duration::from_secs(10));
        let now = parts()?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

pub fn run(args: &QueryArgs) -> Result<ExitCode> {
    if !args.clickhouse_server.exists() {
        bail!(
            "{} not found: install ClickHouse (apt-get install -y clickhouse-server)",
            args.clickhouse_server.display()
        );
    }
    let work = std::env::temp_dir().join(format!("aviary-bench-query-{}", std::process::id()));
    let mut report = String::new();
    let _ = writeln!(
        report,
        "| events | pipe | tenant (rows) | clients | Aviary p50 ms | p99 ms | req/s | ClickHouse p50 ms | p99 ms | req/s | p50 Aviary/CH | Aviary-on-CH p50 ms | p99 ms | req/s | p50 Aviary-on-CH/CH |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut pruning = String::new();
    for &events in &args.events {
        eprintln!("generating {events} skewed events over {} organizations…", args.orgs);
        let lines = generate(events, args.orgs, true);
        let batches: Vec<Vec<u8>> = lines.chunks(10_000).map(|c| (c.join("\n") + "\n").into_bytes()).collect();
        drop(lines);
        let aviary = start_aviary(
            &work.join(format!("aviary-{events}")),
            &[
                ("datasources/events.datasource", EVENTS_DATASOURCE),
                ("pipes/top_pages.pipe", TOP_PAGES),
                ("pipes/kpis.pipe", KPIS),
            ],
        )?;
        load_aviary(&aviary.base, &batches)?;
        let clickhouse = start_clickhouse(&args.clickhouse_server, &work.join(format!("clickhouse-{events}")))?;
        let insert = format!("{}/?query=INSERT%20INTO%20events%20FORMAT%20JSONEachRow", clickhouse.base);
        load(&batches, 4, None, |client, body| {
            let r = client.post(&insert).body(body.to_vec()).send()?;
            ensure!(r.status().is_success(), "clickhouse answered {}", r.status());
            Ok(())
        })?;
        // The same project on Aviary's ClickHouse backend, over that ClickHouse.
        let on_clickhouse = crate::bench::start_aviary_with(
            &work.join(format!("aviary-ch-{events}")),
            &[
                ("datasources/events.datasource", EVENTS_DATASOURCE),
                ("pipes/top_pages.pipe", TOP_PAGES),
                ("pipes/kpis.pipe", KPIS),
            ],
            &crate::bench::clickhouse_backend_flags(&clickhouse.base, "aviary_on_ch")
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )?;
        load_aviary(&on_clickhouse.base, &batches)?;
        drop(batches);
        // Let both flush and merge what they were sent, as servers that have been up a while:
        // past Aviary's quiet time, until its part count holds still.
        let client = http_client()?;
        let parts = settle(&client, &aviary.base)?;
        eprintln!("{parts} parts after merges");
        let sql = format!("{}/v0/sql", aviary.base);
        let count = |org: &str| {
            sql_count(&client, &sql, Some(TOKEN), &format!("SELECT count() FROM events WHERE org = '{org}'"))
        };
        let small = smallest_tenant(&client, &aviary.base)?;
        for (label, org) in [("large", "org_0000".to_string()), ("small", small)] {
            let rows = count(&org)?;
            for (pipe, text) in [("top_pages", TOP_PAGES), ("kpis", KPIS)] {
                let endpoint = format!("{}/v0/pipes/{pipe}.json?org={org}", aviary.base);
                let ch_sql = clickhouse_sql(pipe, text, &org)?;
                let ch_url = format!("{}/", clickhouse.base);
                let over = format!("{}/v0/pipes/{pipe}.json?org={org}", on_clickhouse.base);
                let call_over = || -> Result<()> {
                    let r = client.get(&over).bearer_auth(TOKEN).send()?;
                    ensure!(r.status().is_success(), "aviary on ClickHouse answered {}: {}", r.status(), r.text()?);
                    r.bytes()?;
                    Ok(())
                };
                let call_aviary = || -> Result<()> {
                    let r = client.get(&endpoint).bearer_auth(TOKEN).send()?;
                    ensure!(r.status().is_success(), "aviary answered {}: {}", r.status(), r.text()?);
                    r.bytes()?;
                    Ok(())
                };
                let call_ch = || -> Result<()> {
                    let r = client.post(&ch_url).body(format!("{ch_sql} FORMAT JSON")).send()?;
                    ensure!(r.status().is_success(), "clickhouse answered {}: {}", r.status(), r.text()?);
                    r.bytes()?;
                    Ok(())
                };
                if label == "small" && pipe == "top_pages" {
                    let v: serde_json::Value = client.get(&endpoint).bearer_auth(TOKEN).send()?.json()?;
                    let read = v["statistics"]["rows_read"].as_u64().unwrap_or(0);
                    let _ = writeln!(
                        pruning,
                        "{events} events: top_pages for {org} ({rows} rows) read {read} rows = {:.2}x its rows",
                        read as f64 / rows.max(1) as f64
                    );
                }
                for clients in [1, 16] {
                    let a = measure(clients, args.requests, &call_aviary)?;
                    let c = measure(clients, args.requests, &call_ch)?;
                    let o = measure(clients, args.requests, &call_over)?;
                    let line = format!(
                        "| {events} | {pipe} | {label} {org} ({rows}) | {clients} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} | {:.2} |",
                        a.p50_ms,
                        a.p99_ms,
                        a.rps,
                        c.p50_ms,
                        c.p99_ms,
                        c.rps,
                        a.p50_ms / c.p50_ms,
                        o.p50_ms,
                        o.p99_ms,
                        o.rps,
                        o.p50_ms / c.p50_ms
                    );
                    eprintln!("{line}");
                    let _ = writeln!(report, "{line}");
                }
            }
        }
        drop(aviary);
        drop(on_clickhouse);
        drop(clickhouse);
    }
    let _ = std::fs::remove_dir_all(&work);
    println!("{report}\n{pruning}");
    Ok(ExitCode::SUCCESS)
}
