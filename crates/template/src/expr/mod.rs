//! Python-syntax expressions as they appear inside `{{ }}` and `{% %}` tags: the syntax tree,
//! the parser, the sandbox that decides which trees may run, and Python `ast.dump` text for the
//! sandbox's messages.

mod check;
mod dump;
mod lex;
mod parse;

use std::sync::Arc;

pub(crate) use check::{Context, check};
pub(crate) use parse::{Fail as ParseFail, parse_condition, parse_expression, parse_for, parse_set};

/// A name in an expression, with the slot the template assigned to it.
#[derive(Debug, Clone)]
pub(crate) struct Ident {
    pub name: Arc<str>,
    pub slot: usize,
}

/// A constant literal.
#[derive(Debug, Clone)]
pub(crate) enum Const {
    None,
    Bool(bool),
    Int(i128),
    /// An integer literal too large for 128 bits (kept for messages; arithmetic refuses it).
    BigInt(String),
    Float(f64),
    Str(Arc<str>),
    Bytes(Vec<u8>),
    Imag(f64),
    Ellipsis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnaryOp {
    Neg,
    Pos,
    Not,
    Invert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mult,
    Div,
    FloorDiv,
    Mod,
    Pow,
    MatMult,
    LShift,
    RShift,
    BitOr,
    BitXor,
    BitAnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BoolOp {
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtE,
    Gt,
    GtE,
    Is,
    IsNot,
    In,
    NotIn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompKind {
    List,
    Set,
    Generator,
    Dict,
}

#[derive(Debug, Clone)]
pub(crate) struct Comprehension {
    pub target: Box<Expr>,
    pub iter: Expr,
    pub ifs: Vec<Expr>,
}

#[derive(Debug, Clone)]
pub(crate) struct Keyword {
    /// `None` for `**mapping`.
    pub arg: Option<Arc<str>>,
    pub value: Expr,
}

/// A Python expression (the node kinds of Python's `ast` that the parser recognises).
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Const(Const),
    Name(Ident),
    Call {
        func: Box<Expr>,
        args: Vec<Expr>,
        keywords: Vec<Keyword>,
        /// Set when the template is built, for calls of fixed-signature functions.
        plan: Option<Box<CallPlan>>,
    },
    Attribute {
        value: Box<Expr>,
        attr: Arc<str>,
    },
    Subscript {
        value: Box<Expr>,
        slice: Box<Expr>,
    },
    Slice {
        lower: Option<Box<Expr>>,
        upper: Option<Box<Expr>>,
        step: Option<Box<Expr>>,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Bin {
        left: Box<Expr>,
        op: BinOp,
        right: Box<Expr>,
    },
    Bool {
        op: BoolOp,
        values: Vec<Expr>,
    },
    Compare {
        left: Box<Expr>,
        ops: Vec<CmpOp>,
        comparators: Vec<Expr>,
    },
    IfExp {
        test: Box<Expr>,
        body: Box<Expr>,
        orelse: Box<Expr>,
    },
    List(Vec<Expr>),
    Tuple(Vec<Expr>),
    Set(Vec<Expr>),
    Dict {
        keys: Vec<Option<Expr>>,
        values: Vec<Expr>,
    },
    JoinedStr(Vec<Expr>),
    Formatted {
        value: Box<Expr>,
        conversion: i32,
        format_spec: Option<Box<Expr>>,
    },
    Lambda {
        args: Vec<Arc<str>>,
        defaults: Vec<Expr>,
        body: Box<Expr>,
    },
    Comp {
        kind: CompKind,
        elt: Box<Expr>,
        value: Option<Box<Expr>>,
        generators: Vec<Comprehension>,
    },
    Walrus {
        target: Box<Expr>,
        value: Box<Expr>,
    },
    Starred(Box<Expr>),
    Await(Box<Expr>),
    Yield(Option<Box<Expr>>),
    /// A top-level assignment statement `a = b` inside `{{ }}` (only ever rejected).
    Assign {
        targets: Vec<Expr>,
        value: Box<Expr>,
    },
}

impl Expr {
    /// Visits every sub-expression in source order, depth first, the node itself first.
    pub(crate) fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        f(self);
        self.for_each_child(&mut |c| c.walk(f));
    }

    /// Calls `f` on each direct child, in source order.
    pub(crate) fn for_each_child<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        match self {
            Expr::Const(_) | Expr::Name(_) | Expr::Yield(None) => {}
            Expr::Call { func, args, keywords, .. } => {
                f(func);
                args.iter().for_each(&mut *f);
                keywords.iter().for_each(|k| f(&k.value));
            }
            Expr::Attribute { value, .. } => f(value),
            Expr::Subscript { value, slice } => {
                f(value);
                f(slice);
            }
            Expr::Slice { lower, upper, step } => {
                [lower, upper, step].into_iter().flatten().for_each(|e| f(e));
            }
            Expr::Unary { operand, .. } => f(operand),
            Expr::Bin { left, right, .. } => {
                f(left);
                f(right);
            }
            Expr::Bool { values, .. } => values.iter().for_each(f),
            Expr::Compare { left, comparators, .. } => {
                f(left);
                comparators.iter().for_each(f);
            }
            Expr::IfExp { test, body, orelse } => {
                f(body);
                f(test);
                f(orelse);
            }
            Expr::List(v) | Expr::Tuple(v) | Expr::Set(v) | Expr::JoinedStr(v) => v.iter().for_each(f),
            Expr::Dict { keys, values } => {
                for (k, v) in keys.iter().zip(values) {
                    if let Some(k) = k {
                        f(k);
                    }
                    f(v);
                }
            }
            Expr::Formatted { value, format_spec, .. } => {
                f(value);
                if let Some(s) = format_spec {
                    f(s);
                }
            }
            Expr::Lambda { defaults, body, .. } => {
                defaults.iter().for_each(&mut *f);
                f(body);
            }
            Expr::Comp { elt, value, generators, .. } => {
                f(elt);
                if let Some(v) = value {
                    f(v);
                }
                for g in generators {
                    f(&g.target);
                    f(&g.iter);
                    g.ifs.iter().for_each(&mut *f);
                }
            }
            Expr::Walrus { target, value } => {
                f(target);
                f(value);
            }
            Expr::Starred(v) | Expr::Await(v) | Expr::Yield(Some(v)) => f(v),
            Expr::Assign { targets, value } => {
                targets.iter().for_each(&mut *f);
                f(value);
            }
        }
    }

    /// Mutable visit of every name (for slot assignment).
    pub(crate) fn for_each_ident_mut(&mut self, f: &mut dyn FnMut(&mut Ident)) {
        self.walk_mut(&mut |e| {
            if let Expr::Name(id) = e {
                f(id);
            }
        });
    }

    /// Mutable visit of every sub-expression, children before the node itself.
    pub(crate) fn walk_mut(&mut self, f: &mut dyn FnMut(&mut Expr)) {
        match self {
            Expr::Const(_) | Expr::Name(_) | Expr::Yield(None) => {}
            Expr::Call { func, args, keywords, .. } => {
                func.walk_mut(f);
                args.iter_mut().for_each(|a| a.walk_mut(f));
                keywords.iter_mut().for_each(|k| k.value.walk_mut(f));
            }
            Expr::Attribute { value, .. }
            | Expr::Unary { operand: value, .. }
            | Expr::Starred(value)
            | Expr::Await(value)
            | Expr::Yield(Some(value)) => value.walk_mut(f),
            Expr::Subscript { value, slice } => {
                value.walk_mut(f);
                slice.walk_mut(f);
            }
            Expr::Slice { lower, upper, step } => {
                for e in [lower, upper, step].into_iter().flatten() {
                    e.walk_mut(f);
                }
            }
            Expr::Bin { left, right, .. } => {
                left.walk_mut(f);
                right.walk_mut(f);
            }
            Expr::Bool { values: v, .. } | Expr::List(v) | Expr::Tuple(v) | Expr::Set(v) | Expr::JoinedStr(v) => {
                v.iter_mut().for_each(|e| e.walk_mut(f))
            }
            Expr::Compare { left, comparators, .. } => {
                left.walk_mut(f);
                comparators.iter_mut().for_each(|e| e.walk_mut(f));
            }
            Expr::IfExp { test, body, orelse } => {
                body.walk_mut(f);
                test.walk_mut(f);
                orelse.walk_mut(f);
            }
            Expr::Dict { keys, values } => {
                keys.iter_mut().flatten().for_each(|e| e.walk_mut(f));
                values.iter_mut().for_each(|e| e.walk_mut(f));
            }
            Expr::Formatted { value, format_spec, .. } => {
                value.walk_mut(f);
                if let Some(s) = format_spec {
                    s.walk_mut(f);
                }
            }
            Expr::Lambda { defaults, body, .. } => {
                defaults.iter_mut().for_each(|e| e.walk_mut(f));
                body.walk_mut(f);
            }
            Expr::Comp { elt, value, generators, .. } => {
                elt.walk_mut(f);
                if let Some(v) = value {
                    v.walk_mut(f);
                }
                for g in generators {
                    g.target.walk_mut(f);
                    g.iter.walk_mut(f);
                    g.ifs.iter_mut().for_each(|e| e.walk_mut(f));
                }
            }
            Expr::Walrus { target, value } => {
                target.walk_mut(f);
                value.walk_mut(f);
            }
            Expr::Assign { targets, value } => {
                targets.iter_mut().for_each(|e| e.walk_mut(f));
                value.walk_mut(f);
            }
        }
        f(self);
    }
}

/// A call's arguments bound to the callee's parameters once, when the template is built:
/// argument `i` (positional ones, then keywords, in source order) goes to parameter
/// `slots[i]`. A binding Python would refuse is kept as `error`, raised only if the call runs.
#[derive(Debug, Clone)]
pub(crate) struct CallPlan {
    pub function: &'static str,
    /// For type functions, the type (saves matching the name on every call).
    pub scalar: Option<crate::types::ScalarType>,
    pub arity: usize,
    pub slots: Box<[u8]>,
    /// For `defined(param)`: the parameter's slot, answered without evaluating anything.
    pub defined_slot: Option<usize>,
    pub error: Option<crate::Error>,
}

/// The left side of `{% set %}` or the target of `{% for %}`: a name or a tuple of targets.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Name(Ident),
    Tuple(Vec<Target>),
}

impl Target {
    pub(crate) fn for_each_ident_mut(&mut self, f: &mut dyn FnMut(&mut Ident)) {
        match self {
            Target::Name(id) => f(id),
            Target::Tuple(items) => items.iter_mut().for_each(|t| t.for_each_ident_mut(f)),
        }
    }

    pub(crate) fn for_each_ident<'a>(&'a self, f: &mut dyn FnMut(&'a Ident)) {
        match self {
            Target::Name(id) => f(id),
            Target::Tuple(items) => items.iter().for_each(|t| t.for_each_ident(f)),
        }
    }
}

/// The assignment operator of `{% set %}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetOp {
    Assign,
    Add,
    Sub,
}
