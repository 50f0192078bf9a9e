//! `aviary bench ingest`: the ingest benchmark. Generates events shaped like the example
//! `events.datasource` over many organizations, posts them as NDJSON with concurrent clients and
//! `wait=true` to a fresh Aviary server (this binary, in its own data directory) and, in the same
//! run, the same bytes to a fresh ClickHouse server (`INSERT … FORMAT JSONEachRow` over HTTP into
//! an equivalent MergeTree table), then to Aviary on its ClickHouse backend over that same
//! ClickHouse (`wait=true`: acknowledged once ClickHouse has the rows). Prints events/s, MB/s,
//! the ratios and the servers' memory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The example project's events data source: what Aviary is benchmarked with.
pub(crate) const EVENTS_DATASOURCE: &str =
    include_str!("../../../examples/web-analytics/datasources/events.datasource");

/// The ClickHouse table for the same events. Debian's ClickHouse (18.16) has no `DateTime64`
/// and no `TTL`, so the timestamp is a `DateTime` (the generated values have no fraction) and the
/// TTL is left out; everything else matches.
const CLICKHOUSE_TABLE: &str = "CREATE TABLE events (timestamp DateTime, org LowCardinality(String), \
    user String, event LowCardinality(String), path String, country LowCardinality(String), \
    duration_ms UInt32, tags Array(String)) ENGINE = MergeTree \
    PARTITION BY toYYYYMM(timestamp) ORDER BY (org, timestamp)";

pub(crate) const TOKEN: &str = "p.bench-admin-token";

/// `aviary bench` commands.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// NDJSON ingestion with `wait=true`, against ClickHouse in the same run.
    Ingest(IngestArgs),
    /// Tenant-scoped endpoint latency, against ClickHouse in the same run.
    Query(crate::bench_query::QueryArgs),
    /// Endpoint throughput with a tenant JWT against the admin token, same run.
    Access(crate::bench_access::AccessArgs),
    /// Template-token mints over HTTP, session tokens, and sign-in with the Argon2id cost.
    Identity(crate::bench_identity::IdentityArgs),
}

/// `aviary bench ingest` settings.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Events to generate and send per run.
    #[arg(long, default_value_t = 2_000_000)]
    pub events: usize,
    /// Distinct organizations the events are spread over.
    #[arg(long, default_value_t = 1_000)]
    pub orgs: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Rows per request; one run per size.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub batch_sizes: Vec<usize>,
    /// The `clickhouse-server` binary (Debian's package installs `/usr/sbin/clickhouse-server`).
    #[arg(long, default_value = "/usr/sbin/clickhouse-server")]
    pub clickhouse_server: PathBuf,
    /// Skip ClickHouse (no ratio is reported).
    #[arg(long)]
    pub no_clickhouse: bool,
    /// Directory for the servers' data (a fresh subdirectory per run; removed afterwards).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Also write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl BenchCommand {
    pub fn run(self) -> Result<ExitCode> {
        match self {
            BenchCommand::Ingest(args) => ingest(&args),
            BenchCommand::Query(args) => crate::bench_query::run(&args),
            BenchCommand::Access(args) => crate::bench_access::run(&args),
            BenchCommand::Identity(args) => crate::bench_identity::run(&args),
        }
    }
}

/// One server's result for one batch size.
#[derive(Debug, Clone, serde::Serialize)]
struct RunResult {
    system: &'static str,
    batch_rows: usize,
    events: usize,
    seconds: f64,
    events_per_sec: f64,
    mb_per_sec: f64,
    /// Peak resident memory of the server process (VmHWM), in MiB.
    peak_rss_mib: Option<f64>,
    /// Resident memory after each quarter of the batches, in MiB.
    rss_by_quarter_mib: Vec<f64>,
    /// Resident memory 5 s after the last batch (buffers flushed), in MiB.
    rss_settled_mib: Option<f64>,
}

fn ingest(args: &IngestArgs) -> Result<ExitCode> {
    ensure!(args.clients > 0 && args.events > 0 && args.orgs > 0, "--events, --orgs and --clients must be positive");
    if !args.no_clickhouse && !args.clickhouse_server.exists() {
        bail!(
            "{} not found: install ClickHouse (apt-get install -y clickhouse-server) or pass --no-clickhouse",
            args.clickhouse_server.display()
        );
    }
    let work = match &args.work_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("aviary-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work)?;
    eprintln!("generating {} events over {} organizations…", args.events, args.orgs);
    let lines = generate(args.events, args.orgs, false);
    let total_bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    eprintln!("{:.1} MB of NDJSON", total_bytes as f64 / 1e6);
    let mut results = Vec::new();
    for &rows in &args.batch_sizes {
        ensure!(rows > 0, "batch sizes must be positive");
        let batches: Vec<Vec<u8>> = lines.chunks(rows).map(|c| (c.join("\n") + "\n").into_bytes()).collect();
        let aviary = run_aviary(&work.join(format!("aviary-{rows}")), &batches, rows, args.clients, args.events)?;
        eprintln!("{}", describe(&aviary));
        results.push(aviary);
        if !args.no_clickhouse {
            let server = start_clickhouse(&args.clickhouse_server, &work.join(format!("clickhouse-{rows}")))?;
            let ch = run_clickhouse(&server, &batches, rows, args.clients, args.events)?;
            eprintln!("{}", describe(&ch));
            results.push(ch);
            // Acknowledged once ClickHouse has the rows (wait=true), then acknowledged from the
            // node's spool (202) and timed until ClickHouse holds every row.
            for (system, wait) in [("aviary-on-ch", true), ("aviary-on-ch-202", false)] {
                let over = run_aviary_with(
                    system,
                    wait,
                    &work.join(format!("{system}-{rows}")),
                    &clickhouse_backend_flags(&server.base, system),
                    &batches,
                    rows,
                    args.clients,
                    args.events,
                )?;
                eprintln!("{}", describe(&over));
                results.push(over);
            }
            // What the rows cost on ClickHouse's disk (compressed, active parts), for capacity sums.
            let client = http_client()?;
            let stored = client
                .post(format!("{}/", server.base))
                .body("SELECT sum(rows), sum(bytes) FROM system.parts WHERE active AND database = 'aviary_on_ch' AND table = 'events' FORMAT TSV")
                .send()?
                .text()?;
            let mut fields = stored.split_whitespace().map(|f| f.parse::<f64>().unwrap_or(0.0));
            let (rows_on_disk, bytes_on_disk) = (fields.next().unwrap_or(0.0), fields.next().unwrap_or(0.0));
            eprintln!(
                "ClickHouse stores {rows_on_disk:.0} rows in {:.1} MB: {:.1} bytes per event",
                bytes_on_disk / 1e6,
                bytes_on_disk / rows_on_disk.max(1.0)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    println!("{}", report(&results, total_bytes));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(r: &RunResult) -> String {
    format!(
        "{:>10} {:>6}-row batches: {:>9.0} events/s {:>7.1} MB/s ({:.2} s)",
        r.system, r.batch_rows, r.events_per_sec, r.mb_per_sec, r.seconds
    )
}

fn report(results: &[RunResult], total_bytes: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| batch rows | system | events/s | MB/s | seconds | peak RSS MiB | RSS by quarter MiB | RSS 5 s later MiB |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for r in results {
        let quarters: Vec<String> = r.rss_by_quarter_mib.iter().map(|m| format!("{m:.0}")).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.1} | {:.2} | {} | {} | {} |",
            r.batch_rows,
            r.system,
            r.events_per_sec,
            r.mb_per_sec,
            r.seconds,
            r.peak_rss_mib.map_or("-".into(), |m| format!("{m:.0}")),
            quarters.join(" / "),
            r.rss_settled_mib.map_or("-".into(), |m| format!("{m:.0}")),
        );
    }
    for r in results.iter().filter(|r| r.system != "clickhouse") {
        if let Some(ch) = results.iter().find(|c| c.system == "clickhouse" && c.batch_rows == r.batch_rows) {
            let _ = writeln!(
                out,
                "{}-row batches: {} / ClickHouse = {:.2}x",
                r.batch_rows,
                r.system,
                r.events_per_sec / ch.events_per_sec
            );
        }
    }
    let _ = write!(out, "({:.1} MB of NDJSON per run)", total_bytes as f64 / 1e6);
    out
}

/// Events like the example fixtures: two months of timestamps, `orgs` organizations, 100k
/// users, a handful of event kinds, paths, countries and tags. Seeded, so every run sends the same
/// bytes.
pub(crate) fn generate(n: usize, orgs: usize, skewed: bool) -> Vec<String> {
    const EVENTS: [&str; 5] = ["page_view", "page_view", "click", "signup", "purchase"];
    const PATHS: [&str; 10] =
        ["/", "/pricing", "/docs", "/blog", "/signup", "/login", "/dashboard", "/settings", "/docs/api", "/about"];
    const COUNTRIES: [&str; 12] = ["ES", "US", "DE", "FR", "GB", "IT", "NL", "BR", "IN", "JP", "CA", "MX"];
    const TAGS: [&str; 6] = ["home", "mobile", "campaign", "beta", "new", "returning"];
    let mut rng = StdRng::seed_from_u64(7);
    let start = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).unwrap_or_default();
    let span = 61 * 86_400;
    (0..n)
        .map(|i| {
            let ts = start + chrono::Duration::seconds((i as i64 * span) / n as i64);
            let tags: Vec<String> =
                (0..rng.random_range(0..3)).map(|_| format!("\"{}\"", TAGS[rng.random_range(0..TAGS.len())])).collect();
            format!(
                r#"{{"timestamp":"{}","org":"org_{:04}","user":"user_{}","event":"{}","path":"{}","country":"{}","duration_ms":{},"tags":[{}]}}"#,
                ts.format("%Y-%m-%d %H:%M:%S"),
                if skewed {
                    // A few large tenants, many small: P(org < k) = (k / orgs)^(1/3).
                    ((orgs as f64) * rng.random::<f64>().powi(3)) as usize
                } else {
                    rng.random_range(0..orgs)
                },
                rng.random_range(0..100_000),
                EVENTS[rng.random_range(0..EVENTS.len())],
                PATHS[rng.random_range(0..PATHS.len())],
                COUNTRIES[rng.random_range(0..COUNTRIES.len())],
                rng.random_range(0..5_000),
                tags.join(","),
            )
        })
        .collect()
}

/// A child server, killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_ready(client: &reqwest::blocking::Client, url: &str, server: &mut Server) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if client.get(url).send().is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        if let Some(status) = server.child.try_wait()? {
            bail!("the server at {} exited during start: {status}", server.base);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("the server at {} did not start in 60 s", server.base)
}

/// Starts `aviary serve` (this binary) in a fresh `dir` with a project of `files` (relative
/// path, text), once it answers.
pub(crate) fn start_aviary(dir: &Path, files: &[(&str, &str)]) -> Result<Server> {
    start_aviary_with(dir, files, &[])
}

/// `start_aviary` with more `serve` flags.
pub(crate) fn start_aviary_with(dir: &Path, files: &[(&str, &str)], flags: &[&str]) -> Result<Server> {
    let _ = std::fs::remove_dir_all(dir);
    let project = dir.join("project");
    for (path, text) in files {
        let file = project.join(path);
        std::fs::create_dir_all(file.parent().unwrap_or(&project))?;
        std::fs::write(file, text)?;
    }
    let port = free_port()?;
    let child = Command::new(std::env::current_exe()?)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--admin-token", TOKEN])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--project")
        .arg(&project)
        .args(flags)
        .env("AVIARY_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .context("starting aviary serve")?;
    let mut server = Server { child, base: format!("http://127.0.0.1:{port}") };
    wait_ready(&http_client()?, &format!("{}/v0/health", server.base), &mut server)?;
    Ok(server)
}

/// The `serve` flags of Aviary on its ClickHouse backend over the ClickHouse at `base` (in
/// database `database`, a 20 ms batch window).
pub(crate) fn clickhouse_backend_flags(base: &str, database: &str) -> Vec<String> {
    let database = database.replace('-', "_");
    [
        "--clickhouse-url",
        base,
        "--clickhouse-database",
        &database,
        "--clickhouse-batch-ms",
        "20",
        "--workspace-id",
        "5a0c4c1e-0000-4000-a000-00000000be7c",
        "--sealing-key",
        "bench-sealing-key",
    ]
    .map(String::from)
    .to_vec()
}

fn run_aviary(dir: &Path, batches: &[Vec<u8>], rows: usize, clients: usize, events: usize) -> Result<RunResult> {
    run_aviary_with("aviary", true, dir, &[], batches, rows, clients, events)
}

#[allow(clippy::too_many_arguments)]
fn run_aviary_with(
    system: &'static str,
    wait: bool,
    dir: &Path,
    flags: &[String],
    batches: &[Vec<u8>],
    rows: usize,
    clients: usize,
    events: usize,
) -> Result<RunResult> {
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = start_aviary_with(dir, &[("datasources/events.datasource", EVENTS_DATASOURCE)], &flags)?;
    let client = http_client()?;
    let url = format!("{}/v0/events?name=events&wait={wait}", server.base);
    let pid = server.child.id();
    let (seconds, quarters) = load(batches, clients, Some(pid), |client, body| {
        // Back-pressure (503) is waited out, as a real client does; the wait counts in the time.
        let (status, text) = loop {
            let resp = client.post(&url).bearer_auth(TOKEN).body(body.to_vec()).send()?;
            let status = resp.status();
            if status != reqwest::StatusCode::SERVICE_UNAVAILABLE {
                break (status, resp.text()?);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        ensure!(status.is_success(), "aviary answered {status}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text)?;
        ensure!(v["quarantined_rows"] == 0, "aviary quarantined rows: {text}");
        Ok(())
    })?;
    let sql = format!("{}/v0/sql", server.base);
    let mut seconds = seconds;
    if !wait {
        // Acknowledged is not landed: the time runs until every row is readable.
        let started = Instant::now();
        while sql_count(&client, &sql, Some(TOKEN), "SELECT count(*) FROM events")? < events as u64 {
            ensure!(started.elapsed() < Duration::from_secs(600), "{system}: rows still missing after 10 minutes");
            std::thread::sleep(Duration::from_millis(5));
        }
        seconds += started.elapsed().as_secs_f64();
    }
    let peak = vm_kib(pid, "VmHWM").map(|k| k as f64 / 1024.0);
    std::thread::sleep(Duration::from_secs(5));
    let settled = vm_kib(pid, "VmRSS").map(|k| k as f64 / 1024.0);
    let count = sql_count(&client, &sql, Some(TOKEN), "SELECT count(*) FROM events")?;
    ensure!(count == events as u64, "{system} holds {count} rows after ingesting {events}");
    Ok(RunResult { rss_settled_mib: settled, ..result(system, rows, events, batches, seconds, peak, quarters) })
}

/// Starts ClickHouse in a fresh `dir` with the events table, once it answers.
pub(crate) fn start_clickhouse(binary: &Path, dir: &Path) -> Result<Server> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let (http, tcp) = (free_port()?, free_port()?);
    let d = dir.display();
    let config = format!(
        "<yandex>\n  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/error.log</errorlog></logger>\n  \
         <http_port>{http}</http_port>\n  <tcp_port>{tcp}</tcp_port>\n  <listen_host>127.0.0.1</listen_host>\n  \
         <path>{d}/data/</path>\n  <tmp_path>{d}/tmp/</tmp_path>\n  <user_files_path>{d}/user_files/</user_files_path>\n  \
         <users_config>{d}/users.xml</users_config>\n  <default_profile>default</default_profile>\n  \
         <default_database>default</default_database>\n  <mark_cache_size>536870912</mark_cache_size>\n</yandex>\n"
    );
    std::fs::write(dir.join("config.xml"), config)?;
    std::fs::write(
        dir.join("users.xml"),
        "<yandex>\n  <profiles><default><allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type></default></profiles>\n  \
         <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>\n  \
         <quotas><default></default></quotas>\n</yandex>\n",
    )?;
    let child = Command::new(binary)
        .arg(format!("--config-file={}", dir.join("config.xml").display()))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let mut server = Server { child, base: format!("http://127.0.0.1:{http}") };
    let client = http_client()?;
    wait_ready(&client, &format!("{}/ping", server.base), &mut server)?;
    let resp = client.post(format!("{}/", server.base)).body(CLICKHOUSE_TABLE).send()?;
    ensure!(resp.status().is_success(), "creating the ClickHouse table: {}", resp.text()?);
    Ok(server)
}

fn run_clickhouse(
    server: &Server,
    batches: &[Vec<u8>],
    rows: usize,
    clients: usize,
    events: usize,
) -> Result<RunResult> {
    let client = http_client()?;
    let url = format!("{}/?query=INSERT%20INTO%20events%20FORMAT%20JSONEachRow", server.base);
    let pid = server.child.id();
    let (seconds, quarters) = load(batches, clients, Some(pid), |client, body| {
        let resp = client.post(&url).body(body.to_vec()).send()?;
        let status = resp.status();
        ensure!(status.is_success(), "clickhouse answered {status}: {}", resp.text()?);
        Ok(())
    })?;
    let peak = vm_kib(pid, "VmHWM").map(|k| k as f64 / 1024.0);
    let count = sql_count(&client, &format!("{}/", server.base), None, "SELECT count() FROM events")?;
    ensure!(count == events as u64, "clickhouse holds {count} rows after ingesting {events}");
    Ok(result("clickhouse", rows, events, batches, seconds, peak, quarters))
}

fn result(
    system: &'static str,
    batch_rows: usize,
    events: usize,
    batches: &[Vec<u8>],
    seconds: f64,
    peak_rss_mib: Option<f64>,
    rss_by_quarter_mib: Vec<f64>,
) -> RunResult {
    let bytes: usize = batches.iter().map(Vec::len).sum();
    RunResult {
        system,
        batch_rows,
        events,
        seconds,
        events_per_sec: events as f64 / seconds,
        mb_per_sec: bytes as f64 / 1e6 / seconds,
        peak_rss_mib,
        rss_by_quarter_mib,
        rss_settled_mib: None,
    }
}

pub(crate) fn http_client() -> Result<reqwest::blocking::Client> {
    Ok(reqwest::blocking::Client::builder().timeout(Duration::from_secs(600)).build()?)
}

/// Sends every batch with `clients` threads taking the next unsent batch; returns the wall time
/// and the server's RSS (MiB) each time another quarter of the batches has been acknowledged.
pub(crate) fn load(
    batches: &[Vec<u8>],
    clients: usize,
    pid: Option<u32>,
    send: impl Fn(&reqwest::blocking::Client, &[u8]) -> Result<()> + Sync,
) -> Result<(f64, Vec<f64>)> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let quarters = std::sync::Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    let client = http_client()?;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= batches.len() || failed.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        if let Err(e) = send(&client, &batches[i]) {
                            failed.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                        let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if finished * 4 % batches.len() < 4
                            && let Some(kib) = pid.and_then(|p| vm_kib(p, "VmRSS"))
                        {
                            quarters
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .push(kib as f64 / 1024.0);
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        }
        Ok(())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    Ok((seconds, quarters.into_inner().unwrap_or_default()))
}

/// A `/proc/<pid>/status` field in KiB (Linux only).
pub(crate) fn vm_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    line[field.len() + 1..].trim().trim_end_matches("kB").trim().parse().ok()
}

pub(crate) fn sql_count(client: &reqwest::blocking::Client, url: &str, token: Option<&str>, sql: &str) -> Result<u64> {
    let mut req = client.post(url).body(format!("{sql} FORMAT JSONEachRow"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let text = req.send()?.text()?;
    let row: serde_json::Value = serde_json::from_str(text.trim()).with_context(|| format!("count answer: {text}"))?;
    let v = row.as_object().and_then(|o| o.values().next()).cloned().unwrap_or_default();
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).with_context(|| format!("count answer: {text}"))
}
