//! List parameters (`limit`, `offset`, `order_by`, repeated filters) and a small builder for
//! statements whose `WHERE` depends on them.

use crate::error::{Error, Result};

/// A request's query parameters, in order, repeated keys kept (`email_address=a&email_address=b`
/// and `email_address[]=a` mean the same).
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pairs: Vec<(String, String)>,
}

impl ListParams {
    /// From decoded key/value pairs.
    pub fn new(pairs: Vec<(String, String)>) -> ListParams {
        ListParams { pairs }
    }

    /// Every value of `key` (also under `key[]`), empty ones dropped.
    pub fn all(&self, key: &str) -> Vec<String> {
        let bracketed = format!("{key}[]");
        self.pairs
            .iter()
            .filter(|(k, v)| (k == key || *k == bracketed) && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The first non-empty value of `key`.
    pub fn one(&self, key: &str) -> Option<String> {
        self.all(key).into_iter().next()
    }

    /// Whether `key` is `true`.
    pub fn flag(&self, key: &str) -> bool {
        self.one(key).is_some_and(|v| v == "true" || v == "1")
    }

    /// `limit` (1–500, default 10) and `offset` (≥ 0, default 0).
    pub fn page(&self) -> Result<(i64, i64)> {
        let limit = match self.one("limit") {
            None => 10,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=500).contains(n))
                .ok_or_else(|| Error::format("limit", "limit must be an integer between 1 and 500."))?,
        };
        let offset = match self.one("offset") {
            None => 0,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| Error::format("offset", "offset must be a non-negative integer."))?,
        };
        Ok((limit, offset))
    }

    /// `ORDER BY` from `order_by` (`+field`/`-field`/`field`, default descending
    /// `created_at`), restricted to `allowed` columns.
    pub fn order(&self, allowed: &[&str]) -> Result<String> {
        let Some(raw) = self.one("order_by") else {
            return Ok("created_at DESC, id DESC".into());
        };
        let (field, dir) = match raw.as_bytes().first() {
            Some(b'+') => (&raw[1..], "ASC"),
            Some(b'-') => (&raw[1..], "DESC"),
            _ => (raw.as_str(), "DESC"),
        };
        if !allowed.contains(&field) {
            return Err(Error::value(
                "order_by",
                "order_by is invalid",
                format!("order_by must be one of: {}, with an optional + or - prefix.", allowed.join(", ")),
            ));
        }
        Ok(format!("{field} {dir}, id {dir}"))
    }
}

/// An argument bound to a built statement.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// A statement built piece by piece, with `$n` placeholders numbered as arguments are added.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: &str) -> Sql {
        Sql { text: text.to_string(), args: Vec::new() }
    }

    /// Takes the arguments of `other`, whose text (with its placeholders) this one starts
    /// with.
    pub fn with_args_of(mut self, other: &Sql) -> Sql {
        self.args = other.args.clone();
        self
    }

    pub fn push(&mut self, s: &str) -> &mut Sql {
        self.text.push_str(s);
        self
    }

    /// Adds an argument and its placeholder.
    pub fn arg(&mut self, a: Arg) -> &mut Sql {
        self.args.push(a);
        let n = self.args.len();
        self.text.push_str(&format!("${n}"));
        self
    }

    /// ` AND col IN ($a, $b, …)` for non-empty `values`.
    pub fn and_in(&mut self, col: &str, values: &[String]) -> &mut Sql {
        if values.is_empty() {
            return self;
        }
        self.push(&format!(" AND {col} IN ("));
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.arg(Arg::Text(v.clone()));
        }
        self.push(")")
    }

    pub fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for a in &self.args {
            q = match a {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }
}
