//! The pipe SQL template language of Tinybird, rebuilt as a sandboxed interpreter.
//!
//! A pipe node whose SQL starts with `%` is a template: `{{ expr }}` inserts a value (strings
//! quoted and escaped, typed numbers as `toInt32('5')`, identifiers backtick-quoted), `{% … %}`
//! runs control blocks. Every request parameter — and every tenant's `fixed_params` — reaches
//! SQL only through this crate, so it is the product's injection boundary.
//!
//! [`Template::parse`] checks the whole template once (tags, Python expression syntax, the
//! sandbox of allowed functions, reserved names) and keeps a tree that [`Template::render`]
//! walks many times with different [`Params`]. Rendering is bounded by [`Limits`].
//!
//! This crate knows nothing of HTTP or storage; [`Error::status`] and [`Error::body`] give the
//! HTTP shape the API layer sends. The contract is `spec/template-language.md`; where Aviary
//! deliberately differs from the reference renderer it says so there (§13).

mod dates;
mod error;
mod escape;
mod eval;
mod expr;
mod functions;
mod introspect;
mod limits;
mod names;
mod parser;
mod refvars;
mod types;
mod value;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub use error::{Error, Result, doc};
pub use escape::{quoted_identifier, string_literal};
pub use introspect::ParamInfo;
pub use limits::Limits;
pub use value::{FloatType, IntType, Value, float_repr};

use eval::Renderer;
use expr::{Expr, Ident};
use introspect::Use;
use parser::Node;
use types::ScalarType;

/// If `sql` is a template (its first non-whitespace character is `%`), the text after that
/// one `%`; otherwise `None` and the SQL must be used as is.
pub fn strip_activation(sql: &str) -> Option<&str> {
    let trimmed = sql.trim_start();
    trimmed.strip_prefix('%')
}

/// Request parameters: name → value. Strings come from query strings and forms; any JSON
/// value from a JSON body or a JWT's `fixed_params`.
#[derive(Debug, Clone, Default)]
pub struct Params {
    map: foldhash::HashMap<String, Value>,
}

impl Params {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` (replacing any earlier value).
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Value>) -> &mut Self {
        self.map.insert(name.into(), value.into());
        self
    }

    /// Every member of a JSON object as a parameter.
    pub fn from_json_object(object: &serde_json::Map<String, serde_json::Value>) -> Self {
        Params { map: object.iter().map(|(k, v)| (k.clone(), Value::from(v))).collect() }
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name)
    }

    /// Whether `name` is set.
    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Params {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Params { map: iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }
}

/// Query settings that hint functions recorded while rendering (spec §9.9).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct QuerySettings {
    /// `max_threads(n)`.
    pub max_threads: Option<i64>,
    /// `cache_ttl('5m')`.
    pub cache_ttl: Option<String>,
    /// `backend_hint('x')`.
    pub backend_hint: Option<String>,
    /// `activate('analyzer')`, in call order.
    pub activate: Vec<String>,
    /// `disable('analyzer')`.
    pub disable: Option<String>,
}

/// Per-request rendering context beyond parameters.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Names of the workspace secrets the caller may use through `tb_secret()`.
    pub secrets: HashSet<String>,
    /// The time `job_timestamp` defaults to (UTC); `None` for now.
    pub now: Option<chrono::NaiveDateTime>,
}

/// The result of rendering a template.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The SQL.
    pub sql: String,
    /// Settings recorded by hint functions.
    pub settings: QuerySettings,
    /// Reserved names the template uses (for the `X-Tb-Warning` header).
    pub warnings: Vec<String>,
    /// Secrets referenced as ClickHouse query parameters (`{NAME: String}`), to send separately.
    pub secret_params: Vec<String>,
    /// Tables named through `table()`, for the caller to resolve and access-check.
    pub tables: Vec<String>,
}

/// A parsed, checked template, ready to render many times. Cheap to share between threads.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
    names: Vec<Arc<str>>,
    slot_local: Vec<bool>,
    slot_function: Vec<Option<&'static str>>,
    /// Whether a bare use of the name yields the function (the reference's namespace
    /// functions) rather than a parameter (Python builtins such as `len`).
    slot_is_value_function: Vec<bool>,
    /// Slots pre-converted to lists because their first use is `Array(name, 'T')`, with the
    /// element type as written.
    array_slots: Vec<(usize, String)>,
    job_timestamp_slot: Option<usize>,
    required_message: String,
    /// Capacity to reserve for the output: the template's text plus room for values.
    output_estimate: usize,
    warnings: Vec<String>,
    parameters: Vec<ParamInfo>,
    limits: Limits,
}

impl Template {
    /// Parses and checks a template with the default [`Limits`]. `text` is the template body
    /// (after the activating `%`, see [`strip_activation`]).
    pub fn parse(text: &str) -> Result<Template> {
        Self::parse_with(text, Limits::default())
    }

    /// Parses and checks a template with the given limits.
    pub fn parse_with(text: &str, limits: Limits) -> Result<Template> {
        let parser::Parsed { mut nodes, statement_error, reserved_error } = parser::parse(text, &limits)?;
        if let Some(e) = reserved_error {
            return Err(e);
        }
        if let Some(e) = statement_error {
            return Err(e);
        }
        // Give every name a slot.
        let mut names: Vec<Arc<str>> = Vec::new();
        let mut index: HashMap<Arc<str>, usize> = HashMap::new();
        let mut locals: HashSet<Arc<str>> = HashSet::new();
        let mut assign = |id: &mut Ident| {
            id.slot = *index.entry(id.name.clone()).or_insert_with(|| {
                names.push(id.name.clone());
                names.len() - 1
            });
        };
        for_each_ident_mut(&mut nodes, &mut assign, &mut locals);
        let slot_local: Vec<bool> = names.iter().map(|n| locals.contains(n)).collect();
        let slot_function: Vec<Option<&'static str>> = names.iter().map(|n| names::function(n)).collect();
        let slot_is_value_function: Vec<bool> = names.iter().map(|n| names::is_namespace_function(n)).collect();
        let is_param = |id: &Ident| !slot_local[id.slot] && slot_function[id.slot].is_none();
        for_each_expr_mut(&mut nodes, &mut |e| {
            e.walk_mut(&mut |e| {
                let Expr::Call { func, args, keywords, plan } = e else { return };
                let Expr::Name(id) = &**func else { return };
                let Some(function) = slot_function[id.slot].filter(|_| !slot_local[id.slot]) else { return };
                if args.iter().any(|a| matches!(a, Expr::Starred(_))) {
                    return;
                }
                let Some(kw) = keywords.iter().map(|k| k.arg.as_deref()).collect::<Option<Vec<&str>>>() else {
                    return;
                };
                *plan = functions::plan(function, args.len(), &kw).map(Box::new);
                if let (Some(p), "defined", [Expr::Name(arg)], []) = (plan.as_mut(), function, &args[..], &kw[..])
                    && is_param(arg)
                {
                    p.defined_slot = Some(arg.slot);
                }
            })
        });

        let uses = introspect::collect_uses(&nodes);
        let reference_vars = refvars::reference_vars(&nodes)?;
        let required_message = refvars::required_message(&reference_vars);
        let is_excluded = |n: &str| locals.contains(n) || slot_function[index[n]].is_some();
        let parameters = introspect::parameters(&uses, &is_excluded);
        let array_slots: Vec<(usize, String)> = refvars::array_preconversions(&reference_vars)
            .into_iter()
            .filter_map(|(name, elem)| {
                let slot = *index.get(name.as_str())?;
                (!slot_local[slot]).then_some((slot, elem))
            })
            .collect();
        let mut warnings: Vec<String> = Vec::new();
        for u in &uses {
            let name = match u {
                Use::Typed { name, .. }
                | Use::BareOutput(name)
                | Use::BareStatement(name)
                | Use::FunctionArg { name, .. }
                | Use::Target(name) => *name,
            };
            if introspect::WARNING_NAMES.contains(&name) && !warnings.iter().any(|w| w == name) {
                warnings.push(name.to_string());
            }
        }
        let preconverted: HashSet<usize> = array_slots.iter().map(|(slot, _)| *slot).collect();
        specialize_outputs(&mut nodes, &|id| is_param(id) && !preconverted.contains(&id.slot));
        let job_timestamp_slot = index.get("job_timestamp").copied().filter(|s| !slot_local[*s]);
        let output_estimate = text.len() + 128;
        Ok(Template {
            output_estimate,
            nodes,
            names,
            slot_local,
            slot_function,
            slot_is_value_function,
            array_slots,
            job_timestamp_slot,
            required_message,
            warnings,
            parameters,
            limits,
        })
    }

    /// The template's request parameters, one entry per name (spec §12).
    pub fn parameters(&self) -> &[ParamInfo] {
        &self.parameters
    }

    /// Reserved names the template uses (rendered with an `X-Tb-Warning`).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Renders with `params` and default options.
    pub fn render(&self, params: &Params) -> Result<Rendered> {
        static DEFAULT: std::sync::LazyLock<RenderOptions> = std::sync::LazyLock::new(RenderOptions::default);
        self.render_with(params, &DEFAULT)
    }

    /// Renders with `params` and `options`.
    pub fn render_with(&self, params: &Params, options: &RenderOptions) -> Result<Rendered> {
        let mut slots: eval::Slots<'_> = Vec::with_capacity(self.names.len());
        for (i, name) in self.names.iter().enumerate() {
            if self.slot_local[i] || self.slot_is_value_function[i] || name.starts_with("tb_secret_") {
                slots.push(eval::Slot::Unset);
            } else {
                slots.push(params.get(name).map_or(eval::Slot::Unset, eval::Slot::Param));
            }
        }
        for (slot, elem) in &self.array_slots {
            if let Some(v) = slots[*slot].get()
                && let Some(list) = preconvert(v, elem)
            {
                slots[*slot] = eval::Slot::Owned(list);
            }
        }
        if let Some(slot) = self.job_timestamp_slot
            && slots[slot].get().is_none_or(Value::is_none)
        {
            let now = options.now.unwrap_or_else(|| chrono::Utc::now().naive_utc());
            slots[slot] = eval::Slot::Owned(Value::from(now.format("%Y-%m-%d %H:%M:%S").to_string()));
        }
        let mut r = Renderer::new(self, slots, &options.secrets);
        r.run()?;
        Ok(Rendered {
            sql: r.out,
            settings: r.settings,
            warnings: self.warnings.clone(),
            secret_params: r.secret_params,
            tables: r.tables,
        })
    }
}

/// Converts a parameter used as `Array(name, 'T')` to a list (spec §5.3); `None` leaves it.
fn preconvert(v: &Value, elem: &str) -> Option<Value> {
    let elem_type = ScalarType::from_name(elem);
    let items: Vec<Value> = match v {
        Value::List(items) => items.to_vec(),
        Value::Str(s) => s.split(',').map(Value::from).collect(),
        _ => return None,
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(match elem_type {
            // An unknown element type keeps elements as they are (the reference's identity).
            None if item.is_none() => return None,
            None => item,
            Some(ScalarType::String) if item.is_none() => return None,
            Some(ScalarType::String) => Value::from(item.py_str()),
            Some(ScalarType::Symbol) => return None,
            Some(ty) => match types::convert(&item, ty).ok()? {
                Value::TypedInt(_, n) => Value::Int(n.parse().ok()?),
                Value::TypedFloat(_, f) => Value::Float(f),
                other => other,
            },
        });
    }
    Some(Value::List(Arc::new(out)))
}

/// A literal constant's value (what evaluating it gives, with no way to fail).
fn literal_value(e: &Expr) -> Option<Value> {
    match e {
        Expr::Const(expr::Const::None) => Some(Value::None),
        Expr::Const(expr::Const::Bool(b)) => Some(Value::Bool(*b)),
        Expr::Const(expr::Const::Int(i)) => Some(Value::Int(*i)),
        Expr::Const(expr::Const::Float(f)) => Some(Value::Float(*f)),
        Expr::Const(expr::Const::Str(s)) => Some(Value::Str(s.clone())),
        _ => None,
    }
}

/// Marks `{{ Type(param[, default][, keyword=literal…]) }}` outputs for the direct path.
fn specialize_outputs(nodes: &mut [Node], is_param: &dyn Fn(&Ident) -> bool) {
    for n in nodes {
        match n {
            Node::Output { expr: Expr::Call { func, args, keywords, plan: Some(plan) }, fast, .. } => {
                let (Some(ty), None, Expr::Name(_)) = (plan.scalar, &plan.error, &**func) else { continue };
                let Some(Expr::Name(param)) = args.first() else { continue };
                if !is_param(param) {
                    continue;
                }
                // Every other argument must be a literal, so skipping its evaluation changes nothing.
                let mut bound: [Option<Value>; 9] = Default::default();
                let rest = args.iter().skip(1).chain(keywords.iter().map(|k| &k.value));
                let mut literals = true;
                for (i, e) in rest.enumerate() {
                    match literal_value(e) {
                        Some(v) => bound[usize::from(plan.slots[i + 1])] = Some(v),
                        None => literals = false,
                    }
                }
                if !literals {
                    continue;
                }
                let default = bound[1].take().filter(|v| !v.is_none());
                let defined = bound[2].as_ref().is_none_or(Value::truthy);
                *fast = Some(Box::new(parser::FastOutput { slot: param.slot, ty, default, defined }));
            }
            Node::Text(_) | Node::Break | Node::Continue | Node::Output { .. } | Node::Set { .. } => {}
            Node::If { branches, orelse } => {
                branches.iter_mut().for_each(|(_, b)| specialize_outputs(b, is_param));
                orelse.iter_mut().for_each(|b| specialize_outputs(b, is_param));
            }
            Node::For { body, orelse, .. } | Node::While { body, orelse, .. } => {
                specialize_outputs(body, is_param);
                orelse.iter_mut().for_each(|b| specialize_outputs(b, is_param));
            }
            Node::Try { body, except, orelse, finally } => {
                specialize_outputs(body, is_param);
                for b in [except, orelse, finally].into_iter().flatten() {
                    specialize_outputs(b, is_param);
                }
            }
        }
    }
}

/// Visits the top-level expressions of every node.
fn for_each_expr_mut(nodes: &mut [Node], f: &mut dyn FnMut(&mut Expr)) {
    for n in nodes {
        match n {
            Node::Text(_) | Node::Break | Node::Continue => {}
            Node::Output { expr, .. } => f(expr),
            Node::If { branches, orelse } => {
                for (c, body) in branches {
                    f(c);
                    for_each_expr_mut(body, f);
                }
                orelse.iter_mut().for_each(|b| for_each_expr_mut(b, f));
            }
            Node::For { iter: e, body, orelse, .. } | Node::While { cond: e, body, orelse } => {
                f(e);
                for_each_expr_mut(body, f);
                orelse.iter_mut().for_each(|b| for_each_expr_mut(b, f));
            }
            Node::Try { body, except, orelse, finally } => {
                for_each_expr_mut(body, f);
                for b in [except, orelse, finally].into_iter().flatten() {
                    for_each_expr_mut(b, f);
                }
            }
            Node::Set { value, .. } => f(value),
        }
    }
}

fn for_each_ident_mut(nodes: &mut [Node], f: &mut dyn FnMut(&mut Ident), locals: &mut HashSet<Arc<str>>) {
    for n in nodes {
        match n {
            Node::Text(_) | Node::Break | Node::Continue => {}
            Node::Output { expr, .. } => expr.for_each_ident_mut(f),
            Node::If { branches, orelse } => {
                for (c, body) in branches {
                    c.for_each_ident_mut(f);
                    for_each_ident_mut(body, f, locals);
                }
                if let Some(b) = orelse {
                    for_each_ident_mut(b, f, locals);
                }
            }
            Node::For { target, iter, body, orelse, .. } => {
                target.for_each_ident_mut(&mut |id| {
                    locals.insert(id.name.clone());
                    f(id);
                });
                iter.for_each_ident_mut(f);
                for_each_ident_mut(body, f, locals);
                if let Some(b) = orelse {
                    for_each_ident_mut(b, f, locals);
                }
            }
            Node::While { cond, body, orelse } => {
                cond.for_each_ident_mut(f);
                for_each_ident_mut(body, f, locals);
                if let Some(b) = orelse {
                    for_each_ident_mut(b, f, locals);
                }
            }
            Node::Try { body, except, orelse, finally } => {
                for_each_ident_mut(body, f, locals);
                for b in [except, orelse, finally].into_iter().flatten() {
                    for_each_ident_mut(b, f, locals);
                }
            }
            Node::Set { target, value, .. } => {
                target.for_each_ident_mut(&mut |id| {
                    locals.insert(id.name.clone());
                    f(id);
                });
                value.for_each_ident_mut(f);
            }
        }
    }
}
