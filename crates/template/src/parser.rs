//! Template text → tag tree, following the reference (a restricted Tornado template reader):
//! the same tag scanning, the same block rules, the same messages and line numbers.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::expr::{self, Context, Expr, SetOp, Target};
use crate::limits::Limits;

/// `{{ Type(param[, default][, literal keywords]) }}` resolved when the template is built: the
/// parameter's slot, the type, the literal default. Rendering it writes the validated value
/// straight into the output, with the same results and errors as the general path.
#[derive(Debug, Clone)]
pub(crate) struct FastOutput {
    pub slot: usize,
    pub ty: crate::types::ScalarType,
    pub default: Option<crate::Value>,
    pub defined: bool,
}

/// One piece of a parsed template.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// Literal SQL, already filtered by the whitespace mode in force.
    Text(Arc<str>),
    /// `{{ expr }}`; `source` is the tag's text, used in the `evaluated to null` message.
    Output {
        expr: Expr,
        source: Arc<str>,
        /// Set when the template is built for the common `{{ Type(param, …) }}` shape.
        fast: Option<Box<FastOutput>>,
    },
    If {
        branches: Vec<(Expr, Vec<Node>)>,
        orelse: Option<Vec<Node>>,
    },
    For {
        target: Target,
        iter: Expr,
        source: Arc<str>,
        body: Vec<Node>,
        orelse: Option<Vec<Node>>,
    },
    While {
        cond: Expr,
        body: Vec<Node>,
        orelse: Option<Vec<Node>>,
    },
    Try {
        body: Vec<Node>,
        except: Option<Vec<Node>>,
        orelse: Option<Vec<Node>>,
        finally: Option<Vec<Node>>,
    },
    Set {
        target: Target,
        op: SetOp,
        value: Expr,
    },
    Break,
    Continue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Whitespace {
    All,
    Single,
    Oneline,
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    whitespace: Whitespace,
}

impl Reader<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn consume(&mut self, n: usize) -> &str {
        let s = &self.text[self.pos..self.pos + n];
        self.line += s.bytes().filter(|b| *b == b'\n').count();
        self.pos += n;
        s
    }

    fn error(&self, msg: &str) -> Error {
        Error::syntax(format!("{msg} at <string>:{}", self.line))
    }
}

/// A block being parsed: its kind and whether a loop encloses it.
#[derive(Clone, Copy)]
struct Scope {
    block: Option<&'static str>,
    in_loop: bool,
    depth: usize,
}

/// An intermediate tag (`elif`, `else`, `except`, `finally`) inside a block body.
enum Chunk {
    Node(Node),
    Intermediate { op: &'static str, suffix: String, line: usize },
}

pub(crate) struct Parsed {
    pub nodes: Vec<Node>,
    /// The first error in a statement expression: the reference reports these after parsing
    /// (when it compiles the generated code), so they come after tag errors.
    pub statement_error: Option<Error>,
    /// The first use of a reserved name (`q`, `format`) as a variable.
    pub reserved_error: Option<Error>,
}

pub(crate) fn parse(text: &str, limits: &Limits) -> Result<Parsed> {
    if text.len() > limits.max_source_bytes {
        return Err(Error::syntax(format!("template is larger than {} bytes", limits.max_source_bytes)));
    }
    let mut p = DocParser {
        reader: Reader { text, pos: 0, line: 1, whitespace: Whitespace::All },
        limits,
        statement_error: None,
        reserved_error: None,
    };
    let chunks = p.parse_body(Scope { block: None, in_loop: false, depth: 0 })?;
    let nodes = chunks
        .into_iter()
        .map(|c| match c {
            Chunk::Node(n) => n,
            Chunk::Intermediate { .. } => Node::Text(Arc::from("")),
        })
        .collect();
    Ok(Parsed { nodes, statement_error: p.statement_error, reserved_error: p.reserved_error })
}

struct DocParser<'a> {
    reader: Reader<'a>,
    limits: &'a Limits,
    statement_error: Option<Error>,
    reserved_error: Option<Error>,
}

fn filter_whitespace(mode: Whitespace, text: &str) -> String {
    match mode {
        Whitespace::All => text.to_string(),
        Whitespace::Oneline => collapse(text, |run| if run.is_empty() { "" } else { " " }),
        Whitespace::Single => {
            // First every run of spaces/tabs becomes one space, then every run of whitespace
            // containing a newline becomes one newline.
            let mut tabs = String::with_capacity(text.len());
            let mut in_run = false;
            for c in text.chars() {
                if c == ' ' || c == '\t' {
                    if !in_run {
                        tabs.push(' ');
                    }
                    in_run = true;
                } else {
                    tabs.push(c);
                    in_run = false;
                }
            }
            collapse(&tabs, |run| if run.contains('\n') { "\n" } else { run_keep(run) })
        }
    }
}

/// Sentinel: keep the run as it is.
fn run_keep(_: &str) -> &'static str {
    "\u{0}KEEP"
}

/// Replaces every maximal whitespace run with `f(run)`.
fn collapse(text: &str, f: impl Fn(&str) -> &'static str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run_start: Option<usize> = None;
    let flush = |out: &mut String, run: &str| {
        let r = f(run);
        if r == "\u{0}KEEP" { out.push_str(run) } else { out.push_str(r) }
    };
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            run_start.get_or_insert(i);
        } else {
            if let Some(s) = run_start.take() {
                flush(&mut out, &text[s..i]);
            }
            out.push(c);
        }
    }
    if let Some(s) = run_start {
        flush(&mut out, &text[s..]);
    }
    out
}

/// Python's `repr` of a short string, for `unknown operator: 'foo'`.
fn py_repr(s: &str) -> String {
    let mut out = String::new();
    crate::value::write_py_str_repr(s, &mut out);
    out
}

impl DocParser<'_> {
    fn text_node(&self, raw: &str) -> Option<Node> {
        let value =
            if raw.contains("<pre>") { raw.to_string() } else { filter_whitespace(self.reader.whitespace, raw) };
        (!value.is_empty()).then(|| Node::Text(Arc::from(value)))
    }

    fn note_reserved(&mut self, name: &str, line: usize) {
        if self.reserved_error.is_none() && (name == "q" || name == "format") {
            self.reserved_error =
                Some(Error::syntax(format!("\"{name}\" can not be used as a variable name, line {line}")));
        }
    }

    fn note_reserved_expr(&mut self, e: &Expr, line: usize) {
        let mut names = Vec::new();
        e.walk(&mut |x| {
            if let Expr::Name(id) = x {
                names.push(id.name.clone());
            }
        });
        for n in names {
            self.note_reserved(&n, line);
        }
    }

    fn note_reserved_target(&mut self, t: &Target, line: usize) {
        let mut names = Vec::new();
        t.for_each_ident(&mut |id| names.push(id.name.clone()));
        for n in names {
            self.note_reserved(&n, line);
        }
    }

    fn statement_failed(&mut self, err: Error) {
        if self.statement_error.is_none() {
            self.statement_error = Some(err);
        }
    }

    fn invalid_syntax(line: usize) -> Error {
        Error::syntax(format!("invalid syntax, line {line}"))
    }

    fn too_deep(&self) -> Error {
        Error::syntax(format!("template nesting deeper than {} levels", self.limits.max_nesting))
    }

    /// The expression parser counts two levels per bracket or call nesting, plus the top.
    fn expr_depth(&self) -> usize {
        self.limits.max_nesting * 2 + 2
    }

    fn map_fail(&self, fail: expr::ParseFail, line: usize) -> Error {
        match fail {
            expr::ParseFail::Syntax => Self::invalid_syntax(line),
            expr::ParseFail::TooDeep => self.too_deep(),
        }
    }

    /// Parses a statement expression, checks it, and records (not raises) any failure.
    fn statement_expr(&mut self, src: &str, line: usize) -> Expr {
        match expr::parse_condition(src, self.expr_depth()) {
            Ok(e) => {
                self.note_reserved_expr(&e, line);
                if let Err(msg) = expr::check(&e, Context::Statement) {
                    self.statement_failed(Error::syntax(msg));
                }
                e
            }
            Err(f) => {
                let err = self.map_fail(f, line);
                self.statement_failed(err);
                Expr::Const(expr::Const::None)
            }
        }
    }

    fn parse_body(&mut self, scope: Scope) -> Result<Vec<Chunk>> {
        let mut body = Vec::new();
        loop {
            // Find the next tag: a `{` followed by `{`, `%` or `#`, innermost of a run of `{`.
            let rest = self.reader.rest();
            let bytes = rest.as_bytes();
            let mut curly = 0;
            let found = loop {
                let Some(off) = rest[curly..].find('{') else {
                    break None;
                };
                curly += off;
                if curly + 1 == bytes.len() {
                    break None;
                }
                if !matches!(bytes[curly + 1], b'{' | b'%' | b'#') {
                    curly += 1;
                    continue;
                }
                if curly + 2 < bytes.len() && bytes[curly + 1] == b'{' && bytes[curly + 2] == b'{' {
                    curly += 1;
                    continue;
                }
                break Some(curly);
            };
            let Some(curly) = found else {
                if scope.block.is_some() {
                    return Err(Error::syntax(format!(
                        "Missing {{% end %}} block for if at line {}",
                        self.reader.line
                    )));
                }
                let rest_len = self.reader.rest().len();
                let text = self.reader.consume(rest_len).to_string();
                body.extend(self.text_node(&text).map(Chunk::Node));
                return Ok(body);
            };
            if curly > 0 {
                let text = self.reader.consume(curly).to_string();
                body.extend(self.text_node(&text).map(Chunk::Node));
            }
            let start = self.reader.consume(2).to_string();
            let line = self.reader.line;
            if self.reader.rest().starts_with('!') {
                self.reader.consume(1);
                body.extend(self.text_node(&start).map(Chunk::Node));
                continue;
            }
            match start.as_str() {
                "{#" => {
                    let Some(end) = self.reader.rest().find("#}") else {
                        return Err(self.reader.error("Missing end comment #}"));
                    };
                    self.reader.consume(end + 2);
                }
                "{{" => {
                    let Some(end) = self.reader.rest().find("}}") else {
                        return Err(self.reader.error("Missing end expression }}"));
                    };
                    let contents = self.reader.consume(end).trim().to_string();
                    self.reader.consume(2);
                    if contents.is_empty() {
                        return Err(self.reader.error("Empty expression"));
                    }
                    let e = match expr::parse_expression(&contents, self.expr_depth()) {
                        Ok(e) => e,
                        Err(expr::ParseFail::TooDeep) => return Err(self.too_deep()),
                        Err(expr::ParseFail::Syntax) => {
                            if let Some(dump) = simple_statement(&contents, self.expr_depth()) {
                                return Err(Error::syntax(format!("Invalid expression type: {dump}")));
                            }
                            let operator = contents.split(' ').next().unwrap_or("");
                            if operator.contains("from") {
                                return Err(self.reader.error("\"from\" is a forbidden word"));
                            }
                            return Err(Self::invalid_syntax(line));
                        }
                    };
                    expr::check(&e, Context::Output).map_err(Error::syntax)?;
                    self.note_reserved_expr(&e, line);
                    body.push(Chunk::Node(Node::Output { expr: e, source: Arc::from(contents), fast: None }));
                }
                _ => {
                    if let Some(chunk) = self.block_tag(scope, line)? {
                        match chunk {
                            BlockResult::Chunk(c) => body.push(c),
                            BlockResult::End => return Ok(body),
                        }
                    }
                }
            }
        }
    }

    fn block_tag(&mut self, scope: Scope, line: usize) -> Result<Option<BlockResult>> {
        let Some(end) = self.reader.rest().find("%}") else {
            return Err(self.reader.error("Missing end block %}"));
        };
        let contents = self.reader.consume(end).trim().to_string();
        self.reader.consume(2);
        if contents.is_empty() {
            return Err(self.reader.error("Empty block tag ({% %})"));
        }
        let (operator, suffix) = match contents.split_once(' ') {
            Some((op, rest)) => (op, rest.trim()),
            None => (contents.as_str(), ""),
        };
        let intermediate: Option<(&'static str, &[&str], &str)> = match operator {
            "else" => Some(("else", &["if", "for", "while", "try"], "{'if', 'for', 'try', 'while'}")),
            "elif" => Some(("elif", &["if"], "{'if'}")),
            "except" => Some(("except", &["try"], "{'try'}")),
            "finally" => Some(("finally", &["try"], "{'try'}")),
            _ => None,
        };
        if let Some((op, parents, shown)) = intermediate {
            let Some(block) = scope.block else {
                return Err(self.reader.error(&format!("{op} outside {shown} block")));
            };
            if !parents.contains(&block) {
                return Err(self.reader.error(&format!("{op} block cannot be attached to {block} block")));
            }
            return Ok(Some(BlockResult::Chunk(Chunk::Intermediate { op, suffix: suffix.to_string(), line })));
        }
        match operator {
            "end" => {
                if scope.block.is_none() {
                    return Err(self.reader.error("Extra {% end %} block"));
                }
                Ok(Some(BlockResult::End))
            }
            "comment" => Ok(None),
            "extends" => Err(self.reader.error("extends is forbidden")),
            "import" | "from" => Err(self.reader.error("import is forbidden")),
            "include" => Err(self.reader.error("include is forbidden")),
            "autoescape" => Err(self.reader.error("autoescape is forbidden")),
            "raw" => Err(self.reader.error("raw is forbidden")),
            "module" => Err(self.reader.error("module is forbidden")),
            "apply" => Err(self.reader.error("apply is forbidden")),
            "set" => {
                if suffix.is_empty() {
                    return Err(self.reader.error("set missing statement"));
                }
                let node = match expr::parse_set(suffix, self.expr_depth()) {
                    Ok((target, op, value)) => {
                        self.note_reserved_target(&target, line);
                        self.note_reserved_expr(&value, line);
                        if let Err(msg) = expr::check(&value, Context::Statement) {
                            self.statement_failed(Error::syntax(msg));
                        }
                        Node::Set { target, op, value }
                    }
                    Err(f) => {
                        let err = self.map_fail(f, line);
                        self.statement_failed(err);
                        Node::Break
                    }
                };
                Ok(Some(BlockResult::Chunk(Chunk::Node(node))))
            }
            "whitespace" => {
                self.reader.whitespace = match suffix {
                    "all" => Whitespace::All,
                    "single" => Whitespace::Single,
                    "oneline" => Whitespace::Oneline,
                    other => return Err(Error::syntax(format!("invalid whitespace mode {other}"))),
                };
                Ok(None)
            }
            "break" | "continue" => {
                if !scope.in_loop {
                    return Err(self.reader.error(&format!("{operator} outside {{'for', 'while'}} block")));
                }
                if !suffix.is_empty() {
                    self.statement_failed(Self::invalid_syntax(line));
                }
                let node = if operator == "break" { Node::Break } else { Node::Continue };
                Ok(Some(BlockResult::Chunk(Chunk::Node(node))))
            }
            "if" | "for" | "while" | "try" | "block" => {
                let depth = scope.depth + 1;
                if depth > self.limits.max_nesting {
                    return Err(self.too_deep());
                }
                let kind: &'static str = match operator {
                    "if" => "if",
                    "for" => "for",
                    "while" => "while",
                    "try" => "try",
                    _ => "block",
                };
                let in_loop = matches!(kind, "for" | "while") || scope.in_loop;
                let chunks = self.parse_body(Scope { block: Some(kind), in_loop, depth })?;
                if kind == "block" {
                    return Err(self.reader.error("block is forbidden"));
                }
                let node = self.structure(kind, suffix, line, chunks);
                Ok(Some(BlockResult::Chunk(Chunk::Node(node))))
            }
            other => Err(self.reader.error(&format!("unknown operator: {}", py_repr(other)))),
        }
    }

    /// Splits a block body at its intermediate tags and builds the node, recording Python's
    /// syntax rules (order of `elif`/`else`/`except`/`finally`) as statement errors.
    fn structure(&mut self, kind: &'static str, suffix: &str, line: usize, chunks: Vec<Chunk>) -> Node {
        let mut sections: Vec<Section> = vec![(None, Vec::new())];
        for c in chunks {
            match c {
                Chunk::Node(n) => sections.last_mut().map(|s| s.1.push(n)).unwrap_or(()),
                Chunk::Intermediate { op, suffix, line } => sections.push((Some((op, suffix, line)), Vec::new())),
            }
        }
        let mut sections = sections.into_iter();
        let first = sections.next().map(|s| s.1).unwrap_or_default();
        let rest: Vec<_> = sections.map(|(tag, nodes)| (tag.unwrap_or(("else", String::new(), line)), nodes)).collect();
        match kind {
            "if" => {
                let cond = self.header_expr(suffix, line);
                let mut branches = vec![(cond, first)];
                let mut orelse = None;
                for ((op, sfx, l), nodes) in rest {
                    if orelse.is_some() {
                        self.statement_failed(Self::invalid_syntax(l));
                        continue;
                    }
                    if op == "elif" {
                        let c = self.header_expr(&sfx, l);
                        branches.push((c, nodes));
                    } else {
                        self.no_suffix(&sfx, l);
                        orelse = Some(nodes);
                    }
                }
                Node::If { branches, orelse }
            }
            "for" | "while" => {
                let mut orelse = None;
                for ((_, sfx, l), nodes) in rest {
                    if orelse.is_some() {
                        self.statement_failed(Self::invalid_syntax(l));
                    }
                    self.no_suffix(&sfx, l);
                    orelse = Some(nodes);
                }
                if kind == "while" {
                    let cond = self.header_expr(suffix, line);
                    return Node::While { cond, body: first, orelse };
                }
                match expr::parse_for(suffix, self.expr_depth()) {
                    Ok((target, iter)) => {
                        self.note_reserved_target(&target, line);
                        self.note_reserved_expr(&iter, line);
                        if let Err(msg) = expr::check(&iter, Context::Statement) {
                            self.statement_failed(Error::syntax(msg));
                        }
                        let source = suffix.split_once(" in ").map_or(suffix, |(_, it)| it).trim();
                        Node::For { target, iter, source: Arc::from(source), body: first, orelse }
                    }
                    Err(f) => {
                        let err = self.map_fail(f, line);
                        self.statement_failed(err);
                        Node::Text(Arc::from(""))
                    }
                }
            }
            _ => {
                if !suffix.is_empty() {
                    self.statement_failed(Self::invalid_syntax(line));
                }
                let (mut except, mut orelse, mut finally) = (None, None, None);
                for ((op, sfx, l), nodes) in rest {
                    match op {
                        "except" if orelse.is_none() && finally.is_none() => {
                            self.except_clause(&sfx, l);
                            if except.is_none() {
                                except = Some(nodes);
                            }
                        }
                        "else" if except.is_some() && orelse.is_none() && finally.is_none() => {
                            self.no_suffix(&sfx, l);
                            orelse = Some(nodes);
                        }
                        "finally" if finally.is_none() => {
                            self.no_suffix(&sfx, l);
                            finally = Some(nodes);
                        }
                        _ => self.statement_failed(Self::invalid_syntax(l)),
                    }
                }
                if except.is_none() && finally.is_none() {
                    self.statement_failed(Self::invalid_syntax(line));
                }
                Node::Try { body: first, except, orelse, finally }
            }
        }
    }

    fn header_expr(&mut self, src: &str, line: usize) -> Expr {
        if src.is_empty() {
            self.statement_failed(Self::invalid_syntax(line));
            return Expr::Const(expr::Const::None);
        }
        self.statement_expr(src, line)
    }

    fn no_suffix(&mut self, suffix: &str, line: usize) {
        if !suffix.is_empty() {
            self.statement_failed(Self::invalid_syntax(line));
        }
    }

    /// `except`, `except Name`, `except (A, B)` or `except Name as alias` — all act as a bare except.
    fn except_clause(&mut self, suffix: &str, line: usize) {
        if suffix.is_empty() {
            return;
        }
        let (types, alias) = match suffix.split_once(" as ") {
            Some((t, a)) => (t.trim(), Some(a.trim())),
            None => (suffix, None),
        };
        let ok_alias = alias.is_none_or(|a| !a.is_empty() && a.chars().all(|c| c.is_alphanumeric() || c == '_'));
        if !ok_alias || expr::parse_condition(types, self.expr_depth()).is_err() {
            self.statement_failed(Self::invalid_syntax(line));
        }
    }
}

/// `ast.dump` of a one-line Python statement that is valid but not an expression (`import x`,
/// `pass`, …), which the reference's sandbox names instead of reporting a syntax error.
fn simple_statement(src: &str, depth: usize) -> Option<String> {
    let is_ident = |w: &str| {
        w.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
            && w.chars().all(|c| c.is_alphanumeric() || c == '_')
    };
    let is_dotted = |w: &str| w.split('.').all(is_ident);
    let aliases = |list: &str, dotted: bool| -> Option<String> {
        let list = list.trim();
        let list = list.strip_prefix('(').and_then(|l| l.strip_suffix(')')).unwrap_or(list);
        let mut out = Vec::new();
        for item in list.split(',') {
            let words: Vec<&str> = item.split_whitespace().collect();
            let ok_name = |w: &str| {
                if dotted { is_dotted(w) } else { is_ident(w) || w == "*" }
            };
            match words[..] {
                [name] if ok_name(name) => out.push(format!("alias(name='{name}')")),
                [name, "as", alias] if ok_name(name) && is_ident(alias) => {
                    out.push(format!("alias(name='{name}', asname='{alias}')"))
                }
                _ => return None,
            }
        }
        Some(out.join(", "))
    };
    let src = src.trim();
    let (head, rest) = src.split_once(char::is_whitespace).unwrap_or((src, ""));
    let rest = rest.trim();
    let expr_ok = |e: &str| expr::parse_condition(e, depth).is_ok();
    match head {
        "pass" | "break" | "continue" if rest.is_empty() => {
            let mut k = head.to_string();
            k[..1].make_ascii_uppercase();
            Some(format!("{k}()"))
        }
        "import" => Some(format!("Import(names=[{}])", aliases(rest, true)?)),
        "from" => {
            let (module, names) = rest.split_once(" import ")?;
            let module = module.trim();
            let level = module.chars().take_while(|c| *c == '.').count();
            let name = &module[level..];
            if !(name.is_empty() && level > 0 || is_dotted(name)) {
                return None;
            }
            let module_field = if name.is_empty() { String::new() } else { format!("module='{name}', ") };
            Some(format!("ImportFrom({module_field}names=[{}], level={level})", aliases(names, false)?))
        }
        "return" if rest.is_empty() || expr_ok(rest) => Some("Return(…)".to_string()),
        "del" if expr_ok(rest) => Some("Delete(…)".to_string()),
        "assert" if expr_ok(rest.split(',').next().unwrap_or("")) => Some("Assert(…)".to_string()),
        "raise" if rest.is_empty() || expr_ok(rest.split(" from ").next().unwrap_or("")) => {
            Some("Raise(…)".to_string())
        }
        "global" | "nonlocal" if !rest.is_empty() && rest.split(',').all(|n| is_ident(n.trim())) => {
            let mut k = head.to_string();
            k[..1].make_ascii_uppercase();
            Some(format!("{k}(…)"))
        }
        _ => None,
    }
}

/// A block body split at an intermediate tag: the tag (`op`, text after it, line) and its nodes.
type Section = (Option<(&'static str, String, usize)>, Vec<Node>);

enum BlockResult {
    Chunk(Chunk),
    End,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_modes() {
        assert_eq!(filter_whitespace(Whitespace::Single, "A  \n\n  B"), "A\nB");
        assert_eq!(filter_whitespace(Whitespace::Oneline, "A   \n  B"), "A B");
        assert_eq!(filter_whitespace(Whitespace::Single, "A \t B"), "A B");
        assert_eq!(filter_whitespace(Whitespace::All, "A  \n\n  B"), "A  \n\n  B");
    }
}
