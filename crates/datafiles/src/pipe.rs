//! `.pipe` files: nodes with SQL (templates parsed by the `template` crate), node types and
//! their settings (spec `datafiles.md` §4).

use crate::error::Problem;
use crate::syntax::Instruction;

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A named subquery (`standard`/`default`, or no `TYPE`).
    Standard,
    /// The pipe's HTTP endpoint.
    Endpoint,
    /// An incremental materialized view into `DATASOURCE`.
    Materialized,
    /// A scheduled copy into `TARGET_DATASOURCE`.
    Copy,
    /// An export to external storage.
    Sink,
    /// A streaming node.
    Stream,
}

impl NodeKind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "standard" | "default" => NodeKind::Standard,
            "endpoint" => NodeKind::Endpoint,
            "materialized" => NodeKind::Materialized,
            "copy" => NodeKind::Copy,
            "sink" => NodeKind::Sink,
            "stream" => NodeKind::Stream,
            _ => return None,
        })
    }

    /// The `TYPE` value.
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Standard => "standard",
            NodeKind::Endpoint => "endpoint",
            NodeKind::Materialized => "materialized",
            NodeKind::Copy => "copy",
            NodeKind::Sink => "sink",
            NodeKind::Stream => "stream",
        }
    }
}

/// A node of a pipe.
#[derive(Debug, Clone)]
pub struct Node {
    /// Node name.
    pub name: String,
    /// `DESCRIPTION`.
    pub description: Option<String>,
    /// The SQL as written (a template keeps its leading `%`).
    pub sql: String,
    /// The parsed template, for nodes whose SQL starts with `%`.
    pub template: Option<template::Template>,
    /// `TYPE`.
    pub kind: NodeKind,
    /// `DATASOURCE` (materialized target).
    pub datasource: Option<String>,
    /// `TARGET_DATASOURCE` (copy target).
    pub target_datasource: Option<String>,
    /// `COPY_SCHEDULE`.
    pub copy_schedule: Option<String>,
    /// `COPY_MODE`.
    pub copy_mode: Option<String>,
    /// Other node settings (`EXPORT_*`, `DEPLOYMENT_METHOD`, …).
    pub settings: Vec<(String, String)>,
    /// Line of the `NODE` instruction.
    pub line: usize,
    /// Line of the `SQL` instruction.
    pub sql_line: usize,
}

impl Node {
    /// The SQL to run when it is not a template.
    pub fn plain_sql(&self) -> Option<&str> {
        self.template.is_none().then_some(self.sql.as_str())
    }
}

/// A pipe as declared in its file.
#[derive(Debug, Clone)]
pub struct Pipe {
    /// Name (the file name without extension).
    pub name: String,
    /// `DESCRIPTION` before the first node.
    pub description: Option<String>,
    /// `TOKEN <name> READ` lines.
    pub tokens: Vec<String>,
    /// `TAGS`.
    pub tags: Vec<String>,
    /// `VERSION`.
    pub version: Option<u32>,
    /// Nodes in order.
    pub nodes: Vec<Node>,
}

impl Pipe {
    /// Parses one `.pipe` text on its own: its syntax, nodes and templates, but not what its
    /// nodes read (a [`crate::Project`] checks references across files). Errors are joined,
    /// one per line, with their line numbers.
    pub fn parse_text(name: &str, text: &str) -> Result<Pipe, String> {
        let instructions = crate::syntax::parse(text).map_err(|p| format!("line {}: {}", p.line, p.message))?;
        let (pipe, errors, _) = parse(name, &instructions);
        if !errors.is_empty() {
            return Err(errors
                .iter()
                .map(|p| format!("line {}: {}", p.line, p.message))
                .collect::<Vec<_>>()
                .join("\n"));
        }
        pipe.ok_or_else(|| format!("pipe '{name}' has no nodes"))
    }

    /// The node served by `/v0/pipes/<name>.<format>`, if any.
    pub fn endpoint(&self) -> Option<&Node> {
        self.nodes.iter().find(|n| n.kind == NodeKind::Endpoint)
    }

    /// The node other pipes read when they name this pipe: its endpoint, else its last node.
    pub fn output_node(&self) -> Option<&Node> {
        self.endpoint().or(self.nodes.last())
    }
}

fn uses_template_syntax(sql: &str) -> bool {
    sql.contains("{{") || sql.contains("{%")
}

/// Builds a pipe from its instructions, collecting every problem and warning.
pub(crate) fn parse(name: &str, instructions: &[Instruction]) -> (Option<Pipe>, Vec<Problem>, Vec<Problem>) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut pipe = Pipe {
        name: name.to_string(),
        description: None,
        tokens: Vec::new(),
        tags: Vec::new(),
        version: None,
        nodes: Vec::new(),
    };
    for ins in instructions {
        let value = ins.value();
        let node = pipe.nodes.last_mut();
        match (ins.keyword.as_str(), node) {
            ("NODE", _) => {
                let Some(node_name) = ins.args.first() else {
                    errors.push(Problem::new(ins.line, "Missing node name for pipe creation after the NODE label"));
                    continue;
                };
                if node_name == name {
                    errors.push(Problem::new(
                        ins.line,
                        format!("Error in node '{node_name}'. The Pipe is already using that name. Nodes can't have the same exact name as the Pipe they belong to."),
                    ));
                }
                if pipe.nodes.iter().any(|n| &n.name == node_name) {
                    errors.push(Problem::new(ins.line, format!("node '{node_name}' is defined twice")));
                }
                pipe.nodes.push(Node {
                    name: node_name.clone(),
                    description: None,
                    sql: String::new(),
                    template: None,
                    kind: NodeKind::Standard,
                    datasource: None,
                    target_datasource: None,
                    copy_schedule: None,
                    copy_mode: None,
                    settings: Vec::new(),
                    line: ins.line,
                    sql_line: 0,
                });
            }
            ("DESCRIPTION", None) => pipe.description = Some(value),
            ("DESCRIPTION", Some(n)) => n.description = Some(value),
            ("TOKEN", _) => match (ins.args.len(), ins.args.get(1).map(|s| s.to_ascii_uppercase())) {
                (2, Some(s)) if s == "READ" => pipe.tokens.push(ins.args[0].clone()),
                _ => errors.push(Problem::new(
                    ins.line,
                    "TOKEN gets two params, token name and permissions e.g TOKEN \"read api token\" READ",
                )),
            },
            ("TAGS", _) => pipe.tags = value.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
            ("VERSION", _) => match value.trim().parse::<u32>() {
                Ok(v) => pipe.version = Some(v),
                Err(_) => errors.push(Problem::new(ins.line, "version must be a positive integer e.g VERSION 2")),
            },
            ("SQL", None) => errors.push(Problem::new(ins.line, "SQL must be called after a NODE command")),
            ("SQL", Some(n)) => {
                n.sql = value;
                n.sql_line = ins.line;
                match template::strip_activation(&n.sql) {
                    Some(body) => match template::Template::parse(body) {
                        Ok(t) => n.template = Some(t),
                        Err(e) => errors.push(Problem::new(ins.line, format!("Node '{}': {e}", n.name))),
                    },
                    None if uses_template_syntax(&n.sql) => errors.push(Problem::new(
                        ins.line,
                        format!("Node '{}' uses template syntax but does not start with %", n.name),
                    )),
                    None => {}
                }
            }
            ("TYPE", Some(n)) => match NodeKind::parse(value.trim()) {
                Some(k) => n.kind = k,
                None => errors.push(Problem::new(ins.line, format!("'{}' is not a valid node type", value.trim()))),
            },
            ("DATASOURCE", Some(n)) => match ins.args.first() {
                Some(ds) => n.datasource = Some(ds.clone()),
                None => errors.push(Problem::new(ins.line, "Missing datasource name for pipe creation after the DATASOURCE label")),
            },
            ("TARGET_DATASOURCE", Some(n)) => n.target_datasource = Some(value.trim().to_string()),
            ("COPY_SCHEDULE", Some(n)) => n.copy_schedule = Some(value.trim().to_string()),
            ("COPY_MODE" | "MODE", Some(n)) => n.copy_mode = Some(value.trim().to_ascii_lowercase()),
            ("FILTER" | "RESOURCE", Some(n)) => {
                warnings.push(Problem::new(ins.line, format!("{} is ignored (node '{}')", ins.keyword, n.name)));
            }
            (k, Some(n)) if k.starts_with("EXPORT_") || k == "DEPLOYMENT_METHOD" => n.settings.push((k.to_string(), value)),
            ("TYPE" | "DATASOURCE" | "TARGET_DATASOURCE" | "COPY_SCHEDULE" | "COPY_MODE" | "MODE", None) => {
                errors.push(Problem::new(ins.line, format!("{} must be called after a NODE command", ins.keyword)));
            }
            ("SETTINGS", _) => errors.push(Problem::new(
                ins.line,
                "SETTINGS option is not allowed, use ENGINE_SETTINGS instead. See https://www.tinybird.co/docs/cli/datafiles#data-source for more information.",
            )),
            (other, _) => errors.push(Problem::new(ins.line, format!("{other} is not a valid option"))),
        }
    }
    for n in &pipe.nodes {
        if n.sql.trim().is_empty() {
            errors.push(Problem::new(n.line, format!("node '{}' has no SQL", n.name)));
        }
    }
    let special: Vec<&Node> = pipe.nodes.iter().filter(|n| n.kind != NodeKind::Standard).collect();
    if special.len() > 1 {
        errors.push(Problem::new(
            special[1].line,
            format!("Pipe '{name}' has more than one node of type endpoint, materialized, copy or sink"),
        ));
    }
    if pipe.nodes.is_empty() {
        errors.push(Problem::new(0, format!("pipe '{name}' has no nodes")));
    }
    (Some(pipe), errors, warnings)
}
