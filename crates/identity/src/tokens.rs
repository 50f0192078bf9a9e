//! Minting: session tokens (RS256, 60 s, Clerk's v1 claims) and JWT template tokens, from a
//! per-session view of user, organization and membership cached until the next change, so a
//! mint is a render and a signature; and verifying session tokens against the key ring.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::claims::Context;
use crate::error::{Error, Result};
use crate::ids::{now_ms, random_hex};
use crate::input::{Body, secs};
use crate::sessions::Session;
use crate::templates::Signer;
use crate::{CACHE_TTL, Identity};

/// `cat` header of session tokens.
pub const SESSION_CATEGORY: &str = "cl_B7d4PD111AAA";
/// `cat` header of JWT template tokens.
pub const TEMPLATE_CATEGORY: &str = "cl_B7d4PD222AAA";
/// Session tokens live 60 seconds.
pub const SESSION_TOKEN_LIFETIME: i64 = 60;

/// What a mint needs about a session, gathered once.
pub(crate) struct MintContext {
    session: Session,
    user: Value,
    org: Option<Value>,
    membership: Option<Value>,
    session_codes: Value,
    /// `(id, slug, role, custom permissions)` of the active organization.
    org_claims: Option<(String, String, String, Vec<String>)>,
    built: Instant,
    generation: u64,
    /// When activity was last written (ms).
    touched: std::sync::atomic::AtomicI64,
}

/// `org`, `org_membership` and the session token's org claims, when the user is a member.
type OrgShortcodes = (Option<Value>, Option<Value>, Option<(String, String, String, Vec<String>)>);

/// The claims of an Aviary session token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionClaims {
    /// Origin the token is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Minutes since first- and second-factor verification (`-1`: never).
    pub fva: [i64; 2],
    /// Issued at.
    pub iat: i64,
    /// Issuer.
    pub iss: String,
    /// Not before.
    pub nbf: i64,
    /// Session id.
    pub sid: String,
    /// User id.
    pub sub: String,
    /// Active organization id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// Active organization slug.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_slug: Option<String>,
    /// Role key in the active organization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_role: Option<String>,
    /// Custom permission keys in the active organization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_permissions: Option<Vec<String>>,
}

/// `header.payload.signature`.
fn sign(header: &Value, payload: &impl Serialize, key: &EncodingKey, alg: Algorithm) -> Result<String> {
    let head = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).map_err(|e| Error::Internal(e.to_string()))?);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).map_err(|e| Error::Internal(e.to_string()))?);
    let message = format!("{head}.{body}");
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(format!("{message}.{signature}"))
}

impl Identity {
    /// The mint view of an active session (cached; rebuilt after any change or `CACHE_TTL`).
    pub(crate) async fn mint_context(&self, sid: &str) -> Result<Arc<MintContext>> {
        let generation = self.generation.load(Ordering::Relaxed);
        if let Some(c) = self.contexts.read().expect("not poisoned").get(sid)
            && c.generation == generation
            && c.built.elapsed() < CACHE_TTL
        {
            if c.session.status_now() != "active" {
                return Err(Error::NotFound("session"));
            }
            return Ok(c.clone());
        }
        let session = self.active_session(sid).await?;
        let user = self.load_user(&session.user_id).await?;
        if user.banned {
            return Err(Error::NotFound("session"));
        }
        let orgs = self.user_org_roles(&user.id).await?;
        let (org, membership, org_claims) = match &session.active_org_id {
            Some(org_id) => self.org_shortcodes(org_id, &user.id).await?,
            None => (None, None, None),
        };
        let context = Arc::new(MintContext {
            user: self.user_shortcodes(&user, Value::Object(orgs)),
            org,
            membership,
            session_codes: json!({"id": session.id, "actor": null, "reverification_id": null}),
            org_claims,
            touched: std::sync::atomic::AtomicI64::new(session.last_active_at),
            session,
            built: Instant::now(),
            generation,
        });
        if self.generation.load(Ordering::Relaxed) == generation {
            self.contexts.write().expect("not poisoned").insert(sid.to_string(), context.clone());
        }
        Ok(context)
    }

    /// The `org` and `org_membership` shortcode objects of `user_id` in `org_id`, and the
    /// session-token org claims `(id, slug, role, custom permissions)`; all `None` when the
    /// user is not a member.
    async fn org_shortcodes(&self, org_id: &str, user_id: &str) -> Result<OrgShortcodes> {
        let Some(m) = self.membership_of(org_id, user_id).await? else { return Ok((None, None, None)) };
        let o = self.load_org(org_id).await?;
        let roles = self.roles_by_key().await?;
        let custom = roles.get(&m.role).map(|r| r.permission_keys(false)).unwrap_or_default();
        let org = json!({
            "id": o.id,
            "name": o.name,
            "slug": o.slug,
            "role": m.role,
            "image_url": o.image_url.clone().unwrap_or_else(|| self.default_image("org", &o.id)),
            "public_metadata": o.public_metadata,
        });
        let membership = json!({"public_metadata": m.public_metadata, "permissions": custom});
        Ok((Some(org), Some(membership), Some((o.id, o.slug, m.role, custom))))
    }

    /// Records activity on the session at most once a minute per node.
    async fn touch(&self, c: &MintContext) -> Result<()> {
        let now = now_ms();
        let last = c.touched.load(Ordering::Relaxed);
        if now - last > 60_000 && c.touched.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.touch_session(&c.session.id).await?;
        }
        Ok(())
    }

    /// `POST /v1/sessions/{sid}/tokens[/{template}]` with the optional body
    /// `{"expires_in_seconds": n}`: `{"object": "token", "jwt": …}`.
    pub async fn mint(&self, sid: &str, template: Option<&str>, body: &Value) -> Result<Value> {
        let expires_in = Body::of(body)?.int_in("expires_in_seconds", 30..=315_360_000)?;
        let jwt = match template {
            Some(name) => self.template_token(sid, name, expires_in, None).await?,
            None => self.session_token(sid, expires_in).await?,
        };
        Ok(json!({"object": "token", "jwt": jwt}))
    }

    /// A session token for an active session (RS256, `kid` of the signing key).
    pub async fn session_token(&self, sid: &str, expires_in: Option<i64>) -> Result<String> {
        let c = self.mint_context(sid).await?;
        self.touch(&c).await?;
        let iat = secs(now_ms());
        let first_factor = (iat - secs(c.session.created_at)) / 60;
        let claims = SessionClaims {
            azp: Some(self.opts.app_origin.clone()),
            exp: iat + expires_in.unwrap_or(SESSION_TOKEN_LIFETIME),
            fva: [first_factor.max(0), -1],
            iat,
            iss: self.opts.issuer.clone(),
            nbf: iat - 10,
            sid: c.session.id.clone(),
            sub: c.session.user_id.clone(),
            org_id: c.org_claims.as_ref().map(|o| o.0.clone()),
            org_slug: c.org_claims.as_ref().map(|o| o.1.clone()),
            org_role: c.org_claims.as_ref().map(|o| o.2.clone()),
            org_permissions: c.org_claims.as_ref().map(|o| o.3.clone()),
        };
        self.sign_instance(&claims, claims.exp, SESSION_CATEGORY).await
    }

    async fn sign_instance(&self, payload: &impl Serialize, exp: i64, category: &str) -> Result<String> {
        let key = self.key_ring().current();
        let header = json!({"alg": "RS256", "cat": category, "kid": key.kid, "typ": "JWT"});
        let jwt = sign(&header, payload, &key.encoding, Algorithm::RS256)?;
        if key.signed_until(exp) {
            crate::keys::store_max_exp(&self.db, &key).await?;
        }
        Ok(jwt)
    }

    /// A token from the template named `name` for the session's user and active organization.
    /// `azp` is set when the request came from a page of the app.
    pub async fn template_token(
        &self,
        sid: &str,
        name: &str,
        expires_in: Option<i64>,
        azp: Option<&str>,
    ) -> Result<String> {
        let c = self.mint_context(sid).await?;
        let t = self.compiled_template(name).await?;
        self.touch(&c).await?;
        let mut claims = self.render(&t.claims, &c);
        let iat = secs(now_ms());
        let exp = iat + expires_in.unwrap_or(t.lifetime);
        if let Some(azp) = azp {
            claims.insert("azp".into(), json!(azp));
        }
        claims.insert("exp".into(), json!(exp));
        claims.insert("iat".into(), json!(iat));
        claims.insert("iss".into(), json!(self.opts.issuer));
        claims.insert("jti".into(), json!(random_hex(10)));
        claims.insert("nbf".into(), json!(iat - t.skew));
        claims.insert("sub".into(), json!(c.session.user_id));
        match &t.signer {
            Signer::Instance => self.sign_instance(&claims, exp, TEMPLATE_CATEGORY).await,
            Signer::Custom { alg, key } => {
                let header = json!({"alg": alg_name(*alg), "cat": TEMPLATE_CATEGORY, "typ": "JWT"});
                sign(&header, &claims, key, *alg)
            }
        }
    }

    fn render(&self, t: &crate::claims::ClaimsTemplate, c: &MintContext) -> Map<String, Value> {
        t.render(&Context {
            user: &c.user,
            org: c.org.as_ref(),
            org_membership: c.membership.as_ref(),
            session: &c.session_codes,
        })
    }

    /// The claims `claims` (a template's claims object) would render to for `user_id` with
    /// `org_id` active — the admin page's preview. Validation errors as on save.
    pub async fn preview_claims(&self, claims: &Value, user_id: &str, org_id: Option<&str>) -> Result<Value> {
        let t = crate::claims::ClaimsTemplate::parse(claims)?;
        let user = self.load_user(user_id).await?;
        let orgs = self.user_org_roles(&user.id).await?;
        let (org, membership, _) = match org_id {
            Some(o) => self.org_shortcodes(&self.load_org(o).await?.id, &user.id).await?,
            None => (None, None, None),
        };
        let user_codes = self.user_shortcodes(&user, Value::Object(orgs));
        let session = json!({"id": null, "actor": null, "reverification_id": null});
        Ok(Value::Object(t.render(&Context {
            user: &user_codes,
            org: org.as_ref(),
            org_membership: membership.as_ref(),
            session: &session,
        })))
    }

    /// Verifies a session token: RS256 with a key of the ring, `cat` of a session token,
    /// `exp`/`nbf` with 5 s of leeway, the issuer, and the session still active.
    pub async fn verify_session_token(&self, token: &str) -> Result<SessionClaims> {
        let claims = self.verify_session_signature(token)?;
        self.mint_context(&claims.sid).await.map_err(|_| Error::NotFound("session"))?;
        Ok(claims)
    }

    /// The signature and time checks of [`Identity::verify_session_token`], without the
    /// session lookup (what a verifier without the database can check).
    pub fn verify_session_signature(&self, token: &str) -> Result<SessionClaims> {
        let invalid = || Error::NotFound("session token");
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        if header.alg != Algorithm::RS256 {
            return Err(invalid());
        }
        let head: Value = token
            .split('.')
            .next()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(invalid)?;
        if head["cat"] != SESSION_CATEGORY {
            return Err(invalid());
        }
        let key = header.kid.as_deref().and_then(|k| self.key_ring().get(k)).ok_or_else(invalid)?;
        let mut v = Validation::new(Algorithm::RS256);
        v.leeway = 5;
        v.validate_nbf = true;
        v.set_issuer(&[&self.opts.issuer]);
        v.set_required_spec_claims(&["exp", "nbf", "iat", "sub", "iss"]);
        v.validate_aud = false;
        let data = jsonwebtoken::decode::<SessionClaims>(token, &key.decoding, &v).map_err(|_| invalid())?;
        Ok(data.claims)
    }
}

fn alg_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
    }
}
