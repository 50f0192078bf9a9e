//! Reading request bodies: typed fields out of a JSON object, with Clerk's errors naming the
//! parameter at fault.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A request body: a JSON object (an absent body is an empty object).
pub struct Body<'a>(pub &'a Map<String, Value>);

impl<'a> Body<'a> {
    /// Wraps `v`, which must be an object (or null).
    pub fn of(v: &'a Value) -> Result<Body<'a>> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        match v {
            Value::Object(m) => Ok(Body(m)),
            Value::Null => Ok(Body(EMPTY.get_or_init(Map::new))),
            _ => Err(Error::format("body", "The request body must be a JSON object.")),
        }
    }

    /// Whether `key` is present (even as null).
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// A string field; null or absent → `None`.
    pub fn str(&self, key: &str) -> Result<Option<String>> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Error::format(key, format!("{key} must be a string."))),
        }
    }

    /// A required, non-empty string field.
    pub fn required(&self, key: &str) -> Result<String> {
        match self.str(key)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(Error::missing(key)),
        }
    }

    /// A boolean field (also `"true"`/`"false"` as sent by forms).
    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(_) => Err(Error::format(key, format!("{key} must be a boolean."))),
        }
    }

    /// An integer field.
    pub fn int(&self, key: &str) -> Result<Option<i64>> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
            Some(Value::String(s)) if s.parse::<i64>().is_ok() => Ok(s.parse().ok()),
            Some(_) => Err(Error::format(key, format!("{key} must be an integer."))),
        }
    }

    /// An integer field within `range`.
    pub fn int_in(&self, key: &str, range: std::ops::RangeInclusive<i64>) -> Result<Option<i64>> {
        match self.int(key)? {
            Some(n) if !range.contains(&n) => Err(Error::value(
                key,
                format!("{key} is out of range"),
                format!("{key} must be between {} and {}.", range.start(), range.end()),
            )),
            other => Ok(other),
        }
    }

    /// An object field (metadata); null or absent → `None`.
    pub fn object(&self, key: &str) -> Result<Option<Map<String, Value>>> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m.clone())),
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) => Ok(Some(m)),
                _ => Err(Error::format(key, format!("{key} must be a JSON object."))),
            },
            Some(_) => Err(Error::format(key, format!("{key} must be a JSON object."))),
        }
    }

    /// A list of strings (a single string counts as a list of one).
    pub fn strings(&self, key: &str) -> Result<Vec<String>> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(String::from)
                        .ok_or_else(|| Error::format(key, format!("{key} must be a list of strings.")))
                })
                .collect(),
            Some(_) => Err(Error::format(key, format!("{key} must be a list of strings."))),
        }
    }
}

/// Deep merge (Clerk's metadata PATCH): objects merge key by key, `null` deletes a key, any
/// other value replaces.
pub fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        match (target.get_mut(k), v) {
            (_, Value::Null) => {
                target.remove(k);
            }
            (Some(Value::Object(t)), Value::Object(p)) => merge(t, p),
            _ => {
                target.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The JSON text of a metadata object.
pub fn text(m: &Map<String, Value>) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".into())
}

/// Seconds from milliseconds.
pub fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_deep_and_null_deletes() {
        let mut t = serde_json::json!({"a": {"b": 1, "c": 2}, "d": 3}).as_object().unwrap().clone();
        let p = serde_json::json!({"a": {"b": 5, "c": null}, "d": null, "e": [1]}).as_object().unwrap().clone();
        merge(&mut t, &p);
        assert_eq!(Value::Object(t), serde_json::json!({"a": {"b": 5}, "e": [1]}));
    }
}
