//! Sessions: created by sign-in (always a new id: no fixation) or through the Backend API,
//! each with its active organization; listed, revoked, ended, expired by inactivity or age.

use std::net::IpAddr;

use serde_json::{Value, json};
use sqlx::any::AnyRow;

use crate::Identity;
use crate::db;
use crate::error::{Error, Result};
use crate::ids::{digest, new_id, now_ms, random_token};
use crate::input::Body;
use crate::query::{Arg, ListParams, Sql};

/// A session as stored.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub status: String,
    pub active_org_id: Option<String>,
    pub last_active_at: i64,
    pub expire_at: i64,
    pub abandon_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Session {
    fn from_row(r: &AnyRow) -> Session {
        Session {
            id: db::string(r, "id"),
            client_id: db::string(r, "client_id"),
            user_id: db::string(r, "user_id"),
            status: db::string(r, "status"),
            active_org_id: db::text(r, "active_org_id"),
            last_active_at: db::int(r, "last_active_at").unwrap_or(0),
            expire_at: db::int(r, "expire_at").unwrap_or(0),
            abandon_at: db::int(r, "abandon_at").unwrap_or(0),
            created_at: db::int(r, "created_at").unwrap_or(0),
            updated_at: db::int(r, "updated_at").unwrap_or(0),
        }
    }

    /// The status now: an active session past its inactivity or absolute limit is `expired`.
    pub fn status_now(&self) -> &str {
        let now = now_ms();
        if self.status == "active" && (now >= self.expire_at || now >= self.abandon_at) {
            "expired"
        } else {
            &self.status
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "object": "session",
            "id": self.id,
            "client_id": self.client_id,
            "user_id": self.user_id,
            "status": self.status_now(),
            "last_active_organization_id": self.active_org_id,
            "actor": null,
            "latest_activity": null,
            "last_active_at": self.last_active_at,
            "expire_at": self.expire_at,
            "abandon_at": self.abandon_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at
        })
    }
}

/// The outcome of a sign-in: the new session and the browser's client token (for the
/// `__client` cookie; only its digest is stored).
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The session object.
    pub session: Value,
    /// The session id.
    pub session_id: String,
    /// The user id.
    pub user_id: String,
    /// The client token.
    pub client_token: String,
}

impl Identity {
    pub(crate) async fn load_session(&self, id: &str) -> Result<Session> {
        let row = self.db.row(sqlx::query("SELECT * FROM sessions WHERE id = $1").bind(id.to_string())).await?;
        row.map(|r| Session::from_row(&r)).ok_or(Error::NotFound("session"))
    }

    /// `GET /v1/sessions/{id}`.
    pub async fn get_session(&self, id: &str) -> Result<Value> {
        Ok(self.load_session(id).await?.json())
    }

    /// `GET /v1/sessions` (`client_id`, `user_id`, `status`, paging): the page and the total.
    pub async fn list_sessions(&self, p: &ListParams) -> Result<(Vec<Value>, i64)> {
        let (limit, offset) = p.page()?;
        let mut filter = Sql::new(" WHERE 1 = 1");
        filter.and_in("client_id", &p.all("client_id"));
        filter.and_in("user_id", &p.all("user_id"));
        let now = now_ms();
        if let Some(status) = p.one("status") {
            match status.as_str() {
                "active" => {
                    filter.push(" AND status = 'active' AND expire_at > ").arg(Arg::Int(now));
                    filter.push(" AND abandon_at > ").arg(Arg::Int(now));
                }
                "expired" => {
                    filter.push(" AND (status = 'expired' OR (status = 'active' AND (expire_at <= ").arg(Arg::Int(now));
                    filter.push(" OR abandon_at <= ").arg(Arg::Int(now)).push(")))");
                }
                s => {
                    filter.push(" AND status = ").arg(Arg::Text(s.to_string()));
                }
            }
        }
        // The filter's placeholders are reused by both statements, so build them separately.
        let total = self
            .db
            .count(Sql::new(&format!("SELECT COUNT(*) FROM sessions{}", filter.text)).with_args_of(&filter).query())
            .await?;
        let mut q = Sql::new(&format!("SELECT * FROM sessions{}", filter.text)).with_args_of(&filter);
        q.push(" ORDER BY created_at DESC, id DESC LIMIT ").arg(Arg::Int(limit)).push(" OFFSET ").arg(Arg::Int(offset));
        let rows = self.db.rows(q.query()).await?;
        Ok((rows.iter().map(|r| Session::from_row(r).json()).collect(), total))
    }

    /// `POST /v1/sessions` (`user_id`, `active_organization_id`): a session for a user, as
    /// Clerk offers for tests and server-to-server flows.
    pub async fn create_session(&self, body: &Value) -> Result<Value> {
        let b = Body::of(body)?;
        let user_id = b.required("user_id")?;
        let user = self
            .load_user(&user_id)
            .await
            .map_err(|_| Error::value("user_id", "user_id is invalid", "No user has this id."))?;
        if user.banned {
            return Err(Error::Banned);
        }
        let org = b.str("active_organization_id")?;
        let (id, _) = self.start_session(&user_id, org.as_deref(), None).await?;
        self.get_session(&id).await
    }

    /// Signs a user in with an identifier (email or username) and password. Refused while the
    /// client address is over its attempt budget or the account is locked; an unknown account
    /// costs the same time as a wrong password and answers the same.
    pub async fn sign_in(&self, identifier: &str, password: &str, from: Option<IpAddr>) -> Result<SignedIn> {
        if let Some(ip) = from
            && let Err(not_until) = self.sign_in_limits.check_key(&ip)
        {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
            return Err(Error::TooManyRequests { retry_after: wait.as_secs().max(1) });
        }
        let Some(user) = self.find_user(identifier).await? else {
            self.verify_hash(password, None).await?;
            return Err(Error::IncorrectPassword);
        };
        self.check_password(&user, password).await?;
        if user.banned {
            return Err(Error::Banned);
        }
        let (session_id, client_token) = self.start_session(&user.id, None, None).await?;
        self.db
            .exec(
                sqlx::query("UPDATE users SET last_sign_in_at = $1, last_active_at = $1 WHERE id = $2")
                    .bind(now_ms())
                    .bind(user.id.clone()),
            )
            .await?;
        Ok(SignedIn { session: self.get_session(&session_id).await?, session_id, user_id: user.id, client_token })
    }

    /// A new active session for `user_id` on a new client (or `client_id`); the active
    /// organization is `org` (which the user must belong to) or the one joined last.
    pub(crate) async fn start_session(
        &self,
        user_id: &str,
        org: Option<&str>,
        client_id: Option<String>,
    ) -> Result<(String, String)> {
        let active = match org {
            Some(o) => {
                let org = self.load_org(o).await.map_err(|_| {
                    Error::value(
                        "active_organization_id",
                        "active_organization_id is invalid",
                        "No organization has this id.",
                    )
                })?;
                if !self.is_member(&org.id, user_id).await? {
                    return Err(Error::value(
                        "active_organization_id",
                        "active_organization_id is invalid",
                        "The user is not a member of this organization.",
                    ));
                }
                Some(org.id)
            }
            None => self.latest_membership_org(user_id).await?,
        };
        let now = now_ms();
        let token = random_token(32);
        let client = match client_id {
            Some(c) => c,
            None => {
                let c = new_id("client");
                self.db
                    .exec(
                        sqlx::query("INSERT INTO clients (id, token_digest, created_at) VALUES ($1, $2, $3)")
                            .bind(c.clone())
                            .bind(digest(&token))
                            .bind(now),
                    )
                    .await?;
                c
            }
        };
        let id = new_id("sess");
        self.db
            .exec(
                sqlx::query(
                    "INSERT INTO sessions (id, client_id, user_id, status, active_org_id, last_active_at, expire_at, \
                     abandon_at, created_at, updated_at) VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $5, $5)",
                )
                .bind(id.clone())
                .bind(client)
                .bind(user_id.to_string())
                .bind(active)
                .bind(now)
                .bind(now + self.opts.session_inactivity.as_millis() as i64)
                .bind(now + self.opts.session_lifetime.as_millis() as i64),
            )
            .await?;
        self.changed().await?;
        Ok((id, token))
    }

    /// The active sessions of the browser holding `client_token` (newest first).
    pub async fn client_sessions(&self, client_token: &str) -> Result<Vec<Value>> {
        let now = now_ms();
        let rows = self
            .db
            .rows(
                sqlx::query(
                    "SELECT s.* FROM sessions s JOIN clients c ON c.id = s.client_id WHERE c.token_digest = $1 \
                     AND s.status = 'active' AND s.expire_at > $2 AND s.abandon_at > $2 ORDER BY s.created_at DESC",
                )
                .bind(digest(client_token))
                .bind(now),
            )
            .await?;
        Ok(rows.iter().map(|r| Session::from_row(r).json()).collect())
    }

    /// `POST /v1/sessions/{id}/revoke`.
    pub async fn revoke_session(&self, id: &str) -> Result<Value> {
        self.set_session_status(id, "revoked").await
    }

    /// Signs a session out (`ended`).
    pub async fn end_session(&self, id: &str) -> Result<Value> {
        self.set_session_status(id, "ended").await
    }

    async fn set_session_status(&self, id: &str, status: &str) -> Result<Value> {
        let s = self.load_session(id).await?;
        if s.status_now() == "active" {
            self.db
                .exec(
                    sqlx::query("UPDATE sessions SET status = $1, updated_at = $2 WHERE id = $3")
                        .bind(status.to_string())
                        .bind(now_ms())
                        .bind(id.to_string()),
                )
                .await?;
            self.changed().await?;
        }
        self.get_session(id).await
    }

    /// Ends every active session of a user (sign out everywhere; bans): the number ended.
    pub async fn end_user_sessions(&self, user_id: &str, status: &str) -> Result<u64> {
        let n = self
            .db
            .exec(
                sqlx::query(
                    "UPDATE sessions SET status = $1, updated_at = $2 WHERE user_id = $3 AND status = 'active'",
                )
                .bind(status.to_string())
                .bind(now_ms())
                .bind(user_id.to_string()),
            )
            .await?;
        self.changed().await?;
        Ok(n)
    }

    /// Switches the session's active organization (`None`: none). The user must be a member.
    pub async fn set_active_organization(&self, sid: &str, org: Option<&str>) -> Result<Value> {
        let s = self.active_session(sid).await?;
        let org_id = match org {
            Some(o) => {
                let org = self.load_org(o).await?;
                if !self.is_member(&org.id, &s.user_id).await? {
                    return Err(Error::NotFound("organization membership"));
                }
                Some(org.id)
            }
            None => None,
        };
        self.db
            .exec(
                sqlx::query("UPDATE sessions SET active_org_id = $1, updated_at = $2 WHERE id = $3")
                    .bind(org_id)
                    .bind(now_ms())
                    .bind(sid.to_string()),
            )
            .await?;
        self.changed().await?;
        self.get_session(sid).await
    }

    /// The session when it is active; revoked, ended and expired ones are `NotFound`, so a
    /// stale session cannot mint.
    pub(crate) async fn active_session(&self, sid: &str) -> Result<Session> {
        let s = self.load_session(sid).await?;
        if s.status_now() != "active" {
            return Err(Error::NotFound("session"));
        }
        Ok(s)
    }

    /// Marks activity: pushes the inactivity expiry forward.
    pub(crate) async fn touch_session(&self, sid: &str) -> Result<i64> {
        let now = now_ms();
        let expire = now + self.opts.session_inactivity.as_millis() as i64;
        self.db
            .exec(
                sqlx::query(
                    "UPDATE sessions SET last_active_at = $1, expire_at = $2 WHERE id = $3 AND status = 'active'",
                )
                .bind(now)
                .bind(expire)
                .bind(sid.to_string()),
            )
            .await?;
        Ok(expire)
    }
}
