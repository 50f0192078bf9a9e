//! `aviary serve`: settings from flags, secrets from the data directory, then the server until
//! SIGTERM or Ctrl-C (which drain requests and flush buffers).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use rand::Rng;

use crate::cli::ServeArgs;

/// Reads `file` in the data directory, or creates it with `make()` (mode 0600).
fn stored_secret(
    dir: &Path,
    file: &str,
    given: Option<String>,
    make: impl FnOnce() -> String,
) -> Result<(String, bool)> {
    let path = dir.join(file);
    if let Some(v) = given {
        return Ok((v, false));
    }
    if let Ok(v) = std::fs::read_to_string(&path) {
        return Ok((v.trim().to_string(), false));
    }
    let v = make();
    std::fs::write(&path, &v).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok((v, true))
}

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("AVIARY_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("creating {}", args.data_dir.display()))?;
    if args.clickhouse_url.is_some() {
        // Nodes sharing a workspace must agree on these; one generated here would be this node's alone.
        let missing: Vec<&str> = [
            ("--admin-token", args.admin_token.is_none()),
            ("--workspace-id", args.workspace_id.is_none()),
            ("--sealing-key", args.sealing_key.is_none()),
        ]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(f, _)| *f)
        .collect();
        if !missing.is_empty() {
            tracing::warn!(flags = ?missing, "with --clickhouse-url, give every node the same values for these flags");
        }
    }
    let (admin_token, generated) =
        stored_secret(&args.data_dir, "admin-token", args.admin_token.clone(), || format!("p.{}", random_hex(32)))?;
    if generated {
        println!("Admin token (shown once; stored in {}): {admin_token}", args.data_dir.join("admin-token").display());
    }
    let (workspace_id, _) = stored_secret(&args.data_dir, "workspace-id", args.workspace_id.clone(), || {
        let h = random_hex(16);
        format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
    })?;
    let config = config(&args, admin_token, workspace_id);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let app = server::Application::build(config).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(key) = app.generated_secret_key() {
            println!("Identity secret key (shown once; only its digest is stored): {key}");
        }
        if let Some(dir) = &args.project {
            deploy_project(&app, dir).await?;
        }
        tracing::info!(port = app.port(), "listening");
        println!("Aviary listening on http://{}:{}", args.listen.ip(), app.port());
        app.run_until_stopped(shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// The server settings `args` describe, with the workspace's admin token and id.
pub(crate) fn config(args: &ServeArgs, admin_token: String, workspace_id: String) -> server::Config {
    server::Config {
        data_dir: args.data_dir.clone(),
        listen: args.listen,
        admin_token,
        workspace_id,
        max_body_bytes: args.max_body_bytes,
        max_decompressed_bytes: args.max_decompressed_bytes,
        max_buffer_bytes: args.max_buffer_bytes,
        flush_interval: Duration::from_millis(args.flush_interval_ms.max(10)),
        docs_base_url: args.docs_base_url.clone(),
        events_rps: args.events_rps,
        query_timeout: Duration::from_secs_f64(args.query_timeout.max(0.001)),
        max_result_bytes: args.max_result_bytes,
        static_token_rps: args.static_token_rps,
        jwt_max_lifetime: args.jwt_max_lifetime.map(Duration::from_secs),
        sealing_key: args.sealing_key.clone(),
        database_url: args.database_url.clone(),
        identity_secret_key: args.secret_key.clone(),
        public_url: args.public_url.clone(),
        identity_requests_per_10s: args.identity_requests_per_10s,
        password_params: identity::password::PasswordParams {
            memory_kib: args.argon2_memory_kib,
            iterations: args.argon2_iterations,
            parallelism: 1,
        },
        workspace_admins: args.workspace_admins.clone(),
        clickhouse: args.clickhouse_url.as_ref().map(|url| server::ClickHouseConfig {
            connection: engine::clickhouse::client::Connection {
                url: url.trim_end_matches('/').to_string(),
                database: args.clickhouse_database.clone(),
                user: args.clickhouse_user.clone(),
                password: args.clickhouse_password.clone(),
            },
            cluster: args.clickhouse_cluster.clone(),
            batch_window: Duration::from_millis(args.clickhouse_batch_ms),
        }),
        redis_url: args.redis_url.clone(),
        nodes: args.nodes.max(1),
    }
}

/// Creates the project's data sources (pipes are served from the pipes issue on).
async fn deploy_project(app: &server::Application, dir: &Path) -> Result<()> {
    let project = match datafiles::Project::load(dir) {
        Ok(p) => p,
        Err(datafiles::Error::Invalid(d)) => {
            for x in &d {
                eprintln!("{x}");
            }
            anyhow::bail!("the project in {} has errors", dir.display());
        }
        Err(e) => return Err(e.into()),
    };
    let ws = app.workspace();
    // Data sources first, then pipes in dependency order (a pipe after the pipes it reads).
    let resources = project.datasources.iter().map(|d| (d.name.clone(), "datasource"));
    for (name, kind) in resources.chain(project.pipes.iter().map(|p| (p.name.clone(), "pipe"))) {
        let file = format!("{name}.{kind}");
        let path = find_datafile(dir, &file).with_context(|| format!("finding {file}"))?;
        let text = std::fs::read_to_string(&path)?;
        let (ws, n) = (ws.clone(), name.clone());
        let deployed = tokio::task::spawn_blocking(move || match kind {
            "pipe" => ws.deploy_pipe(&n, &text),
            _ => ws.deploy_datasource(&n, &text),
        })
        .await?
        .with_context(|| format!("deploying {kind} '{name}'"))?;
        tracing::info!(resource = %name, kind, outcome = ?deployed, "deployed");
    }
    Ok(())
}

fn find_datafile(dir: &Path, file: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(found) = find_datafile(&p, file) {
                return Some(found);
            }
        } else if p.file_name().and_then(|f| f.to_str()) == Some(file) {
            return Some(p);
        }
    }
    None
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
