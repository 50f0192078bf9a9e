//! The ClickHouse backend: a workspace's data sources as tables of one ClickHouse database,
//! reached over its HTTP interface.
//!
//! - **Tables**: each data source is a table with its engine, sorting, partition and primary
//!   keys, TTL and settings as the `.datasource` says (TTL on servers that have it), plus its
//!   `<name>_quarantine`; `--clickhouse-cluster` creates `Replicated*MergeTree` tables `ON
//!   CLUSTER` behind a `Distributed` table of the data source's name.
//! - **Catalog**: the `.datasource` and `.pipe` texts live in the table `aviary_catalog`, so any
//!   number of nodes serve the same workspace; each node polls it ([`ClickHouse::catalog_version`]).
//! - **Writes**: rows are validated and typed by the engine as on the embedded backend, encoded
//!   as `RowBinary` and sent in batches through the node's [`spool`].
//! - **Reads**: pipe SQL is ClickHouse SQL; [`query`] resolves every table a query names under
//!   the reader's grant (tenant filters become filtered subqueries of the data source, so the
//!   sorting key still prunes) and refuses anything that reaches outside the workspace.

pub mod client;
pub mod query;
pub mod rowbinary;
pub mod spool;
pub mod types;

use std::path::Path;
use std::time::Duration;

use datafiles::{ChType, ColumnDefault, Datasource, EngineKind};

use self::client::{ChError, Client, Connection, literal, quote};
use self::types::{Features, physical};
use crate::wal::WalOptions;
use crate::{Error, Result};

/// How to reach ClickHouse and how to lay tables out there.
#[derive(Debug, Clone)]
pub struct ClickHouseOptions {
    /// Server and credentials.
    pub connection: Connection,
    /// Create replicated tables `ON CLUSTER` this cluster, behind `Distributed` tables.
    pub cluster: Option<String>,
    /// Insert batching.
    pub spool: spool::SpoolOptions,
    /// The spool's log.
    pub wal: WalOptions,
    /// Longest a query may run (`max_execution_time`).
    pub query_timeout: Duration,
}

/// The catalog table (datafile texts by kind and name, newest version wins).
pub const CATALOG: &str = "aviary_catalog";

/// A connected ClickHouse backend.
pub struct ClickHouse {
    client: Client,
    features: Features,
    cluster: Option<String>,
    spool: spool::Spool,
    query_timeout: Duration,
    /// When this node connected (µs), so query ids differ between nodes and restarts.
    started: i64,
}

impl std::fmt::Debug for ClickHouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouse").field("database", &self.client.database()).finish_non_exhaustive()
    }
}

/// One stored datafile text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogItem {
    /// `datasource` or `pipe`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its text.
    pub text: String,
}

/// A column of a table to create.
#[derive(Debug, Clone)]
pub struct ColumnSpec {
    /// Name.
    pub name: String,
    /// Declared type.
    pub ty: ChType,
    /// `DEFAULT`/`MATERIALIZED`/`ALIAS`.
    pub default: Option<ColumnDefault>,
    /// `CODEC(…)`.
    pub codec: Option<String>,
}

/// A table to create.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// Table name.
    pub name: String,
    /// Columns.
    pub columns: Vec<ColumnSpec>,
    /// Engine and keys.
    pub engine: datafiles::Engine,
    /// Data-skipping indexes (`name expr TYPE t GRANULARITY n`).
    pub indexes: Vec<String>,
}

impl TableSpec {
    /// The table of a data source.
    pub fn of(ds: &Datasource, name: &str) -> TableSpec {
        TableSpec {
            name: name.to_string(),
            columns: ds
                .columns
                .iter()
                .map(|c| ColumnSpec {
                    name: c.name.clone(),
                    ty: c.ty.clone(),
                    default: c.default.clone(),
                    codec: c.codec.clone(),
                })
                .collect(),
            engine: ds.engine.clone(),
            indexes: ds
                .indexes
                .iter()
                .map(|i| format!("INDEX {} {} TYPE {} GRANULARITY {}", quote(&i.name), i.expr, i.ty, i.granularity))
                .collect(),
        }
    }

    /// A plain `MergeTree` table of `columns` sorted by `sorting_key`.
    pub fn plain(
        name: &str,
        columns: &[(String, ChType)],
        sorting_key: &str,
        partition_key: Option<&str>,
        ttl: Option<&str>,
    ) -> TableSpec {
        TableSpec {
            name: name.to_string(),
            columns: columns
                .iter()
                .map(|(n, t)| ColumnSpec { name: n.clone(), ty: t.clone(), default: None, codec: None })
                .collect(),
            engine: datafiles::Engine {
                sorting_key: sorting_key.to_string(),
                partition_key: partition_key.map(str::to_string),
                ttl: ttl.map(str::to_string),
                ..Default::default()
            },
            indexes: Vec::new(),
        }
    }
}

fn ch(e: ChError) -> Error {
    if e.unavailable { Error::Unavailable(e.to_string()) } else { Error::Query(e.message) }
}

/// The ClickHouse table a workspace table name is stored as (`tinybird.pipe_stats_rt` →
/// `tinybird_pipe_stats_rt`).
pub fn table_name(name: &str) -> String {
    name.replace('.', "_")
}

impl ClickHouse {
    /// Connects, creates the database and the catalog when missing, and opens the node's insert
    /// spool under `dir`. Must run on a Tokio runtime (the spool's flusher is spawned on it).
    pub async fn connect(dir: &Path, options: ClickHouseOptions) -> Result<ClickHouse> {
        let database = options.connection.database.clone();
        if database.is_empty() || !database.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(Error::Invalid(format!("ClickHouse database name '{database}' must be letters, digits and _")));
        }
        let mut bootstrap = options.connection.clone();
        bootstrap.database = String::new();
        let boot = Client::new(bootstrap).map_err(ch)?;
        let version = boot.query_json("SELECT version()").await.map_err(ch)?;
        let version = version["data"][0][0].as_str().unwrap_or_default().to_string();
        let families = boot.query_json("SELECT name FROM system.data_type_families").await.map_err(ch)?;
        let types = families["data"].as_array().into_iter().flatten().filter_map(|r| r[0].as_str().map(str::to_string));
        let features = Features::new(&version, types);
        let on_cluster = options.cluster.as_ref().map(|c| format!(" ON CLUSTER {}", quote(c))).unwrap_or_default();
        boot.execute(&format!("CREATE DATABASE IF NOT EXISTS {}{on_cluster}", quote(&database)), &[])
            .await
            .map_err(ch)?;
        let client = Client::new(options.connection.clone()).map_err(ch)?;
        let spool = spool::Spool::open(&dir.join("clickhouse-spool"), client.clone(), options.spool, options.wal)
            .map_err(|e| Error::io(&dir.join("clickhouse-spool"), e))?;
        let backend = ClickHouse {
            client,
            features,
            cluster: options.cluster,
            spool,
            query_timeout: options.query_timeout,
            started: chrono::Utc::now().timestamp_micros(),
        };
        let catalog = TableSpec::plain(
            CATALOG,
            &[
                ("kind".into(), ChType::String),
                ("name".into(), ChType::String),
                ("text".into(), ChType::String),
                ("deleted".into(), ChType::Int { bits: 8, signed: false }),
                ("version".into(), ChType::Int { bits: 64, signed: false }),
            ],
            "kind, name, version",
            None,
            None,
        );
        backend.create_replicated_only(&catalog).await?;
        tracing::info!(version = %backend.features.version_text, database = %database, "connected to ClickHouse");
        Ok(backend)
    }

    /// The server's features.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// The HTTP client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The insert spool.
    pub fn spool(&self) -> &spool::Spool {
        &self.spool
    }

    fn on_cluster(&self) -> String {
        on_cluster(self.cluster.as_deref())
    }

    fn ddl_settings(&self) -> Vec<(&'static str, String)> {
        let mut s = Vec::new();
        if self.features.low_cardinality_is_experimental() {
            s.push(("allow_experimental_low_cardinality_type", "1".to_string()));
        }
        s
    }

    /// The `CREATE TABLE` statements for `spec`: one table, or with a cluster the replicated
    /// local table and the `Distributed` table in front of it.
    pub fn create_statements(&self, spec: &TableSpec) -> Result<Vec<String>> {
        create_statements(spec, &self.features, self.cluster.as_deref(), self.client.database())
    }

    /// Creates `spec` if it does not exist.
    pub async fn create(&self, spec: &TableSpec) -> Result<()> {
        for statement in self.create_statements(spec)? {
            self.client.execute(&statement, &self.ddl_settings()).await.map_err(ch)?;
        }
        Ok(())
    }

    /// Creates `spec` replicated to every node of the cluster (one shard's worth: the catalog),
    /// or as a plain table.
    async fn create_replicated_only(&self, spec: &TableSpec) -> Result<()> {
        let Some(cluster) = &self.cluster else { return self.create(spec).await };
        let db = quote(self.client.database());
        let columns =
            spec.columns.iter().map(|c| format!("{} {}", quote(&c.name), c.ty)).collect::<Vec<_>>().join(", ");
        let path = literal(&format!("/clickhouse/tables/all/{}/{}", self.client.database(), spec.name));
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {db}.{} ON CLUSTER {} ({columns}) ENGINE = ReplicatedMergeTree({path}, '{{replica}}') ORDER BY ({})",
            quote(&spec.name),
            quote(cluster),
            spec.engine.sorting_key
        );
        self.client.execute(&sql, &[]).await.map_err(ch)
    }

    /// Adds columns (`ADD COLUMN …` clauses as the engine reports them) and changes the TTL.
    pub async fn alter(&self, table: &str, operations: &[String]) -> Result<()> {
        let db = quote(self.client.database());
        for op in operations {
            let ttl = op.starts_with("MODIFY TTL") || op.starts_with("REMOVE TTL");
            if ttl && (!self.features.ttl() || (op.starts_with("REMOVE TTL") && !self.features.at_least(20, 4))) {
                continue;
            }
            let target = match &self.cluster {
                Some(_) => vec![format!("{table}_local"), table.to_string()],
                None => vec![table.to_string()],
            };
            for t in target {
                if op.contains("TTL") && t == table && self.cluster.is_some() {
                    continue;
                }
                let sql = format!("ALTER TABLE {db}.{}{} {op}", quote(&t), self.on_cluster());
                match self.client.execute(&sql, &self.ddl_settings()).await {
                    Ok(()) => {}
                    // Already added by another node.
                    Err(e) if e.code == Some(44) || e.code == Some(15) => {}
                    Err(e) => return Err(ch(e)),
                }
            }
        }
        Ok(())
    }

    /// Renames tables in one statement.
    pub async fn rename(&self, renames: &[(String, String)]) -> Result<()> {
        let db = quote(self.client.database());
        let mut pairs: Vec<String> =
            renames.iter().map(|(a, b)| format!("{db}.{} TO {db}.{}", quote(a), quote(b))).collect();
        if self.cluster.is_some() {
            pairs.extend(renames.iter().map(|(a, b)| {
                format!("{db}.{} TO {db}.{}", quote(&format!("{a}_local")), quote(&format!("{b}_local")))
            }));
        }
        self.client.execute(&format!("RENAME TABLE {}{}", pairs.join(", "), self.on_cluster()), &[]).await.map_err(ch)
    }

    /// Drops a table (and its local table on a cluster).
    pub async fn drop_table(&self, table: &str) -> Result<()> {
        let db = quote(self.client.database());
        self.client
            .execute(&format!("DROP TABLE IF EXISTS {db}.{}{}", quote(table), self.on_cluster()), &[])
            .await
            .map_err(ch)?;
        if self.cluster.is_some() {
            let local = quote(&format!("{table}_local"));
            self.client
                .execute(&format!("DROP TABLE IF EXISTS {db}.{local}{}", self.on_cluster()), &[])
                .await
                .map_err(ch)?;
        }
        Ok(())
    }

    /// The table rows are written to and deleted from (the local table on a cluster).
    fn storage_table(&self, table: &str) -> String {
        match self.cluster {
            Some(_) => format!("{table}_local"),
            None => table.to_string(),
        }
    }

    /// Removes every row.
    pub async fn truncate(&self, table: &str) -> Result<()> {
        let db = quote(self.client.database());
        let sql = format!("TRUNCATE TABLE IF EXISTS {db}.{}{}", quote(&self.storage_table(table)), self.on_cluster());
        self.client.execute(&sql, &[]).await.map_err(ch)
    }

    /// Deletes the rows matching `condition` and waits until the mutation is done.
    pub async fn delete_where(&self, table: &str, condition: &str) -> Result<()> {
        let db = quote(self.client.database());
        let storage = self.storage_table(table);
        let sql = format!("ALTER TABLE {db}.{}{} DELETE WHERE {condition}", quote(&storage), self.on_cluster());
        self.client.execute(&sql, &[]).await.map_err(|e| Error::Invalid(e.message))?;
        let pending = format!(
            "SELECT count() FROM system.mutations WHERE database = {} AND table = {} AND is_done = 0",
            literal(self.client.database()),
            literal(&storage)
        );
        let started = std::time::Instant::now();
        loop {
            let v = self.client.query_json(&pending).await.map_err(ch)?;
            if count_of(&v) == 0 {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(600) {
                return Err(Error::Query(format!("the delete on '{table}' is still running after 10 minutes")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many rows match `condition` (all rows without one).
    pub async fn count(&self, table: &str, condition: Option<&str>) -> Result<u64> {
        let db = quote(self.client.database());
        let filter = condition.map(|c| format!(" WHERE ({c})")).unwrap_or_default();
        let v = self
            .client
            .query_json(&format!("SELECT count() FROM {db}.{}{filter}", quote(table)))
            .await
            .map_err(|e| Error::Invalid(e.message))?;
        Ok(count_of(&v))
    }

    /// Rows and bytes stored in `table` (active parts).
    pub async fn stats(&self, table: &str) -> Result<(u64, u64)> {
        let sql = format!(
            "SELECT sum(rows), sum(bytes) FROM system.parts WHERE active AND database = {} AND table = {}",
            literal(self.client.database()),
            literal(&self.storage_table(table))
        );
        let v = self.client.query_json(&sql).await.map_err(ch)?;
        let num = |x: &serde_json::Value| x.as_u64().or_else(|| x.as_str().and_then(|s| s.parse().ok())).unwrap_or(0);
        Ok((num(&v["data"][0][0]), num(&v["data"][0][1])))
    }

    /// Creates an empty table shaped like `like`, named `name`.
    pub async fn create_like(&self, name: &str, like: &str) -> Result<()> {
        let db = quote(self.client.database());
        let sql = format!("CREATE TABLE {db}.{} AS {db}.{}", quote(name), quote(&self.storage_table(like)));
        self.client.execute(&sql, &self.ddl_settings()).await.map_err(ch)
    }

    /// Runs `INSERT INTO to SELECT * FROM from WHERE condition`.
    pub async fn copy_rows(&self, from: &str, to: &str, condition: &str) -> Result<()> {
        let db = quote(self.client.database());
        let sql = format!("INSERT INTO {db}.{} SELECT * FROM {db}.{} WHERE {condition}", quote(to), quote(from));
        self.client.execute(&sql, &[]).await.map_err(|e| Error::Invalid(e.message))
    }

    /// Inserts rows now, without the spool (loads that replace data, temporary tables).
    pub async fn insert_now(&self, table: &str, columns: &[String], rows: Vec<u8>) -> Result<()> {
        self.client.insert(table, columns, "RowBinary", rows, &[]).await.map_err(ch)
    }

    /// Replaces every row of `table` by `rows`: they are loaded into a new table that then
    /// takes the old one's place in one `RENAME` (on a cluster: truncate, then insert).
    pub async fn replace(&self, table: &str, columns: &[String], rows: Vec<u8>) -> Result<()> {
        if self.cluster.is_some() {
            self.truncate(table).await?;
            return self.insert_now(table, columns, rows).await;
        }
        let suffix = format!("{:x}", chrono::Utc::now().timestamp_micros());
        let fresh = format!("{table}__replace_{suffix}");
        let old = format!("{table}__old_{suffix}");
        self.create_like(&fresh, table).await?;
        if let Err(e) = self.insert_now(&fresh, columns, rows).await {
            let _ = self.drop_table(&fresh).await;
            return Err(e);
        }
        self.rename(&[(table.to_string(), old.clone()), (fresh, table.to_string())]).await?;
        self.drop_table(&old).await
    }

    /// Replaces the rows of `table` matching `condition` by those of `rows` that match it:
    /// the matching rows are deleted (a mutation, waited for), then the loaded ones inserted.
    /// Returns how many loaded rows matched.
    pub async fn replace_where(&self, table: &str, columns: &[String], rows: Vec<u8>, condition: &str) -> Result<u64> {
        let staging = format!("{table}__load_{:x}", chrono::Utc::now().timestamp_micros());
        self.create_like(&staging, table).await?;
        let outcome = async {
            self.insert_now(&staging, columns, rows).await?;
            let matching = self.count(&staging, Some(condition)).await?;
            self.delete_where(table, condition).await?;
            if matching > 0 {
                self.copy_rows(&staging, table, condition).await?;
            }
            Ok(matching)
        }
        .await;
        let _ = self.drop_table(&staging).await;
        outcome
    }

    /// Runs a resolved `SELECT` and reads its answer. The query has an id; if this future is
    /// dropped before the answer (the client went away, the server timed out), the query is
    /// killed on the server.
    pub async fn run_query(&self, sql: &str) -> Result<query::Answer> {
        static QUERIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = QUERIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("aviary-{:x}-{:x}-{n:x}", std::process::id(), self.started);
        let secs = self.query_timeout.as_secs_f64().ceil().max(1.0) as u64;
        let params = [
            ("query_id", id.clone()),
            ("readonly", "2".to_string()),
            ("max_execution_time", secs.to_string()),
            ("output_format_json_quote_denormals", "1".to_string()),
        ];
        let mut guard = KillOnDrop { client: Some(self.client.clone()), id };
        let body = format!("{sql} FORMAT JSONCompact").into_bytes();
        let answer = self.client.send(&params, body, self.query_timeout + Duration::from_secs(1)).await;
        guard.client = None;
        match answer {
            Ok(body) => query::read_answer(&body),
            Err(e)
                if e.code == Some(client::codes::TIMEOUT_EXCEEDED)
                    || (e.unavailable && e.message.contains("in time")) =>
            {
                Err(Error::Timeout(format!("[Error] {}", e.message)))
            }
            Err(e) if e.unavailable => Err(Error::Unavailable(e.to_string())),
            Err(e) if e.code == Some(client::codes::MEMORY_LIMIT_EXCEEDED) => Err(Error::Damaged(e.message)),
            Err(e) => Err(Error::Query(e.message)),
        }
    }

    /// The newest version in the catalog and how many versions it holds (a change to either
    /// means the catalog changed).
    pub async fn catalog_version(&self) -> Result<(u64, u64)> {
        let db = quote(self.client.database());
        let v = self
            .client
            .query_json(&format!("SELECT max(version), count() FROM {db}.{}", quote(CATALOG)))
            .await
            .map_err(ch)?;
        let num = |x: &serde_json::Value| x.as_u64().or_else(|| x.as_str().and_then(|s| s.parse().ok())).unwrap_or(0);
        Ok((num(&v["data"][0][0]), num(&v["data"][0][1])))
    }

    /// Every datafile in the catalog (its newest version, unless deleted).
    pub async fn load_catalog(&self) -> Result<Vec<CatalogItem>> {
        let db = quote(self.client.database());
        let sql = format!(
            "SELECT kind, name, argMax(text, version), argMax(deleted, version) FROM {db}.{} GROUP BY kind, name ORDER BY kind, name",
            quote(CATALOG)
        );
        let v = self.client.query_json(&sql).await.map_err(ch)?;
        let mut out = Vec::new();
        for row in v["data"].as_array().into_iter().flatten() {
            let deleted = row[3].as_u64().or_else(|| row[3].as_str().and_then(|s| s.parse().ok())).unwrap_or(0);
            if deleted != 0 {
                continue;
            }
            out.push(CatalogItem {
                kind: row[0].as_str().unwrap_or_default().to_string(),
                name: row[1].as_str().unwrap_or_default().to_string(),
                text: row[2].as_str().unwrap_or_default().to_string(),
            });
        }
        Ok(out)
    }

    /// Stores a datafile's text (`None`: deleted) as the newest version of its name.
    pub async fn save_catalog(&self, kind: &str, name: &str, text: Option<&str>) -> Result<()> {
        let version = chrono::Utc::now().timestamp_micros().max(0) as u64;
        let mut row = Vec::new();
        for s in [kind, name, text.unwrap_or_default()] {
            rowbinary::write(
                &mut row,
                &crate::ingest::value::Cell::Str(s.to_string()),
                &ChType::String,
                &ChType::String,
            )
            .map_err(Error::Invalid)?;
        }
        row.push(u8::from(text.is_none()));
        row.extend_from_slice(&version.to_le_bytes());
        let columns = ["kind", "name", "text", "deleted", "version"].map(String::from);
        self.client.insert(CATALOG, &columns, "RowBinary", row, &[]).await.map_err(ch)
    }
}

/// The `CREATE TABLE` statements of `spec` in `database` on a server with `features`: one
/// table, or with a `cluster` the replicated local table and the `Distributed` table in front.
pub fn create_statements(
    spec: &TableSpec,
    features: &Features,
    cluster: Option<&str>,
    database: &str,
) -> Result<Vec<String>> {
    let db = quote(database);
    let mut columns = Vec::new();
    for c in &spec.columns {
        let stored = physical(&c.ty, features).map_err(|e| Error::Invalid(format!("column '{}': {e}", c.name)))?;
        let mut line = format!("{} {}", quote(&c.name), stored);
        match &c.default {
            Some(ColumnDefault::Default(e)) => line.push_str(&format!(" DEFAULT {e}")),
            Some(ColumnDefault::Materialized(e)) => line.push_str(&format!(" MATERIALIZED {e}")),
            Some(ColumnDefault::Alias(e)) => line.push_str(&format!(" ALIAS {e}")),
            None => {}
        }
        if let Some(codec) = &c.codec
            && features.at_least(19, 1)
        {
            line.push_str(&format!(" {codec}"));
        }
        columns.push(line);
    }
    if features.at_least(20, 1) {
        columns.extend(spec.indexes.iter().cloned());
    }
    let e = &spec.engine;
    let args = match e.kind {
        EngineKind::ReplacingMergeTree => e.ver.clone().into_iter().chain(e.is_deleted.clone()).collect::<Vec<_>>(),
        EngineKind::SummingMergeTree => e.columns.clone().map(|c| vec![format!("({c})")]).unwrap_or_default(),
        EngineKind::CollapsingMergeTree => e.sign.clone().into_iter().collect(),
        EngineKind::VersionedCollapsingMergeTree => e.sign.clone().into_iter().chain(e.version.clone()).collect(),
        _ => Vec::new(),
    };
    let table = quote(&spec.name);
    let local = quote(&format!("{}_local", spec.name));
    let (engine_name, replicated) = match (cluster, e.kind) {
        (_, EngineKind::Null) => ("Null".to_string(), false),
        (Some(_), kind) => (format!("Replicated{}", kind.name()), true),
        (None, kind) => (kind.name().to_string(), false),
    };
    let mut engine_args = args.clone();
    if replicated {
        let path = literal(&format!("/clickhouse/tables/{{shard}}/{}/{}_local", database, spec.name));
        engine_args.insert(0, literal("{replica}"));
        engine_args.insert(0, path);
    }
    let mut clause = if e.kind == EngineKind::Null {
        "ENGINE = Null".to_string()
    } else {
        format!("ENGINE = {engine_name}({})", engine_args.join(", "))
    };
    if e.kind != EngineKind::Null {
        if let Some(p) = &e.partition_key {
            clause.push_str(&format!(" PARTITION BY {p}"));
        }
        clause.push_str(&format!(
            " ORDER BY ({})",
            if e.sorting_key.trim().is_empty() { "tuple()" } else { e.sorting_key.trim() }
        ));
        if let Some(p) = &e.primary_key {
            clause.push_str(&format!(" PRIMARY KEY ({p})"));
        }
        if let Some(s) = &e.sampling_key {
            clause.push_str(&format!(" SAMPLE BY {s}"));
        }
        if let Some(t) = &e.ttl
            && features.ttl()
        {
            clause.push_str(&format!(" TTL {t}"));
        }
        if let Some(s) = &e.settings {
            clause.push_str(&format!(" SETTINGS {s}"));
        }
    }
    let body = columns.join(", ");
    let on = on_cluster(cluster);
    Ok(match (cluster, replicated) {
        (Some(cluster), true) => vec![
            format!("CREATE TABLE IF NOT EXISTS {db}.{local}{on} ({body}) {clause}"),
            format!(
                "CREATE TABLE IF NOT EXISTS {db}.{table}{on} AS {db}.{local} ENGINE = Distributed({}, {}, {}, rand())",
                quote(cluster),
                quote(database),
                local
            ),
        ],
        _ => vec![format!("CREATE TABLE IF NOT EXISTS {db}.{table}{on} ({body}) {clause}")],
    })
}

fn on_cluster(cluster: Option<&str>) -> String {
    cluster.map(|c| format!(" ON CLUSTER {}", quote(c))).unwrap_or_default()
}

fn count_of(v: &serde_json::Value) -> u64 {
    let x = &v["data"][0][0];
    x.as_u64().or_else(|| x.as_str().and_then(|s| s.parse().ok())).unwrap_or(0)
}

/// Kills a query on the server unless disarmed (its answer arrived).
struct KillOnDrop {
    client: Option<Client>,
    id: String,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else { return };
        let id = self.id.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let sql = format!("KILL QUERY WHERE query_id = {} ASYNC", literal(&id));
                if let Err(e) = client.execute(&sql, &[]).await {
                    tracing::warn!(query_id = %id, error = %e, "could not kill an abandoned query");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Datasource {
        let text = include_str!("../../../../examples/web-analytics/datasources/events.datasource");
        let file = datafiles::SourceFile { path: "events.datasource".into(), text: text.to_string() };
        datafiles::Project::from_files(vec![file]).unwrap().datasources.remove(0)
    }

    #[test]
    fn tables_follow_the_datasource_and_the_server() {
        let old = Features::new("18.16.1", ["LowCardinality".to_string()]);
        let sql = create_statements(&TableSpec::of(&events(), "events"), &old, None, "ws").unwrap();
        assert_eq!(sql.len(), 1);
        assert!(
            sql[0].starts_with(
                "CREATE TABLE IF NOT EXISTS `ws`.`events` (`timestamp` DateTime('UTC'), `org` LowCardinality(String)"
            ),
            "{}",
            sql[0]
        );
        assert!(
            sql[0].ends_with("ENGINE = MergeTree() PARTITION BY toYYYYMM(timestamp) ORDER BY (org, timestamp)"),
            "no TTL on 18.16: {}",
            sql[0]
        );
        let new = Features::new("24.3.1", ["DateTime64".to_string(), "LowCardinality".to_string()]);
        let sql = create_statements(&TableSpec::of(&events(), "events"), &new, None, "ws").unwrap();
        assert!(sql[0].contains("`timestamp` DateTime64(3, 'UTC')"), "{}", sql[0]);
        assert!(sql[0].ends_with("TTL toDateTime(timestamp) + toIntervalDay(365)"), "{}", sql[0]);
    }

    #[test]
    fn a_cluster_gets_replicated_local_tables_behind_distributed_ones() {
        let new = Features::new("24.3.1", ["DateTime64".to_string()]);
        let sql = create_statements(&TableSpec::of(&events(), "events"), &new, Some("main"), "ws").unwrap();
        assert_eq!(sql.len(), 2);
        assert!(sql[0].starts_with("CREATE TABLE IF NOT EXISTS `ws`.`events_local` ON CLUSTER `main` ("), "{}", sql[0]);
        assert!(
            sql[0].contains(
                "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/ws/events_local', '{replica}') PARTITION BY"
            ),
            "{}",
            sql[0]
        );
        assert_eq!(
            sql[1],
            "CREATE TABLE IF NOT EXISTS `ws`.`events` ON CLUSTER `main` AS `ws`.`events_local` ENGINE = Distributed(`main`, `ws`, `events_local`, rand())"
        );
    }
}
