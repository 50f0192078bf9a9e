//! `GET|POST /v0/sql`: read queries over data sources and their quarantines, with a trailing
//! `FORMAT` (spec `analytics-api.md` §14). Admin token for now; scoped grants come with the
//! access layer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;
use crate::format::{self, Format, Statistics};

const FORMATS: &str =
    "JSON, JSONEachRow, JSONStrings, CSV, CSVWithNames, TSV, TSVWithNames, PrettyCompact, Parquet, Prometheus";
const MAX_GET: usize = 8 * 1024;
const RESERVED: [&str; 14] = [
    "q",
    "token",
    "from",
    "max_threads",
    "pipeline",
    "tag",
    "semver",
    "playground",
    "finalize_aggregations",
    "release_replacements",
    "time",
    "test",
    "__tb__semver",
    "template_parameters",
];

pub(crate) async fn get_sql(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let q = query.get("q").cloned();
    if q.as_ref().is_some_and(|q| q.len() > MAX_GET) {
        return ApiError::json(StatusCode::BAD_REQUEST, "The maximum size for a SQL query is 8KB.").into_response();
    }
    run(state, q, query, headers).await.unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn post_sql(
    State(state): State<Arc<AppState>>,
    Query(mut query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let mut q = query.get("q").cloned();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        for (k, v) in form_pairs(&body) {
            query.entry(k.clone()).or_insert(v.clone());
            if k == "q" {
                q = Some(v);
            }
        }
    } else if content_type.starts_with("application/json") {
        if let Ok(serde_json::Value::Object(o)) = serde_json::from_slice::<serde_json::Value>(&body) {
            for (k, v) in o {
                let text = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                if k == "q" {
                    q = Some(text.clone());
                }
                query.insert(k, text);
            }
        }
    } else if !body.is_empty() {
        q = Some(String::from_utf8_lossy(&body).into_owned());
    }
    run(state, q, query, headers).await.unwrap_or_else(IntoResponse::into_response)
}

pub(crate) fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| -> String {
        let s = s.replace('+', " ");
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%'
                && i + 2 < b.len()
                && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Splits a trailing `FORMAT <name>` off the SQL.
fn split_format(sql: &str) -> (String, Option<String>) {
    let trimmed = sql.trim_end().trim_end_matches(';').trim_end();
    let words: Vec<&str> = trimmed.rsplitn(3, char::is_whitespace).collect();
    if words.len() >= 2 && words[1].eq_ignore_ascii_case("FORMAT") {
        let name = words[0].to_string();
        let rest = trimmed[..trimmed.len() - name.len()].trim_end();
        let rest = &rest[..rest.len() - "FORMAT".len()];
        return (rest.trim_end().to_string(), Some(name));
    }
    (trimmed.to_string(), None)
}

fn first_keyword(sql: &str) -> String {
    let mut s = sql.trim_start();
    loop {
        if let Some(r) = s.strip_prefix("--") {
            s = r.split_once('\n').map_or("", |(_, rest)| rest).trim_start();
        } else if let Some(r) = s.strip_prefix("/*") {
            s = r.split_once("*/").map_or("", |(_, rest)| rest).trim_start();
        } else if let Some(r) = s.strip_prefix('(') {
            s = r.trim_start();
        } else {
            break;
        }
    }
    s.split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("").to_ascii_uppercase()
}

async fn run(
    state: Arc<AppState>,
    q: Option<String>,
    query: HashMap<String, String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let grant = super::grant(&state, &query, &headers)?;
    let Some(q) = q.filter(|q| !q.trim().is_empty()) else {
        return Err(ApiError::json(StatusCode::BAD_REQUEST, "missing q parameter. example q=select%201"));
    };
    let params: template::Params = query
        .iter()
        .filter(|(k, _)| !RESERVED.contains(&k.as_str()) && !k.starts_with("output_format_"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let sql = match template::strip_activation(&q) {
        Some(body) => {
            let t = template::Template::parse(body).map_err(|e| template_error(&state, &e))?;
            t.render(&params).map_err(|e| template_error(&state, &e))?.sql
        }
        None => q,
    };
    let (sql, format_name) = split_format(&sql);
    let format = match format_name {
        None => Format::Tsv,
        Some(f) => Format::parse(&f).ok_or_else(|| {
            ApiError::json(StatusCode::FORBIDDEN, format!("invalid format, available ones: {FORMATS}"))
        })?,
    };
    if !matches!(first_keyword(&sql).as_str(), "SELECT" | "WITH" | "DESCRIBE" | "DESC" | "EXPLAIN") {
        return Err(ApiError::json(StatusCode::BAD_REQUEST, "Only SELECT queries are allowed in the SQL API"));
    }
    let pipeline = query.get("pipeline").cloned();
    may_read(&state, &grant, &sql, pipeline.as_deref())?;
    let decision = match super::rate_limit(&state, &grant, "query_api").await {
        Ok(d) => d,
        Err(refused) => return Ok(*refused),
    };
    let policy = super::read_policy(&grant);
    let started = Instant::now();
    let (st, text) = (state.clone(), sql.clone());
    let run = async move {
        st.workspace.sql_as(&text, &params, pipeline.as_deref(), &policy).await.map_err(|e| match e {
            engine::Error::Pipe(engine::pipes::PipeError::Template(t)) => template_error(&st, &t),
            engine::Error::Pipe(p @ engine::pipes::PipeError::NotFound(_)) => {
                ApiError::json(StatusCode::NOT_FOUND, p.to_string())
            }
            other => ApiError::engine(&other, false),
        })
    };
    let out = super::limited(&state, run).await?;
    let stats =
        Statistics { elapsed: started.elapsed().as_secs_f64(), rows_read: out.rows_read, bytes_read: out.bytes_read };
    let limited = sql.to_ascii_uppercase().split_whitespace().any(|w| w == "LIMIT");
    let options = format::Options::from_request(|k| query.get(k).cloned());
    let body = format::encode(format, &out.schema, &out.batches, stats, limited, options)
        .map_err(|e| ApiError::json(format.error_status(), e))?;
    super::within_result_limit(&state, &body)?;
    let mut r = (StatusCode::OK, body).into_response();
    r.extensions_mut().insert(crate::usage::Served {
        pipe_id: String::new(),
        read_rows: stats.rows_read,
        read_bytes: stats.bytes_read,
        result_rows: out.batches.iter().map(|b| b.num_rows() as u64).sum(),
        parameters: query
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "q" | "token"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        token: grant.token_id().to_string(),
        token_name: grant.token_name().to_string(),
        tenant: out.tenant.clone(),
    });
    if let Some(d) = decision {
        crate::limits::apply(&d, r.headers_mut());
    }
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    let db =
        serde_json::json!({"elapsed": stats.elapsed, "rows_read": stats.rows_read, "bytes_read": stats.bytes_read});
    if let Ok(v) = HeaderValue::from_str(&db.to_string()) {
        r.headers_mut().insert("x-db-statistics", v);
    }
    if !out.ignored_settings.is_empty() {
        let warnings: Vec<String> = out
            .ignored_settings
            .iter()
            .map(|s| format!("The setting '{s}' is not supported and was ignored"))
            .collect();
        if let Ok(v) = HeaderValue::from_str(&serde_json::json!(warnings).to_string()) {
            r.headers_mut().insert("x-tb-warning", v);
        }
    }
    Ok(r)
}

/// Spec §14.3: every table the query names must be covered by the grant (the engine enforces
/// the same when it plans; this answers with the spec's 403 first).
fn may_read(state: &AppState, grant: &access::Grant, sql: &str, pipeline: Option<&str>) -> Result<(), ApiError> {
    if grant.reads_all() {
        return Ok(());
    }
    let docs = &state.config.docs_base_url;
    let denied = |resource: &str| ApiError {
        message: format!("{}: {resource}", access::AuthError::NoAccess),
        ..ApiError::forbidden(docs)
    };
    let pipes = state.workspace.pipes();
    let mut nodes: Vec<String> = Vec::new();
    if let Some(p) = pipeline {
        let fixed = grant.pipe_read(p).ok_or_else(|| denied(p))?;
        access::grant::check_fixed_params(&fixed).map_err(|e| ApiError::auth(&e, docs))?;
        if let Some(stored) = pipes.get(p) {
            nodes.extend(stored.pipe.nodes.iter().map(|n| n.name.clone()));
        }
        nodes.push("_".into());
    }
    for table in datafiles::table_references(sql) {
        if nodes.contains(&table) {
            continue;
        }
        let base = table.strip_suffix(engine::workspace::QUARANTINE).unwrap_or(&table);
        if state.workspace.datasource(&table).is_some() || state.workspace.datasource(base).is_some() {
            let name = if state.workspace.datasource(&table).is_some() { table.as_str() } else { base };
            grant.datasource_read(name).ok_or_else(|| denied(&table))?;
        } else if pipes.get(&table).is_some() {
            let fixed = grant.pipe_read(&table).ok_or_else(|| denied(&table))?;
            access::grant::check_fixed_params(&fixed).map_err(|e| ApiError::auth(&e, docs))?;
        } else if table.contains('.') {
            return Err(denied(&table));
        }
    }
    Ok(())
}

pub(crate) fn template_error(state: &AppState, e: &template::Error) -> ApiError {
    let body = e.body(&state.config.docs_base_url);
    let documentation = body.get("documentation").and_then(|d| d.as_str()).map(str::to_string);
    let message = body.get("error").and_then(|d| d.as_str()).map_or_else(|| body.to_string(), str::to_string);
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    ApiError { status, message, plain: false, documentation }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_keyword() {
        assert_eq!(split_format("SELECT 1 FORMAT JSON"), ("SELECT 1".to_string(), Some("JSON".to_string())));
        assert_eq!(split_format("select 1 format CSV;"), ("select 1".to_string(), Some("CSV".to_string())));
        assert_eq!(split_format("SELECT format FROM t"), ("SELECT format FROM t".to_string(), None));
        assert_eq!(first_keyword("-- c\n (SELECT 1)"), "SELECT");
        assert_eq!(first_keyword("insert into t values (1)"), "INSERT");
    }
}
