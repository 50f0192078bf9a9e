//! `aviary identity`: operator commands on the identity store, run beside the servers (they
//! share its database; running nodes notice the change within about a second).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

/// Where the store is: the same flags as `aviary serve`.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The server's data directory (for `identity.db` and `sealing-key`).
    #[arg(long, env = "AVIARY_DATA_DIR", default_value = "./aviary-data")]
    pub data_dir: PathBuf,
    /// The identity store, when it is PostgreSQL.
    #[arg(long, env = "AVIARY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The sealing key, when the server is given one.
    #[arg(long, env = "AVIARY_SEALING_KEY", hide_env_values = true)]
    pub sealing_key: Option<String>,
}

/// `aviary identity` commands.
#[derive(Debug, clap::Subcommand)]
pub enum IdentityCommand {
    /// Start a signing-key rotation: the new key is published now and signs in ten minutes; the
    /// old one stays in the JWKS until the last token it signed has expired.
    RotateKey(StoreArgs),
    /// Print the JWKS and the current public key (PEM, for `@clerk/backend`'s `jwtKey`).
    Keys(StoreArgs),
}

impl IdentityCommand {
    /// Runs the command.
    pub fn run(self) -> Result<ExitCode> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            match self {
                IdentityCommand::RotateKey(store) => {
                    let id = open(&store).await?;
                    let kid = id.rotate_signing_key().await?;
                    println!("new signing key {kid}: published now, signing in 10 minutes");
                }
                IdentityCommand::Keys(store) => {
                    let id = open(&store).await?;
                    println!("{}", serde_json::to_string_pretty(&id.jwks())?);
                    print!("{}", id.public_key_pem());
                }
            }
            Ok(ExitCode::SUCCESS)
        })
    }
}

async fn open(store: &StoreArgs) -> Result<identity::Identity> {
    let sealing = match &store.sealing_key {
        Some(k) => k.clone(),
        None => std::fs::read_to_string(store.data_dir.join("sealing-key"))
            .with_context(|| format!("reading the sealing key in {}", store.data_dir.display()))?
            .trim()
            .to_string(),
    };
    let url = store
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}?mode=rw", store.data_dir.join("identity.db").display()));
    let (id, _) = identity::Identity::open(identity::Options::new(url, sealing.as_bytes())).await?;
    Ok(id)
}
