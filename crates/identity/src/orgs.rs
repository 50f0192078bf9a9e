//! Organizations (slug rules: lowercase letters, digits and `-`, immutable, never reused) and
//! their memberships (roles from `roles`; an organization always keeps one member who can
//! manage members).

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use sqlx::any::AnyRow;

use crate::Identity;
use crate::db;
use crate::error::{Error, Result};
use crate::ids::{new_id, now_ms};
use crate::input::{self, Body};
use crate::query::{Arg, ListParams, Sql};
use crate::roles::{MANAGE_MEMBERS, RoleInfo};
use crate::users::User;

/// An organization as stored.
#[derive(Debug, Clone)]
pub(crate) struct Org {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub image_url: Option<String>,
    pub max_allowed_memberships: i64,
    pub admin_delete_enabled: bool,
    pub public_metadata: Map<String, Value>,
    pub private_metadata: Map<String, Value>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub members_count: i64,
    pub pending_invitations_count: i64,
}

const ORG_COLUMNS: &str = "o.*, \
    (SELECT COUNT(*) FROM memberships m WHERE m.org_id = o.id) AS members_count, \
    (SELECT COUNT(*) FROM invitations i WHERE i.org_id = o.id AND i.status = 'pending') AS pending_invitations_count";

fn object(row: &AnyRow, col: &str) -> Map<String, Value> {
    match db::json(row, col) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl Org {
    fn from_row(r: &AnyRow) -> Org {
        Org {
            id: db::string(r, "id"),
            name: db::string(r, "name"),
            slug: db::string(r, "slug"),
            image_url: db::text(r, "image_url"),
            max_allowed_memberships: db::int(r, "max_allowed_memberships").unwrap_or(0),
            admin_delete_enabled: db::flag(r, "admin_delete_enabled"),
            public_metadata: object(r, "public_metadata"),
            private_metadata: object(r, "private_metadata"),
            created_by: db::text(r, "created_by"),
            created_at: db::int(r, "created_at").unwrap_or(0),
            updated_at: db::int(r, "updated_at").unwrap_or(0),
            members_count: db::int(r, "members_count").unwrap_or(0),
            pending_invitations_count: db::int(r, "pending_invitations_count").unwrap_or(0),
        }
    }
}

/// A membership as stored.
#[derive(Debug, Clone)]
pub(crate) struct Membership {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub role: String,
    pub public_metadata: Map<String, Value>,
    pub private_metadata: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Membership {
    fn from_row(r: &AnyRow) -> Membership {
        Membership {
            id: db::string(r, "id"),
            org_id: db::string(r, "org_id"),
            user_id: db::string(r, "user_id"),
            role: db::string(r, "role"),
            public_metadata: object(r, "public_metadata"),
            private_metadata: object(r, "private_metadata"),
            created_at: db::int(r, "created_at").unwrap_or(0),
            updated_at: db::int(r, "updated_at").unwrap_or(0),
        }
    }
}

/// The slug made from a name: `Acme Inc` → `acme-inc`.
pub(crate) fn slug_from(name: &str) -> String {
    let mut slug = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let mut slug: String = slug.trim_matches('-').chars().take(60).collect();
    slug = slug.trim_end_matches('-').to_string();
    if slug.len() < 2 {
        slug = format!("org-{}", crate::ids::random_hex(3));
    }
    slug
}

/// Checks a slug: 2–64 of `a-z`, `0-9`, `-`, starting and ending with a letter or digit.
pub(crate) fn check_slug(slug: &str) -> Result<()> {
    let ok = (2..=64).contains(&slug.len())
        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::format(
            "slug",
            "Slugs are 2 to 64 lowercase letters, digits and '-', starting and ending with a letter or digit.",
        ))
    }
}

fn check_name(name: &str) -> Result<()> {
    let n = name.trim();
    let html =
        n.as_bytes().windows(2).any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!'));
    let url = n.contains("://") || n.to_lowercase().starts_with("www.");
    if n.is_empty() || n.chars().count() > 256 || html || url {
        return Err(Error::value(
            "name",
            "name is invalid",
            "Organization names are 1 to 256 characters and may not contain URLs or HTML.",
        ));
    }
    Ok(())
}

fn slug_taken() -> Error {
    Error::unprocessable(
        "organization_slug_taken",
        "slug",
        "This slug is already taken. Please try another.",
        "Organization slugs are unique and never reused, even after the organization is deleted.",
    )
}

impl Identity {
    pub(crate) fn org_json(&self, o: &Org) -> Value {
        json!({
            "object": "organization",
            "id": o.id,
            "name": o.name,
            "slug": o.slug,
            "image_url": o.image_url.clone().unwrap_or_else(|| self.default_image("org", &o.id)),
            "has_image": o.image_url.is_some(),
            "members_count": o.members_count,
            "pending_invitations_count": o.pending_invitations_count,
            "max_allowed_memberships": o.max_allowed_memberships,
            "admin_delete_enabled": o.admin_delete_enabled,
            "public_metadata": o.public_metadata,
            "private_metadata": o.private_metadata,
            "created_by": o.created_by,
            "created_at": o.created_at,
            "updated_at": o.updated_at,
            "last_active_at": o.updated_at,
            "role_set_key": "default"
        })
    }

    /// An organization by id or slug.
    pub(crate) async fn load_org(&self, id_or_slug: &str) -> Result<Org> {
        let row = self
            .db
            .row(
                sqlx::query(&format!("SELECT {ORG_COLUMNS} FROM organizations o WHERE o.id = $1 OR o.slug = $1"))
                    .bind(id_or_slug.to_string()),
            )
            .await?;
        row.map(|r| Org::from_row(&r)).ok_or(Error::NotFound("organization"))
    }

    /// `GET /v1/organizations/{id_or_slug}`.
    pub async fn get_org(&self, id_or_slug: &str) -> Result<Value> {
        Ok(self.org_json(&self.load_org(id_or_slug).await?))
    }

    /// `GET /v1/organizations` (`query`, `user_id`, `order_by`, paging): page and total.
    pub async fn list_orgs(&self, p: &ListParams) -> Result<(Vec<Value>, i64)> {
        let (limit, offset) = p.page()?;
        let order = p.order(&["created_at", "name", "members_count"])?;
        let mut filter = Sql::new(" WHERE 1 = 1");
        filter.and_in("o.id", &p.all("organization_id"));
        let users = p.all("user_id");
        if !users.is_empty() {
            filter.push(" AND o.id IN (SELECT org_id FROM memberships WHERE 1 = 1");
            filter.and_in("user_id", &users);
            filter.push(")");
        }
        if let Some(text) = p.one("query") {
            let like = format!("%{}%", text.to_lowercase().replace(['%', '_'], ""));
            filter.push(" AND (LOWER(o.name) LIKE ").arg(Arg::Text(like.clone()));
            filter.push(" OR o.slug LIKE ").arg(Arg::Text(like.clone()));
            filter.push(" OR o.id LIKE ").arg(Arg::Text(like)).push(")");
        }
        let total = self
            .db
            .count(
                Sql::new(&format!("SELECT COUNT(*) FROM organizations o{}", filter.text)).with_args_of(&filter).query(),
            )
            .await?;
        let mut q = Sql::new(&format!("SELECT * FROM (SELECT {ORG_COLUMNS} FROM organizations o{}) x", filter.text))
            .with_args_of(&filter);
        q.push(&format!(" ORDER BY {order} LIMIT ")).arg(Arg::Int(limit)).push(" OFFSET ").arg(Arg::Int(offset));
        let rows = self.db.rows(q.query()).await?;
        Ok((rows.iter().map(|r| self.org_json(&Org::from_row(r))).collect(), total))
    }

    /// `POST /v1/organizations`: the creator (`created_by`) becomes a member with the creator
    /// role.
    pub async fn create_org(&self, body: &Value) -> Result<Value> {
        let b = Body::of(body)?;
        let name = b.required("name")?;
        check_name(&name)?;
        let creator = match b.str("created_by")? {
            Some(u) => Some(
                self.load_user(&u)
                    .await
                    .map_err(|_| Error::value("created_by", "created_by is invalid", "No user has this id."))?,
            ),
            None => None,
        };
        let given = b.str("slug")?.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        if let Some(s) = &given {
            check_slug(s)?;
        }
        let max = b.int_in("max_allowed_memberships", 0..=i64::from(u32::MAX))?.unwrap_or(0);
        let public = b.object("public_metadata")?.unwrap_or_default();
        let private = b.object("private_metadata")?.unwrap_or_default();
        let id = new_id("org");
        let now = now_ms();
        let base = given.clone().unwrap_or_else(|| slug_from(&name));
        let mut attempt = 1;
        loop {
            let slug = if attempt == 1 {
                base.clone()
            } else {
                format!("{}-{attempt}", base.chars().take(58).collect::<String>())
            };
            let mut tx = self.db.pool.begin().await?;
            let reserved = sqlx::query("INSERT INTO org_slugs (slug, org_id) VALUES ($1, $2)")
                .bind(slug.clone())
                .bind(id.clone())
                .execute(&mut *tx)
                .await;
            match reserved {
                Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                    drop(tx);
                    if given.is_some() {
                        return Err(slug_taken());
                    }
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            sqlx::query(
                "INSERT INTO organizations (id, name, slug, image_url, max_allowed_memberships, admin_delete_enabled, \
                 public_metadata, private_metadata, created_by, created_at, updated_at) \
                 VALUES ($1, $2, $3, NULL, $4, 1, $5, $6, $7, $8, $8)",
            )
            .bind(id.clone())
            .bind(name.trim().to_string())
            .bind(slug)
            .bind(max)
            .bind(input::text(&public))
            .bind(input::text(&private))
            .bind(creator.as_ref().map(|u| u.id.clone()))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if let Some(u) = &creator {
                sqlx::query(
                    "INSERT INTO memberships (id, org_id, user_id, role, public_metadata, private_metadata, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, '{}', '{}', $5, $5)",
                )
                .bind(new_id("orgmem"))
                .bind(id.clone())
                .bind(u.id.clone())
                .bind(self.opts.creator_role.clone())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            break;
        }
        self.changed().await?;
        self.get_org(&id).await
    }

    /// `PATCH /v1/organizations/{id}`. The slug is immutable: a different one is refused.
    pub async fn update_org(&self, id: &str, body: &Value) -> Result<Value> {
        let b = Body::of(body)?;
        let org = self.load_org(id).await?;
        if let Some(slug) = b.str("slug")?
            && slug != org.slug
        {
            return Err(Error::value(
                "slug",
                "slug cannot be changed",
                "Organization slugs are immutable in Aviary: tenant tokens and data are keyed by them.",
            ));
        }
        let mut q = Sql::new("UPDATE organizations SET updated_at = ");
        q.arg(Arg::Int(now_ms()));
        if let Some(name) = b.str("name")? {
            check_name(&name)?;
            q.push(", name = ").arg(Arg::Text(name.trim().to_string()));
        }
        if let Some(max) = b.int_in("max_allowed_memberships", 0..=i64::from(u32::MAX))? {
            q.push(", max_allowed_memberships = ").arg(Arg::Int(max));
        }
        if let Some(v) = b.bool("admin_delete_enabled")? {
            q.push(", admin_delete_enabled = ").arg(Arg::Int(i64::from(v)));
        }
        for field in ["public_metadata", "private_metadata"] {
            if let Some(m) = b.object(field)? {
                q.push(&format!(", {field} = ")).arg(Arg::Text(input::text(&m)));
            }
        }
        q.push(" WHERE id = ").arg(Arg::Text(org.id.clone()));
        self.db.exec(q.query()).await?;
        self.changed().await?;
        self.get_org(&org.id).await
    }

    /// `PATCH`/`PUT /v1/organizations/{id}/metadata`.
    pub async fn org_metadata(&self, id: &str, body: &Value, replace: bool) -> Result<Value> {
        let b = Body::of(body)?;
        let org = self.load_org(id).await?;
        let mut q = Sql::new("UPDATE organizations SET updated_at = ");
        q.arg(Arg::Int(now_ms()));
        for (field, now) in [("public_metadata", &org.public_metadata), ("private_metadata", &org.private_metadata)] {
            if let Some(patch) = b.object(field)? {
                let mut m = if replace { Map::new() } else { now.clone() };
                input::merge(&mut m, &patch);
                q.push(&format!(", {field} = ")).arg(Arg::Text(input::text(&m)));
            }
        }
        q.push(" WHERE id = ").arg(Arg::Text(org.id.clone()));
        self.db.exec(q.query()).await?;
        self.changed().await?;
        self.get_org(&org.id).await
    }

    /// `DELETE /v1/organizations/{id}`: memberships and invitations go with it; the slug
    /// stays reserved.
    pub async fn delete_org(&self, id: &str) -> Result<Value> {
        let org = self.load_org(id).await?;
        self.db
            .exec(sqlx::query("UPDATE sessions SET active_org_id = NULL WHERE active_org_id = $1").bind(org.id.clone()))
            .await?;
        self.db.exec(sqlx::query("DELETE FROM organizations WHERE id = $1").bind(org.id.clone())).await?;
        self.changed().await?;
        Ok(json!({"object": "organization", "id": org.id, "slug": org.slug, "deleted": true}))
    }

    pub(crate) async fn is_member(&self, org_id: &str, user_id: &str) -> Result<bool> {
        Ok(self
            .db
            .count(
                sqlx::query("SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND user_id = $2")
                    .bind(org_id.to_string())
                    .bind(user_id.to_string()),
            )
            .await?
            > 0)
    }

    /// The organization the user joined last (the active one of a new session).
    pub(crate) async fn latest_membership_org(&self, user_id: &str) -> Result<Option<String>> {
        let row = self
            .db
            .row(
                sqlx::query(
                    "SELECT org_id FROM memberships WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
                )
                .bind(user_id.to_string()),
            )
            .await?;
        Ok(row.map(|r| db::string(&r, "org_id")))
    }

    /// Memberships matching `filter`, as Backend API objects, with the total.
    async fn memberships(&self, filter: Sql, p: &ListParams) -> Result<(Vec<Value>, i64)> {
        let (limit, offset) = p.page()?;
        let order = p.order(&["created_at", "role"])?;
        let total = self
            .db
            .count(
                Sql::new(&format!("SELECT COUNT(*) FROM memberships m{}", filter.text)).with_args_of(&filter).query(),
            )
            .await?;
        let mut q = Sql::new(&format!("SELECT m.* FROM memberships m{}", filter.text)).with_args_of(&filter);
        q.push(&format!(" ORDER BY m.{order} LIMIT ")).arg(Arg::Int(limit)).push(" OFFSET ").arg(Arg::Int(offset));
        let rows: Vec<Membership> = self.db.rows(q.query()).await?.iter().map(Membership::from_row).collect();
        Ok((self.memberships_json(&rows).await?, total))
    }

    /// Backend API objects for memberships (organizations, users and roles loaded once).
    pub(crate) async fn memberships_json(&self, ms: &[Membership]) -> Result<Vec<Value>> {
        let roles = self.roles_by_key().await?;
        let mut orgs: HashMap<String, Value> = HashMap::new();
        for m in ms {
            if !orgs.contains_key(&m.org_id) {
                orgs.insert(m.org_id.clone(), self.get_org(&m.org_id).await?);
            }
        }
        let user_ids: Vec<String> = ms.iter().map(|m| m.user_id.clone()).collect();
        let users: HashMap<String, User> =
            self.load_users(&user_ids).await?.into_iter().map(|u| (u.id.clone(), u)).collect();
        Ok(ms
            .iter()
            .map(|m| {
                let role = roles.get(&m.role);
                json!({
                    "object": "organization_membership",
                    "id": m.id,
                    "role": m.role,
                    "role_name": role.map(|r| r.name.clone()),
                    "permissions": role.map(|r| r.permission_keys(true)).unwrap_or_default(),
                    "public_metadata": m.public_metadata,
                    "private_metadata": m.private_metadata,
                    "organization": orgs.get(&m.org_id),
                    "public_user_data": users.get(&m.user_id).map(|u| self.public_user_data(u)),
                    "created_at": m.created_at,
                    "updated_at": m.updated_at
                })
            })
            .collect())
    }

    fn public_user_data(&self, u: &User) -> Value {
        json!({
            "user_id": u.id,
            "first_name": u.first_name,
            "last_name": u.last_name,
            "image_url": u.image_url.clone().unwrap_or_else(|| self.default_image("avatar", &u.id)),
            "profile_image_url": u.image_url.clone().unwrap_or_else(|| self.default_image("avatar", &u.id)),
            "has_image": u.image_url.is_some(),
            "identifier": u.identifier(),
            "username": u.username
        })
    }

    /// `GET /v1/organizations/{id}/memberships` (`user_id`, `role`, `order_by`, paging).
    pub async fn list_memberships(&self, org: &str, p: &ListParams) -> Result<(Vec<Value>, i64)> {
        let org = self.load_org(org).await?;
        let mut f = Sql::new(" WHERE m.org_id = ");
        f.arg(Arg::Text(org.id));
        f.and_in("m.user_id", &p.all("user_id"));
        f.and_in("m.role", &p.all("role"));
        self.memberships(f, p).await
    }

    /// `GET /v1/organization_memberships` (instance-wide; `user_id`, `organization_id`, `role`).
    pub async fn list_all_memberships(&self, p: &ListParams) -> Result<(Vec<Value>, i64)> {
        let mut f = Sql::new(" WHERE 1 = 1");
        f.and_in("m.user_id", &p.all("user_id"));
        f.and_in("m.org_id", &p.all("organization_id"));
        f.and_in("m.role", &p.all("role"));
        self.memberships(f, p).await
    }

    /// `GET /v1/users/{id}/organization_memberships`.
    pub async fn user_memberships(&self, user_id: &str, p: &ListParams) -> Result<(Vec<Value>, i64)> {
        self.load_user(user_id).await?;
        let mut f = Sql::new(" WHERE m.user_id = ");
        f.arg(Arg::Text(user_id.to_string()));
        self.memberships(f, p).await
    }

    async fn load_membership(&self, org_id: &str, user_id: &str) -> Result<Membership> {
        let row = self
            .db
            .row(
                sqlx::query("SELECT * FROM memberships WHERE org_id = $1 AND user_id = $2")
                    .bind(org_id.to_string())
                    .bind(user_id.to_string()),
            )
            .await?;
        row.map(|r| Membership::from_row(&r)).ok_or(Error::NotFound("organization membership"))
    }

    async fn membership_json(&self, org_id: &str, user_id: &str) -> Result<Value> {
        let m = self.load_membership(org_id, user_id).await?;
        Ok(self.memberships_json(&[m]).await?.pop().unwrap_or(Value::Null))
    }

    /// `POST /v1/organizations/{id}/memberships` (`user_id`, `role`).
    pub async fn add_membership(&self, org: &str, body: &Value) -> Result<Value> {
        let b = Body::of(body)?;
        let user_id = b.required("user_id")?;
        let role = b.str("role")?.unwrap_or_else(|| self.opts.default_role.clone());
        let org = self.load_org(org).await?;
        self.load_user(&user_id)
            .await
            .map_err(|_| Error::value("user_id", "user_id is invalid", "No user has this id."))?;
        self.role_exists(&role).await?;
        self.insert_membership(&org, &user_id, &role, Map::new(), Map::new()).await?;
        self.membership_json(&org.id, &user_id).await
    }

    pub(crate) async fn insert_membership(
        &self,
        org: &Org,
        user_id: &str,
        role: &str,
        public: Map<String, Value>,
        private: Map<String, Value>,
    ) -> Result<()> {
        if org.max_allowed_memberships > 0 && org.members_count >= org.max_allowed_memberships {
            return Err(Error::unprocessable(
                "organization_membership_quota_exceeded",
                "user_id",
                "organization membership quota exceeded",
                "The organization has reached its maximum number of members.",
            ));
        }
        let now = now_ms();
        self.db
            .exec(
                sqlx::query(
                    "INSERT INTO memberships (id, org_id, user_id, role, public_metadata, private_metadata, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(new_id("orgmem"))
                .bind(org.id.clone())
                .bind(user_id.to_string())
                .bind(role.to_string())
                .bind(input::text(&public))
                .bind(input::text(&private))
                .bind(now),
            )
            .await
            .map_err(|e| match e {
                Error::Database(d) => Error::unique(d, || {
                    Error::unprocessable(
                        "already_a_member_in_organization",
                        "user_id",
                        "already a member",
                        "The user is already a member of this organization.",
                    )
                }),
                e => e,
            })?;
        self.changed().await
    }

    /// `PATCH /v1/organizations/{id}/memberships/{user_id}` (`role`).
    pub async fn update_membership(&self, org: &str, user_id: &str, body: &Value) -> Result<Value> {
        let role = Body::of(body)?.required("role")?;
        let org = self.load_org(org).await?;
        let m = self.load_membership(&org.id, user_id).await?;
        let roles = self.roles_by_key().await?;
        let new = roles.get(&role).ok_or_else(|| Error::value("role", "role is invalid", "No role has this key."))?;
        if !new.has(MANAGE_MEMBERS) {
            self.keep_a_manager(&org.id, &m, &roles).await?;
        }
        self.db
            .exec(
                sqlx::query("UPDATE memberships SET role = $1, updated_at = $2 WHERE id = $3")
                    .bind(role)
                    .bind(now_ms())
                    .bind(m.id.clone()),
            )
            .await?;
        self.changed().await?;
        self.membership_json(&org.id, user_id).await
    }

    /// `PATCH /v1/organizations/{id}/memberships/{user_id}/metadata` (deep merge).
    pub async fn membership_metadata(&self, org: &str, user_id: &str, body: &Value) -> Result<Value> {
        let b = Body::of(body)?;
        let org = self.load_org(org).await?;
        let m = self.load_membership(&org.id, user_id).await?;
        let mut q = Sql::new("UPDATE memberships SET updated_at = ");
        q.arg(Arg::Int(now_ms()));
        for (field, now) in [("public_metadata", &m.public_metadata), ("private_metadata", &m.private_metadata)] {
            if let Some(patch) = b.object(field)? {
                let mut merged = now.clone();
                input::merge(&mut merged, &patch);
                q.push(&format!(", {field} = ")).arg(Arg::Text(input::text(&merged)));
            }
        }
        q.push(" WHERE id = ").arg(Arg::Text(m.id.clone()));
        self.db.exec(q.query()).await?;
        self.changed().await?;
        self.membership_json(&org.id, user_id).await
    }

    /// `DELETE /v1/organizations/{id}/memberships/{user_id}`: the membership as it was.
    pub async fn remove_membership(&self, org: &str, user_id: &str) -> Result<Value> {
        let org = self.load_org(org).await?;
        let m = self.load_membership(&org.id, user_id).await?;
        let roles = self.roles_by_key().await?;
        self.keep_a_manager(&org.id, &m, &roles).await?;
        let before = self.memberships_json(std::slice::from_ref(&m)).await?.pop().unwrap_or(Value::Null);
        self.db.exec(sqlx::query("DELETE FROM memberships WHERE id = $1").bind(m.id.clone())).await?;
        self.db
            .exec(
                sqlx::query("UPDATE sessions SET active_org_id = NULL WHERE user_id = $1 AND active_org_id = $2")
                    .bind(user_id.to_string())
                    .bind(org.id.clone()),
            )
            .await?;
        self.changed().await?;
        Ok(before)
    }

    /// Refuses to take the member-managing permission from `leaving` when no other member
    /// holds it.
    async fn keep_a_manager(
        &self,
        org_id: &str,
        leaving: &Membership,
        roles: &HashMap<String, RoleInfo>,
    ) -> Result<()> {
        if !roles.get(&leaving.role).is_some_and(|r| r.has(MANAGE_MEMBERS)) {
            return Ok(());
        }
        let rows = self
            .db
            .rows(
                sqlx::query("SELECT role FROM memberships WHERE org_id = $1 AND id <> $2")
                    .bind(org_id.to_string())
                    .bind(leaving.id.clone()),
            )
            .await?;
        let others =
            rows.iter().filter(|r| roles.get(&db::string(r, "role")).is_some_and(|x| x.has(MANAGE_MEMBERS))).count();
        if others == 0 {
            return Err(Error::value(
                "role",
                "the last admin cannot be removed",
                "An organization must keep at least one member who can manage members; make another member an admin first.",
            ));
        }
        Ok(())
    }

    /// The user's membership in `org_id` with its role, when there is one.
    pub(crate) async fn membership_of(&self, org_id: &str, user_id: &str) -> Result<Option<Membership>> {
        match self.load_membership(org_id, user_id).await {
            Ok(m) => Ok(Some(m)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `{org id: role}` for every membership of the user.
    pub(crate) async fn user_org_roles(&self, user_id: &str) -> Result<Map<String, Value>> {
        let rows = self
            .db
            .rows(
                sqlx::query("SELECT org_id, role FROM memberships WHERE user_id = $1 ORDER BY created_at")
                    .bind(user_id.to_string()),
            )
            .await?;
        Ok(rows.iter().map(|r| (db::string(r, "org_id"), Value::String(db::string(r, "role")))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_from_names() {
        assert_eq!(slug_from("Acme Inc"), "acme-inc");
        assert_eq!(slug_from("  Hello,   World!! "), "hello-world");
        assert_eq!(slug_from("Ünïcode 42"), "n-code-42");
        assert!(slug_from("!").starts_with("org-"));
        assert!(check_slug("acme-inc").is_ok());
        for bad in ["-acme", "acme-", "Acme", "a", "ac_me", &"a".repeat(65)] {
            assert!(check_slug(bad).is_err(), "{bad}");
        }
        assert!(check_name("Acme <script>").is_err());
        assert!(check_name("https://evil.example").is_err());
        assert!(check_name("R&D <3 Ops").is_ok());
    }
}
