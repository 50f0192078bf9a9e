//! The Tokens API (spec `analytics-api.md` §9, §5.7): static tokens listed, created, changed,
//! refreshed and deleted, and JWTs minted with `POST /v0/tokens?expiration_time=…`. Every route
//! needs a static admin or `TOKENS` token.

use std::collections::HashMap;
use std::sync::Arc;

use access::tokens::{Origin, Token};
use access::{AuthError, Scope};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

use super::json_response;
use crate::AppState;
use crate::error::ApiError;

/// Query and form fields in order (repeated `scope` kept).
fn fields(raw: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Vec<(String, String)> {
    let mut out = raw.map(|q| super::sql::form_pairs(q.as_bytes())).unwrap_or_default();
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if form {
        out.extend(super::sql::form_pairs(body));
    }
    out
}

fn first<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The `scope` arguments; one argument may list several scopes with commas when none of them
/// has a filter (a filter may itself contain commas).
fn scopes(fields: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (_, v) in fields.iter().filter(|(k, _)| k == "scope") {
        let parts: Vec<&str> = v.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
        if parts.len() > 1 && parts.iter().all(|p| p.splitn(4, ':').count() < 4 && Scope::parse(p).is_ok()) {
            out.extend(parts.into_iter().map(str::to_string));
        } else {
            out.push(v.trim().to_string());
        }
    }
    out
}

/// The request's fields, once a static admin or `TOKENS` grant is checked.
fn authorized(
    state: &AppState,
    raw: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, ApiError> {
    let f = fields(raw, headers, body);
    let token: HashMap<String, String> = f.iter().filter(|(k, _)| k == "token").take(1).cloned().collect();
    super::require(state, &token, headers, |s| *s == Scope::Tokens)?;
    Ok(f)
}

fn token_json(state: &AppState, t: &Token) -> Json {
    let mut origin = json!({"type": t.origin.letter()});
    if let Some(r) = &t.resource_id {
        origin["resource_id"] = json!(r);
    }
    json!({
        "id": t.id,
        "token": state.tokens.reveal(t).unwrap_or_default(),
        "name": t.name,
        "description": t.description,
        "scopes": t.parsed_scopes().iter().map(Scope::json).collect::<Vec<_>>(),
        "origin": origin,
        "host": "aviary",
    })
}

fn store_error(e: access::Error) -> ApiError {
    match e {
        access::Error::NotFound(_) => ApiError::json(StatusCode::NOT_FOUND, e.to_string()),
        access::Error::Io { .. } => {
            tracing::error!(error = %e, "token store");
            ApiError::json(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unexpected error, contact support and include the request id",
            )
        }
        other => ApiError::json(StatusCode::BAD_REQUEST, other.to_string()),
    }
}

/// Checks the filters of `scopes` against their data sources (spec §4.3): a filter must be a
/// boolean expression over the data source's columns, with no subquery.
async fn check_filters(state: &AppState, scopes: &[String]) -> Result<(), ApiError> {
    for s in scopes {
        if let Ok(Scope::DatasourcesRead { datasource, filter: Some(f) }) = Scope::parse(s) {
            state
                .workspace
                .check_filter(&datasource, &f)
                .await
                .map_err(|e| ApiError::json(StatusCode::BAD_REQUEST, format!("Invalid filter in scope {s}: {e}")))?;
        }
    }
    Ok(())
}

/// `GET /v0/tokens`.
pub(crate) async fn list(State(state): State<Arc<AppState>>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    if let Err(e) = authorized(&state, raw.as_deref(), &headers, &[]) {
        return e.into_response();
    }
    let tokens: Vec<Json> = state.tokens.list().iter().map(|t| token_json(&state, t)).collect();
    json_response(StatusCode::OK, &json!({ "tokens": tokens }))
}

/// `POST /v0/tokens`: a static token, or with `expiration_time` a JWT.
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let f = authorized(&state, raw.as_deref(), &headers, &body)?;
        if let Some(exp) = first(&f, "expiration_time") {
            return mint_jwt(&state, exp, first(&f, "name"), &body);
        }
        let name = first(&f, "name").unwrap_or_default();
        let scopes = scopes(&f);
        let origin = match first(&f, "origin") {
            None => Origin::Custom,
            Some(o) => Origin::parse(o).ok_or_else(|| {
                ApiError::json(StatusCode::BAD_REQUEST, format!("Invalid origin '{o}', it must be one of C, P, DS"))
            })?,
        };
        check_filters(&state, &scopes).await?;
        let description = first(&f, "description").unwrap_or_default();
        let resource = first(&f, "resource_id").map(str::to_string);
        let t = state
            .change_tokens(|tokens| tokens.create(name, description, &scopes, origin, resource))
            .await
            .map_err(store_error)?;
        Ok(json_response(StatusCode::OK, &token_json(&state, &t)))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Spec §5.7: signs a JWT for the JSON body `{name, scopes, limits}`.
fn mint_jwt(state: &AppState, exp: &str, name: Option<&str>, body: &[u8]) -> Result<Response, ApiError> {
    let bad = |m: String| ApiError::json(StatusCode::BAD_REQUEST, m);
    let now = chrono::Utc::now().timestamp();
    let exp = exp
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|e| *e > now)
        .ok_or_else(|| bad("Invalid expiration_time, it must be a future Unix timestamp".into()))?;
    // The body is JSON whatever its Content-Type (the Forward CLI sends none).
    let spec: Json = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|_| bad("The request body must be a JSON object".into()))?
    };
    let name = name
        .or_else(|| spec.get("name").and_then(Json::as_str))
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| bad("name is mandatory".into()))?;
    let entries = spec.get("scopes").and_then(Json::as_array).cloned().unwrap_or_default();
    if entries.is_empty() {
        return Err(bad("scope is mandatory".into()));
    }
    for entry in &entries {
        let scope = Scope::from_jwt(entry).map_err(|e| match e {
            access::Error::Auth(AuthError::InvalidScope(t)) => {
                bad(format!("Invalid scope '{t}', only PIPES:READ and DATASOURCES:READ are allowed in JWTs"))
            }
            other => bad(other.to_string()),
        })?;
        let exists = match &scope {
            Scope::PipesRead { pipe, fixed_params } => {
                access::grant::check_fixed_params(fixed_params).map_err(|e| bad(e.to_string()))?;
                state.workspace.pipes().get(pipe).is_some()
            }
            Scope::DatasourcesRead { datasource, .. } => state.workspace.datasource(datasource).is_some(),
            _ => true,
        };
        if !exists {
            return Err(bad(format!("Resource '{}' not found", scope.resource().unwrap_or_default())));
        }
    }
    let mut claims = json!({
        "workspace_id": state.config.workspace_id,
        "name": name,
        "exp": exp,
        "iat": now,
        "scopes": entries,
    });
    if let Some(limits) = spec.get("limits").filter(|l| !l.is_null()) {
        claims["limits"] = limits.clone();
    }
    let keys = state.jwt.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let token = keys.sign(&claims);
    let mut out = json!({"token": token, "name": name, "exp": exp, "scopes": claims["scopes"]});
    if let Some(l) = claims.get("limits") {
        out["limits"] = l.clone();
    }
    Ok(json_response(StatusCode::OK, &out))
}

/// `GET /v0/tokens/{name_or_id}`.
pub(crate) async fn get_one(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = authorized(&state, raw.as_deref(), &headers, &[]) {
        return e.into_response();
    }
    match state.tokens.get(&name) {
        Some(t) => json_response(StatusCode::OK, &token_json(&state, &t)),
        None => store_error(access::Error::NotFound(name)).into_response(),
    }
}

/// `PUT /v0/tokens/{name_or_id}`: renames, describes, or replaces the scopes; creates a
/// missing token (the classic CLI's create-or-update of datafile tokens).
pub(crate) async fn update(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let f = authorized(&state, raw.as_deref(), &headers, &body)?;
        let scopes = scopes(&f);
        check_filters(&state, &scopes).await?;
        let t = state
            .change_tokens(|tokens| match tokens.get(&name) {
                None => {
                    let origin = first(&f, "origin").and_then(Origin::parse).unwrap_or(Origin::Custom);
                    let new_name = first(&f, "name").unwrap_or(&name);
                    let description = first(&f, "description").unwrap_or_default();
                    tokens.create(new_name, description, &scopes, origin, None)
                }
                Some(existing) => tokens.update(
                    &existing.id,
                    first(&f, "name"),
                    first(&f, "description"),
                    (!scopes.is_empty()).then_some(scopes.as_slice()),
                ),
            })
            .await
            .map_err(store_error)?;
        Ok::<_, ApiError>(json_response(StatusCode::OK, &token_json(&state, &t)))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE /v0/tokens/{name_or_id}` → 204.
pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = authorized(&state, raw.as_deref(), &headers, &[]) {
        return e.into_response();
    }
    match state.change_tokens(|tokens| tokens.delete(&name)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => store_error(e).into_response(),
    }
}

/// `POST /v0/tokens/{name_or_id}/refresh`: a new string, same id. Refreshing the admin token
/// re-keys JWTs: every JWT signed with the old one stops working.
pub(crate) async fn refresh(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = authorized(&state, raw.as_deref(), &headers, &body) {
        return e.into_response();
    }
    // Refreshing the admin token re-keys JWTs (`change_tokens` re-derives the keys).
    match state.change_tokens(|tokens| tokens.refresh(&name)).await {
        Ok(t) => json_response(StatusCode::OK, &token_json(&state, &t)),
        Err(e) => store_error(e).into_response(),
    }
}
