//! `/v0/datasources`: create from a schema, list, get (info JSON or the `.datasource` text),
//! append NDJSON, truncate (spec `analytics-api.md` §13).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use datafiles::{ColumnDefault, Datasource};
use serde_json::{Value as Json, json};

use access::Scope;

use crate::AppState;
use crate::error::ApiError;
use engine::workspace::Workspace;
use engine::workspace::{LoadMode, QUARANTINE};

const NAME_HELP: &str =
    "Names must start with a letter or underscore and contain only letters, numbers and underscores.";

/// The Data Sources API's scope checks (spec §13.6 messages): a static token that is admin or
/// holds the scope `action` needs.
fn require(
    state: &AppState,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    action: Action<'_>,
) -> Result<Arc<access::Grant>, ApiError> {
    let g = super::grant(state, query, headers)?;
    let docs = &state.config.docs_base_url;
    g.static_only().map_err(|e| ApiError::auth(&e, docs))?;
    let ok = match action {
        Action::Any => true,
        Action::See(ds) => g.require(|s| s.resource() == Some(ds) && s.text().starts_with("DATASOURCES:")).is_ok(),
        Action::Create | Action::Replace => g.require(|s| *s == Scope::DatasourcesCreate).is_ok(),
        Action::Append(ds) => g.require(|s| matches!(s, Scope::DatasourcesAppend(d) if d == ds)).is_ok(),
        Action::Drop(ds) => g.require(|s| matches!(s, Scope::DatasourcesDrop(d) if d == ds)).is_ok(),
        Action::Admin => g.is_admin(),
    };
    if ok {
        return Ok(g);
    }
    let message = match action {
        Action::Create => {
            "Token does not have DATASOURCES:CREATE scope, create mode requires the DATASOURCES:CREATE scope".to_string()
        }
        Action::Replace => "Token does not have DATASOURCES:CREATE scope, replace mode requires the DATASOURCES:CREATE scope because is a destructive action".to_string(),
        Action::Append(ds) => format!("Token does not have DATASOURCES:APPEND scope for Data Source \"{ds}\""),
        Action::Drop(ds) => format!("User does not have permissions to drop Data Source \"{ds}\", set DROP scope"),
        _ => access::AuthError::NoAccess.to_string(),
    };
    Err(ApiError { message, ..ApiError::forbidden(docs) })
}

/// What a Data Sources API request does, for its scope check.
#[derive(Debug, Clone, Copy)]
enum Action<'a> {
    /// Any static token (listing, jobs).
    Any,
    /// Inspect a data source: any scope naming it.
    See(&'a str),
    Create,
    Replace,
    Append(&'a str),
    Drop(&'a str),
    /// Schema changes.
    Admin,
}

fn not_found(name: &str) -> ApiError {
    ApiError::json(StatusCode::NOT_FOUND, format!("Data Source '{name}' does not exist"))
}

fn valid_name(name: &str) -> bool {
    const RESERVED: [&str; 8] = ["tinybird", "system", "organization", "select", "from", "where", "table", "database"];
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 256
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.ends_with(QUARANTINE)
        && !RESERVED.contains(&name.to_ascii_lowercase().as_str())
}

/// The data source info object (spec §13.3).
async fn info(state: &AppState, name: &str, ds: &Datasource) -> Json {
    let stats = state.workspace.stats(name).await;
    let quarantine_rows = state.workspace.stats(&format!("{name}{QUARANTINE}")).await.rows;
    let columns: Vec<Json> = ds
        .columns
        .iter()
        .map(|c| {
            let default_value = c.default.as_ref().map(|d| match d {
                ColumnDefault::Default(e) => format!("DEFAULT {e}"),
                ColumnDefault::Materialized(e) => format!("MATERIALIZED {e}"),
                ColumnDefault::Alias(e) => format!("ALIAS {e}"),
            });
            json!({
                "name": c.name, "type": c.type_text, "jsonpath": c.json_path.as_ref().map(|p| p.text.clone()),
                "default_value": default_value, "codec": c.codec, "nullable": c.ty.is_nullable(),
                "normalized_name": c.name, "auto": false,
            })
        })
        .collect();
    let sql_schema = ds
        .columns
        .iter()
        .map(|c| match &c.json_path {
            Some(p) => format!("`{}` {} `json:{}`", c.name, c.type_text, p.text),
            None => format!("`{}` {}", c.name, c.type_text),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let e = &ds.engine;
    let mut engine_full = e.kind.name().to_string();
    if let Some(p) = &e.partition_key {
        engine_full.push_str(&format!(" PARTITION BY {p}"));
    }
    engine_full.push_str(&format!(" ORDER BY ({})", e.sorting_key));
    if let Some(t) = &e.ttl {
        engine_full.push_str(&format!(" TTL {t}"));
    }
    let id: String = {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in name.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
        }
        format!("t_{h:016x}{:016x}", h.rotate_left(17) ^ 0x9e3779b97f4a7c15)
    };
    json!({
        "id": id,
        "name": name,
        "description": ds.description.clone().unwrap_or_default(),
        "type": if ds.is_ndjson() { "ndjson" } else { "csv" },
        "cluster": "aviary",
        "engine": {"engine": e.kind.name(), "engine_full": engine_full, "sorting_key": e.sorting_key,
                   "partition_key": e.partition_key.clone().unwrap_or_default(), "ttl": e.ttl.clone().unwrap_or_default()},
        "schema": {"columns": columns, "sql_schema": sql_schema},
        "statistics": {"bytes": stats.bytes, "row_count": stats.rows},
        "used_by": [],
        "created_at": "", "updated_at": "", "errors_discarded_at": null,
        "headers": {}, "indexes": [],
        "last_commit": {"content_sha": "", "path": "", "status": "ok"},
        "new_columns_detected": false, "project": null, "replicated": false, "shared_with": [],
        "tags": {}, "version": ds.version.unwrap_or(0),
        "quarantine_rows": quarantine_rows,
        "tenant_key": ds.tenant_key,
    })
}

pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let grant = match require(&state, &query, &headers, Action::Any) {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    let mut all: Vec<Json> = Vec::new();
    for n in state.workspace.datasources() {
        if !(grant.is_admin() || grant.scopes.iter().any(|s| s.resource() == Some(n.as_str()))) {
            continue;
        }
        if let Some(d) = state.workspace.datasource(&n) {
            all.push(info(&state, &n, &d).await);
        }
    }
    super::json_response(StatusCode::OK, &json!({ "datasources": all }))
}

pub(crate) async fn get_one(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let ds_name = name.strip_suffix(".datasource").unwrap_or(&name);
    if let Err(e) = require(&state, &query, &headers, Action::See(ds_name)) {
        return e.into_response();
    }
    if let Some(ds_name) = name.strip_suffix(".datasource") {
        return match state.workspace.datasource_text(ds_name) {
            Some(text) => {
                let mut r = (StatusCode::OK, text).into_response();
                r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
                r
            }
            None => not_found(ds_name).into_response(),
        };
    }
    match state.workspace.datasource(&name) {
        Some(ds) => super::json_response(StatusCode::OK, &info(&state, &name, &ds).await),
        None => not_found(&name).into_response(),
    }
}

/// The `.datasource` text for a create-from-schema request.
fn datafile_from_params(p: &HashMap<String, String>) -> Result<String, ApiError> {
    let schema = p.get("schema").filter(|s| !s.trim().is_empty()).ok_or_else(|| {
        ApiError::json(
            StatusCode::BAD_REQUEST,
            "schema is required to create a Data Source (or send events with a token that can create it)",
        )
    })?;
    let mut text = String::new();
    if let Some(d) = p.get("description") {
        text.push_str(&format!("DESCRIPTION >\n    {}\n\n", d.replace('\n', "\n    ")));
    }
    text.push_str("SCHEMA >\n");
    for line in schema.split('\n') {
        text.push_str("    ");
        text.push_str(line.trim());
        text.push('\n');
    }
    text.push('\n');
    let engine_params = [
        ("engine", "ENGINE"),
        ("engine_sorting_key", "ENGINE_SORTING_KEY"),
        ("engine_partition_key", "ENGINE_PARTITION_KEY"),
        ("engine_primary_key", "ENGINE_PRIMARY_KEY"),
        ("engine_sampling_key", "ENGINE_SAMPLING_KEY"),
        ("engine_ttl", "ENGINE_TTL"),
        ("engine_settings", "ENGINE_SETTINGS"),
        ("engine_ver", "ENGINE_VER"),
        ("engine_is_deleted", "ENGINE_IS_DELETED"),
        ("engine_sign", "ENGINE_SIGN"),
        ("engine_version", "ENGINE_VERSION"),
        ("engine_columns", "ENGINE_COLUMNS"),
        ("tenant_key", "TENANT_KEY"),
    ];
    for (param, keyword) in engine_params {
        if let Some(v) = p.get(param).filter(|v| !v.trim().is_empty()) {
            text.push_str(&format!("{keyword} \"{}\"\n", v.replace('"', "\\\"")));
        }
    }
    if let Some(idx) = p.get("indexes").filter(|v| !v.trim().is_empty()) {
        text.push_str("\nINDEXES >\n");
        for line in idx.split('\n') {
            text.push_str(&format!("    {}\n", line.trim()));
        }
    }
    Ok(text)
}

/// Appends (or replaces with) a file's rows in `format`; the append response (spec §13.1).
async fn append_rows(
    state: &Arc<AppState>,
    name: &str,
    format: &str,
    body: Vec<u8>,
    delimiter: u8,
    mode: LoadMode,
) -> Result<Response, ApiError> {
    let ws = state.workspace.clone();
    let Some(ds) = ws.datasource(name) else {
        return Err(match mode {
            LoadMode::Replace | LoadMode::ReplaceWhere(_) => ApiError::json(
                StatusCode::BAD_REQUEST,
                format!("Data Source \"{name}\" does not exist, can not replace a non existing Data Source"),
            ),
            LoadMode::Append => not_found(name),
        });
    };
    if body.is_empty() {
        return Err(ApiError::json(
            StatusCode::BAD_REQUEST,
            "Url or body payload should be sent. Are you doing a POST without data?",
        ));
    }
    if !state.room_to_ingest().await {
        return Err(ApiError::json(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service temporarily unavailable, no data ingested, please retry again",
        ));
    }
    let import_id = uuid::Uuid::new_v4().to_string();
    let (ws2, n2, id2) = (ws.clone(), name.to_string(), import_id.clone());
    let ingested = match format {
        "ndjson" | "json" => {
            if !ds.is_ndjson() {
                return Err(ApiError::json(StatusCode::BAD_REQUEST, "Data Source must be of type JSON"));
            }
            let text = String::from_utf8_lossy(&body).into_owned();
            tokio::task::spawn_blocking(move || ws2.load_ndjson(&n2, &text, &id2, mode)).await
        }
        "csv" => {
            let text = String::from_utf8_lossy(&body).into_owned();
            tokio::task::spawn_blocking(move || ws2.load_csv(&n2, &text, delimiter, &id2, mode)).await
        }
        "parquet" => tokio::task::spawn_blocking(move || ws2.load_parquet(&n2, body, mode)).await,
        other => {
            return Err(ApiError::json(
                StatusCode::BAD_REQUEST,
                format!("Invalid format \"{other}\", valid formats are csv, ndjson, parquet"),
            ));
        }
    }
    .map_err(|_| ApiError::json(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?
    .map_err(|e| ApiError::engine(&e, false))?;
    state.metrics.ingested(name, ingested.successful_rows, ingested.quarantined_rows);
    let mut info_json = info(state, name, &ds).await;
    if let Some(o) = info_json.as_object_mut() {
        o.remove("schema");
        o.remove("statistics");
        o.remove("indexes");
    }
    let lines = ingested.successful_rows + ingested.quarantined_rows;
    Ok(super::json_response(
        StatusCode::OK,
        &json!({
            "datasource": info_json, "import_id": import_id, "invalid_lines": 0,
            "quarantine_rows": ingested.quarantined_rows, "error": false,
            "blocks": [{"block_id": import_id, "process_return": [{"lines": lines, "parser": "aviary", "quarantine": ingested.quarantined_rows, "invalid_lines": 0}]}]
        }),
    ))
}

fn delimiter(query: &HashMap<String, String>) -> Result<u8, ApiError> {
    match query.get("dialect_delimiter") {
        None => Ok(b','),
        Some(d) if d.len() == 1 => Ok(d.as_bytes()[0]),
        Some(_) => Err(ApiError::json(StatusCode::BAD_REQUEST, "The dialect delimiter must be a 1-character string")),
    }
}

/// `POST /v0/datasources`: create from a schema, or append a file (multipart field `csv`,
/// `ndjson`, `parquet` or `file`, or the raw body).
pub(crate) async fn create(State(state): State<Arc<AppState>>, req: Request) -> Response {
    match create_inner(state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn create_inner(state: Arc<AppState>, req: Request) -> Result<Response, ApiError> {
    let mut query: HashMap<String, String> =
        req.uri().query().map(|q| super::sql::form_pairs(q.as_bytes()).into_iter().collect()).unwrap_or_default();
    let headers = req.headers().clone();
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let mut file: Option<Vec<u8>> = None;
    if content_type.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::json(StatusCode::BAD_REQUEST, e.body_text()))?;
        while let Some(field) =
            mp.next_field().await.map_err(|e| ApiError::json(StatusCode::BAD_REQUEST, e.body_text()))?
        {
            let fname = field.name().unwrap_or_default().to_string();
            let data = field.bytes().await.map_err(|e| ApiError::json(StatusCode::BAD_REQUEST, e.body_text()))?;
            if matches!(fname.as_str(), "csv" | "ndjson" | "parquet" | "file") {
                if fname != "file" && fname != "csv" {
                    query.entry("format".into()).or_insert(fname.clone());
                }
                file = Some(data.to_vec());
            } else {
                query.insert(fname, String::from_utf8_lossy(&data).into_owned());
            }
        }
    } else {
        let body = axum::body::to_bytes(req.into_body(), state.config.max_body_bytes)
            .await
            .map_err(|_| ApiError::json(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large"))?;
        if content_type.starts_with("application/x-www-form-urlencoded") {
            for (k, v) in super::sql::form_pairs(&body) {
                query.entry(k).or_insert(v);
            }
        } else if !body.is_empty() {
            file = Some(body.to_vec());
        }
    }
    let mode = query.get("mode").map_or("create", String::as_str).to_ascii_lowercase();
    let name = query.get("name").cloned().filter(|n| !n.is_empty());
    let action = match mode.as_str() {
        "append" => Action::Append(name.as_deref().unwrap_or_default()),
        "replace" => Action::Replace,
        _ => Action::Create,
    };
    require(&state, &query, &headers, action)?;
    if query.contains_key("schema") && mode != "create" {
        return Err(ApiError::json(StatusCode::BAD_REQUEST, "Schema creation is only compatible with mode=create"));
    }
    match mode.as_str() {
        "create" => {
            let Some(name) = name else {
                return Err(ApiError::json(
                    StatusCode::BAD_REQUEST,
                    "Data Source name must be set when creating with schema",
                ));
            };
            if query.contains_key("engine") && !query.contains_key("schema") {
                return Err(ApiError::json(
                    StatusCode::BAD_REQUEST,
                    "The engine parameter requires the schema parameter",
                ));
            }
            if !valid_name(&name) {
                return Err(ApiError::json(
                    StatusCode::BAD_REQUEST,
                    format!("Invalid Data Source name \"{name}\". {NAME_HELP}"),
                ));
            }
            if state.workspace.datasource(&name).is_some() {
                return Err(ApiError::json(
                    StatusCode::BAD_REQUEST,
                    format!("Data Source \"{name}\" already exists, use mode=append"),
                ));
            }
            let text = datafile_from_params(&query)?;
            let ws = state.workspace.clone();
            let n2 = name.clone();
            tokio::task::spawn_blocking(move || ws.deploy_datasource(&n2, &text))
                .await
                .map_err(|_| ApiError::json(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?
                .map_err(|e| ApiError::engine(&e, false))?;
            state.sync_datafile_tokens().await;
            let ds = match state.workspace.datasource(&name) {
                Some(d) => info(&state, &name, &d).await,
                None => Json::Null,
            };
            Ok(super::json_response(StatusCode::OK, &json!({ "datasource": ds })))
        }
        "append" | "replace" => {
            let load = load_mode(&mode, &query);
            let Some(name) = name else {
                return Err(ApiError::json(
                    StatusCode::BAD_REQUEST,
                    format!("Data source name must be set with mode={mode} (name=my_datasource)"),
                ));
            };
            let format = query.get("format").map_or("csv", String::as_str).to_ascii_lowercase();
            append_rows(&state, &name, &format, file.unwrap_or_default(), delimiter(&query)?, load).await
        }
        other => Err(ApiError::json(
            StatusCode::BAD_REQUEST,
            format!("Invalid mode \"{other}\", valid modes are create, append, replace"),
        )),
    }
}

/// The load mode of `mode=append|replace` (with `replace_condition`, only matching rows are
/// replaced).
fn load_mode(mode: &str, query: &HashMap<String, String>) -> LoadMode {
    match (mode, query.get("replace_condition").filter(|c| !c.trim().is_empty())) {
        ("append", _) => LoadMode::Append,
        (_, Some(condition)) => LoadMode::ReplaceWhere(condition.clone()),
        (_, None) => LoadMode::Replace,
    }
}

/// `POST /v1/datasources/{name}/append|replace?format=…`: the raw body is the file.
pub(crate) async fn load_raw(
    State(state): State<Arc<AppState>>,
    Path((name, action)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let needs = if action == "replace" { Action::Replace } else { Action::Append(&name) };
    if let Err(e) = require(&state, &query, &headers, needs) {
        return e.into_response();
    }
    let mode = match action.as_str() {
        "append" | "replace" => load_mode(&action, &query),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let format = query.get("format").map_or("csv", String::as_str).to_ascii_lowercase();
    let delimiter = match delimiter(&query) {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    append_rows(&state, &name, &format, body.to_vec(), delimiter, mode)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /v0/datasources/{name}/delete`: rows matching `delete_condition` removed (a job that
/// is done when this answers), or counted with `dry_run=true`.
pub(crate) async fn delete_rows(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(mut query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    super::add_form(&mut query, &body);
    if let Err(e) = require(&state, &query, &headers, Action::Drop(&name)) {
        return e.into_response();
    }
    if state.workspace.datasource(&name).is_none() {
        return ApiError::json(StatusCode::NOT_FOUND, format!("Data Source \"{name}\" does not exist")).into_response();
    }
    let Some(condition) = query.get("delete_condition").cloned().filter(|c| !c.trim().is_empty()) else {
        return ApiError::json(StatusCode::BAD_REQUEST, "The delete_condition='delete_statement' is mandatory")
            .into_response();
    };
    let dry_run = query.get("dry_run").is_some_and(|d| d == "true");
    let ws = state.workspace.clone();
    let (n2, c2) = (name.clone(), condition.clone());
    let result = tokio::task::spawn_blocking(move || ws.delete_where(&n2, &c2, dry_run)).await;
    let deleted = match result {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => {
            return ApiError::json(
                StatusCode::BAD_REQUEST,
                format!("Failed to apply delete_condition='{condition}': {e}"),
            )
            .into_response();
        }
        Err(_) => return ApiError::json(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
    };
    if dry_run {
        return super::json_response(StatusCode::OK, &json!({ "rows_to_be_deleted": deleted }));
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    let job = json!({
        "id": id, "job_id": id, "kind": "delete_data", "status": "done",
        "job_url": format!("/v0/jobs/{id}"), "delete_condition": condition,
        "created_at": now, "updated_at": now, "rows_affected": deleted,
        "datasource": {"name": name},
    });
    state.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, job.clone());
    super::json_response(StatusCode::OK, &job)
}

/// `GET /v0/jobs/{id}`.
pub(crate) async fn job(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = require(&state, &query, &headers, Action::Any) {
        return e.into_response();
    }
    let job = state.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&id).cloned();
    match job {
        Some(job) => super::json_response(StatusCode::OK, &job),
        None => ApiError::json(StatusCode::NOT_FOUND, format!("Job with id \"{id}\" not found")).into_response(),
    }
}

/// `DELETE /v0/datasources/{name}`: the data source, its quarantine and its data.
pub(crate) async fn drop(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let result = on_existing(&state, name, &query, &headers, |ws, name| ws.drop_datasource(&name)).await;
    result.map_or_else(IntoResponse::into_response, |()| StatusCode::NO_CONTENT.into_response())
}

/// `POST /v0/datasources/{name}/truncate`: every row, and the quarantine's.
pub(crate) async fn truncate(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let result = on_existing(&state, name, &query, &headers, |ws, name| {
        ws.truncate(&name)?;
        ws.truncate(&format!("{name}{QUARANTINE}"))?;
        Ok(())
    })
    .await;
    result.map_or_else(IntoResponse::into_response, |()| super::json_response(StatusCode::OK, &json!({})))
}

/// Runs `work` on the blocking pool for an admin request about an existing data source.
async fn on_existing(
    state: &Arc<AppState>,
    name: String,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    work: impl FnOnce(Arc<Workspace>, String) -> engine::Result<()> + Send + 'static,
) -> Result<(), ApiError> {
    require(state, query, headers, Action::Drop(&name))?;
    if state.workspace.datasource(&name).is_none() {
        return Err(not_found(&name));
    }
    let ws = state.workspace.clone();
    match tokio::task::spawn_blocking(move || work(ws, name)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ApiError::engine(&e, false)),
        Err(_) => Err(ApiError::json(StatusCode::INTERNAL_SERVER_ERROR, "internal error")),
    }
}

/// `text` with the top-level section `keyword` (a `KEYWORD >` block with its indented lines, or
/// a one-line `KEYWORD value`) replaced by `section`, or removed when `section` is empty; added
/// at the end when missing.
fn with_section(text: &str, keyword: &str, section: &str) -> String {
    let mut out = String::new();
    let mut replaced = false;
    let mut skipping = false;
    for line in text.lines() {
        let top_level = !line.is_empty() && !line.starts_with(char::is_whitespace);
        if top_level {
            skipping = line.split_whitespace().next() == Some(keyword);
            if skipping && !replaced {
                out.push_str(section);
                replaced = true;
            }
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !replaced {
        out.push('\n');
        out.push_str(section);
    }
    out
}

/// An indented block section: `KEYWORD >` and the lines of `body`.
fn block(keyword: &str, body: &str) -> String {
    let lines: String = body.split('\n').map(|l| format!("    {}\n", l.trim())).collect();
    format!("{keyword} >\n{lines}\n")
}

/// `POST /v0/datasources/{name}/alter`: form `schema` (the whole new column list), `ttl`,
/// `description`, `indexes`, `dry=true` → `{"operations": […], "datasource": {…}}`. Only
/// compatible changes are made (see `Workspace::alter_datasource`); others are a 400 that says why.
pub(crate) async fn alter(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(mut query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    super::add_form(&mut query, &body);
    alter_inner(&state, &name, &query, &headers).await.unwrap_or_else(IntoResponse::into_response)
}

async fn alter_inner(
    state: &Arc<AppState>,
    name: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    require(state, query, headers, Action::Admin)?;
    let Some(mut text) = state.workspace.datasource_text(name) else { return Err(not_found(name)) };
    if let Some(schema) = query.get("schema").filter(|s| !s.trim().is_empty()) {
        text = with_section(&text, "SCHEMA", &block("SCHEMA", schema));
    }
    if let Some(ttl) = query.get("ttl") {
        let line = match ttl.trim() {
            "" | "false" => String::new(),
            t => format!("ENGINE_TTL \"{}\"\n", t.replace('"', "\\\"")),
        };
        text = with_section(&text, "ENGINE_TTL", &line);
    }
    if let Some(d) = query.get("description") {
        text = with_section(&text, "DESCRIPTION", &if d.is_empty() { String::new() } else { block("DESCRIPTION", d) });
    }
    if let Some(i) = query.get("indexes") {
        text = with_section(&text, "INDEXES", &if i.trim().is_empty() { String::new() } else { block("INDEXES", i) });
    }
    let dry = query.get("dry").is_some_and(|d| d == "true");
    let ws = state.workspace.clone();
    let n2 = name.to_string();
    let operations = tokio::task::spawn_blocking(move || ws.alter_datasource(&n2, &text, dry))
        .await
        .map_err(|_| ApiError::json(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?
        .map_err(|e| ApiError::engine(&e, false))?
        .unwrap_or_default();
    let ds = match state.workspace.datasource(name) {
        Some(d) => info(state, name, &d).await,
        None => Json::Null,
    };
    Ok(super::json_response(StatusCode::OK, &json!({ "operations": operations, "datasource": ds })))
}

/// `PUT /v0/datasources/{name}` with `name=<new>`: renames the data source → its info.
pub(crate) async fn update(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(mut query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    super::add_form(&mut query, &body);
    let new_name = query.get("name").cloned().unwrap_or_default();
    if !new_name.is_empty() && new_name != name && !valid_name(&new_name) {
        return ApiError::json(
            StatusCode::BAD_REQUEST,
            format!("Invalid Data Source name \"{new_name}\". {NAME_HELP}"),
        )
        .into_response();
    }
    let target = new_name.clone();
    let result = on_existing(&state, name.clone(), &query, &headers, move |ws, name| {
        if target.is_empty() || target == name { Ok(()) } else { ws.rename_datasource(&name, &target) }
    })
    .await;
    if let Err(e) = result {
        return e.into_response();
    }
    let current = if new_name.is_empty() { name } else { new_name };
    let ds = match state.workspace.datasource(&current) {
        Some(d) => info(&state, &current, &d).await,
        None => Json::Null,
    };
    super::json_response(StatusCode::OK, &ds)
}
