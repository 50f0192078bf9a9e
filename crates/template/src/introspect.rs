//! What a template says about its parameters: the published parameter list (spec §12) and
//! reserved-name warnings (§5.2).

use serde::Serialize;
use serde_json::Value as Json;

use crate::expr::{Const, Expr, Target, UnaryOp};
use crate::parser::Node;
use crate::types::ScalarType;

/// One request parameter of a template, as published in pipe JSON and OpenAPI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamInfo {
    /// Parameter name.
    pub name: String,
    /// `String`, `Int32`, …, `Array(Int32)`.
    #[serde(rename = "type")]
    pub ty: String,
    /// The default as written, or `null`.
    pub default: Json,
    /// `required=` as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required: Option<Json>,
    /// `description=` as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Json>,
    /// `example=` as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<Json>,
    /// `format=` as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Json>,
    /// `enum=` as written.
    #[serde(rename = "enum", skip_serializing_if = "Option::is_none")]
    pub enum_values: Option<Json>,
    /// `false` when the call passes `defined=False`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defined: Option<bool>,
    /// `function_call` when the name is only an argument of non-type functions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_in: Option<String>,
}

/// Reserved names that render with a warning (spec §5.2).
pub(crate) const WARNING_NAMES: [&str; 17] = [
    "__tb__semver",
    "debug_source_tables",
    "debug",
    "explain",
    "finalize_aggregations",
    "output_format_json_quote_64bit_integers",
    "output_format_json_quote_denormals",
    "output_format_parquet_string_as_string",
    "pipeline",
    "playground",
    "q",
    "query_id",
    "release_replacements",
    "tag",
    "template_parameters",
    "token",
    "job_timestamp",
];

/// The literal value of a constant expression, as JSON.
pub(crate) fn literal(e: &Expr) -> Option<Json> {
    Some(match e {
        Expr::Const(c) => match c {
            Const::None => Json::Null,
            Const::Bool(b) => Json::Bool(*b),
            Const::Int(i) => i64::try_from(*i).map(Json::from).unwrap_or_else(|_| Json::String(i.to_string())),
            Const::BigInt(s) => Json::String(s.clone()),
            Const::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
            Const::Str(s) => Json::String(s.to_string()),
            _ => return None,
        },
        Expr::Unary { op: UnaryOp::Neg, operand } => match literal(operand)? {
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Json::from(-i)
                } else {
                    serde_json::Number::from_f64(-n.as_f64()?).map_or(Json::Null, Json::Number)
                }
            }
            _ => return None,
        },
        Expr::List(items) | Expr::Tuple(items) => Json::Array(items.iter().map(literal).collect::<Option<_>>()?),
        _ => return None,
    })
}

/// A use of a name, in document order.
#[derive(Debug)]
pub(crate) enum Use<'a> {
    /// First argument of a type function.
    Typed { name: &'a str, func: &'a str, call: &'a Expr },
    /// A bare name in `{{ }}`.
    BareOutput(&'a str),
    /// A bare name in a statement expression (not inside call arguments).
    BareStatement(&'a str),
    /// An argument of a non-type function.
    FunctionArg { name: &'a str, listed: bool },
    /// A `set` or `for` target.
    Target(&'a str),
}

pub(crate) fn collect_uses(nodes: &[Node]) -> Vec<Use<'_>> {
    let mut uses = Vec::new();
    walk_nodes(nodes, &mut uses);
    uses
}

fn walk_nodes<'a>(nodes: &'a [Node], uses: &mut Vec<Use<'a>>) {
    for n in nodes {
        match n {
            Node::Text(_) | Node::Break | Node::Continue => {}
            Node::Output { expr, .. } => walk_expr(expr, false, false, uses),
            Node::If { branches, orelse } => {
                for (cond, body) in branches {
                    walk_expr(cond, true, false, uses);
                    walk_nodes(body, uses);
                }
                if let Some(b) = orelse {
                    walk_nodes(b, uses);
                }
            }
            Node::For { target, iter, body, orelse, .. } => {
                walk_target(target, uses);
                walk_expr(iter, true, false, uses);
                walk_nodes(body, uses);
                if let Some(b) = orelse {
                    walk_nodes(b, uses);
                }
            }
            Node::While { cond, body, orelse } => {
                walk_expr(cond, true, false, uses);
                walk_nodes(body, uses);
                if let Some(b) = orelse {
                    walk_nodes(b, uses);
                }
            }
            Node::Try { body, except, orelse, finally } => {
                walk_nodes(body, uses);
                for b in [except, orelse, finally].into_iter().flatten() {
                    walk_nodes(b, uses);
                }
            }
            Node::Set { target, value, .. } => {
                walk_target(target, uses);
                walk_expr(value, true, false, uses);
            }
        }
    }
}

fn walk_target<'a>(t: &'a Target, uses: &mut Vec<Use<'a>>) {
    t.for_each_ident(&mut |id| uses.push(Use::Target(&id.name)));
}

/// `in_call_arg`: inside the arguments of some call (so bare names are arguments).
fn walk_expr<'a>(e: &'a Expr, statement: bool, in_call_arg: bool, uses: &mut Vec<Use<'a>>) {
    match e {
        Expr::Name(id) => {
            let name = &*id.name;
            if in_call_arg {
                uses.push(Use::FunctionArg { name, listed: true });
            } else if statement {
                uses.push(Use::BareStatement(name));
            } else {
                uses.push(Use::BareOutput(name));
            }
        }
        Expr::Call { func, args, keywords, .. } => {
            let fname = match &**func {
                Expr::Name(id) => Some(&*id.name),
                _ => None,
            };
            if let Expr::Attribute { value, .. } = &**func {
                walk_expr(value, statement, in_call_arg, uses);
            }
            let is_type = fname.is_some_and(|f| crate::names::TYPE_FUNCTIONS.contains(&f));
            let unlisted = fname.is_some_and(|f| matches!(f, "symbol" | "table" | "TABLE" | "tb_secret" | "tb_var"));
            for (i, a) in args.iter().enumerate() {
                match (i, a) {
                    (0, Expr::Name(id)) if is_type => {
                        uses.push(Use::Typed { name: &id.name, func: fname.unwrap_or_default(), call: e });
                    }
                    (_, Expr::Name(id)) if unlisted => uses.push(Use::FunctionArg { name: &id.name, listed: false }),
                    _ => walk_expr(a, statement, true, uses),
                }
            }
            for k in keywords {
                walk_expr(&k.value, statement, true, uses);
            }
        }
        other => other.for_each_child(&mut |c| walk_expr(c, statement, in_call_arg, uses)),
    }
}

/// Keyword or positional argument `pos`/`name` of a call.
fn call_arg<'a>(call: &'a Expr, pos: usize, name: &str) -> Option<&'a Expr> {
    let Expr::Call { args, keywords, .. } = call else {
        return None;
    };
    keywords.iter().find(|k| k.arg.as_deref() == Some(name)).map(|k| &k.value).or_else(|| args.get(pos))
}

/// The element type of an `Array(x, 'T')` call, as written (`String` when absent or unknown).
pub(crate) fn array_element(call: &Expr) -> String {
    match call_arg(call, 1, "_type") {
        Some(Expr::Const(Const::Str(s))) if ScalarType::from_name(s).is_some() => s.to_string(),
        Some(Expr::Const(Const::Str(s))) if s.chars().all(|c| c.is_alphanumeric() || c == '_') && !s.is_empty() => {
            s.to_string()
        }
        _ => "String".to_string(),
    }
}

/// The published parameter list (Aviary decision: one entry per name, §12).
pub(crate) fn parameters(uses: &[Use<'_>], is_excluded: &dyn Fn(&str) -> bool) -> Vec<ParamInfo> {
    let mut out: Vec<ParamInfo> = Vec::new();
    let mut typed: Vec<bool> = Vec::new();
    let mut only_args: Vec<bool> = Vec::new();
    for u in uses {
        let (name, call, arg_use) = match u {
            Use::Typed { name, func, call } => (*name, Some((*func, *call)), false),
            Use::BareOutput(name) | Use::BareStatement(name) => (*name, None, false),
            Use::FunctionArg { name, listed: true } => (*name, None, true),
            Use::FunctionArg { listed: false, .. } | Use::Target(_) => continue,
        };
        if is_excluded(name) {
            continue;
        }
        let idx = match out.iter().position(|p| p.name == name) {
            Some(i) => i,
            None => {
                out.push(ParamInfo {
                    name: name.to_string(),
                    ty: "String".to_string(),
                    default: Json::Null,
                    required: None,
                    description: None,
                    example: None,
                    format: None,
                    enum_values: None,
                    defined: None,
                    used_in: None,
                });
                typed.push(false);
                only_args.push(true);
                out.len() - 1
            }
        };
        if !arg_use {
            only_args[idx] = false;
        }
        let Some((func, call)) = call else { continue };
        let p = &mut out[idx];
        let lit = |pos: usize, key: &str| call_arg(call, pos, key).and_then(literal);
        if !typed[idx] {
            typed[idx] = true;
            p.ty = if func == "Array" { format!("Array({})", array_element(call)) } else { type_name(func) };
            let default_pos = if func == "Array" { 2 } else { 1 };
            p.default = lit(default_pos, "default").unwrap_or(Json::Null);
        }
        let meta_pos = |k: &str| -> usize {
            let base = if func == "Array" { 1 } else { 0 };
            base + match k {
                "defined" => 2,
                "required" => 3,
                "description" => 4,
                "enum" => 5,
                "example" => 6,
                _ => 7,
            }
        };
        p.required = p.required.take().or_else(|| lit(meta_pos("required"), "required"));
        p.description = p.description.take().or_else(|| lit(meta_pos("description"), "description"));
        p.enum_values = p.enum_values.take().or_else(|| lit(meta_pos("enum"), "enum"));
        p.example = p.example.take().or_else(|| lit(meta_pos("example"), "example"));
        p.format = p.format.take().or_else(|| lit(meta_pos("format"), "format"));
        if p.defined.is_none() && lit(meta_pos("defined"), "defined") == Some(Json::Bool(false)) {
            p.defined = Some(false);
        }
    }
    for (p, only) in out.iter_mut().zip(only_args) {
        if only {
            p.used_in = Some("function_call".to_string());
        }
    }
    out
}

fn type_name(func: &str) -> String {
    match func {
        "Int" | "Integer" => "Int32".to_string(),
        other => other.to_string(),
    }
}
