//! The `/v0` router: CORS, request ids, token extraction, and the handlers of each API.

mod datasources;
pub(crate) mod deploy;
mod events;
mod health;
mod identity;
mod pipes;
mod sql;
mod tokens;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use access::limits::Decision;
use access::{AuthError, Grant, Scope};
use engine::policy::{ReadPolicy, Scoped};

use crate::AppState;
use crate::error::ApiError;

pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v0/health", get(health::health))
        .route("/v0/events", post(events::events))
        .route("/v0/sql", get(sql::get_sql).post(sql::post_sql))
        .route("/v0/datasources", get(datasources::list).post(datasources::create))
        .route("/v0/datasources/", get(datasources::list).post(datasources::create))
        .route("/v0/datasources/{name}", get(datasources::get_one).delete(datasources::drop).put(datasources::update))
        .route("/v0/datasources/{name}/delete", post(datasources::delete_rows))
        .route("/v0/datasources/{name}/alter", post(datasources::alter))
        .route("/v0/jobs/{id}", get(datasources::job))
        .route("/v1/datasources/{name}/{action}", post(datasources::load_raw))
        .route("/v0/datasources/{name}/truncate", post(datasources::truncate))
        .route("/v0/pipes", get(pipes::list).post(pipes::create))
        .route("/v1/pipes", get(pipes::list))
        .route("/v0/pipes/{file}", get(pipes::get).post(pipes::post).put(pipes::update).delete(pipes::delete))
        .route("/v0/pipes/{name}/nodes/{node}/endpoint", post(pipes::publish).delete(pipes::publish))
        .route("/v1/pipes/{file}", get(pipes::get))
        .route("/v0/tokens", get(tokens::list).post(tokens::create))
        .route("/v0/tokens/", get(tokens::list).post(tokens::create))
        .route("/v0/tokens/{name}", get(tokens::get_one).put(tokens::update).delete(tokens::delete))
        .route("/v0/tokens/{name}/refresh", post(tokens::refresh))
        .route("/v1/build", post(deploy::build))
        .route("/v1/deploy", post(deploy::deploy))
        .route("/v1/deployments", get(deploy::list))
        .route("/v1/deployments/{id}", get(deploy::one).delete(deploy::one))
        .route("/v1/deployments/{id}/set-live", post(deploy::set_live))
        .route("/metrics", get(crate::metrics::metrics))
        .merge(identity::router(state.clone()))
        .merge(crate::app::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), crate::metrics::observe))
        .layer(middleware::from_fn(cors_and_request_id))
        .layer(middleware::from_fn_with_state(state.clone(), crate::usage::record))
        .with_state(state)
}

const ALLOW_HEADERS: &str = "Authorization, Content-Type, X-Requested-With, X-Tb-Warning";
const EXPOSE_HEADERS: &str =
    "X-Tb-Warning, X-Request-ID, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After";

/// CORS on every `/v0` route (preflights answered with 204, no authentication) and an
/// `X-Request-ID` on every response.
async fn cors_and_request_id(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    // The app's pages and /app/token are same-origin only: no CORS.
    if !(path.starts_with("/v0/") || path.starts_with("/v1/") || path.starts_with("/.well-known/")) {
        return next.run(req).await;
    }
    let is_events = path.starts_with("/v0/events");
    let requested = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
    let mut response =
        if req.method() == Method::OPTIONS { StatusCode::NO_CONTENT.into_response() } else { next.run(req).await };
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    let allow_headers = match (is_events, requested) {
        (true, Some(r)) => r,
        _ => HeaderValue::from_static(ALLOW_HEADERS),
    };
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(if is_events { "POST, OPTIONS" } else { "GET, POST, PUT, DELETE, OPTIONS" }),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    let id = uuid::Uuid::new_v4().simple().to_string();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("x-request-id", v);
    }
    response
}

/// Adds the fields of a form-encoded `body` to `query` (the query string wins).
pub(crate) fn add_form(query: &mut HashMap<String, String>, body: &[u8]) {
    for (k, v) in sql::form_pairs(body) {
        query.entry(k).or_insert(v);
    }
}

/// The request's token: the `token` argument first, then `Authorization: Bearer …`.
pub(crate) fn token<'a>(query: &'a HashMap<String, String>, headers: &'a HeaderMap) -> Option<&'a str> {
    if let Some(t) = query.get("token").filter(|t| !t.is_empty()) {
        return Some(t);
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim()).filter(|t| !t.is_empty())
}

/// The grant of the request's token: a static token by its digest, anything else as a JWT
/// (spec §3.2). Refusals are 403 with the spec's messages.
pub(crate) fn grant(
    state: &AppState,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Arc<Grant>, ApiError> {
    let token = token(query, headers).ok_or(AuthError::Missing);
    let result = token.and_then(|t| authenticate(state, t));
    result.map_err(|e| ApiError::auth(&e, &state.config.docs_base_url))
}

/// The grant of a token string.
pub(crate) fn authenticate(state: &AppState, token: &str) -> Result<Arc<Grant>, AuthError> {
    if token.starts_with("p.") {
        return state.tokens.authenticate(token).ok_or(AuthError::NotFound);
    }
    let keys = state.jwt.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    keys.verify(token, chrono::Utc::now().timestamp())
}

/// A static token's grant that is admin or holds a scope `allowed` accepts (JWTs refused).
pub(crate) fn require(
    state: &AppState,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    allowed: impl Fn(&Scope) -> bool,
) -> Result<Arc<Grant>, ApiError> {
    let g = grant(state, query, headers)?;
    let docs = &state.config.docs_base_url;
    g.static_only().map_err(|e| ApiError::auth(&e, docs))?;
    g.require(allowed).map_err(|e| ApiError::auth(&e, docs))?;
    Ok(g)
}

/// A static admin token's grant.
pub(crate) fn require_admin(
    state: &AppState,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Arc<Grant>, ApiError> {
    require(state, query, headers, |_| false)
}

/// What a grant may read, as the engine enforces it.
pub(crate) fn read_policy(grant: &Grant) -> ReadPolicy {
    if grant.reads_all() {
        return ReadPolicy::All;
    }
    ReadPolicy::Scoped(Scoped {
        datasources: grant.readable_datasources().into_iter().collect(),
        pipes: grant.readable_pipes().into_iter().map(|(p, f)| (p.to_string(), f.clone())).collect(),
    })
}

/// The rate limits of a read by `grant` of `resource` (a pipe, or `query_api`): the JWT's
/// `limits.rps` per (workspace, resource, JWT name), and the server's per-static-token limit.
/// `Err` is the 429 to answer, with its headers.
pub(crate) async fn rate_limit(
    state: &AppState,
    grant: &Grant,
    resource: &str,
) -> Result<Option<Decision>, Box<Response>> {
    let mut decisions = Vec::new();
    let mut refusal = None;
    if let (true, Some(rps)) = (grant.is_jwt(), grant.rps) {
        let key = format!("jwt/{}/{resource}/{}", state.config.workspace_id, grant.token_name());
        let d = state.limits.check(&key, rps, rps).await;
        if !d.allowed {
            refusal = Some(ApiError {
                documentation: Some(format!("{}/forward/administration/tokens/jwt", state.config.docs_base_url)),
                ..ApiError::json(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "Too many requests: the JWT '{}' exceeded its limit of {rps} requests per second for '{resource}'",
                        grant.token_name()
                    ),
                )
            });
        }
        decisions.push(d);
    }
    let per_token = state.config.static_token_rps;
    if !grant.is_jwt() && !grant.is_admin() && per_token > 0 {
        let d = state.limits.check(&format!("token/{}", grant.token_id()), per_token, per_token).await;
        if !d.allowed && refusal.is_none() {
            refusal = Some(ApiError::json(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many requests: the token '{}' exceeded its limit of {per_token} requests per second",
                    grant.token_name()
                ),
            ));
        }
        decisions.push(d);
    }
    let decision = crate::limits::strictest(decisions);
    match (refusal, decision) {
        (Some(e), Some(d)) => {
            let mut r = e.into_response();
            crate::limits::apply(&d, r.headers_mut());
            Err(Box::new(r))
        }
        (Some(e), None) => Err(Box::new(e.into_response())),
        (None, d) => Ok(d),
    }
}

/// A JSON response with exactly `Content-Type: application/json`.
/// Runs a query under the server's time limit (spec §10.8): past it, 408. The query runs as a
/// task of its own, aborted at the limit, so a query that never waits cannot outlive it.
pub(crate) async fn limited<T: Send + 'static>(
    state: &AppState,
    query: impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
) -> Result<T, ApiError> {
    let limit = state.config.query_timeout;
    let started = std::time::Instant::now();
    let mut task = tokio::spawn(query);
    // The deadline first: a query that ends after it is late even if it ended meanwhile.
    let finished = tokio::select! {
        biased;
        () = tokio::time::sleep(limit) => None,
        done = &mut task => Some(done).filter(|_| started.elapsed() <= limit),
    };
    match finished {
        Some(Ok(result)) => result,
        Some(Err(_)) => Err(ApiError::json(StatusCode::INTERNAL_SERVER_ERROR, "internal error")),
        None => {
            task.abort();
            Err(ApiError::json(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "[Error] Timeout exceeded: elapsed {:.1} seconds, maximum: {} (TIMEOUT_EXCEEDED)",
                    limit.as_secs_f64(),
                    limit.as_secs_f64()
                ),
            ))
        }
    }
}

/// Refuses an encoded result larger than the server allows (spec §10.8).
pub(crate) fn within_result_limit(state: &AppState, body: &[u8]) -> Result<(), ApiError> {
    let max = state.config.max_result_bytes;
    if body.len() > max {
        return Err(ApiError::json(
            StatusCode::BAD_REQUEST,
            format!("[Error] Result is larger than {max} bytes, add a LIMIT or filter (TOO_MANY_BYTES)"),
        ));
    }
    Ok(())
}

pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
