//! Scopes (spec `analytics-api.md` §4.2, §5.3): what a token may do, parsed once from the
//! static-token string form (`TYPE:ACTION[:resource[:filter]]`) or a JWT's `{type, resource, …}`.

use serde_json::{Map, Value as Json, json};

use crate::Error;

/// The fixed params of a JWT `PIPES:READ` scope: template parameters the token forces.
pub type FixedParams = Map<String, Json>;

/// One grantable permission.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// Everything in the workspace.
    Admin,
    /// A user's personal admin token (`ADMIN:<email>`).
    AdminUser(String),
    /// The Tokens API.
    Tokens,
    /// Create data sources (and let the Events API auto-create them).
    DatasourcesCreate,
    /// Append to a data source.
    DatasourcesAppend(String),
    /// Drop, truncate or delete rows of a data source.
    DatasourcesDrop(String),
    /// Read a data source, optionally through a row filter (a SQL boolean expression).
    DatasourcesRead {
        /// The data source.
        datasource: String,
        /// Rows visible to the grant; `None` for all.
        filter: Option<String>,
    },
    /// Create pipes.
    PipesCreate,
    /// Call a pipe's endpoint and read it as a table, with the params a JWT forces.
    PipesRead {
        /// The pipe.
        pipe: String,
        /// Template parameters that always win over the request's (JWTs only).
        fixed_params: FixedParams,
    },
    /// Delete a pipe.
    PipesDrop(String),
    /// Read every data source and pipe (Forward).
    WorkspaceReadAll,
    /// Run deployments (Forward).
    WorkspaceDeploy,
    /// Organization-level service data sources (accepted; Aviary has none).
    OrgDatasourcesRead,
}

impl Scope {
    /// Parses a static-token scope string; everything after the third `:` is the filter.
    pub fn parse(text: &str) -> Result<Scope, Error> {
        let unknown = || Error::UnknownScope(text.to_string());
        let mut parts = text.splitn(4, ':');
        let kind = parts.next().unwrap_or_default();
        let second = parts.next();
        let resource = parts.next().filter(|r| !r.is_empty()).map(str::to_string);
        let filter = parts.next().map(str::trim).filter(|f| !f.is_empty()).map(str::to_string);
        let needs = |r: Option<String>| r.ok_or_else(unknown);
        let scope = match (kind, second) {
            ("ADMIN", None) => Scope::Admin,
            ("ADMIN", Some(email)) if !email.is_empty() && resource.is_none() => Scope::AdminUser(email.to_string()),
            ("TOKENS", None) => Scope::Tokens,
            ("DATASOURCES", Some("CREATE")) if resource.is_none() => Scope::DatasourcesCreate,
            ("DATASOURCES", Some("APPEND")) if filter.is_none() => Scope::DatasourcesAppend(needs(resource)?),
            ("DATASOURCES", Some("DROP")) if filter.is_none() => Scope::DatasourcesDrop(needs(resource)?),
            ("DATASOURCES", Some("READ")) => Scope::DatasourcesRead { datasource: needs(resource)?, filter },
            ("PIPES", Some("CREATE")) if resource.is_none() => Scope::PipesCreate,
            ("PIPES", Some("READ")) if filter.is_some() => {
                return Err(Error::Invalid(format!(
                    "Unknown scope {text}, filters are only allowed on DATASOURCES:READ"
                )));
            }
            ("PIPES", Some("READ")) => Scope::PipesRead { pipe: needs(resource)?, fixed_params: Map::new() },
            ("PIPES", Some("DROP")) if filter.is_none() => Scope::PipesDrop(needs(resource)?),
            ("WORKSPACE", Some("READ_ALL")) if resource.is_none() => Scope::WorkspaceReadAll,
            ("WORKSPACE", Some("DEPLOY")) if resource.is_none() => Scope::WorkspaceDeploy,
            ("ORG_DATASOURCES", Some("READ")) if resource.is_none() => Scope::OrgDatasourcesRead,
            _ => return Err(unknown()),
        };
        Ok(scope)
    }

    /// Parses one entry of a JWT's `scopes`: only `PIPES:READ` (with `fixed_params`) and
    /// `DATASOURCES:READ` (with `filter`) are allowed in JWTs.
    pub fn from_jwt(entry: &Json) -> Result<Scope, Error> {
        let kind = entry.get("type").and_then(Json::as_str).unwrap_or_default();
        let resource = entry.get("resource").and_then(Json::as_str).filter(|r| !r.is_empty());
        let invalid = || Error::Auth(crate::AuthError::InvalidScope(kind.to_string()));
        match kind {
            "PIPES:READ" => {
                let fixed_params = match entry.get("fixed_params") {
                    None | Some(Json::Null) => Map::new(),
                    Some(Json::Object(o)) => o.clone(),
                    Some(_) => return Err(invalid()),
                };
                Ok(Scope::PipesRead { pipe: resource.ok_or_else(invalid)?.to_string(), fixed_params })
            }
            "DATASOURCES:READ" => {
                let filter = match entry.get("filter") {
                    None | Some(Json::Null) => None,
                    Some(Json::String(s)) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
                    Some(_) => return Err(invalid()),
                };
                Ok(Scope::DatasourcesRead { datasource: resource.ok_or_else(invalid)?.to_string(), filter })
            }
            _ => Err(invalid()),
        }
    }

    /// The static-token string form (`PIPES:READ:top_pages`).
    pub fn text(&self) -> String {
        let (kind, resource, filter) = self.parts();
        let mut out = kind.to_string();
        for part in [resource, filter].into_iter().flatten() {
            out.push(':');
            out.push_str(part);
        }
        out
    }

    /// The object the Tokens API shows: `{type, resource}` plus `filter` when set.
    pub fn json(&self) -> Json {
        let (kind, resource, filter) = self.parts();
        let mut o = json!({ "type": kind });
        if let Some(r) = resource {
            o["resource"] = json!(r);
        }
        if let Some(f) = filter {
            o["filter"] = json!(f);
        }
        if let Scope::PipesRead { fixed_params, .. } = self
            && !fixed_params.is_empty()
        {
            o["fixed_params"] = Json::Object(fixed_params.clone());
        }
        o
    }

    fn parts(&self) -> (&'static str, Option<&str>, Option<&str>) {
        match self {
            Scope::Admin => ("ADMIN", None, None),
            Scope::AdminUser(e) => ("ADMIN", Some(e), None),
            Scope::Tokens => ("TOKENS", None, None),
            Scope::DatasourcesCreate => ("DATASOURCES:CREATE", None, None),
            Scope::DatasourcesAppend(d) => ("DATASOURCES:APPEND", Some(d), None),
            Scope::DatasourcesDrop(d) => ("DATASOURCES:DROP", Some(d), None),
            Scope::DatasourcesRead { datasource, filter } => ("DATASOURCES:READ", Some(datasource), filter.as_deref()),
            Scope::PipesCreate => ("PIPES:CREATE", None, None),
            Scope::PipesRead { pipe, .. } => ("PIPES:READ", Some(pipe), None),
            Scope::PipesDrop(p) => ("PIPES:DROP", Some(p), None),
            Scope::WorkspaceReadAll => ("WORKSPACE:READ_ALL", None, None),
            Scope::WorkspaceDeploy => ("WORKSPACE:DEPLOY", None, None),
            Scope::OrgDatasourcesRead => ("ORG_DATASOURCES:READ", None, None),
        }
    }

    /// The resource a scope names, if any.
    pub fn resource(&self) -> Option<&str> {
        self.parts().1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_scopes_round_trip() {
        for s in [
            "ADMIN",
            "TOKENS",
            "DATASOURCES:CREATE",
            "DATASOURCES:APPEND:events",
            "DATASOURCES:DROP:events",
            "DATASOURCES:READ:events",
            "DATASOURCES:READ:events:org = 'a:b'",
            "PIPES:CREATE",
            "PIPES:READ:top_pages",
            "PIPES:DROP:top_pages",
            "WORKSPACE:READ_ALL",
        ] {
            assert_eq!(Scope::parse(s).unwrap().text(), s);
        }
        let filtered = Scope::parse("DATASOURCES:READ:events:org = 'a:b'").unwrap();
        assert_eq!(
            filtered,
            Scope::DatasourcesRead { datasource: "events".into(), filter: Some("org = 'a:b'".into()) }
        );
        assert_eq!(filtered.json(), json!({"type": "DATASOURCES:READ", "resource": "events", "filter": "org = 'a:b'"}));
    }

    #[test]
    fn bad_scopes_are_named() {
        for s in ["PIPES:READ", "ADMINS", "DATASOURCES:APPEND", "PIPES:WRITE:x", "", "TOKENS:x"] {
            assert_eq!(Scope::parse(s).unwrap_err().to_string(), format!("Unknown scope {s}"));
        }
        assert!(Scope::parse("PIPES:READ:p:org = 1").unwrap_err().to_string().contains("filters are only allowed"));
    }

    #[test]
    fn jwt_scopes_allow_only_reads() {
        let ok =
            Scope::from_jwt(&json!({"type": "PIPES:READ", "resource": "p", "fixed_params": {"org": "a"}})).unwrap();
        assert!(matches!(ok, Scope::PipesRead { ref fixed_params, .. } if fixed_params["org"] == "a"));
        for bad in [
            json!({"type": "ADMIN"}),
            json!({"type": "DATASOURCES:APPEND", "resource": "events"}),
            json!({"type": "PIPES:READ"}),
            json!({"type": "PIPES:READ", "resource": "p", "fixed_params": "org=a"}),
        ] {
            assert!(Scope::from_jwt(&bad).is_err(), "{bad}");
        }
    }
}
