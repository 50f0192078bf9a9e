//! A datafile project: every `.datasource` and `.pipe` under a directory, loaded and checked as
//! a whole (names unique, references resolve, no cycles, keys name real columns).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::datasource::{self, Datasource};
use crate::error::{Diagnostic, Error, Problem, Result, Severity};
use crate::pipe::{self, NodeKind, Pipe};
use crate::refs::table_references;
use crate::syntax;

/// A loaded, checked project.
#[derive(Debug, Clone)]
pub struct Project {
    /// Data sources, sorted by name.
    pub datasources: Vec<Datasource>,
    /// Pipes, in an order where each pipe comes after the pipes it reads.
    pub pipes: Vec<Pipe>,
    /// Warnings (the project loaded).
    pub warnings: Vec<Diagnostic>,
}

/// One datafile's text with where it came from.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path (relative to the project root when loaded from disk).
    pub path: PathBuf,
    /// Contents.
    pub text: String,
}

const MAX_INCLUDE_DEPTH: usize = 8;

fn skip_dir(name: &str) -> bool {
    name.starts_with('.') || name == "node_modules" || name == ".venv" || name == "target"
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if p.is_dir() {
            if !skip_dir(name) {
                collect(&p, out)?;
            }
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("datasource" | "pipe" | "connection" | "token"))
        {
            out.push(p);
        }
    }
    Ok(())
}

/// Expands `INCLUDE "file.incl" "KEY=value"…` lines (classic), relative to the including file.
fn expand_includes(
    text: &str,
    dir: &Path,
    depth: usize,
    env: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<String, Problem> {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let is_include = trimmed.len() > 8
            && trimmed[..7].eq_ignore_ascii_case("INCLUDE")
            && trimmed[7..].starts_with(char::is_whitespace);
        if !is_include {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(Problem::new(i + 1, format!("includes nest deeper than {MAX_INCLUDE_DEPTH} levels")));
        }
        let args = syntax::shell_split(&trimmed[7..]).map_err(|e| Problem::new(i + 1, e))?;
        let Some(file) = args.first() else {
            return Err(Problem::new(i + 1, "INCLUDE needs a file"));
        };
        let path = dir.join(file);
        let content = std::fs::read_to_string(&path).map_err(|_| Problem::new(i + 1, format!("{file} not found")))?;
        let vars: HashMap<&str, &str> = args[1..].iter().filter_map(|a| a.split_once('=')).collect();
        let lookup = |name: &str| vars.get(name).map(|v| v.to_string()).or_else(|| env(name));
        let substituted = syntax::substitute_env(&content, &lookup);
        let nested = expand_includes(&substituted, path.parent().unwrap_or(dir), depth + 1, env)?;
        out.push_str(&nested);
    }
    Ok(out)
}

impl Project {
    /// Loads every datafile under `root`, substituting `$NAME` environment variables and
    /// expanding `INCLUDE`s. `Err(Error::Invalid)` lists every error (and the warnings).
    pub fn load(root: &Path) -> Result<Project> {
        let (files, early) = Self::read_files(root)?;
        Self::from_files_with(files, early)
    }

    /// Every datafile under `root` as it will be deployed (environment variables substituted,
    /// `INCLUDE`s expanded, paths relative to `root`), with the problems met reading them.
    pub fn read_files(root: &Path) -> Result<(Vec<SourceFile>, Vec<Diagnostic>)> {
        let mut paths = Vec::new();
        collect(root, &mut paths)?;
        let env = |name: &str| std::env::var(name).ok();
        let mut files = Vec::new();
        let mut early: Vec<Diagnostic> = Vec::new();
        for p in paths {
            let rel = p.strip_prefix(root).unwrap_or(&p).to_path_buf();
            if matches!(p.extension().and_then(|e| e.to_str()), Some("connection" | "token")) {
                early.push(Diagnostic {
                    severity: Severity::Warning,
                    path: rel,
                    line: None,
                    message: "unsupported datafile kind; ignored".to_string(),
                });
                continue;
            }
            let text = std::fs::read_to_string(&p).map_err(|source| Error::Io { path: p.clone(), source })?;
            let text = syntax::substitute_env(&text, &env);
            match expand_includes(&text, p.parent().unwrap_or(root), 0, &env) {
                Ok(text) => files.push(SourceFile { path: rel, text }),
                Err(problem) => early.push(Diagnostic {
                    severity: Severity::Error,
                    path: rel,
                    line: Some(problem.line),
                    message: problem.message,
                }),
            }
        }
        Ok((files, early))
    }

    /// Builds a project from datafile texts (as received by the API: no environment
    /// substitution, no includes).
    pub fn from_files(files: Vec<SourceFile>) -> Result<Project> {
        Self::from_files_with(files, Vec::new())
    }

    fn from_files_with(files: Vec<SourceFile>, mut diags: Vec<Diagnostic>) -> Result<Project> {
        let mut datasources: Vec<(PathBuf, Datasource)> = Vec::new();
        let mut pipes: Vec<(PathBuf, Pipe)> = Vec::new();
        let mut names: HashMap<String, PathBuf> = HashMap::new();
        for f in files {
            let push = |diags: &mut Vec<Diagnostic>, severity, problems: Vec<Problem>| {
                for p in problems {
                    diags.push(Diagnostic { severity, path: f.path.clone(), line: Some(p.line), message: p.message });
                }
            };
            let name = f.path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            if let Some(other) = names.get(&name) {
                push(
                    &mut diags,
                    Severity::Error,
                    vec![Problem::new(0, format!("'{name}' is already defined by {}", other.display()))],
                );
                continue;
            }
            names.insert(name.clone(), f.path.clone());
            let instructions = match syntax::parse(&f.text) {
                Ok(i) => i,
                Err(p) => {
                    push(&mut diags, Severity::Error, vec![p]);
                    continue;
                }
            };
            let is_pipe = f.path.extension().and_then(|e| e.to_str()) == Some("pipe");
            if is_pipe {
                let (p, errors, warnings) = pipe::parse(&name, &instructions);
                push(&mut diags, Severity::Error, errors);
                push(&mut diags, Severity::Warning, warnings);
                if let Some(p) = p {
                    pipes.push((f.path.clone(), p));
                }
            } else {
                let (d, errors, warnings) = datasource::parse(&name, &instructions);
                push(&mut diags, Severity::Error, errors);
                push(&mut diags, Severity::Warning, warnings);
                if let Some(d) = d {
                    datasources.push((f.path.clone(), d));
                }
            }
        }
        check_references(&datasources, &pipes, &mut diags);
        let order = pipe_order(&pipes, &datasources, &mut diags);
        if diags.iter().any(|d| d.severity == Severity::Error) {
            return Err(Error::Invalid(diags));
        }
        let mut pipes: Vec<Option<Pipe>> = pipes.into_iter().map(|(_, p)| Some(p)).collect();
        let mut datasources: Vec<Datasource> = datasources.into_iter().map(|(_, d)| d).collect();
        datasources.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Project { datasources, pipes: order.into_iter().filter_map(|i| pipes[i].take()).collect(), warnings: diags })
    }

    /// The data source called `name`.
    pub fn datasource(&self, name: &str) -> Option<&Datasource> {
        self.datasources.iter().find(|d| d.name == name)
    }

    /// The pipe called `name`.
    pub fn pipe(&self, name: &str) -> Option<&Pipe> {
        self.pipes.iter().find(|p| p.name == name)
    }
}

/// Each node's tables resolve (spec `datafiles.md` §4.3), and node kinds Aviary runs.
fn check_references(datasources: &[(PathBuf, Datasource)], pipes: &[(PathBuf, Pipe)], diags: &mut Vec<Diagnostic>) {
    let is_ds = |n: &str| datasources.iter().any(|(_, d)| d.name == n || format!("{}_quarantine", d.name) == n);
    let is_pipe = |n: &str| pipes.iter().any(|(_, p)| p.name == n);
    for (path, pipe) in pipes {
        let error = |line: usize, message: String| Diagnostic {
            severity: Severity::Error,
            path: path.clone(),
            line: Some(line),
            message,
        };
        for (i, node) in pipe.nodes.iter().enumerate() {
            if matches!(node.kind, NodeKind::Materialized | NodeKind::Copy | NodeKind::Sink | NodeKind::Stream) {
                diags.push(error(
                    node.line,
                    format!(
                        "node '{}' of pipe '{}' is TYPE {}, which Aviary does not support yet",
                        node.name,
                        pipe.name,
                        node.kind.name()
                    ),
                ));
            }
            for table in table_references(&node.sql) {
                if pipe.nodes[..i].iter().any(|n| n.name == table) || is_ds(&table) || is_pipe(&table) {
                    if table == pipe.name {
                        diags.push(error(node.sql_line, format!("pipe '{}' reads itself", pipe.name)));
                    }
                    continue;
                }
                if table.starts_with("tinybird.") {
                    continue;
                }
                if pipe.nodes[i..].iter().any(|n| n.name == table) {
                    diags.push(error(
                        node.sql_line,
                        format!("node '{}' reads '{table}', which is defined later in the pipe", node.name),
                    ));
                } else {
                    diags.push(error(node.sql_line, format!("Resource '{table}' not found")));
                }
            }
        }
    }
}

/// Orders pipes so that each comes after the pipes it reads; reports cycles.
fn pipe_order(
    pipes: &[(PathBuf, Pipe)],
    datasources: &[(PathBuf, Datasource)],
    diags: &mut Vec<Diagnostic>,
) -> Vec<usize> {
    let index: HashMap<&str, usize> = pipes.iter().enumerate().map(|(i, (_, p))| (p.name.as_str(), i)).collect();
    let deps: Vec<Vec<usize>> = pipes
        .iter()
        .map(|(_, p)| {
            let mut d = Vec::new();
            for (i, n) in p.nodes.iter().enumerate() {
                for t in table_references(&n.sql) {
                    let shadowed =
                        p.nodes[..i].iter().any(|m| m.name == t) || datasources.iter().any(|(_, ds)| ds.name == t);
                    if let Some(&j) = index.get(t.as_str()).filter(|_| !shadowed)
                        && !d.contains(&j)
                    {
                        d.push(j);
                    }
                }
            }
            d
        })
        .collect();
    // Depth-first topological sort; a node met while on the stack closes a cycle.
    let mut state = vec![0u8; pipes.len()]; // 0 new, 1 visiting, 2 done
    let mut order = Vec::new();
    fn visit(i: usize, deps: &[Vec<usize>], state: &mut [u8], order: &mut Vec<usize>, cycle: &mut Option<usize>) {
        if state[i] == 2 {
            return;
        }
        if state[i] == 1 {
            cycle.get_or_insert(i);
            return;
        }
        state[i] = 1;
        for &d in &deps[i] {
            visit(d, deps, state, order, cycle);
        }
        state[i] = 2;
        order.push(i);
    }
    for i in 0..pipes.len() {
        let mut cycle = None;
        visit(i, &deps, &mut state, &mut order, &mut cycle);
        if let Some(c) = cycle {
            let (path, p) = &pipes[c];
            let message = format!("pipe '{}' is part of a cycle of pipes reading each other", p.name);
            if !diags.iter().any(|d| d.message == message) {
                diags.push(Diagnostic { severity: Severity::Error, path: path.clone(), line: None, message });
            }
        }
    }
    order
}
