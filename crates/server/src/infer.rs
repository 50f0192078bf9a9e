//! A data source inferred from the first events sent to an unknown name (spec
//! `analytics-api.md` §12.4): one column per leaf path, typed from the values seen.

use std::collections::BTreeMap;

use serde_json::Value as Json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    DateTime,
    Int,
    Float,
    Bool,
    ArrayOf(Scalar),
    JsonText,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    String,
    Int,
    Float,
    Bool,
}

#[derive(Debug, Default)]
struct Column {
    path: Vec<String>,
    each: bool,
    kind: Option<Kind>,
    seen: usize,
    nulls: bool,
}

fn looks_like_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b' ' || b[10] == b'T')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
}

fn scalar_kind(v: &Json) -> Option<Scalar> {
    match v {
        Json::String(_) => Some(Scalar::String),
        Json::Bool(_) => Some(Scalar::Bool),
        Json::Number(n) if n.is_i64() || n.is_u64() => Some(Scalar::Int),
        Json::Number(_) => Some(Scalar::Float),
        _ => None,
    }
}

fn merge(a: Option<Kind>, b: Kind) -> Kind {
    match (a, b) {
        (None, b) => b,
        (Some(a), b) if a == b => a,
        (Some(Kind::Int), Kind::Float) | (Some(Kind::Float), Kind::Int) => Kind::Float,
        (Some(Kind::DateTime), Kind::String) | (Some(Kind::String), Kind::DateTime) => Kind::String,
        _ => Kind::JsonText,
    }
}

fn visit(v: &Json, path: &mut Vec<String>, cols: &mut BTreeMap<String, Column>, order: &mut Vec<String>) {
    match v {
        Json::Object(o) => {
            for (k, child) in o {
                path.push(k.clone());
                visit(child, path, cols, order);
                path.pop();
            }
        }
        leaf => {
            let name: String = path.join("_");
            if !cols.contains_key(&name) {
                order.push(name.clone());
            }
            let col = cols.entry(name).or_insert_with(|| Column { path: path.clone(), ..Column::default() });
            col.seen += 1;
            let kind = match leaf {
                Json::Null => {
                    col.nulls = true;
                    return;
                }
                Json::String(s) if looks_like_datetime(s) => Kind::DateTime,
                Json::String(_) => Kind::String,
                Json::Bool(_) => Kind::Bool,
                Json::Number(n) if n.is_i64() || n.is_u64() => Kind::Int,
                Json::Number(_) => Kind::Float,
                Json::Array(items) => {
                    let kinds: Vec<Option<Scalar>> = items.iter().map(scalar_kind).collect();
                    match kinds.first().copied().flatten() {
                        Some(first) if kinds.iter().all(|k| *k == Some(first)) => {
                            col.each = true;
                            Kind::ArrayOf(first)
                        }
                        None if items.is_empty() => {
                            col.each = true;
                            Kind::ArrayOf(Scalar::String)
                        }
                        _ => Kind::JsonText,
                    }
                }
                Json::Object(_) => Kind::JsonText,
            };
            col.kind = Some(merge(col.kind, kind));
            if matches!(col.kind, Some(Kind::JsonText)) {
                col.each = false;
            }
        }
    }
}

/// The `.datasource` text for events whose first lines are `lines`; `None` when no line is a
/// JSON object.
pub(crate) fn datasource_text(lines: &[&str]) -> Option<String> {
    let objects: Vec<Json> =
        lines.iter().filter_map(|l| serde_json::from_str::<Json>(l).ok()).filter(Json::is_object).take(100).collect();
    if objects.is_empty() {
        return None;
    }
    let mut cols: BTreeMap<String, Column> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for o in &objects {
        visit(o, &mut Vec::new(), &mut cols, &mut order);
    }
    let mut defs = Vec::new();
    for name in order {
        let c = &cols[&name];
        let nullable = c.nulls || c.seen < objects.len();
        let base = match c.kind.unwrap_or(Kind::String) {
            Kind::String | Kind::JsonText => "String",
            Kind::DateTime => "DateTime64(3)",
            Kind::Int => "Int64",
            Kind::Float => "Float64",
            Kind::Bool => "UInt8",
            Kind::ArrayOf(s) => match s {
                Scalar::String => "Array(String)",
                Scalar::Int => "Array(Int64)",
                Scalar::Float => "Array(Float64)",
                Scalar::Bool => "Array(UInt8)",
            },
        };
        let ty = if nullable && !base.starts_with("Array") { format!("Nullable({base})") } else { base.to_string() };
        let path = c
            .path
            .iter()
            .map(|p| {
                if p.chars().all(|ch| ch.is_alphanumeric() || ch == '_') {
                    format!(".{p}")
                } else {
                    format!(".['{p}']")
                }
            })
            .collect::<String>();
        let each = if c.each { "[:]" } else { "" };
        let safe: String = name.chars().map(|ch| if ch.is_alphanumeric() || ch == '_' { ch } else { '_' }).collect();
        defs.push(format!("    `{safe}` {ty} `json:${path}{each}`"));
    }
    Some(format!("SCHEMA >\n{}\n\nENGINE \"MergeTree\"\nENGINE_SORTING_KEY \"tuple()\"\n", defs.join(",\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_types_paths_and_nullability() {
        let text = datasource_text(&[
            r#"{"ts":"2026-11-01 10:00:00","n":1,"x":1.5,"ok":true,"tags":["a"],"payload":{"path":"/"},"mixed":[1,"a"]}"#,
            r#"{"ts":"2026-11-01 10:00:01","n":2,"x":2,"ok":false,"tags":[],"payload":{"path":"/b"},"mixed":[]}"#,
        ])
        .unwrap();
        assert!(text.contains("`ts` DateTime64(3) `json:$.ts`"), "{text}");
        assert!(text.contains("`n` Int64 `json:$.n`"), "{text}");
        assert!(text.contains("`x` Float64 `json:$.x`"), "{text}");
        assert!(text.contains("`ok` UInt8 `json:$.ok`"), "{text}");
        assert!(text.contains("`tags` Array(String) `json:$.tags[:]`"), "{text}");
        assert!(text.contains("`payload_path` String `json:$.payload.path`"), "{text}");
        assert!(text.contains("`mixed` String `json:$.mixed`"), "{text}");
        let text = datasource_text(&[r#"{"a":1}"#, r#"{"b":"x"}"#]).unwrap();
        assert!(text.contains("`a` Nullable(Int64)"), "{text}");
    }
}
