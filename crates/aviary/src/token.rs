//! `aviary token create|list|refresh|delete`: the Tokens API of a running server, with an admin
//! (or `TOKENS`) token.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::Value as Json;

/// Where the server is and the token to use.
#[derive(Debug, clap::Args)]
pub struct Server {
    /// The server's base URL.
    #[arg(long, env = "AVIARY_HOST", default_value = "http://127.0.0.1:7181")]
    pub host: String,
    /// An admin or `TOKENS` token.
    #[arg(long, env = "AVIARY_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// `aviary token …`.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a static token and print it.
    Create {
        /// Its name.
        name: String,
        /// A scope, e.g. `PIPES:READ:top_pages` or `DATASOURCES:READ:events:org = 'acme'`
        /// (repeat for several).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// A description.
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        server: Server,
    },
    /// List the tokens (name, id, scopes).
    List {
        #[command(flatten)]
        server: Server,
    },
    /// Give a token a new string (the old one stops working) and print it.
    Refresh {
        /// Name or id.
        name: String,
        #[command(flatten)]
        server: Server,
    },
    /// Delete a token.
    Delete {
        /// Name or id.
        name: String,
        #[command(flatten)]
        server: Server,
    },
}

fn call(server: &Server, request: reqwest::blocking::RequestBuilder) -> Result<Option<Json>> {
    let response = request.bearer_auth(&server.token).send().with_context(|| format!("calling {}", server.host))?;
    let status = response.status();
    let text = response.text()?;
    if !status.is_success() {
        let message = serde_json::from_str::<Json>(&text)
            .ok()
            .and_then(|j| j.get("error").and_then(Json::as_str).map(str::to_string))
            .unwrap_or(text);
        bail!("{status}: {message}");
    }
    Ok(serde_json::from_str(&text).ok())
}

fn scopes_of(t: &Json) -> String {
    let scopes = t["scopes"].as_array().cloned().unwrap_or_default();
    let text: Vec<String> = scopes
        .iter()
        .map(|s| {
            let mut out = s["type"].as_str().unwrap_or_default().to_string();
            for k in ["resource", "filter"] {
                if let Some(v) = s[k].as_str() {
                    out.push(':');
                    out.push_str(v);
                }
            }
            out
        })
        .collect();
    text.join(" ")
}

impl TokenCommand {
    /// Runs the command.
    pub fn run(self) -> Result<ExitCode> {
        let client = reqwest::blocking::Client::new();
        let url = |s: &Server, path: &str| format!("{}{path}", s.host.trim_end_matches('/'));
        match self {
            TokenCommand::Create { name, scopes, description, server } => {
                let mut query = vec![("name", name.as_str()), ("description", description.as_str())];
                query.extend(scopes.iter().map(|s| ("scope", s.as_str())));
                let t = call(&server, client.post(url(&server, "/v0/tokens")).query(&query))?.unwrap_or_default();
                println!("{}", t["token"].as_str().unwrap_or_default());
            }
            TokenCommand::List { server } => {
                let all = call(&server, client.get(url(&server, "/v0/tokens")))?.unwrap_or_default();
                for t in all["tokens"].as_array().into_iter().flatten() {
                    println!(
                        "{}\t{}\t{}",
                        t["name"].as_str().unwrap_or_default(),
                        t["id"].as_str().unwrap_or_default(),
                        scopes_of(t)
                    );
                }
            }
            TokenCommand::Refresh { name, server } => {
                let path = format!("/v0/tokens/{}/refresh", encode(&name));
                let t = call(&server, client.post(url(&server, &path)))?.unwrap_or_default();
                println!("{}", t["token"].as_str().unwrap_or_default());
            }
            TokenCommand::Delete { name, server } => {
                call(&server, client.delete(url(&server, &format!("/v0/tokens/{}", encode(&name)))))?;
                println!("deleted {name}");
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// A path segment with spaces and reserved characters percent-encoded.
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
