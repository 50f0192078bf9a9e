//! `aviary demo`: the product in one command. A server on a fresh data directory with the
//! `web-analytics` example deployed, two organizations with members and known passwords, the
//! `tinybird` JWT template signed with the workspace admin token, and a generator streaming
//! realistic events for both organizations (the last 30 minutes are backfilled, so the charts
//! have a history from the first second).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use rand::Rng;
use serde_json::json;

/// The example project, compiled in so the demo runs from any directory.
const PROJECT: &[(&str, &str, &str)] = &[
    ("events", "datasource", include_str!("../../../examples/web-analytics/datasources/events.datasource")),
    ("top_pages", "pipe", include_str!("../../../examples/web-analytics/pipes/top_pages.pipe")),
    ("kpis", "pipe", include_str!("../../../examples/web-analytics/pipes/kpis.pipe")),
    ("events_per_minute", "pipe", include_str!("../../../examples/web-analytics/pipes/events_per_minute.pipe")),
    ("user_activity", "pipe", include_str!("../../../examples/web-analytics/pipes/user_activity.pipe")),
];
const TEMPLATE: &str = include_str!("../../../examples/web-analytics/jwt-template.tinybird.json");

/// The demo's password for every account (printed at start).
pub const PASSWORD: &str = "aviary-demo-2026";

/// A demo account: email, first name, role.
type Member = (&'static str, &'static str, &'static str);

/// The demo's organizations and members: (org name, slug, members; the first creates it).
pub const ORGS: &[(&str, &str, &[Member])] = &[
    ("Acme Inc", "acme", &[("ana@acme.example", "Ana", "org:admin"), ("bo@acme.example", "Bo", "org:member")]),
    ("Globex", "globex", &[("gus@globex.example", "Gus", "org:admin"), ("hana@globex.example", "Hana", "org:member")]),
];

/// `aviary demo` settings.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Address to listen on.
    #[arg(long, env = "AVIARY_LISTEN", default_value = "127.0.0.1:7181")]
    pub listen: std::net::SocketAddr,
    /// Data directory; it must not exist yet (default: a new temporary directory).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// Events per second the generator streams, over both organizations.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
}

/// Runs the demo until Ctrl-C.
pub fn run(args: DemoArgs) -> Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("AVIARY_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let dir = match &args.data_dir {
        Some(d) => {
            anyhow::ensure!(!d.exists(), "{} exists: the demo starts from a fresh data directory", d.display());
            d.clone()
        }
        None => std::env::temp_dir().join(format!("aviary-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let admin_token = format!("p.demo{}", identity::ids::random_hex(24));
    let secret_key = format!("sk_live_{}", identity::ids::random_token(32));
    let workspace_id = "5a0c4c1e-de30-4000-a000-000000000001".to_string();
    let mut serve = crate::cli::ServeArgs::defaults();
    serve.data_dir = dir.clone();
    serve.listen = args.listen;
    serve.secret_key = Some(secret_key.clone());
    serve.workspace_admins = vec![ORGS[0].2[0].0.to_string()];
    let config = crate::serve::config(&serve, admin_token.clone(), workspace_id.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let app = server::Application::build(config).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let ws = app.workspace();
        for (name, kind, text) in PROJECT {
            let ws = ws.clone();
            tokio::task::spawn_blocking(move || match *kind {
                "pipe" => ws.deploy_pipe(name, text),
                _ => ws.deploy_datasource(name, text),
            })
            .await?
            .with_context(|| format!("deploying {name}"))?;
        }
        let id = app.identity();
        let mut members: Vec<(String, Vec<String>)> = Vec::new();
        for (name, slug, people) in ORGS {
            let mut ids = Vec::new();
            let mut org_id = String::new();
            for (i, (email, first, role)) in people.iter().enumerate() {
                let user = id
                    .create_user(&json!({"email_address": [email], "password": PASSWORD, "first_name": first}))
                    .await
                    .with_context(|| format!("creating {email}"))?;
                let uid = user["id"].as_str().unwrap_or_default().to_string();
                if i == 0 {
                    let org = id.create_org(&json!({"name": name, "slug": slug, "created_by": uid})).await?;
                    org_id = org["id"].as_str().unwrap_or_default().to_string();
                } else {
                    id.add_membership(&org_id, &json!({"user_id": uid, "role": role})).await?;
                }
                ids.push(uid);
            }
            members.push((slug.to_string(), ids));
        }
        let mut template: serde_json::Value = serde_json::from_str(TEMPLATE)?;
        template["signing_key"] = json!(admin_token);
        template["claims"]["workspace_id"] = json!(workspace_id);
        id.create_template(&template).await?;
        let port = app.port();
        let base = format!("http://{}:{port}", args.listen.ip());
        let generator =
            tokio::spawn(generate(format!("{base}/v0/events?name=events"), admin_token.clone(), members, args.rate));
        println!("\nAviary demo running at {base}\n");
        println!("Sign in with any of these accounts (password: {PASSWORD}):");
        for (name, _, people) in ORGS {
            for (email, _, role) in *people {
                println!("  {email:<22} {name} ({role})");
            }
        }
        println!("\nEvents stream at {} per second. Identity Backend API secret key: {secret_key}", args.rate);
        println!("Data directory: {} (removed by nothing; delete it when done). Ctrl-C stops.", dir.display());
        app.run_until_stopped(crate::serve::shutdown_signal()).await?;
        generator.abort();
        Ok(ExitCode::SUCCESS)
    })
}

const PATHS: &[&str] = &[
    "/",
    "/pricing",
    "/docs",
    "/docs/getting-started",
    "/blog",
    "/blog/launch",
    "/signup",
    "/dashboard",
    "/settings",
    "/changelog",
];
const COUNTRIES: &[&str] = &["US", "DE", "ES", "GB", "FR", "BR", "IN", "JP"];

/// One event for an organization at `ts` (Unix ms): mostly page views, some clicks, signups and
/// purchases; a fifth of them by the organization's real users (so "my activity" has rows).
fn event(rng: &mut impl Rng, org: &str, users: &[String], ts: i64) -> String {
    let kind = match rng.random_range(0..100) {
        0..70 => "page_view",
        70..88 => "click",
        88..95 => "signup",
        _ => "purchase",
    };
    let user = if rng.random_range(0..5) == 0 && !users.is_empty() {
        users[rng.random_range(0..users.len())].clone()
    } else {
        format!("visitor_{}", rng.random_range(0..60))
    };
    // Paths follow a rough power law: the first ones are the popular ones.
    let path = PATHS[(rng.random::<f64>().powi(2) * PATHS.len() as f64) as usize % PATHS.len()];
    let when = chrono::DateTime::from_timestamp_millis(ts).unwrap_or_default().format("%Y-%m-%d %H:%M:%S%.3f");
    json!({
        "timestamp": when.to_string(), "org": org, "user": user, "event": kind, "path": path,
        "country": COUNTRIES[rng.random_range(0..COUNTRIES.len())], "duration_ms": rng.random_range(20..2_000),
        "tags": if kind == "purchase" { vec!["revenue"] } else { vec![] }
    })
    .to_string()
}

/// Backfills 30 minutes, then posts a batch every second; organizations get 60 % / 40 %.
async fn generate(url: String, token: String, orgs: Vec<(String, Vec<String>)>, rate: f64) {
    let client = reqwest::Client::new();
    let send = |lines: Vec<String>| {
        let req = client.post(&url).bearer_auth(&token).body(lines.join("\n"));
        async move {
            if let Err(e) = req.send().await.and_then(reqwest::Response::error_for_status) {
                tracing::warn!(error = %e, "demo events not sent");
            }
        }
    };
    let pick = |rng: &mut rand::rngs::ThreadRng| {
        if rng.random_range(0..10) < 6 || orgs.len() < 2 { &orgs[0] } else { &orgs[1] }
    };
    let now = chrono::Utc::now().timestamp_millis();
    let backfill: Vec<String> = {
        let mut rng = rand::rng();
        let n = (rate * 60.0 * 30.0 / 2.0) as usize;
        (0..n)
            .map(|_| {
                let (org, users) = pick(&mut rng);
                let at = now - rng.random_range(0..30 * 60 * 1000);
                event(&mut rng, org, users, at)
            })
            .collect()
    };
    for chunk in backfill.chunks(5_000) {
        send(chunk.to_vec()).await;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut carry = 0.0;
    loop {
        tick.tick().await;
        carry += rate;
        let n = carry as usize;
        carry -= n as f64;
        let lines: Vec<String> = {
            let mut rng = rand::rng();
            let now = chrono::Utc::now().timestamp_millis();
            (0..n)
                .map(|_| {
                    let (org, users) = pick(&mut rng);
                    let at = now - rng.random_range(0..1000);
                    event(&mut rng, org, users, at)
                })
                .collect()
        };
        if !lines.is_empty() {
            send(lines).await;
        }
    }
}
