//! Roles and permissions: the system permissions (`org:sys_*`, never put into tokens), the two
//! default roles `org:admin` and `org:member`, and custom ones (`org:<name>`,
//! `org:<feature>:<action>`).

use std::collections::HashMap;

use serde_json::{Value, json};
use sqlx::any::AnyRow;

use crate::Identity;
use crate::db::{self, Db};
use crate::error::{Error, Result};
use crate::ids::{new_id, now_ms};
use crate::input::Body;
use crate::query::{Arg, ListParams, Sql};

/// The permission that makes a member a manager of members.
pub(crate) const MANAGE_MEMBERS: &str = "org:sys_memberships:manage";

/// The system permissions and their names.
const SYSTEM_PERMISSIONS: &[(&str, &str)] = &[
    ("org:sys_profile:manage", "Manage organization"),
    ("org:sys_profile:delete", "Delete organization"),
    ("org:sys_memberships:read", "Read members"),
    ("org:sys_memberships:manage", "Manage members"),
    ("org:sys_domains:read", "Read domains"),
    ("org:sys_domains:manage", "Manage domains"),
    ("org:sys_billing:read", "Read billing"),
    ("org:sys_billing:manage", "Manage billing"),
    ("org:sys_entconns:manage", "Manage enterprise connections"),
];

/// A permission.
#[derive(Debug, Clone)]
pub(crate) struct Permission {
    pub id: String,
    pub key: String,
    pub name: String,
    pub description: String,
    pub kind: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Permission {
    fn from_row(r: &AnyRow) -> Permission {
        Permission {
            id: db::string(r, "id"),
            key: db::string(r, "key"),
            name: db::string(r, "name"),
            description: db::string(r, "description"),
            kind: db::string(r, "kind"),
            created_at: db::int(r, "created_at").unwrap_or(0),
            updated_at: db::int(r, "updated_at").unwrap_or(0),
        }
    }

    fn json(&self) -> Value {
        json!({
            "object": "permission",
            "id": self.id,
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "type": self.kind,
            "created_at": self.created_at,
            "updated_at": self.updated_at
        })
    }
}

/// A role with its permissions.
#[derive(Debug, Clone)]
pub(crate) struct RoleInfo {
    pub id: String,
    pub key: String,
    pub name: String,
    pub description: String,
    pub permissions: Vec<Permission>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl RoleInfo {
    pub fn has(&self, key: &str) -> bool {
        self.permissions.iter().any(|p| p.key == key)
    }

    /// Permission keys; system ones only when `system`.
    pub fn permission_keys(&self, system: bool) -> Vec<String> {
        self.permissions.iter().filter(|p| system || p.kind != "system").map(|p| p.key.clone()).collect()
    }

    fn creator_eligible(&self) -> bool {
        ["org:sys_memberships:manage", "org:sys_memberships:read", "org:sys_profile:delete"].iter().all(|k| self.has(k))
    }

    fn json(&self) -> Value {
        json!({
            "object": "role",
            "id": self.id,
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "is_creator_eligible": self.creator_eligible(),
            "permissions": self.permissions.iter().map(Permission::json).collect::<Vec<_>>(),
            "created_at": self.created_at,
            "updated_at": self.updated_at
        })
    }
}

/// Creates the system permissions and default roles that are missing.
pub(crate) async fn seed(db: &Db) -> Result<()> {
    let now = now_ms();
    for (key, name) in SYSTEM_PERMISSIONS {
        db.exec(
            sqlx::query(
                "INSERT INTO permissions (id, key, name, description, kind, created_at, updated_at) \
                 VALUES ($1, $2, $3, '', 'system', $4, $4) ON CONFLICT (key) DO NOTHING",
            )
            .bind(new_id("perm"))
            .bind(key.to_string())
            .bind(name.to_string())
            .bind(now),
        )
        .await?;
    }
    let admin: Vec<&str> = SYSTEM_PERMISSIONS.iter().map(|(k, _)| *k).collect();
    let roles: [(&str, &str, &str, Vec<&str>); 2] = [
        ("org:admin", "Admin", "Manages the organization and its members.", admin),
        (
            "org:member",
            "Member",
            "Reads members and billing.",
            vec!["org:sys_memberships:read", "org:sys_billing:read"],
        ),
    ];
    for (key, name, description, perms) in roles {
        let created = db
            .exec(
                sqlx::query(
                    "INSERT INTO roles (id, key, name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
                     ON CONFLICT (key) DO NOTHING",
                )
                .bind(new_id("role"))
                .bind(key.to_string())
                .bind(name.to_string())
                .bind(description.to_string())
                .bind(now),
            )
            .await?;
        if created == 1 {
            for p in perms {
                db.exec(
                    sqlx::query(
                        "INSERT INTO role_permissions (role_id, permission_id) \
                         SELECT r.id, p.id FROM roles r, permissions p WHERE r.key = $1 AND p.key = $2",
                    )
                    .bind(key.to_string())
                    .bind(p.to_string()),
                )
                .await?;
            }
        }
    }
    Ok(())
}

fn check_key(key: &str, param: &str, segments: usize) -> Result<()> {
    let parts: Vec<&str> = key.split(':').collect();
    let ok = parts.len() == segments
        && parts[0] == "org"
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
        && !parts[1].starts_with("sys_");
    if ok {
        return Ok(());
    }
    let shape = if segments == 2 { "org:<name>" } else { "org:<feature>:<action>" };
    Err(Error::format(
        param,
        format!("{param} must look like {shape}: lowercase letters, digits and '_'; 'sys_' is reserved."),
    ))
}

impl Identity {
    /// Every role with its permissions, by key.
    pub(crate) async fn roles_by_key(&self) -> Result<HashMap<String, RoleInfo>> {
        Ok(self.load_roles().await?.into_iter().map(|r| (r.key.clone(), r)).collect())
    }

    async fn load_roles(&self) -> Result<Vec<RoleInfo>> {
        let roles = self.db.rows(sqlx::query("SELECT * FROM roles ORDER BY created_at, key")).await?;
        let links = self
            .db
            .rows(sqlx::query(
                "SELECT rp.role_id, p.* FROM role_permissions rp JOIN permissions p ON p.id = rp.permission_id ORDER BY p.created_at, p.key",
            ))
            .await?;
        Ok(roles
            .iter()
            .map(|r| {
                let id = db::string(r, "id");
                RoleInfo {
                    permissions: links
                        .iter()
                        .filter(|l| db::string(l, "role_id") == id)
                        .map(Permission::from_row)
                        .collect(),
                    id,
                    key: db::string(r, "key"),
                    name: db::string(r, "name"),
                    description: db::string(r, "description"),
                    created_at: db::int(r, "created_at").unwrap_or(0),
                    updated_at: db::int(r, "updated_at").unwrap_or(0),
                }
            })
            .collect())
    }

    pub(crate) async fn role_exists(&self, key: &str) -> Result<()> {
        let n = self.db.count(sqlx::query("SELECT COUNT(*) FROM roles WHERE key = $1").bind(key.to_string())).await?;
        if n == 0 {
            return Err(Error::value("role", "role is invalid", format!("No role has the key '{key}'.")));
        }
        Ok(())
    }

    async fn role(&self, id: &str) -> Result<RoleInfo> {
        self.load_roles().await?.into_iter().find(|r| r.id == id || r.key == id).ok_or(Error::NotFound("role"))
    }

    /// `GET /v1/organization_roles` (`query`, paging).
    pub async fn list_roles(&self, p: &ListParams) -> Result<(Vec<Value>, i64)> {
        let (limit, offset) = p.page()?;
        let mut roles = self.load_roles().await?;
        if let Some(q) = p.one("query") {
            let q = q.to_lowercase();
            roles.retain(|r| r.key.contains(&q) || r.name.to_lowercase().contains(&q));
        }
        let total = roles.len() as i64;
        Ok((roles.iter().skip(offset as usize).take(limit as usize).map(RoleInfo::json).collect(), total))
    }

    /// `GET /v1/organization_roles/{id}`.
    pub async fn get_role(&self, id: &str) -> Result<Value> {
        Ok(self.role(id).await?.json())
    }

    /// `POST /v1/organization_roles` (`key`, `name`, `description`, `permissions`: ids or keys).
    pub async fn create_role(&self, body: &Value) -> Result<Value> {
        let b = Body::of(body)?;
        let key = b.required("key")?;
        check_key(&key, "key", 2)?;
        let name = b.required("name")?;
        let id = new_id("role");
        let now = now_ms();
        self.db
            .exec(
                sqlx::query("INSERT INTO roles (id, key, name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)")
                    .bind(id.clone())
                    .bind(key)
                    .bind(name)
                    .bind(b.str("description")?.unwrap_or_default())
                    .bind(now),
            )
            .await
            .map_err(|e| match e {
                Error::Database(d) => Error::unique(d, || Error::value("key", "key is taken", "A role with this key exists.")),
                e => e,
            })?;
        for p in b.strings("permissions")? {
            self.link_permission(&id, &p).await?;
        }
        self.changed().await?;
        self.get_role(&id).await
    }

    /// `PATCH /v1/organization_roles/{id}` (`name`, `key`, `description`, `permissions`).
    pub async fn update_role(&self, id: &str, body: &Value) -> Result<Value> {
        let b = Body::of(body)?;
        let role = self.role(id).await?;
        let mut q = Sql::new("UPDATE roles SET updated_at = ");
        q.arg(Arg::Int(now_ms()));
        if let Some(name) = b.str("name")? {
            q.push(", name = ").arg(Arg::Text(name));
        }
        if let Some(d) = b.str("description")? {
            q.push(", description = ").arg(Arg::Text(d));
        }
        if let Some(key) = b.str("key")?
            && key != role.key
        {
            check_key(&key, "key", 2)?;
            self.refuse_if_held(&role, "key").await?;
            q.push(", key = ").arg(Arg::Text(key));
        }
        q.push(" WHERE id = ").arg(Arg::Text(role.id.clone()));
        self.db.exec(q.query()).await?;
        if b.has("permissions") {
            self.db.exec(sqlx::query("DELETE FROM role_permissions WHERE role_id = $1").bind(role.id.clone())).await?;
            for p in b.strings("permissions")? {
                self.link_permission(&role.id, &p).await?;
            }
        }
        self.changed().await?;
        self.get_role(&role.id).await
    }

    async fn refuse_if_held(&self, role: &RoleInfo, param: &str) -> Result<()> {
        let held = self
            .db
            .count(sqlx::query("SELECT COUNT(*) FROM memberships WHERE role = $1").bind(role.key.clone()))
            .await?;
        let default = role.key == self.opts.creator_role || role.key == self.opts.default_role;
        if held > 0 || default {
            return Err(Error::value(
                param,
                "the role is in use",
                "Members hold this role, or it is the creator or default role; assign another role first.",
            ));
        }
        Ok(())
    }

    /// `DELETE /v1/organization_roles/{id}`: refused while members hold the role.
    pub async fn delete_role(&self, id: &str) -> Result<Value> {
        let role = self.role(id).await?;
        self.refuse_if_held(&role, "role").await?;
        self.db.exec(sqlx::query("DELETE FROM roles WHERE id = $1").bind(role.id.clone())).await?;
        self.changed().await?;
        Ok(json!({"object": "role", "id": role.id, "deleted": true}))
    }

    /// `POST /v1/organization_roles/{id}/permissions/{permission_id}`.
    pub async fn add_role_permission(&self, id: &str, permission: &str) -> Result<Value> {
        let role = self.role(id).await?;
        self.link_permission(&role.id, permission).await?;
        self.changed().await?;
        self.get_role(&role.id).await
    }

    /// `DELETE /v1/organization_roles/{id}/permissions/{permission_id}`.
    pub async fn remove_role_permission(&self, id: &str, permission: &str) -> Result<Value> {
        let role = self.role(id).await?;
        let p = self.permission(permission).await?;
        if p.key == MANAGE_MEMBERS && role.key == self.opts.creator_role {
            return Err(Error::value(
                "permission_id",
                "permission is required",
                "The creator role must manage members.",
            ));
        }
        self.db
            .exec(
                sqlx::query("DELETE FROM role_permissions WHERE role_id = $1 AND permission_id = $2")
                    .bind(role.id.clone())
                    .bind(p.id),
            )
            .await?;
        self.changed().await?;
        self.get_role(&role.id).await
    }

    async fn link_permission(&self, role_id: &str, permission: &str) -> Result<()> {
        let p = self.permission(permission).await?;
        self.db
            .exec(
                sqlx::query(
                    "INSERT INTO role_permissions (role_id, permission_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(role_id.to_string())
                .bind(p.id),
            )
            .await?;
        Ok(())
    }

    async fn permission(&self, id_or_key: &str) -> Result<Permission> {
        let row = self
            .db
            .row(sqlx::query("SELECT * FROM permissions WHERE id = $1 OR key = $1").bind(id_or_key.to_string()))
            .await?;
        row.map(|r| Permission::from_row(&r)).ok_or(Error::NotFound("permission"))
    }

    /// `GET /v1/organization_permissions` (`query`, paging).
    pub async fn list_permissions(&self, p: &ListParams) -> Result<(Vec<Value>, i64)> {
        let (limit, offset) = p.page()?;
        let mut filter = Sql::new(" WHERE 1 = 1");
        if let Some(q) = p.one("query") {
            let like = format!("%{}%", q.to_lowercase().replace(['%', '_'], ""));
            filter
                .push(" AND (key LIKE ")
                .arg(Arg::Text(like.clone()))
                .push(" OR LOWER(name) LIKE ")
                .arg(Arg::Text(like))
                .push(")");
        }
        let total = self
            .db
            .count(Sql::new(&format!("SELECT COUNT(*) FROM permissions{}", filter.text)).with_args_of(&filter).query())
            .await?;
        let mut q = Sql::new(&format!("SELECT * FROM permissions{}", filter.text)).with_args_of(&filter);
        q.push(" ORDER BY created_at, key LIMIT ").arg(Arg::Int(limit)).push(" OFFSET ").arg(Arg::Int(offset));
        let rows = self.db.rows(q.query()).await?;
        Ok((rows.iter().map(|r| Permission::from_row(r).json()).collect(), total))
    }

    /// `GET /v1/organization_permissions/{id}`.
    pub async fn get_permission(&self, id: &str) -> Result<Value> {
        Ok(self.permission(id).await?.json())
    }

    /// `POST /v1/organization_permissions` (`key` = `org:<feature>:<action>`, `name`,
    /// `description`).
    pub async fn create_permission(&self, body: &Value) -> Result<Value> {
        let b = Body::of(body)?;
        let key = b.required("key")?;
        check_key(&key, "key", 3)?;
        let name = b.required("name")?;
        let id = new_id("perm");
        self.db
            .exec(
                sqlx::query(
                    "INSERT INTO permissions (id, key, name, description, kind, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 'user', $5, $5)",
                )
                .bind(id.clone())
                .bind(key)
                .bind(name)
                .bind(b.str("description")?.unwrap_or_default())
                .bind(now_ms()),
            )
            .await
            .map_err(|e| match e {
                Error::Database(d) => {
                    Error::unique(d, || Error::value("key", "key is taken", "A permission with this key exists."))
                }
                e => e,
            })?;
        self.changed().await?;
        self.get_permission(&id).await
    }

    /// `PATCH /v1/organization_permissions/{id}` (`name`, `description`, `key`).
    pub async fn update_permission(&self, id: &str, body: &Value) -> Result<Value> {
        let b = Body::of(body)?;
        let p = self.permission(id).await?;
        if p.kind == "system" {
            return Err(Error::value(
                "permission_id",
                "system permissions cannot be changed",
                "System permissions are fixed.",
            ));
        }
        let mut q = Sql::new("UPDATE permissions SET updated_at = ");
        q.arg(Arg::Int(now_ms()));
        if let Some(name) = b.str("name")? {
            q.push(", name = ").arg(Arg::Text(name));
        }
        if let Some(d) = b.str("description")? {
            q.push(", description = ").arg(Arg::Text(d));
        }
        if let Some(key) = b.str("key")? {
            check_key(&key, "key", 3)?;
            q.push(", key = ").arg(Arg::Text(key));
        }
        q.push(" WHERE id = ").arg(Arg::Text(p.id.clone()));
        self.db.exec(q.query()).await?;
        self.changed().await?;
        self.get_permission(&p.id).await
    }

    /// `DELETE /v1/organization_permissions/{id}`: also removed from every role.
    pub async fn delete_permission(&self, id: &str) -> Result<Value> {
        let p = self.permission(id).await?;
        if p.kind == "system" {
            return Err(Error::value(
                "permission_id",
                "system permissions cannot be deleted",
                "System permissions are fixed.",
            ));
        }
        self.db.exec(sqlx::query("DELETE FROM role_permissions WHERE permission_id = $1").bind(p.id.clone())).await?;
        self.db.exec(sqlx::query("DELETE FROM permissions WHERE id = $1").bind(p.id.clone())).await?;
        self.changed().await?;
        Ok(json!({"object": "permission", "id": p.id, "deleted": true}))
    }

    /// `GET /v1/role_sets`: one read-only set, `default`, with every role.
    pub async fn role_sets(&self) -> Result<Value> {
        Ok(json!({"data": [self.role_set().await?], "total_count": 1}))
    }

    /// `GET /v1/role_sets/{key}`.
    pub async fn role_set_by_key(&self, key: &str) -> Result<Value> {
        if key != "default" {
            return Err(Error::NotFound("role set"));
        }
        self.role_set().await
    }

    async fn role_set(&self) -> Result<Value> {
        let roles = self.load_roles().await?;
        Ok(json!({
            "object": "role_set",
            "id": "rs_default",
            "key": "default",
            "name": "Default",
            "description": "Every role of the instance.",
            "default_role": self.opts.default_role,
            "creator_role": self.opts.creator_role,
            "roles": roles.iter().map(RoleInfo::json).collect::<Vec<_>>(),
            "created_at": roles.first().map(|r| r.created_at),
            "updated_at": roles.iter().map(|r| r.updated_at).max()
        }))
    }
}
