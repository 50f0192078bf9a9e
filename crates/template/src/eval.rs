//! The renderer: walks the tag tree with a parameter map, evaluates expressions with Python's
//! semantics, and writes SQL. Bounded by [`Limits`](crate::Limits) at every loop and append.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

use crate::error::{Error, Result, doc};
use crate::expr::{BinOp, BoolOp, CallPlan, CmpOp, Const, Expr, Ident, Keyword, SetOp, Target, UnaryOp};
use crate::functions;
use crate::parser::{FastOutput, Node};
use crate::value::{Num, Value};
use crate::{QuerySettings, Template};

/// What a name holds during a render: nothing yet, the request's value (borrowed — a render
/// copies no parameter), or a value of its own (a local variable, a converted parameter).
#[derive(Debug)]
pub(crate) enum Slot<'a> {
    Unset,
    Param(&'a Value),
    Owned(Value),
}

impl Slot<'_> {
    pub(crate) fn get(&self) -> Option<&Value> {
        match self {
            Slot::Unset => None,
            Slot::Param(v) => Some(v),
            Slot::Owned(v) => Some(v),
        }
    }
}

/// Per name slot.
pub(crate) type Slots<'a> = Vec<Slot<'a>>;

/// Control flow out of a block.
enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct Renderer<'t> {
    pub t: &'t Template,
    /// Per name slot: the parameter value, or the local variable's current value.
    slots: Slots<'t>,
    pub out: String,
    iterations: u64,
    work: u64,
    pub settings: QuerySettings,
    pub secrets: &'t HashSet<String>,
    pub secret_params: Vec<String>,
    pub tables: Vec<String>,
}

impl<'t> Renderer<'t> {
    pub(crate) fn new(t: &'t Template, slots: Slots<'t>, secrets: &'t HashSet<String>) -> Self {
        Renderer {
            t,
            slots,
            out: String::with_capacity(t.output_estimate),
            iterations: 0,
            work: 0,
            settings: QuerySettings::default(),
            secrets,
            secret_params: Vec::new(),
            tables: Vec::new(),
        }
    }

    pub(crate) fn run(&mut self) -> Result<()> {
        let t = self.t;
        self.block(&t.nodes)?;
        Ok(())
    }

    fn push(&mut self, s: &str) -> Result<()> {
        if self.out.len() + s.len() > self.t.limits.max_output_bytes {
            return Err(Error::syntax(format!("rendered SQL is larger than {} bytes", self.t.limits.max_output_bytes)));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn tick(&mut self) -> Result<()> {
        self.iterations += 1;
        if self.iterations > self.t.limits.max_loop_iterations {
            return Err(Error::syntax(format!(
                "template loops exceeded {} iterations",
                self.t.limits.max_loop_iterations
            )));
        }
        Ok(())
    }

    /// Charges `units` bytes of work against the per-render budget.
    fn spend(&mut self, units: u64) -> Result<()> {
        self.work = self.work.saturating_add(units);
        if self.work > self.t.limits.max_work_bytes {
            return Err(Error::syntax(format!("template work exceeded {} bytes", self.t.limits.max_work_bytes)));
        }
        Ok(())
    }

    /// One loop iteration (counted against the limit); `true` when the body broke out.
    fn iteration(&mut self, body: &[Node]) -> Result<bool> {
        self.tick()?;
        Ok(matches!(self.block(body)?, Flow::Break))
    }

    fn block(&mut self, nodes: &[Node]) -> Result<Flow> {
        for node in nodes {
            match self.node(node)? {
                Flow::Normal => {}
                flow => return Ok(flow),
            }
        }
        Ok(Flow::Normal)
    }

    fn node(&mut self, node: &Node) -> Result<Flow> {
        match node {
            Node::Text(t) => self.push(t)?,
            Node::Output { fast: Some(fast), source, .. } => {
                self.fast_output(fast, source)?;
                self.push("")?;
            }
            Node::Output { expr, source, .. } => {
                let v = self.eval(expr)?;
                render_output(&v, source, &mut self.out)?;
                self.push("")?;
            }
            Node::If { branches, orelse } => {
                for (cond, body) in branches {
                    if self.eval(cond)?.truthy() {
                        return self.block(body);
                    }
                }
                if let Some(body) = orelse {
                    return self.block(body);
                }
            }
            Node::For { target, iter, source, body, orelse } => {
                let items = match self.eval(iter)? {
                    v @ Value::None => return Err(not_iterable(source, &v)),
                    v => iterate(&v).map_err(|_| not_iterable(source, &v))?,
                };
                self.spend(items.len() as u64 * 16)?;
                let mut broke = false;
                for item in items {
                    self.assign(target, item)?;
                    if self.iteration(body)? {
                        broke = true;
                        break;
                    }
                }
                if !broke && let Some(body) = orelse {
                    return self.block(body);
                }
            }
            Node::While { cond, body, orelse } => {
                let mut broke = false;
                while self.eval(cond)?.truthy() {
                    if self.iteration(body)? {
                        broke = true;
                        break;
                    }
                }
                if !broke && let Some(body) = orelse {
                    return self.block(body);
                }
            }
            Node::Try { body, except, orelse, finally } => {
                let result = match self.block(body) {
                    Ok(flow) => match (flow, orelse) {
                        (Flow::Normal, Some(else_body)) => self.block(else_body),
                        (flow, _) => Ok(flow),
                    },
                    Err(e) if e.catchable() && except.is_some() => self.block(except.as_deref().unwrap_or_default()),
                    Err(e) => Err(e),
                };
                if let Some(fin) = finally {
                    match self.block(fin)? {
                        Flow::Normal => {}
                        flow => return Ok(flow),
                    }
                }
                return result;
            }
            Node::Set { target, op, value } => {
                let v = self.eval(value)?;
                let v = match (op, target) {
                    (SetOp::Assign, _) => v,
                    (op, Target::Name(id)) => {
                        let cur = self.lookup(id)?;
                        let bop = if *op == SetOp::Add { BinOp::Add } else { BinOp::Sub };
                        self.binop(bop, &cur, &v)?
                    }
                    (_, Target::Tuple(_)) => return Err(Error::syntax("invalid syntax, line 1")),
                };
                self.assign(target, v)?;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn assign(&mut self, target: &Target, v: Value) -> Result<()> {
        match target {
            Target::Name(id) => {
                self.slots[id.slot] = Slot::Owned(v);
                Ok(())
            }
            Target::Tuple(targets) => {
                let items =
                    iterate(&v).map_err(|_| Error::syntax(format!("cannot unpack non-iterable {} value", v.kind())))?;
                if items.len() != targets.len() {
                    return Err(Error::syntax(format!(
                        "cannot unpack {} values into {} names",
                        items.len(),
                        targets.len()
                    )));
                }
                for (t, item) in targets.iter().zip(items) {
                    self.assign(t, item)?;
                }
                Ok(())
            }
        }
    }

    fn lookup(&self, id: &Ident) -> Result<Value> {
        let slot = id.slot;
        if self.t.slot_local[slot] {
            return self.slots[slot].get().cloned().ok_or_else(|| {
                Error::syntax(format!(
                    "cannot access local variable '{}' where it is not associated with a value",
                    id.name
                ))
            });
        }
        if self.t.slot_is_value_function[slot]
            && let Some(f) = self.t.slot_function[slot]
        {
            return Ok(Value::Function(f));
        }
        Ok(self.slots[slot].get().cloned().unwrap_or(Value::None))
    }

    pub(crate) fn eval(&mut self, e: &Expr) -> Result<Value> {
        let v = self.eval_inner(e)?;
        if matches!(
            e,
            Expr::Bin { .. }
                | Expr::Call { .. }
                | Expr::JoinedStr(_)
                | Expr::List(_)
                | Expr::Tuple(_)
                | Expr::Set(_)
                | Expr::Dict { .. }
        ) {
            self.spend(cost(&v))?;
        }
        Ok(v)
    }

    fn eval_inner(&mut self, e: &Expr) -> Result<Value> {
        match e {
            Expr::Const(c) => Ok(match c {
                Const::None => Value::None,
                Const::Bool(b) => Value::Bool(*b),
                Const::Int(i) => Value::Int(*i),
                Const::BigInt(_) => return Err(Error::syntax("integer literal is too large")),
                Const::Float(f) => Value::Float(*f),
                Const::Str(s) => Value::Str(s.clone()),
                Const::Bytes(_) | Const::Imag(_) | Const::Ellipsis => {
                    return Err(Error::syntax("unsupported constant"));
                }
            }),
            Expr::Name(id) => self.lookup(id),
            Expr::Call { plan: Some(plan), args, keywords, .. } => match plan.defined_slot {
                Some(slot) => Ok(Value::Bool(self.slots[slot].get().is_some_and(|v| !v.is_none()))),
                None => self.planned_call(plan, args, keywords),
            },
            Expr::Call { func, args, keywords, .. } => {
                let mut argv = Vec::with_capacity(args.len());
                for a in args {
                    if let Expr::Starred(inner) = a {
                        let v = self.eval(inner)?;
                        argv.extend(iterate(&v)?);
                    } else {
                        argv.push(self.eval(a)?);
                    }
                }
                let mut kwargs = Vec::with_capacity(keywords.len());
                for k in keywords {
                    let Some(name) = &k.arg else {
                        return Err(Error::syntax("**kwargs is not supported"));
                    };
                    kwargs.push((name.clone(), self.eval(&k.value)?));
                }
                match &**func {
                    Expr::Name(id) => match self.t.slot_function[id.slot] {
                        Some(name) if !self.t.slot_local[id.slot] => functions::call(self, name, argv, kwargs),
                        _ => Err(Error::syntax(STATEMENT_NOT_CALLABLE)),
                    },
                    Expr::Attribute { value, attr } => {
                        let recv = self.eval(value)?;
                        functions::method(self, &recv, attr, argv, kwargs)
                    }
                    _ => Err(Error::syntax(STATEMENT_NOT_CALLABLE)),
                }
            }
            Expr::Attribute { attr, .. } => Err(Error::syntax(format!("attribute access '.{attr}' is not supported"))),
            Expr::Subscript { value, slice } => {
                let v = self.eval(value)?;
                if let Expr::Slice { lower, upper, step } = &**slice {
                    let mut part = |p: &Option<Box<Expr>>| -> Result<Option<i128>> {
                        match p {
                            None => Ok(None),
                            Some(e) => match self.eval(e)? {
                                Value::None => Ok(None),
                                v => v.as_int().map(Some).ok_or_else(|| {
                                    Error::syntax(format!("slice indices must be integers, not {}", v.kind()))
                                }),
                            },
                        }
                    };
                    let (lo, hi, st) = (part(lower)?, part(upper)?, part(step)?);
                    return slice_value(&v, lo, hi, st);
                }
                let idx = self.eval(slice)?;
                subscript(&v, &idx)
            }
            Expr::Unary { op, operand } => {
                let v = self.eval(operand)?;
                match op {
                    UnaryOp::Not => Ok(Value::Bool(!v.truthy())),
                    UnaryOp::Neg => match v.num() {
                        Some(Num::Int(i)) => i.checked_neg().map(Value::Int).ok_or_else(overflow),
                        Some(Num::Float(f)) => Ok(Value::Float(-f)),
                        None => Err(Error::syntax(format!("unary - is not supported for {} values", v.kind()))),
                    },
                    UnaryOp::Pos | UnaryOp::Invert => Err(Error::syntax("unsupported unary operator")),
                }
            }
            Expr::Bin { left, op, right } => {
                let l = self.eval(left)?;
                let r = self.eval(right)?;
                self.binop(*op, &l, &r)
            }
            Expr::Bool { op, values } => {
                let mut last = Value::None;
                for v in values {
                    last = self.eval(v)?;
                    let t = last.truthy();
                    if (*op == BoolOp::And && !t) || (*op == BoolOp::Or && t) {
                        return Ok(last);
                    }
                }
                Ok(last)
            }
            Expr::Compare { left, ops, comparators } => {
                let mut l = self.eval(left)?;
                for (op, c) in ops.iter().zip(comparators) {
                    let r = self.eval(c)?;
                    if !compare(*op, &l, &r)? {
                        return Ok(Value::Bool(false));
                    }
                    l = r;
                }
                Ok(Value::Bool(true))
            }
            Expr::IfExp { test, body, orelse } => {
                if self.eval(test)?.truthy() {
                    self.eval(body)
                } else {
                    self.eval(orelse)
                }
            }
            Expr::List(items) => Ok(Value::List(Arc::new(self.eval_items(items)?))),
            Expr::Tuple(items) => Ok(Value::Tuple(Arc::new(self.eval_items(items)?))),
            Expr::Set(items) => {
                let vals = self.eval_items(items)?;
                make_set(vals)
            }
            Expr::Dict { keys, values } => {
                let mut entries: Vec<(Value, Value)> = Vec::with_capacity(keys.len());
                for (k, v) in keys.iter().zip(values) {
                    let Some(k) = k else {
                        return Err(Error::syntax("**mapping is not supported"));
                    };
                    let k = self.eval(k)?;
                    if !k.hashable() {
                        return Err(Error::syntax(STATEMENT_NOT_CALLABLE));
                    }
                    let v = self.eval(v)?;
                    match entries.iter_mut().find(|(ek, _)| ek.py_eq(&k)) {
                        Some(e) => e.1 = v,
                        None => entries.push((k, v)),
                    }
                }
                Ok(Value::Dict(Arc::new(entries)))
            }
            Expr::JoinedStr(parts) => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        Expr::Const(Const::Str(t)) => s.push_str(t),
                        Expr::Formatted { value, conversion, format_spec } => {
                            let v = self.eval(value)?;
                            if let Some(spec) = format_spec
                                && !matches!(&**spec, Expr::JoinedStr(p) if p.iter().all(|x| matches!(x, Expr::Const(Const::Str(t)) if t.is_empty())))
                            {
                                return Err(Error::syntax("format specifications are not supported in f-strings"));
                            }
                            match conversion {
                                114 | 97 => v.write_repr(&mut s, false),
                                _ => v.write_str(&mut s),
                            }
                        }
                        other => {
                            let v = self.eval(other)?;
                            v.write_str(&mut s);
                        }
                    }
                }
                Ok(Value::from(s))
            }
            Expr::Starred(_) => Err(Error::syntax("can't use starred expression here")),
            // Everything else is refused by the sandbox at parse time.
            _ => Err(Error::syntax(STATEMENT_NOT_CALLABLE)),
        }
    }

    /// `{{ Type(param, …) }}` without building intermediate values.
    fn fast_output(&mut self, fast: &FastOutput, source: &str) -> Result<()> {
        let value = match self.slots[fast.slot].get().filter(|v| !v.is_none()).or(fast.default.as_ref()) {
            Some(v) => v,
            None if fast.defined => return Err(Error::syntax_doc(self.t.required_message.clone(), doc::TEMPLATES)),
            None => return render_output(&Value::None, source, &mut self.out),
        };
        crate::types::write_converted(value, fast.ty, &mut self.out)
    }

    /// The common case: a whitelisted function whose arguments were bound when the template was
    /// built — no allocation, no name matching. Kept out of `eval` so its frame stays small.
    #[inline(never)]
    fn planned_call(&mut self, plan: &CallPlan, args: &[Expr], keywords: &[Keyword]) -> Result<Value> {
        let mut bound: [Option<Value>; 9] = Default::default();
        for (i, a) in args.iter().chain(keywords.iter().map(|k| &k.value)).enumerate() {
            let v = self.eval(a)?;
            if let Some(slot) = plan.slots.get(i) {
                bound[usize::from(*slot)] = Some(v);
            }
        }
        if let Some(e) = &plan.error {
            return Err(e.clone());
        }
        functions::call_planned(self, plan.function, plan.scalar, &mut bound[..plan.arity])
    }

    fn eval_items(&mut self, items: &[Expr]) -> Result<Vec<Value>> {
        let mut out = Vec::with_capacity(items.len());
        for i in items {
            if let Expr::Starred(inner) = i {
                let v = self.eval(inner)?;
                out.extend(iterate(&v)?);
            } else {
                out.push(self.eval(i)?);
            }
        }
        Ok(out)
    }

    pub(crate) fn binop(&self, op: BinOp, l: &Value, r: &Value) -> Result<Value> {
        let sym = match op {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mult => "*",
            _ => "?",
        };
        let unsupported =
            || Error::syntax(format!("unsupported operand types for {sym}: {} and {}", l.kind(), r.kind()));
        if let (Some(a), Some(b)) = (l.num(), r.num()) {
            return Ok(match (a, b) {
                (Num::Int(x), Num::Int(y)) => Value::Int(
                    match op {
                        BinOp::Add => x.checked_add(y),
                        BinOp::Sub => x.checked_sub(y),
                        BinOp::Mult => x.checked_mul(y),
                        _ => return Err(unsupported()),
                    }
                    .ok_or_else(overflow)?,
                ),
                (a, b) => {
                    let (x, y) = (to_f64(a), to_f64(b));
                    Value::Float(match op {
                        BinOp::Add => x + y,
                        BinOp::Sub => x - y,
                        BinOp::Mult => x * y,
                        _ => return Err(unsupported()),
                    })
                }
            });
        }
        match (op, l, r) {
            (BinOp::Add, a, b) if a.as_str().is_some() && b.as_str().is_some() => {
                let (a, b) = (a.as_str().unwrap_or_default(), b.as_str().unwrap_or_default());
                let mut s = String::with_capacity(a.len() + b.len());
                s.push_str(a);
                s.push_str(b);
                if s.len() > self.t.limits.max_output_bytes {
                    return Err(Error::syntax(format!(
                        "rendered SQL is larger than {} bytes",
                        self.t.limits.max_output_bytes
                    )));
                }
                Ok(Value::from(s))
            }
            (BinOp::Add, Value::List(a), Value::List(b)) => {
                Ok(Value::List(Arc::new(a.iter().chain(b.iter()).cloned().collect())))
            }
            (BinOp::Add, Value::Tuple(a), Value::Tuple(b)) => {
                Ok(Value::Tuple(Arc::new(a.iter().chain(b.iter()).cloned().collect())))
            }
            (BinOp::Mult, seq, n) | (BinOp::Mult, n, seq)
                if n.as_int().is_some() && !matches!(n, Value::Float(_) | Value::TypedFloat(..)) =>
            {
                let count = n.as_int().unwrap_or(0).max(0) as u128;
                let limit = self.t.limits.max_repeat_bytes as u128;
                match seq {
                    s if s.as_str().is_some() => {
                        let s = s.as_str().unwrap_or_default();
                        if s.len() as u128 * count > limit {
                            return Err(Error::syntax(format!(
                                "string repetition result is larger than {limit} bytes"
                            )));
                        }
                        Ok(Value::from(s.repeat(count as usize)))
                    }
                    Value::List(items) | Value::Tuple(items) => {
                        let max = self.t.limits.max_range as u128;
                        if items.len() as u128 * count > max {
                            return Err(Error::syntax(format!("list repetition result is larger than {max} elements")));
                        }
                        let mut out = Vec::with_capacity(items.len() * count as usize);
                        for _ in 0..count {
                            out.extend(items.iter().cloned());
                        }
                        Ok(if matches!(seq, Value::List(_)) {
                            Value::List(Arc::new(out))
                        } else {
                            Value::Tuple(Arc::new(out))
                        })
                    }
                    _ => Err(unsupported()),
                }
            }
            _ => Err(unsupported()),
        }
    }
}

/// The reference's message when a control block calls something that is not a function.
pub(crate) const STATEMENT_NOT_CALLABLE: &str =
    "wrong syntax, you might be using a not valid function inside a control block";

/// What building a value cost: its bytes, or 16 per element (shallow).
fn cost(v: &Value) -> u64 {
    match v {
        Value::Str(s) | Value::Fragment(s) => s.len() as u64,
        Value::List(items) | Value::Tuple(items) | Value::Set(items) => items.len() as u64 * 16,
        Value::Dict(entries) => entries.len() as u64 * 32,
        _ => 0,
    }
}

fn overflow() -> Error {
    Error::syntax("integer overflow")
}

fn to_f64(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    }
}

fn not_iterable(source: &str, _v: &Value) -> Error {
    Error::syntax(format!("'{source}' is not iterable"))
}

/// Writes a `{{ }}` result: strings quoted and escaped, fragments as is, containers with SQL
/// string literals for their string elements (spec §6).
pub(crate) fn render_output(v: &Value, source: &str, out: &mut String) -> Result<()> {
    match v {
        Value::None => {
            let shown: String = if source.chars().count() > 20 {
                let mut s: String = source.chars().take(20).collect();
                s.push_str("...");
                s
            } else {
                source.to_string()
            };
            Err(Error::syntax_doc(format!("expression \"{shown}\" evaluated to null"), doc::TEMPLATES))
        }
        Value::Str(s) => {
            crate::escape::write_string_literal(s, out);
            Ok(())
        }
        Value::Fragment(s) => {
            out.push_str(s);
            Ok(())
        }
        Value::List(_) | Value::Tuple(_) | Value::Set(_) | Value::Dict(_) => {
            v.write_repr(out, true);
            Ok(())
        }
        Value::Function(name) => Err(Error::syntax(format!("'{name}' is a function; call it"))),
        other => {
            other.write_str(out);
            Ok(())
        }
    }
}

/// The items a Python `for` would see.
pub(crate) fn iterate(v: &Value) -> Result<Vec<Value>> {
    match v {
        Value::List(items) | Value::Tuple(items) | Value::Set(items) => Ok(items.to_vec()),
        Value::Dict(entries) => Ok(entries.iter().map(|(k, _)| k.clone()).collect()),
        Value::Str(s) | Value::Fragment(s) => Ok(s.chars().map(|c| Value::from(c.to_string())).collect()),
        other => Err(Error::syntax(format!("{} values are not iterable", other.kind()))),
    }
}

pub(crate) fn make_set(vals: Vec<Value>) -> Result<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(vals.len());
    for v in vals {
        if !v.hashable() {
            return Err(Error::syntax(STATEMENT_NOT_CALLABLE));
        }
        if !out.iter().any(|x| x.py_eq(&v)) {
            out.push(v);
        }
    }
    Ok(Value::Set(Arc::new(out)))
}

fn compare(op: CmpOp, l: &Value, r: &Value) -> Result<bool> {
    let ordering = |want: fn(Ordering) -> bool, sym: &str| -> Result<bool> {
        match l.py_cmp(r) {
            Some(o) => Ok(want(o)),
            None if l.num().is_some() && r.num().is_some() => Ok(false), // NaN
            None => Err(Error::syntax(format!("'{sym}' is not supported for {} and {} values", l.kind(), r.kind()))),
        }
    };
    match op {
        CmpOp::Eq => Ok(l.py_eq(r)),
        CmpOp::NotEq => Ok(!l.py_eq(r)),
        CmpOp::Lt => ordering(|o| o == Ordering::Less, "<"),
        CmpOp::LtE => ordering(|o| o != Ordering::Greater, "<="),
        CmpOp::Gt => ordering(|o| o == Ordering::Greater, ">"),
        CmpOp::GtE => ordering(|o| o != Ordering::Less, ">="),
        CmpOp::Is => Ok(identical(l, r)),
        CmpOp::IsNot => Ok(!identical(l, r)),
        CmpOp::In => contains(r, l),
        CmpOp::NotIn => contains(r, l).map(|b| !b),
    }
}

fn identical(l: &Value, r: &Value) -> bool {
    match (l, r) {
        (Value::None, Value::None) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Int(a), Value::Int(b)) => a == b && (-5..=256).contains(a),
        _ => false,
    }
}

fn contains(container: &Value, item: &Value) -> Result<bool> {
    match container {
        Value::List(items) | Value::Tuple(items) | Value::Set(items) => Ok(items.iter().any(|x| x.py_eq(item))),
        Value::Dict(entries) => Ok(entries.iter().any(|(k, _)| k.py_eq(item))),
        c if c.as_str().is_some() => match item.as_str() {
            Some(needle) => Ok(c.as_str().unwrap_or_default().contains(needle)),
            None => Err(Error::syntax(format!("'in' is not supported for {} and String values", item.kind()))),
        },
        other => Err(Error::syntax(format!("'in' is not supported for {} values", other.kind()))),
    }
}

fn norm_index(i: i128, len: usize) -> Option<usize> {
    let len = len as i128;
    let i = if i < 0 { i + len } else { i };
    (0..len).contains(&i).then_some(i as usize)
}

pub(crate) fn subscript(v: &Value, idx: &Value) -> Result<Value> {
    match v {
        Value::Dict(entries) => entries
            .iter()
            .find(|(k, _)| k.py_eq(idx))
            .map(|(_, v)| v.clone())
            .ok_or_else(|| Error::syntax(format!("key {} not found", idx.py_repr()))),
        Value::List(items) | Value::Tuple(items) => {
            let Some(i) = idx.as_int().filter(|_| !matches!(idx, Value::Float(_) | Value::TypedFloat(..))) else {
                return Err(Error::syntax(format!("indices must be integers, not {}", idx.kind())));
            };
            norm_index(i, items.len()).map(|i| items[i].clone()).ok_or_else(|| {
                Error::syntax_doc(
                    if matches!(v, Value::List(_)) { "list index out of range" } else { "tuple index out of range" },
                    doc::TEMPLATES,
                )
            })
        }
        s if s.as_str().is_some() => {
            let Some(i) = idx.as_int().filter(|_| !matches!(idx, Value::Float(_) | Value::TypedFloat(..))) else {
                return Err(Error::syntax(format!("string indices must be integers, not {}", idx.kind())));
            };
            let s = s.as_str().unwrap_or_default();
            let count = s.chars().count();
            norm_index(i, count)
                .and_then(|i| s.chars().nth(i))
                .map(|c| Value::from(c.to_string()))
                .ok_or_else(|| Error::syntax_doc(
                    "String index out of range. Check that string parameters have values before accessing specific characters (e.g., param[0]). Provide default values or add length checks in your template.",
                    doc::TEMPLATES,
                ))
        }
        other => Err(Error::syntax(format!("subscript is not supported for {} values", other.kind()))),
    }
}

fn slice_indices(len: usize, lo: Option<i128>, hi: Option<i128>, step: i128) -> Vec<usize> {
    let len = len as i128;
    let clamp = |x: i128, lower: i128, upper: i128| -> i128 {
        let x = if x < 0 { x + len } else { x };
        x.clamp(lower, upper)
    };
    let mut out = Vec::new();
    if step > 0 {
        let start = lo.map_or(0, |x| clamp(x, 0, len));
        let stop = hi.map_or(len, |x| clamp(x, 0, len));
        let mut i = start;
        while i < stop {
            out.push(i as usize);
            i += step;
        }
    } else {
        let start = lo.map_or(len - 1, |x| clamp(x, -1, len - 1));
        let stop = hi.map_or(-1, |x| clamp(x, -1, len - 1));
        let mut i = start;
        while i > stop {
            out.push(i as usize);
            i += step;
        }
    }
    out
}

fn slice_value(v: &Value, lo: Option<i128>, hi: Option<i128>, step: Option<i128>) -> Result<Value> {
    let step = step.unwrap_or(1);
    if step == 0 {
        return Err(Error::syntax("slice step cannot be zero"));
    }
    match v {
        Value::List(items) | Value::Tuple(items) => {
            let picked: Vec<Value> =
                slice_indices(items.len(), lo, hi, step).into_iter().map(|i| items[i].clone()).collect();
            Ok(if matches!(v, Value::List(_)) { Value::List(Arc::new(picked)) } else { Value::Tuple(Arc::new(picked)) })
        }
        s if s.as_str().is_some() => {
            let chars: Vec<char> = s.as_str().unwrap_or_default().chars().collect();
            let picked: String = slice_indices(chars.len(), lo, hi, step).into_iter().map(|i| chars[i]).collect();
            Ok(Value::from(picked))
        }
        other => Err(Error::syntax(format!("subscript is not supported for {} values", other.kind()))),
    }
}
