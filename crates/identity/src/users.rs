//! Users: creation with the password policy, lookups and lists with Clerk's filters, updates,
//! metadata, bans and locks, and password verification with the account lockout.

use serde_json::{Map, Value, json};
use sqlx::any::AnyRow;

use crate::db;
use crate::error::{Error, Result};
use crate::ids::{new_id, now_ms};
use crate::input::{self, Body, secs};
use crate::query::{Arg, ListParams, Sql};
use crate::{Identity, password};

/// A user as stored, with their email addresses.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub id: String,
    pub external_id: Option<String>,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub image_url: Option<String>,
    pub primary_email_id: Option<String>,
    pub password_hash: Option<String>,
    pub public_metadata: Map<String, Value>,
    pub private_metadata: Map<String, Value>,
    pub unsafe_metadata: Map<String, Value>,
    pub banned: bool,
    pub failed_attempts: i64,
    pub locked_until: Option<i64>,
    pub last_sign_in_at: Option<i64>,
    pub last_active_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub emails: Vec<Email>,
}

/// What a new user is stored with.
struct NewUser {
    external_id: Option<String>,
    username: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    password_hash: Option<String>,
    /// Public, private and unsafe metadata.
    metadata: [Map<String, Value>; 3],
    emails: Vec<String>,
    verified: bool,
}

/// An email address of a user.
#[derive(Debug, Clone)]
pub(crate) struct Email {
    pub id: String,
    pub email: String,
    pub verified: bool,
}

fn object(row: &AnyRow, col: &str) -> Map<String, Value> {
    match db::json(row, col) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl User {
    fn from_row(row: &AnyRow) -> User {
        User {
            id: db::string(row, "id"),
            external_id: db::text(row, "external_id"),
            username: db::text(row, "username"),
            first_name: db::text(row, "first_name"),
            last_name: db::text(row, "last_name"),
            image_url: db::text(row, "image_url"),
            primary_email_id: db::text(row, "primary_email_id"),
            password_hash: db::text(row, "password_hash"),
            public_metadata: object(row, "public_metadata"),
            private_metadata: object(row, "private_metadata"),
            unsafe_metadata: object(row, "unsafe_metadata"),
            banned: db::flag(row, "banned"),
            failed_attempts: db::int(row, "failed_attempts").unwrap_or(0),
            locked_until: db::int(row, "locked_until"),
            last_sign_in_at: db::int(row, "last_sign_in_at"),
            last_active_at: db::int(row, "last_active_at"),
            created_at: db::int(row, "created_at").unwrap_or(0),
            updated_at: db::int(row, "updated_at").unwrap_or(0),
            emails: Vec::new(),
        }
    }

    /// The primary email address (the first one when none is marked).
    pub fn primary_email(&self) -> Option<&Email> {
        self.primary_email_id
            .as_ref()
            .and_then(|p| self.emails.iter().find(|e| &e.id == p))
            .or_else(|| self.emails.first())
    }

    /// Whether the account is locked now.
    pub fn locked(&self) -> bool {
        self.locked_until.is_some_and(|t| t > now_ms())
    }

    /// "First Last", or one of them, or `None`.
    pub fn full_name(&self) -> Option<String> {
        match (&self.first_name, &self.last_name) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (Some(n), None) | (None, Some(n)) => Some(n.clone()),
            (None, None) => None,
        }
    }

    /// The identifier shown for the user: the primary email, else the username.
    pub fn identifier(&self) -> String {
        self.primary_email().map(|e| e.email.clone()).or_else(|| self.username.clone()).unwrap_or_default()
    }
}

impl Identity {
    /// The avatar URL of a user or organization without an image of its own.
    pub(crate) fn default_image(&self, kind: &str, id: &str) -> String {
        format!("{}/img/{kind}/{id}.svg", self.opts.issuer.trim_end_matches('/'))
    }

    /// The user object of the Backend API.
    pub(crate) fn user_json(&self, u: &User) -> Value {
        let primary = u.primary_email();
        let emails: Vec<Value> = u
            .emails
            .iter()
            .map(|e| {
                json!({
                    "object": "email_address",
                    "id": e.id,
                    "email_address": e.email,
                    "reserved": false,
                    "verification": {
                        "status": if e.verified { "verified" } else { "unverified" },
                        "strategy": if e.verified { "admin" } else { "email_link" },
                        "attempts": null,
                        "expire_at": null
                    },
                    "linked_to": []
                })
            })
            .collect();
        json!({
            "object": "user",
            "id": u.id,
            "external_id": u.external_id,
            "username": u.username,
            "first_name": u.first_name,
            "last_name": u.last_name,
            "image_url": u.image_url.clone().unwrap_or_else(|| self.default_image("avatar", &u.id)),
            "profile_image_url": u.image_url.clone().unwrap_or_else(|| self.default_image("avatar", &u.id)),
            "has_image": u.image_url.is_some(),
            "primary_email_address_id": primary.map(|e| e.id.clone()),
            "primary_phone_number_id": null,
            "primary_web3_wallet_id": null,
            "email_addresses": emails,
            "phone_numbers": [],
            "web3_wallets": [],
            "passkeys": [],
            "external_accounts": [],
            "saml_accounts": [],
            "enterprise_accounts": [],
            "password_enabled": u.password_hash.is_some(),
            "two_factor_enabled": false,
            "totp_enabled": false,
            "backup_code_enabled": false,
            "banned": u.banned,
            "locked": u.locked(),
            "lockout_expires_in_seconds": u.locked_until.filter(|t| *t > now_ms()).map(|t| (t - now_ms()) / 1000),
            "verification_attempts_remaining": null,
            "public_metadata": u.public_metadata,
            "private_metadata": u.private_metadata,
            "unsafe_metadata": u.unsafe_metadata,
            "create_organization_enabled": true,
            "create_organizations_limit": null,
            "delete_self_enabled": true,
            "legal_accepted_at": null,
            "last_sign_in_at": u.last_sign_in_at,
            "last_active_at": u.last_active_at,
            "created_at": u.created_at,
            "updated_at": u.updated_at
        })
    }

    /// Loads users by id, with their email addresses, in the order of `ids`.
    pub(crate) async fn load_users(&self, ids: &[String]) -> Result<Vec<User>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Sql::new("SELECT * FROM users WHERE 1 = 1");
        q.and_in("id", ids);
        let mut users: Vec<User> = self.db.rows(q.query()).await?.iter().map(User::from_row).collect();
        let mut e = Sql::new("SELECT * FROM email_addresses WHERE 1 = 1");
        e.and_in("user_id", ids);
        e.push(" ORDER BY created_at, id");
        for row in self.db.rows(e.query()).await? {
            let owner = db::string(&row, "user_id");
            if let Some(u) = users.iter_mut().find(|u| u.id == owner) {
                u.emails.push(Email {
                    id: db::string(&row, "id"),
                    email: db::string(&row, "email"),
                    verified: db::flag(&row, "verified"),
                });
            }
        }
        users.sort_by_key(|u| ids.iter().position(|i| *i == u.id));
        Ok(users)
    }

    pub(crate) async fn load_user(&self, id: &str) -> Result<User> {
        self.load_users(&[id.to_string()]).await?.pop().ok_or(Error::NotFound("user"))
    }

    /// `GET /v1/users/{id}`.
    pub async fn get_user(&self, id: &str) -> Result<Value> {
        Ok(self.user_json(&self.load_user(id).await?))
    }

    /// `POST /v1/users`.
    pub async fn create_user(&self, body: &Value) -> Result<Value> {
        let b = Body::of(body)?;
        let emails: Vec<String> = b.strings("email_address")?.iter().map(|e| e.trim().to_lowercase()).collect();
        for e in &emails {
            check_email(e)?;
        }
        let username = b.str("username")?.map(|u| u.trim().to_lowercase()).filter(|u| !u.is_empty());
        if let Some(u) = &username {
            check_username(u)?;
        }
        if emails.is_empty() && username.is_none() {
            return Err(Error::unprocessable(
                "form_data_missing",
                "email_address",
                "at least one identifier is required",
                "A user needs an email address or a username.",
            ));
        }
        let password = b.str("password")?;
        let skip_checks = b.bool("skip_password_checks")?.unwrap_or(false);
        let skip_requirement = b.bool("skip_password_requirement")?.unwrap_or(false);
        let hash = match password {
            Some(p) => {
                let identifiers: Vec<&str> = emails.iter().map(String::as_str).chain(username.as_deref()).collect();
                if skip_checks {
                    if p.is_empty() {
                        return Err(Error::missing("password"));
                    }
                } else {
                    password::check_policy(&p, &identifiers)?;
                }
                Some(self.hash_password(p).await?)
            }
            None if skip_requirement => None,
            None => return Err(Error::missing("password")),
        };
        let id = self
            .insert_user(NewUser {
                external_id: b.str("external_id")?,
                username,
                first_name: b.str("first_name")?,
                last_name: b.str("last_name")?,
                password_hash: hash,
                metadata: [
                    b.object("public_metadata")?.unwrap_or_default(),
                    b.object("private_metadata")?.unwrap_or_default(),
                    b.object("unsafe_metadata")?.unwrap_or_default(),
                ],
                // Addresses given through the Backend API are trusted, as in Clerk.
                emails,
                verified: true,
            })
            .await?
            .0;
        self.changed().await?;
        self.get_user(&id).await
    }

    /// Stores a new user and their addresses in one transaction: the user id and the address
    /// ids.
    async fn insert_user(&self, u: NewUser) -> Result<(String, Vec<String>)> {
        let id = new_id("user");
        let now = now_ms();
        let email_ids: Vec<String> = u.emails.iter().map(|_| new_id("idn")).collect();
        let mut tx = self.db.pool.begin().await?;
        sqlx::query(
            "INSERT INTO users (id, external_id, username, first_name, last_name, image_url, primary_email_id, \
             password_hash, public_metadata, private_metadata, unsafe_metadata, banned, failed_attempts, locked_until, \
             last_sign_in_at, last_active_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8, $9, $10, 0, 0, NULL, NULL, NULL, $11, $11)",
        )
        .bind(id.clone())
        .bind(u.external_id)
        .bind(u.username)
        .bind(u.first_name)
        .bind(u.last_name)
        .bind(email_ids.first().cloned())
        .bind(u.password_hash)
        .bind(input::text(&u.metadata[0]))
        .bind(input::text(&u.metadata[1]))
        .bind(input::text(&u.metadata[2]))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::unique(e, identifier_taken))?;
        for (eid, email) in email_ids.iter().zip(&u.emails) {
            sqlx::query(
                "INSERT INTO email_addresses (id, user_id, email, verified, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(eid.clone())
            .bind(id.clone())
            .bind(email.clone())
            .bind(i64::from(u.verified))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| Error::unique(e, identifier_taken))?;
        }
        tx.commit().await?;
        Ok((id, email_ids))
    }

    /// Hashes off the async threads (Argon2id takes tens of milliseconds by design).
    pub(crate) async fn hash_password(&self, p: String) -> Result<String> {
        let passwords = self.passwords.clone();
        tokio::task::spawn_blocking(move || passwords.hash(&p)).await.map_err(|e| Error::Internal(e.to_string()))?
    }

    /// `GET /v1/users` (`email_address`, `user_id`, `username`, `external_id`,
    /// `organization_id`, `query`, `order_by`, paging): an array.
    pub async fn list_users(&self, p: &ListParams) -> Result<Vec<Value>> {
        let (limit, offset) = p.page()?;
        let order = p.order(&[
            "created_at",
            "updated_at",
            "last_sign_in_at",
            "last_active_at",
            "username",
            "first_name",
            "last_name",
        ])?;
        let mut q = user_filter(p, "SELECT id FROM users u WHERE 1 = 1");
        q.push(&format!(" ORDER BY {order} LIMIT ")).arg(Arg::Int(limit)).push(" OFFSET ").arg(Arg::Int(offset));
        let ids: Vec<String> = self.db.rows(q.query()).await?.iter().map(|r| db::string(r, "id")).collect();
        Ok(self.load_users(&ids).await?.iter().map(|u| self.user_json(u)).collect())
    }

    /// `GET /v1/users/count`.
    pub async fn count_users(&self, p: &ListParams) -> Result<Value> {
        let q = user_filter(p, "SELECT COUNT(*) FROM users u WHERE 1 = 1");
        let n = self.db.count(q.query()).await?;
        Ok(json!({"object": "total_count", "total_count": n}))
    }

    /// `PATCH /v1/users/{id}`.
    pub async fn update_user(&self, id: &str, body: &Value) -> Result<Value> {
        let b = Body::of(body)?;
        let user = self.load_user(id).await?;
        let mut q = Sql::new("UPDATE users SET updated_at = ");
        q.arg(Arg::Int(now_ms()));
        for field in ["first_name", "last_name", "external_id", "image_url"] {
            if b.has(field) {
                q.push(&format!(", {field} = "));
                match b.str(field)? {
                    Some(v) => q.arg(Arg::Text(v)),
                    None => q.push("NULL"),
                };
            }
        }
        if b.has("username") {
            q.push(", username = ");
            match b.str("username")?.map(|u| u.trim().to_lowercase()).filter(|u| !u.is_empty()) {
                Some(u) => {
                    check_username(&u)?;
                    q.arg(Arg::Text(u))
                }
                None => q.push("NULL"),
            };
        }
        if let Some(primary) = b.str("primary_email_address_id")? {
            if !user.emails.iter().any(|e| e.id == primary) {
                return Err(Error::value(
                    "primary_email_address_id",
                    "primary_email_address_id is invalid",
                    "The email address does not belong to this user.",
                ));
            }
            q.push(", primary_email_id = ").arg(Arg::Text(primary));
        }
        if let Some(p) = b.str("password")? {
            if !b.bool("skip_password_checks")?.unwrap_or(false) {
                let ids: Vec<&str> =
                    user.emails.iter().map(|e| e.email.as_str()).chain(user.username.as_deref()).collect();
                password::check_policy(&p, &ids)?;
            }
            q.push(", password_hash = ").arg(Arg::Text(self.hash_password(p).await?));
        }
        for field in ["public_metadata", "private_metadata", "unsafe_metadata"] {
            if let Some(m) = b.object(field)? {
                q.push(&format!(", {field} = ")).arg(Arg::Text(input::text(&m)));
            }
        }
        q.push(" WHERE id = ").arg(Arg::Text(id.to_string()));
        self.db.exec(q.query()).await.map_err(|e| match e {
            Error::Database(d) => Error::unique(d, identifier_taken),
            e => e,
        })?;
        self.changed().await?;
        self.get_user(id).await
    }

    /// `DELETE /v1/users/{id}`: the user, their sessions and memberships.
    pub async fn delete_user(&self, id: &str) -> Result<Value> {
        let n = self.db.exec(sqlx::query("DELETE FROM users WHERE id = $1").bind(id.to_string())).await?;
        if n == 0 {
            return Err(Error::NotFound("user"));
        }
        self.changed().await?;
        Ok(json!({"object": "user", "id": id, "deleted": true}))
    }

    /// `PATCH /v1/users/{id}/metadata` (deep merge) or `PUT` (`replace`).
    pub async fn user_metadata(&self, id: &str, body: &Value, replace: bool) -> Result<Value> {
        let b = Body::of(body)?;
        let user = self.load_user(id).await?;
        let mut q = Sql::new("UPDATE users SET updated_at = ");
        q.arg(Arg::Int(now_ms()));
        let current = [&user.public_metadata, &user.private_metadata, &user.unsafe_metadata];
        for (field, now) in ["public_metadata", "private_metadata", "unsafe_metadata"].into_iter().zip(current) {
            if let Some(patch) = b.object(field)? {
                let mut m = if replace { Map::new() } else { now.clone() };
                input::merge(&mut m, &patch);
                q.push(&format!(", {field} = ")).arg(Arg::Text(input::text(&m)));
            }
        }
        q.push(" WHERE id = ").arg(Arg::Text(id.to_string()));
        self.db.exec(q.query()).await?;
        self.changed().await?;
        self.get_user(id).await
    }

    /// `POST /v1/users/{id}/ban` and `/unban`. A ban ends every session of the user.
    pub async fn set_banned(&self, id: &str, banned: bool) -> Result<Value> {
        let n = self
            .db
            .exec(
                sqlx::query("UPDATE users SET banned = $1, updated_at = $2 WHERE id = $3")
                    .bind(i64::from(banned))
                    .bind(now_ms())
                    .bind(id.to_string()),
            )
            .await?;
        if n == 0 {
            return Err(Error::NotFound("user"));
        }
        if banned {
            self.end_user_sessions(id, "revoked").await?;
        }
        self.changed().await?;
        self.get_user(id).await
    }

    /// `POST /v1/users/{id}/lock` (for the lockout duration) and `/unlock`.
    pub async fn set_locked(&self, id: &str, locked: bool) -> Result<Value> {
        let until = locked.then(|| now_ms() + self.opts.lockout_duration.as_millis() as i64);
        let n = self
            .db
            .exec(
                sqlx::query("UPDATE users SET locked_until = $1, failed_attempts = 0, updated_at = $2 WHERE id = $3")
                    .bind(until)
                    .bind(now_ms())
                    .bind(id.to_string()),
            )
            .await?;
        if n == 0 {
            return Err(Error::NotFound("user"));
        }
        self.changed().await?;
        self.get_user(id).await
    }

    /// `POST /v1/users/{id}/verify_password`: `{"verified": true}`, or 422
    /// `form_password_incorrect`; failures count toward the lockout.
    pub async fn verify_password(&self, id: &str, body: &Value) -> Result<Value> {
        let password = Body::of(body)?.required("password")?;
        let user = self.load_user(id).await?;
        self.check_password(&user, &password).await?;
        Ok(json!({"verified": true}))
    }

    /// Checks `password` for `user` with the lockout rules: locked → `Locked`; wrong →
    /// `IncorrectPassword` (and the account locks at the limit); right → counters reset and a
    /// weaker hash upgraded.
    pub(crate) async fn check_password(&self, user: &User, password: &str) -> Result<()> {
        if let Some(until) = user.locked_until.filter(|t| *t > now_ms()) {
            return Err(Error::Locked { retry_after: ((until - now_ms()) / 1000).max(1) as u64 });
        }
        let (ok, upgrade) = self.verify_hash(password, user.password_hash.clone()).await?;
        if !ok {
            let failures = user.failed_attempts + 1;
            let lock = failures >= i64::from(self.opts.lockout_attempts);
            let until = lock.then(|| now_ms() + self.opts.lockout_duration.as_millis() as i64);
            self.db
                .exec(
                    sqlx::query("UPDATE users SET failed_attempts = $1, locked_until = COALESCE($2, locked_until) WHERE id = $3")
                        .bind(if lock { 0 } else { failures })
                        .bind(until)
                        .bind(user.id.clone()),
                )
                .await?;
            if lock {
                tracing::warn!(user = %user.id, "account locked after repeated failed password checks");
                self.changed().await?;
                return Err(Error::Locked { retry_after: self.opts.lockout_duration.as_secs() });
            }
            return Err(Error::IncorrectPassword);
        }
        let rehash = if upgrade { Some(self.hash_password(password.to_string()).await?) } else { None };
        self.db
            .exec(
                sqlx::query(
                    "UPDATE users SET failed_attempts = 0, locked_until = NULL, password_hash = COALESCE($1, password_hash) \
                     WHERE id = $2",
                )
                .bind(rehash)
                .bind(user.id.clone()),
            )
            .await?;
        Ok(())
    }

    /// Verifies off the async threads: `(matches, should be rehashed)`.
    pub(crate) async fn verify_hash(&self, password: &str, hash: Option<String>) -> Result<(bool, bool)> {
        let (passwords, password) = (self.passwords.clone(), password.to_string());
        tokio::task::spawn_blocking(move || passwords.verify(&password, hash.as_deref()))
            .await
            .map_err(|e| Error::Internal(e.to_string()))
    }

    /// Finds a user by email address or username.
    pub(crate) async fn find_user(&self, identifier: &str) -> Result<Option<User>> {
        let ident = identifier.trim().to_lowercase();
        let row = self
            .db
            .row(
                sqlx::query(
                    "SELECT u.id FROM users u WHERE u.username = $1 \
                     OR u.id IN (SELECT user_id FROM email_addresses WHERE email = $1)",
                )
                .bind(ident),
            )
            .await?;
        match row {
            Some(r) => Ok(self.load_users(&[db::string(&r, "id")]).await?.pop()),
            None => Ok(None),
        }
    }

    /// The shortcode object `user` for JWT templates.
    pub(crate) fn user_shortcodes(&self, u: &User, organizations: Value) -> Value {
        let primary = u.primary_email();
        json!({
            "id": u.id,
            "external_id": u.external_id,
            "first_name": u.first_name,
            "last_name": u.last_name,
            "full_name": u.full_name(),
            "username": u.username,
            "created_at": secs(u.created_at),
            "updated_at": secs(u.updated_at),
            "primary_email_address": primary.map(|e| e.email.clone()),
            "primary_phone_number": null,
            "email_verified": primary.is_some_and(|e| e.verified),
            "phone_number_verified": false,
            "image_url": u.image_url.clone().unwrap_or_else(|| self.default_image("avatar", &u.id)),
            "two_factor_enabled": false,
            "public_metadata": u.public_metadata,
            "unsafe_metadata": u.unsafe_metadata,
            "organizations": organizations
        })
    }
}

fn identifier_taken() -> Error {
    Error::unprocessable(
        "form_identifier_exists",
        "email_address",
        "That email address or username is taken. Please try another.",
        "That email address or username is taken. Please try another.",
    )
}

fn check_email(e: &str) -> Result<()> {
    let valid = e.len() <= 320
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !e.chars().any(|c| c.is_whitespace() || c == '<' || c == '>');
    if valid { Ok(()) } else { Err(Error::format("email_address", "email_address must be a valid email address.")) }
}

fn check_username(u: &str) -> Result<()> {
    let valid = (4..=64).contains(&u.chars().count())
        && u.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if valid {
        Ok(())
    } else {
        Err(Error::format("username", "Usernames are 4 to 64 characters: letters, digits, '_', '-' and '.'."))
    }
}

/// The `WHERE` of the user list and count.
fn user_filter(p: &ListParams, select: &str) -> Sql {
    let mut q = Sql::new(select);
    q.and_in("u.id", &p.all("user_id"));
    q.and_in("u.username", &p.all("username").iter().map(|u| u.to_lowercase()).collect::<Vec<_>>());
    q.and_in("u.external_id", &p.all("external_id"));
    let emails: Vec<String> = p.all("email_address").iter().map(|e| e.to_lowercase()).collect();
    if !emails.is_empty() {
        q.push(" AND u.id IN (SELECT user_id FROM email_addresses WHERE 1 = 1");
        q.and_in("email", &emails);
        q.push(")");
    }
    let orgs = p.all("organization_id");
    if !orgs.is_empty() {
        q.push(" AND u.id IN (SELECT user_id FROM memberships WHERE 1 = 1");
        q.and_in("org_id", &orgs);
        q.push(")");
    }
    if let Some(text) = p.one("query") {
        let like = format!("%{}%", text.to_lowercase().replace(['%', '_'], ""));
        q.push(" AND (LOWER(COALESCE(u.first_name, '')) LIKE ").arg(Arg::Text(like.clone()));
        q.push(" OR LOWER(COALESCE(u.last_name, '')) LIKE ").arg(Arg::Text(like.clone()));
        q.push(" OR LOWER(COALESCE(u.username, '')) LIKE ").arg(Arg::Text(like.clone()));
        q.push(" OR u.id LIKE ").arg(Arg::Text(like.clone()));
        q.push(" OR u.id IN (SELECT user_id FROM email_addresses WHERE email LIKE ").arg(Arg::Text(like));
        q.push("))");
    }
    q
}

/// How long an email verification link works.
const VERIFICATION_TTL_MS: i64 = 24 * 3600 * 1000;

impl Identity {
    /// Self-service sign-up (the app's form): a user with an unverified email address and a
    /// password under the policy; a verification link goes to the outbox. Returns the user.
    pub async fn sign_up(
        &self,
        email: &str,
        password: &str,
        first_name: Option<&str>,
        last_name: Option<&str>,
    ) -> Result<Value> {
        let email = email.trim().to_lowercase();
        check_email(&email)?;
        password::check_policy(password, &[&email])?;
        let hash = self.hash_password(password.to_string()).await?;
        let clean = |n: Option<&str>| n.map(str::trim).filter(|s| !s.is_empty()).map(String::from);
        let (id, email_ids) = self
            .insert_user(NewUser {
                external_id: None,
                username: None,
                first_name: clean(first_name),
                last_name: clean(last_name),
                password_hash: Some(hash),
                metadata: Default::default(),
                emails: vec![email.clone()],
                verified: false,
            })
            .await?;
        let email_id = email_ids.into_iter().next().unwrap_or_default();
        self.send_verification(&email_id, &email).await?;
        self.changed().await?;
        self.get_user(&id).await
    }

    async fn send_verification(&self, email_id: &str, email: &str) -> Result<()> {
        let ticket = crate::ids::random_token(32);
        self.db
            .exec(
                sqlx::query(
                    "INSERT INTO email_verifications (ticket_digest, email_id, expires_at) VALUES ($1, $2, $3)",
                )
                .bind(crate::ids::digest(&ticket))
                .bind(email_id.to_string())
                .bind(now_ms() + VERIFICATION_TTL_MS),
            )
            .await?;
        let link = format!("{}/verify-email?ticket={ticket}", self.opts.app_origin.trim_end_matches('/'));
        let body = format!("Confirm that {email} is your address: {link}");
        self.send_mail("email_verification", email, "Verify your email address", &body, Some(&link)).await
    }

    /// Spends an email verification ticket: the address is verified. Returns the user.
    pub async fn verify_email(&self, ticket: &str) -> Result<Value> {
        let digest = crate::ids::digest(ticket);
        let row = self
            .db
            .row(
                sqlx::query(
                    "SELECT v.email_id, e.user_id FROM email_verifications v JOIN email_addresses e ON e.id = v.email_id \
                     WHERE v.ticket_digest = $1 AND v.expires_at > $2",
                )
                .bind(digest.clone())
                .bind(now_ms()),
            )
            .await?
            .ok_or(Error::NotFound("verification"))?;
        let spent =
            self.db.exec(sqlx::query("DELETE FROM email_verifications WHERE ticket_digest = $1").bind(digest)).await?;
        if spent == 0 {
            return Err(Error::NotFound("verification"));
        }
        self.db
            .exec(
                sqlx::query("UPDATE email_addresses SET verified = 1 WHERE id = $1").bind(db::string(&row, "email_id")),
            )
            .await?;
        self.changed().await?;
        self.get_user(&db::string(&row, "user_id")).await
    }

    /// Changes a password after checking the current one (lockout rules apply); every other
    /// session of the user is ended. Returns the user.
    pub async fn change_password(
        &self,
        user_id: &str,
        current: &str,
        new: &str,
        keep_session: Option<&str>,
    ) -> Result<Value> {
        let user = self.load_user(user_id).await?;
        self.check_password(&user, current).await?;
        let ids: Vec<&str> = user.emails.iter().map(|e| e.email.as_str()).chain(user.username.as_deref()).collect();
        password::check_policy(new, &ids)?;
        let hash = self.hash_password(new.to_string()).await?;
        self.db
            .exec(
                sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                    .bind(hash)
                    .bind(now_ms())
                    .bind(user_id.to_string()),
            )
            .await?;
        self.db
            .exec(
                sqlx::query(
                    "UPDATE sessions SET status = 'ended', updated_at = $1 WHERE user_id = $2 AND status = 'active' AND id <> $3",
                )
                .bind(now_ms())
                .bind(user_id.to_string())
                .bind(keep_session.unwrap_or("").to_string()),
            )
            .await?;
        self.changed().await?;
        self.get_user(user_id).await
    }
}
