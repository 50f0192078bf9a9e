//! Python's `ast.dump` text for a syntax tree (3.11 format), used in sandbox messages such as
//! `Invalid expression type: Compare(left=…, ops=[Gt()], comparators=[…])`.

use std::fmt::Write as _;

use super::{BinOp, BoolOp, CmpOp, CompKind, Const, Expr};
use crate::value::{write_float_repr, write_py_str_repr};

/// `ast.dump(expr)`.
pub(crate) fn dump(e: &Expr) -> String {
    let mut out = String::new();
    write(e, &mut out, "Load");
    out
}

pub(crate) fn binop_name(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "Add",
        BinOp::Sub => "Sub",
        BinOp::Mult => "Mult",
        BinOp::Div => "Div",
        BinOp::FloorDiv => "FloorDiv",
        BinOp::Mod => "Mod",
        BinOp::Pow => "Pow",
        BinOp::MatMult => "MatMult",
        BinOp::LShift => "LShift",
        BinOp::RShift => "RShift",
        BinOp::BitOr => "BitOr",
        BinOp::BitXor => "BitXor",
        BinOp::BitAnd => "BitAnd",
    }
}

fn cmp_name(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "Eq",
        CmpOp::NotEq => "NotEq",
        CmpOp::Lt => "Lt",
        CmpOp::LtE => "LtE",
        CmpOp::Gt => "Gt",
        CmpOp::GtE => "GtE",
        CmpOp::Is => "Is",
        CmpOp::IsNot => "IsNot",
        CmpOp::In => "In",
        CmpOp::NotIn => "NotIn",
    }
}

fn list(items: &[Expr], out: &mut String, ctx: &str) {
    out.push('[');
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write(e, out, ctx);
    }
    out.push(']');
}

fn write_const(c: &Const, out: &mut String) {
    out.push_str("Constant(value=");
    match c {
        Const::None => out.push_str("None"),
        Const::Bool(true) => out.push_str("True"),
        Const::Bool(false) => out.push_str("False"),
        Const::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Const::BigInt(s) => out.push_str(s),
        Const::Float(f) => write_float_repr(*f, out),
        Const::Str(s) => write_py_str_repr(s, out),
        Const::Bytes(b) => {
            out.push('b');
            write_py_str_repr(&String::from_utf8_lossy(b), out);
        }
        Const::Imag(f) => {
            let mut s = String::new();
            write_float_repr(*f, &mut s);
            out.push_str(s.strip_suffix(".0").unwrap_or(&s));
            out.push('j');
        }
        Const::Ellipsis => out.push_str("Ellipsis"),
    }
    out.push(')');
}

fn write(e: &Expr, out: &mut String, ctx: &str) {
    match e {
        Expr::Const(c) => write_const(c, out),
        Expr::Name(id) => {
            out.push_str("Name(id=");
            write_py_str_repr(&id.name, out);
            let _ = write!(out, ", ctx={ctx}())");
        }
        Expr::Call { func, args, keywords, .. } => {
            out.push_str("Call(func=");
            write(func, out, "Load");
            out.push_str(", args=");
            list(args, out, "Load");
            out.push_str(", keywords=[");
            for (i, k) in keywords.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str("keyword(");
                if let Some(arg) = &k.arg {
                    out.push_str("arg=");
                    write_py_str_repr(arg, out);
                    out.push_str(", ");
                }
                out.push_str("value=");
                write(&k.value, out, "Load");
                out.push(')');
            }
            out.push_str("])");
        }
        Expr::Attribute { value, attr } => {
            out.push_str("Attribute(value=");
            write(value, out, "Load");
            out.push_str(", attr=");
            write_py_str_repr(attr, out);
            let _ = write!(out, ", ctx={ctx}())");
        }
        Expr::Subscript { value, slice } => {
            out.push_str("Subscript(value=");
            write(value, out, "Load");
            out.push_str(", slice=");
            write(slice, out, "Load");
            let _ = write!(out, ", ctx={ctx}())");
        }
        Expr::Slice { lower, upper, step } => {
            out.push_str("Slice(");
            let mut first = true;
            for (name, part) in [("lower", lower), ("upper", upper), ("step", step)] {
                if let Some(p) = part {
                    if !first {
                        out.push_str(", ");
                    }
                    first = false;
                    let _ = write!(out, "{name}=");
                    write(p, out, "Load");
                }
            }
            out.push(')');
        }
        Expr::Unary { op, operand } => {
            let name = match op {
                super::UnaryOp::Neg => "USub",
                super::UnaryOp::Pos => "UAdd",
                super::UnaryOp::Not => "Not",
                super::UnaryOp::Invert => "Invert",
            };
            let _ = write!(out, "UnaryOp(op={name}(), operand=");
            write(operand, out, "Load");
            out.push(')');
        }
        Expr::Bin { left, op, right } => {
            out.push_str("BinOp(left=");
            write(left, out, "Load");
            let _ = write!(out, ", op={}(), right=", binop_name(*op));
            write(right, out, "Load");
            out.push(')');
        }
        Expr::Bool { op, values } => {
            let name = if *op == BoolOp::And { "And" } else { "Or" };
            let _ = write!(out, "BoolOp(op={name}(), values=");
            list(values, out, "Load");
            out.push(')');
        }
        Expr::Compare { left, ops, comparators } => {
            out.push_str("Compare(left=");
            write(left, out, "Load");
            out.push_str(", ops=[");
            for (i, op) in ops.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{}()", cmp_name(*op));
            }
            out.push_str("], comparators=");
            list(comparators, out, "Load");
            out.push(')');
        }
        Expr::IfExp { test, body, orelse } => {
            out.push_str("IfExp(test=");
            write(test, out, "Load");
            out.push_str(", body=");
            write(body, out, "Load");
            out.push_str(", orelse=");
            write(orelse, out, "Load");
            out.push(')');
        }
        Expr::List(items) => {
            out.push_str("List(elts=");
            list(items, out, ctx);
            let _ = write!(out, ", ctx={ctx}())");
        }
        Expr::Tuple(items) => {
            out.push_str("Tuple(elts=");
            list(items, out, ctx);
            let _ = write!(out, ", ctx={ctx}())");
        }
        Expr::Set(items) => {
            out.push_str("Set(elts=");
            list(items, out, "Load");
            out.push(')');
        }
        Expr::Dict { keys, values } => {
            out.push_str("Dict(keys=[");
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                match k {
                    Some(k) => write(k, out, "Load"),
                    None => out.push_str("None"),
                }
            }
            out.push_str("], values=");
            list(values, out, "Load");
            out.push(')');
        }
        Expr::JoinedStr(values) => {
            out.push_str("JoinedStr(values=");
            list(values, out, "Load");
            out.push(')');
        }
        Expr::Formatted { value, conversion, format_spec } => {
            out.push_str("FormattedValue(value=");
            write(value, out, "Load");
            let _ = write!(out, ", conversion={conversion}");
            if let Some(spec) = format_spec {
                out.push_str(", format_spec=");
                write(spec, out, "Load");
            }
            out.push(')');
        }
        Expr::Lambda { args, defaults, body } => {
            out.push_str("Lambda(args=arguments(posonlyargs=[], args=[");
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str("arg(arg=");
                write_py_str_repr(a, out);
                out.push(')');
            }
            out.push_str("], kwonlyargs=[], kw_defaults=[], defaults=");
            list(defaults, out, "Load");
            out.push_str("), body=");
            write(body, out, "Load");
            out.push(')');
        }
        Expr::Comp { kind, elt, value, generators } => {
            let name = match kind {
                CompKind::List => "ListComp",
                CompKind::Set => "SetComp",
                CompKind::Generator => "GeneratorExp",
                CompKind::Dict => "DictComp",
            };
            out.push_str(name);
            if *kind == CompKind::Dict {
                out.push_str("(key=");
                write(elt, out, "Load");
                out.push_str(", value=");
                if let Some(v) = value {
                    write(v, out, "Load");
                }
            } else {
                out.push_str("(elt=");
                write(elt, out, "Load");
            }
            out.push_str(", generators=[");
            for (i, g) in generators.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str("comprehension(target=");
                write(&g.target, out, "Store");
                out.push_str(", iter=");
                write(&g.iter, out, "Load");
                out.push_str(", ifs=");
                list(&g.ifs, out, "Load");
                out.push_str(", is_async=0)");
            }
            out.push_str("])");
        }
        Expr::Walrus { target, value } => {
            out.push_str("NamedExpr(target=");
            write(target, out, "Store");
            out.push_str(", value=");
            write(value, out, "Load");
            out.push(')');
        }
        Expr::Starred(v) => {
            out.push_str("Starred(value=");
            write(v, out, "Load");
            let _ = write!(out, ", ctx={ctx}())");
        }
        Expr::Await(v) => {
            out.push_str("Await(value=");
            write(v, out, "Load");
            out.push(')');
        }
        Expr::Yield(v) => {
            out.push_str("Yield(");
            if let Some(v) = v {
                out.push_str("value=");
                write(v, out, "Load");
            }
            out.push(')');
        }
        Expr::Assign { targets, value } => {
            out.push_str("Assign(targets=");
            list(targets, out, "Store");
            out.push_str(", value=");
            write(value, out, "Load");
            out.push(')');
        }
    }
}
