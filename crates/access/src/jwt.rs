//! JWTs (spec `analytics-api.md` §5): HS256 with the workspace admin token as the key, verified
//! in the spec's order so each failure gets its own message, and minted for `POST /v0/tokens`.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value as Json};

use crate::AuthError;
use crate::grant::{Credential, Grant};
use crate::scope::Scope;

/// Clock skew allowed on `nbf` and `iat` (none on `exp`), in seconds.
pub const LEEWAY_SECS: i64 = 5;

/// Verified tokens remembered at most; past it the memory is emptied and refilled.
const CACHE_ENTRIES: usize = 65_536;

/// Verifies and mints the JWTs of one workspace. Verified tokens are remembered until their
/// `exp` (spec §5.2 allows it), so a browser's repeated requests skip decoding and the HMAC;
/// new keys (an admin token refresh) start with an empty memory.
pub struct JwtKeys {
    workspace_id: String,
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
    /// Longest lifetime accepted (`exp - now`), when limited.
    max_lifetime_secs: Option<i64>,
    verified: std::sync::RwLock<std::collections::HashMap<String, Arc<Grant>>>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys").field("workspace_id", &self.workspace_id).finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Keys for `workspace_id`, signed with its admin token.
    pub fn new(workspace_id: &str, admin_token: &str, max_lifetime_secs: Option<i64>) -> JwtKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        // Claims are checked below, in the spec's order and with its messages.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        JwtKeys {
            workspace_id: workspace_id.to_string(),
            decoding: DecodingKey::from_secret(admin_token.as_bytes()),
            encoding: EncodingKey::from_secret(admin_token.as_bytes()),
            validation,
            max_lifetime_secs,
            verified: Default::default(),
        }
    }

    /// Verifies `token` at `now` (Unix seconds) and builds its grant, or finds it verified.
    pub fn verify(&self, token: &str, now: i64) -> Result<Arc<Grant>, AuthError> {
        let known = self.verified.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(token).cloned();
        if let Some(grant) = known {
            return match grant.credential {
                Credential::Jwt { exp, .. } if exp <= now => Err(AuthError::Expired),
                _ => Ok(grant),
            };
        }
        let grant = Arc::new(self.verify_uncached(token, now)?);
        let mut cache = self.verified.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= CACHE_ENTRIES {
            cache.retain(|_, g| matches!(g.credential, Credential::Jwt { exp, .. } if exp > now));
            if cache.len() >= CACHE_ENTRIES / 2 {
                cache.clear();
            }
        }
        cache.insert(token.to_string(), grant.clone());
        Ok(grant)
    }

    /// Verifies `token` at `now` without the memory of verified tokens.
    pub fn verify_uncached(&self, token: &str, now: i64) -> Result<Grant, AuthError> {
        let mut parts = token.split('.');
        let (Some(header), Some(_), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(AuthError::NotEnoughSegments);
        };
        if parts.next().is_some() {
            return Err(AuthError::Malformed);
        }
        // `alg` is read by hand: `none` and unknown names must be refused as "not allowed",
        // not as undecodable.
        let header: Json = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(AuthError::Malformed)?;
        if header.get("alg").and_then(Json::as_str) != Some("HS256") {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let claims = match jsonwebtoken::decode::<Map<String, Json>>(token, &self.decoding, &self.validation) {
            Ok(data) => data.claims,
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature) => {
                // A token for another workspace fails the signature too; say which.
                let unverified = payload(token).ok_or(AuthError::Malformed)?;
                return Err(if self.same_workspace(&unverified) {
                    AuthError::BadSignature
                } else {
                    AuthError::InvalidWorkspace
                });
            }
            Err(_) => return Err(AuthError::Malformed),
        };
        if !self.same_workspace(&claims) {
            return Err(AuthError::InvalidWorkspace);
        }
        let exp = match claims.get("exp") {
            None | Some(Json::Null) => return Err(AuthError::MissingExpiry),
            Some(v) => seconds(v).ok_or(AuthError::InvalidPayload("exp"))?,
        };
        if exp <= now {
            return Err(AuthError::Expired);
        }
        if let Some(max) = self.max_lifetime_secs
            && exp - now > max
        {
            return Err(AuthError::TooLong);
        }
        for (claim, error) in [("nbf", AuthError::NotYetValid), ("iat", AuthError::IssuedInFuture)] {
            if let Some(v) = claims.get(claim).filter(|v| !v.is_null()) {
                let at = seconds(v).ok_or(AuthError::InvalidPayload(if claim == "nbf" { "nbf" } else { "iat" }))?;
                if at > now + LEEWAY_SECS {
                    return Err(error);
                }
            }
        }
        let name = claims.get("name").and_then(Json::as_str).ok_or(AuthError::InvalidPayload("name"))?;
        let scopes = claims.get("scopes").and_then(Json::as_array).ok_or(AuthError::InvalidPayload("scopes"))?;
        let scopes = scopes
            .iter()
            .map(|s| {
                Scope::from_jwt(s).map_err(|e| match e {
                    crate::Error::Auth(a) => a,
                    _ => AuthError::InvalidScope(String::new()),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rps = match claims.get("limits") {
            None | Some(Json::Null) => None,
            Some(Json::Object(l)) => match l.get("rps") {
                None | Some(Json::Null) => None,
                Some(v) => {
                    let rps = v.as_i64().ok_or(AuthError::InvalidPayload("limits"))?;
                    u32::try_from(rps).ok().filter(|r| *r > 0)
                }
            },
            Some(_) => return Err(AuthError::InvalidPayload("limits")),
        };
        Ok(Grant { credential: Credential::Jwt { name: name.to_string(), exp }, scopes, rps })
    }

    /// Signs `claims` (which should carry `workspace_id`, `name`, `exp` and `scopes`).
    pub fn sign(&self, claims: &Json) -> String {
        // Serialising a JSON value with an HMAC key cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding).unwrap_or_default()
    }

    /// The workspace these keys belong to.
    pub fn workspace_id(&self) -> &str {
        &self.workspace_id
    }

    fn same_workspace(&self, claims: &Map<String, Json>) -> bool {
        claims.get("workspace_id").and_then(Json::as_str) == Some(self.workspace_id.as_str())
    }
}

/// The payload of a JWT, unverified.
fn payload(token: &str) -> Option<Map<String, Json>> {
    let part = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// A NumericDate claim: an integer (or a float with no fraction, as some libraries write).
fn seconds(v: &Json) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && f.is_finite()).map(|f| f as i64))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const WS: &str = "5a0c4c1e-1111-2222-3333-444455556666";
    const NOW: i64 = 1_800_000_000;

    fn keys() -> JwtKeys {
        JwtKeys::new(WS, "p.admin", None)
    }

    fn claims() -> Json {
        json!({"workspace_id": WS, "name": "t", "exp": NOW + 60,
               "scopes": [{"type": "PIPES:READ", "resource": "top_pages", "fixed_params": {"org": "acme"}}],
               "limits": {"rps": 10}})
    }

    fn forged(header: &Json, payload: &Json, sig: &str) -> String {
        let enc = |v: &Json| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.{sig}", enc(header), enc(payload))
    }

    #[test]
    fn a_signed_token_grants_its_scopes() {
        let g = keys().verify_uncached(&keys().sign(&claims()), NOW).unwrap();
        assert_eq!(g.token_name(), "t");
        assert_eq!(g.rps, Some(10));
        assert_eq!(g.pipe_read("top_pages").unwrap()["org"], "acme");
        assert!(g.pipe_read("other").is_none());
        assert!(!g.is_admin());
    }

    #[test]
    fn every_failure_has_its_message() {
        let k = keys();
        let with = |f: &dyn Fn(&mut Json)| {
            let mut c = claims();
            f(&mut c);
            k.sign(&c)
        };
        let cases: Vec<(String, AuthError)> = vec![
            ("abc".into(), AuthError::NotEnoughSegments),
            ("a.b.c".into(), AuthError::Malformed),
            (forged(&json!({"alg": "none"}), &claims(), ""), AuthError::AlgorithmNotAllowed),
            (forged(&json!({"alg": "RS256", "typ": "JWT"}), &claims(), "x"), AuthError::AlgorithmNotAllowed),
            (forged(&json!({"alg": "HS512"}), &claims(), "x"), AuthError::AlgorithmNotAllowed),
            (JwtKeys::new(WS, "p.other", None).sign(&claims()), AuthError::BadSignature),
            (with(&|c| c["workspace_id"] = json!("other")), AuthError::InvalidWorkspace),
            (with(&|c| c["exp"] = json!(NOW)), AuthError::Expired),
            (with(&|c| drop(c.as_object_mut().unwrap().remove("exp"))), AuthError::MissingExpiry),
            (with(&|c| c["nbf"] = json!(NOW + 6)), AuthError::NotYetValid),
            (with(&|c| c["iat"] = json!(NOW + 60)), AuthError::IssuedInFuture),
            (with(&|c| c["name"] = json!(1)), AuthError::InvalidPayload("name")),
            (with(&|c| c["scopes"] = json!({})), AuthError::InvalidPayload("scopes")),
            (with(&|c| c["scopes"] = json!([{"type": "ADMIN"}])), AuthError::InvalidScope("ADMIN".into())),
        ];
        for (token, expected) in cases {
            assert_eq!(k.verify(&token, NOW).map(drop), Err(expected.clone()), "{expected}");
        }
        // Within the leeway, nbf and iat pass.
        assert!(k.verify(&with(&|c| c["nbf"] = json!(NOW + 5)), NOW).is_ok());
    }

    #[test]
    fn a_tampered_payload_fails_the_signature() {
        let token = keys().sign(&claims());
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut c = claims();
        c["scopes"][0]["fixed_params"]["org"] = json!("globex");
        parts[1] = URL_SAFE_NO_PAD.encode(c.to_string());
        assert_eq!(keys().verify(&parts.join("."), NOW).map(drop), Err(AuthError::BadSignature));
    }

    #[test]
    fn lifetime_can_be_capped() {
        let k = JwtKeys::new(WS, "p.admin", Some(30));
        assert_eq!(k.verify(&k.sign(&claims()), NOW).map(drop), Err(AuthError::TooLong));
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let k = keys();
        let token = k.sign(&claims());
        assert!(k.verify(&token, NOW).is_ok());
        assert!(k.verify(&token, NOW + 59).is_ok());
        assert_eq!(k.verify(&token, NOW + 60).map(drop), Err(AuthError::Expired));
    }
}
