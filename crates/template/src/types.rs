//! Type functions (`String`, `Int32`, `DateTime`, `Array`, …): the validation each applies to
//! `str(value)` and the SQL each produces (spec §8).

use std::sync::Arc;

use crate::error::{Error, Result, doc};
use crate::value::{FloatType, IntType, Value, float_repr};

/// The scalar type a type function validates against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarType {
    String,
    Int(IntType),
    /// `Int` / `Integer`: validated as Int32, rendered bare.
    PlainInt,
    Float(FloatType),
    Date,
    DateTime,
    DateTime64,
    Boolean,
    Symbol,
}

impl ScalarType {
    /// The type named by a function (`Int32`) or an `Array` element type (`'Int32'`).
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "String" => ScalarType::String,
            "Int" | "Integer" => ScalarType::PlainInt,
            "Float32" => ScalarType::Float(FloatType::Float32),
            "Float64" => ScalarType::Float(FloatType::Float64),
            "Date" => ScalarType::Date,
            "DateTime" => ScalarType::DateTime,
            "DateTime64" => ScalarType::DateTime64,
            "Boolean" | "bool" => ScalarType::Boolean,
            "Symbol" | "Column" => ScalarType::Symbol,
            other => ScalarType::Int(IntType::from_name(other)?),
        })
    }

    /// The name used in validation messages.
    pub(crate) fn tester_name(self) -> &'static str {
        match self {
            ScalarType::String => "String",
            ScalarType::Int(t) => t.name(),
            ScalarType::PlainInt => "Int32",
            ScalarType::Float(t) => t.name(),
            ScalarType::Date => "Date",
            ScalarType::DateTime => "DateTime",
            ScalarType::DateTime64 => "DateTime64",
            ScalarType::Boolean => "Boolean",
            ScalarType::Symbol => "Symbol",
        }
    }
}

/// Decimal bounds: (2^(n-1), 2^n) for the wide types, as text.
fn pow2(bits: u32) -> &'static str {
    match bits {
        127 => "170141183460469231731687303715884105728",
        128 => "340282366920938463463374607431768211456",
        255 => "57896044618658097711785492504343953926634992332820282019728792003956564819968",
        _ => "115792089237316195423570985008687907853269984665640564039457584007913129639936",
    }
}

/// Compares two non-negative decimal digit strings without leading zeros.
fn cmp_digits(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Validates an integer literal for `ty`; returns its normalised decimal text.
/// ASCII digits only, no trailing newline (Aviary decision, spec §8.2).
pub(crate) fn parse_int(s: &str, ty: IntType) -> Option<String> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'+' | b'-' if !ty.signed() && ty.bits() <= 64 => return None,
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let trimmed = digits.trim_start_matches('0');
    let mag = if trimmed.is_empty() { "0" } else { trimmed };
    let is_zero = mag == "0";
    if ty.signed() {
        let bits = ty.bits();
        if bits <= 128 {
            let v: i128 = if neg { format!("-{mag}").parse().ok()? } else { mag.parse().ok()? };
            let (lo, hi) =
                if bits == 128 { (i128::MIN, i128::MAX) } else { (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1) };
            if v < lo || v > hi {
                return None;
            }
            return Some(v.to_string());
        }
        let bound = pow2(bits - 1);
        let ord = cmp_digits(mag, bound);
        let ok = if neg { ord != std::cmp::Ordering::Greater } else { ord == std::cmp::Ordering::Less };
        if !ok {
            return None;
        }
        Some(if neg && !is_zero { format!("-{mag}") } else { mag.to_string() })
    } else {
        if neg && !is_zero {
            return None;
        }
        let bits = ty.bits();
        if bits <= 64 {
            let v: u128 = mag.parse().ok()?;
            if v >= (1u128 << bits) {
                return None;
            }
            return Some(v.to_string());
        }
        if cmp_digits(mag, pow2(bits)) != std::cmp::Ordering::Less {
            return None;
        }
        Some(mag.to_string())
    }
}

/// Python's `float()` on a string, restricted to ASCII (whitespace around, sign, digits,
/// `.`, exponent, `inf`/`infinity`/`nan` in any case); `_` is refused, as the tester does.
pub(crate) fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\u{b}');
    if t.is_empty() || s.contains('_') {
        return None;
    }
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        let v = if lower == "nan" { f64::NAN } else { f64::INFINITY };
        return Some(if t.starts_with('-') { -v } else { v });
    }
    // Digits with at most one '.', an optional exponent; at least one digit in the mantissa.
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mut dots = 0;
    let mut digits = 0;
    for b in mantissa.bytes() {
        match b {
            b'.' => dots += 1,
            b'0'..=b'9' => digits += 1,
            _ => return None,
        }
    }
    if dots > 1 || digits == 0 {
        return None;
    }
    if let Some(e) = exp {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    t.parse::<f64>().ok()
}

/// Matches `pat` against a prefix of `s` (Python's `re.match`), backtracking over `{m,n}`.
fn matches_pattern(s: &[u8], pat: &[Pat]) -> bool {
    let Some((first, rest)) = pat.split_first() else {
        return true;
    };
    match *first {
        Pat::Digit => s.first().is_some_and(u8::is_ascii_digit) && matches_pattern(&s[1..], rest),
        Pat::Digits(min, max) => {
            let avail = s.iter().take(max).take_while(|b| b.is_ascii_digit()).count();
            (min..=avail).rev().any(|n| matches_pattern(&s[n..], rest))
        }
        Pat::Any => match s.first() {
            Some(&b) if b != b'\n' => {
                let n = utf8_len(b).min(s.len());
                matches_pattern(&s[n..], rest)
            }
            _ => false,
        },
        Pat::Lit(c) => s.first() == Some(&c) && matches_pattern(&s[1..], rest),
        Pat::TOrSpace => {
            s.first().is_some_and(|&b| b == b'T' || b.is_ascii_whitespace() || b == 0x0b)
                && matches_pattern(&s[1..], rest)
        }
    }
}

fn utf8_len(b: u8) -> usize {
    match b {
        0xf0.. => 4,
        0xe0.. => 3,
        0xc0.. => 2,
        _ => 1,
    }
}

#[derive(Clone, Copy)]
enum Pat {
    Digit,
    Digits(usize, usize),
    Any,
    Lit(u8),
    TOrSpace,
}

use Pat::{Any, Digit, Digits, Lit, TOrSpace};

#[rustfmt::skip]
const DT_ISO: [Pat; 19] = [
    Digit, Digit, Digit, Digit, Any, Digit, Digit, Any, Digit, Digit, TOrSpace, Digit, Digit, Lit(b':'), Digit,
    Digit, Lit(b':'), Digit, Digit,
];

#[rustfmt::skip]
const DT_EU_SECONDS: [Pat; 16] =
    [Digit, Digit, Any, Digit, Digit, Any, Digit, Digit, Digit, Digit, Any, Digits(1, 2), Lit(b':'), Digits(1, 2), Lit(b':'), Digits(1, 2)];
#[rustfmt::skip]
const DT64_ISO: [Pat; 23] = [
    Digit, Digit, Digit, Digit, Any, Digit, Digit, Any, Digit, Digit, TOrSpace, Digit, Digit, Lit(b':'), Digit,
    Digit, Lit(b':'), Digit, Digit, Any, Digit, Digit, Digit,
];
#[rustfmt::skip]
const DT64_EU: [Pat; 18] = [
    Digit, Digit, Any, Digit, Digit, Any, Digit, Digit, Digit, Digit, Any, Digits(1, 2), Lit(b':'), Digits(1, 2),
    Lit(b':'), Digits(1, 2), Any, Digits(1, 3),
];

/// `YYYY?MM?DD(T| )hh:mm:ss` in ASCII at fixed offsets — the common case of both DateTime
/// testers, checked without the general matcher.
fn is_iso_datetime_prefix(b: &[u8]) -> bool {
    let d = |i: usize| b[i].is_ascii_digit();
    b.len() >= 19
        && b[..19].is_ascii()
        && d(0)
        && d(1)
        && d(2)
        && d(3)
        && b[4] != b'\n'
        && d(5)
        && d(6)
        && b[7] != b'\n'
        && d(8)
        && d(9)
        && (b[10] == b'T' || b[10].is_ascii_whitespace() || b[10] == 0x0b)
        && d(11)
        && d(12)
        && b[13] == b':'
        && d(14)
        && d(15)
        && b[16] == b':'
        && d(17)
        && d(18)
}

pub(crate) fn is_datetime(s: &str) -> bool {
    is_iso_datetime_prefix(s.as_bytes())
        || matches_pattern(s.as_bytes(), &DT_ISO)
        || matches_pattern(s.as_bytes(), &DT_EU_SECONDS)
}

pub(crate) fn is_datetime64(s: &str) -> bool {
    matches_pattern(s.as_bytes(), &DT64_ISO) || matches_pattern(s.as_bytes(), &DT64_EU)
}

pub(crate) fn is_date(s: &str) -> bool {
    s.len() == 10
        && matches_pattern(
            s.as_bytes(),
            &[Digit, Digit, Digit, Digit, Lit(b'-'), Digit, Digit, Lit(b'-'), Digit, Digit],
        )
}

pub(crate) fn validation_error(value: &Value, ty: ScalarType) -> Error {
    Error::syntax_doc(format!("Error validating '{}' to type {}", value.py_str(), ty.tester_name()), doc::TEMPLATES)
}

/// Validates and converts a non-`None` value for a scalar type function.
pub(crate) fn convert(value: &Value, ty: ScalarType) -> Result<Value> {
    // A string parameter is validated in place and kept (no copy); other values go through
    // their Python `str()`.
    let owned;
    let text: &str = match value {
        Value::Str(s) => s,
        other => {
            owned = other.py_str();
            &owned
        }
    };
    let as_string = || match value {
        Value::Str(s) => Value::Str(s.clone()),
        _ => Value::from(text),
    };
    let ok = |v: Value| Ok(v);
    match ty {
        ScalarType::String => ok(as_string()),
        ScalarType::Int(it) => match parse_int(text, it) {
            Some(n) => ok(Value::TypedInt(it, Arc::from(n))),
            None => Err(validation_error(value, ty)),
        },
        ScalarType::PlainInt => match parse_int(text, IntType::Int32).and_then(|n| n.parse::<i128>().ok()) {
            Some(n) => ok(Value::Int(n)),
            None => Err(validation_error(value, ty)),
        },
        ScalarType::Float(ft) => {
            if parse_float(text).is_none() {
                return Err(validation_error(value, ty));
            }
            let f = match value.num() {
                Some(crate::value::Num::Int(i)) => i as f64,
                Some(crate::value::Num::Float(f)) => f,
                None => parse_float(text).unwrap_or(f64::NAN),
            };
            ok(Value::TypedFloat(ft, f))
        }
        ScalarType::Date if is_date(text) => ok(as_string()),
        ScalarType::DateTime if is_datetime(text) => ok(as_string()),
        ScalarType::DateTime64 if is_datetime64(text) => ok(as_string()),
        ScalarType::Date | ScalarType::DateTime | ScalarType::DateTime64 => Err(validation_error(value, ty)),
        ScalarType::Boolean => ok(Value::Int(i128::from(boolean(value)))),
        ScalarType::Symbol => symbol(value, "`"),
    }
}

/// Validates `value` for `ty` and writes it as `{{ Type(value) }}` renders; a string value is
/// checked in place and written without intermediate copies.
pub(crate) fn write_converted(value: &Value, ty: ScalarType, out: &mut String) -> Result<()> {
    if let Value::Str(s) = value {
        match ty {
            ScalarType::String => {
                crate::escape::write_string_literal(s, out);
                return Ok(());
            }
            ScalarType::Date | ScalarType::DateTime | ScalarType::DateTime64 => {
                let valid = match ty {
                    ScalarType::Date => is_date(s),
                    ScalarType::DateTime => is_datetime(s),
                    _ => is_datetime64(s),
                };
                if !valid {
                    return Err(validation_error(value, ty));
                }
                crate::escape::write_string_literal(s, out);
                return Ok(());
            }
            ScalarType::Int(it)
                if !s.is_empty()
                    && s.len() < 19
                    && s.bytes().all(|b| b.is_ascii_digit())
                    && (s.len() == 1 || !s.starts_with('0')) =>
            {
                // Plain digits: the text is already normalised; only the range needs checking.
                let n: u64 = s.parse().unwrap_or(u64::MAX);
                let fits = if it.signed() {
                    it.bits() >= 64 || n < (1u64 << (it.bits() - 1))
                } else {
                    it.bits() >= 64 || n < (1u64 << it.bits())
                };
                if !fits {
                    return Err(validation_error(value, ty));
                }
                out.push_str("to");
                out.push_str(it.name());
                out.push_str("('");
                out.push_str(s);
                out.push_str("')");
                return Ok(());
            }
            _ => {}
        }
    }
    let converted = convert(value, ty)?;
    crate::eval::render_output(&converted, "", out)
}

/// `Boolean()` of a present value: `"0"`, `"false"` (any case) and `""` are false.
pub(crate) fn boolean(value: &Value) -> bool {
    match value {
        Value::Str(s) | Value::Fragment(s) => !(s.as_ref() == "0" || s.eq_ignore_ascii_case("false") || s.is_empty()),
        other => other.truthy(),
    }
}

/// `symbol(x)`: a quoted identifier.
pub(crate) fn symbol(value: &Value, quote: &str) -> Result<Value> {
    match value.as_str() {
        Some(s) => Ok(Value::Fragment(Arc::from(format!("{quote}{}{quote}", crate::escape::identifier_escaped(s))))),
        None => Err(Error::syntax_doc(format!("symbol() expects a String, got {}", value.kind()), doc::TEMPLATES)),
    }
}

/// Renders one validated `Array` element without its `toX()` wrapper.
pub(crate) fn array_element(converted: &Value, out: &mut String) {
    match converted {
        Value::TypedInt(_, n) => out.push_str(n),
        Value::TypedFloat(_, f) => out.push_str(&float_repr(*f)),
        Value::Str(s) => crate::escape::write_string_literal(s, out),
        other => other.write_str(out),
    }
}
