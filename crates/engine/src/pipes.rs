//! Pipes: named chains of SQL nodes over data sources and other pipes. A pipe is stored as its
//! `.pipe` text under `<data-dir>/pipes/`; a request renders each node's template with the
//! request's parameters and chains the nodes into one query — earlier nodes, and pipes read as
//! tables, become CTEs of the node being served — planned once per request.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use datafiles::{NodeKind, Pipe, table_references};

use crate::{Error, Result};

/// A deployed pipe.
#[derive(Debug, Clone)]
pub struct StoredPipe {
    /// The parsed pipe (node templates parsed once, here).
    pub pipe: Pipe,
    /// Its `.pipe` text.
    pub text: String,
}

/// Why a pipe request failed before reaching the engine.
#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    /// No such pipe.
    #[error("The pipe '{0}' does not exist")]
    NotFound(String),
    /// The pipe has no endpoint node.
    #[error("The pipe '{0}' does not have an endpoint yet")]
    NoEndpoint(String),
    /// A template failed to render (its status and body are the template's).
    #[error("{0}")]
    Template(#[from] template::Error),
    /// Pipes read each other too deeply (a cycle slipped through, or a very deep chain).
    #[error("pipe '{0}' nests other pipes more than 32 levels deep")]
    TooDeep(String),
}

/// The pipes of a workspace.
#[derive(Debug, Default)]
pub struct Pipes {
    /// Where pipes are stored as files; `None` when the catalog lives elsewhere (ClickHouse).
    dir: Option<PathBuf>,
    map: RwLock<BTreeMap<String, Arc<StoredPipe>>>,
}

/// The rendered SQL of a pipe request, with what rendering reported.
#[derive(Debug, Clone, Default)]
pub struct RenderedPipe {
    /// One ClickHouse SQL query.
    pub sql: String,
    /// Reserved parameter names the templates used (for `X-Tb-Warning`).
    pub warnings: Vec<String>,
}

impl Pipes {
    /// Loads the pipes stored under `<dir>/pipes`.
    pub fn open(dir: &Path) -> Result<Pipes> {
        let dir = dir.join("pipes");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut map = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("pipe") {
                continue;
            }
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            let pipe = parse_alone(&name, &text).map_err(|e| Error::Damaged(format!("{}: {e}", path.display())))?;
            map.insert(name, Arc::new(StoredPipe { pipe, text }));
        }
        Ok(Pipes { dir: Some(dir), map: RwLock::new(map) })
    }

    /// No pipes, kept in memory only (the caller stores their texts).
    pub fn in_memory() -> Pipes {
        Pipes { dir: None, map: RwLock::new(BTreeMap::new()) }
    }

    /// Replaces every pipe (a catalog reloaded from elsewhere).
    pub fn replace_all(&self, pipes: Vec<(Pipe, String)>) -> Result<()> {
        let map =
            pipes.into_iter().map(|(pipe, text)| (pipe.name.clone(), Arc::new(StoredPipe { pipe, text }))).collect();
        *self.map.write().map_err(|_| Error::Damaged("pipes lock".into()))? = map;
        Ok(())
    }

    /// A pipe by name.
    pub fn get(&self, name: &str) -> Option<Arc<StoredPipe>> {
        self.map.read().ok()?.get(name).cloned()
    }

    /// Every pipe, by name.
    pub fn all(&self) -> Vec<Arc<StoredPipe>> {
        self.map.read().map(|m| m.values().cloned().collect()).unwrap_or_default()
    }

    /// Stores `pipe` (already checked against the workspace) under its name.
    pub fn put(&self, pipe: Pipe, text: &str) -> Result<()> {
        if let Some(dir) = &self.dir {
            let path = dir.join(format!("{}.pipe", pipe.name));
            let tmp = path.with_extension("pipe.tmp");
            std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
            std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| Error::io(&tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        }
        let mut map = self.map.write().map_err(|_| Error::Damaged("pipes lock".into()))?;
        map.insert(pipe.name.clone(), Arc::new(StoredPipe { pipe, text: text.to_string() }));
        Ok(())
    }

    /// Removes a pipe; `false` when there was none.
    pub fn remove(&self, name: &str) -> Result<bool> {
        let mut map = self.map.write().map_err(|_| Error::Damaged("pipes lock".into()))?;
        if map.remove(name).is_none() {
            return Ok(false);
        }
        if let Some(dir) = &self.dir {
            let path = dir.join(format!("{name}.pipe"));
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
        Ok(true)
    }

    /// The SQL of pipe `name`'s endpoint for `params`.
    pub fn render_endpoint(&self, name: &str, params: &template::Params) -> Result<RenderedPipe, PipeError> {
        let stored = self.get(name).ok_or_else(|| PipeError::NotFound(name.to_string()))?;
        let at = stored
            .pipe
            .nodes
            .iter()
            .position(|n| n.kind == NodeKind::Endpoint)
            .ok_or_else(|| PipeError::NoEndpoint(name.to_string()))?;
        let mut out = RenderedPipe::default();
        let (ctes, body) = self.parts(&stored.pipe, at, params, &mut out.warnings, 0)?;
        out.sql = with_ctes(&ctes, &body);
        Ok(out)
    }

    /// The SQL of pipe `name` read as a table (its endpoint node, else its last node).
    pub fn render_as_table(
        &self,
        name: &str,
        params: &template::Params,
        warnings: &mut Vec<String>,
        depth: usize,
    ) -> Result<String, PipeError> {
        let stored = self.get(name).ok_or_else(|| PipeError::NotFound(name.to_string()))?;
        let pipe = &stored.pipe;
        let at = pipe.nodes.iter().position(|n| n.kind == NodeKind::Endpoint).unwrap_or(pipe.nodes.len() - 1);
        let (ctes, body) = self.parts(pipe, at, params, warnings, depth)?;
        Ok(with_ctes(&ctes, &body))
    }

    /// Node `at` of `pipe` as CTEs (`name AS (…)`: pipes read as tables, then the nodes before
    /// it) and its own rendered SQL.
    fn parts(
        &self,
        pipe: &Pipe,
        at: usize,
        params: &template::Params,
        warnings: &mut Vec<String>,
        depth: usize,
    ) -> Result<(Vec<String>, String), PipeError> {
        if depth > 32 {
            return Err(PipeError::TooDeep(pipe.name.clone()));
        }
        let mut rendered = Vec::with_capacity(at + 1);
        for node in &pipe.nodes[..=at] {
            let sql = match &node.template {
                Some(t) => {
                    let r = t.render(params)?;
                    warnings.extend(r.warnings);
                    r.sql
                }
                None => node.sql.clone(),
            };
            rendered.push((node.name.as_str(), sql));
        }
        let mut ctes: Vec<String> = Vec::new();
        let mut named: Vec<String> = Vec::new();
        // Pipes read as tables (not shadowed by a node of this pipe), each once.
        for (i, (_, sql)) in rendered.iter().enumerate() {
            for table in table_references(sql) {
                let shadowed = rendered[..i].iter().any(|(n, _)| *n == table);
                if shadowed || named.contains(&table) || table == pipe.name || self.get(&table).is_none() {
                    continue;
                }
                let inner = self.render_as_table(&table, params, warnings, depth + 1)?;
                ctes.push(format!("`{table}` AS ({inner})"));
                named.push(table);
            }
        }
        let Some((last, earlier)) = rendered.split_last() else { return Ok((ctes, String::new())) };
        for (name, sql) in earlier {
            ctes.push(format!("`{name}` AS ({})", strip_format(sql)));
        }
        Ok((ctes, strip_format(&last.1).to_string()))
    }

    /// Every node of pipe `name` as CTEs (`name AS (…)`, with the pipes they read before them)
    /// and `_` for its result: what the SQL API's `pipeline=` makes readable.
    pub fn pipeline_ctes(&self, name: &str, params: &template::Params) -> Result<Vec<String>, PipeError> {
        let stored = self.get(name).ok_or_else(|| PipeError::NotFound(name.to_string()))?;
        let pipe = &stored.pipe;
        let mut warnings = Vec::new();
        let last = pipe.nodes.len() - 1;
        let (mut ctes, body) = self.parts(pipe, last, params, &mut warnings, 0)?;
        ctes.push(format!("`{}` AS ({body})", pipe.nodes[last].name));
        let output = pipe.output_node().map_or(pipe.nodes[last].name.as_str(), |n| n.name.as_str());
        ctes.push(format!("`_` AS (SELECT * FROM `{output}`)"));
        Ok(ctes)
    }
}

/// `body` with `ctes` (`name AS (…)`) in front, merged into its own `WITH` if it has one.
pub fn with_ctes(ctes: &[String], body: &str) -> String {
    if ctes.is_empty() {
        return body.to_string();
    }
    let trimmed = body.trim_start();
    let head = trimmed.get(..4).unwrap_or_default();
    let rest_starts_with_space = trimmed[4.min(trimmed.len())..].starts_with(char::is_whitespace);
    if head.eq_ignore_ascii_case("WITH") && rest_starts_with_space {
        format!("WITH {}, {}", ctes.join(", "), trimmed[4..].trim_start())
    } else {
        format!("WITH {} {trimmed}", ctes.join(", "))
    }
}

/// A node's SQL without a trailing `;`.
fn strip_format(sql: &str) -> &str {
    sql.trim().trim_end_matches(';').trim_end()
}

/// Parses one `.pipe` text on its own (references are checked by the caller).
pub fn parse_alone(name: &str, text: &str) -> std::result::Result<Pipe, String> {
    Pipe::parse_text(name, text)
}
