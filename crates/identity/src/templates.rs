//! JWT templates: CRUD with validation on save (claims, lifetime, skew, algorithm and key
//! consistent), compiled once per change so a mint only renders and signs.

use std::str::FromStr;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use sqlx::any::AnyRow;

use crate::Identity;
use crate::claims::ClaimsTemplate;
use crate::db;
use crate::error::{Error, Result};
use crate::ids::{new_id, now_ms};
use crate::input::Body;
use crate::query::{Arg, ListParams, Sql};

/// The algorithms a custom signing key may use.
const ALGORITHMS: &[&str] = &["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256"];

/// How a template's tokens are signed.
pub(crate) enum Signer {
    /// With the instance's RS256 key (its `kid` in the header).
    Instance,
    /// With the template's own key.
    Custom { alg: Algorithm, key: EncodingKey },
}

/// A template ready to mint.
pub(crate) struct Compiled {
    pub claims: ClaimsTemplate,
    pub lifetime: i64,
    pub skew: i64,
    pub signer: Signer,
}

fn encoding_key(alg: &str, key: &str) -> Result<(Algorithm, EncodingKey)> {
    let bad = |why: String| Error::value("signing_key", "signing_key is invalid", why);
    let algorithm = Algorithm::from_str(alg).map_err(|_| bad(format!("Unknown algorithm {alg}.")))?;
    let key = match alg {
        "HS256" | "HS384" | "HS512" if !key.is_empty() => EncodingKey::from_secret(key.as_bytes()),
        "RS256" | "RS384" | "RS512" => EncodingKey::from_rsa_pem(key.as_bytes())
            .map_err(|e| bad(format!("{alg} needs an RSA private key in PEM: {e}")))?,
        "ES256" => EncodingKey::from_ec_pem(key.as_bytes())
            .map_err(|e| bad(format!("ES256 needs a P-256 private key in PEM: {e}")))?,
        _ => return Err(bad("The signing key is empty.".into())),
    };
    Ok((algorithm, key))
}

impl Identity {
    fn template_json(r: &AnyRow) -> Value {
        let custom = db::flag(r, "custom_signing_key");
        json!({
            "object": "jwt_template",
            "id": db::string(r, "id"),
            "name": db::string(r, "name"),
            "claims": db::json(r, "claims"),
            "lifetime": db::int(r, "lifetime"),
            "allowed_clock_skew": db::int(r, "allowed_clock_skew"),
            "custom_signing_key": custom,
            "signing_algorithm": if custom { db::text(r, "signing_algorithm") } else { Some("RS256".to_string()) },
            "created_at": db::int(r, "created_at"),
            "updated_at": db::int(r, "updated_at")
        })
    }

    async fn template_row(&self, id: &str) -> Result<AnyRow> {
        self.db
            .row(sqlx::query("SELECT * FROM jwt_templates WHERE id = $1").bind(id.to_string()))
            .await?
            .ok_or(Error::NotFound("jwt template"))
    }

    /// `GET /v1/jwt_templates` (paging): the page and the total.
    pub async fn list_templates(&self, p: &ListParams) -> Result<(Vec<Value>, i64)> {
        let (limit, offset) = if p.one("limit").is_some() || p.one("offset").is_some() { p.page()? } else { (500, 0) };
        let total = self.db.count(sqlx::query("SELECT COUNT(*) FROM jwt_templates")).await?;
        let mut q = Sql::new("SELECT * FROM jwt_templates ORDER BY created_at DESC, id DESC LIMIT ");
        q.arg(Arg::Int(limit)).push(" OFFSET ").arg(Arg::Int(offset));
        let rows = self.db.rows(q.query()).await?;
        Ok((rows.iter().map(Self::template_json).collect(), total))
    }

    /// `GET /v1/jwt_templates/{id}`.
    pub async fn get_template(&self, id: &str) -> Result<Value> {
        Ok(Self::template_json(&self.template_row(id).await?))
    }

    /// `POST /v1/jwt_templates`.
    pub async fn create_template(&self, body: &Value) -> Result<Value> {
        self.save_template(None, body).await
    }

    /// `PATCH /v1/jwt_templates/{id}` (`name` and `claims` required, as on create; a custom
    /// key may be left out to keep the stored one).
    pub async fn update_template(&self, id: &str, body: &Value) -> Result<Value> {
        let row = self.template_row(id).await?;
        self.save_template(Some(row), body).await
    }

    async fn save_template(&self, existing: Option<AnyRow>, body: &Value) -> Result<Value> {
        let b = Body::of(body)?;
        let name = b.required("name")?;
        let claims = match b.0.get("claims") {
            None | Some(Value::Null) => return Err(Error::missing("claims")),
            Some(Value::String(s)) => serde_json::from_str::<Value>(s)
                .map_err(|_| Error::format("claims", "claims must be a JSON object."))?,
            Some(v) => v.clone(),
        };
        ClaimsTemplate::parse(&claims)?;
        let lifetime = b.int_in("lifetime", 30..=315_360_000)?.unwrap_or(60);
        let skew = b.int_in("allowed_clock_skew", 0..=300)?.unwrap_or(5);
        let custom = b.bool("custom_signing_key")?.unwrap_or(false);
        let (alg, key) = if custom {
            let alg = b.str("signing_algorithm")?.ok_or_else(|| Error::missing("signing_algorithm"))?;
            if !ALGORITHMS.contains(&alg.as_str()) {
                return Err(Error::value(
                    "signing_algorithm",
                    "signing_algorithm is invalid",
                    format!("signing_algorithm must be one of {}.", ALGORITHMS.join(", ")),
                ));
            }
            let key = match (b.str("signing_key")?, &existing) {
                (Some(k), _) => k,
                (None, Some(row))
                    if db::flag(row, "custom_signing_key")
                        && db::text(row, "signing_algorithm").as_deref() == Some(alg.as_str()) =>
                {
                    self.sealer.open(&db::string(row, "signing_key"))?
                }
                _ => return Err(Error::missing("signing_key")),
            };
            encoding_key(&alg, &key)?;
            (Some(alg), Some(self.sealer.seal(&key)))
        } else {
            (None, None)
        };
        let now = now_ms();
        let claims_text = serde_json::to_string(&claims).unwrap_or_default();
        let name_taken = || Error::value("name", "name is taken", "Another JWT template has this name.");
        // One statement for create and update: a new id inserts, an existing one is replaced
        // (its `created_at` kept).
        let id = existing.map(|row| db::string(&row, "id")).unwrap_or_else(|| new_id("jtmp"));
        self.db
            .exec(
                sqlx::query(
                    "INSERT INTO jwt_templates (id, name, claims, lifetime, allowed_clock_skew, custom_signing_key, \
                     signing_algorithm, signing_key, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, claims = excluded.claims, \
                     lifetime = excluded.lifetime, allowed_clock_skew = excluded.allowed_clock_skew, \
                     custom_signing_key = excluded.custom_signing_key, signing_algorithm = excluded.signing_algorithm, \
                     signing_key = excluded.signing_key, updated_at = excluded.updated_at",
                )
                .bind(id.clone())
                .bind(name)
                .bind(claims_text)
                .bind(lifetime)
                .bind(skew)
                .bind(i64::from(custom))
                .bind(alg)
                .bind(key)
                .bind(now),
            )
            .await
            .map_err(|e| match e {
                Error::Database(d) => Error::unique(d, name_taken),
                e => e,
            })?;
        self.changed().await?;
        self.get_template(&id).await
    }

    /// `DELETE /v1/jwt_templates/{id}`.
    pub async fn delete_template(&self, id: &str) -> Result<Value> {
        let n = self.db.exec(sqlx::query("DELETE FROM jwt_templates WHERE id = $1").bind(id.to_string())).await?;
        if n == 0 {
            return Err(Error::NotFound("jwt template"));
        }
        self.changed().await?;
        Ok(json!({"object": "jwt_template", "id": id, "deleted": true}))
    }

    /// The compiled template named `name` (cached until a change).
    pub(crate) async fn compiled_template(&self, name: &str) -> Result<Arc<Compiled>> {
        if let Some(t) = self.templates.read().expect("not poisoned").get(name) {
            return Ok(t.clone());
        }
        let generation = self.generation.load(std::sync::atomic::Ordering::Relaxed);
        let row = self
            .db
            .row(sqlx::query("SELECT * FROM jwt_templates WHERE name = $1").bind(name.to_string()))
            .await?
            .ok_or(Error::NotFound("jwt template"))?;
        let claims = ClaimsTemplate::parse(&db::json(&row, "claims")).map_err(|e| Error::Internal(e.message))?;
        let signer = if db::flag(&row, "custom_signing_key") {
            let key = self.sealer.open(&db::string(&row, "signing_key"))?;
            let (alg, key) = encoding_key(&db::string(&row, "signing_algorithm"), &key)?;
            Signer::Custom { alg, key }
        } else {
            Signer::Instance
        };
        let compiled = Arc::new(Compiled {
            claims,
            lifetime: db::int(&row, "lifetime").unwrap_or(60),
            skew: db::int(&row, "allowed_clock_skew").unwrap_or(5),
            signer,
        });
        // A write between the read and now would have cleared the cache: do not refill it.
        if self.generation.load(std::sync::atomic::Ordering::Relaxed) == generation {
            self.templates.write().expect("not poisoned").insert(name.to_string(), compiled.clone());
        }
        Ok(compiled)
    }
}
