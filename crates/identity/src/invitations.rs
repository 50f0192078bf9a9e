//! Organization invitations: a single-use ticket (32 random bytes, stored as a digest) in a
//! link sent through the outbox; accepting creates the membership with the invited role.

use serde_json::{Map, Value, json};
use sqlx::any::AnyRow;

use crate::Identity;
use crate::db;
use crate::error::{Error, Result};
use crate::ids::{digest, new_id, now_ms, random_token};
use crate::input::{self, Body};
use crate::query::{Arg, ListParams, Sql};

const DAY_MS: i64 = 24 * 3600 * 1000;

impl Identity {
    fn invitation_json(
        &self,
        r: &AnyRow,
        roles: &std::collections::HashMap<String, crate::roles::RoleInfo>,
        url: Option<String>,
    ) -> Value {
        let now = now_ms();
        let mut status = db::string(r, "status");
        if status == "pending" && db::int(r, "expires_at").unwrap_or(0) <= now {
            status = "expired".into();
        }
        let role = db::string(r, "role");
        json!({
            "object": "organization_invitation",
            "id": db::string(r, "id"),
            "email_address": db::string(r, "email"),
            "role": role,
            "role_name": roles.get(&role).map(|x| x.name.clone()),
            "organization_id": db::string(r, "org_id"),
            "inviter_id": db::text(r, "inviter_id"),
            "status": status,
            "url": url,
            "expires_at": db::int(r, "expires_at"),
            "public_metadata": db::json(r, "public_metadata"),
            "private_metadata": db::json(r, "private_metadata"),
            "created_at": db::int(r, "created_at"),
            "updated_at": db::int(r, "updated_at")
        })
    }

    async fn invitation(&self, id: &str, url: Option<String>) -> Result<Value> {
        let row = self.db.row(sqlx::query("SELECT * FROM invitations WHERE id = $1").bind(id.to_string())).await?;
        let row = row.ok_or(Error::NotFound("invitation"))?;
        Ok(self.invitation_json(&row, &self.roles_by_key().await?, url))
    }

    /// `POST /v1/organizations/{id}/invitations` (`email_address`, `role`, `inviter_user_id`,
    /// `redirect_url`, `expires_in_days`, metadata). The link (with its ticket) is in `url` of
    /// this answer only, and in the outbox.
    pub async fn create_invitation(&self, org: &str, body: &Value) -> Result<Value> {
        let org = self.load_org(org).await?;
        let b = Body::of(body)?;
        let email = b.required("email_address")?.trim().to_lowercase();
        if !email.contains('@') {
            return Err(Error::format("email_address", "email_address must be a valid email address."));
        }
        let role = b.required("role")?;
        self.role_exists(&role).await?;
        let inviter = b.str("inviter_user_id")?;
        if let Some(i) = &inviter {
            self.load_user(i)
                .await
                .map_err(|_| Error::value("inviter_user_id", "inviter_user_id is invalid", "No user has this id."))?;
        }
        let days = b.int_in("expires_in_days", 1..=365)?.unwrap_or(30);
        let members = self
            .db
            .count(
                sqlx::query(
                    "SELECT COUNT(*) FROM memberships m JOIN email_addresses e ON e.user_id = m.user_id \
                     WHERE m.org_id = $1 AND e.email = $2",
                )
                .bind(org.id.clone())
                .bind(email.clone()),
            )
            .await?;
        if members > 0 {
            return Err(Error::unprocessable(
                "duplicate_record",
                "email_address",
                "already a member",
                "A member of this organization already has this email address.",
            ));
        }
        let ticket = random_token(32);
        let url = format!("{}?ticket={ticket}", self.opts.invitation_url);
        let id = new_id("orginv");
        let now = now_ms();
        self.db
            .exec(
                sqlx::query(
                    "INSERT INTO invitations (id, org_id, email, role, inviter_id, status, ticket_digest, redirect_url, \
                     expires_at, public_metadata, private_metadata, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $9, $10, $11, $11)",
                )
                .bind(id.clone())
                .bind(org.id.clone())
                .bind(email.clone())
                .bind(role)
                .bind(inviter)
                .bind(digest(&ticket))
                .bind(b.str("redirect_url")?)
                .bind(now + days * DAY_MS)
                .bind(input::text(&b.object("public_metadata")?.unwrap_or_default()))
                .bind(input::text(&b.object("private_metadata")?.unwrap_or_default()))
                .bind(now),
            )
            .await?;
        let subject = format!("You are invited to join {}", org.name);
        let text = format!("You have been invited to join {} on Aviary. Accept the invitation: {url}", org.name);
        self.send_mail("invitation", &email, &subject, &text, Some(&url)).await?;
        self.changed().await?;
        self.invitation(&id, Some(url)).await
    }

    /// `POST /v1/organizations/{id}/invitations/bulk`: an array of invitation bodies.
    pub async fn create_invitations(&self, org: &str, body: &Value) -> Result<(Vec<Value>, i64)> {
        let Value::Array(items) = body else {
            return Err(Error::format("body", "The body must be an array of invitations."));
        };
        let mut out = Vec::new();
        for item in items {
            out.push(self.create_invitation(org, item).await?);
        }
        let n = out.len() as i64;
        Ok((out, n))
    }

    async fn invitations(&self, filter: Sql, p: &ListParams) -> Result<(Vec<Value>, i64)> {
        let (limit, offset) = p.page()?;
        let total = self
            .db
            .count(Sql::new(&format!("SELECT COUNT(*) FROM invitations{}", filter.text)).with_args_of(&filter).query())
            .await?;
        let mut q = Sql::new(&format!("SELECT * FROM invitations{}", filter.text)).with_args_of(&filter);
        q.push(" ORDER BY created_at DESC, id DESC LIMIT ").arg(Arg::Int(limit)).push(" OFFSET ").arg(Arg::Int(offset));
        let rows = self.db.rows(q.query()).await?;
        let roles = self.roles_by_key().await?;
        Ok((rows.iter().map(|r| self.invitation_json(r, &roles, None)).collect(), total))
    }

    fn status_filter(f: &mut Sql, statuses: &[String]) {
        let now = now_ms();
        let mut stored: Vec<String> = statuses.iter().filter(|s| *s != "expired" && *s != "pending").cloned().collect();
        let pending = statuses.iter().any(|s| s == "pending");
        let expired = statuses.iter().any(|s| s == "expired");
        if statuses.is_empty() {
            return;
        }
        if stored.is_empty() {
            stored.push("-".into());
        }
        f.push(" AND (status IN (");
        for (i, s) in stored.iter().enumerate() {
            if i > 0 {
                f.push(", ");
            }
            f.arg(Arg::Text(s.clone()));
        }
        f.push(")");
        if pending {
            f.push(" OR (status = 'pending' AND expires_at > ").arg(Arg::Int(now)).push(")");
        }
        if expired {
            f.push(" OR status = 'expired' OR (status = 'pending' AND expires_at <= ").arg(Arg::Int(now)).push(")");
        }
        f.push(")");
    }

    /// `GET /v1/organizations/{id}/invitations` (`status`, paging).
    pub async fn list_invitations(&self, org: &str, p: &ListParams) -> Result<(Vec<Value>, i64)> {
        let org = self.load_org(org).await?;
        let mut f = Sql::new(" WHERE org_id = ");
        f.arg(Arg::Text(org.id));
        Self::status_filter(&mut f, &p.all("status"));
        self.invitations(f, p).await
    }

    /// `GET /v1/organizations/{id}/invitations/pending`.
    pub async fn pending_invitations(&self, org: &str, p: &ListParams) -> Result<(Vec<Value>, i64)> {
        let org = self.load_org(org).await?;
        let mut f = Sql::new(" WHERE org_id = ");
        f.arg(Arg::Text(org.id));
        Self::status_filter(&mut f, &["pending".to_string()]);
        self.invitations(f, p).await
    }

    /// `GET /v1/organization_invitations` (instance-wide; `status`, `organization_id`).
    pub async fn list_all_invitations(&self, p: &ListParams) -> Result<(Vec<Value>, i64)> {
        let mut f = Sql::new(" WHERE 1 = 1");
        f.and_in("org_id", &p.all("organization_id"));
        Self::status_filter(&mut f, &p.all("status"));
        self.invitations(f, p).await
    }

    /// `GET /v1/users/{id}/organization_invitations`: invitations to the user's addresses.
    pub async fn user_invitations(&self, user_id: &str, p: &ListParams) -> Result<(Vec<Value>, i64)> {
        let user = self.load_user(user_id).await?;
        let emails: Vec<String> = user.emails.iter().map(|e| e.email.clone()).collect();
        let mut f = Sql::new(" WHERE 1 = 1");
        if emails.is_empty() {
            f.push(" AND 1 = 0");
        }
        f.and_in("email", &emails);
        Self::status_filter(&mut f, &p.all("status"));
        self.invitations(f, p).await
    }

    /// `GET /v1/organizations/{id}/invitations/{invitation_id}`.
    pub async fn get_invitation(&self, org: &str, id: &str) -> Result<Value> {
        let org = self.load_org(org).await?;
        let v = self.invitation(id, None).await?;
        if v["organization_id"] != org.id.as_str() {
            return Err(Error::NotFound("invitation"));
        }
        Ok(v)
    }

    /// `POST /v1/organizations/{id}/invitations/{invitation_id}/revoke`.
    pub async fn revoke_invitation(&self, org: &str, id: &str) -> Result<Value> {
        let current = self.get_invitation(org, id).await?;
        if current["status"] != "pending" {
            return Err(Error::value(
                "invitation_id",
                "invitation is not pending",
                "Only pending invitations can be revoked.",
            ));
        }
        self.db
            .exec(
                sqlx::query("UPDATE invitations SET status = 'revoked', updated_at = $1 WHERE id = $2")
                    .bind(now_ms())
                    .bind(id.to_string()),
            )
            .await?;
        self.changed().await?;
        self.invitation(id, None).await
    }

    /// The pending invitation a ticket is for (the app shows it before accepting).
    pub async fn invitation_for_ticket(&self, ticket: &str) -> Result<Value> {
        let row = self
            .db
            .row(sqlx::query("SELECT * FROM invitations WHERE ticket_digest = $1").bind(digest(ticket)))
            .await?
            .ok_or(Error::NotFound("invitation"))?;
        let v = self.invitation_json(&row, &self.roles_by_key().await?, None);
        if v["status"] != "pending" {
            return Err(Error::NotFound("invitation"));
        }
        Ok(v)
    }

    /// Accepts the invitation a ticket is for, for `user_id`: the membership is created with
    /// the invited role and the ticket is spent.
    pub async fn accept_invitation(&self, ticket: &str, user_id: &str) -> Result<Value> {
        let inv = self.invitation_for_ticket(ticket).await?;
        let id = inv["id"].as_str().unwrap_or_default().to_string();
        // Spend the ticket first, so two concurrent acceptances cannot both succeed.
        let spent = self
            .db
            .exec(
                sqlx::query(
                    "UPDATE invitations SET status = 'accepted', updated_at = $1 WHERE id = $2 AND status = 'pending'",
                )
                .bind(now_ms())
                .bind(id.clone()),
            )
            .await?;
        if spent == 0 {
            return Err(Error::NotFound("invitation"));
        }
        let org = self.load_org(inv["organization_id"].as_str().unwrap_or_default()).await?;
        let meta = |k: &str| inv[k].as_object().cloned().unwrap_or_else(Map::new);
        self.insert_membership(
            &org,
            user_id,
            inv["role"].as_str().unwrap_or_default(),
            meta("public_metadata"),
            meta("private_metadata"),
        )
        .await?;
        self.invitation(&id, None).await
    }
}
