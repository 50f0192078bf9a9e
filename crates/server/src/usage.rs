//! The usage log off the request path: a middleware records one row per endpoint and SQL API
//! request (with what the handler reported through a response extension) into a bounded
//! channel; a background task writes them in batches to `tinybird.pipe_stats_rt`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use engine::usage::Usage;
use tokio::sync::mpsc;

use crate::AppState;

/// What a handler reports about the request it served (a response extension).
#[derive(Debug, Clone, Default)]
pub struct Served {
    /// Pipe id (empty for the SQL API).
    pub pipe_id: String,
    /// Rows and bytes the engine read.
    pub read_rows: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// Rows returned.
    pub result_rows: u64,
    /// The request's parameters (after the token's fixed params).
    pub parameters: Vec<(String, String)>,
    /// The static token's id (empty for JWTs).
    pub token: String,
    /// The token's name.
    pub token_name: String,
    /// The tenant value(s) the reads were filtered by.
    pub tenant: Option<String>,
}

/// Requests waiting to be written at most; past it rows are counted as dropped, never block.
const QUEUE: usize = 100_000;
/// Rows written per batch at most, and how long a row waits for others.
const BATCH: usize = 4_096;
const LINGER: Duration = Duration::from_millis(200);

/// The sending side, kept in the state.
#[derive(Debug)]
pub struct UsageLog {
    tx: mpsc::Sender<Usage>,
    /// Rows dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Tells the writer to write what is queued and stop (at shutdown).
    stop: tokio::sync::Notify,
}

impl UsageLog {
    /// The log and the receiver its writer task drains.
    pub fn new() -> (UsageLog, mpsc::Receiver<Usage>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (UsageLog { tx, dropped: AtomicU64::new(0), stop: tokio::sync::Notify::new() }, rx)
    }

    /// Asks the writer to write what is queued and end.
    pub fn stop(&self) {
        self.stop.notify_one();
    }
}

/// Writes queued rows in batches until told to stop, then writes what is left.
pub async fn writer(state: Arc<AppState>, mut rx: mpsc::Receiver<Usage>) {
    loop {
        let first = tokio::select! {
            biased;
            () = state.usage.stop.notified() => {
                let mut rest = Vec::new();
                while let Ok(u) = rx.try_recv() {
                    rest.push(u);
                }
                write(&state, rest).await;
                return;
            }
            next = rx.recv() => match next {
                Some(u) => u,
                None => return,
            },
        };
        let mut rows = vec![first];
        let deadline = tokio::time::Instant::now() + LINGER;
        while rows.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(u)) => rows.push(u),
                _ => break,
            }
        }
        write(&state, rows).await;
    }
}

async fn write(state: &Arc<AppState>, rows: Vec<Usage>) {
    let ws = state.workspace.clone();
    match tokio::task::spawn_blocking(move || ws.log_usage(rows)).await {
        Ok(Err(e)) => tracing::warn!(error = %e, "usage rows not written"),
        Err(e) => tracing::warn!(error = %e, "usage writer panicked"),
        Ok(Ok(())) => {}
    }
}

/// Which logged API a path is: `Some(pipe name)` for an endpoint call, `query_api` for SQL.
fn logged(path: &str) -> Option<String> {
    if path == "/v0/sql" {
        return Some("query_api".into());
    }
    let file = path.strip_prefix("/v0/pipes/")?;
    let (name, ext) = file.rsplit_once('.')?;
    matches!(ext, "json" | "csv" | "csvwithnames" | "ndjson" | "parquet" | "prometheus").then(|| name.to_string())
}

/// The middleware: times the request and queues its row.
pub async fn record(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(pipe_name) = logged(req.uri().path()).filter(|_| req.method() != Method::OPTIONS) else {
        return next.run(req).await;
    };
    let started = Instant::now();
    let start_secs = chrono::Utc::now().timestamp();
    let method = req.method().clone();
    let url = (method == Method::GET).then(|| redact(&req.uri().to_string()));
    let response = next.run(req).await;
    let served = response.extensions().get::<Served>().cloned().unwrap_or_default();
    let request_id =
        response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let usage = Usage {
        start_secs,
        request_id,
        pipe_id: served.pipe_id,
        pipe_name,
        duration: started.elapsed().as_secs_f64(),
        read_bytes: served.read_bytes,
        read_rows: served.read_rows,
        result_rows: served.result_rows,
        url,
        status_code: response.status().as_u16(),
        token: served.token,
        token_name: served.token_name,
        tenant: served.tenant,
        method: method.to_string(),
        parameters: served.parameters,
    };
    if state.usage.tx.try_send(usage).is_err() {
        state.usage.dropped.fetch_add(1, Ordering::Relaxed);
    }
    response
}

/// `uri` with the value of any `token` argument replaced.
fn redact(uri: &str) -> String {
    let Some((path, query)) = uri.split_once('?') else { return uri.to_string() };
    let args: Vec<String> = query
        .split('&')
        .map(|kv| if kv.starts_with("token=") { "token=REDACTED".to_string() } else { kv.to_string() })
        .collect();
    format!("{path}?{}", args.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_endpoints_and_sql_are_logged_and_tokens_never() {
        assert_eq!(logged("/v0/sql").as_deref(), Some("query_api"));
        assert_eq!(logged("/v0/pipes/top_pages.json").as_deref(), Some("top_pages"));
        assert_eq!(logged("/v0/pipes/top_pages.pipe"), None);
        assert_eq!(logged("/v0/pipes/top_pages"), None);
        assert_eq!(logged("/v0/events"), None);
        assert_eq!(redact("/v0/sql?q=1&token=p.secret&x=2"), "/v0/sql?q=1&token=REDACTED&x=2");
    }
}
