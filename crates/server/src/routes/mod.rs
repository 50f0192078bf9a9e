//! The `/v0` router: CORS, request ids, token extraction, and the handlers of each API.

mod datasources;
pub(crate) mod deploy;
mod events;
mod health;
mod pipes;
mod sql;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

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
        .route("/v1/build", post(deploy::build))
        .route("/v1/deploy", post(deploy::deploy))
        .route("/v1/deployments", get(deploy::list))
        .route("/v1/deployments/{id}", get(deploy::one).delete(deploy::one))
        .route("/v1/deployments/{id}/set-live", post(deploy::set_live))
        .route("/metrics", get(crate::metrics::metrics))
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
    let is_events = req.uri().path().starts_with("/v0/events");
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

/// Requires the workspace admin token (scoped tokens and JWTs arrive with the access layer).
pub(crate) fn require_admin(
    state: &AppState,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let docs = &state.config.docs_base_url;
    match token(query, headers) {
        None => Err(ApiError {
            message: "invalid authentication token. Token is required".into(),
            ..ApiError::forbidden(docs)
        }),
        Some(t) if constant_time_eq(t.as_bytes(), state.config.admin_token.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError {
            message: "invalid authentication token. Token not found".into(),
            ..ApiError::forbidden(docs)
        }),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
