//! The sandbox: which syntax trees may be evaluated at all. Checked once, when the template is
//! parsed, before any value is known.

use super::dump::{binop_name, dump};
use super::{BinOp, Const, Expr, UnaryOp};
use crate::names;

/// Where an expression appears; statement expressions allow a little more (spec §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    /// Inside `{{ }}`.
    Output,
    /// `if`/`elif`/`while` conditions, `for` iterables, `set` values.
    Statement,
}

/// The message for anything a statement expression may not contain (the reference's text for
/// an unknown function in a control block).
pub(crate) const STATEMENT_REJECTED: &str =
    "wrong syntax, you might be using a not valid function inside a control block";

pub(crate) fn is_function(name: &str, ctx: Context) -> bool {
    names::is_output_function(name) || (ctx == Context::Statement && names::STATEMENT_BUILTINS.contains(&name))
}

fn is_method(name: &str, ctx: Context) -> bool {
    names::OUTPUT_METHODS.contains(&name) || (ctx == Context::Statement && names::STATEMENT_METHODS.contains(&name))
}

/// Checks an expression; `Err` carries the message after `Template Syntax Error: `.
pub(crate) fn check(e: &Expr, ctx: Context) -> Result<(), String> {
    let result = check_node(e, ctx);
    match ctx {
        Context::Output => result,
        Context::Statement => result.map_err(|_| STATEMENT_REJECTED.to_string()),
    }
}

fn check_node(e: &Expr, ctx: Context) -> Result<(), String> {
    match e {
        Expr::Call { func, args, keywords, .. } => {
            match &**func {
                Expr::Name(id) => {
                    if !is_function(&id.name, ctx) {
                        return Err(format!("Invalid function name: {}", id.name));
                    }
                }
                Expr::Attribute { value, attr } => {
                    if !is_method(attr, ctx) {
                        return Err(format!("Invalid method name: {attr}"));
                    }
                    check_node(value, ctx)?;
                }
                _ => return Err(format!("Invalid function: {}", dump(e))),
            }
            for a in args {
                check_node(a, ctx)?;
            }
            // Aviary decision (§4.2): keyword values obey the same rules as positional ones.
            for k in keywords {
                if k.arg.is_none() {
                    return Err(format!("Invalid expression type: {}", dump(&k.value)));
                }
                check_node(&k.value, ctx)?;
            }
            Ok(())
        }
        Expr::Const(c) => match c {
            Const::None | Const::Bool(_) | Const::Int(_) | Const::BigInt(_) | Const::Float(_) | Const::Str(_) => Ok(()),
            _ => Err(format!("Invalid Constant: {}", dump(e))),
        },
        Expr::Name(_) => Ok(()),
        Expr::Unary { op, operand } => {
            if !matches!(op, UnaryOp::Neg | UnaryOp::Not) {
                let name = match op {
                    UnaryOp::Pos => "UAdd",
                    _ => "Invert",
                };
                return Err(format!("Invalid UnaryOp: {name}()"));
            }
            check_node(operand, ctx)
        }
        Expr::Bin { left, op, right } => {
            if !matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mult) {
                return Err(format!("Invalid BinOp: {}()", binop_name(*op)));
            }
            check_node(left, ctx)?;
            check_node(right, ctx)
        }
        Expr::Subscript { value, slice } => {
            check_node(value, ctx)?;
            match &**slice {
                Expr::Slice { lower, upper, step } => {
                    for part in [lower, upper, step].into_iter().flatten() {
                        check_node(part, ctx)?;
                    }
                    Ok(())
                }
                Expr::Const(_) | Expr::Subscript { .. } => check_node(slice, ctx),
                other if ctx == Context::Statement => check_node(other, ctx),
                other => Err(format!("Invalid Slice expression: {}", dump(other))),
            }
        }
        Expr::Dict { keys, values } => {
            for k in keys {
                match k {
                    Some(k) => check_node(k, ctx)?,
                    None => return Err("Invalid expression type: None".to_string()),
                }
            }
            values.iter().try_for_each(|v| check_node(v, ctx))
        }
        Expr::Tuple(items) | Expr::List(items) | Expr::Set(items) | Expr::JoinedStr(items) => {
            items.iter().try_for_each(|v| check_node(v, ctx))
        }
        Expr::Formatted { value, .. } => check_node(value, ctx),
        Expr::IfExp { test, body, orelse } => {
            check_node(test, ctx)?;
            check_node(body, ctx)?;
            check_node(orelse, ctx)
        }
        Expr::Compare { left, comparators, .. } if ctx == Context::Statement => {
            check_node(left, ctx)?;
            comparators.iter().try_for_each(|v| check_node(v, ctx))
        }
        Expr::Bool { values, .. } if ctx == Context::Statement => values.iter().try_for_each(|v| check_node(v, ctx)),
        other => Err(format!("Invalid expression type: {}", dump(other))),
    }
}
