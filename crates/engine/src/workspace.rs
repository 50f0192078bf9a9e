//! A workspace's data plane: its data sources (with their `_quarantine` companions), the
//! store they live in, ingestion of events, and SQL over them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use arrow_array::RecordBatch;
use datafiles::{ChType, ColumnDefault, Datasource, EngineKind, Project, SourceFile};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::clickhouse::query::Views as ChViews;
use crate::clickhouse::{self, ClickHouse, TableSpec};
use crate::embedded::store::{Store, TableDef, TableStats};
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

/// Where a workspace's rows live and its queries run.
pub enum Backend {
    /// DataFusion over the data directory's WAL and Parquet parts.
    Embedded(Arc<Store>),
    /// A ClickHouse database (the data directory holds only the insert spool).
    ClickHouse(Arc<ClickHouse>),
}

/// An open workspace.
pub struct Workspace {
    dir: PathBuf,
    backend: Backend,
    /// The ClickHouse catalog version last loaded.
    seen: std::sync::Mutex<(u64, u64)>,
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
    entry_for(ds, text, true)
}

/// The catalog entry of a data source; `embedded` applies the embedded engine's restrictions.
fn entry_for(ds: Datasource, text: String, embedded: bool) -> Result<Entry> {
    if !embedded {
        let converter = RowConverter::for_csv(&ds).map_err(|e| Error::Invalid(e.to_string()))?;
        let columns: Vec<(String, ChType)> = ds.columns.iter().map(|c| (c.name.clone(), c.ty.clone())).collect();
        let quarantine_columns = quarantine_columns(&columns);
        return Ok(Entry { datasource: ds, text, converter, columns, quarantine_columns });
    }
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
    let quarantine_columns = quarantine_columns(&columns);
    Ok(Entry { datasource: ds, text, converter, columns, quarantine_columns })
}

/// The columns of a data source's quarantine: each column as text, then the errors.
fn quarantine_columns(columns: &[(String, ChType)]) -> Vec<(String, ChType)> {
    let nullable_string = ChType::Nullable(Box::new(ChType::String));
    let mut out: Vec<(String, ChType)> = columns.iter().map(|(n, _)| (n.clone(), nullable_string.clone())).collect();
    out.push(("c__error_column".into(), ChType::Array(Box::new(ChType::String))));
    out.push(("c__error".into(), ChType::Array(Box::new(ChType::String))));
    out.push(("c__import_id".into(), nullable_string));
    out.push(("insertion_date".into(), ChType::DateTime { tz: None }));
    out
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
            backend: Backend::Embedded(store),
            seen: std::sync::Mutex::new((0, 0)),
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

    /// Opens a workspace whose rows live in ClickHouse: connects, creates what is missing, loads
    /// the catalog, and opens the node's insert spool under `dir`.
    pub async fn open_clickhouse(dir: &Path, options: crate::clickhouse::ClickHouseOptions) -> Result<Workspace> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let ch = Arc::new(ClickHouse::connect(dir, options).await?);
        ch.create(&usage_spec(&ch)).await?;
        let ws = Workspace {
            dir: dir.to_path_buf(),
            backend: Backend::ClickHouse(ch),
            seen: std::sync::Mutex::new((0, 0)),
            catalog: RwLock::new(BTreeMap::new()),
            pipes: crate::pipes::Pipes::in_memory(),
            runtime: datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
                .build_arc()
                .map_err(|e| Error::Query(e.to_string()))?,
            writers: std::sync::Mutex::new(BTreeMap::new()),
        };
        ws.refresh_catalog().await?;
        Ok(ws)
    }

    /// The backend.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The ClickHouse backend, when the workspace runs on one.
    pub fn clickhouse(&self) -> Option<&Arc<ClickHouse>> {
        match &self.backend {
            Backend::ClickHouse(ch) => Some(ch),
            Backend::Embedded(_) => None,
        }
    }

    /// The embedded store, or an error for an operation only it has.
    fn embedded(&self) -> Result<&Arc<Store>> {
        match &self.backend {
            Backend::Embedded(store) => Ok(store),
            Backend::ClickHouse(_) => Err(Error::Invalid("not available on the ClickHouse backend".into())),
        }
    }

    /// Reloads data sources and pipes from the ClickHouse catalog when another node changed it;
    /// `true` when something was reloaded. Does nothing on the embedded backend.
    pub async fn refresh_catalog(&self) -> Result<bool> {
        let Backend::ClickHouse(ch) = &self.backend else { return Ok(false) };
        let version = ch.catalog_version().await?;
        if *self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner) == version && version != (0, 0) {
            return Ok(false);
        }
        let items = ch.load_catalog().await?;
        let mut catalog = BTreeMap::new();
        for item in items.iter().filter(|i| i.kind == "datasource") {
            match parse_datasource(&item.name, &item.text).and_then(|ds| entry_for(ds, item.text.clone(), false)) {
                Ok(e) => {
                    catalog.insert(item.name.clone(), Arc::new(e));
                }
                Err(e) => tracing::error!(datasource = %item.name, error = %e, "stored data source does not load"),
            }
        }
        let mut pipes = Vec::new();
        for item in items.iter().filter(|i| i.kind == "pipe") {
            match crate::pipes::parse_alone(&item.name, &item.text) {
                Ok(pipe) => pipes.push((pipe, item.text.clone())),
                Err(e) => tracing::error!(pipe = %item.name, error = %e, "stored pipe does not load"),
            }
        }
        *self.catalog.write().map_err(|_| Error::Damaged("catalog lock".into()))? = catalog;
        self.pipes.replace_all(pipes)?;
        *self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = version;
        Ok(true)
    }

    /// Stores a datafile's text in the ClickHouse catalog (`None`: deleted), and notes the
    /// catalog's new version as seen.
    fn save_catalog(&self, ch: &ClickHouse, kind: &str, name: &str, text: Option<&str>) -> Result<()> {
        block(ch.save_catalog(kind, name, text))?;
        if let Ok(v) = block(ch.catalog_version()) {
            *self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = v;
        }
        Ok(())
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
        let new = entry_for(ds, text.to_string(), self.clickhouse().is_none())?;
        if self.entry(name).is_ok() {
            return Ok(match self.alter_datasource(name, text, false)? {
                None => Deployed::Unchanged,
                Some(_) => Deployed::Altered,
            });
        }
        match &self.backend {
            Backend::Embedded(store) => {
                store.create_table(&table_def(name, &new)?)?;
                store.create_table(&quarantine_def(name, &new))?;
                self.save_datafile(name, text)?;
            }
            Backend::ClickHouse(ch) => {
                block(ch.create(&TableSpec::of(&new.datasource, name)))?;
                block(ch.create(&quarantine_spec(name, &new)))?;
                self.save_catalog(ch, "datasource", name, Some(text))?;
            }
        }
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
        let new = entry_for(parse_datasource(name, text)?, text.to_string(), self.clickhouse().is_none())?;
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
        // The same changes for ClickHouse: types as the server stores them.
        let mut stored_operations = Vec::new();
        let mut quarantine_operations = Vec::new();
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
                    if let Some(ch) = self.clickhouse() {
                        let stored = crate::clickhouse::types::physical(&c.ty, ch.features())
                            .map_err(|e| Error::Invalid(format!("column '{}': {e}", c.name)))?;
                        stored_operations.push(format!("ADD COLUMN `{}` {stored}{default} {after}", c.name));
                        quarantine_operations.push(format!("ADD COLUMN `{}` Nullable(String)", c.name));
                    }
                }
            }
        }
        if let Some((gone, _)) = existing.columns.iter().find(|(n, _)| !new.columns.iter().any(|(m, _)| m == n)) {
            return refuse(&format!("removing column '{gone}'"));
        }
        if old_engine.ttl != new_engine.ttl {
            let op = match &new_engine.ttl {
                Some(t) => format!("MODIFY TTL {t}"),
                None => "REMOVE TTL".to_string(),
            };
            stored_operations.push(op.clone());
            operations.push(op);
        }
        if dry {
            return Ok(Some(operations));
        }
        match &self.backend {
            Backend::Embedded(store) => {
                store.alter_table(&table_def(name, &new)?, fills)?;
                store.alter_table(&quarantine_def(name, &new), BTreeMap::new())?;
                self.save_datafile(name, text)?;
            }
            Backend::ClickHouse(ch) => {
                block(ch.alter(name, &stored_operations))?;
                block(ch.alter(&format!("{name}{QUARANTINE}"), &quarantine_operations))?;
                self.save_catalog(ch, "datasource", name, Some(text))?;
            }
        }
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
        let taken = match &self.backend {
            Backend::Embedded(store) => store.schema(to).is_ok(),
            Backend::ClickHouse(_) => self.pipes.get(to).is_some(),
        };
        if self.entry(to).is_ok() || taken {
            return Err(Error::Invalid(format!("Data Source \"{to}\" already exists")));
        }
        let lock = self.writer(from);
        let _only = lock.write().map_err(|_| Error::Damaged("writer lock".into()))?;
        let renames =
            [(from.to_string(), to.to_string()), (format!("{from}{QUARANTINE}"), format!("{to}{QUARANTINE}"))];
        match &self.backend {
            Backend::Embedded(store) => {
                store.rename_tables(&renames)?;
            }
            Backend::ClickHouse(ch) => {
                block(ch.rename(&renames))?;
                self.save_catalog(ch, "datasource", to, Some(&existing.text))?;
                self.save_catalog(ch, "datasource", from, None)?;
            }
        }
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
        if let Some(ch) = self.clickhouse() {
            self.save_catalog(ch, "pipe", name, Some(text))?;
        }
        self.pipes.put(pipe, text)?;
        Ok(if existing.is_some() { Deployed::Altered } else { Deployed::Created })
    }

    /// Removes a pipe; `false` when there was none.
    pub fn drop_pipe(&self, name: &str) -> Result<bool> {
        if let Some(ch) = self.clickhouse()
            && self.pipes.get(name).is_some()
        {
            self.save_catalog(ch, "pipe", name, None)?;
        }
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
        if let Backend::ClickHouse(ch) = &self.backend {
            return self.clickhouse_sql_as(ch, sql, params, pipeline, policy).await;
        }
        let mut reads = Reads::default();
        let mut views = Views::new();
        for (name, text, reading) in self.view_sources(sql, params, pipeline, policy)? {
            let (_, plan, _) = self.plan(&text, reading, &Views::new(), &mut reads).await?;
            views.insert(name, plan);
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
        let output = match (q, &self.backend) {
            (None, Backend::ClickHouse(ch)) => self.clickhouse_run(ch, &rendered.sql, reading, &ChViews::new()).await?,
            (Some(q), Backend::ClickHouse(ch)) => {
                let view =
                    clickhouse::query::resolve(self, ch.client().database(), &rendered.sql, reading, &ChViews::new())?;
                let views = ChViews::from([("_".to_string(), view.clone()), (name.to_string(), view)]);
                self.clickhouse_run(ch, q, Reading { policy, pipe: None }, &views).await?
            }
            (None, Backend::Embedded(_)) => self.run(&rendered.sql, reading, &Views::new(), Reads::default()).await?,
            (Some(q), Backend::Embedded(_)) => {
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
        match &self.backend {
            Backend::Embedded(store) => {
                store.drop_table(name)?;
                let _ = store.drop_table(&format!("{name}{QUARANTINE}"));
                let path = self.dir.join("datasources").join(format!("{name}.datasource"));
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
            Backend::ClickHouse(ch) => {
                self.save_catalog(ch, "datasource", name, None)?;
                block(ch.drop_table(name))?;
                block(ch.drop_table(&format!("{name}{QUARANTINE}")))?;
            }
        }
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
        self.ingest_events(name, body, import_id, true)
    }

    /// [`Workspace::ingest_ndjson`] for the Events API: without `wait`, a backend that sends
    /// rows on in batches (ClickHouse) answers once they are durable on this node; with it, once
    /// they are readable. The embedded backend always answers once they are readable.
    pub fn ingest_events(&self, name: &str, body: &str, import_id: &str, wait: bool) -> Result<Ingested> {
        let e = self.entry(name)?;
        // Rows on their way: the spool does not send early for waiting writers meanwhile.
        let arrival = self.clickhouse().map(|ch| ch.spool().arrival());
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
        self.store_rows(name, &e, &good, &bad, LoadMode::Append, wait, arrival)
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
        self.store_rows(name, &e, &good, &bad, mode, true, None)
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
                self.store_rows(name, &e, &good, &bad, mode, true, None)
            }
        }
    }

    /// Loads a Parquet file with `mode`: its columns are matched to the data source's by name
    /// and cast to their types; a missing column must be nullable.
    pub fn load_parquet(&self, name: &str, bytes: Vec<u8>, mode: LoadMode) -> Result<Ingested> {
        let e = self.entry(name)?;
        let schema = match &self.backend {
            Backend::Embedded(store) => store.schema(name)?,
            Backend::ClickHouse(_) => crate::ingest::arrow::schema(&e.columns).map_err(Error::arrow)?,
        };
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
        if self.clickhouse().is_some() {
            let rows = crate::ingest::cells::rows(&all, &e.columns).map_err(Error::Invalid)?;
            return self.store_rows(name, &e, &rows, &[], mode, true, None);
        }
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
        if let Backend::ClickHouse(ch) = &self.backend {
            self.entry(name)?;
            let count = block(ch.count(name, Some(condition)))?;
            if !dry_run && count > 0 {
                block(ch.delete_where(name, condition))?;
            }
            return Ok(count);
        }
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

    /// Stores converted rows: `good` into the data source with `mode`, `bad` into its
    /// quarantine; `wait` and `arrival` are the Events API's (see [`Workspace::ingest_events`]).
    #[allow(clippy::too_many_arguments)]
    fn store_rows(
        &self,
        name: &str,
        e: &Entry,
        good: &[Vec<Cell>],
        bad: &[Vec<Cell>],
        mode: LoadMode,
        wait: bool,
        arrival: Option<clickhouse::spool::Arrival<'_>>,
    ) -> Result<Ingested> {
        let (stored, store) = match &self.backend {
            Backend::ClickHouse(ch) => {
                let mut parts = Vec::new();
                let lock = self.writer(name);
                let _shared = lock.read().map_err(|_| Error::Damaged("writer lock".into()))?;
                let stored = match &mode {
                    LoadMode::Append => {
                        parts.push(encode_rows(ch, name, &e.columns, good)?);
                        good.len() as u64
                    }
                    LoadMode::Replace => {
                        drop(_shared);
                        self.clickhouse_replace(ch, name, e, good, None)?
                    }
                    LoadMode::ReplaceWhere(condition) => {
                        drop(_shared);
                        self.clickhouse_replace(ch, name, e, good, Some(condition))?
                    }
                };
                if !bad.is_empty() {
                    parts.push(encode_rows(ch, &format!("{name}{QUARANTINE}"), &e.quarantine_columns, bad)?);
                }
                ch.spool().append(parts, wait, arrival.unwrap_or_else(|| ch.spool().arrival()))?;
                return Ok(Ingested { successful_rows: stored, quarantined_rows: bad.len() as u64 });
            }
            Backend::Embedded(store) => {
                (self.write(name, batch(&e.columns, good).map_err(Error::arrow)?, &mode)?, store)
            }
        };
        if !bad.is_empty() {
            let b = batch(&e.quarantine_columns, bad).map_err(Error::arrow)?;
            store.append(&format!("{name}{QUARANTINE}"), b)?;
        }
        Ok(Ingested { successful_rows: stored, quarantined_rows: bad.len() as u64 })
    }

    /// Replaces rows of data source `name` on ClickHouse by `rows`, now: all of them, or with
    /// a `condition` those matching it; returns how many were stored.
    fn clickhouse_replace(
        &self,
        ch: &ClickHouse,
        name: &str,
        e: &Entry,
        rows: &[Vec<Cell>],
        condition: Option<&str>,
    ) -> Result<u64> {
        let lock = self.writer(name);
        let _only = lock.write().map_err(|_| Error::Damaged("writer lock".into()))?;
        let clickhouse::spool::Rows { columns, bytes, count, .. } = encode_rows(ch, name, &e.columns, rows)?;
        match condition {
            None => block(ch.replace(name, &columns, bytes)).map(|()| count),
            Some(condition) => block(ch.replace_where(name, &columns, bytes, condition)),
        }
    }

    /// Stores `rows` in data source `name` with `mode`; returns how many were stored.
    fn write(&self, name: &str, rows: RecordBatch, mode: &LoadMode) -> Result<u64> {
        let store = self.embedded()?;
        let lock = self.writer(name);
        let count = rows.num_rows() as u64;
        match mode {
            LoadMode::Append => {
                let _shared = lock.read().map_err(|_| Error::Damaged("writer lock".into()))?;
                if count > 0 {
                    store.append(name, rows)?;
                }
                Ok(count)
            }
            LoadMode::Replace => {
                let _shared = lock.read().map_err(|_| Error::Damaged("writer lock".into()))?;
                store.replace(name, rows)?;
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
        let store = self.embedded()?;
        let schema = store.schema(name)?;
        let sql = format!("SELECT * FROM {name} WHERE NOT coalesce(({condition}), false)");
        let kept = block_on(self.sql(&sql))??.batches;
        let all = kept
            .iter()
            .chain(&extra)
            .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()).map_err(Error::arrow))
            .collect::<Result<Vec<_>>>()?;
        let all = arrow_select::concat::concat_batches(&schema, &all).map_err(Error::arrow)?;
        store.replace(name, all)?;
        Ok(())
    }

    /// Appends requests to the usage log (`tinybird.pipe_stats_rt`).
    pub fn log_usage(&self, requests: Vec<crate::usage::Usage>) -> Result<()> {
        if requests.is_empty() {
            return Ok(());
        }
        let mut rows: Vec<Vec<Cell>> = requests.into_iter().map(crate::usage::row).collect();
        let table = crate::usage::table();
        match &self.backend {
            Backend::Embedded(store) => {
                store.append(&table.name, batch(&table.columns, &rows).map_err(Error::arrow)?)?;
            }
            Backend::ClickHouse(ch) => {
                let spec = usage_spec(ch);
                let columns: Vec<(String, ChType)> =
                    spec.columns.iter().map(|c| (c.name.clone(), c.ty.clone())).collect();
                // Servers without `Map` keep the parameters as a JSON object in a String.
                if columns.iter().any(|(n, t)| n == "parameters" && *t == ChType::String) {
                    for row in &mut rows {
                        if let Some(Cell::Map(pairs)) = row.last() {
                            let object: serde_json::Map<String, serde_json::Value> = pairs
                                .iter()
                                .filter_map(|(k, v)| match (k, v) {
                                    (Cell::Str(k), Cell::Str(v)) => {
                                        Some((k.clone(), serde_json::Value::String(v.clone())))
                                    }
                                    _ => None,
                                })
                                .collect();
                            if let Some(last) = row.last_mut() {
                                *last = Cell::Str(serde_json::Value::Object(object).to_string());
                            }
                        }
                    }
                }
                let part = encode_rows(ch, &spec.name, &columns, &rows)?;
                ch.spool().append(vec![part], false, ch.spool().arrival())?;
            }
        }
        Ok(())
    }

    /// Runs a read query over the workspace's tables (as an admin).
    pub async fn sql(&self, sql: &str) -> Result<QueryOutput> {
        if let Backend::ClickHouse(ch) = &self.backend {
            return self.clickhouse_run(ch, sql, Reading::all(), &ChViews::new()).await;
        }
        self.run(sql, Reading::all(), &Views::new(), Reads::default()).await
    }

    /// Resolves `sql` for `reading` with `views` and runs it on ClickHouse.
    async fn clickhouse_run(
        &self,
        ch: &ClickHouse,
        sql: &str,
        reading: Reading<'_>,
        views: &ChViews,
    ) -> Result<QueryOutput> {
        let resolved = clickhouse::query::resolve(self, ch.client().database(), sql, reading, views)?;
        let answer = ch.run_query(&resolved.sql()).await?;
        let mut tenants: Vec<String> = views.values().flat_map(|v| v.tenants.iter().cloned()).collect();
        tenants.extend(resolved.tenants.iter().cloned());
        tenants.dedup();
        Ok(QueryOutput {
            schema: answer.schema,
            batches: answer.batches,
            rows_read: answer.rows_read,
            bytes_read: answer.bytes_read,
            ignored_settings: resolved.ignored_settings,
            tenant: (!tenants.is_empty()).then(|| tenants.join(",")),
        })
    }

    /// The views SQL API text reads, each with the SQL it stands for and the grant it is read
    /// under: with `pipeline`, that pipe's nodes (and `_`) the text names; then the pipes it names
    /// as tables, rendered with their fixed params forced.
    fn view_sources<'a>(
        &self,
        sql: &str,
        params: &template::Params,
        pipeline: Option<&str>,
        policy: &'a ReadPolicy,
    ) -> Result<Vec<(String, String, Reading<'a>)>> {
        let tables = datafiles::table_references(sql);
        let mut out: Vec<(String, String, Reading<'a>)> = Vec::new();
        if let Some(p) = pipeline {
            let fixed = pipe_fixed(policy, p)?;
            let forced = with_fixed(params, fixed);
            let ctes = self.pipes.pipeline_ctes(p, &forced)?;
            let stored = self.pipes.get(p).ok_or_else(|| PipeError::NotFound(p.to_string()))?;
            let reading = Reading { policy, pipe: Some(fixed.unwrap_or(&NO_PARAMS)) };
            for name in stored.pipe.nodes.iter().map(|n| n.name.as_str()).chain(["_"]) {
                if tables.iter().any(|t| t == name) {
                    let body = crate::pipes::with_ctes(&ctes, &format!("SELECT * FROM `{name}`"));
                    out.push((name.to_string(), body, reading));
                }
            }
        }
        for table in tables {
            let viewed = out.iter().any(|(n, _, _)| *n == table);
            if viewed || self.entry(&table).is_ok() || self.pipes.get(&table).is_none() {
                continue;
            }
            let Ok(fixed) = pipe_fixed(policy, &table) else { continue };
            let mut warnings = Vec::new();
            let text = self.pipes.render_as_table(&table, &with_fixed(params, fixed), &mut warnings, 0)?;
            out.push((table, text, Reading { policy, pipe: Some(fixed.unwrap_or(&NO_PARAMS)) }));
        }
        Ok(out)
    }

    /// [`Workspace::sql_as`] on ClickHouse: the pipes the SQL reads become subqueries resolved
    /// under their own fixed params.
    async fn clickhouse_sql_as(
        &self,
        ch: &ClickHouse,
        sql: &str,
        params: &template::Params,
        pipeline: Option<&str>,
        policy: &ReadPolicy,
    ) -> Result<QueryOutput> {
        let db = ch.client().database();
        let mut views = ChViews::new();
        for (name, text, reading) in self.view_sources(sql, params, pipeline, policy)? {
            views.insert(name, clickhouse::query::resolve(self, db, &text, reading, &ChViews::new())?);
        }
        self.clickhouse_run(ch, sql, Reading { policy, pipe: None }, &views).await
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
        if let Backend::ClickHouse(ch) = &self.backend {
            let resolved =
                clickhouse::query::resolve(self, ch.client().database(), sql, Reading::all(), &ChViews::new())?;
            let answer = ch.run_query(&format!("SELECT * FROM ({}) LIMIT 0", resolved.sql())).await?;
            return Ok(answer.schema);
        }
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
            let Ok(snapshot) = self.embedded()?.snapshot(&table) else { continue };
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

    /// Writes buffered rows to Parquet (embedded; ClickHouse's spool sends rows on its own).
    pub fn flush(&self) -> Result<u64> {
        match &self.backend {
            Backend::Embedded(store) => store.flush(),
            Backend::ClickHouse(_) => Ok(0),
        }
    }

    /// The embedded store, when the workspace runs on it.
    pub fn store(&self) -> Option<&Store> {
        match &self.backend {
            Backend::Embedded(store) => Some(store),
            Backend::ClickHouse(_) => None,
        }
    }

    /// Bytes accepted and not yet where queries read them from on disk (embedded: in memory
    /// buffers; ClickHouse: in the spool).
    pub fn buffered_bytes(&self) -> usize {
        match &self.backend {
            Backend::Embedded(store) => store.buffered_bytes(),
            Backend::ClickHouse(ch) => ch.spool().pending_bytes(),
        }
    }

    /// The write-ahead log's counters (embedded: the store's log; ClickHouse: the spool's).
    pub fn wal_stats(&self) -> &crate::wal::WalStats {
        match &self.backend {
            Backend::Embedded(store) => store.wal().stats(),
            Backend::ClickHouse(ch) => ch.spool().wal_stats(),
        }
    }

    /// Merges small parts and applies TTLs (embedded; ClickHouse does its own).
    pub fn maintain(&self, now_secs: i64, max_parts: usize) -> Result<usize> {
        match &self.backend {
            Backend::Embedded(store) => store.maintain(now_secs, max_parts),
            Backend::ClickHouse(_) => Ok(0),
        }
    }

    /// Removes every row of a table.
    pub fn truncate(&self, table: &str) -> Result<()> {
        match &self.backend {
            Backend::Embedded(store) => store.truncate(table).map(drop),
            Backend::ClickHouse(ch) => block(ch.truncate(table)),
        }
    }

    /// Rows and bytes a table holds.
    pub async fn stats(&self, table: &str) -> TableStats {
        match &self.backend {
            Backend::Embedded(store) => store.stats(table).unwrap_or_default(),
            Backend::ClickHouse(ch) => match ch.stats(table).await {
                Ok((rows, bytes)) => TableStats { rows, bytes },
                Err(_) => TableStats::default(),
            },
        }
    }

    /// Sends what is buffered on its way (ClickHouse: waits up to `deadline` for the spool to
    /// drain, then stops it; embedded: writes buffers to Parquet).
    pub async fn close(&self, deadline: std::time::Duration) -> Result<()> {
        match &self.backend {
            Backend::Embedded(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.flush())
                    .await
                    .map_err(|e| Error::Damaged(e.to_string()))??;
            }
            Backend::ClickHouse(ch) => ch.spool().close(deadline).await,
        }
        Ok(())
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

/// Runs a future on the current runtime from one of its blocking threads (ClickHouse calls
/// made by the synchronous write paths, which the server runs with `spawn_blocking`).
fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Handle::current().block_on(f)
}

/// The usage log's table on ClickHouse (`parameters` as JSON text where `Map` is missing).
fn usage_spec(ch: &ClickHouse) -> TableSpec {
    let def = crate::usage::table();
    let columns: Vec<(String, ChType)> = def
        .columns
        .into_iter()
        .map(|(n, t)| match t {
            ChType::Map(..) if !ch.features().has("Map") => (n, ChType::String),
            other => (n, other),
        })
        .collect();
    TableSpec::plain(
        &clickhouse::table_name(&def.name),
        &columns,
        &def.sorting_key.join(", "),
        def.partition_key.as_deref(),
        def.ttl.as_deref(),
    )
}

/// A data source's quarantine table on ClickHouse.
fn quarantine_spec(name: &str, e: &Entry) -> TableSpec {
    TableSpec::plain(&format!("{name}{QUARANTINE}"), &e.quarantine_columns, "insertion_date", None, None)
}

/// Rows for `table` as `RowBinary` for `columns`, each value written as the server stores its
/// type.
fn encode_rows(
    ch: &ClickHouse,
    table: &str,
    columns: &[(String, ChType)],
    rows: &[Vec<Cell>],
) -> Result<clickhouse::spool::Rows> {
    let stored = columns
        .iter()
        .map(|(n, t)| {
            clickhouse::types::physical(t, ch.features()).map_err(|e| Error::Invalid(format!("column '{n}': {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(rows.len() * 64);
    for row in rows {
        for ((cell, (_, logical)), physical) in row.iter().zip(columns).zip(&stored) {
            clickhouse::rowbinary::write(&mut out, cell, logical, physical).map_err(Error::Invalid)?;
        }
    }
    Ok(clickhouse::spool::Rows {
        table: table.to_string(),
        columns: columns.iter().map(|(n, _)| n.clone()).collect(),
        count: rows.len() as u64,
        bytes: out,
    })
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
