//! `GET /metrics`: Prometheus exposition for operators — requests by route and status,
//! query latency, rows ingested and quarantined, the WAL's group commits, buffered bytes, parts
//! and maintenance. Counters are updated where things happen; gauges are read at scrape time.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use crate::AppState;

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    /// Rows stored by the Events and Data Sources APIs, by data source.
    pub rows_ingested: IntCounterVec,
    /// Rows sent to quarantine, by data source.
    pub rows_quarantined: IntCounterVec,
    /// Parts rewritten or removed by maintenance (merges, TTL).
    pub compactions: IntCounter,
    wal_records: IntGauge,
    wal_syncs: IntGauge,
    wal_bytes: IntGauge,
    buffered_bytes: IntGauge,
    parts: IntGauge,
    usage_dropped: IntGauge,
}

fn must<T>(r: prometheus::Result<T>) -> T {
    // Only fails for malformed names or duplicate registration, both fixed in this file.
    r.unwrap_or_else(|e| panic!("metrics definition: {e}"))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, registered.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = must(IntCounterVec::new(Opts::new(name, help), labels));
            must(registry.register(Box::new(c.clone())));
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = must(IntGauge::new(name, help));
            must(registry.register(Box::new(g.clone())));
            g
        };
        let requests = counter_vec(
            "aviary_http_requests_total",
            "HTTP requests by route and status.",
            &["route", "method", "status"],
        );
        let latency = must(HistogramVec::new(
            HistogramOpts::new("aviary_query_duration_seconds", "Endpoint and SQL API latency.")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["api"],
        ));
        must(registry.register(Box::new(latency.clone())));
        let rows_ingested = counter_vec("aviary_rows_ingested_total", "Rows stored, by data source.", &["datasource"]);
        let rows_quarantined =
            counter_vec("aviary_rows_quarantined_total", "Rows sent to quarantine, by data source.", &["datasource"]);
        let compactions =
            must(IntCounter::new("aviary_compactions_total", "Parts rewritten or removed by maintenance."));
        must(registry.register(Box::new(compactions.clone())));
        Metrics {
            requests,
            latency,
            rows_ingested,
            rows_quarantined,
            compactions,
            wal_records: gauge("aviary_wal_records_total", "Records appended to the write-ahead log."),
            wal_syncs: gauge("aviary_wal_syncs_total", "Group commits of the write-ahead log (one fdatasync each)."),
            wal_bytes: gauge("aviary_wal_bytes_total", "Bytes appended to the write-ahead log."),
            buffered_bytes: gauge(
                "aviary_buffered_bytes",
                "Bytes of acknowledged rows not yet in their store (embedded: Parquet; ClickHouse: inserted).",
            ),
            parts: gauge("aviary_parts", "Parquet parts across tables."),
            usage_dropped: gauge("aviary_usage_rows_dropped_total", "Usage-log rows dropped (queue full)."),
            registry,
        }
    }

    /// Counts one stored batch of a data source.
    pub fn ingested(&self, datasource: &str, rows: u64, quarantined: u64) {
        self.rows_ingested.with_label_values(&[datasource]).inc_by(rows);
        if quarantined > 0 {
            self.rows_quarantined.with_label_values(&[datasource]).inc_by(quarantined);
        }
    }
}

/// The middleware: counts every request by its route pattern, and times queries.
pub async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let method = req.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let m = &state.metrics;
    m.requests.with_label_values(&[route.as_str(), method.as_str(), response.status().as_str()]).inc();
    let api = match route.as_str() {
        "/v0/sql" => Some("sql"),
        "/v0/pipes/{file}" if method != "DELETE" => Some("pipe"),
        _ => None,
    };
    if let Some(api) = api {
        m.latency.with_label_values(&[api]).observe(started.elapsed().as_secs_f64());
    }
    response
}

/// `GET /metrics` (admin token).
pub async fn metrics(
    State(state): State<Arc<AppState>>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = crate::routes::require_admin(&state, &query, &headers) {
        return e.into_response();
    }
    let m = &state.metrics;
    let wal = state.workspace.wal_stats();
    m.wal_records.set(wal.records.load(Ordering::Relaxed) as i64);
    m.wal_syncs.set(wal.syncs.load(Ordering::Relaxed) as i64);
    m.wal_bytes.set(wal.bytes.load(Ordering::Relaxed) as i64);
    if let Some(store) = state.workspace.store() {
        m.parts.set(store.tables().iter().map(|t| store.parts(t).map_or(0, |p| p.len())).sum::<usize>() as i64);
    }
    m.buffered_bytes.set(state.workspace.buffered_bytes() as i64);
    m.usage_dropped.set(state.usage.dropped.load(Ordering::Relaxed) as i64);
    let mut body = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&m.registry.gather(), &mut body) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    r
}
