//! The usage log: one row per endpoint or SQL API request in the service data source
//! `tinybird.pipe_stats_rt` (spec `analytics-api.md` §7), kept 7 days, read with SQL by admins.

use datafiles::ChType;

use crate::embedded::store::TableDef;
use crate::ingest::value::Cell;

/// The service data source's name.
pub const PIPE_STATS_RT: &str = "tinybird.pipe_stats_rt";

/// One request, as logged.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Request start, seconds since the epoch (UTC).
    pub start_secs: i64,
    /// The `X-Request-ID`.
    pub request_id: String,
    /// Pipe id (empty for the SQL API).
    pub pipe_id: String,
    /// Pipe name, or `query_api`.
    pub pipe_name: String,
    /// Seconds from start to end.
    pub duration: f64,
    /// Bytes the engine read.
    pub read_bytes: u64,
    /// Rows the engine read.
    pub read_rows: u64,
    /// Rows returned.
    pub result_rows: u64,
    /// The URL with `token` redacted (GET only).
    pub url: Option<String>,
    /// HTTP status.
    pub status_code: u16,
    /// Token id (static tokens) or empty.
    pub token: String,
    /// Token name.
    pub token_name: String,
    /// The tenant value the request was filtered by.
    pub tenant: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Request parameters (values cut to 256 bytes).
    pub parameters: Vec<(String, String)>,
}

fn columns() -> Vec<(String, ChType)> {
    [
        ("start_datetime", "DateTime"),
        ("request_id", "String"),
        ("pipe_id", "String"),
        ("pipe_name", "String"),
        ("duration", "Float32"),
        ("read_bytes", "UInt64"),
        ("read_rows", "UInt64"),
        ("result_rows", "UInt64"),
        ("url", "Nullable(String)"),
        ("error", "UInt8"),
        ("status_code", "Int32"),
        ("token", "String"),
        ("token_name", "String"),
        ("tenant", "Nullable(String)"),
        ("method", "LowCardinality(String)"),
        ("parameters", "Map(String, String)"),
    ]
    .iter()
    .map(|(n, t)| (n.to_string(), ChType::parse(t).unwrap_or(ChType::String)))
    .collect()
}

/// The table of the usage log.
pub fn table() -> TableDef {
    TableDef {
        name: PIPE_STATS_RT.to_string(),
        columns: columns(),
        sorting_key: vec!["pipe_name".into(), "start_datetime".into()],
        partition_key: Some("toYYYYMMDD(start_datetime)".into()),
        ttl: Some("start_datetime + INTERVAL 7 DAY".into()),
    }
}

/// `u` as a row of [`table`].
pub fn row(u: Usage) -> Vec<Cell> {
    let cut = |v: String| if v.len() <= 256 { v } else { v[..v.floor_char_boundary(256)].to_string() };
    let opt = |v: Option<String>| v.map_or(Cell::Null, Cell::Str);
    vec![
        Cell::Time(u.start_secs),
        Cell::Str(u.request_id),
        Cell::Str(u.pipe_id),
        Cell::Str(u.pipe_name),
        Cell::Float(f64::from(u.duration as f32)),
        Cell::UInt(u.read_bytes),
        Cell::UInt(u.read_rows),
        Cell::UInt(u.result_rows),
        opt(u.url),
        Cell::UInt(u64::from(u.status_code >= 400)),
        Cell::Int(i64::from(u.status_code)),
        Cell::Str(u.token),
        Cell::Str(u.token_name),
        opt(u.tenant),
        Cell::Str(u.method),
        Cell::Map(u.parameters.into_iter().map(|(k, v)| (Cell::Str(k), Cell::Str(cut(v)))).collect()),
    ]
}
