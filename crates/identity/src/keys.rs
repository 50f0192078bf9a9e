//! The instance's RS256 signing keys: generated at first start (RSA-2048, because
//! `@clerk/backend`'s networkless `jwtKey` path only understands 2048-bit SPKI keys), stored
//! sealed, published as a JWKS. Rotation publishes the new key ten minutes before it signs
//! anything, and keeps a retired key published until the last token it signed has expired.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

use crate::db::{self, Db};
use crate::error::{Error, Result};
use crate::ids::now_ms;
use crate::seal::Sealer;

/// How long before it signs a new key is published (the SDK caches a JWKS for 5 minutes).
pub const PUBLISH_AHEAD_MS: i64 = 10 * 60 * 1000;

/// One RS256 key pair.
pub struct SigningKey {
    /// Key id (`ins_…`, then `ins_…_2`, …).
    pub kid: String,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    n: String,
    e: String,
    /// The public key as SPKI PEM (for `@clerk/backend`'s `jwtKey`).
    pub public_pem: String,
    signs_from: i64,
    retired_at: Option<i64>,
    /// Latest `exp` (Unix seconds) of a token this key signed.
    max_exp: AtomicI64,
    /// `max_exp` as stored.
    stored_max_exp: AtomicI64,
}

impl SigningKey {
    fn public_jwk(&self) -> Value {
        json!({"use": "sig", "kty": "RSA", "kid": self.kid, "alg": "RS256", "n": self.n, "e": self.e})
    }

    /// Records that a token expiring at `exp` was signed; `true` when the stored value should
    /// be raised (it lags by at most a minute, so a retired key is never dropped early by more).
    pub(crate) fn signed_until(&self, exp: i64) -> bool {
        self.max_exp.fetch_max(exp, Ordering::Relaxed);
        exp > self.stored_max_exp.load(Ordering::Relaxed) + 60
    }
}

/// The keys known to the instance, newest last.
pub struct KeyRing {
    keys: Vec<Arc<SigningKey>>,
}

impl KeyRing {
    /// The key that signs now: the newest one whose publication lead time has passed.
    pub fn current(&self) -> Arc<SigningKey> {
        let now = now_ms();
        self.keys.iter().rev().find(|k| k.signs_from <= now).or(self.keys.first()).cloned().expect("one key at least")
    }

    /// The key with `kid`.
    pub fn get(&self, kid: &str) -> Option<Arc<SigningKey>> {
        self.keys.iter().find(|k| k.kid == kid).cloned()
    }

    /// `{"keys": [...]}`: every key that signs, will sign, or signed a token not yet expired.
    pub fn jwks(&self) -> Value {
        let now = now_ms();
        let keys: Vec<Value> = self
            .keys
            .iter()
            .filter(|k| k.retired_at.is_none_or(|r| r > now) || k.max_exp.load(Ordering::Relaxed) * 1000 > now)
            .map(|k| k.public_jwk())
            .collect();
        json!({ "keys": keys })
    }

    /// Loads the keys, creating the first one when there is none.
    pub async fn load(db: &Db, sealer: &Sealer, instance_id: &str) -> Result<KeyRing> {
        let mut rows = db.rows(sqlx::query("SELECT * FROM signing_keys ORDER BY signs_from, created_at")).await?;
        if rows.is_empty() {
            create(db, sealer, instance_id.to_string(), now_ms()).await?;
            rows = db.rows(sqlx::query("SELECT * FROM signing_keys ORDER BY signs_from, created_at")).await?;
        }
        let mut keys = Vec::new();
        for row in rows {
            let private = sealer.open(&db::string(&row, "private_key"))?;
            let key = rsa::RsaPrivateKey::from_pkcs1_pem(&private)
                .map_err(|e| Error::Internal(format!("stored signing key: {e}")))?;
            keys.push(Arc::new(signing_key(
                db::string(&row, "kid"),
                &key,
                db::int(&row, "signs_from").unwrap_or(0),
                db::int(&row, "retired_at"),
                db::int(&row, "max_exp").unwrap_or(0),
            )?));
        }
        Ok(KeyRing { keys })
    }
}

/// Generates a key that signs from `signs_from` (ms) and stores it; returns its id.
async fn create(db: &Db, sealer: &Sealer, kid: String, signs_from: i64) -> Result<String> {
    let key = tokio::task::spawn_blocking(|| rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::Internal(format!("generating a signing key: {e}")))?;
    let pem = key.to_pkcs1_pem(LineEnding::LF).map_err(|e| Error::Internal(e.to_string()))?;
    let public = key.to_public_key();
    db.exec(
        sqlx::query(
            "INSERT INTO signing_keys (kid, private_key, public_n, public_e, created_at, signs_from, retired_at, max_exp) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, 0)",
        )
        .bind(kid.clone())
        .bind(sealer.seal(&pem))
        .bind(URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()))
        .bind(URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()))
        .bind(now_ms())
        .bind(signs_from),
    )
    .await?;
    tracing::info!(kid, "signing key created");
    Ok(kid)
}

/// Starts a rotation: a new key, published now, signing in ten minutes; the current key is
/// retired when the new one starts signing. Returns the new key's id.
pub async fn rotate(db: &Db, sealer: &Sealer, instance_id: &str) -> Result<String> {
    let n = db.count(sqlx::query("SELECT COUNT(*) FROM signing_keys")).await?;
    let starts = now_ms() + PUBLISH_AHEAD_MS;
    db.exec(sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL").bind(starts)).await?;
    create(db, sealer, format!("{instance_id}_{}", n + 1), starts).await
}

/// Raises the stored `max_exp` of `kid`.
pub(crate) async fn store_max_exp(db: &Db, key: &SigningKey) -> Result<()> {
    let exp = key.max_exp.load(Ordering::Relaxed);
    key.stored_max_exp.fetch_max(exp, Ordering::Relaxed);
    db.exec(
        sqlx::query("UPDATE signing_keys SET max_exp = $1 WHERE kid = $2 AND max_exp < $1")
            .bind(exp)
            .bind(key.kid.clone()),
    )
    .await?;
    Ok(())
}

fn signing_key(
    kid: String,
    key: &rsa::RsaPrivateKey,
    signs_from: i64,
    retired_at: Option<i64>,
    max_exp: i64,
) -> Result<SigningKey> {
    let pem = key.to_pkcs1_pem(LineEnding::LF).map_err(|e| Error::Internal(e.to_string()))?;
    let public = key.to_public_key();
    let n = URL_SAFE_NO_PAD.encode(public.n().to_bytes_be());
    let e = URL_SAFE_NO_PAD.encode(public.e().to_bytes_be());
    Ok(SigningKey {
        kid,
        encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| Error::Internal(e.to_string()))?,
        decoding: DecodingKey::from_rsa_components(&n, &e).map_err(|e| Error::Internal(e.to_string()))?,
        public_pem: public.to_public_key_pem(LineEnding::LF).map_err(|e| Error::Internal(e.to_string()))?,
        n,
        e,
        signs_from,
        retired_at,
        max_exp: AtomicI64::new(max_exp),
        stored_max_exp: AtomicI64::new(max_exp),
    })
}
