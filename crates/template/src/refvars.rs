//! The reference renderer's own reading of a template's variables (its
//! `get_var_names_and_types`), replicated because two observable behaviours depend on it: the
//! list in `Required parameter is not defined. Check the parameters …` (spec §10.2) and which
//! parameters are pre-converted to lists for `Array` (§5.3).
//!
//! The reference walks each expression's Python syntax tree breadth-first, records type-function
//! arguments with their defaults, bare names outside calls as `String`, arguments of its helper
//! functions as `used_in: function_call`; it reads block bodies before their conditions and
//! ignores statement variables already seen in `{{ }}` expressions. The published parameter
//! list is Aviary's own (see `introspect`); this module only feeds the two behaviours above.

use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::expr::{Const, Expr, Ident, SetOp, Target};
use crate::parser::Node;
use crate::value::{write_float_repr, write_py_str_repr};

/// A value as the reference reads it off a syntax node (`node_to_value`).
#[derive(Debug, Clone, PartialEq)]
enum PyVal {
    None,
    Str(String),
    Int(i128),
    Float(f64),
    Bool(bool),
    List(Vec<PyVal>),
    Other,
}

impl PyVal {
    fn truthy(&self) -> bool {
        match self {
            PyVal::None => false,
            PyVal::Str(s) => !s.is_empty(),
            PyVal::Int(i) => *i != 0,
            PyVal::Float(f) => *f != 0.0,
            PyVal::Bool(b) => *b,
            PyVal::List(l) => !l.is_empty(),
            PyVal::Other => true,
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            PyVal::None => out.push_str("None"),
            PyVal::Str(s) => write_py_str_repr(s, out),
            PyVal::Int(i) => {
                let _ = write!(out, "{i}");
            }
            PyVal::Float(f) => write_float_repr(*f, out),
            PyVal::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
            PyVal::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write(out);
                }
                out.push(']');
            }
            PyVal::Other => out.push_str("..."),
        }
    }

    /// Python `str()`.
    fn py_str(&self) -> String {
        match self {
            PyVal::Str(s) => s.clone(),
            other => {
                let mut s = String::new();
                other.write(&mut s);
                s
            }
        }
    }
}

/// One entry of the reference's variable list.
#[derive(Debug, Clone)]
pub(crate) struct RefVar {
    /// `None` when the "name" is not a string (a literal first argument).
    pub name: Option<String>,
    pub ty: String,
    pub default_none: bool,
    pub used_in: bool,
}

const CUSTOM_FUNCTIONS: [&str; 11] = [
    "defined",
    "column",
    "columns",
    "day_diff",
    "date_diff_in_seconds",
    "date_diff_in_minutes",
    "date_diff_in_hours",
    "date_diff_in_days",
    "split_to_array",
    "enumerate_with_last",
    "sql_and",
];

/// Names a bare `Name` node never registers as (Python builtins and the reference's namespace).
fn reserved(name: &str) -> bool {
    const OWN: [&str; 39] = [
        "_tt_tmp",
        "_tt_append",
        "isinstance",
        "str",
        "error",
        "custom_error",
        "columns",
        "table",
        "TABLE",
        "sql_and",
        "defined",
        "column",
        "enumerate_with_last",
        "split_to_array",
        "day_diff",
        "date_diff_in_days",
        "date_diff_in_hours",
        "date_diff_in_minutes",
        "date_diff_in_seconds",
        "sql_unescape",
        "JSON",
        "symbol",
        "_tt_utf8",
        "_tt_string_types",
        "xhtml_escape",
        "expression_wrapper",
        "__buildins__",
        "__import__",
        "__debug__",
        "__doc__",
        "__name__",
        "__package__",
        "open",
        "close",
        "print",
        "input",
        "__build_class__",
        "__loader__",
        "__spec__",
    ];
    const BUILTINS: [&str; 71] = [
        "abs",
        "aiter",
        "all",
        "anext",
        "any",
        "ascii",
        "bin",
        "bool",
        "breakpoint",
        "bytearray",
        "bytes",
        "callable",
        "chr",
        "classmethod",
        "compile",
        "complex",
        "copyright",
        "credits",
        "delattr",
        "dict",
        "dir",
        "divmod",
        "enumerate",
        "eval",
        "exec",
        "exit",
        "filter",
        "float",
        "frozenset",
        "getattr",
        "globals",
        "hasattr",
        "hash",
        "help",
        "hex",
        "int",
        "issubclass",
        "iter",
        "len",
        "license",
        "list",
        "locals",
        "map",
        "max",
        "memoryview",
        "min",
        "next",
        "object",
        "oct",
        "ord",
        "pow",
        "property",
        "quit",
        "range",
        "repr",
        "reversed",
        "round",
        "set",
        "setattr",
        "slice",
        "sorted",
        "staticmethod",
        "sum",
        "super",
        "tuple",
        "type",
        "vars",
        "zip",
        // Python's built-in constants: a template that mentions one reads Python's value, so it
        // is not a request parameter. (Python's constant for unimplemented operations is left
        // out on purpose: the sandbox gives it no value, so Aviary treats it as an ordinary
        // parameter name — documented in docs/templates.md.)
        "Ellipsis",
        "True",
        "False",
    ];
    OWN.contains(&name)
        || BUILTINS.contains(&name)
        || name.ends_with("Error")
        || name.ends_with("Exception")
        || name.ends_with("Warning")
        || matches!(
            name,
            "BaseExceptionGroup"
                | "ExceptionGroup"
                | "GeneratorExit"
                | "KeyboardInterrupt"
                | "StopIteration"
                | "StopAsyncIteration"
                | "SystemExit"
                | "None"
        )
}

fn node_to_value(e: &Expr) -> PyVal {
    match e {
        Expr::Const(c) => match c {
            Const::None => PyVal::None,
            Const::Bool(b) => PyVal::Bool(*b),
            Const::Int(i) => PyVal::Int(*i),
            Const::BigInt(s) => PyVal::Str(s.clone()),
            Const::Float(f) => PyVal::Float(*f),
            Const::Str(s) => PyVal::Str(s.to_string()),
            _ => PyVal::Other,
        },
        Expr::Name(id) => PyVal::Str(id.name.to_string()),
        Expr::List(items) => match items.first() {
            None => PyVal::List(Vec::new()),
            Some(Expr::Const(_)) | Some(Expr::Name(_)) => PyVal::List(items.iter().map(node_to_value).collect()),
            Some(_) => PyVal::List(Vec::new()),
        },
        Expr::Bin { left, right, .. } => {
            let l = node_to_value(left);
            if l.truthy() { l } else { node_to_value(right) }
        }
        Expr::Unary { op, operand } if matches!(**operand, Expr::Const(_)) => {
            let v = node_to_value(operand);
            if *op == crate::expr::UnaryOp::Neg {
                match v {
                    PyVal::Int(i) => PyVal::Int(-i),
                    PyVal::Float(f) => PyVal::Float(-f),
                    PyVal::Bool(b) => PyVal::Int(-i128::from(b)),
                    PyVal::Str(_) => PyVal::Str(String::new()),
                    other => other,
                }
            } else {
                v
            }
        }
        _ => PyVal::None,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Parent {
    Call,
    Other,
}

enum Item<'a> {
    Expr(&'a Expr, Parent),
    Keyword(&'a Expr),
}

/// The variables of one expression or statement, in the reference's order (a dict: first
/// insertion fixes the position, later writes replace the entry).
fn var_data(roots: &[(&Expr, Parent)]) -> Result<Vec<RefVar>> {
    let mut vars: Vec<(PyVal, RefVar)> = Vec::new();
    let mut set = |key: PyVal, var: RefVar, only_if_new: bool| match vars.iter_mut().find(|(k, _)| *k == key) {
        Some(_) if only_if_new => {}
        Some((_, v)) => *v = var,
        None => vars.push((key, var)),
    };
    let mut queue: VecDeque<Item<'_>> = roots.iter().map(|(e, p)| Item::Expr(e, *p)).collect();
    while let Some(item) = queue.pop_front() {
        let (e, parent) = match item {
            Item::Keyword(v) => {
                queue.push_back(Item::Expr(v, Parent::Other));
                continue;
            }
            Item::Expr(e, p) => (e, p),
        };
        match e {
            Expr::Call { func, args, keywords, .. } => {
                if let Expr::Name(f) = &**func {
                    let fname = &*f.name;
                    let argv: Vec<PyVal> =
                        args.iter().filter(|a| !matches!(a, Expr::Call { .. })).map(node_to_value).collect();
                    let kw_default =
                        keywords.iter().find(|k| k.arg.as_deref() == Some("default")).map(|k| node_to_value(&k.value));
                    let list_error = |v: &PyVal| {
                        let mut s = String::new();
                        v.write(&mut s);
                        Error::syntax(format!("\"{s}\" can not be used as a variable name"))
                    };
                    let name_of = |v: &PyVal| match v {
                        PyVal::Str(s) => Some(s.clone()),
                        _ => None,
                    };
                    if CUSTOM_FUNCTIONS.contains(&fname) {
                        if let Some(first) = argv.first() {
                            if matches!(first, PyVal::List(_)) {
                                return Err(list_error(first));
                            }
                            if first.truthy() {
                                set(
                                    first.clone(),
                                    RefVar {
                                        name: name_of(first),
                                        ty: "String".into(),
                                        default_none: true,
                                        used_in: true,
                                    },
                                    true,
                                );
                            }
                        }
                    } else if fname == "Array" {
                        let default = kw_default.clone().unwrap_or_else(|| match argv.get(2) {
                            Some(v) if v.truthy() => v.clone(),
                            _ => PyVal::None,
                        });
                        if let Some(first) = argv.first() {
                            if matches!(first, PyVal::List(_)) {
                                return Err(list_error(first));
                            }
                            let ty = match argv.get(1) {
                                Some(t) => format!("Array({})", t.py_str()),
                                None => "Array(String)".to_string(),
                            };
                            let var = RefVar {
                                name: name_of(first),
                                ty,
                                default_none: default == PyVal::None,
                                used_in: false,
                            };
                            set(first.clone(), var, false);
                        }
                    } else if crate::names::is_reference_parameter_type(fname)
                        && let Some(first) = argv.first().filter(|v| **v != PyVal::None)
                    {
                        let default = kw_default.clone().unwrap_or_else(|| argv.get(1).cloned().unwrap_or(PyVal::None));
                        if matches!(first, PyVal::List(_)) {
                            return Err(list_error(first));
                        }
                        let var = RefVar {
                            name: name_of(first),
                            ty: fname.to_string(),
                            default_none: default == PyVal::None,
                            used_in: false,
                        };
                        set(first.clone(), var, false);
                    }
                }
                queue.push_back(Item::Expr(func, Parent::Call));
                for a in args {
                    queue.push_back(Item::Expr(a, Parent::Call));
                }
                for k in keywords {
                    queue.push_back(Item::Keyword(&k.value));
                }
            }
            Expr::Name(id) => {
                if parent != Parent::Call && !reserved(&id.name) {
                    let var = RefVar {
                        name: Some(id.name.to_string()),
                        ty: "String".into(),
                        default_none: true,
                        used_in: false,
                    };
                    set(PyVal::Str(id.name.to_string()), var, false);
                }
            }
            Expr::IfExp { test, body, orelse } => {
                for c in [test, body, orelse] {
                    queue.push_back(Item::Expr(c, Parent::Other));
                }
            }
            Expr::Dict { keys, values } => {
                for k in keys.iter().flatten() {
                    queue.push_back(Item::Expr(k, Parent::Other));
                }
                for v in values {
                    queue.push_back(Item::Expr(v, Parent::Other));
                }
            }
            other => other.for_each_child(&mut |c| queue.push_back(Item::Expr(c, Parent::Other))),
        }
    }
    Ok(vars.into_iter().map(|(_, v)| v).collect())
}

fn target_expr(t: &Target) -> Expr {
    match t {
        Target::Name(id) => Expr::Name(Ident { name: id.name.clone(), slot: id.slot }),
        Target::Tuple(items) => Expr::Tuple(items.iter().map(target_expr).collect()),
    }
}

struct Walker {
    typed: HashSet<String>,
    out: Vec<RefVar>,
}

impl Walker {
    fn statement(&mut self, roots: &[&Expr]) {
        let roots: Vec<(&Expr, Parent)> = roots.iter().map(|e| (*e, Parent::Other)).collect();
        // Statement failures (such as a literal list argument) are ignored by the reference.
        if let Ok(vars) = var_data(&roots) {
            self.out.extend(
                vars.into_iter().filter(|v| v.name.as_ref().is_some_and(|n| !n.is_empty() && !self.typed.contains(n))),
            );
        }
    }

    fn nodes(&mut self, nodes: &[Node]) -> Result<()> {
        for n in nodes {
            match n {
                Node::Text(_) | Node::Break | Node::Continue => {}
                Node::Output { expr, .. } => {
                    // The reference wraps every output in a call (`expression_wrapper(expr, …)`).
                    let vars = var_data(&[(expr, Parent::Call)])?;
                    self.typed.extend(vars.iter().filter_map(|v| v.name.clone()));
                    self.out.extend(vars);
                }
                Node::If { branches, orelse } => {
                    // Body (with its elif conditions in place) first, then the `if` condition.
                    let mut rest = branches.iter();
                    let first = rest.next();
                    if let Some((_, body)) = first {
                        self.nodes(body)?;
                    }
                    for (cond, body) in rest {
                        self.statement(&[cond]);
                        self.nodes(body)?;
                    }
                    if let Some(b) = orelse {
                        self.nodes(b)?;
                    }
                    if let Some((cond, _)) = first {
                        self.statement(&[cond]);
                    }
                }
                Node::For { target, iter, body, orelse, .. } => {
                    self.nodes(body)?;
                    if let Some(b) = orelse {
                        self.nodes(b)?;
                    }
                    let t = target_expr(target);
                    self.statement(&[&t, iter]);
                }
                Node::While { cond, body, orelse } => {
                    self.nodes(body)?;
                    if let Some(b) = orelse {
                        self.nodes(b)?;
                    }
                    self.statement(&[cond]);
                }
                Node::Try { body, except, orelse, finally } => {
                    self.nodes(body)?;
                    for b in [except, orelse, finally].into_iter().flatten() {
                        self.nodes(b)?;
                    }
                }
                Node::Set { target, op, value } => {
                    let t = target_expr(target);
                    let _ = op == &SetOp::Assign;
                    self.statement(&[&t, value]);
                }
            }
        }
        Ok(())
    }
}

/// The reference's variable list for a template; `Err` for the literal-list argument error.
pub(crate) fn reference_vars(nodes: &[Node]) -> Result<Vec<RefVar>> {
    let mut w = Walker { typed: HashSet::new(), out: Vec::new() };
    w.nodes(nodes)?;
    Ok(w.out)
}

/// The full required-parameter message (spec §10.2).
pub(crate) fn required_message(vars: &[RefVar]) -> String {
    let base = "Required parameter is not defined";
    let mut names: Vec<&str> = Vec::new();
    for v in vars {
        if !v.default_none || v.used_in {
            continue;
        }
        let Some(name) = v.name.as_deref() else {
            // The reference fails to join a non-string name and falls back to the bare message.
            return base.to_string();
        };
        if name != "job_timestamp" && !names.contains(&name) {
            names.push(name);
        }
    }
    let list = match names.split_last() {
        None => return base.to_string(),
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => last.to_string(),
    };
    format!("{base}. Check the parameters {list}. Please provide a value or set a default value in the pipe code.")
}

/// Parameters pre-converted to lists: the first entry of each name, when it is `Array(T)`.
pub(crate) fn array_preconversions(vars: &[RefVar]) -> Vec<(String, String)> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    for v in vars {
        let Some(name) = v.name.as_deref() else {
            continue;
        };
        if !seen.insert(name) {
            continue;
        }
        if let Some(inner) = v.ty.strip_prefix("Array(") {
            let elem: String = inner.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !elem.is_empty() && inner[elem.len()..].starts_with(')') {
                out.push((name.to_string(), elem));
            }
        }
    }
    out
}
