//! Forward's build and deploy API (`/v1`, spec §16), which `aviary deploy DIR` and `tb deploy`
//! use: the body is multipart, one `data_project://` part per datafile named by its relative
//! path. `POST /v1/build` and `POST /v1/deploy?check=true` only check; `POST /v1/deploy` stages
//! a deployment that `POST /v1/deployments/{id}/set-live` applies (`auto_promote=true` applies
//! it at once). A project is the whole definition: what it lacks is removed, data sources only
//! with `allow_destructive_operations=true`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use datafiles::SourceFile;
use engine::deploy::{DeployOptions, DeployPlan};
use serde_json::{Value, json};

use super::json_response;
use crate::AppState;
use crate::error::ApiError;

/// One deployment, kept for `GET /v1/deployments`.
#[derive(Debug, Clone)]
pub struct Deployment {
    id: u64,
    status: &'static str,
    created_at: String,
    files: Vec<SourceFile>,
    plan: DeployPlan,
    allow_destructive_operations: bool,
}

impl Deployment {
    fn json(&self) -> Value {
        let p = &self.plan;
        let feedback: Vec<Value> = p
            .warnings
            .iter()
            .map(|(r, m)| json!({"resource": r, "level": "WARNING", "message": m}))
            .chain(p.errors.iter().map(|(r, m)| json!({"resource": r, "level": "ERROR", "message": m})))
            .collect();
        json!({
            "id": self.id.to_string(),
            "status": self.status,
            "created_at": self.created_at,
            "live": self.status == "live",
            "feedback": feedback,
            "errors": p.errors.iter().map(|(f, e)| json!({"filename": f, "error": e})).collect::<Vec<_>>(),
            "new_datasource_names": p.new_datasource_names,
            "changed_datasource_names": p.changed_datasource_names,
            "deleted_datasource_names": p.deleted_datasource_names,
            "new_pipe_names": p.new_pipe_names,
            "changed_pipe_names": p.changed_pipe_names,
            "deleted_pipe_names": p.deleted_pipe_names,
        })
    }
}

/// The deployments of this server's lifetime.
#[derive(Debug, Default)]
pub struct Deployments {
    next_id: u64,
    list: Vec<Deployment>,
}

/// The datafiles and query parameters of a build or deploy request.
async fn read_project(
    req: Request,
) -> Result<(HashMap<String, String>, axum::http::HeaderMap, Vec<SourceFile>), ApiError> {
    let query: HashMap<String, String> =
        req.uri().query().map(|q| super::sql::form_pairs(q.as_bytes()).into_iter().collect()).unwrap_or_default();
    let headers = req.headers().clone();
    let bad = |m: String| ApiError::json(StatusCode::BAD_REQUEST, m);
    let mut mp = Multipart::from_request(req, &()).await.map_err(|e| bad(e.body_text()))?;
    let mut files = Vec::new();
    while let Some(field) = mp.next_field().await.map_err(|e| bad(e.body_text()))? {
        let name = field.name().unwrap_or_default().to_string();
        let path = field.file_name().map(str::to_string);
        let data = field.bytes().await.map_err(|e| bad(e.body_text()))?;
        // Parts are named `data_project://` (`data_project_vendored://` for vendored files); a
        // client that encodes the name (RFC 5987 `name*=`) leaves only the file name to go by.
        let datafile = path.as_deref().is_some_and(|p| p.ends_with(".datasource") || p.ends_with(".pipe"));
        if !(name.starts_with("data_project") || (name.is_empty() && datafile)) {
            continue;
        }
        let path = path.ok_or_else(|| bad(format!("the {name} part needs a file name")))?;
        let text = String::from_utf8(data.to_vec()).map_err(|_| bad(format!("{path} is not UTF-8 text")))?;
        files.push(SourceFile { path: path.into(), text });
    }
    Ok((query, headers, files))
}

fn flag(query: &HashMap<String, String>, name: &str) -> bool {
    query.get(name).is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

async fn run(state: &Arc<AppState>, files: Vec<SourceFile>, options: DeployOptions) -> Result<DeployPlan, ApiError> {
    let ws = state.workspace.clone();
    tokio::task::spawn_blocking(move || ws.deploy(files, options))
        .await
        .map_err(|_| ApiError::json(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?
        .map_err(|e| ApiError::engine(&e, false))
}

/// `POST /v1/build`: checks a project against the workspace without changing it.
pub(crate) async fn build(State(state): State<Arc<AppState>>, req: Request) -> Result<Response, ApiError> {
    let (query, headers, files) = read_project(req).await?;
    super::require(&state, &query, &headers, |s| *s == access::Scope::WorkspaceDeploy)?;
    let names = |ext: &str| -> Vec<String> {
        files
            .iter()
            .filter(|f| f.path.extension().and_then(|e| e.to_str()) == Some(ext))
            .filter_map(|f| f.path.file_stem().and_then(|s| s.to_str()).map(str::to_string))
            .collect()
    };
    let (datasources, pipes) = (names("datasource"), names("pipe"));
    let plan = run(&state, files, DeployOptions { check_only: true, allow_destructive_operations: true }).await?;
    let error: Vec<String> = plan.errors.iter().map(|(f, e)| format!("{f}: {e}")).collect();
    let body = json!({
        "result": if plan.errors.is_empty() { "success" } else { "failed" },
        "build": {"id": "local", "datasources": datasources, "pipes": pipes},
        "error": error.join("\n"),
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// `POST /v1/deploy[?check=true|auto_promote=true][&allow_destructive_operations=true]`.
pub(crate) async fn deploy(State(state): State<Arc<AppState>>, req: Request) -> Result<Response, ApiError> {
    let (query, headers, files) = read_project(req).await?;
    super::require(&state, &query, &headers, |s| *s == access::Scope::WorkspaceDeploy)?;
    let allow = flag(&query, "allow_destructive_operations");
    let check = flag(&query, "check");
    let promote = flag(&query, "auto_promote");
    let plan = run(
        &state,
        files.clone(),
        DeployOptions { check_only: check || !promote, allow_destructive_operations: allow },
    )
    .await?;
    let failed = !plan.errors.is_empty();
    let result = if failed {
        "failed"
    } else if plan.is_empty() {
        "no_changes"
    } else {
        "success"
    };
    let status = match (failed, promote && !check) {
        (true, _) => "failed",
        (false, true) => "live",
        (false, false) => "data_ready",
    };
    let body = {
        let mut all =
            state.deployments.lock().map_err(|_| ApiError::json(StatusCode::INTERNAL_SERVER_ERROR, "lock"))?;
        all.next_id += 1;
        let d = Deployment {
            id: all.next_id,
            status,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            files,
            plan,
            allow_destructive_operations: allow,
        };
        let body = json!({"result": result, "deployment": d.json()});
        if !check {
            if status == "live" {
                for other in all.list.iter_mut().filter(|o| o.status == "live") {
                    other.status = "deleted";
                }
            }
            all.list.push(d);
        }
        body
    };
    if status == "live" {
        state.sync_datafile_tokens().await;
    }
    Ok(json_response(if failed { StatusCode::BAD_REQUEST } else { StatusCode::OK }, &body))
}

/// `GET /v1/deployments`.
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let query = super::sql::form_pairs(q.unwrap_or_default().as_bytes()).into_iter().collect();
    super::require(&state, &query, &headers, |s| *s == access::Scope::WorkspaceDeploy)?;
    let all = state.deployments.lock().map_err(|_| ApiError::json(StatusCode::INTERNAL_SERVER_ERROR, "lock"))?;
    let list: Vec<Value> = all.list.iter().rev().map(Deployment::json).collect();
    Ok(json_response(StatusCode::OK, &json!({ "deployments": list })))
}

fn not_found(id: &str) -> ApiError {
    ApiError::json(StatusCode::NOT_FOUND, format!("Deployment {id} not found"))
}

/// `GET /v1/deployments/{id}` and `DELETE` (a deployment that is not live).
pub(crate) async fn one(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    method: axum::http::Method,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let query = super::sql::form_pairs(q.unwrap_or_default().as_bytes()).into_iter().collect();
    super::require(&state, &query, &headers, |s| *s == access::Scope::WorkspaceDeploy)?;
    let mut all = state.deployments.lock().map_err(|_| ApiError::json(StatusCode::INTERNAL_SERVER_ERROR, "lock"))?;
    let at = all.list.iter().position(|d| d.id.to_string() == id).ok_or_else(|| not_found(&id))?;
    if method == axum::http::Method::DELETE {
        if all.list[at].status == "live" {
            return Err(ApiError::json(StatusCode::BAD_REQUEST, "The live deployment cannot be deleted"));
        }
        all.list[at].status = "deleted";
    }
    Ok(json_response(StatusCode::OK, &json!({ "deployment": all.list[at].json() })))
}

/// `POST /v1/deployments/{id}/set-live`: applies a staged deployment.
pub(crate) async fn set_live(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let query = super::sql::form_pairs(q.unwrap_or_default().as_bytes()).into_iter().collect();
    super::require(&state, &query, &headers, |s| *s == access::Scope::WorkspaceDeploy)?;
    let staged = {
        let all = state.deployments.lock().map_err(|_| ApiError::json(StatusCode::INTERNAL_SERVER_ERROR, "lock"))?;
        let d = all.list.iter().find(|d| d.id.to_string() == id).ok_or_else(|| not_found(&id))?;
        if d.status != "data_ready" {
            return Err(ApiError::json(
                StatusCode::BAD_REQUEST,
                format!("Deployment {id} is {}; only a data_ready deployment can be set live", d.status),
            ));
        }
        d.clone()
    };
    let options =
        DeployOptions { check_only: false, allow_destructive_operations: staged.allow_destructive_operations };
    let plan = run(&state, staged.files, options).await?;
    let failed = !plan.errors.is_empty();
    let body = {
        let mut all =
            state.deployments.lock().map_err(|_| ApiError::json(StatusCode::INTERNAL_SERVER_ERROR, "lock"))?;
        if !failed {
            for other in all.list.iter_mut().filter(|o| o.status == "live") {
                other.status = "deleted";
            }
        }
        let d = all.list.iter_mut().find(|d| d.id.to_string() == id).ok_or_else(|| not_found(&id))?;
        d.status = if failed { "failed" } else { "live" };
        d.plan = plan;
        json!({"result": if failed { "failed" } else { "success" }, "deployment": d.json()})
    };
    if !failed {
        state.sync_datafile_tokens().await;
    }
    Ok(json_response(if failed { StatusCode::BAD_REQUEST } else { StatusCode::OK }, &body))
}
