//! `.datasource` files: schema, engine, tokens and Aviary's `TENANT_KEY` (spec `datafiles.md` §3).

use crate::error::Problem;
use crate::schema::{self, Column, ColumnDefault, Index};
use crate::syntax::Instruction;
use crate::types::ChType;

/// Table engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub enum EngineKind {
    #[default]
    MergeTree,
    ReplacingMergeTree,
    SummingMergeTree,
    AggregatingMergeTree,
    CollapsingMergeTree,
    VersionedCollapsingMergeTree,
    Null,
}

impl EngineKind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "MergeTree" => EngineKind::MergeTree,
            "ReplacingMergeTree" => EngineKind::ReplacingMergeTree,
            "SummingMergeTree" => EngineKind::SummingMergeTree,
            "AggregatingMergeTree" => EngineKind::AggregatingMergeTree,
            "CollapsingMergeTree" => EngineKind::CollapsingMergeTree,
            "VersionedCollapsingMergeTree" => EngineKind::VersionedCollapsingMergeTree,
            "Null" => EngineKind::Null,
            _ => return None,
        })
    }

    /// The engine's ClickHouse name.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::MergeTree => "MergeTree",
            EngineKind::ReplacingMergeTree => "ReplacingMergeTree",
            EngineKind::SummingMergeTree => "SummingMergeTree",
            EngineKind::AggregatingMergeTree => "AggregatingMergeTree",
            EngineKind::CollapsingMergeTree => "CollapsingMergeTree",
            EngineKind::VersionedCollapsingMergeTree => "VersionedCollapsingMergeTree",
            EngineKind::Null => "Null",
        }
    }
}

/// Engine settings of a data source (the default: `MergeTree` with no keys).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Engine {
    /// The engine.
    pub kind: EngineKind,
    /// `ENGINE_SORTING_KEY` (or the default Aviary chose).
    pub sorting_key: String,
    /// Whether `sorting_key` was chosen by Aviary because the file set none.
    pub sorting_key_defaulted: bool,
    /// `ENGINE_PARTITION_KEY`.
    pub partition_key: Option<String>,
    /// `ENGINE_PRIMARY_KEY`.
    pub primary_key: Option<String>,
    /// `ENGINE_SAMPLING_KEY`.
    pub sampling_key: Option<String>,
    /// `ENGINE_TTL`.
    pub ttl: Option<String>,
    /// `ENGINE_SETTINGS`.
    pub settings: Option<String>,
    /// `ENGINE_VER`.
    pub ver: Option<String>,
    /// `ENGINE_IS_DELETED`.
    pub is_deleted: Option<String>,
    /// `ENGINE_SIGN`.
    pub sign: Option<String>,
    /// `ENGINE_VERSION`.
    pub version: Option<String>,
    /// `ENGINE_COLUMNS`.
    pub columns: Option<String>,
}

/// A scope a datafile `TOKEN` line grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScope {
    /// `READ`.
    Read,
    /// `APPEND`.
    Append,
}

/// A `TOKEN <name> READ|APPEND` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// Token name.
    pub name: String,
    /// What it may do.
    pub scope: TokenScope,
}

/// A data source as declared in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datasource {
    /// Name (the file name without extension).
    pub name: String,
    /// `DESCRIPTION`.
    pub description: Option<String>,
    /// Columns in order.
    pub columns: Vec<Column>,
    /// `INDEXES`.
    pub indexes: Vec<Index>,
    /// Engine and keys.
    pub engine: Engine,
    /// `TOKEN` lines.
    pub tokens: Vec<TokenGrant>,
    /// `TAGS`.
    pub tags: Vec<String>,
    /// `VERSION`.
    pub version: Option<u32>,
    /// `TENANT_KEY` (Aviary extension): the column naming each row's tenant.
    pub tenant_key: Option<String>,
    /// `FORWARD_QUERY`.
    pub forward_query: Option<String>,
    /// `BACKFILL skip`.
    pub backfill_skip: bool,
    /// Connector settings (`KAFKA_*`, `IMPORT_*`, …), kept but not run.
    pub connector: Vec<(String, String)>,
}

impl Datasource {
    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether events arrive as JSON (some column has a `json:` path).
    pub fn is_ndjson(&self) -> bool {
        self.columns.iter().any(|c| c.json_path.is_some())
    }
}

/// Identifiers in an engine key expression that are not function names.
pub(crate) fn key_columns(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\'' {
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == b'`' {
            let end = expr[i + 1..].find('`').map_or(b.len(), |e| i + 1 + e);
            out.push(expr[i + 1..end.min(b.len())].to_string());
            i = end + 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            let word = &expr[start..i];
            let mut j = i;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            let is_call = j < b.len() && b[j] == b'(';
            const WORDS: [&str; 12] =
                ["INTERVAL", "DAY", "HOUR", "MINUTE", "SECOND", "MONTH", "YEAR", "WEEK", "AND", "OR", "NOT", "DELETE"];
            if !is_call && !WORDS.contains(&word.to_ascii_uppercase().as_str()) {
                out.push(word.to_string());
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Builds a data source from its instructions, collecting every problem and warning.
pub(crate) fn parse(name: &str, instructions: &[Instruction]) -> (Option<Datasource>, Vec<Problem>, Vec<Problem>) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut ds = Datasource {
        name: name.to_string(),
        description: None,
        columns: Vec::new(),
        indexes: Vec::new(),
        engine: Engine::default(),
        tokens: Vec::new(),
        tags: Vec::new(),
        version: None,
        tenant_key: None,
        forward_query: None,
        backfill_skip: false,
        connector: Vec::new(),
    };
    let mut schema_line = 0;
    let mut sorting_key: Option<String> = None;
    let mut tenant_line = 0;
    let mut engine_line = 0;
    let mut key_lines: Vec<(String, usize)> = Vec::new();
    for ins in instructions {
        if ins.keyword.starts_with("ENGINE_") || matches!(ins.keyword.as_str(), "SORTING_KEY" | "PARTITION_KEY" | "TTL")
        {
            key_lines.push((ins.keyword.clone(), ins.line));
        }
        let value = ins.value();
        let opt = || Some(value.clone()).filter(|v| !v.trim().is_empty());
        match ins.keyword.as_str() {
            "DESCRIPTION" => ds.description = Some(value),
            "SCHEMA" => {
                schema_line = ins.line;
                match schema::parse_schema(&value) {
                    Ok(cols) => ds.columns = cols,
                    Err((l, msg)) => errors.push(Problem::new(
                        ins.line + 1 + l,
                        format!("error parsing schema (line {}): {msg}", l + 1),
                    )),
                }
            }
            "INDEXES" => match schema::parse_indexes(&value) {
                Ok(idx) => ds.indexes = idx,
                Err((l, msg)) => errors.push(Problem::new(
                    ins.line + 1 + l,
                    format!(
                        "error parsing indexes (line {}): {msg}. Usage: `name expr TYPE type_full GRANULARITY granularity`. Separate multiple indexes by a new line.",
                        l + 1
                    ),
                )),
            },
            "ENGINE" => {
                engine_line = ins.line;
                match EngineKind::parse(value.trim()) {
                    Some(k) => ds.engine.kind = k,
                    None => errors.push(Problem::new(ins.line, format!("engine '{}' is not supported", value.trim()))),
                }
            }
            "ENGINE_SORTING_KEY" | "SORTING_KEY" => sorting_key = opt(),
            "ENGINE_PARTITION_KEY" | "PARTITION_KEY" => ds.engine.partition_key = opt(),
            "ENGINE_PRIMARY_KEY" => ds.engine.primary_key = opt(),
            "ENGINE_SAMPLING_KEY" => ds.engine.sampling_key = opt(),
            "ENGINE_TTL" | "TTL" => ds.engine.ttl = opt(),
            "ENGINE_SETTINGS" => ds.engine.settings = opt(),
            "ENGINE_VER" => ds.engine.ver = opt(),
            "ENGINE_IS_DELETED" => ds.engine.is_deleted = opt(),
            "ENGINE_SIGN" => ds.engine.sign = opt(),
            "ENGINE_VERSION" => ds.engine.version = opt(),
            "ENGINE_COLUMNS" => ds.engine.columns = opt(),
            "TOKEN" => match (ins.args.len(), ins.args.get(1).map(|s| s.to_ascii_uppercase())) {
                (2, Some(scope)) if scope == "READ" || scope == "APPEND" => ds.tokens.push(TokenGrant {
                    name: ins.args[0].clone(),
                    scope: if scope == "READ" { TokenScope::Read } else { TokenScope::Append },
                }),
                _ => errors.push(Problem::new(
                    ins.line,
                    "TOKEN gets two params, token name and permissions e.g TOKEN \"read api token\" READ",
                )),
            },
            "TAGS" => ds.tags = value.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
            "VERSION" => match value.trim().parse::<u32>() {
                Ok(v) => ds.version = Some(v),
                Err(_) => errors.push(Problem::new(ins.line, "version must be a positive integer e.g VERSION 2")),
            },
            "TENANT_KEY" => {
                tenant_line = ins.line;
                if ins.args.len() == 1 {
                    ds.tenant_key = Some(ins.args[0].clone());
                } else {
                    errors.push(Problem::new(ins.line, "TENANT_KEY takes one column name"));
                }
            }
            "FORWARD_QUERY" => ds.forward_query = opt(),
            "BACKFILL" => ds.backfill_skip = value.trim().eq_ignore_ascii_case("skip"),
            "SHARED_WITH" => warnings.push(Problem::new(
                ins.line,
                "SHARED_WITH is ignored: an Aviary deployment has a single workspace",
            )),
            "SETTINGS" => errors.push(Problem::new(
                ins.line,
                "SETTINGS option is not allowed, use ENGINE_SETTINGS instead. See https://www.tinybird.co/docs/cli/datafiles#data-source for more information.",
            )),
            k if ["KAFKA_", "IMPORT_", "EXPORT_", "S3_", "GCS_"].iter().any(|p| k.starts_with(p)) => {
                if ds.connector.is_empty() {
                    warnings.push(Problem::new(
                        ins.line,
                        format!("connectors are not supported; '{name}' only receives data through the Events and Data Sources APIs"),
                    ));
                }
                ds.connector.push((k.to_string(), value));
            }
            other => errors.push(Problem::new(ins.line, format!("{other} is not a valid option"))),
        }
    }
    if ds.columns.is_empty() {
        if schema_line == 0 {
            errors.push(Problem::new(0, "SCHEMA is required"));
        }
        return (None, errors, warnings);
    }
    let lines = Lines { engine: engine_line, schema: schema_line, tenant: tenant_line, keys: key_lines };
    validate(&mut ds, sorting_key, &lines, &mut errors, &mut warnings);
    (Some(ds), errors, warnings)
}

/// Where the instructions that validation refers to were written.
struct Lines {
    engine: usize,
    schema: usize,
    tenant: usize,
    keys: Vec<(String, usize)>,
}

impl Lines {
    fn key(&self, keyword: &str) -> usize {
        self.keys.iter().find(|(k, _)| k == keyword).map_or(self.engine, |(_, l)| *l)
    }
}

fn validate(
    ds: &mut Datasource,
    sorting_key: Option<String>,
    lines: &Lines,
    errors: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) {
    let (engine_line, schema_line, tenant_line) = (lines.engine, lines.schema, lines.tenant);
    let kind = ds.engine.kind;
    let needs_sorting = matches!(kind, EngineKind::ReplacingMergeTree | EngineKind::CollapsingMergeTree);
    match sorting_key {
        Some(k) => ds.engine.sorting_key = k,
        None if needs_sorting => {
            errors.push(Problem::new(engine_line, format!("SORTING_KEY should be set with {}", kind.name())));
        }
        None if kind == EngineKind::Null => ds.engine.sorting_key = "tuple()".to_string(),
        None => {
            let pick = ds
                .columns
                .iter()
                .find(|c| c.ty.is_temporal())
                .or_else(|| ds.columns.iter().find(|c| c.ty.is_numeric()))
                .or_else(|| ds.columns.iter().find(|c| c.ty.is_string()));
            ds.engine.sorting_key = pick.map_or_else(|| "tuple()".to_string(), |c| c.name.clone());
            ds.engine.sorting_key_defaulted = true;
            warnings.push(Problem::new(0, format!("ENGINE_SORTING_KEY is not set; using '{}'", ds.engine.sorting_key)));
        }
    }
    let required = |v: &Option<String>, param: &str, errors: &mut Vec<Problem>| {
        if v.is_none() {
            errors.push(Problem::new(engine_line, format!("{param} is required for {}", kind.name())));
        }
    };
    match kind {
        EngineKind::CollapsingMergeTree => required(&ds.engine.sign, "ENGINE_SIGN", errors),
        EngineKind::VersionedCollapsingMergeTree => {
            required(&ds.engine.sign, "ENGINE_SIGN", errors);
            required(&ds.engine.version, "ENGINE_VERSION", errors);
        }
        _ => {}
    }
    // Every key refers to real columns.
    let keys = [
        ("ENGINE_SORTING_KEY", Some(ds.engine.sorting_key.clone())),
        ("ENGINE_PARTITION_KEY", ds.engine.partition_key.clone()),
        ("ENGINE_PRIMARY_KEY", ds.engine.primary_key.clone()),
        ("ENGINE_SAMPLING_KEY", ds.engine.sampling_key.clone()),
        ("ENGINE_TTL", ds.engine.ttl.clone()),
        ("ENGINE_VER", ds.engine.ver.clone()),
        ("ENGINE_IS_DELETED", ds.engine.is_deleted.clone()),
        ("ENGINE_SIGN", ds.engine.sign.clone()),
        ("ENGINE_VERSION", ds.engine.version.clone()),
        ("ENGINE_COLUMNS", ds.engine.columns.clone()),
    ];
    for (what, expr) in keys {
        let Some(expr) = expr else { continue };
        for col in key_columns(&expr) {
            if ds.column(&col).is_none() {
                errors.push(Problem::new(
                    lines.key(what),
                    format!("{what} refers to '{col}', which is not a column of '{}'", ds.name),
                ));
            }
        }
    }
    if ds.is_ndjson() {
        for c in &ds.columns {
            if c.json_path.is_none() && c.default.is_none() {
                errors.push(Problem::new(
                    schema_line,
                    format!("column '{}' of an NDJSON data source needs a json path or a DEFAULT", c.name),
                ));
            }
        }
    }
    for c in &ds.columns {
        if matches!(c.default, Some(ColumnDefault::Materialized(_) | ColumnDefault::Alias(_))) && c.json_path.is_some()
        {
            errors.push(Problem::new(
                schema_line,
                format!("column '{}' is computed and cannot have a json path", c.name),
            ));
        }
        if let ChType::Json = c.ty.base() {
            warnings.push(Problem::new(
                schema_line,
                format!("column '{}': type JSON is not supported by the embedded backend", c.name),
            ));
        }
    }
    if let Some(tk) = &ds.tenant_key {
        match ds.column(tk) {
            None => errors.push(Problem::new(tenant_line, format!("TENANT_KEY column '{tk}' does not exist"))),
            Some(c) if !(c.ty.is_string() || c.ty.is_integer() || matches!(c.ty.base(), ChType::Uuid)) => {
                errors.push(Problem::new(
                    tenant_line,
                    format!("TENANT_KEY column '{tk}' must be a String, UUID or integer column"),
                ));
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_columns_skip_functions_and_literals() {
        assert_eq!(key_columns("toYYYYMM(timestamp)"), ["timestamp"]);
        assert_eq!(key_columns("org, timestamp"), ["org", "timestamp"]);
        assert_eq!(key_columns("toDateTime(timestamp) + toIntervalDay(365)"), ["timestamp"]);
        assert_eq!(key_columns("tuple()"), Vec::<String>::new());
        assert_eq!(key_columns("timestamp + INTERVAL 1 DAY"), ["timestamp"]);
    }
}
