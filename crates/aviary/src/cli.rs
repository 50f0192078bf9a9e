//! Command-line interface: one clap struct per command, each a thin call into a library crate.

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use template::{Error, Params, Template, Value};

/// Aviary: real-time analytics for every customer organization, with identity built in.
#[derive(Debug, Parser)]
#[command(name = "aviary", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with pipe SQL templates (the language of `.pipe` nodes).
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Run the server: the analytics API (`/v0`) and the identity API (`/v1`) over a data
    /// directory.
    Serve(Box<ServeArgs>),
    /// Load a local file (CSV, NDJSON or Parquet) into a data source of a running server, with progress.
    Append(crate::append::AppendArgs),
    /// Deploy a datafile project (`.datasource` and `.pipe` files under DIR) to a running server:
    /// it becomes the workspace's definition.
    Deploy(crate::deploy::DeployArgs),
    /// Manage the static tokens of a running server.
    #[command(subcommand)]
    Token(crate::token::TokenCommand),
    /// The product in one command: a fresh server with the example project, two organizations
    /// with members, the `tinybird` JWT template and live generated events.
    Demo(crate::demo::DemoArgs),
    /// Operator commands on the identity store (signing keys).
    #[command(subcommand)]
    Identity(crate::identity_cli::IdentityCommand),
    /// Benchmarks (run them on a release build: `cargo run --release -- bench ingest`).
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
    /// Check a datafile project (`.datasource` and `.pipe` files under DIR) and print every
    /// problem; exits 1 when there are errors.
    Check {
        /// The project directory.
        dir: std::path::PathBuf,
    },
}

/// `aviary serve` settings: every option a flag with an `AVIARY_*` variable and a default.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Directory holding all data (created if missing).
    #[arg(long, env = "AVIARY_DATA_DIR", default_value = "./aviary-data")]
    pub data_dir: std::path::PathBuf,
    /// Address to listen on.
    #[arg(long, env = "AVIARY_LISTEN", default_value = "127.0.0.1:7181")]
    pub listen: std::net::SocketAddr,
    /// Workspace admin token (also the key JWTs are signed with). Generated on first start and
    /// stored in the data directory when not given.
    #[arg(long, env = "AVIARY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Workspace id (a UUID); generated on first start when not given.
    #[arg(long, env = "AVIARY_WORKSPACE_ID")]
    pub workspace_id: Option<String>,
    /// Datafile project to deploy at start (data sources are created; an unchanged project is a no-op).
    #[arg(long, env = "AVIARY_PROJECT")]
    pub project: Option<std::path::PathBuf>,
    /// Largest request body, in bytes (compressed).
    #[arg(long, env = "AVIARY_MAX_BODY_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Largest request body after decompression, in bytes.
    #[arg(long, env = "AVIARY_MAX_DECOMPRESSED_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub max_decompressed_bytes: usize,
    /// Acknowledged bytes not yet in their store (embedded: not yet Parquet; ClickHouse: not yet
    /// inserted, in the spool) past which ingestion answers 503; past a quarter, writes are held.
    #[arg(long, env = "AVIARY_MAX_BUFFER_BYTES", default_value_t = 512 * 1024 * 1024)]
    pub max_buffer_bytes: usize,
    /// Milliseconds between writes of buffered rows to Parquet.
    #[arg(long, env = "AVIARY_FLUSH_INTERVAL_MS", default_value_t = 1000)]
    pub flush_interval_ms: u64,
    /// Events API requests per second for the workspace (also the burst); 0 turns it off.
    #[arg(long, env = "AVIARY_EVENTS_RPS", default_value_t = 1_000)]
    pub events_rps: u32,
    /// Longest a query (SQL API or endpoint) may run, in seconds; past it the answer is 408.
    #[arg(long, env = "AVIARY_QUERY_TIMEOUT", default_value_t = 10.0)]
    pub query_timeout: f64,
    /// Largest encoded query result, in bytes; past it the answer is 400.
    #[arg(long, env = "AVIARY_MAX_RESULT_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub max_result_bytes: usize,
    /// Documentation base URL used in error bodies.
    #[arg(long, env = "AVIARY_DOCS_BASE_URL", default_value = "https://www.tinybird.co/docs")]
    pub docs_base_url: String,
    /// Requests per second allowed to each non-admin static token (also the burst); 0: no limit.
    #[arg(long, env = "AVIARY_STATIC_TOKEN_RPS", default_value_t = 0)]
    pub static_token_rps: u32,
    /// Longest JWT lifetime accepted, in seconds (`exp` − now); unset: no maximum.
    #[arg(long, env = "AVIARY_JWT_MAX_LIFETIME")]
    pub jwt_max_lifetime: Option<u64>,
    /// Key that seals stored secrets (token strings, signing keys); generated in the data
    /// directory when not given.
    #[arg(long, env = "AVIARY_SEALING_KEY", hide_env_values = true)]
    pub sealing_key: Option<String>,
    /// The identity Backend API secret key (`sk_live_…`, sent as `Authorization: Bearer`);
    /// generated and shown once at first start when not given (only its digest is stored).
    #[arg(long, env = "AVIARY_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Identity store: `postgres://user:password@host/db`; unset: SQLite `identity.db` in the
    /// data directory.
    #[arg(long, env = "AVIARY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Public base URL of this server (token issuer, app origin, invitation links); unset:
    /// `http://<listen address>` (`localhost` when listening on every interface).
    #[arg(long, env = "AVIARY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Identity Backend API requests allowed per secret key per 10 seconds (Clerk's production
    /// limit is 1,000); 0: no limit. The JWKS is never limited.
    #[arg(long, env = "AVIARY_IDENTITY_REQUESTS_PER_10S", default_value_t = 1_000)]
    pub identity_requests_per_10s: u32,
    /// Argon2id memory per password hash, in KiB (at least OWASP's 19,456).
    #[arg(long, env = "AVIARY_ARGON2_MEMORY_KIB", default_value_t = 19_456)]
    pub argon2_memory_kib: u32,
    /// Email addresses of the workspace admins (comma-separated): once verified, they see the
    /// app's admin pages (JWT templates, endpoint usage).
    #[arg(long, env = "AVIARY_WORKSPACE_ADMINS", value_delimiter = ',')]
    pub workspace_admins: Vec<String>,
    /// Argon2id passes (at least 2).
    #[arg(long, env = "AVIARY_ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,
    /// Keep the workspace's rows in ClickHouse (`http://host:8123`) instead of the data
    /// directory, which then holds only the insert spool. Nodes sharing a ClickHouse database
    /// serve the same workspace; give them the same --admin-token, --workspace-id and
    /// --sealing-key.
    #[arg(long, env = "AVIARY_CLICKHOUSE_URL")]
    pub clickhouse_url: Option<String>,
    /// The ClickHouse database of the workspace (created if missing).
    #[arg(long, env = "AVIARY_CLICKHOUSE_DATABASE", default_value = "aviary")]
    pub clickhouse_database: String,
    /// The ClickHouse user.
    #[arg(long, env = "AVIARY_CLICKHOUSE_USER", default_value = "default")]
    pub clickhouse_user: String,
    /// The ClickHouse user's password.
    #[arg(long, env = "AVIARY_CLICKHOUSE_PASSWORD", hide_env_values = true)]
    pub clickhouse_password: Option<String>,
    /// Create `Replicated*MergeTree` tables `ON CLUSTER` this cluster, each behind a
    /// `Distributed` table of the data source's name (needs ZooKeeper/Keeper and macros
    /// `{shard}`, `{replica}` on every server).
    #[arg(long, env = "AVIARY_CLICKHOUSE_CLUSTER")]
    pub clickhouse_cluster: Option<String>,
    /// Milliseconds rows wait for others before their insert is sent to ClickHouse (one
    /// insert per table per window).
    #[arg(long, env = "AVIARY_CLICKHOUSE_BATCH_MS", default_value_t = 200)]
    pub clickhouse_batch_ms: u64,
    /// Keep rate-limit buckets (JWT `limits.rps`, the Events API limit, per-token limits) in
    /// Redis (`redis://host:6379/0`), so they hold across every node.
    #[arg(long, env = "AVIARY_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Nodes serving the workspace behind one load balancer: without --redis-url each node
    /// enforces 1/N of every rate limit (so N nodes together allow the limit).
    #[arg(long, env = "AVIARY_NODES", default_value_t = 1)]
    pub nodes: u32,
}

/// Only the serve flags: their defaults (and `AVIARY_*` variables) for commands that run a
/// server of their own.
#[derive(Debug, Parser)]
struct ServeDefaults {
    #[command(flatten)]
    serve: ServeArgs,
}

impl ServeArgs {
    /// The settings `aviary serve` would use with no flags.
    pub fn defaults() -> ServeArgs {
        ServeDefaults::parse_from(["aviary"]).serve
    }
}

#[derive(Debug, Subcommand)]
enum TemplateCommand {
    /// Render one node's SQL read from stdin (with its leading `%` line when it is a template).
    Render {
        /// A request parameter, as from a query string. Repeat a name to pass several values
        /// (joined with commas, as an Array parameter receives them).
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Parameters as a JSON object (numbers, booleans, lists, objects); wins over --param.
        #[arg(long = "params-json", value_name = "JSON")]
        params_json: Option<String>,
    },
    /// Print the parameters of a node read from stdin as JSON.
    Params,
}

impl Cli {
    /// Runs the command; the exit code is the process's.
    pub fn run(self) -> ExitCode {
        let result = match self.command {
            Command::Template(cmd) => cmd.run(),
            Command::Check { dir } => check(&dir),
            Command::Serve(args) => crate::serve::run(*args),
            Command::Append(args) => crate::append::run(&args),
            Command::Deploy(args) => crate::deploy::run(&args),
            Command::Token(cmd) => cmd.run(),
            Command::Identity(cmd) => cmd.run(),
            Command::Demo(args) => crate::demo::run(args),
            Command::Bench(cmd) => cmd.run(),
        };
        match result {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        }
    }
}

/// `aviary check DIR`: every diagnostic on stderr, a summary on stdout.
fn check(dir: &std::path::Path) -> Result<ExitCode> {
    match datafiles::Project::load(dir) {
        Ok(project) => {
            for w in &project.warnings {
                eprintln!("{w}");
            }
            println!(
                "ok: {} data source(s), {} pipe(s), {} warning(s)",
                project.datasources.len(),
                project.pipes.len(),
                project.warnings.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(datafiles::Error::Invalid(diagnostics)) => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            let errors = diagnostics.iter().filter(|d| d.severity == datafiles::Severity::Error).count();
            println!("{errors} error(s), {} warning(s)", diagnostics.len() - errors);
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

fn read_stdin() -> Result<String> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).context("reading the node's SQL from stdin")?;
    Ok(text)
}

/// Builds the parameter map: `--param` pairs first (repeats joined with commas), then the
/// JSON object on top.
fn build_params(pairs: &[String], json: Option<&str>) -> Result<Params> {
    let mut ordered: Vec<(String, String)> = Vec::new();
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            bail!("--param expects NAME=VALUE, got {pair:?}");
        };
        match ordered.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => {
                v.push(',');
                v.push_str(value);
            }
            None => ordered.push((name.to_string(), value.to_string())),
        }
    }
    let mut params: Params = ordered.into_iter().collect();
    if let Some(json) = json {
        let parsed: serde_json::Value = serde_json::from_str(json).context("--params-json is not valid JSON")?;
        let serde_json::Value::Object(object) = parsed else { bail!("--params-json must be a JSON object") };
        for (k, v) in &object {
            params.insert(k.clone(), Value::from(v));
        }
    }
    Ok(params)
}

/// Writes a template error as the CLI contract says: the API's message, or
/// `status=<code> body=<json>` for `custom_error`.
fn report(e: &Error) -> ExitCode {
    match e {
        Error::Custom { status, body } => eprintln!("status={status} body={body}"),
        other => eprintln!("{other}"),
    }
    ExitCode::from(1)
}

impl TemplateCommand {
    fn run(self) -> Result<ExitCode> {
        let text = read_stdin()?;
        match self {
            TemplateCommand::Render { params, params_json } => {
                let params = build_params(&params, params_json.as_deref())?;
                let Some(body) = template::strip_activation(&text) else {
                    std::io::stdout().write_all(text.as_bytes())?;
                    return Ok(ExitCode::SUCCESS);
                };
                let rendered = match Template::parse(body).and_then(|t| t.render(&params)) {
                    Ok(r) => r,
                    Err(e) => return Ok(report(&e)),
                };
                let mut out = std::io::stdout().lock();
                out.write_all(rendered.sql.as_bytes())?;
                if !rendered.sql.ends_with('\n') {
                    out.write_all(b"\n")?;
                }
                Ok(ExitCode::SUCCESS)
            }
            TemplateCommand::Params => {
                let body = template::strip_activation(&text).unwrap_or("");
                let t = match Template::parse(body) {
                    Ok(t) => t,
                    Err(e) => return Ok(report(&e)),
                };
                println!("{}", serde_json::to_string_pretty(t.parameters())?);
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}
