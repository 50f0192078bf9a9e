//! From one NDJSON line to one row of a data source: each column's value found through its
//! JSONPath, defaulted or converted — or the whole row quarantined with every reason
//! (spec `analytics-api.md` §12.2, §12.5).

use std::borrow::Cow;

use datafiles::{ChType, ColumnDefault, Datasource, JsonPath, PathStep};
use serde_json::Value as Json;

use super::value::{Cell, convert, nanos_per_unit};

/// How a column gets its value when the event has none.
#[derive(Debug, Clone)]
enum Fallback {
    /// A literal `DEFAULT`, already converted.
    Value(Cell),
    /// `DEFAULT now()`-style expressions evaluated at ingestion time.
    Now,
    Today,
    /// No default: NULL for nullable columns, `[]` for `[:]` paths, else quarantine.
    None,
}

#[derive(Debug, Clone)]
struct Plan {
    name: String,
    ty: ChType,
    /// `None` for a column that only ever takes its default.
    path: Option<JsonPath>,
    fallback: Fallback,
}

/// A row that could not be stored, with what was received and why (the `_quarantine` row).
#[derive(Debug, Clone, PartialEq)]
pub struct Quarantined {
    /// The raw text of each input column's value (JSON text for arrays/objects), `None` when absent.
    pub values: Vec<Option<String>>,
    /// Columns that failed.
    pub error_columns: Vec<String>,
    /// One message per failed column (or one for a line that is not an object).
    pub errors: Vec<String>,
}

/// Converts NDJSON lines into rows of one data source's input columns.
#[derive(Debug, Clone)]
pub struct RowConverter {
    plans: Vec<Plan>,
    /// The top-level keys the paths start with: only their values are materialized.
    fields: Vec<String>,
    /// Some path needs the whole event (`$`, or one that does not start with a key).
    whole: bool,
}

/// An event as far as the converter read it.
enum Event {
    /// Everything.
    Whole(Json),
    /// The values of [`RowConverter::fields`], by position (`None` when absent).
    Fields(Vec<Option<Json>>),
}

/// Why a data source cannot take events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConverterError {
    /// It has no `json:` paths (it is a CSV data source).
    #[error("Data Source must be of type JSON")]
    NotJson,
    /// A `DEFAULT` Aviary cannot evaluate at ingestion.
    #[error("column '{column}': DEFAULT {expr} is not supported by the embedded engine")]
    UnsupportedDefault {
        /// The column.
        column: String,
        /// Its expression.
        expr: String,
    },
}

/// Parses a ClickHouse literal used as a `DEFAULT`: `'text'`, numbers, `NULL`, `[]`, `true`.
pub fn default_literal(expr: &str) -> Option<Json> {
    let e = expr.trim();
    if let Some(body) = e.strip_prefix('\'').and_then(|b| b.strip_suffix('\'')) {
        let mut out = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next()? {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '0' => out.push('\0'),
                    other => out.push(other),
                }
            } else {
                out.push(c);
            }
        }
        return Some(Json::String(out));
    }
    match e.to_ascii_lowercase().as_str() {
        "null" => return Some(Json::Null),
        "true" => return Some(Json::Bool(true)),
        "false" => return Some(Json::Bool(false)),
        "[]" | "array()" => return Some(Json::Array(Vec::new())),
        _ => {}
    }
    serde_json::from_str::<Json>(e).ok().filter(|j| j.is_number())
}

impl RowConverter {
    /// The converter for `ds`'s columns that are read from events (computed columns excluded).
    pub fn new(ds: &Datasource) -> Result<Self, ConverterError> {
        if !ds.is_ndjson() {
            return Err(ConverterError::NotJson);
        }
        Self::build(ds)
    }

    /// The converter for CSV rows of `ds` (columns by position); also serves NDJSON sources.
    pub fn for_csv(ds: &Datasource) -> Result<Self, ConverterError> {
        Self::build(ds)
    }

    fn build(ds: &Datasource) -> Result<Self, ConverterError> {
        let mut plans = Vec::new();
        for c in &ds.columns {
            let fallback = match &c.default {
                Some(ColumnDefault::Materialized(_) | ColumnDefault::Alias(_)) => continue,
                Some(ColumnDefault::Default(expr)) => {
                    let lower = expr.trim().to_ascii_lowercase();
                    if lower == "now()" || lower.starts_with("now64(") {
                        Fallback::Now
                    } else if lower == "today()" {
                        Fallback::Today
                    } else {
                        let unsupported =
                            || ConverterError::UnsupportedDefault { column: c.name.clone(), expr: expr.clone() };
                        let value = default_literal(expr).ok_or_else(unsupported)?;
                        Fallback::Value(convert(&c.ty, &value).map_err(|_| unsupported())?)
                    }
                }
                None => Fallback::None,
            };
            plans.push(Plan { name: c.name.clone(), ty: c.ty.clone(), path: c.json_path.clone(), fallback });
        }
        let mut fields: Vec<String> = Vec::new();
        let mut whole = false;
        for path in plans.iter().filter_map(|p| p.path.as_ref()) {
            match path.steps.first() {
                Some(PathStep::Key(k)) if !fields.contains(k) => fields.push(k.clone()),
                Some(PathStep::Key(_)) => {}
                _ => whole = true,
            }
        }
        Ok(RowConverter { plans, fields, whole })
    }

    /// Parses a line: the fields the paths read, or the whole event when a path needs it.
    fn parse(&self, line: &str) -> Result<Event, Quarantined> {
        let invalid = |e: serde_json::Error| {
            let prefix: String = line.chars().take(1024).collect();
            self.whole_line(format!("invalid JSON: {e}: {prefix}"))
        };
        if self.whole || !line.trim_start().starts_with('{') {
            return match serde_json::from_str(line) {
                Ok(j @ Json::Object(_)) => Ok(Event::Whole(j)),
                Ok(_) => Err(self.whole_line("line is not a JSON object".to_string())),
                Err(e) => Err(invalid(e)),
            };
        }
        let mut de = serde_json::Deserializer::from_str(line);
        let values = serde::de::DeserializeSeed::deserialize(Fields(&self.fields), &mut de).map_err(invalid)?;
        de.end().map_err(invalid)?;
        Ok(Event::Fields(values))
    }

    /// The value at `path` in a parsed event.
    fn find<'a>(&self, event: &'a Event, path: &JsonPath) -> Option<Cow<'a, Json>> {
        match event {
            Event::Whole(json) => extract(json, path),
            Event::Fields(values) => {
                let (Some(PathStep::Key(first)), rest) = (path.steps.first(), path.steps.get(1..).unwrap_or_default())
                else {
                    return None;
                };
                let at = self.fields.iter().position(|f| f == first)?;
                walk(values[at].as_ref()?, rest)
            }
        }
    }

    /// Names of the columns [`convert`](Self::convert) produces, in order.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.plans.iter().map(|p| p.name.as_str())
    }

    /// Converts one line; `now` (nanoseconds since the epoch) feeds `DEFAULT now()`.
    pub fn convert(&self, line: &str, now_nanos: i64) -> Result<Vec<Cell>, Quarantined> {
        let event = self.parse(line)?;
        let mut row = Vec::with_capacity(self.plans.len());
        let mut failed: Vec<(String, String)> = Vec::new();
        for plan in &self.plans {
            let found = plan.path.as_ref().and_then(|p| self.find(&event, p));
            let cell = match found.as_deref() {
                Some(v) if !v.is_null() => convert(&plan.ty, v),
                _ => self.fallback(plan, now_nanos),
            };
            match cell {
                Ok(c) => row.push(c),
                Err(e) => failed.push((plan.name.clone(), e)),
            }
        }
        row_or_quarantine(row, failed, || {
            self.plans
                .iter()
                .map(|plan| match plan.path.as_ref().and_then(|p| self.find(&event, p)).as_deref() {
                    None | Some(Json::Null) => None,
                    Some(Json::String(s)) => Some(s.clone()),
                    Some(other) => Some(other.to_string()),
                })
                .collect()
        })
    }

    /// Converts one CSV record: `fields` are the input columns in order; `None` (or `\N`) is a
    /// missing value. Text is converted as a JSON string would be; arrays may be written as JSON
    /// (`["a","b"]`) or ClickHouse literals (`['a','b']`).
    pub fn convert_fields(&self, fields: &[Option<&str>], now_nanos: i64) -> Result<Vec<Cell>, Quarantined> {
        if fields.len() != self.plans.len() {
            let raw: Vec<Option<String>> =
                (0..self.plans.len()).map(|i| fields.get(i).copied().flatten().map(str::to_string)).collect();
            return Err(Quarantined {
                values: raw,
                error_columns: Vec::new(),
                errors: vec![format!("expected {} columns, found {}", self.plans.len(), fields.len())],
            });
        }
        let mut row = Vec::with_capacity(self.plans.len());
        let mut failed: Vec<(String, String)> = Vec::new();
        for (plan, field) in self.plans.iter().zip(fields) {
            let value = field.filter(|f| *f != "\\N").map(|text| {
                if matches!(plan.ty.base(), ChType::Array(_) | ChType::Map(..) | ChType::Tuple(_)) {
                    serde_json::from_str::<Json>(text)
                        .or_else(|_| serde_json::from_str::<Json>(&text.replace('\'', "\"")))
                        .unwrap_or_else(|_| Json::String(text.to_string()))
                } else {
                    Json::String(text.to_string())
                }
            });
            let empty_non_string = field.is_some_and(str::is_empty) && !plan.ty.is_string();
            let cell = match value {
                Some(v) if !empty_non_string => convert(&plan.ty, &v),
                _ => self.fallback(plan, now_nanos),
            };
            match cell {
                Ok(c) => row.push(c),
                Err(e) => failed.push((plan.name.clone(), e)),
            }
        }
        row_or_quarantine(row, failed, || fields.iter().map(|f| f.map(str::to_string)).collect())
    }

    fn fallback(&self, plan: &Plan, now_nanos: i64) -> Result<Cell, String> {
        match &plan.fallback {
            Fallback::Value(c) => Ok(c.clone()),
            Fallback::Now => Ok(now_cell(&plan.ty, now_nanos)),
            Fallback::Today => Ok(Cell::Days((now_nanos.div_euclid(86_400_000_000_000)) as i32)),
            Fallback::None if plan.ty.is_nullable() => Ok(Cell::Null),
            Fallback::None if plan.path.as_ref().is_some_and(|p| p.steps.contains(&PathStep::Each)) => {
                Ok(Cell::List(Vec::new()))
            }
            Fallback::None => Err("missing value for non-nullable column".to_string()),
        }
    }

    fn whole_line(&self, error: String) -> Quarantined {
        Quarantined { values: vec![None; self.plans.len()], error_columns: Vec::new(), errors: vec![error] }
    }
}

fn now_cell(ty: &ChType, now_nanos: i64) -> Cell {
    match ty.base() {
        ChType::DateTime64 { precision, .. } => Cell::Time(now_nanos.div_euclid(nanos_per_unit(*precision))),
        ChType::Date | ChType::Date32 => Cell::Days(now_nanos.div_euclid(86_400_000_000_000) as i32),
        _ => Cell::Time(now_nanos.div_euclid(1_000_000_000)),
    }
}

/// The value at `path` in `event` (borrowed when it is there as is): `$` is the whole event as
/// JSON text; `[:]` maps the rest of the path over an array. `None` when a key is missing.
pub fn extract<'a>(event: &'a Json, path: &JsonPath) -> Option<Cow<'a, Json>> {
    if path.steps.is_empty() {
        return Some(Cow::Owned(Json::String(event.to_string())));
    }
    walk(event, &path.steps)
}

fn walk<'a>(v: &'a Json, steps: &[PathStep]) -> Option<Cow<'a, Json>> {
    let Some((first, rest)) = steps.split_first() else { return Some(Cow::Borrowed(v)) };
    match first {
        PathStep::Key(k) => walk(v.as_object()?.get(k)?, rest),
        PathStep::Each => {
            let items = v.as_array()?;
            let mapped = items.iter().map(|i| walk(i, rest).map_or(Json::Null, Cow::into_owned)).collect();
            Some(Cow::Owned(Json::Array(mapped)))
        }
    }
}

/// Reads a JSON object keeping only the values of the given top-level keys (the last one when
/// a key repeats); everything else is checked for syntax and skipped without being built.
struct Fields<'k>(&'k [String]);

impl<'de> serde::de::DeserializeSeed<'de> for Fields<'_> {
    type Value = Vec<Option<Json>>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Fields<'_> {
    type Value = Vec<Option<Json>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = vec![None; self.0.len()];
        while let Some(slot) = map.next_key_seed(KeyIndex(self.0))? {
            match slot {
                Some(i) => out[i] = Some(map.next_value::<Json>()?),
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// A key, as its position among the wanted keys (without allocating it).
struct KeyIndex<'k>(&'k [String]);

impl<'de> serde::de::DeserializeSeed<'de> for KeyIndex<'_> {
    type Value = Option<usize>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for KeyIndex<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|k| k == key))
    }
}

/// The converted row when every column converted; otherwise the quarantine record, with the raw
/// input `values` and one error per failed `(column, error)`.
fn row_or_quarantine(
    row: Vec<Cell>,
    failed: Vec<(String, String)>,
    values: impl FnOnce() -> Vec<Option<String>>,
) -> Result<Vec<Cell>, Quarantined> {
    if failed.is_empty() {
        return Ok(row);
    }
    let (error_columns, errors) = failed.into_iter().unzip();
    Err(Quarantined { values: values(), error_columns, errors })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Datasource {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/web-analytics/datasources/events.datasource"
        ))
        .unwrap();
        let p = datafiles::Project::from_files(vec![datafiles::SourceFile { path: "events.datasource".into(), text }])
            .unwrap();
        p.datasources.into_iter().next().unwrap()
    }

    #[test]
    fn fixture_lines_convert_or_quarantine() {
        let conv = RowConverter::new(&events()).unwrap();
        let fixture = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/web-analytics/fixtures/events.ndjson"
        ))
        .unwrap();
        let results: Vec<_> = fixture.lines().map(|l| conv.convert(l, 0)).collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 5);
        let bad: Vec<&Quarantined> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(bad.len(), 3);
        assert_eq!(bad[0].error_columns, ["timestamp"]);
        assert_eq!(bad[0].errors, ["value 'not a date' cannot be parsed as DateTime64(3)"]);
        assert_eq!(bad[0].values[0].as_deref(), Some("not a date"));
        assert_eq!(bad[1].error_columns, ["duration_ms"]);
        assert_eq!(bad[1].errors, ["value '-5' cannot be parsed as UInt32"]);
        assert!(bad[2].errors[0].starts_with("invalid JSON: "), "{:?}", bad[2]);
        assert!(bad[2].error_columns.is_empty());
        let good = results[0].as_ref().unwrap();
        assert_eq!(good[1], Cell::Str("acme".into()));
        assert_eq!(good[7], Cell::List(vec![Cell::Str("home".into())]));
    }

    #[test]
    fn only_the_read_fields_are_built_but_the_whole_line_is_checked() {
        let text = "SCHEMA >\n    `a` Int32 `json:$.a`,\n    `b` String `json:$.o.b`\n";
        let p = datafiles::Project::from_files(vec![datafiles::SourceFile {
            path: "d.datasource".into(),
            text: text.into(),
        }])
        .unwrap();
        let conv = RowConverter::new(&p.datasources[0]).unwrap();
        let row = conv.convert(r#"{"a":1,"x":{"deep":[1,{"z":null}]},"o":{"b":"k\"ey"},"a":2}"#, 0).unwrap();
        assert_eq!(row, [Cell::Int(2), Cell::Str("k\"ey".into())], "the last of a repeated key wins");
        for bad in [r#"{"a":1,"x":[1,}"#, r#"{"a":1,"o":{"b":"v"}} trailing"#, r#"{"a":1"#] {
            let q = conv.convert(bad, 0).unwrap_err();
            assert!(q.errors[0].starts_with("invalid JSON: "), "{bad}: {:?}", q.errors);
        }
        assert_eq!(conv.convert(" [1]", 0).unwrap_err().errors, ["line is not a JSON object"]);
        let q = conv.convert(r#"{"a":"x","o":{"b":[1]}}"#, 0).unwrap_err();
        assert_eq!(q.values, [Some("x".to_string()), Some("[1]".to_string())], "raw values of a quarantined row");
    }

    #[test]
    fn defaults_nulls_and_paths() {
        let text = "SCHEMA >\n    `a` String `json:$.p.a` DEFAULT 'x',\n    `n` Nullable(Int32) `json:$.n`,\n    `t` Array(String) `json:$.items[:].name`,\n    `raw` String `json:$`,\n    `at` DateTime DEFAULT now()\n";
        let p = datafiles::Project::from_files(vec![datafiles::SourceFile {
            path: "d.datasource".into(),
            text: text.into(),
        }])
        .unwrap();
        let conv = RowConverter::new(&p.datasources[0]).unwrap();
        let row = conv.convert(r#"{"items":[{"name":"i1"},{"name":"i2"}]}"#, 5_000_000_000).unwrap();
        assert_eq!(row[0], Cell::Str("x".into()));
        assert_eq!(row[1], Cell::Null);
        assert_eq!(row[2], Cell::List(vec![Cell::Str("i1".into()), Cell::Str("i2".into())]));
        assert_eq!(row[3], Cell::Str(r#"{"items":[{"name":"i1"},{"name":"i2"}]}"#.into()));
        assert_eq!(row[4], Cell::Time(5));
        assert_eq!(conv.convert("[1,2]", 0).unwrap_err().errors, ["line is not a JSON object"]);
    }
}
