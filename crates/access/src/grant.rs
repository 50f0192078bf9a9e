//! A grant: what an authenticated request may do (spec `analytics-api.md` §6).

use crate::AuthError;
use crate::scope::{FixedParams, Scope};

/// Who the request authenticated as.
#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    /// A static token (`p.…`).
    Static {
        /// Its id.
        id: String,
        /// Its name.
        name: String,
    },
    /// A verified JWT.
    Jwt {
        /// The `name` claim: the usage log's `token_name` and the rate-limit key.
        name: String,
        /// Its expiry (Unix seconds).
        exp: i64,
    },
}

/// The permissions of one authenticated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// The credential.
    pub credential: Credential,
    /// Its scopes.
    pub scopes: Vec<Scope>,
    /// JWT `limits.rps` (`None` or ≤ 0: no JWT limit).
    pub rps: Option<u32>,
}

impl Grant {
    /// `ADMIN` or `ADMIN:<email>`: every action, every row.
    pub fn is_admin(&self) -> bool {
        self.scopes.iter().any(|s| matches!(s, Scope::Admin | Scope::AdminUser(_)))
    }

    /// Admin, or `WORKSPACE:READ_ALL` (reads everything, unfiltered).
    pub fn reads_all(&self) -> bool {
        self.is_admin() || self.scopes.contains(&Scope::WorkspaceReadAll)
    }

    /// Whether this is a JWT.
    pub fn is_jwt(&self) -> bool {
        matches!(self.credential, Credential::Jwt { .. })
    }

    /// The token's name (usage log).
    pub fn token_name(&self) -> &str {
        match &self.credential {
            Credential::Static { name, .. } | Credential::Jwt { name, .. } => name,
        }
    }

    /// The static token's id; empty for a JWT.
    pub fn token_id(&self) -> &str {
        match &self.credential {
            Credential::Static { id, .. } => id,
            Credential::Jwt { .. } => "",
        }
    }

    /// Refuses a JWT on a route that takes static tokens only.
    pub fn static_only(&self) -> Result<(), AuthError> {
        if self.is_jwt() { Err(AuthError::JwtNotAccepted) } else { Ok(()) }
    }

    /// Requires admin or the given scope.
    pub fn require(&self, allowed: impl Fn(&Scope) -> bool) -> Result<(), AuthError> {
        if self.is_admin() || self.scopes.iter().any(allowed) { Ok(()) } else { Err(AuthError::NoAccess) }
    }

    /// The fixed params of the first `PIPES:READ` scope for `pipe` (empty for static tokens),
    /// or `None` when the grant may not read it. Admin and `WORKSPACE:READ_ALL` grants read every
    /// pipe with no fixed params.
    pub fn pipe_read(&self, pipe: &str) -> Option<FixedParams> {
        let scoped = self.scopes.iter().find_map(|s| match s {
            Scope::PipesRead { pipe: p, fixed_params } if p == pipe => Some(fixed_params.clone()),
            _ => None,
        });
        scoped.or_else(|| self.reads_all().then(FixedParams::new))
    }

    /// The row filters of the grant's `DATASOURCES:READ` scopes for `datasource` (an empty list
    /// reads every row), or `None` when no scope names it.
    pub fn datasource_read(&self, datasource: &str) -> Option<Vec<String>> {
        let mut found = false;
        let mut filters = Vec::new();
        let mut unfiltered = false;
        for s in &self.scopes {
            if let Scope::DatasourcesRead { datasource: d, filter } = s
                && d == datasource
            {
                found = true;
                match filter {
                    Some(f) => filters.push(f.clone()),
                    None => unfiltered = true,
                }
            }
        }
        // One unfiltered scope reads every row whatever the others say (filters are OR'd).
        if unfiltered {
            filters.clear();
        }
        found.then_some(filters)
    }

    /// Every pipe the grant names in a `PIPES:READ` scope, with its fixed params (first wins).
    pub fn readable_pipes(&self) -> Vec<(&str, &FixedParams)> {
        let mut out: Vec<(&str, &FixedParams)> = Vec::new();
        for s in &self.scopes {
            if let Scope::PipesRead { pipe, fixed_params } = s
                && !out.iter().any(|(p, _)| p == pipe)
            {
                out.push((pipe, fixed_params));
            }
        }
        out
    }

    /// Every data source the grant names in a `DATASOURCES:READ` scope, with its filters.
    pub fn readable_datasources(&self) -> Vec<(String, Vec<String>)> {
        let mut names: Vec<&str> = Vec::new();
        for s in &self.scopes {
            if let Scope::DatasourcesRead { datasource, .. } = s
                && !names.contains(&datasource.as_str())
            {
                names.push(datasource);
            }
        }
        names.into_iter().filter_map(|n| Some((n.to_string(), self.datasource_read(n)?))).collect()
    }
}

/// Checks the values of a scope's fixed params (spec §5.3): `null`, `""`, an empty array or an
/// array holding `null`/`""` cannot pin a tenant, and objects are not parameters.
pub fn check_fixed_params(fixed: &FixedParams) -> Result<(), AuthError> {
    use serde_json::Value as Json;
    let empty = |v: &Json| matches!(v, Json::Null) || v.as_str().is_some_and(str::is_empty);
    for (name, v) in fixed {
        match v {
            Json::Object(_) => return Err(AuthError::InvalidFixedParam(name.clone())),
            Json::Array(items) if items.is_empty() || items.iter().any(empty) => {
                return Err(AuthError::EmptyFixedParam(name.clone()));
            }
            Json::Array(items) if items.iter().any(|i| i.is_array() || i.is_object()) => {
                return Err(AuthError::InvalidFixedParam(name.clone()));
            }
            v if empty(v) => return Err(AuthError::EmptyFixedParam(name.clone())),
            _ => {}
        }
    }
    Ok(())
}
