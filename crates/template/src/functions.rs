//! Every function and method a template may call (spec §4.3, §8, §9), with Python's argument
//! binding: positional, then keyword, unknown keywords refused.

use std::sync::Arc;

use crate::dates::{self, Unit};
use crate::error::{Error, Result, doc};
use crate::escape;
use crate::eval::{Renderer, iterate, render_output};
use crate::expr::CallPlan;
use crate::types::{self, ScalarType};
use crate::value::{Num, Value, py_isspace, py_strip};

type Kwargs = Vec<(Arc<str>, Value)>;

const TYPE_SIG: [&str; 8] = ["x", "default", "defined", "required", "description", "enum", "example", "format"];
const ARRAY_SIG: [&str; 9] =
    ["x", "_type", "default", "defined", "required", "description", "enum", "example", "format"];

fn missing_argument() -> Error {
    Error::syntax_doc("one of the transform type functions is missing an argument", doc::TRANSFORM_TYPES)
}

/// The parameters of every function with a fixed signature, and how many are required;
/// `None` for the variadic ones.
pub(crate) fn signature(name: &str) -> Option<(&'static [&'static str], usize)> {
    Some(match name {
        "Array" => (&ARRAY_SIG, 1),
        "day_diff" => (&["d0", "d1", "default"], 2),
        "date_diff_in_days" | "date_diff_in_hours" | "date_diff_in_minutes" | "date_diff_in_seconds" => {
            (&["d0", "d1", "date_format", "default", "backup_date_format", "none_if_error"], 2)
        }
        "Boolean" | "bool" => (&["x", "default"], 1),
        "JSON" => (&["x", "default"], 1),
        "defined" => (&["x"], 0),
        "column" => (&["x", "default"], 1),
        "columns" => (&["x", "default", "fn"], 1),
        "symbol" => (&["x", "quote"], 1),
        "table" | "TABLE" => (&["x", "quote"], 1),
        "split_to_array" => (&["x", "default", "separator"], 1),
        "enumerate_with_last" => (&["arr"], 1),
        "sql_unescape" => (&["x", "what"], 1),
        "error" => (&["s", "code"], 1),
        "custom_error" => (&["s", "code"], 1),
        "max_threads" => (&["x"], 1),
        "cache_ttl" => (&["ttl_expression"], 1),
        "backend_hint" => (&["hint"], 1),
        "activate" => (&["feature"], 1),
        "disable" => (&["feature"], 1),
        "tb_secret" | "tb_var" => (&["x", "default"], 1),
        "len" => (&["obj"], 1),
        "list" => (&["iterable"], 0),
        "int" => (&["x"], 0),
        "float" => (&["x"], 0),
        "str" => (&["object"], 0),
        "abs" => (&["x"], 1),
        "round" => (&["number", "ndigits"], 1),
        "sum" => (&["iterable", "start"], 1),
        "enumerate" => (&["iterable", "start"], 1),
        "sorted" => (&["iterable", "reverse"], 1),
        "any" => (&["iterable"], 1),
        "all" => (&["iterable"], 1),
        "sql_and" | "range" | "zip" | "min" | "max" => return None,
        other if crate::names::TYPE_FUNCTIONS.contains(&other) => (&TYPE_SIG, 1),
        _ => return None,
    })
}

/// Where each argument of a call goes: positional ones first, then keywords by name. Errors
/// are Python's: too many arguments, an unknown or repeated keyword, a required one missing.
fn plan_slots(fname: &str, sig: &[&str], required: usize, positional: usize, keywords: &[&str]) -> Result<Vec<u8>> {
    if positional > sig.len() {
        return Err(Error::syntax(format!("{fname}() takes at most {} arguments ({positional} given)", sig.len())));
    }
    let mut filled = [false; 16];
    let mut slots: Vec<u8> = (0..positional as u8).collect();
    filled[..positional].iter_mut().for_each(|f| *f = true);
    for k in keywords {
        let Some(i) = sig.iter().position(|s| s == k) else {
            return Err(Error::syntax(format!("{fname}() got an unexpected keyword argument '{k}'")));
        };
        if filled[i] {
            return Err(Error::syntax(format!("{fname}() got multiple values for argument '{k}'")));
        }
        filled[i] = true;
        slots.push(i as u8);
    }
    if !filled[..required].iter().all(|f| *f) {
        return Err(missing_argument());
    }
    Ok(slots)
}

/// The binding of a call of `function` with `positional` arguments and these keywords, made
/// once when the template is built; `None` for variadic functions.
pub(crate) fn plan(function: &'static str, positional: usize, keywords: &[&str]) -> Option<CallPlan> {
    let (sig, required) = signature(function)?;
    let (slots, error) = match plan_slots(function, sig, required, positional, keywords) {
        Ok(slots) => (slots, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let scalar = scalar_function(function);
    Some(CallPlan { function, scalar, arity: sig.len(), slots: slots.into(), defined_slot: None, error })
}

/// Binds `args`/`kwargs` to the parameter names `sig`; the first `required` must be given.
fn bind(fname: &str, sig: &[&str], required: usize, args: Vec<Value>, kwargs: Kwargs) -> Result<Vec<Option<Value>>> {
    let names: Vec<&str> = kwargs.iter().map(|(k, _)| &**k).collect();
    let slots = plan_slots(fname, sig, required, args.len(), &names)?;
    let mut out: Vec<Option<Value>> = vec![None; sig.len()];
    for (value, slot) in args.into_iter().chain(kwargs.into_iter().map(|(_, v)| v)).zip(slots) {
        out[slot as usize] = Some(value);
    }
    Ok(out)
}

/// The value of an optional argument, `None` when absent or `None`.
fn opt(v: &Option<Value>) -> Option<&Value> {
    v.as_ref().filter(|v| !v.is_none())
}

fn arg(v: &Option<Value>) -> Value {
    v.clone().unwrap_or(Value::None)
}

fn str_arg<'a>(fname: &str, v: &'a Value) -> Result<&'a str> {
    v.as_str().ok_or_else(|| Error::syntax(format!("{fname}() expects a String, got {}", v.kind())))
}

fn fragment(s: impl Into<Arc<str>>) -> Value {
    Value::Fragment(s.into())
}

fn required_error(r: &Renderer<'_>) -> Error {
    Error::syntax_doc(r.t.required_message.clone(), doc::TEMPLATES)
}

/// A type function without a value or default: the required-parameter error, or `None` with
/// `defined=False`.
fn missing(r: &Renderer<'_>, defined: &Option<Value>) -> Result<Value> {
    if defined.as_ref().is_none_or(Value::truthy) { Err(required_error(r)) } else { Ok(Value::None) }
}

/// Calls the whitelisted function `name`.
pub(crate) fn call(r: &mut Renderer<'_>, name: &'static str, args: Vec<Value>, kwargs: Kwargs) -> Result<Value> {
    match signature(name) {
        Some((sig, required)) => {
            let mut a = bind(name, sig, required, args, kwargs)?;
            call_bound(r, name, &mut a)
        }
        None => call_variadic(r, name, args, kwargs),
    }
}

/// Calls a function with a fixed signature, its arguments already bound to `a`.
pub(crate) fn call_bound(r: &mut Renderer<'_>, name: &'static str, a: &mut [Option<Value>]) -> Result<Value> {
    call_planned(r, name, scalar_function(name), a)
}

/// The scalar type of a type function (`Int32` → Int32), `None` for every other function
/// (including `Boolean`, `Array` and `JSON`, which have their own rules).
fn scalar_function(name: &str) -> Option<ScalarType> {
    ScalarType::from_name(name).filter(|_| !matches!(name, "Boolean" | "bool" | "Symbol" | "Column"))
}

/// Calls a bound function whose scalar type, if any, is already known.
pub(crate) fn call_planned(
    r: &mut Renderer<'_>,
    name: &'static str,
    scalar: Option<ScalarType>,
    a: &mut [Option<Value>],
) -> Result<Value> {
    if let Some(ty) = scalar {
        let value = match opt(&a[0]).or(opt(&a[1])) {
            Some(v) => v.clone(),
            None => return missing(r, &a[2]),
        };
        return types::convert(&value, ty);
    }
    match name {
        "Boolean" | "bool" => {
            let b = match (opt(&a[0]), opt(&a[1])) {
                (Some(v), _) | (None, Some(v)) => types::boolean(v),
                (None, None) => false,
            };
            Ok(Value::Int(i128::from(b)))
        }
        "Array" => array(r, a),
        "JSON" => {
            let x = match opt(&a[0]) {
                Some(v) => v.clone(),
                None => match opt(&a[1]) {
                    Some(d) if d.as_str().is_some() => d.clone(),
                    _ => Value::from("{}"),
                },
            };
            match x.as_str() {
                Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
                    Ok(j) => Ok(Value::from(&j)),
                    Err(e) => {
                        let shown: String = if text.chars().count() > 16 {
                            text.chars().take(16).chain("...".chars()).collect()
                        } else {
                            text.to_string()
                        };
                        Err(Error::syntax(format!("Error parsing JSON: '{shown}' - {e}")))
                    }
                },
                None => Ok(x),
            }
        }
        "defined" => Ok(Value::Bool(opt(&a[0]).is_some())),
        "column" => {
            let x = match opt(&a[0]).or(opt(&a[1])) {
                Some(v) => v.clone(),
                None => {
                    return Err(Error::syntax_doc(
                        "Missing column() default value, use `column(column_name, 'default_column_name')`",
                        doc::COLUMN,
                    ));
                }
            };
            Ok(fragment(column(&x)?))
        }
        "columns" => {
            let x = match opt(&a[0]).or(opt(&a[1])) {
                Some(v) => v.clone(),
                None => {
                    return Err(Error::syntax_doc(
                        "Missing columns() default value, use `columns(column_names, 'default_column_name')`",
                        doc::COLUMNS,
                    ));
                }
            };
            let Some(text) = x.as_str() else {
                return Err(Error::syntax_doc("The 'columns' function expects a String not an Array", doc::COLUMNS));
            };
            let func = match a[2].as_ref().filter(|f| f.truthy()) {
                None => None,
                Some(f) => {
                    let f = f.py_str();
                    let valid = f.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !valid {
                        return Err(Error::syntax(format!("Invalid function name in columns(): {f}")));
                    }
                    Some(f)
                }
            };
            let mut parts = Vec::new();
            for c in text.split(',') {
                let c = py_strip(c);
                let col = column(&Value::from(c))?;
                parts.push(match &func {
                    Some(f) => format!("{f}({col}) as {}", escape::quoted_identifier(c)),
                    None => col,
                });
            }
            Ok(fragment(parts.join(",")))
        }
        "symbol" => {
            let quote = match opt(&a[1]) {
                Some(q) => str_arg(name, q)?.to_string(),
                None => "`".to_string(),
            };
            types::symbol(&arg(&a[0]), &quote)
        }
        "table" | "TABLE" => {
            let x = arg(&a[0]);
            let text = x.as_str().map(escape::identifier_escaped);
            match text {
                Some(t) if is_table_name(&t) => {
                    r.tables.push(t.clone());
                    Ok(fragment(t))
                }
                _ => Err(Error::syntax(format!("Invalid table name '{}'", x.py_str()))),
            }
        }
        "split_to_array" => {
            let x = match opt(&a[0]) {
                Some(v) => v.clone(),
                None => a[1].clone().unwrap_or_else(|| Value::from("")),
            };
            let sep = match &a[2] {
                Some(s) => str_arg(name, s)?.to_string(),
                None => ",".to_string(),
            };
            let Some(text) = x.as_str() else {
                return Err(Error::syntax_doc(
                    "First argument of split_to_array has to be a value that can be split to a list of elements, but found a PlaceHolder with no value instead",
                    doc::SPLIT_TO_ARRAY,
                ));
            };
            if sep.is_empty() {
                return Err(Error::syntax("empty separator"));
            }
            Ok(Value::List(Arc::new(text.split(sep.as_str()).map(|s| Value::from(py_strip(s))).collect())))
        }
        "enumerate_with_last" => {
            let items = iterate(&arg(&a[0]))?;
            let n = items.len();
            Ok(Value::List(Arc::new(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| Value::Tuple(Arc::new(vec![Value::Bool(i + 1 == n), v])))
                    .collect(),
            )))
        }
        "sql_unescape" => {
            let x = arg(&a[0]);
            let text = str_arg(name, &x)?;
            let what = match opt(&a[1]) {
                Some(w) => str_arg(name, w)?.to_string(),
                None => String::new(),
            };
            sql_unescape(text, &what).map(fragment)
        }
        "day_diff" | "date_diff_in_days" | "date_diff_in_hours" | "date_diff_in_minutes" | "date_diff_in_seconds" => {
            date_diff(name, a)
        }
        "error" => Err(Error::User { message: arg(&a[0]).py_str() }),
        "custom_error" => {
            let status = opt(&a[1])
                .and_then(|c| match c {
                    Value::Int(i) => u16::try_from(*i).ok(),
                    _ => None,
                })
                .filter(|s| (400..=599).contains(s))
                .unwrap_or(400);
            let body = match arg(&a[0]) {
                v @ Value::Dict(_) => to_json(&v),
                other => serde_json::json!({ "error": other.py_str() }),
            };
            Err(Error::Custom { status, body })
        }
        "max_threads" => {
            let x = arg(&a[0]);
            match py_int(&x) {
                Ok(n) => {
                    r.settings.max_threads = i64::try_from(n).ok();
                    Ok(fragment(format!("-- max_threads {}\n", comment_text(&x))))
                }
                Err(_) => Ok(fragment(format!("-- max_threads: wrong argument {}\n", comment_text(&x)))),
            }
        }
        "cache_ttl" => {
            let x = arg(&a[0]);
            match x.as_str().filter(|s| ["5s", "1m", "5m", "30m", "1h"].contains(s)) {
                Some(ttl) => {
                    r.settings.cache_ttl = Some(ttl.to_string());
                    Ok(fragment(format!("-- cache_ttl {ttl}\n")))
                }
                None => Err(Error::syntax(
                    "Invalid TTL cache expression, valid expressions are ('5s', '1m', '5m', '30m', '1h')",
                )),
            }
        }
        "backend_hint" => {
            let x = arg(&a[0]);
            r.settings.backend_hint = match x {
                Value::None | Value::Bool(false) => None,
                ref v => Some(v.py_str()),
            };
            Ok(fragment(format!("-- backend_hint {}\n", comment_text(&x))))
        }
        "activate" => {
            let x = arg(&a[0]);
            match x.as_str().filter(|s| ["analyzer", "parallel_replicas", "optimize_aggregation_in_order"].contains(s))
            {
                Some(f) => {
                    if !r.settings.activate.iter().any(|a| a == f) {
                        r.settings.activate.push(f.to_string());
                    }
                    Ok(fragment(format!("-- activate {f}\n")))
                }
                None => Err(Error::syntax(format!("'{}' is not a valid 'activate' argument", x.py_str()))),
            }
        }
        "disable" => {
            let x = arg(&a[0]);
            match x.as_str().filter(|s| *s == "analyzer") {
                Some(f) => {
                    r.settings.disable = Some(f.to_string());
                    Ok(fragment(format!("-- disable {f}\n")))
                }
                None => Err(Error::syntax(format!("'{}' is not a valid 'disable' argument", x.py_str()))),
            }
        }
        "tb_secret" | "tb_var" => {
            let x = arg(&a[0]);
            let key = x.py_str();
            let denied = || {
                Error::syntax(format!(
                    "Cannot access secret '{key}'. Check the secret exists in the Workspace and the token has the required scope."
                ))
            };
            if x.as_str().is_some() && r.secrets.contains(&key) {
                if !r.secret_params.contains(&key) {
                    r.secret_params.push(key.clone());
                }
                return Ok(fragment(format!("{{{}: String}}", escape::identifier_escaped(&key))));
            }
            opt(&a[1]).cloned().ok_or_else(denied)
        }
        "len" => {
            let v = arg(&a[0]);
            let n = match &v {
                Value::Str(s) | Value::Fragment(s) => s.chars().count(),
                Value::List(i) | Value::Tuple(i) | Value::Set(i) => i.len(),
                Value::Dict(d) => d.len(),
                other => {
                    return Err(Error::syntax(format!("len() is not supported for {} values", other.kind())));
                }
            };
            Ok(Value::Int(n as i128))
        }
        "list" => Ok(Value::List(Arc::new(match &a[0] {
            Some(v) => iterate(v)?,
            None => Vec::new(),
        }))),
        "int" => match &a[0] {
            None => Ok(Value::Int(0)),
            Some(v) => py_int(v).map(Value::Int),
        },
        "float" => match &a[0] {
            None => Ok(Value::Float(0.0)),
            Some(v) => py_float(v).map(Value::Float),
        },
        // Statement-only builtins (spec §4.5).
        "str" => Ok(Value::from(a[0].as_ref().map(Value::py_str).unwrap_or_default())),
        "abs" => match arg(&a[0]).num() {
            Some(Num::Int(i)) => Ok(Value::Int(i.abs())),
            Some(Num::Float(f)) => Ok(Value::Float(f.abs())),
            None => Err(Error::syntax("abs() expects a number")),
        },
        "round" => {
            let digits = opt(&a[1]).and_then(Value::as_int);
            match (arg(&a[0]).num(), digits) {
                (Some(Num::Int(i)), _) => Ok(Value::Int(i)),
                (Some(Num::Float(f)), None) => Ok(Value::Int(f.round_ties_even() as i128)),
                (Some(Num::Float(f)), Some(d)) => {
                    let m = 10f64.powi(d.clamp(-300, 300) as i32);
                    Ok(Value::Float((f * m).round_ties_even() / m))
                }
                (None, _) => Err(Error::syntax("round() expects a number")),
            }
        }
        "sum" => {
            let mut acc = a[1].clone().unwrap_or(Value::Int(0));
            for v in iterate(&arg(&a[0]))? {
                acc = r.binop(crate::expr::BinOp::Add, &acc, &v)?;
            }
            Ok(acc)
        }
        "enumerate" => {
            let start = opt(&a[1]).and_then(Value::as_int).unwrap_or(0);
            Ok(Value::List(Arc::new(
                iterate(&arg(&a[0]))?
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| Value::Tuple(Arc::new(vec![Value::Int(start + i as i128), v])))
                    .collect(),
            )))
        }
        "sorted" => {
            let mut items = iterate(&arg(&a[0]))?;
            let mut failed = false;
            items.sort_by(|x, y| {
                x.py_cmp(y).unwrap_or_else(|| {
                    failed = true;
                    std::cmp::Ordering::Equal
                })
            });
            if failed {
                return Err(Error::syntax("sorted() values cannot be compared"));
            }
            if a[1].as_ref().is_some_and(Value::truthy) {
                items.reverse();
            }
            Ok(Value::List(Arc::new(items)))
        }
        "any" => Ok(Value::Bool(iterate(&arg(&a[0]))?.iter().any(Value::truthy))),
        "all" => Ok(Value::Bool(iterate(&arg(&a[0]))?.iter().all(Value::truthy))),
        other => Err(Error::syntax(format!("Invalid function name: {other}"))),
    }
}

/// Functions that take any number of arguments (`sql_and(**kw)`, `min(*args)`, …).
fn call_variadic(r: &mut Renderer<'_>, name: &'static str, args: Vec<Value>, kwargs: Kwargs) -> Result<Value> {
    match name {
        "sql_and" => sql_and(kwargs),
        "range" => {
            let ints: Vec<i128> = args
                .iter()
                .map(|v| v.as_int().ok_or_else(|| Error::syntax("range() expects integers")))
                .collect::<Result<_>>()?;
            if !kwargs.is_empty() || ints.is_empty() || ints.len() > 3 {
                return Err(Error::syntax("range() expects 1 to 3 integer arguments"));
            }
            let (start, stop, step) = match ints[..] {
                [stop] => (0, stop, 1),
                [start, stop] => (start, stop, 1),
                [start, stop, step] => (start, stop, step),
                _ => unreachable_range(),
            };
            if step == 0 {
                return Err(Error::syntax("range() arg 3 must not be zero"));
            }
            let len = if step > 0 {
                (stop - start + step - 1).max(0) / step
            } else {
                (start - stop - step - 1).max(0) / -step
            };
            if len > r.t.limits.max_range as i128 {
                return Err(Error::syntax(format!("range() is limited to {} elements", r.t.limits.max_range)));
            }
            Ok(Value::List(Arc::new((0..len).map(|i| Value::Int(start + i * step)).collect())))
        }
        "zip" => {
            if !kwargs.is_empty() {
                return Err(Error::syntax("zip() takes no keyword arguments"));
            }
            let lists: Vec<Vec<Value>> = args.iter().map(iterate).collect::<Result<_>>()?;
            let n = lists.iter().map(Vec::len).min().unwrap_or(0);
            Ok(Value::List(Arc::new(
                (0..n).map(|i| Value::Tuple(Arc::new(lists.iter().map(|l| l[i].clone()).collect()))).collect(),
            )))
        }
        "min" | "max" => min_max(name, args, kwargs),
        other => Err(Error::syntax(format!("Invalid function name: {other}"))),
    }
}

/// `str(value)` for echoing into a hint's `-- …` comment: CR and LF become spaces so the value
/// can never end the comment (Aviary safety decision; the reference copies them through).
fn comment_text(v: &Value) -> String {
    v.py_str().replace(['\r', '\n'], " ")
}

fn unreachable_range() -> (i128, i128, i128) {
    (0, 0, 1)
}

/// `^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$` (Aviary decision, spec §9.3).
fn is_table_name(s: &str) -> bool {
    let ident = |p: &str| {
        p.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    match s.split_once('.') {
        Some((a, b)) => ident(a) && ident(b),
        None => ident(s),
    }
}

/// `column(x)`: split on `.`, each part a quoted identifier.
fn column(x: &Value) -> Result<String> {
    let Some(text) = x.as_str() else {
        return Err(Error::syntax_doc(format!("column() expects a String, got {}", x.kind()), doc::COLUMN));
    };
    Ok(text.split('.').map(escape::quoted_identifier).collect::<Vec<_>>().join("."))
}

/// Aviary's `sql_unescape` (spec §9.5): escape normally, then turn `\c` back into `c` for each
/// character `c` of `what`, token by token so an escaped backslash is never split.
fn sql_unescape(text: &str, what: &str) -> Result<String> {
    if let Some(bad) = what.chars().find(|c| *c == '\'' || *c == '\\') {
        return Err(Error::syntax(format!("sql_unescape() cannot unescape '{bad}'")));
    }
    let mut escaped = String::with_capacity(text.len() + 2);
    escape::write_string_escaped(text, &mut escaped);
    let mut out = String::with_capacity(escaped.len() + 2);
    out.push('\'');
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let next = chars.next().unwrap_or('\\');
            if !what.contains(next) {
                out.push('\\');
            }
            out.push(next);
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    Ok(out)
}

fn sql_and(kwargs: Kwargs) -> Result<Value> {
    let mut parts = Vec::new();
    for (k, v) in kwargs {
        if v.is_none() {
            continue;
        }
        let (col, op) = match k.rsplit_once("__") {
            None => (&*k, "="),
            Some((col, suffix)) => {
                let op = match suffix {
                    "in" => "in",
                    "not_in" => "not in",
                    "gt" => ">",
                    "lt" => "<",
                    "gte" => ">=",
                    "lte" => "<=",
                    other => {
                        return Err(Error::syntax_doc(format!("operand {other} not supported"), doc::SQL_AND));
                    }
                };
                (col, op)
            }
        };
        let mut rendered = String::new();
        render_output(&v, &k, &mut rendered)?;
        parts.push(format!("{col} {op} {rendered}"));
    }
    Ok(Value::Fragment(Arc::from(parts.join(" and "))))
}

fn array(r: &mut Renderer<'_>, a: &[Option<Value>]) -> Result<Value> {
    let x = match opt(&a[0]).or(opt(&a[2])) {
        Some(v) => v.clone(),
        None => return missing(r, &a[3]),
    };
    let elem = opt(&a[1]).and_then(Value::as_str).and_then(ScalarType::from_name);
    let items: Vec<Value> = match &x {
        Value::List(items) => items.to_vec(),
        v if v.as_str().is_some() => v.as_str().unwrap_or_default().split(',').map(Value::from).collect(),
        _ => {
            return Err(Error::syntax_doc("transform type function Array is not well defined", doc::TEMPLATES));
        }
    };
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match elem {
            Some(
                ty @ (ScalarType::Int(_)
                | ScalarType::Float(_)
                | ScalarType::Date
                | ScalarType::DateTime
                | ScalarType::DateTime64),
            ) => {
                let converted = types::convert(item, ty).map_err(|_| {
                    let shown = match item.as_str() {
                        Some("") => "empty string".to_string(),
                        _ => item.py_str(),
                    };
                    Error::syntax_doc(
                        format!("Error validating [{}][{i}] ({shown}) to type {}", x.py_str(), ty.tester_name()),
                        doc::TEMPLATES,
                    )
                })?;
                types::array_element(&converted, &mut out);
            }
            Some(ScalarType::String) => {
                if item.is_none() {
                    return Err(required_error(r));
                }
                escape::write_string_literal(&item.py_str(), &mut out);
            }
            Some(ty) => {
                let converted = types::convert(item, ty)?;
                types::array_element(&converted, &mut out);
            }
            None => render_output(item, &item.py_str(), &mut out)?,
        }
    }
    out.push(']');
    Ok(Value::Fragment(Arc::from(out)))
}

fn date_diff(name: &'static str, a: &[Option<Value>]) -> Result<Value> {
    let (unit, default_format, message, documentation) = match name {
        "day_diff" => (
            Unit::Days,
            "%Y-%m-%d",
            "invalid date format in function `day_diff`, it must be ISO format date YYYY-MM-DD, e.g. 2018-09-26. For other fotmats, try `date_diff_in_days`",
            doc::DATE_DIFF_IN_DAYS,
        ),
        "date_diff_in_days" => (
            Unit::Days,
            "%Y-%m-%d",
            "invalid date format in function `date_diff_in_days`, it must be ISO format date YYYY-MM-DD, e.g. 2018-09-26",
            doc::DATE_DIFF_IN_DAYS,
        ),
        "date_diff_in_hours" => (
            Unit::Hours,
            "%Y-%m-%d %H:%M:%S",
            "invalid date_format in function `date_diff_in_hours`, defaults to YYYY-MM-DD hh:mm:ss. Or %Y-%m-%d %H:%M:%S [.ssssss]Z, e.g. ms: 2022-12-19T18:42:22.591Z s:2022-12-19T18:42:22Z",
            doc::DATE_DIFF_IN_HOURS,
        ),
        "date_diff_in_minutes" => (
            Unit::Minutes,
            "%Y-%m-%d %H:%M:%S",
            "invalid date_format in function `date_diff_in_seconds`, defaults to YYYY-MM-DD hh:mm:ss. Or %Y-%m-%d %H:%M:%S [.ssssss]Z, e.g. ms: 2022-12-19T18:42:22.591Z s:2022-12-19T18:42:22Z",
            doc::DATE_DIFF_IN_MINUTES,
        ),
        _ => (
            Unit::Seconds,
            "%Y-%m-%d %H:%M:%S",
            "invalid date_format in function `date_diff_in_seconds`, defaults to YYYY-MM-DD hh:mm:ss. Or %Y-%m-%d %H:%M:%S [.ssssss]Z, e.g. ms: 2022-12-19T18:42:22.591Z s:2022-12-19T18:42:22Z",
            doc::DATE_DIFF_IN_SECONDS,
        ),
    };
    let fail = || Error::syntax_doc(message, documentation);
    let format = match a.get(2).and_then(opt).filter(|_| name != "day_diff") {
        Some(f) => f.as_str().ok_or_else(fail)?.to_string(),
        None => default_format.to_string(),
    };
    let backup = match a.get(4).and_then(opt) {
        Some(b) => Some(b.as_str().ok_or_else(fail)?.to_string()),
        None => None,
    };
    let none_if_error = a.get(5).and_then(|v| v.as_ref()).is_some_and(Value::truthy);
    let (d0, d1) = (arg(&a[0]), arg(&a[1]));
    let result = match (d0.as_str(), d1.as_str()) {
        (Some(x), Some(y)) => dates::diff(x, y, &format, backup.as_deref(), unit),
        _ => None,
    };
    match result {
        Some(n) => Ok(Value::Int(n)),
        None if none_if_error => Ok(Value::None),
        None => Err(fail()),
    }
}

fn min_max(name: &'static str, args: Vec<Value>, kwargs: Kwargs) -> Result<Value> {
    let mut default = None;
    for (k, v) in kwargs {
        if &*k == "default" {
            default = Some(v);
        } else {
            return Err(Error::syntax(format!("{name}() got an unexpected keyword argument '{k}'")));
        }
    }
    let items = match args.len() {
        0 => {
            return Err(Error::syntax(format!("{name} expected at least 1 argument, got 0")));
        }
        1 => iterate(&args[0])?,
        _ => args,
    };
    let mut best: Option<Value> = None;
    for v in items {
        best = Some(match best {
            None => v,
            Some(b) => {
                let ord = v.py_cmp(&b).ok_or_else(|| Error::syntax(format!("{name}() values cannot be compared")))?;
                let better = if name == "min" { ord.is_lt() } else { ord.is_gt() };
                if better { v } else { b }
            }
        });
    }
    best.or(default).ok_or_else(|| Error::syntax(format!("{name}() arg is an empty sequence")))
}

/// Python `int(x)`.
pub(crate) fn py_int(v: &Value) -> Result<i128> {
    match v {
        Value::Str(s) | Value::Fragment(s) => {
            let t = s.trim();
            let body = t.strip_prefix(['+', '-']).unwrap_or(t);
            let ok = !body.is_empty()
                && !body.starts_with('_')
                && !body.ends_with('_')
                && !body.contains("__")
                && body.bytes().all(|b| b.is_ascii_digit() || b == b'_');
            let digits: String = t.chars().filter(|c| *c != '_').collect();
            match digits.parse::<i128>() {
                Ok(i) if ok => Ok(i),
                _ => Err(Error::syntax(format!("invalid literal for int() with base 10: {}", v.py_repr()))),
            }
        }
        other => match other.num() {
            Some(Num::Int(i)) => Ok(i),
            Some(Num::Float(f)) if f.is_finite() => Ok(f.trunc() as i128),
            Some(Num::Float(_)) => Err(Error::syntax("cannot convert float infinity or NaN to integer")),
            None => Err(Error::syntax(format!("int() is not supported for {} values", other.kind()))),
        },
    }
}

/// Python `float(x)`.
fn py_float(v: &Value) -> Result<f64> {
    match v {
        Value::Str(s) | Value::Fragment(s) => types::parse_float(s)
            .ok_or_else(|| Error::syntax(format!("could not convert string to float: {}", v.py_repr()))),
        other => match other.num() {
            Some(Num::Int(i)) => Ok(i as f64),
            Some(Num::Float(f)) => Ok(f),
            None => Err(Error::syntax(format!("float() is not supported for {} values", other.kind()))),
        },
    }
}

/// A value as JSON, for `custom_error` bodies.
pub(crate) fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::None => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => i64::try_from(*i).map(J::from).unwrap_or_else(|_| J::String(i.to_string())),
        Value::Float(f) | Value::TypedFloat(_, f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::TypedInt(_, t) => t.parse::<i64>().map(J::from).unwrap_or_else(|_| J::String(t.to_string())),
        Value::Str(s) | Value::Fragment(s) => J::String(s.to_string()),
        Value::List(items) | Value::Tuple(items) | Value::Set(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Dict(entries) => J::Object(
            entries.iter().map(|(k, v)| (k.as_str().map_or_else(|| k.py_str(), str::to_string), to_json(v))).collect(),
        ),
        Value::Function(name) => J::String(format!("<function {name}>")),
    }
}

/// Refuses to build a string longer than the rendered-SQL limit.
fn text_fits(r: &Renderer<'_>, len: usize) -> Result<()> {
    let max = r.t.limits.max_output_bytes;
    if len > max {
        return Err(Error::syntax(format!("rendered SQL is larger than {max} bytes")));
    }
    Ok(())
}

/// Calls method `name` on `recv`.
pub(crate) fn method(
    r: &mut Renderer<'_>,
    recv: &Value,
    name: &str,
    args: Vec<Value>,
    kwargs: Kwargs,
) -> Result<Value> {
    let unavailable = || Error::syntax(format!("'{name}' is not available on a {} value", recv.kind()));
    if let Value::Dict(entries) = recv {
        return match name {
            "get" => {
                let a = bind("get", &["key", "default"], 1, args, kwargs)?;
                let key = arg(&a[0]);
                Ok(entries.iter().find(|(k, _)| k.py_eq(&key)).map(|(_, v)| v.clone()).unwrap_or_else(|| arg(&a[1])))
            }
            "keys" => Ok(Value::List(Arc::new(entries.iter().map(|(k, _)| k.clone()).collect()))),
            "values" => Ok(Value::List(Arc::new(entries.iter().map(|(_, v)| v.clone()).collect()))),
            "items" => Ok(Value::List(Arc::new(
                entries.iter().map(|(k, v)| Value::Tuple(Arc::new(vec![k.clone(), v.clone()]))).collect(),
            ))),
            _ => Err(unavailable()),
        };
    }
    let Some(s) = recv.as_str() else {
        return Err(unavailable());
    };
    match name {
        "get" => Err(Error::syntax_doc(
            "'str' object has no attribute 'get'. Make sure you're using an object/dictionary where trying to use .get()",
            doc::TEMPLATES,
        )),
        "split" => {
            let a = bind("split", &["sep", "maxsplit"], 0, args, kwargs)?;
            let max = opt(&a[1]).and_then(Value::as_int).unwrap_or(-1);
            let parts: Vec<Value> = match opt(&a[0]) {
                None => {
                    let mut out: Vec<String> = Vec::new();
                    let mut rest = s.trim_start_matches(py_isspace);
                    while !rest.is_empty() {
                        if max >= 0 && out.len() as i128 >= max {
                            out.push(rest.trim_end_matches(py_isspace).to_string());
                            break;
                        }
                        let end = rest.find(py_isspace).unwrap_or(rest.len());
                        out.push(rest[..end].to_string());
                        rest = rest[end..].trim_start_matches(py_isspace);
                    }
                    out.into_iter().map(Value::from).collect()
                }
                Some(sep) => {
                    let sep = str_arg("split", sep)?;
                    if sep.is_empty() {
                        return Err(Error::syntax("empty separator"));
                    }
                    if max >= 0 {
                        s.splitn(max as usize + 1, sep).map(Value::from).collect()
                    } else {
                        s.split(sep).map(Value::from).collect()
                    }
                }
            };
            Ok(Value::List(Arc::new(parts)))
        }
        "join" => {
            let a = bind("join", &["iterable"], 1, args, kwargs)?;
            let items = iterate(&arg(&a[0]))?;
            let total = items.iter().map(|v| v.as_str().map_or(0, str::len) + s.len()).sum::<usize>();
            text_fits(r, total)?;
            let mut out = String::with_capacity(total);
            for (i, item) in items.iter().enumerate() {
                let Some(t) = item.as_str() else {
                    return Err(Error::syntax(format!("join() expects String items, found {}", item.kind())));
                };
                if i > 0 {
                    out.push_str(s);
                }
                out.push_str(t);
            }
            Ok(Value::from(out))
        }
        "replace" => {
            let a = bind("replace", &["old", "new", "count"], 2, args, kwargs)?;
            let old = str_arg("replace", a[0].as_ref().unwrap_or(&Value::None))?;
            let new = str_arg("replace", a[1].as_ref().unwrap_or(&Value::None))?;
            let count = opt(&a[2]).and_then(Value::as_int).unwrap_or(-1);
            let matches = if old.is_empty() { s.chars().count() + 1 } else { s.matches(old).count() };
            text_fits(r, s.len() + matches.saturating_mul(new.len()))?;
            Ok(Value::from(if count < 0 { s.replace(old, new) } else { s.replacen(old, new, count as usize) }))
        }
        "startswith" | "endswith" => {
            let a = bind(name, &["prefix"], 1, args, kwargs)?;
            let candidates = match arg(&a[0]) {
                Value::Tuple(items) => items.to_vec(),
                v => vec![v],
            };
            let mut hit = false;
            for c in &candidates {
                let p = str_arg(name, c)?;
                hit |= if name == "startswith" { s.starts_with(p) } else { s.ends_with(p) };
            }
            Ok(Value::Bool(hit))
        }
        "lower" => Ok(Value::from(s.to_lowercase())),
        "upper" => Ok(Value::from(s.to_uppercase())),
        "strip" | "lstrip" | "rstrip" => {
            let a = bind(name, &["chars"], 0, args, kwargs)?;
            let chars: Option<Vec<char>> = match opt(&a[0]) {
                Some(c) => Some(str_arg(name, c)?.chars().collect()),
                None => None,
            };
            let pred = |c: char| chars.as_ref().map_or(py_isspace(c), |cs| cs.contains(&c));
            Ok(Value::from(match name {
                "strip" => s.trim_matches(pred),
                "lstrip" => s.trim_start_matches(pred),
                _ => s.trim_end_matches(pred),
            }))
        }
        _ => Err(unavailable()),
    }
}
