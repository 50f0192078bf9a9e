//! A workspace's data plane: its data sources (with their `_quarantine` companions), the
//! store they live in, ingestion of events, and SQL over them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use arrow_array::RecordBatch;
use datafiles::{ChType, ColumnDefault, Datasource, EngineKind, Project, SourceFile};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::embedded::store::{Store, TableDef};
use crate::ingest::arrow::batch;
use crate::ingest::rows::{Quarantined, RowConverter};
use crate::ingest::value::Cell;
use crate::pipes::PipeError;
use crate::policy::{FixedParams, ReadPolicy, Reading, Views, with_fixed};
use crate::wal::WalOptions;
use crate::{Error, Result};

/// Options for opening a workspace.
#[derive(Debug, Clone, Default)]
pub struct WorkspaceOptions {
    /// WAL tuning.
    pub wal: WalOptions,
}

/// What deploying a data source did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployed {
    /// It did not exist and was created.
    Created,
    /// It existed with the same definition.
    Unchanged,
    /// It existed and was changed compatibly (see [`Workspace::alter_datasource`]).
    Altered,
}

/// The outcome of an ingestion request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Ingested {
    /// Rows stored in the data source.
    pub successful_rows: u64,
    /// Rows stored in its quarantine.
    pub quarantined_rows: u64,
}

struct Entry {
    datasource: Datasource,
    text: String,
    converter: RowConverter,
    columns: Vec<(String, ChType)>,
    quarantine_columns: Vec<(String, ChType)>,
}

/// How loaded rows combine with what a data source holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadMode {
    /// Added to the existing rows.
    Append,
    /// Replacing every existing row, in one step.
    Replace,
    /// Replacing the rows that match a SQL condition (`replace_condition`), in one step: the
    /// existing rows that do not match are kept, and of the loaded rows only those that match
    /// are stored.
    ReplaceWhere(String),
}

/// An open workspace.
pub struct Workspace {
    dir: PathBuf,
    store: Arc<Store>,
    catalog: RwLock<BTreeMap<String, Arc<Entry>>>,
    pipes: crate::pipes::Pipes,
    /// Shared by every query: its caches (Parquet footers and page indexes) outlive a query.
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    /// Per data source: loads take it shared, a delete by condition exclusively (so no row
    /// arrives between reading what to keep and replacing the rows).
    writers: std::sync::Mutex<BTreeMap<String, Arc<RwLock<()>>>>,
}

/// Suffix of the quarantine companion of a data source.
pub const QUARANTINE: &str = "_quarantine";

/// The sorting columns the embedded engine uses for a sorting key: plain columns, or the column
/// inside a (monotonic) function of one column such as `toDate(timestamp)`.
fn sorting_columns(ds: &Datasource) -> Result<Vec<String>> {
    let key = ds.engine.sorting_key.trim();
    let key = key.strip_prefix("tuple(").and_then(|k| k.strip_suffix(')')).unwrap_or(key);
    let mut out = Vec::new();
    for part in split_top_level(key) {
        let p = part.trim().trim_matches('`');
        if p.is_empty() {
            continue;
        }
        let column = match p.split_once('(') {
            Some((_, inner)) => inner.trim_end_matches(')').trim().trim_matches('`').to_string(),
            None => p.to_string(),
        };
        if ds.column(&column).is_none() {
            return Err(Error::Invalid(format!(
                "ENGINE_SORTING_KEY '{}' is not supported by the embedded engine",
                ds.engine.sorting_key
            )));
        }
        out.push(column);
    }
    Ok(out)
}

fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn entry(ds: Datasource, text: String) -> Result<Entry> {
    if ds.engine.kind != EngineKind::MergeTree {
        return Err(Error::Invalid(format!(
            "ENGINE {} is not supported by the embedded engine yet; use MergeTree",
            ds.engine.kind.name()
        )));
    }
    if let Some(c) =
        ds.columns.iter().find(|c| matches!(c.default, Some(ColumnDefault::Materialized(_) | ColumnDefault::Alias(_))))
    {
        return Err(Error::Invalid(format!(
            "column '{}': MATERIALIZED and ALIAS columns are not supported by the embedded engine yet",
            c.name
        )));
    }
    for c in &ds.columns {
        c.ty.arrow().map_err(|e| Error::Invalid(format!("column '{}': {}", c.name, e.0)))?;
    }
    let converter = RowConverter::for_csv(&ds).map_err(|e| Error::Invalid(e.to_string()))?;
    let columns: Vec<(String, ChType)> = ds.columns.iter().map(|c| (c.name.clone(), c.ty.clone())).collect();
    let nullable_string = ChType::Nullable(Box::new(ChType::String));
    let mut quarantine_columns: Vec<(String, ChType)> =
        columns.iter().map(|(n, _)| (n.clone(), nullable_string.clone())).collect();
    quarantine_columns.push(("c__error_column".into(), ChType::Array(Box::new(ChType::String))));
    quarantine_columns.push(("c__error".into(), ChType::Array(Box::new(ChType::String))));
    quarantine_columns.push(("c__import_id".into(), nullable_string));
    quarantine_columns.push(("insertion_date".into(), ChType::DateTime { tz: None }));
    Ok(Entry { datasource: ds, text, converter, columns, quarantine_columns })
}

/// The table of a data source.
fn table_def(name: &str, e: &Entry) -> Result<TableDef> {
    Ok(TableDef {
        name: name.to_string(),
        columns: e.columns.clone(),
        sorting_key: sorting_columns(&e.datasource)?,
        partition_key: e.datasource.engine.partition_key.clone(),
        ttl: e.datasource.engine.ttl.clone(),
    })
}

/// The table of a data source's quarantine.
fn quarantine_def(name: &str, e: &Entry) -> TableDef {
    TableDef {
        name: format!("{name}{QUARANTINE}"),
        columns: e.quarantine_columns.clone(),
        sorting_key: vec!["insertion_date".into()],
        partition_key: None,
        ttl: None,
    }
}

fn parse_datasource(name: &str, text: &str) -> Result<Datasource> {
    let file = SourceFile { path: PathBuf::from(format!("{name}.datasource")), text: text.to_string() };
    match Project::from_files(vec![file]) {
        Ok(mut p) => p.datasources.pop().ok_or_else(|| Error::Invalid("no data source".into())),
        Err(datafiles::Error::Invalid(d)) => Err(Error::Invalid(
            d.iter()
                .filter(|d| d.severity == datafiles::Severity::Error)
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )),
        Err(e) => Err(Error::Invalid(e.to_string())),
    }
}

impl Workspace {
    /// Opens a data directory: the store (replaying the WAL) and the data source definitions.
    pub fn open(dir: &Path, options: WorkspaceOptions) -> Result<Workspace> {
        let store = Arc::new(Store::open(dir, options.wal)?);
        let defs = dir.join("datasources");
        std::fs::create_dir_all(&defs).map_err(|e| Error::io(&defs, e))?;
        let mut catalog = BTreeMap::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&defs)
            .map_err(|e| Error::io(&defs, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        for path in files {
            if path.extension().and_then(|e| e.to_str()) != Some("datasource") {
                continue;
            }
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            let ds = parse_datasource(&name, &text).map_err(|e| Error::Damaged(format!("{}: {e}", path.display())))?;
            catalog.insert(name, Arc::new(entry(ds, text)?));
        }
        store.create_table(&crate::usage::table())?;
        Ok(Workspace {
            dir: dir.to_path_buf(),
            store,
            catalog: RwLock::new(catalog),
            pipes: crate::pipes::Pipes::open(dir)?,
            // Footers and page indexes of the parts, decoded once: a part's page index is a few
            // MB, and decoding it costs more than a tenant query's reading.
            runtime: datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
                .with_metadata_cache_limit(METADATA_CACHE_BYTES)
                .build_arc()
                .map_err(|e| Error::Query(e.to_string()))?,
            writers: std::sync::Mutex::new(BTreeMap::new()),
        })
    }

    fn entry(&self, name: &str) -> Result<Arc<Entry>> {
        self.catalog
            .read()
            .map_err(|_| Error::Damaged("catalog lock".into()))?
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NoSuchTable(name.to_string()))
    }

    /// Creates a data source from its `.datasource` text; deploying the same definition again
    /// changes nothing, a different one is refused.
    pub fn deploy_datasource(&self, name: &str, text: &str) -> Result<Deployed> {
        if self.pipes.get(name).is_some() {
            return Err(Error::Invalid(format!(
                "A Pipe with the \"{name}\" name exists, Pipe and Data Source names are unique"
            )));
        }
        let ds = parse_datasource(name, text)?;
        let new = entry(ds, text.to_string())?;
        if self.entry(name).is_ok() {
            return Ok(match self.alter_datasource(name, text, false)? {
                None => Deployed::Unchanged,
                Some(_) => Deployed::Altered,
            });
        }
        self.store.create_table(&table_def(name, &new)?)?;
        self.store.create_table(&quarantine_def(name, &new))?;
        self.save_datafile(name, text)?;
        self.catalog
            .write()
            .map_err(|_| Error::Damaged("catalog lock".into()))?
            .insert(name.to_string(), Arc::new(new));
        Ok(Deployed::Created)
    }

    /// Changes an existing data source to the definition `text`, if that is a compatible
    /// change: columns added (existing rows read them as their `DEFAULT` literal, NULL, or the
    /// type's zero), JSONPaths, defaults, TTL, description or tokens changed. Removing a column,
    /// changing a column's type, the engine, or its sorting or partition key is refused with
    /// the reason. Returns the operations (`ADD COLUMN …`, `MODIFY TTL …`; empty when only
    /// ingestion settings change), or `None` when nothing changed; `dry` only reports them.
    pub fn alter_datasource(&self, name: &str, text: &str, dry: bool) -> Result<Option<Vec<String>>> {
        let existing = self.entry(name)?;
        if existing.text == text {
            return Ok(None);
        }
        let new = entry(parse_datasource(name, text)?, text.to_string())?;
        let refuse =
            |what: &str| Err(Error::Invalid(format!("Data Source '{name}': {what} is not a compatible change")));
        let (old_engine, new_engine) = (&existing.datasource.engine, &new.datasource.engine);
        if old_engine.kind != new_engine.kind {
            return refuse("changing the engine");
        }
        if sorting_columns(&existing.datasource)? != sorting_columns(&new.datasource)? {
            return refuse("changing the sorting key");
        }
        if old_engine.partition_key != new_engine.partition_key {
            return refuse("changing the partition key");
        }
        let mut operations = Vec::new();
        let mut fills = BTreeMap::new();
        let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
        for (i, c) in new.datasource.columns.iter().enumerate() {
            match existing.columns.iter().find(|(n, _)| *n == c.name) {
                Some((_, ty)) if *ty != c.ty => {
                    return refuse(&format!("changing the type of column '{}' from {ty} to {}", c.name, c.ty));
                }
                Some(_) => {}
                None => {
                    let after = match i {
                        0 => "FIRST".to_string(),
                        _ => format!("AFTER `{}`", new.datasource.columns[i - 1].name),
                    };
                    let default = match &c.default {
                        Some(ColumnDefault::Default(expr)) => {
                            let lower = expr.trim().to_ascii_lowercase();
                            let fill = if lower == "now()" || lower == "today()" || lower.starts_with("now64(") {
                                serde_json::Value::String(now.clone())
                            } else {
                                crate::ingest::rows::default_literal(expr).unwrap_or(serde_json::Value::Null)
                            };
                            fills.insert(c.name.clone(), fill);
                            format!(" DEFAULT {expr}")
                        }
                        _ => String::new(),
                    };
                    operations.push(format!("ADD COLUMN `{}` {}{default} {after}", c.name, c.ty));
                }
            }
        }
        if let Some((gone, _)) = existing.columns.iter().find(|(n, _)| !new.columns.iter().any(|(m, _)| m == n)) {
            return refuse(&format!("removing column '{gone}'"));
        }
        if old_engine.ttl != new_engine.ttl {
            operations.push(match &new_engine.ttl {
                Some(t) => format!("MODIFY TTL {t}"),
                None => "REMOVE TTL".to_string(),
            });
        }
        if dry {
            return Ok(Some(operations));
        }
        self.store.alter_table(&table_def(name, &new)?, fills)?;
        self.store.alter_table(&quarantine_def(name, &new), BTreeMap::new())?;
        self.save_datafile(name, text)?;
        self.catalog
            .write()
            .map_err(|_| Error::Damaged("catalog lock".into()))?
            .insert(name.to_string(), Arc::new(new));
        Ok(Some(operations))
    }

    fn save_datafile(&self, name: &str, text: &str) -> Result<()> {
        let path = self.dir.join("datasources").join(format!("{name}.datasource"));
        let tmp = path.with_extension("datasource.tmp");
        std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }

    /// Renames a data source (and its quarantine and definition) in one logged step; its rows
    /// stay where they are.
    pub fn rename_datasource(&self, from: &str, to: &str) -> Result<()> {
        let existing = self.entry(from)?;
        if self.entry(to).is_ok() || self.store.schema(to).is_ok() {
            return Err(Error::Invalid(format!("Data Source \"{to}\" already exists")));
        }
        let lock = self.writer(from);
        let _only = lock.write().map_err(|_| Error::Damaged("writer lock".into()))?;
        self.store.rename_tables(&[
            (from.to_string(), to.to_string()),
            (format!("{from}{QUARANTINE}"), format!("{to}{QUARANTINE}")),
        ])?;
        let mut renamed = entry(parse_datasource(to, &existing.text)?, existing.text.clone())?;
        renamed.datasource.name = to.to_string();
        let mut catalog = self.catalog.write().map_err(|_| Error::Damaged("catalog lock".into()))?;
        catalog.remove(from);
        catalog.insert(to.to_string(), Arc::new(renamed));
        Ok(())
    }

    /// Deploys a pipe from its `.pipe` text: its nodes must parse and read only earlier nodes,
    /// data sources and other pipes (without cycles); `materialized`, `copy` and `sink` nodes
    /// are refused. Pipes and data sources share one namespace.
    pub fn deploy_pipe(&self, name: &str, text: &str) -> Result<Deployed> {
        if self.entry(name).is_ok() {
            return Err(Error::Invalid(format!(
                "A Data Source with the \"{name}\" name exists, Pipe and Data Source names are unique"
            )));
        }
        let existing = self.pipes.get(name);
        if existing.as_ref().is_some_and(|p| p.text == text) {
            return Ok(Deployed::Unchanged);
        }
        let mut files = vec![SourceFile { path: PathBuf::from(format!("{name}.pipe")), text: text.to_string() }];
        for (ds, e) in self.catalog.read().map_err(|_| Error::Damaged("catalog lock".into()))?.iter() {
            files.push(SourceFile { path: PathBuf::from(format!("{ds}.datasource")), text: e.text.clone() });
        }
        for p in self.pipes.all() {
            if p.pipe.name != name {
                files.push(SourceFile { path: PathBuf::from(format!("{}.pipe", p.pipe.name)), text: p.text.clone() });
            }
        }
        let project = Project::from_files(files).map_err(|e| match e {
            datafiles::Error::Invalid(d) => Error::Invalid(
                d.iter()
                    .filter(|d| d.severity == datafiles::Severity::Error)
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            other => Error::Invalid(other.to_string()),
        })?;
        let pipe = project.pipe(name).cloned().ok_or_else(|| Error::Invalid(format!("no pipe '{name}'")))?;
        self.pipes.put(pipe, text)?;
        Ok(if existing.is_some() { Deployed::Altered } else { Deployed::Created })
    }

    /// Removes a pipe; `false` when there was none.
    pub fn drop_pipe(&self, name: &str) -> Result<bool> {
        self.pipes.remove(name)
    }

    /// The workspace's pipes.
    pub fn pipes(&self) -> &crate::pipes::Pipes {
        &self.pipes
    }

    /// Runs SQL API text as an admin: pipes named as tables are their endpoint's result
    /// rendered with `params`, and with `pipeline` that pipe's nodes (and `_`, its result) are
    /// tables too.
    pub async fn sql_with_pipes(
        &self,
        sql: &str,
        params: &template::Params,
        pipeline: Option<&str>,
    ) -> Result<QueryOutput> {
        self.sql_as(sql, params, pipeline, &ReadPolicy::All).await
    }

    /// Runs SQL API text for a grant: its tables are the data sources the policy names (read
    /// through their filters) and the pipes it names, each planned on its own with its fixed
    /// params forced and its data sources read under that pipe's tenant values.
    pub async fn sql_as(
        &self,
        sql: &str,
        params: &template::Params,
        pipeline: Option<&str>,
        policy: &ReadPolicy,
    ) -> Result<QueryOutput> {
        let mut reads = Reads::default();
        let mut views = Views::new();
        if let Some(p) = pipeline {
            let fixed = pipe_fixed(policy, p)?;
            let forced = with_fixed(params, fixed);
            let ctes = self.pipes.pipeline_ctes(p, &forced)?;
            let stored = self.pipes.get(p).ok_or_else(|| PipeError::NotFound(p.to_string()))?;
            let reading = Reading { policy, pipe: Some(fixed.unwrap_or(&NO_PARAMS)) };
            for name in stored.pipe.nodes.iter().map(|n| n.name.as_str()).chain(["_"]) {
                if !datafiles::table_references(sql).iter().any(|t| t == name) {
                    continue;
                }
                let body = crate::pipes::with_ctes(&ctes, &format!("SELECT * FROM `{name}`"));
                let (_, plan, _) = self.plan(&body, reading, &Views::new(), &mut reads).await?;
                views.insert(name.to_string(), plan);
            }
        }
        for table in datafiles::table_references(sql) {
            if views.contains_key(&table) || self.entry(&table).is_ok() || self.pipes.get(&table).is_none() {
                continue;
            }
            let Ok(fixed) = pipe_fixed(policy, &table) else { continue };
            let mut warnings = Vec::new();
            let text = self.pipes.render_as_table(&table, &with_fixed(params, fixed), &mut warnings, 0)?;
            let reading = Reading { policy, pipe: Some(fixed.unwrap_or(&NO_PARAMS)) };
            let (_, plan, _) = self.plan(&text, reading, &Views::new(), &mut reads).await?;
            views.insert(table, plan);
        }
        let outer = Reading { policy, pipe: None };
        self.run(sql, outer, &views, reads).await
    }

    /// Runs pipe `name`'s endpoint with `params` as an admin; with `q`, runs `q` over its result
    /// (the result is the table `_`, also reachable by the pipe's name).
    pub async fn query_pipe(&self, name: &str, params: &template::Params, q: Option<&str>) -> Result<PipeOutput> {
        self.query_pipe_as(name, params, q, &ReadPolicy::All).await
    }

    /// Runs pipe `name`'s endpoint for a grant: the pipe's fixed params are applied on top of
    /// `params`, and every data source it reads is read under the policy (filters, tenant key).
    /// `q` sees only the pipe's result and what the grant may read directly.
    pub async fn query_pipe_as(
        &self,
        name: &str,
        params: &template::Params,
        q: Option<&str>,
        policy: &ReadPolicy,
    ) -> Result<PipeOutput> {
        let fixed = pipe_fixed(policy, name)?;
        let rendered = self.pipes.render_endpoint(name, &with_fixed(params, fixed))?;
        let reading = Reading { policy, pipe: Some(fixed.unwrap_or(&NO_PARAMS)) };
        let output = match q {
            None => self.run(&rendered.sql, reading, &Views::new(), Reads::default()).await?,
            Some(q) => {
                let mut reads = Reads::default();
                let (_, plan, _) = self.plan(&rendered.sql, reading, &Views::new(), &mut reads).await?;
                let views = Views::from([("_".to_string(), plan.clone()), (name.to_string(), plan)]);
                self.run(q, Reading { policy, pipe: None }, &views, reads).await?
            }
        };
        let sql = match q {
            Some(q) => format!("WITH `_` AS ({0}), `{name}` AS (SELECT * FROM `_`) {q}", rendered.sql),
            None => rendered.sql,
        };
        Ok(PipeOutput { output, warnings: rendered.warnings, sql })
    }

    /// Removes a data source, its quarantine and its data.
    pub fn drop_datasource(&self, name: &str) -> Result<()> {
        self.entry(name)?;
        self.store.drop_table(name)?;
        let _ = self.store.drop_table(&format!("{name}{QUARANTINE}"));
        let path = self.dir.join("datasources").join(format!("{name}.datasource"));
        std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        self.catalog.write().map_err(|_| Error::Damaged("catalog lock".into()))?.remove(name);
        Ok(())
    }

    /// The definition of a data source.
    pub fn datasource(&self, name: &str) -> Option<Datasource> {
        self.entry(name).ok().map(|e| e.datasource.clone())
    }

    /// The `.datasource` text a data source was created from.
    pub fn datasource_text(&self, name: &str) -> Option<String> {
        self.entry(name).ok().map(|e| e.text.clone())
    }

    /// Names of the data sources.
    pub fn datasources(&self) -> Vec<String> {
        self.catalog.read().map(|c| c.keys().cloned().collect()).unwrap_or_default()
    }

    /// Ingests NDJSON text: good rows into the data source, the others into its quarantine.
    /// Returns once both are durable and visible.
    pub fn ingest_ndjson(&self, name: &str, body: &str, import_id: &str) -> Result<Ingested> {
        let e = self.entry(name)?;
        let now = chrono::Utc::now();
        let now_nanos = now.timestamp_nanos_opt().unwrap_or(0);
        let mut good: Vec<Vec<Cell>> = Vec::new();
        let mut bad: Vec<Vec<Cell>> = Vec::new();
        for line in body.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            match e.converter.convert(line, now_nanos) {
                Ok(row) => good.push(row),
                Err(q) => bad.push(quarantine_row(q, import_id, now.timestamp())),
            }
        }
        self.store_rows(name, &e, &good, &bad, LoadMode::Append)
    }

    /// Ingests CSV text (columns by position; a first row equal to the column names is a
    /// header): good rows into the data source, the others into its quarantine.
    pub fn ingest_csv(&self, name: &str, body: &str, delimiter: u8, import_id: &str) -> Result<Ingested> {
        self.load_csv(name, body, delimiter, import_id, LoadMode::Append)
    }

    /// Loads CSV text with `mode`.
    pub fn load_csv(&self, name: &str, body: &str, delimiter: u8, import_id: &str, mode: LoadMode) -> Result<Ingested> {
        let e = self.entry(name)?;
        let now = chrono::Utc::now();
        let now_nanos = now.timestamp_nanos_opt().unwrap_or(0);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .delimiter(delimiter)
            .flexible(true)
            .from_reader(body.as_bytes());
        let mut good: Vec<Vec<Cell>> = Vec::new();
        let mut bad: Vec<Vec<Cell>> = Vec::new();
        let names: Vec<&str> = e.converter.columns().collect();
        for (i, record) in reader.records().enumerate() {
            let record = match record {
                Ok(r) => r,
                Err(err) => {
                    let q = Quarantined {
                        values: vec![None; names.len()],
                        error_columns: Vec::new(),
                        errors: vec![format!("invalid CSV: {err}")],
                    };
                    bad.push(quarantine_row(q, import_id, now.timestamp()));
                    continue;
                }
            };
            if i == 0 && record.iter().eq(names.iter().copied()) {
                continue;
            }
            if record.len() == 1 && record.get(0).is_some_and(|f| f.trim().is_empty()) {
                continue;
            }
            let fields: Vec<Option<&str>> = record.iter().map(Some).collect();
            match e.converter.convert_fields(&fields, now_nanos) {
                Ok(row) => good.push(row),
                Err(q) => bad.push(quarantine_row(q, import_id, now.timestamp())),
            }
        }
        self.store_rows(name, &e, &good, &bad, mode)
    }

    /// Loads NDJSON text with `mode`.
    pub fn load_ndjson(&self, name: &str, body: &str, import_id: &str, mode: LoadMode) -> Result<Ingested> {
        match mode {
            LoadMode::Append => self.ingest_ndjson(name, body, import_id),
            LoadMode::Replace | LoadMode::ReplaceWhere(_) => {
                let e = self.entry(name)?;
                let now = chrono::Utc::now();
                let now_nanos = now.timestamp_nanos_opt().unwrap_or(0);
                let (mut good, mut bad) = (Vec::new(), Vec::new());
                for line in body.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).filter(|l| !l.trim().is_empty())
                {
                    match e.converter.convert(line, now_nanos) {
                        Ok(row) => good.push(row),
                        Err(q) => bad.push(quarantine_row(q, import_id, now.timestamp())),
                    }
                }
                self.store_rows(name, &e, &good, &bad, mode)
            }
        }
    }

    /// Loads a Parquet file with `mode`: its columns are matched to the data source's by name
    /// and cast to their types; a missing column must be nullable.
    pub fn load_parquet(&self, name: &str, bytes: Vec<u8>, mode: LoadMode) -> Result<Ingested> {
        self.entry(name)?;
        let schema = self.store.schema(name)?;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .map_err(|err| Error::Invalid(format!("invalid Parquet file: {err}")))?
            .build()
            .map_err(|err| Error::Invalid(format!("invalid Parquet file: {err}")))?;
        let mut batches = Vec::new();
        for b in reader {
            let b = b.map_err(|err| Error::Invalid(format!("invalid Parquet file: {err}")))?;
            let mut columns = Vec::with_capacity(schema.fields().len());
            for field in schema.fields() {
                let array = match b.column_by_name(field.name()) {
                    Some(a) => arrow_cast::cast(a, field.data_type())
                        .map_err(|err| Error::Invalid(format!("column '{}': {err}", field.name())))?,
                    None if field.is_nullable() => arrow_array::new_null_array(field.data_type(), b.num_rows()),
                    None => {
                        return Err(Error::Invalid(format!(
                            "column '{}' is missing from the Parquet file",
                            field.name()
                        )));
                    }
                };
                columns.push(array);
            }
            batches.push(
                RecordBatch::try_new(schema.clone(), columns)
                    .map_err(|err| Error::Invalid(format!("invalid Parquet rows: {err}")))?,
            );
        }
        let all = arrow_select::concat::concat_batches(&schema, &batches).map_err(Error::arrow)?;
        let rows = self.write(name, all, &mode)?;
        Ok(Ingested { successful_rows: rows, quarantined_rows: 0 })
    }

    fn writer(&self, name: &str) -> Arc<RwLock<()>> {
        let mut w = self.writers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        w.entry(name.to_string()).or_default().clone()
    }

    /// Deletes the rows where `condition` (SQL) is true; with `dry_run`, only counts them.
    /// Returns the number of rows deleted (or that would be).
    pub fn delete_where(&self, name: &str, condition: &str, dry_run: bool) -> Result<u64> {
        let lock = self.writer(name);
        let _only = lock.write().map_err(|_| Error::Damaged("writer lock".into()))?;
        let matching = block_on(self.sql(&format!("SELECT count(*) FROM {name} WHERE ({condition})")))??;
        let count = matching
            .batches
            .first()
            .and_then(|b| b.column(0).as_any().downcast_ref::<arrow_array::UInt64Array>().map(|a| a.value(0)))
            .unwrap_or(0) as u64;
        if dry_run || count == 0 {
            return Ok(count);
        }
        self.replace_keeping(name, condition, Vec::new())?;
        Ok(count)
    }

    fn store_rows(
        &self,
        name: &str,
        e: &Entry,
        good: &[Vec<Cell>],
        bad: &[Vec<Cell>],
        mode: LoadMode,
    ) -> Result<Ingested> {
        let stored = self.write(name, batch(&e.columns, good).map_err(Error::arrow)?, &mode)?;
        if !bad.is_empty() {
            let b = batch(&e.quarantine_columns, bad).map_err(Error::arrow)?;
            self.store.append(&format!("{name}{QUARANTINE}"), b)?;
        }
        Ok(Ingested { successful_rows: stored, quarantined_rows: bad.len() as u64 })
    }

    /// Stores `rows` in data source `name` with `mode`; returns how many were stored.
    fn write(&self, name: &str, rows: RecordBatch, mode: &LoadMode) -> Result<u64> {
        let lock = self.writer(name);
        let count = rows.num_rows() as u64;
        match mode {
            LoadMode::Append => {
                let _shared = lock.read().map_err(|_| Error::Damaged("writer lock".into()))?;
                if count > 0 {
                    self.store.append(name, rows)?;
                }
                Ok(count)
            }
            LoadMode::Replace => {
                let _shared = lock.read().map_err(|_| Error::Damaged("writer lock".into()))?;
                self.store.replace(name, rows)?;
                Ok(count)
            }
            LoadMode::ReplaceWhere(condition) => {
                // Exclusive: no row may arrive between reading what to keep and replacing.
                let _only = lock.write().map_err(|_| Error::Damaged("writer lock".into()))?;
                let ctx = SessionContext::new();
                let loaded =
                    MemTable::try_new(rows.schema(), vec![vec![rows]]).map_err(|e| Error::Query(e.to_string()))?;
                ctx.register_table(name, Arc::new(loaded)).map_err(|e| Error::Query(e.to_string()))?;
                let sql = format!("SELECT * FROM {name} WHERE coalesce(({condition}), false)");
                let matching = block_on(async { ctx.sql(&sql).await?.collect().await })?
                    .map_err(|e| Error::Invalid(format!("replace_condition: {e}")))?;
                let stored = matching.iter().map(|b| b.num_rows() as u64).sum();
                self.replace_keeping(name, condition, matching)?;
                Ok(stored)
            }
        }
    }

    /// Replaces the rows of `name` by those that do not match `condition` plus `extra`, in one
    /// logged step. The caller holds the data source's writer lock exclusively.
    fn replace_keeping(&self, name: &str, condition: &str, extra: Vec<RecordBatch>) -> Result<()> {
        let schema = self.store.schema(name)?;
        let sql = format!("SELECT * FROM {name} WHERE NOT coalesce(({condition}), false)");
        let kept = block_on(self.sql(&sql))??.batches;
        let all = kept
            .iter()
            .chain(&extra)
            .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()).map_err(Error::arrow))
            .collect::<Result<Vec<_>>>()?;
        let all = arrow_select::concat::concat_batches(&schema, &all).map_err(Error::arrow)?;
        self.store.replace(name, all)?;
        Ok(())
    }

    /// Appends requests to the usage log (`tinybird.pipe_stats_rt`).
    pub fn log_usage(&self, requests: Vec<crate::usage::Usage>) -> Result<()> {
        if requests.is_empty() {
            return Ok(());
        }
        let rows: Vec<Vec<Cell>> = requests.into_iter().map(crate::usage::row).collect();
        let table = crate::usage::table();
        self.store.append(&table.name, batch(&table.columns, &rows).map_err(Error::arrow)?)?;
        Ok(())
    }

    /// Runs a read query over the workspace's tables (as an admin).
    pub async fn sql(&self, sql: &str) -> Result<QueryOutput> {
        self.run(sql, Reading::all(), &Views::new(), Reads::default()).await
    }

    /// Plans and runs `sql` with `views` (pipes planned on their own) readable as tables.
    async fn run(&self, sql: &str, reading: Reading<'_>, views: &Views, mut reads: Reads) -> Result<QueryOutput> {
        let prepared = self.prepare(sql, reading, views, &mut reads).await?;
        let Prepared { ctx, df, ignored_settings } = prepared;
        let schema = Arc::new(df.schema().as_arrow().clone());
        let physical = df.create_physical_plan().await.map_err(|e| Error::Query(e.to_string()))?;
        let batches = datafusion::physical_plan::collect(physical.clone(), ctx.task_ctx())
            .await
            .map_err(|e| Error::Query(e.to_string()))?;
        // What the Parquet scans read after pruning, plus every row held in memory.
        let (parquet_rows, parquet_bytes) = scanned(physical.as_ref());
        let (rows_read, bytes_read) = (parquet_rows + reads.memory_rows, parquet_bytes + reads.memory_bytes);
        reads.tenants.dedup();
        let tenant = (!reads.tenants.is_empty()).then(|| reads.tenants.join(","));
        Ok(QueryOutput { schema, batches, rows_read, bytes_read, ignored_settings, tenant })
    }

    /// Checks a row filter for data source `datasource` (spec §4.3): a boolean expression over
    /// its columns, with no subquery or table.
    pub async fn check_filter(&self, datasource: &str, filter: &str) -> Result<()> {
        self.entry(datasource)?;
        crate::policy::plain_filter(filter).map_err(Error::Invalid)?;
        self.result_schema(&format!("SELECT * FROM `{datasource}` WHERE ({filter})")).await.map(drop)
    }

    /// The columns a query would return, without running it.
    pub async fn result_schema(&self, sql: &str) -> Result<arrow_schema::SchemaRef> {
        let prepared = self.prepare(sql, Reading::all(), &Views::new(), &mut Reads::default()).await?;
        Ok(Arc::new(prepared.df.schema().as_arrow().clone()))
    }

    /// The columns pipe `name`'s endpoint returns with no parameters, if it renders and plans so.
    pub async fn endpoint_schema(&self, name: &str) -> Option<arrow_schema::SchemaRef> {
        let rendered = self.pipes.render_endpoint(name, &template::Params::default()).ok()?;
        self.result_schema(&rendered.sql).await.ok()
    }

    /// Translates `sql` and plans it over snapshots of the tables it names that `reading` may
    /// see (each through its filters), and `views`.
    async fn plan(
        &self,
        sql: &str,
        reading: Reading<'_>,
        views: &Views,
        reads: &mut Reads,
    ) -> Result<(SessionContext, datafusion::logical_expr::LogicalPlan, Vec<String>)> {
        let translated = crate::dialect::translate(sql).map_err(|e| Error::Query(e.to_string()))?;
        let mut config = SessionConfig::new().with_information_schema(false).with_target_partitions(2);
        // ClickHouse identifiers are case-sensitive.
        config.options_mut().sql_parser.enable_ident_normalization = false;
        let ctx = SessionContext::new_with_config_rt(config, self.runtime.clone());
        crate::dialect::udf::register(&ctx);
        let query = |e: datafusion::error::DataFusionError| Error::Query(e.to_string());
        for table in datafiles::table_references(sql) {
            if let Some(view) = views.get(&table) {
                let view = datafusion::catalog::view::ViewTable::new(view.clone(), None);
                ctx.register_table(table.as_str(), Arc::new(view)).map_err(query)?;
                continue;
            }
            let Some(rule) = reading.rule(self, &table)? else { continue };
            let Ok(snapshot) = self.store.snapshot(&table) else { continue };
            reads.memory_rows += snapshot.memory.iter().map(|b| b.num_rows() as u64).sum::<u64>();
            reads.memory_bytes += snapshot.memory.iter().map(|b| b.get_array_memory_size() as u64).sum::<u64>();
            reads.files.extend(snapshot.files.iter().cloned());
            let provider = crate::embedded::provider::PartsTable::new(snapshot);
            if let Some((schema, _)) = table.split_once('.')
                && let Some(catalog) = ctx.catalog("datafusion")
                && catalog.schema(schema).is_none()
            {
                let schema_provider = Arc::new(datafusion::catalog::MemorySchemaProvider::new());
                catalog.register_schema(schema, schema_provider).map_err(query)?;
            }
            if let Some(tenant) = crate::policy::register(&ctx, &table, Arc::new(provider), &rule).await? {
                reads.tenants.push(tenant);
            }
        }
        let statement = datafusion::sql::parser::Statement::Statement(Box::new(translated.statement));
        let plan = ctx.state().statement_to_plan(statement).await.map_err(query)?;
        Ok((ctx, plan, translated.ignored_settings))
    }

    /// Plans a query to run: on one thread when it reads few rows.
    async fn prepare(&self, sql: &str, reading: Reading<'_>, views: &Views, reads: &mut Reads) -> Result<Prepared> {
        let (ctx, plan, ignored_settings) = self.plan(sql, reading, views, reads).await?;
        // A query that reads few rows runs on one thread: exchanging rows between threads costs
        // more than its reading.
        let conditions = crate::embedded::estimate::conditions(&plan);
        let cache = self.runtime.cache_manager.get_file_metadata_cache();
        let rows = crate::embedded::estimate::rows_to_read(&reads.files, &cache, &conditions);
        if rows.map(|r| r + reads.memory_rows).is_some_and(|r| r <= ONE_THREAD_ROWS) {
            ctx.state_ref().write().config_mut().options_mut().execution.target_partitions = 1;
        }
        let df = ctx.execute_logical_plan(plan).await.map_err(|e| Error::Query(e.to_string()))?;
        Ok(Prepared { ctx, df, ignored_settings })
    }

    /// Writes buffered rows to Parquet.
    pub fn flush(&self) -> Result<u64> {
        self.store.flush()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// Rows a query reads at most (by its row groups' and pages' statistics) to run on one thread.
const ONE_THREAD_ROWS: u64 = 65_536;

/// Memory for decoded Parquet footers and page indexes, shared by a workspace's queries.
const METADATA_CACHE_BYTES: usize = 512 * 1024 * 1024;

/// A planned query.
struct Prepared {
    ctx: SessionContext,
    df: datafusion::dataframe::DataFrame,
    ignored_settings: Vec<String>,
}

/// What the tables of a query (and of the pipes planned for it) hold that the plan's metrics
/// do not count, and what the pruning estimate needs.
#[derive(Default)]
struct Reads {
    memory_rows: u64,
    memory_bytes: u64,
    files: Vec<(PathBuf, u64)>,
    /// Tenant values the reads were filtered by.
    tenants: Vec<String>,
}

/// No fixed params.
static NO_PARAMS: std::sync::LazyLock<FixedParams> = std::sync::LazyLock::new(FixedParams::new);

/// The fixed params of `pipe` under `policy` (`None` for admins), or 403 when it may not read it.
fn pipe_fixed<'a>(policy: &'a ReadPolicy, pipe: &str) -> Result<Option<&'a FixedParams>> {
    match policy {
        ReadPolicy::All => Ok(None),
        ReadPolicy::Scoped(s) => s.pipes.get(pipe).map(Some).ok_or_else(|| {
            Error::Forbidden(format!("The token you have provided doesn't have access to this resource: {pipe}"))
        }),
    }
}

/// A pipe request's result.
#[derive(Debug, Clone)]
pub struct PipeOutput {
    /// The rows.
    pub output: QueryOutput,
    /// Reserved parameter names the templates used.
    pub warnings: Vec<String>,
    /// The SQL that ran (before translation).
    pub sql: String,
}

/// A query's result.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// Result schema.
    pub schema: arrow_schema::SchemaRef,
    /// Result rows.
    pub batches: Vec<RecordBatch>,
    /// Rows scanned.
    pub rows_read: u64,
    /// Bytes scanned.
    pub bytes_read: u64,
    /// `SETTINGS` of the query that were ignored.
    pub ignored_settings: Vec<String>,
    /// The tenant value(s) the reads were filtered by.
    pub tenant: Option<String>,
}

/// Rows and bytes the Parquet scans of an executed plan read (after row-group and page pruning).
fn scanned(plan: &dyn datafusion::physical_plan::ExecutionPlan) -> (u64, u64) {
    let mut rows = 0u64;
    let mut bytes = 0u64;
    if plan.name() == "DataSourceExec"
        && let Some(m) = plan.metrics()
        && m.sum_by_name("bytes_scanned").is_some()
    {
        rows += m.output_rows().unwrap_or(0) as u64;
        bytes += m.sum_by_name("bytes_scanned").map_or(0, |v| v.as_usize() as u64);
    }
    for child in plan.children() {
        let (r, b) = scanned(child.as_ref());
        rows += r;
        bytes += b;
    }
    (rows, bytes)
}

/// Runs a future to completion on this (blocking) thread.
fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().map_err(|e| Error::Query(e.to_string()))?;
    Ok(runtime.block_on(f))
}

fn quarantine_row(q: Quarantined, import_id: &str, now_secs: i64) -> Vec<Cell> {
    let mut row: Vec<Cell> = q.values.into_iter().map(|v| v.map_or(Cell::Null, Cell::Str)).collect();
    row.push(Cell::List(q.error_columns.into_iter().map(Cell::Str).collect()));
    row.push(Cell::List(q.errors.into_iter().map(Cell::Str).collect()));
    row.push(Cell::Str(import_id.to_string()));
    row.push(Cell::Time(now_secs));
    row
}
