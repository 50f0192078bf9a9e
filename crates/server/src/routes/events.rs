//! `POST /v0/events?name=<ds>`: NDJSON events, gzip allowed, durable before acknowledged
//! (spec `analytics-api.md` §12). Errors are plain text.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use access::Scope;

use crate::AppState;
use crate::error::ApiError;

fn plain(status: StatusCode, msg: impl Into<String>) -> ApiError {
    ApiError::plain(status, msg)
}

/// Decompresses a gzip body (declared, or sniffed by its magic bytes, or base64 of gzip); any
/// other body is returned as is.
fn decode_body(raw: Bytes, declared_gzip: bool, limit: usize) -> Result<Bytes, ApiError> {
    let is_gzip = |b: &[u8]| b.len() >= 2 && b[0] == 0x1f && b[1] == 0x8b;
    let gz: Option<Vec<u8>> = if declared_gzip || is_gzip(&raw) {
        Some(raw.to_vec())
    } else {
        let trimmed: Vec<u8> = raw.iter().copied().filter(|c| !c.is_ascii_whitespace()).collect();
        if trimmed.len() >= 4 && trimmed.starts_with(b"H4sI") {
            base64::engine::general_purpose::STANDARD.decode(&trimmed).ok().filter(|d| is_gzip(d))
        } else {
            None
        }
    };
    let Some(gz) = gz else { return Ok(raw) };
    let mut out = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(gz.as_slice()).take(limit as u64 + 1);
    decoder.read_to_end(&mut out).map_err(|_| plain(StatusCode::BAD_REQUEST, "Invalid gzip body"))?;
    if out.len() > limit {
        return Err(plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body too large, the maximum is {limit} bytes"),
        ));
    }
    Ok(out.into())
}

pub(crate) async fn events(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let rps = state.config.events_rps;
    let decision = match rps {
        0 => None,
        _ => Some(state.limits.check(&format!("events/{}", state.config.workspace_id), rps, rps).await),
    };
    let mut response = match decision {
        Some(d) if !d.allowed => plain(StatusCode::TOO_MANY_REQUESTS, "Too many requests").into_response(),
        _ => match handle(state, query, headers, body).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        },
    };
    if let Some(d) = decision {
        crate::limits::apply(&d, response.headers_mut());
    }
    response
}

async fn handle(
    state: Arc<AppState>,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let grant = match super::token(&query, &headers) {
        Some(t) if !t.starts_with("p.") => {
            return Err(plain(StatusCode::FORBIDDEN, "This API does not support JWT tokens"));
        }
        Some(t) => state.tokens.authenticate(t).ok_or_else(|| plain(StatusCode::FORBIDDEN, "Invalid token"))?,
        None => return Err(plain(StatusCode::FORBIDDEN, "Invalid token")),
    };
    let Some(name) = query.get("name").filter(|n| !n.is_empty()).cloned() else {
        return Err(plain(StatusCode::BAD_REQUEST, "Missing 'name' parameter"));
    };
    // Appending needs DATASOURCES:APPEND on the data source; a missing one may be created
    // from the events with DATASOURCES:CREATE (spec §12.4).
    let exists = state.workspace.datasource(&name).is_some();
    let may = grant.require(|s| match s {
        Scope::DatasourcesAppend(d) => *d == name,
        Scope::DatasourcesCreate => !exists,
        _ => false,
    });
    if may.is_err() {
        return Err(plain(StatusCode::FORBIDDEN, format!("The token does not have permission to append to '{name}'")));
    }
    if let Some(f) = query.get("format").filter(|f| !f.eq_ignore_ascii_case("ndjson")) {
        return Err(plain(
            StatusCode::NOT_IMPLEMENTED,
            format!("Format '{f}' not implemented, only ndjson is supported"),
        ));
    }
    let limit = state.config.max_body_bytes;
    let raw = axum::body::to_bytes(body, limit).await.map_err(|_| {
        plain(StatusCode::PAYLOAD_TOO_LARGE, format!("Request body too large, the maximum is {limit} bytes"))
    })?;
    let declared_gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let bytes = decode_body(raw, declared_gzip, state.config.max_decompressed_bytes)?;
    let ws = state.workspace.clone();
    if !state.room_to_ingest().await {
        return Err(plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service temporarily unavailable, no data ingested, please retry again",
        ));
    }
    if ws.datasource(&name).is_none() {
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(100).collect();
        let Some(datafile) = crate::infer::datasource_text(&lines) else {
            return Err(plain(StatusCode::NOT_FOUND, format!("Data Source '{name}' does not exist")));
        };
        let (ws2, name2) = (ws.clone(), name.clone());
        tokio::task::spawn_blocking(move || ws2.deploy_datasource(&name2, &datafile))
            .await
            .map_err(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal error"))?
            .map_err(|e| ApiError::engine(&e, true))?;
        tracing::info!(datasource = %name, "created from the first events");
    }
    if ws.datasource(&name).is_some_and(|d| !d.is_ndjson()) {
        return Err(plain(StatusCode::BAD_REQUEST, "Data Source must be of type JSON"));
    }
    let import_id = uuid::Uuid::new_v4().to_string();
    let ds = name.clone();
    let wait = query.get("wait").is_some_and(|w| w == "true" || w == "1");
    let result = tokio::task::spawn_blocking(move || {
        ws.ingest_events(&name, &String::from_utf8_lossy(&bytes), &import_id, wait)
    })
    .await
    .map_err(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal error"))?
    .map_err(|e| ApiError::engine(&e, true))?;
    state.metrics.ingested(&ds, result.successful_rows, result.quarantined_rows);
    let status = if wait { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok(super::json_response(status, &serde_json::to_value(result).unwrap_or_default()))
}
