//! The data directory: tables, their buffers and parts, the manifest, and the WAL that makes
//! every acknowledged append survive a crash.
//!
//! ```text
//! <data-dir>/manifest.json        tables, their parts, and the last LSN already in Parquet
//! <data-dir>/wal/*.wal            everything acknowledged since (replayed on open)
//! <data-dir>/tables/<t>/<n>.parquet
//! ```
//!
//! Appends go through the WAL's group commit and land in the table's buffer, in LSN order, on
//! the WAL thread; a flush takes the buffers (a gap-free prefix of the log), writes sorted
//! parts per partition, then replaces the manifest atomically with the new parts and the LSN
//! they cover, and only then drops the WAL segments below it.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use datafiles::ChType;
use serde::{Deserialize, Serialize};

use super::codec::{self, Op};
use super::partition::{Labels, PartitionKey};
use super::ttl::Ttl;
use super::{evolve, merge, part, sortkey};
use crate::ingest::arrow::schema;
use crate::ingest::value::convert;
use crate::wal::{Lsn, Wal, WalOptions};
use crate::{Error, Result};

/// A table as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    /// Name.
    pub name: String,
    /// Columns and their ClickHouse types.
    pub columns: Vec<(String, ChType)>,
    /// Columns rows are sorted by within a part.
    pub sorting_key: Vec<String>,
    /// `ENGINE_PARTITION_KEY`, as written.
    pub partition_key: Option<String>,
    /// `ENGINE_TTL`, as written (rows past it are removed by maintenance).
    pub ttl: Option<String>,
}

/// A Parquet part in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    /// File name under the table's directory.
    pub file: String,
    /// Partition value.
    pub partition: String,
    /// Rows.
    pub rows: u64,
    /// Bytes on disk.
    pub bytes: u64,
    /// When its first row expires under the table's TTL (seconds since the epoch), if the
    /// table has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    /// The table's [`shape`](ManifestTable::shape) its rows were written in.
    #[serde(default)]
    pub shape: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ManifestTable {
    columns: Vec<(String, String)>,
    sorting_key: Vec<String>,
    partition_key: Option<String>,
    parts: Vec<PartMeta>,
    #[serde(default)]
    ttl: Option<String>,
    /// The LSN of the `Create` record of this incarnation of the table: log records of the
    /// same name older than it belong to a dropped predecessor and are never applied.
    #[serde(default)]
    created_lsn: Lsn,
    /// What rows written before a column was added read for it (JSON, converted to the
    /// column's type): see [`evolve`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    fills: BTreeMap<String, serde_json::Value>,
    /// Bumped by every column change: parts written in an older shape are read through
    /// [`evolve`], the others straight from Parquet.
    #[serde(default)]
    shape: u32,
    /// The LSN of the rename that gave the table its current name (0: it was created with it).
    #[serde(default)]
    named_lsn: Lsn,
    /// Names the table had before, each with the LSNs between which it had it, so that log
    /// records written under an old name replay into this table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    former: Vec<(String, Lsn, Lsn)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    flushed_lsn: Lsn,
    next_part: u64,
    tables: BTreeMap<String, ManifestTable>,
}

#[derive(Debug, Default)]
struct Buffer {
    batches: Vec<RecordBatch>,
    /// Batches a flush is writing to Parquet: still read by queries until their parts are in
    /// the manifest, so no row is ever invisible.
    flushing: Vec<RecordBatch>,
    rows: usize,
    bytes: usize,
    /// Bumped by truncation, so a flush that raced with it discards what it wrote.
    generation: u64,
}

#[derive(Debug)]
struct State {
    manifest: Manifest,
    schemas: HashMap<String, SchemaRef>,
    buffers: HashMap<String, Buffer>,
    applied_lsn: Lsn,
    /// Part files no longer in the manifest, with when they left it: queries that started
    /// before may still read them, so they are deleted only after [`RETIRED_FOR`].
    retired: Vec<(PathBuf, std::time::Instant)>,
    /// When each partition (table, partition) last got a part from a flush: a partition quiet
    /// for [`IDLE_AFTER`] is merged down to one part.
    touched: HashMap<(String, String), std::time::Instant>,
    /// Last buffer generation handed out: unique across tables and their re-creations, so a
    /// flush that took rows from a table dropped (or truncated) meanwhile never publishes them
    /// into its successor of the same name.
    generations: u64,
}

impl State {
    fn next_generation(&mut self) -> u64 {
        self.generations += 1;
        self.generations
    }
}

/// How long a partition goes without new parts before its parts are merged into one.
pub const IDLE_AFTER: std::time::Duration = std::time::Duration::from_secs(20);

/// How long a part file replaced by a merge, TTL or truncate stays on disk for queries that
/// started before (far above the query time limit).
const RETIRED_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// How a part is written: its table's TTL (to record the first expiry) and shape.
#[derive(Clone, Copy)]
struct PartSpec<'a> {
    ttl: Option<&'a Ttl>,
    shape: u32,
}

/// What one query reads of a table (see [`Store::snapshot`]).
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The table's columns.
    pub schema: SchemaRef,
    /// Parquet parts to read (path, bytes).
    pub files: Vec<(PathBuf, u64)>,
    /// Rows held in memory: the buffer, and parts of older shapes conformed.
    pub memory: Vec<RecordBatch>,
}

/// Row and byte counts of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableStats {
    /// Rows in parts and buffer.
    pub rows: u64,
    /// Bytes in parts plus buffered bytes.
    pub bytes: u64,
}

/// An open data directory.
pub struct Store {
    dir: PathBuf,
    wal: Wal,
    state: Arc<Mutex<State>>,
    /// Shared by flushes and merges, exclusive for renames: a rename never moves a table's
    /// files while parts are being written into them.
    upkeep: std::sync::RwLock<()>,
    /// One flush at a time.
    flushing: Mutex<()>,
    /// One round of upkeep (merges, TTL) at a time; it runs beside flushes.
    maintaining: Mutex<()>,
    /// `<data-dir>/LOCK`, locked exclusively for as long as the store is open (the operating
    /// system releases it when the process dies, even by `kill -9`).
    _lock: File,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn table_columns(t: &ManifestTable) -> Result<Vec<(String, ChType)>> {
    t.columns.iter().map(|(n, ty)| Ok((n.clone(), ChType::parse(ty).map_err(|e| Error::Damaged(e.0))?))).collect()
}

fn table_schema(t: &ManifestTable) -> Result<SchemaRef> {
    schema(&table_columns(t)?).map_err(Error::arrow)
}

/// How rows of an older shape are read as a table's current columns.
struct Shape {
    schema: SchemaRef,
    columns: Vec<(String, ChType)>,
    fills: BTreeMap<String, serde_json::Value>,
}

impl Shape {
    fn of(t: &ManifestTable) -> Result<Shape> {
        Ok(Shape { schema: table_schema(t)?, columns: table_columns(t)?, fills: t.fills.clone() })
    }

    fn conform(&self, rows: &RecordBatch) -> Result<RecordBatch> {
        evolve::conform(rows, &self.schema, &self.columns, &self.fills)
    }
}

/// Adds `batch` to the unflushed rows of `table` (as rows of its current columns: a record
/// logged just before a column was added is replayed after the change).
fn buffer(state: &mut State, table: String, batch: RecordBatch) -> Result<()> {
    let batch = match (state.schemas.get(&table), state.manifest.tables.get(&table)) {
        (Some(s), Some(t)) if s.fields() != batch.schema().fields() => Shape::of(t)?.conform(&batch)?,
        _ => batch,
    };
    let generation = if state.buffers.contains_key(&table) { 0 } else { state.next_generation() };
    let buf = state.buffers.entry(table).or_insert_with(|| Buffer { generation, ..Buffer::default() });
    buf.rows += batch.num_rows();
    buf.bytes += batch.get_array_memory_size();
    buf.batches.push(batch);
    Ok(())
}

/// Where a workspace keeps the definition of data source `name` (moved along by renames).
fn datafile(dir: &Path, name: &str) -> PathBuf {
    dir.join("datasources").join(format!("{name}.datasource"))
}

/// The current name of the table a record at `lsn` about `table` concerns: the table that had
/// that name at `lsn` (not an older incarnation dropped since), wherever it was renamed to.
fn resolve(state: &State, table: &str, lsn: Lsn) -> Option<String> {
    if let Some(t) = state.manifest.tables.get(table)
        && t.created_lsn.max(t.named_lsn) < lsn
    {
        return Some(table.to_string());
    }
    let had_it = |t: &ManifestTable| t.former.iter().any(|(n, from, until)| n == table && *from < lsn && lsn < *until);
    state.manifest.tables.iter().find(|(_, t)| had_it(t)).map(|(name, _)| name.clone())
}

fn apply(state: &mut State, dir: &Path, op: Op, lsn: Lsn) -> Result<()> {
    state.applied_lsn = state.applied_lsn.max(lsn);
    match op {
        Op::Create { table, definition } => {
            if state.manifest.tables.contains_key(&table)
                || state.manifest.tables.values().any(|t| t.created_lsn == lsn)
            {
                // Already in the manifest: this record (perhaps renamed since), a concurrent
                // create of the same name, or an older incarnation replayed after a newer one.
                return Ok(());
            }
            let mut entry: ManifestTable =
                serde_json::from_slice(&definition).map_err(|e| Error::Damaged(format!("create record: {e}")))?;
            entry.created_lsn = lsn;
            entry.parts.clear();
            let schema = table_schema(&entry)?;
            let table_dir = dir.join("tables").join(&table);
            std::fs::create_dir_all(&table_dir).map_err(|e| Error::io(&table_dir, e))?;
            state.manifest.tables.insert(table.clone(), entry);
            state.schemas.insert(table.clone(), schema);
            state.buffers.remove(&table);
            write_manifest(dir, &state.manifest)?;
        }
        Op::Append { table, batch } => {
            let Some(table) = resolve(state, &table, lsn) else {
                return Ok(()); // for a table dropped since
            };
            buffer(state, table, batch)?;
        }
        Op::Alter { table, definition } => {
            let Some(table) = resolve(state, &table, lsn) else { return Ok(()) };
            let altered: ManifestTable =
                serde_json::from_slice(&definition).map_err(|e| Error::Damaged(format!("alter record: {e}")))?;
            let Some(t) = state.manifest.tables.get_mut(&table) else { return Ok(()) };
            if t.ttl != altered.ttl {
                for p in &mut t.parts {
                    p.expires = None; // computed under the old TTL
                }
            }
            if t.columns != altered.columns {
                t.shape += 1;
            }
            t.columns = altered.columns;
            t.ttl = altered.ttl;
            t.fills = altered.fills;
            let shape = Shape::of(t)?;
            if let Some(buf) = state.buffers.get_mut(&table) {
                for b in buf.batches.iter_mut().chain(buf.flushing.iter_mut()) {
                    *b = shape.conform(b)?;
                }
                buf.bytes = buf.batches.iter().chain(&buf.flushing).map(RecordBatch::get_array_memory_size).sum();
            }
            state.schemas.insert(table.clone(), shape.schema);
            write_manifest(dir, &state.manifest)?;
        }
        Op::Rename { renames } => {
            // Only renames whose source is still this incarnation and whose target is free
            // (a replay after the manifest already moved them skips them).
            let renames: Vec<(String, String)> = renames
                .into_iter()
                .filter_map(|(from, to)| {
                    let from = resolve(state, &from, lsn)?;
                    (!state.manifest.tables.contains_key(&to)).then_some((from, to))
                })
                .collect();
            if renames.is_empty() {
                return Ok(());
            }
            // Files first, then the manifest: a crash in between replays this record, and each
            // move below is skipped once done.
            for (from, to) in &renames {
                let (old, new) = (dir.join("tables").join(from), dir.join("tables").join(to));
                if old.exists() {
                    if new.exists() {
                        let _ = std::fs::remove_dir_all(&new); // left by a dropped table
                    }
                    std::fs::rename(&old, &new).map_err(|e| Error::io(&old, e))?;
                }
                let (old, new) = (datafile(dir, from), datafile(dir, to));
                if old.exists() {
                    std::fs::rename(&old, &new).map_err(|e| Error::io(&old, e))?;
                }
            }
            for d in [dir.join("tables"), dir.join("datasources")] {
                if d.exists() {
                    File::open(&d).and_then(|f| f.sync_all()).map_err(|e| Error::io(&d, e))?;
                }
            }
            for (from, to) in renames {
                if let Some(mut t) = state.manifest.tables.remove(&from) {
                    t.former.push((from.clone(), t.created_lsn.max(t.named_lsn), lsn));
                    t.named_lsn = lsn;
                    state.manifest.tables.insert(to.clone(), t);
                }
                if let Some(s) = state.schemas.remove(&from) {
                    state.schemas.insert(to.clone(), s);
                }
                if let Some(b) = state.buffers.remove(&from) {
                    state.buffers.insert(to, b);
                }
            }
            write_manifest(dir, &state.manifest)?;
        }
        Op::Drop { table } => {
            let Some(table) = resolve(state, &table, lsn) else { return Ok(()) };
            state.buffers.remove(&table);
            state.schemas.remove(&table);
            state.manifest.tables.remove(&table);
            write_manifest(dir, &state.manifest)?;
            let _ = std::fs::remove_dir_all(dir.join("tables").join(&table));
        }
        Op::Replace { table, batch } => {
            let Some(table) = resolve(state, &table, lsn) else { return Ok(()) };
            clear(state, dir, &table)?;
            buffer(state, table, batch)?;
        }
        Op::Truncate { table } => {
            let Some(table) = resolve(state, &table, lsn) else { return Ok(()) };
            clear(state, dir, &table)?;
        }
    }
    Ok(())
}

/// Empties a table: its buffer (and any flush in progress) and its parts.
fn clear(state: &mut State, dir: &Path, table: &str) -> Result<()> {
    let generation = state.next_generation();
    let buf = state.buffers.entry(table.to_string()).or_default();
    buf.batches.clear();
    buf.flushing.clear();
    buf.rows = 0;
    buf.bytes = 0;
    buf.generation = generation;
    if let Some(t) = state.manifest.tables.get_mut(table)
        && !t.parts.is_empty()
    {
        let old = std::mem::take(&mut t.parts);
        write_manifest(dir, &state.manifest)?;
        let now = std::time::Instant::now();
        state.retired.extend(old.into_iter().map(|p| (dir.join("tables").join(table).join(&p.file), now)));
    }
    Ok(())
}

/// Replaces the manifest atomically: temporary file, fsync, rename, fsync of the directory.
fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    let tmp = dir.join("manifest.json.tmp");
    let path = dir.join("manifest.json");
    let text = serde_json::to_vec_pretty(manifest).map_err(|e| Error::Damaged(e.to_string()))?;
    let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(&text).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))?;
    Ok(())
}

impl Store {
    /// Opens (creating) a data directory and replays the WAL into the buffers.
    pub fn open(dir: &Path, wal_options: WalOptions) -> Result<Store> {
        std::fs::create_dir_all(dir.join("tables")).map_err(|e| Error::io(dir, e))?;
        // Absolute, so queries can name part files to the object store.
        let canonical = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
        let dir = canonical.as_path();
        let lock_path = dir.join("LOCK");
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Busy(dir.to_path_buf())),
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
        }
        let manifest_path = dir.join("manifest.json");
        let manifest: Manifest = match std::fs::read(&manifest_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Damaged(format!("manifest.json: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest { version: 1, ..Manifest::default() },
            Err(e) => return Err(Error::io(&manifest_path, e)),
        };
        let schemas = manifest
            .tables
            .iter()
            .map(|(n, t)| Ok((n.clone(), table_schema(t)?)))
            .collect::<Result<HashMap<_, _>>>()?;
        let flushed = manifest.flushed_lsn;
        let mut state = State {
            manifest,
            schemas,
            buffers: HashMap::new(),
            applied_lsn: flushed,
            retired: Vec::new(),
            touched: HashMap::new(),
            generations: 0,
        };
        let mut replay_error = None;
        let wal = Wal::open(&dir.join("wal"), wal_options, flushed, |lsn, payload| {
            let result = codec::decode(payload).map_err(Error::arrow).and_then(|op| apply(&mut state, dir, op, lsn));
            if let Err(e) = result {
                replay_error.get_or_insert(e);
            }
            Ok(())
        })
        .map_err(Error::Wal)?;
        if let Some(e) = replay_error {
            return Err(e);
        }
        Ok(Store {
            dir: dir.to_path_buf(),
            wal,
            state: Arc::new(Mutex::new(state)),
            upkeep: std::sync::RwLock::new(()),
            flushing: Mutex::new(()),
            maintaining: Mutex::new(()),
            _lock: lock_file,
        })
    }

    /// Creates a table; creating one that exists with the same definition does nothing.
    pub fn create_table(&self, def: &TableDef) -> Result<()> {
        PartitionKey::parse(def.partition_key.as_deref()).map_err(Error::Invalid)?;
        for k in &def.sorting_key {
            if !def.columns.iter().any(|(n, _)| n == k) {
                return Err(Error::Invalid(format!("sorting key column '{k}' does not exist")));
            }
        }
        let entry = ManifestTable {
            columns: def.columns.iter().map(|(n, t)| (n.clone(), t.to_string())).collect(),
            sorting_key: def.sorting_key.clone(),
            partition_key: def.partition_key.clone(),
            parts: Vec::new(),
            ttl: def.ttl.clone(),
            created_lsn: 0,
            fills: BTreeMap::new(),
            shape: 0,
            named_lsn: 0,
            former: Vec::new(),
        };
        if let Some(t) = &def.ttl {
            Ttl::parse(t).map_err(Error::Invalid)?;
        }
        table_schema(&entry)?;
        if let Some(existing) = lock(&self.state).manifest.tables.get(&def.name) {
            if existing.columns == entry.columns
                && existing.sorting_key == entry.sorting_key
                && existing.partition_key == entry.partition_key
            {
                return Ok(());
            }
            return Err(Error::Invalid(format!("Data Source '{}' already exists with another definition", def.name)));
        }
        let definition = serde_json::to_vec(&entry).map_err(|e| Error::Invalid(e.to_string()))?;
        self.log(Op::Create { table: def.name.clone(), definition })?;
        // A concurrent create of the same name may have won.
        match lock(&self.state).manifest.tables.get(&def.name) {
            Some(t)
                if t.columns == entry.columns
                    && t.sorting_key == entry.sorting_key
                    && t.partition_key == entry.partition_key =>
            {
                Ok(())
            }
            _ => Err(Error::Invalid(format!("Data Source '{}' already exists with another definition", def.name))),
        }
    }

    /// Changes a table compatibly: `def` keeps every column of the table with its type (new
    /// columns may be added anywhere), the same sorting and partition keys, and may change the
    /// TTL. `fills` are what existing rows read for the added columns (absent: NULL or the
    /// type's zero). Nothing is rewritten; returns whether anything changed.
    pub fn alter_table(&self, def: &TableDef, fills: BTreeMap<String, serde_json::Value>) -> Result<bool> {
        let refuse = |why: String| Err(Error::Invalid(format!("Data Source '{}': {why}", def.name)));
        let Some(existing) = lock(&self.state).manifest.tables.get(&def.name).cloned() else {
            return Err(Error::NoSuchTable(def.name.clone()));
        };
        if existing.sorting_key != def.sorting_key {
            return refuse("changing the sorting key is not a compatible change".into());
        }
        if existing.partition_key != def.partition_key {
            return refuse("changing the partition key is not a compatible change".into());
        }
        if let Some(t) = &def.ttl {
            Ttl::parse(t).map_err(Error::Invalid)?;
        }
        let columns: Vec<(String, String)> = def.columns.iter().map(|(n, t)| (n.clone(), t.to_string())).collect();
        for (name, ty) in &existing.columns {
            match columns.iter().find(|(n, _)| n == name) {
                None => return refuse(format!("removing column '{name}' is not a compatible change")),
                Some((_, t)) if t != ty => {
                    return refuse(format!(
                        "changing the type of column '{name}' from {ty} to {t} is not a compatible change"
                    ));
                }
                Some(_) => {}
            }
        }
        if columns == existing.columns && def.ttl == existing.ttl {
            return Ok(false);
        }
        let mut all_fills = existing.fills.clone();
        for (name, _) in &columns {
            if !existing.columns.iter().any(|(n, _)| n == name)
                && let Some(v) = fills.get(name)
            {
                all_fills.insert(name.clone(), v.clone());
            }
        }
        let altered = ManifestTable { columns, ttl: def.ttl.clone(), fills: all_fills, ..existing };
        for (name, ty) in table_columns(&altered)? {
            if let Some(v) = altered.fills.get(&name).filter(|v| !v.is_null()) {
                convert(&ty, v).map_err(|e| Error::Invalid(format!("column '{name}': DEFAULT {v}: {e}")))?;
            }
        }
        table_schema(&altered)?;
        let definition = serde_json::to_vec(&altered).map_err(|e| Error::Invalid(e.to_string()))?;
        self.log(Op::Alter { table: def.name.clone(), definition })?;
        Ok(true)
    }

    /// The Arrow schema of a table.
    pub fn schema(&self, table: &str) -> Result<SchemaRef> {
        lock(&self.state).schemas.get(table).cloned().ok_or_else(|| Error::NoSuchTable(table.to_string()))
    }

    /// Names of the tables.
    pub fn tables(&self) -> Vec<String> {
        lock(&self.state).manifest.tables.keys().cloned().collect()
    }

    /// Appends rows; returns once they are durable and visible to [`scan`](Self::scan).
    pub fn append(&self, table: &str, batch: RecordBatch) -> Result<Lsn> {
        let batch = self.shaped(table, batch)?;
        self.log(Op::Append { table: table.to_string(), batch })
    }

    /// `batch` as rows of the table's current columns: rows converted just before a column was
    /// added get its fill; anything else that does not match is refused.
    fn shaped(&self, table: &str, batch: RecordBatch) -> Result<RecordBatch> {
        let shape = {
            let state = lock(&self.state);
            let expected = state.schemas.get(table).ok_or_else(|| Error::NoSuchTable(table.to_string()))?;
            if batch.schema().fields() == expected.fields() {
                return Ok(batch);
            }
            Shape::of(state.manifest.tables.get(table).ok_or_else(|| Error::NoSuchTable(table.to_string()))?)?
        };
        let subset = batch.schema().fields().iter().all(|f| shape.schema.fields().iter().any(|e| e == f));
        if !subset {
            return Err(Error::Invalid(format!("rows do not match the schema of '{table}'")));
        }
        shape.conform(&batch)
    }

    /// Replaces every row of a table with `batch`, in one logged step.
    pub fn replace(&self, table: &str, batch: RecordBatch) -> Result<Lsn> {
        let batch = self.shaped(table, batch)?;
        self.log(Op::Replace { table: table.to_string(), batch })
    }

    /// Removes every row of a table (buffer and parts).
    pub fn truncate(&self, table: &str) -> Result<Lsn> {
        self.schema(table)?;
        self.log(Op::Truncate { table: table.to_string() })
    }

    /// Renames tables, all in one logged step (see [`Op::Rename`]).
    pub fn rename_tables(&self, renames: &[(String, String)]) -> Result<Lsn> {
        let _upkeep = self.upkeep.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        {
            let state = lock(&self.state);
            for (from, to) in renames {
                if !state.manifest.tables.contains_key(from) {
                    return Err(Error::NoSuchTable(from.clone()));
                }
                if state.manifest.tables.contains_key(to) {
                    return Err(Error::Invalid(format!("'{to}' already exists")));
                }
            }
        }
        self.log(Op::Rename { renames: renames.to_vec() })
    }

    /// Removes a table and its data.
    pub fn drop_table(&self, table: &str) -> Result<Lsn> {
        self.schema(table)?;
        self.log(Op::Drop { table: table.to_string() })
    }

    fn log(&self, op: Op) -> Result<Lsn> {
        let payload = codec::encode(&op).map_err(Error::arrow)?;
        let state = self.state.clone();
        let dir = self.dir.clone();
        let failure: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
        let fail = failure.clone();
        let lsn = self
            .wal
            .append_then(
                payload,
                Some(Box::new(move |lsn| {
                    if let Err(e) = apply(&mut lock(&state), &dir, op, lsn)
                        && let Ok(mut f) = fail.lock()
                    {
                        *f = Some(e);
                    }
                })),
            )
            .map_err(Error::Wal)?;
        if let Some(e) = failure.lock().ok().and_then(|mut f| f.take()) {
            return Err(e);
        }
        Ok(lsn)
    }

    /// Writes every buffer to sorted Parquet parts and advances the manifest; returns the rows
    /// written.
    pub fn flush(&self) -> Result<u64> {
        let _one = self.flushing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _upkeep = self.upkeep.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (taken, covered, defs) = {
            let mut state = lock(&self.state);
            let covered = state.applied_lsn;
            let mut taken = Vec::new();
            for (name, buf) in state.buffers.iter_mut() {
                if !buf.batches.is_empty() {
                    let batches = std::mem::take(&mut buf.batches);
                    taken.push((name.clone(), batches.clone(), buf.generation));
                    buf.flushing = batches;
                }
            }
            let defs: HashMap<String, ManifestTable> = taken
                .iter()
                .filter_map(|(n, _, _)| state.manifest.tables.get(n).map(|t| (n.clone(), t.clone())))
                .collect();
            (taken, covered, defs)
        };
        let mut written: Vec<(String, u64, Vec<PartMeta>)> = Vec::new();
        let mut rows = 0;
        let names: Vec<String> = taken.iter().map(|(n, _, _)| n.clone()).collect();
        let result = (|| -> Result<()> {
            for (name, batches, generation) in taken {
                let def = defs.get(&name).ok_or_else(|| Error::NoSuchTable(name.clone()))?;
                let parts_of_table = self.write_parts(&name, &batches, def)?;
                rows += batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
                written.push((name, generation, parts_of_table));
            }
            Ok(())
        })();
        let mut state = lock(&self.state);
        if let Err(e) = result {
            // Nothing was published: the rows go back to the buffers, ahead of newer ones.
            for name in names {
                if let Some(buf) = state.buffers.get_mut(&name) {
                    let mut back = std::mem::take(&mut buf.flushing);
                    back.append(&mut buf.batches);
                    buf.batches = back;
                }
            }
            return Err(e);
        }
        let mut state_touched = Vec::new();
        for (name, generation, parts) in written {
            let current = state.buffers.get(&name).map_or(0, |b| b.generation);
            if current != generation {
                // Truncated while we wrote: these rows are gone.
                for p in parts {
                    let _ = std::fs::remove_file(self.dir.join("tables").join(&name).join(&p.file));
                }
                continue;
            }
            match state.manifest.tables.get_mut(&name) {
                Some(t) => {
                    let now = std::time::Instant::now();
                    for p in &parts {
                        state_touched.push(((name.clone(), p.partition.clone()), now));
                    }
                    t.parts.extend(parts)
                }
                None => {
                    // Dropped while we wrote.
                    for p in parts {
                        let _ = std::fs::remove_file(self.dir.join("tables").join(&name).join(&p.file));
                    }
                    continue;
                }
            }
            // The rows are now in parts: stop reading them from memory.
            if let Some(buf) = state.buffers.get_mut(&name) {
                let flushed = std::mem::take(&mut buf.flushing);
                buf.rows -= flushed.iter().map(RecordBatch::num_rows).sum::<usize>().min(buf.rows);
                buf.bytes -= flushed.iter().map(RecordBatch::get_array_memory_size).sum::<usize>().min(buf.bytes);
            }
        }
        state.touched.extend(state_touched);
        state.manifest.flushed_lsn = state.manifest.flushed_lsn.max(covered);
        write_manifest(&self.dir, &state.manifest)?;
        drop(state);
        self.wal.truncate_through(covered).map_err(Error::Wal)?;
        Ok(rows)
    }

    /// Writes `batches` as one sorted part per partition, durably; returns the new parts.
    fn write_parts(&self, table: &str, batches: &[RecordBatch], def: &ManifestTable) -> Result<Vec<PartMeta>> {
        let key = PartitionKey::parse(def.partition_key.as_deref()).map_err(Error::Invalid)?;
        let ttl = def.ttl.as_deref().map(Ttl::parse).transpose().map_err(Error::Invalid)?;
        let table_dir = self.dir.join("tables").join(table);
        std::fs::create_dir_all(&table_dir).map_err(|e| Error::io(&table_dir, e))?;
        let mut labels = Labels::default();
        let mut groups: Vec<Vec<(usize, usize)>> = Vec::new();
        for (b, batch) in batches.iter().enumerate() {
            let ids = key.assign(batch, &mut labels).map_err(Error::Invalid)?;
            groups.resize_with(labels.len(), Vec::new);
            for (row, id) in ids.into_iter().enumerate() {
                groups[id as usize].push((b, row));
            }
        }
        let mut out = Vec::new();
        for (id, mut positions) in groups.into_iter().enumerate() {
            sortkey::sort(batches, &def.sorting_key, &mut positions)?;
            let partition = labels.name(id as u32);
            let how = PartSpec { ttl: ttl.as_ref(), shape: def.shape };
            out.push(self.write_part(table, partition, batches, &positions, how)?);
        }
        File::open(&table_dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(&table_dir, e))?;
        Ok(out)
    }

    /// Writes the rows at `positions` of `batches`, in that order, as one part of `partition`
    /// (not yet in the manifest). Rows are gathered a row group at a time, so the part is never
    /// a second copy of its rows in memory.
    fn write_part(
        &self,
        table: &str,
        partition: &str,
        batches: &[RecordBatch],
        positions: &[sortkey::Position],
        how: PartSpec<'_>,
    ) -> Result<PartMeta> {
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        let chunks = positions
            .chunks(part::ROW_GROUP_ROWS)
            .map(|chunk| arrow_select::interleave::interleave_record_batch(&refs, chunk).map_err(Error::arrow));
        let schema = batches.first().ok_or_else(|| Error::Invalid("a part needs rows".into()))?.schema();
        self.write_rows(table, partition, schema, chunks, how)
    }

    /// Writes `chunks` (in order, a row group each) as one part of `partition` (not yet in the
    /// manifest).
    fn write_rows(
        &self,
        table: &str,
        partition: &str,
        schema: SchemaRef,
        chunks: impl Iterator<Item = Result<RecordBatch>>,
        how: PartSpec<'_>,
    ) -> Result<PartMeta> {
        let PartSpec { ttl, shape } = how;
        let file = format!("{:010}.parquet", self.next_part_id());
        let mut expires = ttl.map(|_| i64::MAX);
        let mut rows = 0u64;
        let chunks = chunks.map(|chunk| {
            let chunk = chunk?;
            if let (Some(t), Some(e)) = (ttl, expires.as_mut()) {
                *e = (*e).min(t.first_expiry(&chunk).map_err(Error::Invalid)?);
            }
            rows += chunk.num_rows() as u64;
            Ok(chunk)
        });
        let bytes = part::write(&self.dir.join("tables").join(table).join(&file), schema, chunks)?;
        Ok(PartMeta { file, partition: partition.to_string(), rows, bytes, expires, shape })
    }

    /// A part file number nobody else will use (flushes and merges may run concurrently).
    fn next_part_id(&self) -> u64 {
        let mut state = lock(&self.state);
        let id = state.manifest.next_part;
        state.manifest.next_part += 1;
        id
    }

    /// What a query of `table` reads, as of now: its parts in the current shape as files, parts
    /// of older shapes read and conformed, and its buffered rows.
    pub fn snapshot(&self, table: &str) -> Result<Snapshot> {
        let (current, older, buffered, shape, schema) = {
            let state = lock(&self.state);
            let t = state.manifest.tables.get(table).ok_or_else(|| Error::NoSuchTable(table.to_string()))?;
            let dir = self.dir.join("tables").join(table);
            let buffered: Vec<RecordBatch> = state
                .buffers
                .get(table)
                .map(|b| b.flushing.iter().chain(&b.batches).cloned().collect())
                .unwrap_or_default();
            let (current, older): (Vec<&PartMeta>, Vec<&PartMeta>) = t.parts.iter().partition(|p| p.shape == t.shape);
            let current: Vec<(PathBuf, u64)> = current.iter().map(|p| (dir.join(&p.file), p.bytes)).collect();
            // Opened under the lock: a part retired afterwards stays readable through its handle.
            let older = older
                .iter()
                .map(|p| {
                    let path = dir.join(&p.file);
                    File::open(&path).map_err(|e| Error::io(&path, e))
                })
                .collect::<Result<Vec<_>>>()?;
            let schema = state.schemas.get(table).cloned().ok_or_else(|| Error::NoSuchTable(table.to_string()))?;
            (current, older, buffered, Shape::of(t)?, schema)
        };
        let mut memory: Vec<RecordBatch> = Vec::new();
        for f in older {
            for b in part::read_file(f)? {
                memory.push(shape.conform(&b)?);
            }
        }
        memory.extend(buffered);
        Ok(Snapshot { schema, files: current, memory })
    }

    /// Every row of a table: its parts, then its buffer.
    pub fn scan(&self, table: &str) -> Result<Vec<RecordBatch>> {
        let (files, buffered, shape) = {
            let state = lock(&self.state);
            let t = state.manifest.tables.get(table).ok_or_else(|| Error::NoSuchTable(table.to_string()))?;
            let buffered = state
                .buffers
                .get(table)
                .map(|b| b.flushing.iter().chain(&b.batches).cloned().collect::<Vec<_>>())
                .unwrap_or_default();
            // Opened under the lock: a part deleted afterwards stays readable through its handle.
            let files = t
                .parts
                .iter()
                .map(|p| {
                    let path = self.dir.join("tables").join(table).join(&p.file);
                    File::open(&path).map_err(|e| Error::io(&path, e))
                })
                .collect::<Result<Vec<_>>>()?;
            (files, buffered, Shape::of(t)?)
        };
        let mut out = Vec::new();
        for f in files {
            for b in part::read_file(f)? {
                out.push(shape.conform(&b)?);
            }
        }
        out.extend(buffered);
        Ok(out)
    }

    /// Background upkeep: in each partition of each table, rows past the table's TTL are
    /// removed and, when a partition has more than `max_parts` parts below
    /// [`MAX_MERGED_ROWS`], the smallest of them are merged into one part of at most that many
    /// rows (so merges stay bounded in memory and never rewrite big parts again and again).
    /// Returns the number of parts rewritten or removed.
    pub fn maintain(&self, now_secs: i64, max_parts: usize) -> Result<usize> {
        let _one = self.maintaining.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _upkeep = self.upkeep.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let expired: Vec<PathBuf> = {
            let mut state = lock(&self.state);
            let (gone, kept): (Vec<_>, Vec<_>) =
                state.retired.drain(..).partition(|(_, at)| at.elapsed() >= RETIRED_FOR);
            state.retired = kept;
            gone.into_iter().map(|(p, _)| p).collect()
        };
        for path in expired {
            let _ = std::fs::remove_file(path);
        }
        let (tables, touched) = {
            let state = lock(&self.state);
            let tables: Vec<(String, ManifestTable)> =
                state.manifest.tables.iter().map(|(n, t)| (n.clone(), t.clone())).collect();
            (tables, state.touched.clone())
        };
        let mut changed = 0;
        for (name, t) in tables {
            let ttl = t.ttl.as_deref().map(Ttl::parse).transpose().map_err(Error::Invalid)?;
            let mut by_partition: BTreeMap<&str, Vec<&PartMeta>> = BTreeMap::new();
            for p in &t.parts {
                by_partition.entry(p.partition.as_str()).or_default().push(p);
            }
            for (partition, parts) in &by_partition {
                let quiet =
                    touched.get(&(name.clone(), partition.to_string())).is_none_or(|t| t.elapsed() >= IDLE_AFTER);
                if let Some(ttl) = &ttl {
                    // Only parts with a row past its time (or written before this was tracked).
                    let due: Vec<&PartMeta> =
                        parts.iter().copied().filter(|p| p.expires.is_none_or(|e| e <= now_secs)).collect();
                    changed += self.rewrite(&name, &t, &due, Some(ttl), now_secs, false)?;
                }
                let merge = merge_candidates(parts, max_parts, quiet);
                if !merge.is_empty() {
                    changed += self.rewrite(&name, &t, &merge, ttl.as_ref(), now_secs, true)?;
                }
            }
        }
        Ok(changed)
    }

    /// Rewrites `parts` of a partition as one part (merged, sorted, without expired rows), or
    /// only drops expired rows part by part when not merging. Returns the parts replaced.
    fn rewrite(
        &self,
        table: &str,
        def: &ManifestTable,
        parts: &[&PartMeta],
        ttl: Option<&Ttl>,
        now_secs: i64,
        merge: bool,
    ) -> Result<usize> {
        let groups: Vec<Vec<&PartMeta>> =
            if merge { vec![parts.to_vec()] } else { parts.iter().map(|p| vec![*p]).collect() };
        let shape = Shape::of(def)?;
        let schema = self.schema(table)?;
        let prepare = |b: RecordBatch| -> Result<RecordBatch> {
            let b = shape.conform(&b)?;
            match ttl {
                Some(ttl) => ttl.keep(&b, now_secs).map_err(Error::Invalid),
                None => Ok(b),
            }
        };
        let mut replaced = 0;
        for group in groups {
            let dir = self.dir.join("tables").join(table);
            let files = group
                .iter()
                .map(|p| File::open(dir.join(&p.file)).map_err(|e| Error::io(&dir.join(&p.file), e)))
                .collect::<Result<Vec<_>>>()?;
            let mut rows = merge::Merge::open(files, &def.sorting_key, &prepare)?;
            let how = PartSpec { ttl, shape: def.shape };
            let written = self.write_rows(table, &group[0].partition, schema.clone(), &mut rows, how)?;
            let (before, after) = (rows.rows_in, rows.rows_out);
            drop(rows);
            let new_part = if after == 0 || (!merge && after == before) {
                let _ = std::fs::remove_file(dir.join(&written.file));
                if !merge && after == before {
                    continue; // nothing expired in this part
                }
                None
            } else {
                Some(written)
            };
            let mut state = lock(&self.state);
            let Some(t) = state.manifest.tables.get_mut(table) else { continue };
            // Only if every input part is still there (no truncate or drop meanwhile).
            if !group.iter().all(|g| t.parts.iter().any(|p| p.file == g.file)) {
                if let Some(p) = new_part {
                    let _ = std::fs::remove_file(self.dir.join("tables").join(table).join(&p.file));
                }
                continue;
            }
            let position = t.parts.iter().position(|p| p.file == group[0].file).unwrap_or(t.parts.len());
            t.parts.retain(|p| !group.iter().any(|g| g.file == p.file));
            if let Some(p) = new_part {
                t.parts.insert(position.min(t.parts.len()), p);
            }
            write_manifest(&self.dir, &state.manifest)?;
            let now = std::time::Instant::now();
            state.retired.extend(group.iter().map(|g| (self.dir.join("tables").join(table).join(&g.file), now)));
            drop(state);
            replaced += group.len();
        }
        Ok(replaced)
    }

    /// The parts of a table.
    pub fn parts(&self, table: &str) -> Result<Vec<PartMeta>> {
        let state = lock(&self.state);
        Ok(state.manifest.tables.get(table).ok_or_else(|| Error::NoSuchTable(table.to_string()))?.parts.clone())
    }

    /// Rows and bytes of a table.
    pub fn stats(&self, table: &str) -> Result<TableStats> {
        let state = lock(&self.state);
        let t = state.manifest.tables.get(table).ok_or_else(|| Error::NoSuchTable(table.to_string()))?;
        let buf = state.buffers.get(table);
        Ok(TableStats {
            rows: t.parts.iter().map(|p| p.rows).sum::<u64>() + buf.map_or(0, |b| b.rows as u64),
            bytes: t.parts.iter().map(|p| p.bytes).sum::<u64>() + buf.map_or(0, |b| b.bytes as u64),
        })
    }

    /// Bytes held in buffers across tables (for the memory budget).
    pub fn buffered_bytes(&self) -> usize {
        lock(&self.state).buffers.values().map(|b| b.bytes).sum()
    }

    /// The write-ahead log (for its counters).
    pub fn wal(&self) -> &Wal {
        &self.wal
    }
}

/// The most rows a merge writes into one part. Merges stream (see [`merge`]), so this bounds
/// how long one merge takes and how often a row is rewritten, not memory.
pub const MAX_MERGED_ROWS: u64 = 50_000_000;

/// The parts of one partition to merge now, among those below [`MAX_MERGED_ROWS`], smallest
/// first and at most that many rows in all:
/// - parts of similar size: the two smallest when the second is at most twice the first, and
///   each next one while it is no bigger than those picked together (so a row is rewritten
///   about log2(part size / flush size) times, and a partition still being written keeps a
///   few parts);
/// - when more than `max_parts` are left anyway, the smallest regardless of size;
/// - when the partition is `quiet` (no new part for [`IDLE_AFTER`]), all of them: a partition
///   that is no longer written ends as one part, which is what its queries read fastest.
fn merge_candidates<'a>(parts: &[&'a PartMeta], max_parts: usize, quiet: bool) -> Vec<&'a PartMeta> {
    let mut small: Vec<&PartMeta> = parts.iter().copied().filter(|p| p.rows < MAX_MERGED_ROWS).collect();
    if small.len() < 2 {
        return Vec::new();
    }
    small.sort_by_key(|p| p.rows);
    let similar = small[1].rows <= 2 * small[0].rows.max(1);
    let crowded = small.len() > max_parts;
    if !(similar || crowded || quiet) {
        return Vec::new();
    }
    let mut total = 0;
    let picked: Vec<&PartMeta> = small
        .into_iter()
        .enumerate()
        .take_while(|(i, p)| {
            let fits = total + p.rows <= MAX_MERGED_ROWS;
            let wanted = *i < 2 || quiet || crowded || p.rows <= total;
            if fits && wanted {
                total += p.rows;
            }
            fits && wanted
        })
        .map(|(_, p)| p)
        .collect();
    if picked.len() < 2 { Vec::new() } else { picked }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(file: &str, rows: u64) -> PartMeta {
        PartMeta { file: file.into(), partition: "all".into(), rows, bytes: rows, expires: None, shape: 0 }
    }

    #[test]
    fn merges_pick_similar_parts_and_everything_once_quiet() {
        let parts = |rows: &[u64]| -> Vec<PartMeta> {
            rows.iter().enumerate().map(|(i, r)| part(&i.to_string(), *r)).collect()
        };
        let rows = |picked: Vec<&PartMeta>| -> Vec<u64> { picked.iter().map(|p| p.rows).collect() };
        // Similar sizes merge, and each next part while it is no bigger than those picked.
        let p = parts(&[500, 4_000, 520, 1_000, 30_000]);
        let refs: Vec<&PartMeta> = p.iter().collect();
        assert_eq!(rows(merge_candidates(&refs, 8, false)), [500, 520, 1_000]);
        // A small part beside a much bigger one waits (no rewriting the big one each flush)…
        let p = parts(&[500, 4_000]);
        let refs: Vec<&PartMeta> = p.iter().collect();
        assert!(merge_candidates(&refs, 8, false).is_empty());
        // …unless there are too many parts, or the partition has gone quiet.
        assert_eq!(rows(merge_candidates(&refs, 1, false)), [500, 4_000]);
        assert_eq!(rows(merge_candidates(&refs, 8, true)), [500, 4_000]);
        // Parts at the cap are left alone, and merges stay below it.
        let p = parts(&[MAX_MERGED_ROWS, 10, 20, MAX_MERGED_ROWS - 25]);
        let refs: Vec<&PartMeta> = p.iter().collect();
        assert_eq!(rows(merge_candidates(&refs, 8, true)), [10, 20]);
        let one = parts(&[10]);
        assert!(merge_candidates(&one.iter().collect::<Vec<_>>(), 0, true).is_empty());
    }
}
