//! What a ClickHouse server can store, and the type each column is stored as there.
//!
//! Aviary needs ClickHouse 18.16 or newer. Types newer than the server are stored as their
//! closest older type where that keeps every value readable, and refused otherwise:
//!
//! | type | needs | on an older server |
//! |---|---|---|
//! | `DateTime64(p)` | 20.1 | `DateTime` (whole seconds; the fraction is dropped) |
//! | `Bool` | 21.12 | `UInt8` |
//! | `Date32` | 21.9 | `Date` (1970–2149) |
//! | `IPv4`, `IPv6` | 19.3 | `UInt32`, `FixedString(16)` |
//! | `Map`, `Int128`/`Int256`, `SimpleAggregateFunction`, `JSON` | 21.1, 21.x, 19.8, 22.3 | refused |
//!
//! Whether a server has a type is read from `system.data_type_families`, not guessed from its
//! version. A `DateTime` without a time zone is stored as `DateTime('UTC')`, so values mean the
//! same whatever the server's time zone.

use std::collections::HashSet;

use datafiles::ChType;

/// What the server offers.
#[derive(Debug, Clone, Default)]
pub struct Features {
    /// `major.minor` of `version()`.
    pub version: (u32, u32),
    /// The server's full version text.
    pub version_text: String,
    /// Type families the server knows (`system.data_type_families`).
    pub types: HashSet<String>,
}

impl Features {
    /// Features of a server answering `version` with these type families.
    pub fn new(version_text: &str, types: impl IntoIterator<Item = String>) -> Features {
        let mut parts = version_text.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        Features { version, version_text: version_text.to_string(), types: types.into_iter().collect() }
    }

    /// Whether the server knows type family `name`.
    pub fn has(&self, name: &str) -> bool {
        self.types.contains(name)
    }

    /// Whether the server is at least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        self.version >= (major, minor)
    }

    /// Table TTL expressions (19.6).
    pub fn ttl(&self) -> bool {
        self.at_least(19, 6)
    }

    /// `LowCardinality` without `allow_experimental_low_cardinality_type` (19.x).
    pub fn low_cardinality_is_experimental(&self) -> bool {
        !self.at_least(19, 0)
    }

    /// `WITH name AS (subquery)` (20.x); older servers get CTEs inlined.
    pub fn ctes(&self) -> bool {
        self.at_least(20, 1)
    }
}

/// The type column values of `ty` are stored as on this server, or why it cannot store them.
pub fn physical(ty: &ChType, f: &Features) -> Result<ChType, String> {
    let needs = |what: &str, version: &str| {
        Err(format!("type {what} needs ClickHouse {version} or newer (this server is {})", f.version_text))
    };
    Ok(match ty {
        ChType::DateTime { tz } => ChType::DateTime { tz: Some(tz.clone().unwrap_or_else(|| "UTC".into())) },
        ChType::DateTime64 { precision, tz } => {
            let tz = Some(tz.clone().unwrap_or_else(|| "UTC".into()));
            if f.has("DateTime64") { ChType::DateTime64 { precision: *precision, tz } } else { ChType::DateTime { tz } }
        }
        ChType::Bool if !f.has("Bool") => ChType::Int { bits: 8, signed: false },
        ChType::Date32 if !f.has("Date32") => ChType::Date,
        ChType::Ipv4 if !f.has("IPv4") => ChType::Int { bits: 32, signed: false },
        ChType::Ipv6 if !f.has("IPv6") => ChType::FixedString(16),
        ChType::Int { bits, .. } if *bits > 64 && !f.has(&ty.to_string()) => return needs(&ty.to_string(), "21.1"),
        ChType::Map(k, v) => {
            if !f.has("Map") {
                return needs("Map", "21.1");
            }
            ChType::Map(Box::new(physical(k, f)?), Box::new(physical(v, f)?))
        }
        ChType::Json if !f.has("JSON") && !f.has("Object") => return needs("JSON", "22.3"),
        ChType::SimpleAggregateFunction { function, ty } => {
            if !f.has("SimpleAggregateFunction") {
                return needs("SimpleAggregateFunction", "19.8");
            }
            ChType::SimpleAggregateFunction { function: function.clone(), ty: Box::new(physical(ty, f)?) }
        }
        ChType::Nullable(inner) => ChType::Nullable(Box::new(physical(inner, f)?)),
        ChType::LowCardinality(inner) => ChType::LowCardinality(Box::new(physical(inner, f)?)),
        ChType::Array(inner) => ChType::Array(Box::new(physical(inner, f)?)),
        ChType::Tuple(items) => ChType::Tuple(
            items.iter().map(|(n, t)| Ok((n.clone(), physical(t, f)?))).collect::<Result<Vec<_>, String>>()?,
        ),
        other => other.clone(),
    })
}

/// The type a result column of ClickHouse type text `name` is read as (`String` for types a
/// result cannot hold otherwise: intervals, aggregate states, `Nothing`).
pub fn result_type(name: &str) -> ChType {
    let parsed = ChType::parse(name).ok().filter(|t| t.arrow().is_ok() && !contains_aggregate_state(t));
    match parsed {
        Some(t) => t,
        None if name.starts_with("Nullable(") => ChType::Nullable(Box::new(ChType::String)),
        None if name.starts_with("Interval") => ChType::Int { bits: 64, signed: true },
        None => ChType::Nullable(Box::new(ChType::String)),
    }
}

fn contains_aggregate_state(t: &ChType) -> bool {
    match t {
        ChType::AggregateFunction { .. } => true,
        ChType::Nullable(i) | ChType::LowCardinality(i) | ChType::Array(i) => contains_aggregate_state(i),
        ChType::Tuple(items) => items.iter().any(|(_, t)| contains_aggregate_state(t)),
        ChType::Map(k, v) => contains_aggregate_state(k) || contains_aggregate_state(v),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old() -> Features {
        Features::new(
            "18.16.1",
            ["String", "DateTime", "Date", "UInt8", "LowCardinality", "Nullable", "Array"].map(String::from),
        )
    }

    #[test]
    fn newer_types_fall_back_or_are_refused() {
        let p = |t: &str| physical(&ChType::parse(t).unwrap(), &old()).map(|t| t.to_string());
        assert_eq!(p("DateTime64(3)").unwrap(), "DateTime('UTC')");
        assert_eq!(p("DateTime").unwrap(), "DateTime('UTC')");
        assert_eq!(p("Array(Nullable(Bool))").unwrap(), "Array(Nullable(UInt8))");
        assert_eq!(p("LowCardinality(String)").unwrap(), "LowCardinality(String)");
        assert!(p("Map(String, String)").unwrap_err().contains("needs ClickHouse 21.1"));
        let new = Features::new("24.3.1", ["DateTime64", "Map", "Bool"].map(String::from));
        assert_eq!(
            physical(&ChType::parse("DateTime64(3)").unwrap(), &new).unwrap().to_string(),
            "DateTime64(3, 'UTC')"
        );
        assert!(new.ttl() && !old().ttl() && old().low_cardinality_is_experimental());
    }

    #[test]
    fn result_types() {
        assert_eq!(result_type("UInt64").to_string(), "UInt64");
        assert_eq!(result_type("Nullable(Nothing)").to_string(), "Nullable(String)");
        assert_eq!(result_type("IntervalDay").to_string(), "Int64");
        assert_eq!(result_type("AggregateFunction(uniq, String)").to_string(), "Nullable(String)");
    }
}
