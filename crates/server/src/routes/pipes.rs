//! Pipes over HTTP (spec `analytics-api.md` §10–11): endpoints
//! `GET|POST /v0/pipes/{name}.{json,csv,ndjson,parquet}` with the spec's parameter rules, and
//! pipe management (`GET /v0/pipes`, `GET /v0/pipes/{name}[.pipe]`, `POST /v0/pipes`,
//! `DELETE /v0/pipes/{name}`). Admin token for now; scoped grants come with the access layer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use engine::pipes::PipeError;
use serde_json::{Value as Json, json};

use access::{AuthError, Scope};

use crate::AppState;
use crate::error::ApiError;
use crate::format::{self, Format, Statistics};

const FORMATS: &str = "csv, json, ndjson, parquet, prometheus";
const MAX_Q: usize = 8 * 1024;
/// Names that are never template parameters of an endpoint call.
const NOT_PARAMS: [&str; 7] = [
    "token",
    "q",
    "format",
    "output_format_json_quote_64bit_integers",
    "output_format_json_quote_denormals",
    "output_format_parquet_string_as_string",
    "max_threads",
];

fn error(status: StatusCode, msg: impl Into<String>) -> ApiError {
    ApiError::json(status, msg)
}

/// Query-string pairs in order (repeated keys kept).
fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| super::sql::form_pairs(q.as_bytes())).unwrap_or_default()
}

/// `GET /v0/pipes/{file}`: an endpoint call (`name.json`…), the datafile (`name.pipe`) or the
/// pipe's JSON (`name`).
pub(crate) async fn get(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = pairs(raw.as_deref());
    if file == "openapi.json" {
        let grant = match super::grant(&state, &token_arg(&query), &headers) {
            Ok(g) => g,
            Err(e) => return e.into_response(),
        };
        return super::json_response(StatusCode::OK, &crate::openapi::document(&state, &grant).await);
    }
    let result = match file.rsplit_once('.') {
        Some((name, "pipe")) => datafile(&state, name, &query, &headers),
        Some((name, ext)) => endpoint(&state, name, ext, query, &headers, None).await,
        None => describe(&state, &file, &query, &headers),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /v0/pipes/{name}.{format}`: parameters also from a form or JSON body.
pub(crate) async fn post(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut query = pairs(raw.as_deref());
    // A `token` field of a form body counts as the token argument (spec §3.1).
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if form && !query.iter().any(|(k, _)| k == "token") {
        query.extend(super::sql::form_pairs(&body).into_iter().filter(|(k, _)| k == "token").take(1));
    }
    let Some((name, ext)) = file.rsplit_once('.') else {
        return error(StatusCode::NOT_FOUND, "Not found").into_response();
    };
    endpoint(&state, name, ext, query, &headers, Some((&headers, &body)))
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// The `token` argument of a query string, as the token lookup takes it.
fn token_arg(query: &[(String, String)]) -> HashMap<String, String> {
    query.iter().filter(|(k, _)| k == "token").take(1).cloned().collect()
}

/// A static token that is admin or holds a scope `allowed` accepts.
fn require(
    state: &AppState,
    query: &[(String, String)],
    headers: &HeaderMap,
    allowed: impl Fn(&Scope) -> bool,
) -> Result<Arc<access::Grant>, ApiError> {
    super::require(state, &token_arg(query), headers, allowed)
}

/// Reading pipe `name`'s definition: `PIPES:READ` (or `PIPES:CREATE`, which may change it).
fn may_read(name: &str) -> impl Fn(&Scope) -> bool + '_ {
    move |s| matches!(s, Scope::PipesRead { pipe, .. } if pipe == name) || *s == Scope::PipesCreate
}

async fn endpoint(
    state: &Arc<AppState>,
    name: &str,
    ext: &str,
    query: Vec<(String, String)>,
    headers: &HeaderMap,
    post: Option<(&HeaderMap, &Bytes)>,
) -> Result<Response, ApiError> {
    let format = match ext {
        "json" => Format::Json,
        "csv" | "csvwithnames" => Format::CsvWithNames,
        "ndjson" => Format::JsonEachRow,
        "parquet" => Format::Parquet,
        "prometheus" => Format::Prometheus,
        other => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                format!("Format '{other}' not supported, it must be one of {FORMATS}"),
            ));
        }
    };
    // Spec §10.2: authenticate, find the pipe, check the scope and its fixed params.
    let docs = &state.config.docs_base_url;
    let grant = super::grant(state, &token_arg(&query), headers)?;
    let Some(stored) = state.workspace.pipes().get(name) else {
        return Err(error(StatusCode::NOT_FOUND, format!("The pipe '{name}' does not exist")));
    };
    let fixed = grant.pipe_read(name).ok_or_else(|| ApiError::auth(&AuthError::NoAccess, docs))?;
    access::grant::check_fixed_params(&fixed).map_err(|e| ApiError::auth(&e, docs))?;
    // Parameters: the query string, then a form body, then a JSON object body (later wins).
    let array_params: Vec<String> = stored
        .pipe
        .nodes
        .iter()
        .filter_map(|n| n.template.as_ref())
        .flat_map(|t| t.parameters().iter().filter(|p| p.ty.starts_with("Array")).map(|p| p.name.clone()))
        .collect();
    let mut values: Vec<(String, template::Value)> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut add = |k: String, v: template::Value, values: &mut Vec<(String, template::Value)>| match seen.get(&k) {
        Some(&i) => values[i].1 = v,
        None => {
            seen.insert(k.clone(), values.len());
            values.push((k, v));
        }
    };
    let mut string_params: Vec<(String, String)> = Vec::new();
    for (k, v) in &query {
        match string_params.iter_mut().find(|(n, _)| n == k) {
            // Repeated keys: the first value, or every value for an `Array()` parameter.
            Some((_, existing)) if array_params.contains(k) => {
                existing.push(',');
                existing.push_str(v);
            }
            Some(_) => {}
            None => string_params.push((k.clone(), v.clone())),
        }
    }
    if let Some((h, body)) = post {
        let ct = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        if ct.starts_with("application/x-www-form-urlencoded") {
            for (k, v) in super::sql::form_pairs(body) {
                string_params.retain(|(n, _)| *n != k);
                string_params.push((k, v));
            }
        }
        for (k, v) in string_params.drain(..) {
            add(k, template::Value::from(v), &mut values);
        }
        if !body.is_empty() && !ct.starts_with("application/x-www-form-urlencoded") {
            match serde_json::from_slice::<Json>(body) {
                Ok(Json::Object(o)) => {
                    for (k, v) in o {
                        if !v.is_null() {
                            add(k, template::Value::from(&v), &mut values);
                        }
                    }
                }
                Ok(_) if ct.starts_with("application/json") => {
                    return Err(error(StatusCode::BAD_REQUEST, "The request body must be a JSON object"));
                }
                _ => {}
            }
        }
    } else {
        for (k, v) in string_params.drain(..) {
            add(k, template::Value::from(v), &mut values);
        }
    }
    let lookup = |k: &str| {
        values.iter().find(|(n, _)| n == k).and_then(|(_, v)| match v {
            template::Value::Str(s) => Some(s.to_string()),
            template::Value::Int(i) => Some(i.to_string()),
            template::Value::Float(f) => Some(f.to_string()),
            template::Value::Bool(b) => Some(u8::from(*b).to_string()),
            _ => None,
        })
    };
    for flag in [
        "output_format_json_quote_64bit_integers",
        "output_format_json_quote_denormals",
        "output_format_parquet_string_as_string",
    ] {
        if let Some(v) = lookup(flag).filter(|v| v != "0" && v != "1") {
            return Err(error(StatusCode::BAD_REQUEST, format!("Invalid value '{v}' for '{flag}', it must be 0 or 1")));
        }
    }
    if let Some(v) = lookup("max_threads").filter(|v| v.parse::<u32>().map_or(true, |n| n == 0)) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("Invalid value '{v}' for 'max_threads', it must be an integer >= 1"),
        ));
    }
    let options = format::Options::from_request(lookup);
    let q = lookup("q");
    if let Some(q) = &q {
        if q.len() > MAX_Q {
            return Err(error(StatusCode::BAD_REQUEST, "The maximum size for a SQL query is 8KB."));
        }
        if q.trim_start().starts_with('%') {
            return Err(error(StatusCode::BAD_REQUEST, "'q' parameter doesn't support templates"));
        }
        if q.to_ascii_uppercase().split_whitespace().any(|w| w == "FORMAT") {
            return Err(error(StatusCode::BAD_REQUEST, "Use the URL extension to choose the output format"));
        }
    }
    let mut values: Vec<(String, template::Value)> =
        values.into_iter().filter(|(k, _)| !NOT_PARAMS.contains(&k.as_str())).collect();
    // The token's fixed params go on top of whatever the request said (the engine applies
    // them again; here they also reach the usage log).
    for (k, v) in fixed.iter().filter(|(k, _)| !NOT_PARAMS.contains(&k.as_str())) {
        values.retain(|(n, _)| n != k);
        values.push((k.clone(), template::Value::from(v)));
    }
    let decision = match super::rate_limit(state, &grant, name).await {
        Ok(d) => d,
        Err(refused) => return Ok(*refused),
    };
    let policy = super::read_policy(&grant);
    let logged: Vec<(String, String)> = values
        .iter()
        .map(|(k, v)| {
            let text = match v {
                template::Value::Str(s) => s.to_string(),
                other => format!("{other:?}"),
            };
            (k.clone(), text)
        })
        .collect();
    let params: template::Params = values.into_iter().collect();
    let started = Instant::now();
    let (st, pipe) = (state.clone(), name.to_string());
    let query = async move {
        st.workspace.query_pipe_as(&pipe, &params, q.as_deref(), &policy).await.map_err(|e| pipe_error(&st, &e))
    };
    let out = super::limited(state, query).await?;
    let stats = Statistics {
        elapsed: started.elapsed().as_secs_f64(),
        rows_read: out.output.rows_read,
        bytes_read: out.output.bytes_read,
    };
    let limited = out.sql.to_ascii_uppercase().split_whitespace().any(|w| w == "LIMIT");
    let body = format::encode(format, &out.output.schema, &out.output.batches, stats, limited, options)
        .map_err(|e| error(format.error_status(), e))?;
    super::within_result_limit(state, &body)?;
    let mut r = (StatusCode::OK, body).into_response();
    r.extensions_mut().insert(crate::usage::Served {
        pipe_id: name.to_string(),
        read_rows: stats.rows_read,
        read_bytes: stats.bytes_read,
        result_rows: out.output.batches.iter().map(|b| b.num_rows() as u64).sum(),
        parameters: logged,
        token: grant.token_id().to_string(),
        token_name: grant.token_name().to_string(),
        tenant: out.output.tenant.clone(),
    });
    if let Some(d) = decision {
        crate::limits::apply(&d, r.headers_mut());
    }
    let content_type = match format {
        Format::CsvWithNames => "text/csv; charset=utf-8",
        Format::JsonEachRow => "application/x-ndjson",
        Format::Parquet => "application/vnd.apache.parquet",
        Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        _ => "application/json",
    };
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let mut warnings: Vec<String> =
        out.warnings.iter().map(|w| format!("The parameter name '{w}' is reserved")).collect();
    warnings.extend(
        out.output.ignored_settings.iter().map(|s| format!("The setting '{s}' is not supported and was ignored")),
    );
    if !warnings.is_empty()
        && let Ok(v) = HeaderValue::from_str(&json!(warnings).to_string())
    {
        r.headers_mut().insert("x-tb-warning", v);
    }
    Ok(r)
}

/// An engine error of a pipe request as the spec's response.
fn pipe_error(state: &AppState, e: &engine::Error) -> ApiError {
    match e {
        engine::Error::Pipe(PipeError::NotFound(_) | PipeError::NoEndpoint(_)) => {
            error(StatusCode::NOT_FOUND, e.to_string())
        }
        engine::Error::Pipe(PipeError::Template(t)) => super::sql::template_error(state, t),
        other => ApiError::engine(other, false),
    }
}

fn datafile(
    state: &AppState,
    name: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    require(state, query, headers, may_read(name))?;
    let stored = existing(state, name)?;
    let mut r = stored.text.clone().into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    Ok(r)
}

/// The pipe JSON of §11.1.
fn pipe_json(state: &AppState, stored: &engine::pipes::StoredPipe, with_sql: bool) -> Json {
    let pipe = &stored.pipe;
    let endpoint = pipe.endpoint().map(|n| n.name.clone());
    let kind = if endpoint.is_some() { "endpoint" } else { "default" };
    let mut params: Vec<Json> = Vec::new();
    for n in &pipe.nodes {
        for p in n.template.as_ref().map(|t| t.parameters().to_vec()).unwrap_or_default() {
            if !params.iter().any(|q| q["name"] == p.name.as_str()) {
                params.push(serde_json::to_value(&p).unwrap_or_default());
            }
        }
    }
    let nodes: Vec<Json> = pipe
        .nodes
        .iter()
        .map(|n| {
            let mut node = json!({
                "id": format!("{}_{}", pipe.name, n.name),
                "name": n.name,
                "description": n.description,
                "node_type": n.kind.name(),
                "dependencies": datafiles::table_references(&n.sql),
                "params": n.template.as_ref().map(|t| serde_json::to_value(t.parameters()).unwrap_or_default()).unwrap_or(json!([])),
            });
            if with_sql {
                node["sql"] = json!(n.sql);
            }
            node
        })
        .collect();
    let base = format!("http://{}", state.config.listen);
    json!({
        "id": pipe.name,
        "name": pipe.name,
        "description": pipe.description,
        "type": kind,
        "endpoint": endpoint.map(|e| format!("{}_{e}", pipe.name)),
        "url": format!("{base}/v0/pipes/{}.json", pipe.name),
        "content": if with_sql { json!(stored.text) } else { Json::Null },
        "path": format!("pipes/{}.pipe", pipe.name),
        "workspace_id": state.config.workspace_id,
        "params": params,
        "nodes": nodes,
    })
}

fn describe(
    state: &AppState,
    name: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    require(state, query, headers, may_read(name))?;
    if query.iter().any(|(k, v)| k == "format" && v == "pipe") {
        return datafile(state, name, query, headers);
    }
    let stored = existing(state, name)?;
    Ok(super::json_response(StatusCode::OK, &pipe_json(state, &stored, true)))
}

/// `GET /v0/pipes` (and `/v1/pipes`).
pub(crate) async fn list(State(state): State<Arc<AppState>>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let query = pairs(raw.as_deref());
    let grant = match require(&state, &query, &headers, |_| true) {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    let pipes: Vec<Json> = state
        .workspace
        .pipes()
        .all()
        .iter()
        .filter(|p| grant.is_admin() || grant.scopes.iter().any(may_read(&p.pipe.name)))
        .map(|p| pipe_json(&state, p, false))
        .collect();
    super::json_response(StatusCode::OK, &json!({ "pipes": pipes }))
}

/// `POST /v0/pipes`: a JSON body `{"name", "description", "nodes": [{"name", "sql", "type", …}]}`
/// or query parameters `name` and `sql` for a one-node pipe; `force=true` replaces.
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create_inner(&state, pairs(raw.as_deref()), &headers, &body).await.unwrap_or_else(IntoResponse::into_response)
}

async fn create_inner(
    state: &Arc<AppState>,
    mut query: Vec<(String, String)>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    require(state, &query, headers, |s| *s == Scope::PipesCreate)?;
    let get = |q: &[(String, String)], k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let spec: Json = if body.is_empty() {
        json!({"name": get(&query, "name"), "nodes": [{"name": format!("{}_0", get(&query, "name").unwrap_or_default()), "sql": get(&query, "sql")}]})
    } else if let Ok(v @ Json::Object(_)) = serde_json::from_slice::<Json>(body) {
        v
    } else {
        query.extend(super::sql::form_pairs(body));
        json!({"name": get(&query, "name"), "nodes": [{"name": format!("{}_0", get(&query, "name").unwrap_or_default()), "sql": get(&query, "sql")}]})
    };
    let name = spec["name"].as_str().unwrap_or_default().to_string();
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(error(StatusCode::BAD_REQUEST, "Invalid pipe name"));
    }
    let force = get(&query, "force").is_some_and(|f| f == "true");
    if !force && state.workspace.pipes().get(&name).is_some() {
        return Err(error(StatusCode::CONFLICT, format!("Pipe \"{name}\" already exists")));
    }
    let text = datafile_text(&spec)?;
    let ws = state.workspace.clone();
    let (n2, t2) = (name.clone(), text);
    tokio::task::spawn_blocking(move || ws.deploy_pipe(&n2, &t2))
        .await
        .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?
        .map_err(|e| ApiError::engine(&e, false))?;
    let stored =
        state.workspace.pipes().get(&name).ok_or_else(|| error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?;
    state.sync_datafile_tokens().await;
    Ok(super::json_response(StatusCode::OK, &pipe_json(state, &stored, true)))
}

/// A `.pipe` text from the JSON pipe of the classic push.
fn datafile_text(spec: &Json) -> Result<String, ApiError> {
    let mut text = String::new();
    if let Some(d) = spec["description"].as_str().filter(|d| !d.is_empty()) {
        text.push_str(&format!("DESCRIPTION >\n    {}\n\n", d.replace('\n', "\n    ")));
    }
    for t in spec["tokens"].as_array().into_iter().flatten().filter_map(Json::as_str) {
        text.push_str(&format!("TOKEN \"{}\" READ\n", t.replace('"', "")));
    }
    let tags: Vec<&str> = spec["tags"].as_array().into_iter().flatten().filter_map(Json::as_str).collect();
    if !tags.is_empty() {
        text.push_str(&format!("TAGS \"{}\"\n", tags.join(", ").replace('"', "")));
    }
    let nodes = spec["nodes"]
        .as_array()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "A pipe needs at least one node"))?;
    for n in nodes {
        let name = n["name"].as_str().ok_or_else(|| error(StatusCode::BAD_REQUEST, "Every node needs a name"))?;
        let sql = n["sql"]
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| error(StatusCode::BAD_REQUEST, format!("Node '{name}' needs SQL")))?;
        text.push_str(&format!("NODE {name}\n"));
        if let Some(d) = n["description"].as_str().filter(|d| !d.is_empty()) {
            text.push_str(&format!("DESCRIPTION >\n    {}\n", d.replace('\n', "\n    ")));
        }
        text.push_str("SQL >\n");
        for line in sql.lines() {
            text.push_str("    ");
            text.push_str(line);
            text.push('\n');
        }
        if let Some(t) = n["type"].as_str().or(n["node_type"].as_str()).filter(|t| *t != "standard" && *t != "default")
        {
            text.push_str(&format!("\nTYPE {t}\n"));
        }
        for key in ["datasource", "target_datasource", "copy_schedule"] {
            if let Some(v) = n[key].as_str() {
                text.push_str(&format!("{} {v}\n", key.to_ascii_uppercase()));
            }
        }
        text.push('\n');
    }
    Ok(text)
}

/// `DELETE /v0/pipes/{name}` → 204.
pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = pairs(raw.as_deref());
    if let Err(e) = require(&state, &query, &headers, |s| matches!(s, Scope::PipesDrop(p) if *p == name)) {
        return e.into_response();
    }
    let (ws, n) = (state.workspace.clone(), name.clone());
    let dropped = tokio::task::spawn_blocking(move || ws.drop_pipe(&n))
        .await
        .unwrap_or_else(|e| Err(engine::Error::Damaged(e.to_string())));
    match dropped {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("The pipe '{name}' does not exist")).into_response(),
        Err(e) => ApiError::engine(&e, false).into_response(),
    }
}

/// A stored pipe as the JSON of the classic push (what [`datafile_text`] writes back).
fn spec_of(pipe: &datafiles::Pipe) -> Json {
    json!({
        "name": pipe.name,
        "description": pipe.description,
        "tokens": pipe.tokens,
        "tags": pipe.tags,
        "nodes": pipe.nodes.iter().map(|n| json!({
            "name": n.name,
            "description": n.description,
            "sql": n.sql,
            "type": n.kind.name(),
            "datasource": n.datasource,
            "target_datasource": n.target_datasource,
            "copy_schedule": n.copy_schedule,
        })).collect::<Vec<_>>(),
    })
}

/// Deploys `spec` as pipe `name` and answers its JSON.
async fn redeploy(state: &Arc<AppState>, name: &str, spec: &Json) -> Result<Response, ApiError> {
    let text = datafile_text(spec)?;
    let (ws, n) = (state.workspace.clone(), name.to_string());
    tokio::task::spawn_blocking(move || ws.deploy_pipe(&n, &text))
        .await
        .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?
        .map_err(|e| ApiError::engine(&e, false))?;
    let stored =
        state.workspace.pipes().get(name).ok_or_else(|| error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?;
    state.sync_datafile_tokens().await;
    Ok(super::json_response(StatusCode::OK, &pipe_json(state, &stored, true)))
}

/// `PUT /v0/pipes/{name}`: replaces the pipe with the JSON body (as `POST /v0/pipes`); a body
/// with only `description` changes just that.
pub(crate) async fn update(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = pairs(raw.as_deref());
    let result = async {
        require(&state, &query, &headers, |s| *s == Scope::PipesCreate)?;
        let stored = existing(&state, &name)?;
        let given: Json = serde_json::from_slice(&body).unwrap_or_else(|_| {
            Json::Object(super::sql::form_pairs(&body).into_iter().map(|(k, v)| (k, Json::String(v))).collect())
        });
        let mut spec = spec_of(&stored.pipe);
        if given.get("nodes").is_some() {
            spec["nodes"] = given["nodes"].clone();
        }
        if let Some(d) = given.get("description") {
            spec["description"] = d.clone();
        }
        redeploy(&state, &name, &spec).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST|DELETE /v0/pipes/{pipe}/nodes/{node}/endpoint`: publishes that node as the endpoint
/// (one endpoint per pipe) or unpublishes it.
pub(crate) async fn publish(
    State(state): State<Arc<AppState>>,
    Path((name, node)): Path<(String, String)>,
    method: axum::http::Method,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = pairs(raw.as_deref());
    let result = async {
        require(&state, &query, &headers, |s| *s == Scope::PipesCreate)?;
        let stored = existing(&state, &name)?;
        if !stored.pipe.nodes.iter().any(|n| n.name == node) {
            return Err(error(StatusCode::NOT_FOUND, format!("Node '{node}' does not exist in pipe '{name}'")));
        }
        let publishing = method == axum::http::Method::POST;
        let mut spec = spec_of(&stored.pipe);
        for n in spec["nodes"].as_array_mut().into_iter().flatten() {
            let this = n["name"] == node.as_str();
            let kind = n["type"].as_str().unwrap_or("standard").to_string();
            if this && publishing {
                n["type"] = json!("endpoint");
            } else if kind == "endpoint" && (publishing || this) {
                n["type"] = json!("standard");
            }
        }
        redeploy(&state, &name, &spec).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The pipe called `name`, or the spec's 404.
fn existing(state: &AppState, name: &str) -> Result<Arc<engine::pipes::StoredPipe>, ApiError> {
    state
        .workspace
        .pipes()
        .get(name)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("The pipe '{name}' does not exist")))
}
