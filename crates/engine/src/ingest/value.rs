//! One JSON value converted to a column's ClickHouse type, following ClickHouse's rules for
//! `JSONEachRow` input (spec `datafiles.md` §3.3): what is accepted, and the message that sends
//! a row to quarantine otherwise. Nothing is silently coerced or wrapped.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use datafiles::ChType;
use serde_json::Value as Json;

/// A converted value, ready for an Arrow builder of the column's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// `NULL` (only for nullable columns).
    Null,
    /// Text (`String`, `LowCardinality(String)`, `Enum` labels).
    Str(String),
    /// Bytes (`FixedString`, `UUID`, `IPv6`).
    Bytes(Vec<u8>),
    /// A signed integer up to 64 bits.
    Int(i64),
    /// An unsigned integer up to 64 bits (`IPv4` too).
    UInt(u64),
    /// A 128-bit integer or a `Decimal` up to 38 digits, as its unscaled value.
    Wide(i128),
    /// A 256-bit integer or `Decimal`, as its unscaled decimal text.
    Huge(String),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Days since 1970-01-01 (`Date`, `Date32`).
    Days(i32),
    /// A timestamp in the column's unit (seconds for `DateTime`, 10^-p s for `DateTime64(p)`).
    Time(i64),
    /// `Array(T)`.
    List(Vec<Cell>),
    /// `Map(K, V)`.
    Map(Vec<(Cell, Cell)>),
    /// `Tuple(…)`.
    Tuple(Vec<Cell>),
}

fn cannot(v: &Json, ty: &ChType) -> String {
    let text = match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    let shown: String = text.chars().take(200).collect();
    format!("value '{shown}' cannot be parsed as {ty}")
}

/// The text of a scalar JSON value (strings without quotes), for types that accept both forms.
fn scalar_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `n` as a value of a `bits`-wide integer type (up to 64), `None` when out of its range.
fn integer_cell(n: i128, bits: u16, signed: bool) -> Option<Cell> {
    if signed {
        let (lo, hi) = (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1);
        (lo..=hi).contains(&n).then_some(Cell::Int(n as i64))
    } else {
        (0..1i128 << bits).contains(&n).then_some(Cell::UInt(n as u64))
    }
}

/// Parses an integer literal (optional sign, ASCII digits) exactly.
fn parse_integer(text: &str) -> Option<i128> {
    let t = text.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<i128>().ok()
}

/// Converts `v` (not null) to a value of `ty`.
pub fn convert(ty: &ChType, v: &Json) -> Result<Cell, String> {
    let err = || cannot(v, ty);
    match ty {
        ChType::Nullable(inner) => {
            if v.is_null() {
                Ok(Cell::Null)
            } else {
                convert(inner, v)
            }
        }
        ChType::LowCardinality(inner) | ChType::SimpleAggregateFunction { ty: inner, .. } => convert(inner, v),
        _ if v.is_null() => Err("missing value for non-nullable column".to_string()),
        ChType::String => Ok(Cell::Str(match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        })),
        ChType::FixedString(n) => {
            let s = match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            let mut bytes = s.into_bytes();
            if bytes.len() > *n as usize {
                return Err(format!("value is longer than FixedString({n})"));
            }
            bytes.resize(*n as usize, 0);
            Ok(Cell::Bytes(bytes))
        }
        ChType::Int { bits, signed } if *bits <= 64 && v.is_number() => {
            let n = v.as_i64().map(i128::from).or_else(|| v.as_u64().map(i128::from)).ok_or_else(err)?;
            integer_cell(n, *bits, *signed).ok_or_else(err)
        }
        ChType::Int { bits, signed } => {
            let text = match v {
                Json::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                Json::String(s) => s.clone(),
                Json::Bool(b) => u8::from(*b).to_string(),
                _ => return Err(err()),
            };
            if *bits > 64 {
                return wide_int(&text, *bits, *signed).ok_or_else(err);
            }
            let n = parse_integer(&text).ok_or_else(err)?;
            integer_cell(n, *bits, *signed).ok_or_else(err)
        }
        ChType::Float32 | ChType::Float64 => {
            let f = match v {
                Json::Number(n) => n.as_f64().ok_or_else(err)?,
                Json::String(s) => parse_float(s).ok_or_else(err)?,
                _ => return Err(err()),
            };
            Ok(Cell::Float(if matches!(ty, ChType::Float32) { f64::from(f as f32) } else { f }))
        }
        ChType::Decimal { precision, scale } => {
            let text = scalar_text(v).filter(|_| !v.is_boolean()).ok_or_else(err)?;
            let unscaled = parse_decimal(&text, *scale).ok_or_else(err)?;
            let digits = unscaled.trim_start_matches('-').len();
            if digits > *precision as usize {
                return Err(err());
            }
            if *precision <= 38 {
                Ok(Cell::Wide(unscaled.parse().map_err(|_| err())?))
            } else {
                Ok(Cell::Huge(unscaled))
            }
        }
        ChType::Bool => match v {
            Json::Bool(b) => Ok(Cell::Bool(*b)),
            Json::Number(n) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => Ok(Cell::Bool(n.as_u64() == Some(1))),
            Json::String(s) if s == "true" || s == "false" => Ok(Cell::Bool(s == "true")),
            _ => Err(err()),
        },
        ChType::Date | ChType::Date32 => match v {
            Json::Number(n) => n.as_i64().and_then(|d| i32::try_from(d).ok()).map(Cell::Days).ok_or_else(err),
            Json::String(s) => {
                let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| err())?;
                let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
                Ok(Cell::Days(i32::try_from((d - epoch).num_days()).map_err(|_| err())?))
            }
            _ => Err(err()),
        },
        ChType::DateTime { tz } => {
            let nanos = timestamp_nanos(v, tz.as_deref(), 0).ok_or_else(err)?;
            Ok(Cell::Time(nanos.div_euclid(1_000_000_000)))
        }
        ChType::DateTime64 { precision, tz } => {
            let nanos = timestamp_nanos(v, tz.as_deref(), *precision).ok_or_else(err)?;
            Ok(Cell::Time(nanos.div_euclid(nanos_per_unit(*precision))))
        }
        ChType::Uuid => {
            let s = v.as_str().ok_or_else(err)?;
            parse_uuid(s).map(|b| Cell::Bytes(b.to_vec())).ok_or_else(err)
        }
        ChType::Ipv4 => {
            let s = v.as_str().ok_or_else(err)?;
            Ipv4Addr::from_str(s.trim()).map(|ip| Cell::UInt(u64::from(u32::from(ip)))).map_err(|_| err())
        }
        ChType::Ipv6 => {
            let s = v.as_str().ok_or_else(err)?;
            let ip = IpAddr::from_str(s.trim()).map_err(|_| err())?;
            let v6 = match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            Ok(Cell::Bytes(v6.octets().to_vec()))
        }
        ChType::Enum { values, .. } => match v {
            Json::String(s) if values.iter().any(|(k, _)| k == s) => Ok(Cell::Str(s.clone())),
            Json::Number(n) => {
                let n = n.as_i64().ok_or_else(err)?;
                values.iter().find(|(_, k)| i64::from(*k) == n).map(|(s, _)| Cell::Str(s.clone())).ok_or_else(err)
            }
            _ => Err(err()),
        },
        ChType::Array(inner) => match v {
            Json::Array(items) => {
                items.iter().map(|i| convert(inner, i)).collect::<Result<Vec<_>, _>>().map(Cell::List)
            }
            _ => Err(err()),
        },
        ChType::Map(k, val) => match v {
            Json::Object(o) => o
                .iter()
                .map(|(key, value)| Ok((convert(k, &Json::String(key.clone()))?, convert(val, value)?)))
                .collect::<Result<Vec<_>, String>>()
                .map(Cell::Map),
            _ => Err(err()),
        },
        ChType::Tuple(items) => match v {
            Json::Array(vals) if vals.len() == items.len() => {
                items.iter().zip(vals).map(|((_, t), x)| convert(t, x)).collect::<Result<Vec<_>, _>>().map(Cell::Tuple)
            }
            Json::Object(o) if items.iter().all(|(n, _)| n.is_some()) => items
                .iter()
                .map(|(n, t)| convert(t, o.get(n.as_deref().unwrap_or_default()).unwrap_or(&Json::Null)))
                .collect::<Result<Vec<_>, _>>()
                .map(Cell::Tuple),
            _ => Err(err()),
        },
        ChType::AggregateFunction { .. } => Err(format!("{ty} columns cannot be written from JSON")),
        ChType::Json => Err("type JSON is not supported by the embedded backend".to_string()),
    }
}

/// Nanoseconds in one unit of the Arrow timestamp a `DateTime64(precision)` is stored as
/// (seconds, milliseconds, microseconds or nanoseconds).
pub fn nanos_per_unit(precision: u8) -> i64 {
    match precision {
        0 => 1_000_000_000,
        1..=3 => 1_000_000,
        4..=6 => 1_000,
        _ => 1,
    }
}

fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "nan" | "+nan" | "-nan" => return Some(f64::NAN),
        "inf" | "+inf" | "infinity" | "+infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) {
        return None;
    }
    t.parse().ok()
}

/// 128/256-bit integers, range-checked; `Wide` for 128 bits, `Huge` (decimal text) for 256.
fn wide_int(text: &str, bits: u16, signed: bool) -> Option<Cell> {
    let t = text.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mag = digits.trim_start_matches('0');
    let mag = if mag.is_empty() { "0" } else { mag };
    if neg && mag != "0" && !signed {
        return None;
    }
    let bound = match (bits, signed) {
        (128, true) => "170141183460469231731687303715884105728",
        (128, false) => "340282366920938463463374607431768211456",
        (_, true) => "57896044618658097711785492504343953926634992332820282019728792003956564819968",
        _ => "115792089237316195423570985008687907853269984665640564039457584007913129639936",
    };
    let cmp = mag.len().cmp(&bound.len()).then_with(|| mag.cmp(bound));
    let fits = if neg { cmp != std::cmp::Ordering::Greater } else { cmp == std::cmp::Ordering::Less };
    if !fits {
        return None;
    }
    // The embedded engine stores these as Decimal128(38, 0) / Decimal256(76, 0): values with
    // more digits than that are quarantined rather than wrapped (spec datafiles.md §3.4).
    if mag.len() > if bits == 128 { 38 } else { 76 } {
        return None;
    }
    let text = if neg && mag != "0" { format!("-{mag}") } else { mag.to_string() };
    if bits == 128
        && let Ok(v) = text.parse::<i128>()
    {
        return Some(Cell::Wide(v));
    }
    Some(Cell::Huge(text))
}

/// A decimal literal scaled to `scale` digits, rounding half to even; the unscaled integer text.
fn parse_decimal(text: &str, scale: u8) -> Option<String> {
    let t = text.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // All digits, and where the decimal point sits after applying the exponent.
    let digits: String = format!("{int_part}{frac_part}");
    let point = i64::try_from(int_part.len()).ok()? + i64::from(exp);
    let keep = point + i64::from(scale); // digits to keep before rounding
    let mut kept: Vec<u8> = Vec::new();
    let all = digits.as_bytes();
    for i in 0..keep.max(0) {
        kept.push(all.get(i as usize).copied().unwrap_or(b'0'));
    }
    if keep < 0 {
        kept.clear();
    }
    // Round half to even on the first dropped digit (and any non-zero after it).
    let rest: &[u8] = if keep >= 0 && (keep as usize) < all.len() {
        &all[keep as usize..]
    } else if keep < 0 {
        all
    } else {
        &[]
    };
    let first = if keep < 0 && (-keep) as usize > 0 { b'0' } else { rest.first().copied().unwrap_or(b'0') };
    let tail_nonzero = rest.iter().skip(1).any(|d| *d != b'0') || (keep < 0 && rest.iter().any(|d| *d != b'0'));
    let last_odd = kept.last().is_some_and(|d| (d - b'0') % 2 == 1);
    let round_up = first > b'5' || (first == b'5' && (tail_nonzero || last_odd));
    let mut n: Vec<u8> = if kept.is_empty() { vec![b'0'] } else { kept };
    if round_up {
        let mut i = n.len();
        loop {
            if i == 0 {
                n.insert(0, b'1');
                break;
            }
            i -= 1;
            if n[i] == b'9' {
                n[i] = b'0';
            } else {
                n[i] += 1;
                break;
            }
        }
    }
    let s = String::from_utf8(n).ok()?;
    let s = s.trim_start_matches('0');
    let s = if s.is_empty() { "0" } else { s };
    Some(if neg && s != "0" { format!("-{s}") } else { s.to_string() })
}

fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: String = s.trim().chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || s.trim().len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A timestamp in nanoseconds since the epoch: `YYYY-MM-DD HH:MM:SS[.f]` (in the column's time
/// zone, UTC by default), RFC 3339 with `T`, `Z` or an offset, or Unix seconds (integer, or
/// with a fraction for `DateTime64`). Fractions beyond `precision` digits are truncated.
fn timestamp_nanos(v: &Json, tz: Option<&str>, precision: u8) -> Option<i64> {
    let keep = 10i64.pow(9 - u32::from(precision.min(9)));
    let truncate = |ns: i64| ns - ns.rem_euclid(keep);
    match v {
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                return i.checked_mul(1_000_000_000);
            }
            if precision == 0 {
                return None;
            }
            let text = n.to_string();
            let (secs, frac) = text.split_once('.')?;
            let secs: i64 = secs.parse().ok()?;
            let mut f: String = frac.chars().take(9).collect();
            while f.len() < 9 {
                f.push('0');
            }
            let frac_ns: i64 = f.parse().ok()?;
            let ns = secs.checked_mul(1_000_000_000)?.checked_add(if secs < 0 { -frac_ns } else { frac_ns })?;
            Some(truncate(ns))
        }
        Json::String(s) => {
            let s = s.trim();
            let fast = plain_datetime(s);
            if fast.is_none()
                && let Ok(dt) = DateTime::<FixedOffset>::parse_from_rfc3339(s)
            {
                return dt.timestamp_nanos_opt().map(truncate);
            }
            let naive = fast.or_else(|| {
                ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]
                    .iter()
                    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
                    .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
            })?;
            let utc = match tz {
                None | Some("UTC") => naive.and_utc(),
                Some(name) => {
                    let zone: chrono_tz::Tz = name.parse().ok()?;
                    zone.from_local_datetime(&naive).earliest()?.to_utc()
                }
            };
            utc.timestamp_nanos_opt().map(truncate)
        }
        _ => None,
    }
}

/// The common `YYYY-MM-DD hh:mm:ss[.f…]` (or with `T`) without a zone, read directly; `None`
/// for anything else (the general parsers decide those).
fn plain_datetime(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b' ' | b'T') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
    };
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            let n = num(20..b.len())?;
            n * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    date.and_hms_nano_opt(num(11..13)?, num(14..16)?, num(17..19)?, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> ChType {
        ChType::parse(s).unwrap()
    }

    #[test]
    fn integers_are_range_checked_not_wrapped() {
        assert_eq!(convert(&t("UInt32"), &json!(5)), Ok(Cell::UInt(5)));
        assert_eq!(convert(&t("UInt32"), &json!("42")), Ok(Cell::UInt(42)));
        assert_eq!(convert(&t("UInt32"), &json!(-5)).unwrap_err(), "value '-5' cannot be parsed as UInt32");
        assert!(convert(&t("UInt8"), &json!(256)).is_err());
        assert!(convert(&t("Int8"), &json!(1.5)).is_err());
        assert_eq!(convert(&t("Int64"), &json!(-9223372036854775808i64)), Ok(Cell::Int(i64::MIN)));
        // 128/256-bit integers are stored as Decimal128(38)/Decimal256(76): more digits quarantine.
        let max38 = "9".repeat(38);
        assert_eq!(convert(&t("UInt128"), &json!(max38)), Ok(Cell::Wide(max38.parse().unwrap())));
        assert!(convert(&t("UInt128"), &json!("340282366920938463463374607431768211455")).is_err());
        let big = "-12345678901234567890123456789012345678901";
        assert_eq!(convert(&t("Int256"), &json!(big)), Ok(Cell::Huge(big.into())));
        assert_eq!(convert(&t("Int128"), &json!("-5")), Ok(Cell::Wide(-5)));
    }

    #[test]
    fn times() {
        let dt = t("DateTime");
        assert_eq!(convert(&dt, &json!("2026-11-01 10:00:00")), Ok(Cell::Time(1_793_527_200)));
        assert_eq!(convert(&dt, &json!("2026-11-01T10:00:00Z")), Ok(Cell::Time(1_793_527_200)));
        assert_eq!(convert(&dt, &json!("2026-11-01T11:00:00+01:00")), Ok(Cell::Time(1_793_527_200)));
        assert_eq!(convert(&dt, &json!(1_793_527_200)), Ok(Cell::Time(1_793_527_200)));
        assert!(convert(&dt, &json!("not a date")).is_err());
        let ms = t("DateTime64(3)");
        assert_eq!(convert(&ms, &json!("2026-11-01 10:00:00.1239")), Ok(Cell::Time(1_793_527_200_123)));
        assert_eq!(convert(&ms, &json!(1_793_527_200.5)), Ok(Cell::Time(1_793_527_200_500)));
        let madrid = t("DateTime('Europe/Madrid')");
        assert_eq!(convert(&madrid, &json!("2026-11-01 11:00:00")), Ok(Cell::Time(1_793_527_200)));
        assert_eq!(convert(&t("Date"), &json!("1970-01-11")), Ok(Cell::Days(10)));
    }

    #[test]
    fn decimals_round_half_to_even() {
        let d = t("Decimal(10, 2)");
        assert_eq!(convert(&d, &json!("1.005")), Ok(Cell::Wide(100)));
        assert_eq!(convert(&d, &json!("1.015")), Ok(Cell::Wide(102)));
        assert_eq!(convert(&d, &json!(12.3)), Ok(Cell::Wide(1230)));
        assert_eq!(convert(&d, &json!("-0.125")), Ok(Cell::Wide(-12)));
        assert_eq!(convert(&d, &json!("1e2")), Ok(Cell::Wide(10000)));
        assert!(convert(&d, &json!("123456789.1")).is_err());
    }

    #[test]
    fn strings_nulls_and_containers() {
        assert_eq!(convert(&t("String"), &json!(5)), Ok(Cell::Str("5".into())));
        assert_eq!(convert(&t("String"), &json!({"a": 1})), Ok(Cell::Str("{\"a\":1}".into())));
        assert_eq!(convert(&t("Nullable(String)"), &json!(null)), Ok(Cell::Null));
        assert_eq!(convert(&t("String"), &json!(null)).unwrap_err(), "missing value for non-nullable column");
        assert_eq!(convert(&t("Array(UInt8)"), &json!([1, 2])), Ok(Cell::List(vec![Cell::UInt(1), Cell::UInt(2)])));
        assert!(convert(&t("Array(UInt8)"), &json!([1, -2])).is_err());
        assert_eq!(convert(&t("Bool"), &json!("true")), Ok(Cell::Bool(true)));
        assert_eq!(convert(&t("IPv4"), &json!("10.0.0.1")), Ok(Cell::UInt(167_772_161)));
        assert_eq!(
            convert(&t("UUID"), &json!("123e4567-e89b-12d3-a456-426614174000"))
                .map(|c| matches!(c, Cell::Bytes(b) if b.len() == 16)),
            Ok(true)
        );
        assert_eq!(convert(&t("Enum8('a' = 1, 'b' = 2)"), &json!(2)), Ok(Cell::Str("b".into())));
        assert_eq!(convert(&t("FixedString(3)"), &json!("ab")), Ok(Cell::Bytes(vec![b'a', b'b', 0])));
    }
}
