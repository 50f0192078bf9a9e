//! Runtime values with Python's semantics for the operations templates may use: `str()`,
//! `repr()`, truthiness, equality and ordering — plus the typed numbers that type functions
//! return (`Int32(x)` renders as `toInt32('5')` but does arithmetic like an `int`).

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::escape;

/// ClickHouse integer types the type functions produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum IntType {
    Int8,
    Int16,
    Int32,
    Int64,
    Int128,
    Int256,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    UInt128,
    UInt256,
}

impl IntType {
    /// Every integer type, in the order type functions are documented.
    pub const ALL: [IntType; 12] = [
        IntType::Int8,
        IntType::Int16,
        IntType::Int32,
        IntType::Int64,
        IntType::Int128,
        IntType::Int256,
        IntType::UInt8,
        IntType::UInt16,
        IntType::UInt32,
        IntType::UInt64,
        IntType::UInt128,
        IntType::UInt256,
    ];

    /// The ClickHouse type name.
    pub fn name(self) -> &'static str {
        match self {
            IntType::Int8 => "Int8",
            IntType::Int16 => "Int16",
            IntType::Int32 => "Int32",
            IntType::Int64 => "Int64",
            IntType::Int128 => "Int128",
            IntType::Int256 => "Int256",
            IntType::UInt8 => "UInt8",
            IntType::UInt16 => "UInt16",
            IntType::UInt32 => "UInt32",
            IntType::UInt64 => "UInt64",
            IntType::UInt128 => "UInt128",
            IntType::UInt256 => "UInt256",
        }
    }

    /// Looks a type up by its ClickHouse name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Bit width.
    pub fn bits(self) -> u32 {
        match self {
            IntType::Int8 | IntType::UInt8 => 8,
            IntType::Int16 | IntType::UInt16 => 16,
            IntType::Int32 | IntType::UInt32 => 32,
            IntType::Int64 | IntType::UInt64 => 64,
            IntType::Int128 | IntType::UInt128 => 128,
            IntType::Int256 | IntType::UInt256 => 256,
        }
    }

    /// Whether negative values are allowed.
    pub fn signed(self) -> bool {
        matches!(
            self,
            IntType::Int8 | IntType::Int16 | IntType::Int32 | IntType::Int64 | IntType::Int128 | IntType::Int256
        )
    }
}

/// ClickHouse float types the type functions produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum FloatType {
    Float32,
    Float64,
}

impl FloatType {
    /// The ClickHouse type name.
    pub fn name(self) -> &'static str {
        match self {
            FloatType::Float32 => "Float32",
            FloatType::Float64 => "Float64",
        }
    }
}

/// A template value.
///
/// Parameters arrive as [`Value::Str`] (query string, form) or as any JSON-shaped value (JSON
/// body, a JWT's `fixed_params`); type functions produce typed numbers and SQL fragments.
#[derive(Debug, Clone)]
pub enum Value {
    /// Python `None`: a missing parameter or JSON `null`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// A plain integer (rendered bare).
    Int(i128),
    /// A plain float (rendered with Python's `repr`).
    Float(f64),
    /// A string (rendered as an escaped single-quoted literal).
    Str(Arc<str>),
    /// A list.
    List(Arc<Vec<Value>>),
    /// A tuple.
    Tuple(Arc<Vec<Value>>),
    /// A set, in insertion order without duplicates.
    Set(Arc<Vec<Value>>),
    /// A dict, in insertion order.
    Dict(Arc<Vec<(Value, Value)>>),
    /// A validated integer of a ClickHouse type, kept as its normalised decimal text
    /// (it may not fit 128 bits).
    TypedInt(IntType, Arc<str>),
    /// A validated float of a ClickHouse type.
    TypedFloat(FloatType, f64),
    /// SQL inserted as is (identifiers, arrays, hints built by template functions).
    Fragment(Arc<str>),
    /// A whitelisted function named without being called.
    Function(&'static str),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(Arc::from(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(Arc::from(s))
    }
}

impl From<&serde_json::Value> for Value {
    fn from(j: &serde_json::Value) -> Self {
        use serde_json::Value as J;
        match j {
            J::Null => Value::None,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i128::from(i))
                } else if let Some(u) = n.as_u64() {
                    Value::Int(i128::from(u))
                } else {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            J::String(s) => Value::from(s.as_str()),
            J::Array(a) => Value::List(Arc::new(a.iter().map(Value::from).collect())),
            J::Object(o) => {
                Value::Dict(Arc::new(o.iter().map(|(k, v)| (Value::from(k.as_str()), Value::from(v))).collect()))
            }
        }
    }
}

/// A number as arithmetic sees it (Python's numeric tower without complex).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Num {
    Int(i128),
    Float(f64),
}

impl Value {
    /// The name used for this kind of value in Aviary's error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "Boolean",
            Value::Int(_) => "Int",
            Value::Float(_) => "Float",
            Value::Str(_) => "String",
            Value::List(_) => "Array",
            Value::Tuple(_) => "Tuple",
            Value::Set(_) => "Set",
            Value::Dict(_) => "Object",
            Value::TypedInt(t, _) => t.name(),
            Value::TypedFloat(t, _) => t.name(),
            Value::Fragment(_) => "SQL",
            Value::Function(_) => "Function",
        }
    }

    /// `true` for `None`.
    pub fn is_none(&self) -> bool {
        matches!(self, Value::None)
    }

    /// The text of a string-like value (strings and SQL fragments, which the reference models
    /// as `str` subclasses).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Fragment(s) => Some(s),
            _ => None,
        }
    }

    /// Python truthiness.
    pub fn truthy(&self) -> bool {
        match self {
            Value::None => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) | Value::Fragment(s) => !s.is_empty(),
            Value::List(v) | Value::Tuple(v) | Value::Set(v) => !v.is_empty(),
            Value::Dict(d) => !d.is_empty(),
            Value::TypedInt(_, t) => t.as_ref() != "0",
            Value::TypedFloat(_, f) => *f != 0.0,
            Value::Function(_) => true,
        }
    }

    /// The value as a number, when it is one (booleans count as integers, as in Python).
    pub(crate) fn num(&self) -> Option<Num> {
        match self {
            Value::Bool(b) => Some(Num::Int(i128::from(*b))),
            Value::Int(i) => Some(Num::Int(*i)),
            Value::Float(f) | Value::TypedFloat(_, f) => Some(Num::Float(*f)),
            Value::TypedInt(_, t) => Some(match t.parse::<i128>() {
                Ok(i) => Num::Int(i),
                Err(_) => Num::Float(t.parse::<f64>().unwrap_or(f64::NAN)),
            }),
            _ => None,
        }
    }

    /// The value as an exact integer, when it is one.
    pub(crate) fn as_int(&self) -> Option<i128> {
        match self.num()? {
            Num::Int(i) => Some(i),
            Num::Float(_) => None,
        }
    }

    /// Python `str(value)`.
    pub fn py_str(&self) -> String {
        let mut out = String::new();
        self.write_str(&mut out);
        out
    }

    /// Appends Python `str(value)` to `out`.
    pub(crate) fn write_str(&self, out: &mut String) {
        match self {
            Value::Str(s) | Value::Fragment(s) => out.push_str(s),
            Value::TypedInt(t, v) => {
                out.push_str("to");
                out.push_str(t.name());
                out.push_str("('");
                out.push_str(v);
                out.push_str("')");
            }
            Value::TypedFloat(t, f) => {
                out.push_str("to");
                out.push_str(t.name());
                out.push_str("('");
                write_float_repr(*f, out);
                out.push_str("')");
            }
            Value::Function(name) => {
                let _ = write!(out, "<function {name}>");
            }
            _ => self.write_repr(out, false),
        }
    }

    /// Python `repr(value)`.
    pub fn py_repr(&self) -> String {
        let mut out = String::new();
        self.write_repr(&mut out, false);
        out
    }

    /// Writes Python's `repr`; with `sql_strings`, string elements are written as escaped SQL
    /// string literals instead (Aviary's rendering of containers, spec §6).
    pub(crate) fn write_repr(&self, out: &mut String, sql_strings: bool) {
        match self {
            Value::None => out.push_str("None"),
            Value::Bool(true) => out.push_str("True"),
            Value::Bool(false) => out.push_str("False"),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) | Value::TypedFloat(_, f) => write_float_repr(*f, out),
            Value::TypedInt(_, v) => out.push_str(v),
            Value::Str(s) | Value::Fragment(s) => {
                if sql_strings {
                    escape::write_string_literal(s, out);
                } else {
                    write_py_str_repr(s, out);
                }
            }
            Value::List(items) => write_seq(out, "[", "]", items, sql_strings),
            Value::Tuple(items) => {
                if items.len() == 1 {
                    out.push('(');
                    items[0].write_repr(out, sql_strings);
                    out.push_str(",)");
                } else {
                    write_seq(out, "(", ")", items, sql_strings);
                }
            }
            Value::Set(items) => {
                if items.is_empty() {
                    out.push_str("set()");
                } else {
                    write_seq(out, "{", "}", items, sql_strings);
                }
            }
            Value::Dict(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if out.len() > MAX_TEXT {
                        out.push_str("...");
                        break;
                    }
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.write_repr(out, sql_strings);
                    out.push_str(": ");
                    v.write_repr(out, sql_strings);
                }
                out.push('}');
            }
            Value::Function(name) => {
                let _ = write!(out, "<function {name}>");
            }
        }
    }

    /// Python `==`.
    pub fn py_eq(&self, other: &Value) -> bool {
        if let (Some(a), Some(b)) = (self.num(), other.num()) {
            return num_cmp(a, b) == Some(Ordering::Equal);
        }
        match (self, other) {
            (Value::None, Value::None) => true,
            (Value::Function(a), Value::Function(b)) => a == b,
            (a, b) if a.as_str().is_some() && b.as_str().is_some() => a.as_str() == b.as_str(),
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.py_eq(y))
            }
            (Value::Set(a), Value::Set(b)) => a.len() == b.len() && a.iter().all(|x| b.iter().any(|y| x.py_eq(y))),
            (Value::Dict(a), Value::Dict(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| b.iter().any(|(k2, v2)| k.py_eq(k2) && v.py_eq(v2)))
            }
            _ => false,
        }
    }

    /// Python ordering (`<` and friends); `None` when Python would raise `TypeError`.
    pub fn py_cmp(&self, other: &Value) -> Option<Ordering> {
        if let (Some(a), Some(b)) = (self.num(), other.num()) {
            return num_cmp(a, b);
        }
        match (self, other) {
            (a, b) if a.as_str().is_some() && b.as_str().is_some() => Some(a.as_str().cmp(&b.as_str())),
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => {
                for (x, y) in a.iter().zip(b.iter()) {
                    if !x.py_eq(y) {
                        return x.py_cmp(y);
                    }
                }
                Some(a.len().cmp(&b.len()))
            }
            _ => None,
        }
    }

    /// Whether the value can be a set element or dict key.
    pub(crate) fn hashable(&self) -> bool {
        match self {
            Value::List(_) | Value::Set(_) | Value::Dict(_) => false,
            Value::Tuple(items) => items.iter().all(Value::hashable),
            _ => true,
        }
    }
}

/// Longest text `str()`/`repr()` of a container produces; past it the text ends with `...`
/// (a bound on nested containers whose text would be huge; any SQL that long is refused by the
/// output limit anyway).
pub(crate) const MAX_TEXT: usize = 16 << 20;

fn write_seq(out: &mut String, open: &str, close: &str, items: &[Value], sql_strings: bool) {
    out.push_str(open);
    for (i, item) in items.iter().enumerate() {
        if out.len() > MAX_TEXT {
            out.push_str("...");
            break;
        }
        if i > 0 {
            out.push_str(", ");
        }
        item.write_repr(out, sql_strings);
    }
    out.push_str(close);
}

pub(crate) fn num_cmp(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (Num::Int(x), Num::Float(y)) => (x as f64).partial_cmp(&y),
        (Num::Float(x), Num::Int(y)) => x.partial_cmp(&(y as f64)),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y),
    }
}

/// Python's `str.isspace()` for one character (Unicode whitespace plus the `\x1c`–`\x1f`
/// separators, which Python strips and Rust does not).
pub(crate) fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` with no argument.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// Python's `repr` of a string: single quotes unless the text has `'` and no `"`.
pub(crate) fn write_py_str_repr(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..=0xa0).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Python's `repr` of a float: the shortest text that round-trips, fixed notation for decimal
/// exponents in `-4..16`, otherwise scientific with a signed, at least two-digit exponent.
pub fn float_repr(f: f64) -> String {
    let mut out = String::new();
    write_float_repr(f, &mut out);
    out
}

pub(crate) fn write_float_repr(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str("nan");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "inf" } else { "-inf" });
        return;
    }
    // Rust's `{:e}` prints the shortest round-tripping digits: `d[.ddd]e[-]x`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if negative {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            for _ in 0..(-exp - 1) {
                out.push('0');
            }
            out.push_str(&digits);
        } else {
            let int_len = (exp + 1) as usize;
            if digits.len() <= int_len {
                out.push_str(&digits);
                for _ in digits.len()..int_len {
                    out.push('0');
                }
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        for (f, s) in [
            (1000.0, "1000.0"),
            (0.5, "0.5"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (16777216.0, "16777216.0"),
            (1e16, "1e+16"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (1e300, "1e+300"),
            (-0.0, "-0.0"),
            (-1.0, "-1.0"),
            (0.1, "0.1"),
            (123456789012345.6, "123456789012345.6"),
            (1.5e-7, "1.5e-07"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(float_repr(f), s, "{f}");
        }
    }

    #[test]
    fn python_reprs() {
        let v = Value::List(Arc::new(vec![Value::from("a'b"), Value::from("c"), Value::Int(1), Value::None]));
        assert_eq!(v.py_repr(), r#"["a'b", 'c', 1, None]"#);
        let t = Value::Tuple(Arc::new(vec![Value::Bool(false)]));
        assert_eq!(t.py_str(), "(False,)");
        assert_eq!(Value::TypedInt(IntType::Int32, Arc::from("5")).py_str(), "toInt32('5')");
        assert_eq!(Value::TypedInt(IntType::Int32, Arc::from("5")).py_repr(), "5");
    }
}
