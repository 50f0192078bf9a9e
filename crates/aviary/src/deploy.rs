//! `aviary deploy DIR`: pushes a datafile project to a running server (Forward's
//! `POST /v1/deploy`, the route `tb deploy` uses) with the admin token, and prints what changed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

/// `aviary deploy` settings.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// The project directory (`.datasource` and `.pipe` files, at any depth).
    pub dir: PathBuf,
    /// The server's base URL.
    #[arg(long, env = "AVIARY_HOST", default_value = "http://127.0.0.1:7181")]
    pub host: String,
    /// The workspace admin token.
    #[arg(long, env = "AVIARY_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Only check the project against the server; change nothing.
    #[arg(long)]
    pub check: bool,
    /// Drop data sources (and their rows) that the project no longer has.
    #[arg(long)]
    pub allow_destructive_operations: bool,
}

/// Deploys; exit code 0 when deployed (or nothing changed), 1 when the server refused it.
pub fn run(args: &DeployArgs) -> Result<ExitCode> {
    let (files, problems) = datafiles::Project::read_files(&args.dir)
        .with_context(|| format!("reading the project in {}", args.dir.display()))?;
    if problems.iter().any(|p| p.severity == datafiles::Severity::Error) {
        for p in &problems {
            eprintln!("{p}");
        }
        bail!("the project in {} has errors", args.dir.display());
    }
    if files.is_empty() {
        bail!("no .datasource or .pipe files under {}", args.dir.display());
    }
    let mut form = reqwest::blocking::multipart::Form::new().percent_encode_noop();
    for f in files {
        let part = reqwest::blocking::multipart::Part::text(f.text)
            .file_name(f.path.to_string_lossy().replace('\\', "/"))
            .mime_str("text/plain")?;
        form = form.part("data_project://", part);
    }
    let mut query = vec![("auto_promote", "true")];
    if args.check {
        query = vec![("check", "true")];
    }
    if args.allow_destructive_operations {
        query.push(("allow_destructive_operations", "true"));
    }
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/v1/deploy", args.host.trim_end_matches('/')))
        .query(&query)
        .bearer_auth(&args.token)
        .multipart(form)
        .send()
        .with_context(|| format!("connecting to {}", args.host))?;
    let status = response.status();
    let text = response.text()?;
    let body: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("the server answered {status}: {text}"))?;
    let Some(deployment) = body.get("deployment") else {
        bail!("the server answered {status}: {}", body["error"].as_str().unwrap_or(&text));
    };
    for f in deployment["feedback"].as_array().into_iter().flatten() {
        eprintln!(
            "{} {}: {}",
            f["level"].as_str().unwrap_or_default(),
            f["resource"].as_str().unwrap_or_default(),
            f["message"].as_str().unwrap_or_default()
        );
    }
    let result = body["result"].as_str().unwrap_or_default();
    if result == "failed" {
        println!("deployment failed: nothing changed");
        return Ok(ExitCode::from(1));
    }
    let verb = if args.check { "would be " } else { "" };
    for (key, what) in [
        ("new_datasource_names", "data source {} {}created"),
        ("changed_datasource_names", "data source {} {}altered"),
        ("deleted_datasource_names", "data source {} {}deleted"),
        ("new_pipe_names", "pipe {} {}created"),
        ("changed_pipe_names", "pipe {} {}changed"),
        ("deleted_pipe_names", "pipe {} {}deleted"),
    ] {
        for name in deployment[key].as_array().into_iter().flatten() {
            println!("{}", what.replacen("{}", name.as_str().unwrap_or_default(), 1).replacen("{}", verb, 1));
        }
    }
    if result == "no_changes" {
        println!("no changes");
    } else if !args.check {
        println!("deployment {} is live", deployment["id"].as_str().unwrap_or_default());
    }
    Ok(ExitCode::SUCCESS)
}
