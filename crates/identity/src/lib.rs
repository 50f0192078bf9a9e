//! Aviary's identity: users and their passwords, sessions, organizations with memberships,
//! roles, permissions and invitations, JWT templates and their shortcodes, the instance's signing
//! keys and JWKS — the model of Clerk's Backend API, stored on SQLite (default) or PostgreSQL.
//!
//! It owns the rules (password policy and lockout, slug rules, the last-manager rule, template
//! validation) and the objects' JSON shapes, which are the contract `@clerk/backend` reads. It
//! knows nothing of HTTP (the `server` crate maps [`Error`] to statuses) nor of analytics: a
//! tenant token is just a template whose claims happen to be Tinybird's.

pub mod claims;
pub mod db;
mod error;
pub mod ids;
mod input;
mod invitations;
pub mod keys;
mod orgs;
pub mod password;
mod query;
mod roles;
mod seal;
mod sessions;
mod templates;
mod tokens;
mod users;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use error::{Error, Result};
pub use query::ListParams;
pub use sessions::SignedIn;
pub use tokens::SessionClaims;

use db::Db;
use keys::KeyRing;
use password::{PasswordParams, Passwords};
use seal::Sealer;

/// Identity settings (the binary fills them from flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// `sqlite://path?mode=rwc` or `postgres://…`.
    pub database_url: String,
    /// The Backend API secret key (`sk_live_…`); `None`: the stored one, or a new one.
    pub secret_key: Option<String>,
    /// Seals stored secrets (template signing keys, private keys).
    pub sealing_key: Vec<u8>,
    /// `iss` of every token: the public identity base URL.
    pub issuer: String,
    /// `azp` of session tokens: the app's origin.
    pub app_origin: String,
    /// Where invitation links point (`…?ticket=` is appended).
    pub invitation_url: String,
    /// Argon2id cost.
    pub passwords: PasswordParams,
    /// Failed password checks in a row that lock an account.
    pub lockout_attempts: u32,
    /// How long a locked account stays locked.
    pub lockout_duration: Duration,
    /// Sign-in attempts allowed per client address per 10 minutes.
    pub sign_in_per_ip: u32,
    /// A session expires after this long without activity.
    pub session_inactivity: Duration,
    /// A session ends this long after it started, whatever its activity.
    pub session_lifetime: Duration,
    /// The role given to an organization's creator.
    pub creator_role: String,
    /// The role given to new members by default.
    pub default_role: String,
}

impl Options {
    /// Defaults for a database URL (the binary overrides what its flags say).
    pub fn new(database_url: impl Into<String>, sealing_key: &[u8]) -> Options {
        Options {
            database_url: database_url.into(),
            secret_key: None,
            sealing_key: sealing_key.to_vec(),
            issuer: "http://localhost:7181".into(),
            app_origin: "http://localhost:7181".into(),
            invitation_url: "http://localhost:7181/invitations/accept".into(),
            passwords: PasswordParams::default(),
            lockout_attempts: 10,
            lockout_duration: Duration::from_secs(3600),
            sign_in_per_ip: 30,
            session_inactivity: Duration::from_secs(7 * 24 * 3600),
            session_lifetime: Duration::from_secs(30 * 24 * 3600),
            creator_role: "org:admin".into(),
            default_role: "org:member".into(),
        }
    }
}

/// The identity service: one per process, shared by the handlers.
pub struct Identity {
    db: Db,
    opts: Options,
    instance_id: String,
    sealer: Sealer,
    passwords: Arc<Passwords>,
    keys: RwLock<Arc<KeyRing>>,
    secret_digest: RwLock<String>,
    /// Bumped by every write here and whenever another node's write is noticed; cached views
    /// of an older generation are not used.
    generation: AtomicU64,
    /// The database's change counter as last seen.
    seen_version: AtomicU64,
    contexts: RwLock<HashMap<String, Arc<tokens::MintContext>>>,
    templates: RwLock<HashMap<String, Arc<templates::Compiled>>>,
    sign_in_limits: governor::DefaultKeyedRateLimiter<std::net::IpAddr>,
}

/// How long a cached view may be used even without a noticed change (the bound on staleness
/// between nodes when change polling is late).
const CACHE_TTL: Duration = Duration::from_secs(5);

impl Identity {
    /// Opens the store (creating and migrating it), the signing keys and the secret key. The
    /// second value is a newly generated secret key, to be shown once.
    pub async fn open(opts: Options) -> Result<(Identity, Option<String>)> {
        let db = Db::connect(&opts.database_url).await?;
        let sealer = Sealer::new(&opts.sealing_key);
        let instance_id = setting_or(&db, "instance_id", || ids::new_id("ins")).await?;
        roles::seed(&db).await?;
        let ring = KeyRing::load(&db, &sealer, &instance_id).await?;
        let mut generated = None;
        let digest = match &opts.secret_key {
            Some(k) => {
                set_setting(&db, "secret_key_digest", &ids::digest(k)).await?;
                ids::digest(k)
            }
            None => match setting(&db, "secret_key_digest").await? {
                Some(d) => d,
                None => {
                    let k = format!("sk_live_{}", ids::random_token(32));
                    set_setting(&db, "secret_key_digest", &ids::digest(&k)).await?;
                    let d = ids::digest(&k);
                    generated = Some(k);
                    d
                }
            },
        };
        let passwords = {
            let params = opts.passwords;
            Arc::new(
                tokio::task::spawn_blocking(move || Passwords::new(params))
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))??,
            )
        };
        let per_ip = NonZeroU32::new(opts.sign_in_per_ip.max(1)).expect("at least one");
        let quota = governor::Quota::with_period(Duration::from_secs(600) / per_ip.get())
            .expect("a positive period")
            .allow_burst(per_ip);
        let version = change_version(&db).await?;
        let identity = Identity {
            db,
            instance_id,
            sealer,
            passwords,
            keys: RwLock::new(Arc::new(ring)),
            secret_digest: RwLock::new(digest),
            generation: AtomicU64::new(0),
            seen_version: AtomicU64::new(version),
            contexts: RwLock::default(),
            templates: RwLock::default(),
            sign_in_limits: governor::RateLimiter::keyed(quota),
            opts,
        };
        Ok((identity, generated))
    }

    /// The settings.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The instance id (`ins_…`), which is also the first signing key's id.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Which database the store is on.
    pub fn backend(&self) -> db::Backend {
        self.db.backend
    }

    /// Whether `key` is the Backend API secret key.
    pub fn check_secret_key(&self, key: &str) -> bool {
        let digest = ids::digest(key);
        *self.secret_digest.read().expect("not poisoned") == digest
    }

    /// The publishable key for `host` (`pk_live_` + base64(`host$`)); `None` when the host
    /// has no dot, which `@clerk/backend` refuses.
    pub fn publishable_key(host: &str) -> Option<String> {
        use base64::Engine;
        host.contains('.')
            .then(|| format!("pk_live_{}", base64::engine::general_purpose::STANDARD.encode(format!("{host}$"))))
    }

    /// `{"keys": [...]}`.
    pub fn jwks(&self) -> serde_json::Value {
        self.key_ring().jwks()
    }

    /// The current signing key's public PEM (SPKI), for `@clerk/backend`'s `jwtKey`.
    pub fn public_key_pem(&self) -> String {
        self.key_ring().current().public_pem.clone()
    }

    /// Starts a signing-key rotation (see [`keys`]); returns the new key's id.
    pub async fn rotate_signing_key(&self) -> Result<String> {
        let kid = keys::rotate(&self.db, &self.sealer, &self.instance_id).await?;
        self.changed().await?;
        Ok(kid)
    }

    fn key_ring(&self) -> Arc<KeyRing> {
        self.keys.read().expect("not poisoned").clone()
    }

    /// Notes a write: local caches are dropped and other nodes will notice.
    async fn changed(&self) -> Result<()> {
        self.forget();
        self.db.exec(sqlx::query("UPDATE changes SET version = version + 1 WHERE id = 1")).await?;
        let v = change_version(&self.db).await?;
        self.seen_version.store(v, Ordering::Relaxed);
        Ok(())
    }

    fn forget(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.contexts.write().expect("not poisoned").clear();
        self.templates.write().expect("not poisoned").clear();
    }

    /// Drops caches and reloads the keys when another node wrote since the last look; the
    /// server calls this every second.
    pub async fn poll_changes(&self) -> Result<()> {
        let v = change_version(&self.db).await?;
        if v != self.seen_version.swap(v, Ordering::Relaxed) {
            let ring = KeyRing::load(&self.db, &self.sealer, &self.instance_id).await?;
            *self.keys.write().expect("not poisoned") = Arc::new(ring);
            self.forget();
        }
        Ok(())
    }

    /// The version and body of a document shared by every node using this store (`None`: never
    /// written).
    pub async fn shared_document(&self, name: &str) -> Result<Option<(i64, String)>> {
        self.db.document(name).await
    }

    /// Changes a shared document with no other writer in between: `change` gets the current
    /// body and returns the new one (`None`: leave it) with a value passed back. Returns that
    /// value and the document's version.
    pub async fn change_shared_document<T>(
        &self,
        name: &str,
        change: impl FnOnce(Option<&str>) -> (Option<String>, T),
    ) -> Result<(T, i64)> {
        self.db.change_document(name, change).await
    }

    /// The outbox: emails to send, newest first (`(recipient, subject, link)`).
    pub async fn outbox(&self, limit: i64) -> Result<Vec<(String, String, Option<String>)>> {
        let rows = self
            .db
            .rows(
                sqlx::query("SELECT recipient, subject, link FROM outbox ORDER BY created_at DESC LIMIT $1")
                    .bind(limit),
            )
            .await?;
        Ok(rows.iter().map(|r| (db::string(r, "recipient"), db::string(r, "subject"), db::text(r, "link"))).collect())
    }

    /// Queues an email: stored in the outbox and logged with its link.
    async fn send_mail(&self, kind: &str, to: &str, subject: &str, body: &str, link: Option<&str>) -> Result<()> {
        self.db
            .exec(
                sqlx::query(
                    "INSERT INTO outbox (id, kind, recipient, subject, body, link, created_at, sent_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
                )
                .bind(ids::new_id("mail"))
                .bind(kind.to_string())
                .bind(to.to_string())
                .bind(subject.to_string())
                .bind(body.to_string())
                .bind(link.map(String::from))
                .bind(ids::now_ms()),
            )
            .await?;
        tracing::info!(kind, to, subject, link = link.unwrap_or(""), "email queued in the outbox");
        Ok(())
    }
}

async fn change_version(db: &Db) -> Result<u64> {
    Ok(db.count(sqlx::query("SELECT version FROM changes WHERE id = 1")).await? as u64)
}

async fn setting(db: &Db, name: &str) -> Result<Option<String>> {
    Ok(db
        .row(sqlx::query("SELECT value FROM settings WHERE name = $1").bind(name.to_string()))
        .await?
        .map(|r| db::string(&r, "value")))
}

async fn set_setting(db: &Db, name: &str, value: &str) -> Result<()> {
    db.exec(
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name.to_string())
            .bind(value.to_string()),
    )
    .await?;
    Ok(())
}

/// The stored setting, or `make()` stored (the first writer wins when nodes race).
async fn setting_or(db: &Db, name: &str, make: impl FnOnce() -> String) -> Result<String> {
    if let Some(v) = setting(db, name).await? {
        return Ok(v);
    }
    db.exec(
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name.to_string())
            .bind(make()),
    )
    .await?;
    setting(db, name).await?.ok_or_else(|| Error::Internal(format!("setting {name} vanished")))
}
