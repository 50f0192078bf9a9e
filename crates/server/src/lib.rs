//! Aviary's HTTP server: the analytics API under `/v0` — health, the Events API, the Data
//! Sources, Pipes, Tokens and SQL APIs — over an `engine::workspace::Workspace`, and the
//! Clerk-compatible identity Backend API under `/v1` over an `identity::Identity`. It owns routing,
//! authentication of requests, request and response formats and the mapping of errors to
//! statuses; it knows nothing of storage internals.

mod app;
pub mod error;
pub mod format;
mod infer;
pub mod limits;
pub mod metrics;
mod openapi;
mod routes;
pub mod usage;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use engine::workspace::{Workspace, WorkspaceOptions};
use tokio::net::TcpListener;

/// Server settings (the binary fills them from flags and `AVIARY_*` variables).
#[derive(Debug, Clone)]
pub struct Config {
    /// Where everything is stored.
    pub data_dir: PathBuf,
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The workspace admin token (also the key JWTs are signed with).
    pub admin_token: String,
    /// The workspace id.
    pub workspace_id: String,
    /// Largest request body accepted (compressed), in bytes.
    pub max_body_bytes: usize,
    /// Largest body after decompression, in bytes.
    pub max_decompressed_bytes: usize,
    /// Buffered bytes past which ingestion answers 503 (back-pressure) until a flush.
    pub max_buffer_bytes: usize,
    /// How often buffered rows are written to Parquet.
    pub flush_interval: Duration,
    /// Documentation base URL used in error bodies.
    pub docs_base_url: String,
    /// Events API requests per second for the workspace (also the burst); 0 turns the limit off.
    pub events_rps: u32,
    /// Longest a query may run (408 past it).
    pub query_timeout: Duration,
    /// Largest encoded query result (400 past it).
    pub max_result_bytes: usize,
    /// Requests per second allowed to each non-admin static token (also the burst); 0: no limit.
    pub static_token_rps: u32,
    /// Longest JWT lifetime accepted (`exp` − now); `None`: no maximum.
    pub jwt_max_lifetime: Option<Duration>,
    /// Key sealing stored secrets (token strings, signing keys); `None`: a key generated in the
    /// data directory.
    pub sealing_key: Option<String>,
    /// The identity store: `postgres://…`, `sqlite://…`; `None`: `identity.db` in the data
    /// directory.
    pub database_url: Option<String>,
    /// The identity Backend API secret key (`sk_live_…`); `None`: the stored one or a new one.
    pub identity_secret_key: Option<String>,
    /// The public base URL (token issuer, app origin, links); `None`: `http://<listen ip>:<port>`
    /// (`localhost` when listening on every interface).
    pub public_url: Option<String>,
    /// Backend API requests allowed per secret key per 10 seconds; 0: no limit.
    pub identity_requests_per_10s: u32,
    /// Argon2id cost of password hashes.
    pub password_params: identity::password::PasswordParams,
    /// Email addresses (verified) of the workspace admins, who see the app's admin pages.
    pub workspace_admins: Vec<String>,
    /// Keep the workspace's rows in ClickHouse instead of the data directory.
    pub clickhouse: Option<ClickHouseConfig>,
    /// Keep rate-limit buckets in Redis (`redis://host:6379`), shared by every node.
    pub redis_url: Option<String>,
    /// Nodes serving the workspace: without Redis, each enforces this share of every limit.
    pub nodes: u32,
}

/// The ClickHouse backend's settings.
#[derive(Debug, Clone)]
pub struct ClickHouseConfig {
    /// Server, database and credentials (the password is never logged).
    pub connection: engine::clickhouse::client::Connection,
    /// Create replicated tables on this cluster, behind `Distributed` tables.
    pub cluster: Option<String>,
    /// How long rows wait for others before their insert is sent.
    pub batch_window: Duration,
}

/// Shared state of the handlers.
pub struct AppState {
    /// The workspace.
    pub workspace: Arc<Workspace>,
    /// Settings.
    pub config: Config,
    /// Jobs by id (deletes run synchronously; their job objects stay readable).
    pub jobs: std::sync::Mutex<std::collections::HashMap<String, serde_json::Value>>,

    /// Static tokens (the admin token among them).
    pub tokens: access::tokens::TokenStore,
    /// JWT keys, replaced when the admin token is refreshed.
    pub jwt: std::sync::RwLock<Arc<access::jwt::JwtKeys>>,
    /// Every rate limit's buckets: the Events API's (spec §8.1), JWT `limits.rps` by
    /// (workspace, pipe, JWT name), per static token (`static_token_rps`) and the Backend API's;
    /// in Redis when configured (shared by every node).
    pub limits: access::limits::Limits,
    /// The usage log's queue.
    pub usage: usage::UsageLog,
    /// Operator metrics (`GET /metrics`).
    pub metrics: metrics::Metrics,
    /// Deployments made through `/v1/deploy` since start.
    pub deployments: std::sync::Mutex<routes::deploy::Deployments>,
    /// Users, organizations, sessions and JWT templates.
    pub identity: Arc<identity::Identity>,
    /// Keys the app's CSRF tokens (the sealing secret).
    pub app_secret: String,
    /// The version of the shared static tokens this node holds (with a shared identity store).
    pub tokens_version: std::sync::atomic::AtomicI64,
}

/// The shared document holding the static tokens.
const TOKENS_DOCUMENT: &str = "tokens";

impl AppState {
    /// Whether static tokens are shared with other nodes through the identity store (a
    /// `--database-url`), rather than kept in this node's data directory only.
    pub fn shared_tokens(&self) -> bool {
        self.config.database_url.is_some()
    }

    /// Changes the static tokens with `change`. With a shared identity store, the change is made
    /// under its lock on the latest shared version, which it then replaces, so concurrent
    /// changes on several nodes all land.
    pub async fn change_tokens<T>(
        &self,
        change: impl FnOnce(&access::tokens::TokenStore) -> access::Result<T>,
    ) -> access::Result<T> {
        if !self.shared_tokens() {
            let out = change(&self.tokens);
            self.refresh_jwt_keys();
            return out;
        }
        let tokens = &self.tokens;
        let changed = self
            .identity
            .change_shared_document(TOKENS_DOCUMENT, |current| {
                if let Some(Err(e)) = current.map(|c| tokens.import(c)) {
                    tracing::error!(error = %e, "shared tokens do not load");
                }
                let out = change(tokens);
                (out.is_ok().then(|| tokens.export()), out)
            })
            .await;
        match changed {
            Ok((out, version)) => {
                self.tokens_version.store(version, std::sync::atomic::Ordering::Relaxed);
                self.refresh_jwt_keys();
                out
            }
            Err(e) => {
                Err(access::Error::Io { path: TOKENS_DOCUMENT.into(), source: std::io::Error::other(e.to_string()) })
            }
        }
    }

    /// Loads the shared static tokens when another node changed them; `true` when it did.
    pub async fn poll_tokens(&self) -> Result<bool, identity::Error> {
        if !self.shared_tokens() {
            return Ok(false);
        }
        let Some((version, body)) = self.identity.shared_document(TOKENS_DOCUMENT).await? else {
            // The first node to start publishes its tokens.
            self.change_tokens(|_| Ok(())).await.map_err(|e| identity::Error::Internal(e.to_string()))?;
            return Ok(true);
        };
        if version == self.tokens_version.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(false);
        }
        if let Err(e) = self.tokens.import(&body) {
            tracing::error!(error = %e, "shared tokens do not load");
            return Ok(false);
        }
        self.tokens_version.store(version, std::sync::atomic::Ordering::Relaxed);
        self.refresh_jwt_keys();
        Ok(true)
    }

    /// Re-derives the JWT keys from the current admin token.
    fn refresh_jwt_keys(&self) {
        let keys = jwt_keys(&self.config, &self.tokens.admin_token());
        *self.jwt.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
    }
}

impl AppState {
    /// Creates or extends the tokens that the deployed datafiles' `TOKEN` lines name
    /// (`.pipe`: `PIPES:READ`; `.datasource`: `DATASOURCES:READ`/`APPEND`). Idempotent.
    pub async fn sync_datafile_tokens(&self) {
        use access::tokens::Origin;
        let mut wanted: Vec<(String, String, Origin, String)> = Vec::new();
        for stored in self.workspace.pipes().all() {
            for name in &stored.pipe.tokens {
                wanted.push((
                    name.clone(),
                    format!("PIPES:READ:{}", stored.pipe.name),
                    Origin::Pipe,
                    stored.pipe.name.clone(),
                ));
            }
        }
        for ds in self.workspace.datasources() {
            for t in self.workspace.datasource(&ds).map(|d| d.tokens).unwrap_or_default() {
                let action = match t.scope {
                    datafiles::TokenScope::Read => "READ",
                    datafiles::TokenScope::Append => "APPEND",
                };
                wanted.push((t.name, format!("DATASOURCES:{action}:{ds}"), Origin::Datasource, ds.clone()));
            }
        }
        let missing: Vec<_> = wanted
            .into_iter()
            .filter(|(name, scope, _, _)| self.tokens.get(name).is_none_or(|t| !t.scopes.contains(scope)))
            .collect();
        if missing.is_empty() {
            return;
        }
        let outcome = self
            .change_tokens(|tokens| {
                for (name, scope, origin, resource) in missing {
                    if let Err(e) = tokens.grant(&name, &[scope], origin, Some(resource)) {
                        tracing::warn!(token = %name, error = %e, "datafile token not created");
                    }
                }
                Ok(())
            })
            .await;
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "datafile tokens not saved");
        }
    }
}

/// How long a write waits for buffers to drain before it is refused with 503.
const MAX_BACKPRESSURE_WAIT: Duration = Duration::from_secs(30);

impl AppState {
    /// Waits until the buffers have room for another write. Past a quarter of the buffer
    /// budget writes are held (the acknowledgement waits, so clients slow down to what the
    /// flush sustains and memory stays bounded); `false` when the budget is exceeded or the
    /// wait is too long — the caller answers 503 and ingests nothing.
    pub async fn room_to_ingest(&self) -> bool {
        let soft = self.config.max_buffer_bytes / 4;
        let started = std::time::Instant::now();
        loop {
            let buffered = self.workspace.buffered_bytes();
            if buffered <= soft {
                return true;
            }
            if buffered > self.config.max_buffer_bytes || started.elapsed() > MAX_BACKPRESSURE_WAIT {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// A built server, bound to its port, ready to run.
pub struct Application {
    listener: TcpListener,
    state: Arc<AppState>,
    usage_rx: Option<tokio::sync::mpsc::Receiver<engine::usage::Usage>>,
    generated_secret_key: Option<String>,
}

impl Application {
    /// Opens the data directory (replaying the WAL) and binds the listener.
    pub async fn build(config: Config) -> Result<Application, Box<dyn std::error::Error + Send + Sync>> {
        let dir = config.data_dir.clone();
        let workspace = match &config.clickhouse {
            None => tokio::task::spawn_blocking(move || Workspace::open(&dir, WorkspaceOptions::default())).await??,
            Some(ch) => {
                let options = engine::clickhouse::ClickHouseOptions {
                    connection: ch.connection.clone(),
                    cluster: ch.cluster.clone(),
                    spool: engine::clickhouse::spool::SpoolOptions { window: ch.batch_window, ..Default::default() },
                    wal: Default::default(),
                    query_timeout: config.query_timeout,
                };
                Workspace::open_clickhouse(&dir, options).await?
            }
        };
        let listener = TcpListener::bind(config.listen).await?;
        let (usage, usage_rx) = usage::UsageLog::new();
        let secret = match &config.sealing_key {
            Some(k) => k.clone(),
            None => stored_secret(&config.data_dir.join("sealing-key"))?,
        };
        let tokens = access::tokens::TokenStore::open(
            &config.data_dir,
            &config.workspace_id,
            &config.admin_token,
            secret.as_bytes(),
        )?;
        let jwt = std::sync::RwLock::new(Arc::new(jwt_keys(&config, &tokens.admin_token())));
        let port = listener.local_addr()?.port();
        let host = match config.listen.ip() {
            ip if ip.is_unspecified() => "localhost".to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let public = config.public_url.clone().unwrap_or_else(|| format!("http://{host}:{port}"));
        let public = public.trim_end_matches('/').to_string();
        let mut options = identity::Options::new(
            config
                .database_url
                .clone()
                .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", config.data_dir.join("identity.db").display())),
            secret.as_bytes(),
        );
        options.secret_key = config.identity_secret_key.clone();
        options.issuer = public.clone();
        options.app_origin = public.clone();
        options.invitation_url = format!("{public}/invitations/accept");
        options.passwords = config.password_params;
        let (identity, generated_secret_key) = identity::Identity::open(options).await?;
        let limits = match &config.redis_url {
            Some(url) => access::limits::Limits::shared(
                access::limits::RedisLimits::connect(url, &format!("aviary:{}:", config.workspace_id)).await?,
            ),
            None => access::limits::Limits::local(config.nodes),
        };
        let state = AppState {
            workspace: Arc::new(workspace),
            tokens,
            jwt,
            limits,
            config,
            jobs: std::sync::Mutex::new(Default::default()),
            usage,
            metrics: metrics::Metrics::new(),
            deployments: Default::default(),
            identity: Arc::new(identity),
            app_secret: secret,
            tokens_version: std::sync::atomic::AtomicI64::new(-1),
        };
        if let Err(e) = state.poll_tokens().await {
            tracing::warn!(error = %e, "shared tokens not loaded");
        }
        Ok(Application { listener, state: Arc::new(state), usage_rx: Some(usage_rx), generated_secret_key })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The identity secret key when this start generated it (to be shown once).
    pub fn generated_secret_key(&self) -> Option<&str> {
        self.generated_secret_key.as_deref()
    }

    /// The identity service.
    pub fn identity(&self) -> Arc<identity::Identity> {
        self.state.identity.clone()
    }

    /// The workspace (to deploy a project before serving).
    pub fn workspace(&self) -> Arc<Workspace> {
        self.state.workspace.clone()
    }

    /// Serves until `shutdown` completes, then drains in-flight requests and flushes buffers.
    pub async fn run_until_stopped(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        state.sync_datafile_tokens().await;
        let flusher = tokio::spawn(flush_loop(state.clone()));
        let identity_poll = tokio::spawn(poll_identity(state.identity.clone()));
        let catalog_poll = tokio::spawn(poll_catalog(state.clone()));
        let usage_writer = self.usage_rx.take().map(|rx| tokio::spawn(usage::writer(state.clone(), rx)));
        let app = routes::router(state.clone());
        let served = axum::serve(self.listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await;
        flusher.abort();
        identity_poll.abort();
        catalog_poll.abort();
        if let Some(w) = usage_writer {
            state.usage.stop();
            let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
        }
        if let Err(e) = state.workspace.close(FINAL_DRAIN).await {
            tracing::error!(error = %e, "final flush failed; the WAL keeps the rows");
        }
        served
    }
}

/// JWT keys for the workspace, signed with `admin_token`.
pub(crate) fn jwt_keys(config: &Config, admin_token: &str) -> access::jwt::JwtKeys {
    let max = config.jwt_max_lifetime.map(|d| d.as_secs() as i64);
    access::jwt::JwtKeys::new(&config.workspace_id, admin_token, max)
}

/// Reads a secret from `path`, or creates it (32 random bytes, hex, mode 0600).
fn stored_secret(path: &std::path::Path) -> std::io::Result<String> {
    if let Ok(v) = std::fs::read_to_string(path) {
        return Ok(v.trim().to_string());
    }
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let v: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(path, &v)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(v)
}

/// How long a stopping server waits for buffered rows to reach their store.
const FINAL_DRAIN: Duration = Duration::from_secs(30);

/// How often a node looks for datafiles deployed by other nodes (ClickHouse backend).
pub const CATALOG_POLL: Duration = Duration::from_secs(1);

/// Picks up data sources and pipes deployed by other nodes sharing the ClickHouse catalog
/// (and the tokens their `TOKEN` lines name) every [`CATALOG_POLL`].
async fn poll_catalog(state: Arc<AppState>) {
    if state.workspace.clickhouse().is_none() {
        return;
    }
    let mut tick = tokio::time::interval(CATALOG_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match state.workspace.refresh_catalog().await {
            Ok(true) => state.sync_datafile_tokens().await,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "catalog poll failed"),
        }
        if let Err(e) = state.poll_tokens().await {
            tracing::warn!(error = %e, "token poll failed");
        }
    }
}

/// Picks up identity changes made by other nodes sharing the database (caches dropped, keys
/// reloaded) once a second.
async fn poll_identity(identity: Arc<identity::Identity>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = identity.poll_changes().await {
            tracing::warn!(error = %e, "identity change poll failed");
        }
    }
}

/// How often small parts are merged and TTLs applied.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(10);
/// Parts of one partition past which they are merged into one.
const MAX_PARTS_PER_PARTITION: usize = 8;

/// How often the flush loop looks at the buffers.
const FLUSH_POLL: Duration = Duration::from_millis(100);

/// Writes buffered rows to Parquet every `flush_interval`, or as soon as they pass an eighth of
/// the buffer budget (so a flush's transient copies stay small and buffers do not grow with the
/// ingest rate); merges parts and applies TTLs every `MAINTENANCE_EVERY`.
async fn flush_loop(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(FLUSH_POLL.min(state.config.flush_interval));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_maintenance = std::time::Instant::now();
    let mut last_flush = std::time::Instant::now();
    let early = state.config.max_buffer_bytes / 8;
    loop {
        tick.tick().await;
        let ws = state.workspace.clone();
        if last_maintenance.elapsed() >= MAINTENANCE_EVERY {
            last_maintenance = std::time::Instant::now();
            // Idle rate-limit buckets are forgotten, so distinct JWT names cost memory only
            // while they are in use.
            state.limits.retain_recent();
            let ws = ws.clone();
            let now = chrono::Utc::now().timestamp();
            match tokio::task::spawn_blocking(move || ws.maintain(now, MAX_PARTS_PER_PARTITION)).await {
                Ok(Err(e)) => tracing::error!(error = %e, "maintenance failed"),
                Err(e) => tracing::error!(error = %e, "maintenance panicked"),
                Ok(Ok(changed)) => state.metrics.compactions.inc_by(changed as u64),
            }
        }
        if ws.store().is_none() {
            continue;
        }
        let buffered = ws.buffered_bytes();
        if buffered == 0 || (buffered < early && last_flush.elapsed() < state.config.flush_interval) {
            continue;
        }
        last_flush = std::time::Instant::now();
        match tokio::task::spawn_blocking(move || ws.flush()).await {
            Ok(Err(e)) => tracing::error!(error = %e, "flush failed; rows stay in the WAL"),
            Err(e) => tracing::error!(error = %e, "flush panicked; rows stay in the WAL"),
            Ok(Ok(_)) => {}
        }
    }
}
