//! ClickHouse column types: parsing the type text of a schema, and the Arrow type the embedded
//! engine stores each one as (spec `datafiles.md` §3.4).

use std::fmt;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, TimeUnit};

/// A ClickHouse column type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ChType {
    String,
    FixedString(u32),
    /// `Int8`…`Int256` (`signed`) and `UInt8`…`UInt256`.
    Int {
        bits: u16,
        signed: bool,
    },
    Float32,
    Float64,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Bool,
    Date,
    Date32,
    DateTime {
        tz: Option<String>,
    },
    DateTime64 {
        precision: u8,
        tz: Option<String>,
    },
    Uuid,
    Ipv4,
    Ipv6,
    /// `Enum8`/`Enum16` with their `'name' = value` pairs.
    Enum {
        bits: u8,
        values: Vec<(String, i16)>,
    },
    Array(Box<ChType>),
    Map(Box<ChType>, Box<ChType>),
    Tuple(Vec<(Option<String>, ChType)>),
    Nullable(Box<ChType>),
    LowCardinality(Box<ChType>),
    AggregateFunction {
        function: String,
        args: Vec<ChType>,
    },
    SimpleAggregateFunction {
        function: String,
        ty: Box<ChType>,
    },
    /// ClickHouse's newer `JSON` type (not storable by the embedded engine).
    Json,
}

/// Why a type text does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeError(pub String);

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        while self.s[self.pos..].starts_with(char::is_whitespace) {
            self.pos += self.s[self.pos..].chars().next().map_or(1, char::len_utf8);
        }
    }

    fn ident(&mut self) -> &'a str {
        self.skip_ws();
        let start = self.pos;
        while self.s[self.pos..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.s[self.pos..].starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), TypeError> {
        if self.eat(c) { Ok(()) } else { Err(TypeError(format!("expected '{c}' at position {}", self.pos + 1))) }
    }

    fn number(&mut self) -> Result<i64, TypeError> {
        self.skip_ws();
        let start = self.pos;
        if self.s[self.pos..].starts_with('-') {
            self.pos += 1;
        }
        while self.s[self.pos..].starts_with(|c: char| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.s[start..self.pos].parse().map_err(|_| TypeError(format!("expected a number at position {}", start + 1)))
    }

    fn quoted(&mut self) -> Result<String, TypeError> {
        self.skip_ws();
        if !self.s[self.pos..].starts_with('\'') {
            return Err(TypeError(format!("expected a quoted string at position {}", self.pos + 1)));
        }
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.s[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, e)) = chars.next() {
                        out.push(e);
                    }
                }
                '\'' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                c => out.push(c),
            }
        }
        Err(TypeError("unterminated string".to_string()))
    }
}

impl ChType {
    /// Parses a type as written in a schema (`LowCardinality(Nullable(String))`, `DateTime64(3, 'UTC')`, …).
    pub fn parse(text: &str) -> Result<ChType, TypeError> {
        let mut c = Cursor { s: text, pos: 0 };
        let t = parse_type(&mut c, 0)?;
        c.skip_ws();
        if c.pos != text.len() {
            return Err(TypeError(format!("unexpected '{}' after the type", &text[c.pos..])));
        }
        Ok(t)
    }

    /// Whether the type accepts `NULL`.
    pub fn is_nullable(&self) -> bool {
        match self {
            ChType::Nullable(_) => true,
            ChType::LowCardinality(inner) => inner.is_nullable(),
            _ => false,
        }
    }

    /// The type without `Nullable`/`LowCardinality` wrappers.
    pub fn base(&self) -> &ChType {
        match self {
            ChType::Nullable(t) | ChType::LowCardinality(t) => t.base(),
            t => t,
        }
    }

    /// Whether values of this type are strings (`String`, `LowCardinality(String)`, …).
    pub fn is_string(&self) -> bool {
        matches!(self.base(), ChType::String | ChType::FixedString(_))
    }

    /// Whether this is an integer type.
    pub fn is_integer(&self) -> bool {
        matches!(self.base(), ChType::Int { .. })
    }

    /// Whether this is a date or time type.
    pub fn is_temporal(&self) -> bool {
        matches!(self.base(), ChType::Date | ChType::Date32 | ChType::DateTime { .. } | ChType::DateTime64 { .. })
    }

    /// Whether this is a numeric type.
    pub fn is_numeric(&self) -> bool {
        matches!(self.base(), ChType::Int { .. } | ChType::Float32 | ChType::Float64 | ChType::Decimal { .. })
    }

    /// The Arrow type the embedded engine stores this type as; `Err` for types it cannot store.
    pub fn arrow(&self) -> Result<DataType, TypeError> {
        Ok(match self {
            ChType::String => DataType::Utf8,
            ChType::FixedString(n) => DataType::FixedSizeBinary(i32::try_from(*n).unwrap_or(i32::MAX)),
            ChType::Int { bits, signed } => match (bits, signed) {
                (8, true) => DataType::Int8,
                (16, true) => DataType::Int16,
                (32, true) => DataType::Int32,
                (64, true) => DataType::Int64,
                (8, false) => DataType::UInt8,
                (16, false) => DataType::UInt16,
                (32, false) => DataType::UInt32,
                (64, false) => DataType::UInt64,
                (128, _) => DataType::Decimal128(38, 0),
                _ => DataType::Decimal256(76, 0),
            },
            ChType::Float32 => DataType::Float32,
            ChType::Float64 => DataType::Float64,
            ChType::Decimal { precision, scale } => {
                let scale = i8::try_from(*scale).unwrap_or(i8::MAX);
                if *precision <= 38 {
                    DataType::Decimal128(*precision, scale)
                } else {
                    DataType::Decimal256(*precision, scale)
                }
            }
            ChType::Bool => DataType::Boolean,
            ChType::Date | ChType::Date32 => DataType::Date32,
            ChType::DateTime { tz } => {
                DataType::Timestamp(TimeUnit::Second, Some(Arc::from(tz.as_deref().unwrap_or("UTC"))))
            }
            ChType::DateTime64 { precision, tz } => {
                let unit = match precision {
                    0 => TimeUnit::Second,
                    1..=3 => TimeUnit::Millisecond,
                    4..=6 => TimeUnit::Microsecond,
                    _ => TimeUnit::Nanosecond,
                };
                DataType::Timestamp(unit, Some(Arc::from(tz.as_deref().unwrap_or("UTC"))))
            }
            ChType::Uuid => DataType::FixedSizeBinary(16),
            ChType::Ipv4 => DataType::UInt32,
            ChType::Ipv6 => DataType::FixedSizeBinary(16),
            ChType::Enum { .. } => DataType::Dictionary(Box::new(DataType::Int16), Box::new(DataType::Utf8)),
            ChType::Array(inner) => DataType::List(Arc::new(Field::new("item", inner.arrow()?, inner.is_nullable()))),
            ChType::Map(k, v) => {
                let entries = Fields::from(vec![
                    Field::new("key", k.arrow()?, false),
                    Field::new("value", v.arrow()?, v.is_nullable()),
                ]);
                DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
            }
            ChType::Tuple(items) => DataType::Struct(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, (name, t))| {
                        Ok(Field::new(name.clone().unwrap_or_else(|| (i + 1).to_string()), t.arrow()?, t.is_nullable()))
                    })
                    .collect::<Result<Vec<_>, TypeError>>()?
                    .into(),
            ),
            ChType::Nullable(inner) => inner.arrow()?,
            ChType::LowCardinality(inner) => match inner.arrow()? {
                DataType::Utf8 => DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                other => other,
            },
            ChType::AggregateFunction { .. } => DataType::Binary,
            ChType::SimpleAggregateFunction { ty, .. } => ty.arrow()?,
            ChType::Json => return Err(TypeError("type JSON is not supported by the embedded backend".to_string())),
        })
    }
}

fn parse_type(c: &mut Cursor<'_>, depth: usize) -> Result<ChType, TypeError> {
    if depth > 32 {
        return Err(TypeError("type nested too deeply".to_string()));
    }
    let name = c.ident();
    let int = |bits: u16, signed: bool| Ok(ChType::Int { bits, signed });
    let t = match name {
        "String" => ChType::String,
        "FixedString" => {
            c.expect('(')?;
            let n = c.number()?;
            c.expect(')')?;
            ChType::FixedString(u32::try_from(n).map_err(|_| TypeError("FixedString length must be positive".into()))?)
        }
        "Int8" => return int(8, true),
        "Int16" => return int(16, true),
        "Int32" => return int(32, true),
        "Int64" => return int(64, true),
        "Int128" => return int(128, true),
        "Int256" => return int(256, true),
        "UInt8" => return int(8, false),
        "UInt16" => return int(16, false),
        "UInt32" => return int(32, false),
        "UInt64" => return int(64, false),
        "UInt128" => return int(128, false),
        "UInt256" => return int(256, false),
        "Float32" => ChType::Float32,
        "Float64" => ChType::Float64,
        "Bool" | "Boolean" => ChType::Bool,
        "Date" => ChType::Date,
        "Date32" => ChType::Date32,
        "UUID" => ChType::Uuid,
        "IPv4" => ChType::Ipv4,
        "IPv6" => ChType::Ipv6,
        "JSON" | "Object" => ChType::Json,
        "Decimal" => {
            let (mut p, mut s) = (10, 0);
            if c.eat('(') {
                p = c.number()?;
                if c.eat(',') {
                    s = c.number()?;
                }
                c.expect(')')?;
            }
            decimal(p, s)?
        }
        "Decimal32" | "Decimal64" | "Decimal128" | "Decimal256" => {
            c.expect('(')?;
            let s = c.number()?;
            c.expect(')')?;
            let p = match name {
                "Decimal32" => 9,
                "Decimal64" => 18,
                "Decimal128" => 38,
                _ => 76,
            };
            decimal(p, s)?
        }
        "DateTime" => {
            let mut tz = None;
            if c.eat('(') && !c.eat(')') {
                tz = Some(c.quoted()?);
                c.expect(')')?;
            }
            ChType::DateTime { tz }
        }
        "DateTime64" => {
            let mut precision = 3;
            let mut tz = None;
            if c.eat('(') {
                precision = c.number()?;
                if c.eat(',') {
                    tz = Some(c.quoted()?);
                }
                c.expect(')')?;
            }
            if !(0..=9).contains(&precision) {
                return Err(TypeError(format!("DateTime64 precision {precision} is out of range 0..9")));
            }
            ChType::DateTime64 { precision: precision as u8, tz }
        }
        "Enum8" | "Enum16" | "Enum" => {
            c.expect('(')?;
            let mut values = Vec::new();
            loop {
                let label = c.quoted()?;
                c.expect('=')?;
                let v = c.number()?;
                values.push((label, i16::try_from(v).map_err(|_| TypeError(format!("enum value {v} out of range")))?));
                if !c.eat(',') {
                    break;
                }
            }
            c.expect(')')?;
            ChType::Enum { bits: if name == "Enum8" { 8 } else { 16 }, values }
        }
        "Array" => {
            c.expect('(')?;
            let inner = parse_type(c, depth + 1)?;
            c.expect(')')?;
            ChType::Array(Box::new(inner))
        }
        "Map" => {
            c.expect('(')?;
            let k = parse_type(c, depth + 1)?;
            c.expect(',')?;
            let v = parse_type(c, depth + 1)?;
            c.expect(')')?;
            ChType::Map(Box::new(k), Box::new(v))
        }
        "Tuple" => {
            c.expect('(')?;
            let mut items = Vec::new();
            loop {
                // `Tuple(a String, b UInt8)` or `Tuple(String, UInt8)`.
                let save = c.pos;
                let first = c.ident();
                c.skip_ws();
                let named = !first.is_empty()
                    && c.s[c.pos..].starts_with(|ch: char| ch.is_ascii_alphabetic())
                    && !matches!(first, "Nullable" | "LowCardinality" | "Array" | "Map" | "Tuple");
                if named {
                    items.push((Some(first.to_string()), parse_type(c, depth + 1)?));
                } else {
                    c.pos = save;
                    items.push((None, parse_type(c, depth + 1)?));
                }
                if !c.eat(',') {
                    break;
                }
            }
            c.expect(')')?;
            ChType::Tuple(items)
        }
        "Nullable" => {
            c.expect('(')?;
            let inner = parse_type(c, depth + 1)?;
            c.expect(')')?;
            if let ChType::LowCardinality(_) = inner {
                return Err(TypeError(format!("Nested type {inner} cannot be inside Nullable type")));
            }
            if matches!(inner, ChType::Array(_) | ChType::Map(..) | ChType::Tuple(_) | ChType::Nullable(_)) {
                return Err(TypeError(format!("Nested type {inner} cannot be inside Nullable type")));
            }
            ChType::Nullable(Box::new(inner))
        }
        "LowCardinality" => {
            c.expect('(')?;
            let inner = parse_type(c, depth + 1)?;
            c.expect(')')?;
            ChType::LowCardinality(Box::new(inner))
        }
        "AggregateFunction" | "SimpleAggregateFunction" => {
            c.expect('(')?;
            let start = c.pos;
            let function = c.ident().to_string();
            if c.eat('(') {
                // Parametric aggregate, e.g. quantiles(0.5, 0.9): keep the text.
                while !c.eat(')') {
                    if c.pos >= c.s.len() {
                        return Err(TypeError("unterminated aggregate function parameters".into()));
                    }
                    c.pos += 1;
                }
            }
            let function =
                if c.s[start..c.pos].trim() == function { function } else { c.s[start..c.pos].trim().to_string() };
            let mut args = Vec::new();
            while c.eat(',') {
                args.push(parse_type(c, depth + 1)?);
            }
            c.expect(')')?;
            if name == "SimpleAggregateFunction" {
                let ty = args.pop().ok_or_else(|| TypeError("SimpleAggregateFunction needs a type".into()))?;
                ChType::SimpleAggregateFunction { function, ty: Box::new(ty) }
            } else {
                ChType::AggregateFunction { function, args }
            }
        }
        "" => return Err(TypeError(format!("expected a type at position {}", c.pos + 1))),
        other => return Err(TypeError(format!("unknown type {other}"))),
    };
    Ok(t)
}

fn decimal(p: i64, s: i64) -> Result<ChType, TypeError> {
    if !(1..=76).contains(&p) || !(0..=p).contains(&s) {
        return Err(TypeError(format!("Decimal({p}, {s}) is out of range: precision 1..76, scale 0..precision")));
    }
    Ok(ChType::Decimal { precision: p as u8, scale: s as u8 })
}

impl fmt::Display for ChType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tz = |tz: &Option<String>| tz.as_ref().map(|t| format!("'{t}'"));
        match self {
            ChType::String => f.write_str("String"),
            ChType::FixedString(n) => write!(f, "FixedString({n})"),
            ChType::Int { bits, signed } => write!(f, "{}Int{bits}", if *signed { "" } else { "U" }),
            ChType::Float32 => f.write_str("Float32"),
            ChType::Float64 => f.write_str("Float64"),
            ChType::Decimal { precision, scale } => write!(f, "Decimal({precision}, {scale})"),
            ChType::Bool => f.write_str("Bool"),
            ChType::Date => f.write_str("Date"),
            ChType::Date32 => f.write_str("Date32"),
            ChType::DateTime { tz: t } => match tz(t) {
                Some(t) => write!(f, "DateTime({t})"),
                None => f.write_str("DateTime"),
            },
            ChType::DateTime64 { precision, tz: t } => match tz(t) {
                Some(t) => write!(f, "DateTime64({precision}, {t})"),
                None => write!(f, "DateTime64({precision})"),
            },
            ChType::Uuid => f.write_str("UUID"),
            ChType::Ipv4 => f.write_str("IPv4"),
            ChType::Ipv6 => f.write_str("IPv6"),
            ChType::Enum { bits, values } => {
                write!(f, "Enum{bits}(")?;
                for (i, (k, v)) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "'{}' = {v}", k.replace('\'', "\\'"))?;
                }
                f.write_str(")")
            }
            ChType::Array(t) => write!(f, "Array({t})"),
            ChType::Map(k, v) => write!(f, "Map({k}, {v})"),
            ChType::Tuple(items) => {
                f.write_str("Tuple(")?;
                for (i, (n, t)) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match n {
                        Some(n) => write!(f, "{n} {t}")?,
                        None => write!(f, "{t}")?,
                    }
                }
                f.write_str(")")
            }
            ChType::Nullable(t) => write!(f, "Nullable({t})"),
            ChType::LowCardinality(t) => write!(f, "LowCardinality({t})"),
            ChType::AggregateFunction { function, args } => {
                write!(f, "AggregateFunction({function}")?;
                for a in args {
                    write!(f, ", {a}")?;
                }
                f.write_str(")")
            }
            ChType::SimpleAggregateFunction { function, ty } => write!(f, "SimpleAggregateFunction({function}, {ty})"),
            ChType::Json => f.write_str("JSON"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for t in [
            "String",
            "LowCardinality(Nullable(String))",
            "DateTime64(3, 'UTC')",
            "DateTime('Europe/Madrid')",
            "Decimal(18, 4)",
            "Array(Nullable(UInt32))",
            "Map(String, Array(Int64))",
            "Tuple(a String, b UInt8)",
            "Enum8('a' = 1, 'b' = 2)",
            "AggregateFunction(count, UInt64)",
            "SimpleAggregateFunction(sum, Int64)",
            "UInt256",
        ] {
            assert_eq!(ChType::parse(t).unwrap().to_string(), t);
        }
        assert_eq!(ChType::parse("Decimal64(4)").unwrap().to_string(), "Decimal(18, 4)");
        assert_eq!(ChType::parse("Decimal").unwrap().to_string(), "Decimal(10, 0)");
        assert_eq!(
            ChType::parse("Nullable(LowCardinality(Nullable(String)))").unwrap_err().0,
            "Nested type LowCardinality(Nullable(String)) cannot be inside Nullable type"
        );
        assert!(ChType::parse("Strin").is_err());
    }

    #[test]
    fn arrow_mapping() {
        assert_eq!(ChType::parse("Int128").unwrap().arrow().unwrap(), DataType::Decimal128(38, 0));
        assert_eq!(ChType::parse("UInt256").unwrap().arrow().unwrap(), DataType::Decimal256(76, 0));
        assert_eq!(
            ChType::parse("DateTime64(6)").unwrap().arrow().unwrap(),
            DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
        );
        assert_eq!(ChType::parse("UUID").unwrap().arrow().unwrap(), DataType::FixedSizeBinary(16));
        assert_eq!(
            ChType::parse("JSON").unwrap().arrow().unwrap_err().0,
            "type JSON is not supported by the embedded backend"
        );
    }
}
