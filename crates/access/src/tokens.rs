//! Static tokens (spec `analytics-api.md` §4.1, §9): `p.`, base64url(`{"u","id","host"}`), `.`,
//! then 32 random bytes in base64url. Only the SHA-256 digest of a token finds it; the string itself
//! is kept sealed (ChaCha20-Poly1305 with the server's secret key) so the Tokens API can show it
//! to admins. The workspace's `admin token` lives here too: refreshing it changes the JWT key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::grant::{Credential, Grant};
use crate::scope::Scope;
use crate::{Error, Result};

/// The name of the workspace's admin token.
pub const ADMIN_TOKEN_NAME: &str = "admin token";
/// Tokens a workspace may hold (spec §9.2).
pub const MAX_TOKENS: usize = 100_000;

/// Where a token came from (`origin.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// Created through the API or the CLI.
    #[serde(rename = "C")]
    Custom,
    /// A `.pipe` `TOKEN` line.
    #[serde(rename = "P")]
    Pipe,
    /// A `.datasource` `TOKEN` line.
    #[serde(rename = "DS")]
    Datasource,
}

impl Origin {
    /// From the API's `origin` argument.
    pub fn parse(s: &str) -> Option<Origin> {
        match s {
            "C" => Some(Origin::Custom),
            "P" => Some(Origin::Pipe),
            "DS" => Some(Origin::Datasource),
            _ => None,
        }
    }

    /// The API's letter.
    pub fn letter(self) -> &'static str {
        match self {
            Origin::Custom => "C",
            Origin::Pipe => "P",
            Origin::Datasource => "DS",
        }
    }
}

/// A stored token, without its string.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    /// Id (a UUID).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Scopes in their string form.
    pub scopes: Vec<String>,
    /// Origin.
    pub origin: Origin,
    /// The resource of a `P`/`DS` token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// Hex SHA-256 of the token string.
    digest: String,
    /// base64(nonce ‖ ciphertext) of the token string.
    sealed: String,
}

impl Token {
    /// The parsed scopes (stored scopes were validated when written).
    pub fn parsed_scopes(&self) -> Vec<Scope> {
        self.scopes.iter().filter_map(|s| Scope::parse(s).ok()).collect()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    /// Digest of the admin token the operator configured; a different one at start resets it.
    admin_seed: String,
    tokens: Vec<Token>,
}

#[derive(Debug)]
struct State {
    saved: Saved,
    by_digest: HashMap<[u8; 32], usize>,
    admin: String,
}

/// The workspace's static tokens, persisted in one file.
pub struct TokenStore {
    path: PathBuf,
    cipher: ChaCha20Poly1305,
    workspace_id: String,
    state: RwLock<State>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore").field("path", &self.path).finish_non_exhaustive()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

impl TokenStore {
    /// Opens (or creates) the store in `dir`. `admin_token` is the configured admin token: it
    /// becomes the `admin token` on first start and whenever the configuration changes it; a
    /// token refreshed through the API is kept across restarts otherwise. `secret_key` seals
    /// the stored strings (any length; hashed to a key).
    pub fn open(dir: &Path, workspace_id: &str, admin_token: &str, secret_key: &[u8]) -> Result<TokenStore> {
        let path = dir.join("tokens.json");
        let saved: Saved = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::Io { path: path.clone(), source: std::io::Error::other(e) })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
            Err(e) => return Err(io(&path)(e)),
        };
        let key: [u8; 32] = Sha256::digest(secret_key).into();
        let store = TokenStore {
            path,
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
            workspace_id: workspace_id.to_string(),
            state: RwLock::new(State { saved, by_digest: HashMap::new(), admin: String::new() }),
        };
        {
            let mut st = store.write();
            let seed = hex(&digest(admin_token));
            let admin_at = st.saved.tokens.iter().position(|t| t.name == ADMIN_TOKEN_NAME);
            match admin_at {
                Some(i) if st.saved.admin_seed == seed => {
                    st.admin = store.unseal(&st.saved.tokens[i])?;
                }
                Some(i) => {
                    let t = &mut st.saved.tokens[i];
                    t.digest = hex(&digest(admin_token));
                    t.sealed = store.seal(admin_token);
                    st.admin = admin_token.to_string();
                }
                None => {
                    let t =
                        store.new_token(ADMIN_TOKEN_NAME, "", vec!["ADMIN".into()], Origin::Custom, None, admin_token);
                    st.saved.tokens.insert(0, t);
                    st.admin = admin_token.to_string();
                }
            }
            st.saved.admin_seed = seed;
            reindex(&mut st);
            store.save(&st)?;
        }
        Ok(store)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The whole store as JSON (sealed strings and digests only), to share with other nodes.
    pub fn export(&self) -> String {
        serde_json::to_string(&self.read().saved).unwrap_or_default()
    }

    /// Replaces the whole store by an [`export`](TokenStore::export) of another node's (which
    /// must seal with the same key). Returns whether the admin token changed.
    pub fn import(&self, json: &str) -> Result<bool> {
        let saved: Saved = serde_json::from_str(json)
            .map_err(|e| Error::Io { path: self.path.clone(), source: std::io::Error::other(e) })?;
        let admin = match saved.tokens.iter().find(|t| t.name == ADMIN_TOKEN_NAME) {
            Some(t) => self.unseal(t)?,
            None => return Err(Error::Invalid("the shared tokens have no admin token".into())),
        };
        let mut st = self.write();
        let changed = st.admin != admin;
        st.saved = saved;
        st.admin = admin;
        reindex(&mut st);
        self.save(&st)?;
        Ok(changed)
    }

    /// The current admin token (the JWT signing key).
    pub fn admin_token(&self) -> String {
        self.read().admin.clone()
    }

    /// The grant of a static token string, if it is one of ours.
    pub fn authenticate(&self, token: &str) -> Option<std::sync::Arc<Grant>> {
        let st = self.read();
        let t = &st.saved.tokens[*st.by_digest.get(&digest(token))?];
        Some(std::sync::Arc::new(Grant {
            credential: Credential::Static { id: t.id.clone(), name: t.name.clone() },
            scopes: t.parsed_scopes(),
            rps: None,
        }))
    }

    /// Every token, in creation order.
    pub fn list(&self) -> Vec<Token> {
        self.read().saved.tokens.clone()
    }

    /// The token called `name_or_id`.
    pub fn get(&self, name_or_id: &str) -> Option<Token> {
        self.read().saved.tokens.iter().find(|t| t.name == name_or_id || t.id == name_or_id).cloned()
    }

    /// The string of a stored token.
    pub fn reveal(&self, token: &Token) -> Result<String> {
        self.unseal(token)
    }

    /// Creates a token; the name must be new.
    pub fn create(
        &self,
        name: &str,
        description: &str,
        scopes: &[String],
        origin: Origin,
        resource_id: Option<String>,
    ) -> Result<Token> {
        let scopes = validate(name, scopes)?;
        let mut st = self.write();
        if st.saved.tokens.iter().any(|t| t.name == name) {
            return Err(Error::Invalid(format!("Token with name \"{name}\" already exists")));
        }
        if st.saved.tokens.len() >= MAX_TOKENS {
            return Err(Error::Invalid(format!(
                "The workspace already has {MAX_TOKENS} tokens; use JWTs if you need more"
            )));
        }
        let secret = self.fresh_string();
        let t = self.new_token(name, description, scopes, origin, resource_id, &secret);
        st.saved.tokens.push(t.clone());
        reindex(&mut st);
        self.save(&st)?;
        Ok(t)
    }

    /// Changes a token's name, description or (replacing them all) scopes.
    pub fn update(
        &self,
        name_or_id: &str,
        name: Option<&str>,
        description: Option<&str>,
        scopes: Option<&[String]>,
    ) -> Result<Token> {
        let mut st = self.write();
        let i = position(&st, name_or_id)?;
        let current = st.saved.tokens[i].name.clone();
        if current == ADMIN_TOKEN_NAME && (scopes.is_some() || name.is_some_and(|n| n != current)) {
            return Err(Error::Invalid("The admin token's name and scopes cannot be changed".into()));
        }
        if let Some(n) = name.filter(|n| *n != current) {
            if n.trim().is_empty() {
                return Err(Error::Invalid("Token name cannot be empty".into()));
            }
            if st.saved.tokens.iter().any(|t| t.name == n) {
                return Err(Error::Invalid(format!("Token with name \"{n}\" already exists")));
            }
            st.saved.tokens[i].name = n.to_string();
        }
        if let Some(d) = description {
            st.saved.tokens[i].description = d.to_string();
        }
        if let Some(s) = scopes {
            st.saved.tokens[i].scopes = validate(&current, s)?;
        }
        let t = st.saved.tokens[i].clone();
        self.save(&st)?;
        Ok(t)
    }

    /// Adds scopes a token lacks (datafile `TOKEN` lines extend tokens); creates it if missing.
    pub fn grant(&self, name: &str, scopes: &[String], origin: Origin, resource_id: Option<String>) -> Result<Token> {
        let Some(existing) = self.get(name) else {
            return self.create(name, "", scopes, origin, resource_id);
        };
        let mut all = existing.scopes.clone();
        for s in scopes {
            if !all.contains(s) {
                all.push(s.clone());
            }
        }
        self.update(&existing.id, None, None, Some(&all))
    }

    /// Deletes a token (not the admin token).
    pub fn delete(&self, name_or_id: &str) -> Result<()> {
        let mut st = self.write();
        let i = position(&st, name_or_id)?;
        if st.saved.tokens[i].name == ADMIN_TOKEN_NAME {
            return Err(Error::Invalid("The admin token cannot be deleted".into()));
        }
        st.saved.tokens.remove(i);
        reindex(&mut st);
        self.save(&st)
    }

    /// Gives a token a new string (same id); the old one stops working at once. For the admin
    /// token this also invalidates every JWT.
    pub fn refresh(&self, name_or_id: &str) -> Result<Token> {
        let mut st = self.write();
        let i = position(&st, name_or_id)?;
        let secret = self.fresh_string();
        let t = &mut st.saved.tokens[i];
        t.digest = hex(&digest(&secret));
        t.sealed = self.seal(&secret);
        let t = t.clone();
        if t.name == ADMIN_TOKEN_NAME {
            st.admin = secret;
        }
        reindex(&mut st);
        self.save(&st)?;
        Ok(t)
    }

    fn new_token(
        &self,
        name: &str,
        description: &str,
        scopes: Vec<String>,
        origin: Origin,
        resource_id: Option<String>,
        secret: &str,
    ) -> Token {
        Token {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            description: description.to_string(),
            scopes,
            origin,
            resource_id,
            digest: hex(&digest(secret)),
            sealed: self.seal(secret),
        }
    }

    /// A new token string.
    fn fresh_string(&self) -> String {
        let mut random = [0u8; 32];
        rand::rng().fill_bytes(&mut random);
        let info =
            serde_json::json!({"u": self.workspace_id, "id": uuid::Uuid::new_v4().to_string(), "host": "aviary"});
        format!("p.{}.{}", URL_SAFE_NO_PAD.encode(info.to_string()), URL_SAFE_NO_PAD.encode(random))
    }

    fn seal(&self, secret: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption with a valid key and nonce only fails on absurd lengths.
        let sealed = self.cipher.encrypt(Nonce::from_slice(&nonce), secret.as_bytes()).unwrap_or_default();
        STANDARD.encode([nonce.as_slice(), &sealed].concat())
    }

    fn unseal(&self, token: &Token) -> Result<String> {
        let broken = || {
            Error::Invalid(format!("the stored string of token \"{}\" cannot be read with this secret key", token.name))
        };
        let bytes = STANDARD.decode(&token.sealed).map_err(|_| broken())?;
        if bytes.len() < 12 {
            return Err(broken());
        }
        let plain = self.cipher.decrypt(Nonce::from_slice(&bytes[..12]), &bytes[12..]).map_err(|_| broken())?;
        String::from_utf8(plain).map_err(|_| broken())
    }

    fn save(&self, st: &State) -> Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&st.saved).map_err(|e| io(&self.path)(std::io::Error::other(e)))?;
        std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io(&self.path))
    }
}

fn position(st: &State, name_or_id: &str) -> Result<usize> {
    st.saved
        .tokens
        .iter()
        .position(|t| t.name == name_or_id || t.id == name_or_id)
        .ok_or_else(|| Error::NotFound(name_or_id.to_string()))
}

fn reindex(st: &mut State) {
    st.by_digest = st.saved.tokens.iter().enumerate().filter_map(|(i, t)| Some((unhex(&t.digest)?, i))).collect();
}

/// Checks a token's name and scope strings; `ADMIN:<email>` cannot be created.
fn validate(name: &str, scopes: &[String]) -> Result<Vec<String>> {
    if name.trim().is_empty() {
        return Err(Error::Invalid("name is mandatory".into()));
    }
    if scopes.is_empty() {
        return Err(Error::Invalid("scope is mandatory".into()));
    }
    let mut out = Vec::with_capacity(scopes.len());
    for s in scopes {
        let parsed = Scope::parse(s)?;
        if matches!(parsed, Scope::AdminUser(_)) {
            return Err(Error::Invalid(format!("Scope {s} cannot be created through the API")));
        }
        let text = parsed.text();
        if !out.contains(&text) {
            out.push(text);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("aviary-tokens-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn tokens_are_found_by_digest_and_survive_a_restart() {
        let d = dir("restart");
        let store = TokenStore::open(&d, "ws", "p.admin", b"key").unwrap();
        let t = store.create("reader", "", &["PIPES:READ:top_pages".into()], Origin::Custom, None).unwrap();
        let secret = store.reveal(&t).unwrap();
        assert!(secret.starts_with("p.") && secret.len() > 60, "{secret}");
        let text = std::fs::read_to_string(d.join("tokens.json")).unwrap();
        assert!(!text.contains(&secret) && !text.contains("p.admin"), "no token string in the file");
        drop(store);
        let store = TokenStore::open(&d, "ws", "p.admin", b"key").unwrap();
        let g = store.authenticate(&secret).unwrap();
        assert_eq!(g.token_name(), "reader");
        assert!(store.authenticate("p.admin").unwrap().is_admin());
        assert!(store.authenticate("p.nope").is_none());
        assert!(matches!(
            store.create("reader", "", &["ADMIN".into()], Origin::Custom, None),
            Err(Error::Invalid(m)) if m == "Token with name \"reader\" already exists"
        ));
    }

    #[test]
    fn refresh_replaces_the_string_and_a_refreshed_admin_token_persists() {
        let d = dir("refresh");
        let store = TokenStore::open(&d, "ws", "p.admin", b"key").unwrap();
        let t = store.create("r", "", &["TOKENS".into()], Origin::Custom, None).unwrap();
        let old = store.reveal(&t).unwrap();
        let new = store.reveal(&store.refresh("r").unwrap()).unwrap();
        assert_ne!(old, new);
        assert!(store.authenticate(&old).is_none());
        assert!(store.authenticate(&new).is_some());
        store.refresh(ADMIN_TOKEN_NAME).unwrap();
        let admin = store.admin_token();
        assert_ne!(admin, "p.admin");
        assert!(store.authenticate("p.admin").is_none());
        drop(store);
        // Same configuration: the refreshed token stays.
        let store = TokenStore::open(&d, "ws", "p.admin", b"key").unwrap();
        assert_eq!(store.admin_token(), admin);
        drop(store);
        // A new configured token wins.
        let store = TokenStore::open(&d, "ws", "p.changed", b"key").unwrap();
        assert_eq!(store.admin_token(), "p.changed");
        assert!(store.delete(ADMIN_TOKEN_NAME).is_err());
    }

    #[test]
    fn datafile_lines_extend_tokens() {
        let d = dir("grant");
        let store = TokenStore::open(&d, "ws", "p.admin", b"key").unwrap();
        store.grant("dash", &["PIPES:READ:a".into()], Origin::Pipe, Some("a".into())).unwrap();
        let t = store.grant("dash", &["PIPES:READ:b".into()], Origin::Pipe, Some("b".into())).unwrap();
        assert_eq!(t.scopes, ["PIPES:READ:a", "PIPES:READ:b"]);
    }
}
