//! Query results in the formats of the SQL API and endpoints: ClickHouse's `JSON`,
//! `JSONEachRow`, `CSV`, `CSVWithNames`, `TSV`, `TSVWithNames` and `Parquet`, with ClickHouse's
//! type names in `meta` and its value encodings (spec `analytics-api.md` §10.5).

use std::fmt::Write as _;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, SchemaRef, TimeUnit};
use serde_json::{Map, Number, Value as Json};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `JSON`: meta, data, rows, statistics.
    Json,
    /// `JSONEachRow` / ndjson.
    JsonEachRow,
    /// `CSV` without a header.
    Csv,
    /// `CSVWithNames`.
    CsvWithNames,
    /// `TSV` / `TabSeparated`.
    Tsv,
    /// `TSVWithNames`.
    TsvWithNames,
    /// `Parquet`.
    Parquet,
    /// Prometheus text exposition (spec §10.6).
    Prometheus,
}

/// The `output_format_*` request flags (spec §10.3).
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `output_format_json_quote_64bit_integers=1`: 64-bit integers as JSON strings.
    pub quote_64bit_integers: bool,
    /// `output_format_json_quote_denormals=1`: NaN and infinities as `"nan"`, `"inf"`, `"-inf"`
    /// (otherwise `null`).
    pub quote_denormals: bool,
    /// `output_format_parquet_string_as_string=1`: Parquet strings annotated as strings
    /// (otherwise plain binary, as ClickHouse writes them).
    pub parquet_string_as_string: bool,
}

impl Format {
    /// Parses a `FORMAT` name (case-sensitive, as ClickHouse).
    pub fn parse(name: &str) -> Option<Format> {
        Some(match name {
            "JSON" => Format::Json,
            "JSONEachRow" => Format::JsonEachRow,
            "CSV" => Format::Csv,
            "CSVWithNames" => Format::CsvWithNames,
            "TSV" | "TabSeparated" => Format::Tsv,
            "TSVWithNames" | "TabSeparatedWithNames" => Format::TsvWithNames,
            "Parquet" => Format::Parquet,
            "Prometheus" => Format::Prometheus,
            _ => return None,
        })
    }

    /// The status of a result this format cannot encode: the rows' fault for Prometheus
    /// (wrong columns or order), the server's otherwise.
    pub fn error_status(self) -> axum::http::StatusCode {
        match self {
            Format::Prometheus => axum::http::StatusCode::BAD_REQUEST,
            _ => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::JsonEachRow => "application/x-ndjson",
            Format::Csv | Format::CsvWithNames => "text/csv; charset=utf-8",
            Format::Tsv | Format::TsvWithNames => "text/tab-separated-values; charset=utf-8",
            Format::Parquet => "application/octet-stream",
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

impl Options {
    /// The flags as a request sets them (`1` is on; validation happens earlier).
    pub fn from_request(get: impl Fn(&str) -> Option<String>) -> Options {
        let on = |k: &str| get(k).is_some_and(|v| v == "1");
        Options {
            quote_64bit_integers: on("output_format_json_quote_64bit_integers"),
            quote_denormals: on("output_format_json_quote_denormals"),
            parquet_string_as_string: on("output_format_parquet_string_as_string"),
        }
    }
}

/// Statistics reported with a result.
#[derive(Debug, Clone, Copy, Default)]
pub struct Statistics {
    /// Seconds the query took.
    pub elapsed: f64,
    /// Rows scanned.
    pub rows_read: u64,
    /// Bytes scanned.
    pub bytes_read: u64,
}

/// The ClickHouse name of an Arrow type (the reverse of the storage mapping).
pub fn clickhouse_type(field: &Field) -> String {
    let base = type_name(field.data_type());
    if field.is_nullable() && !matches!(field.data_type(), DataType::List(_) | DataType::Map(..) | DataType::Struct(_))
    {
        format!("Nullable({base})")
    } else {
        base
    }
}

fn type_name(dt: &DataType) -> String {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "String".into(),
        DataType::Dictionary(_, v) if matches!(**v, DataType::Utf8) => "LowCardinality(String)".into(),
        DataType::Dictionary(_, v) => type_name(v),
        DataType::Int8 => "Int8".into(),
        DataType::Int16 => "Int16".into(),
        DataType::Int32 => "Int32".into(),
        DataType::Int64 => "Int64".into(),
        DataType::UInt8 => "UInt8".into(),
        DataType::UInt16 => "UInt16".into(),
        DataType::UInt32 => "UInt32".into(),
        DataType::UInt64 => "UInt64".into(),
        DataType::Float32 => "Float32".into(),
        DataType::Float64 => "Float64".into(),
        DataType::Boolean => "Bool".into(),
        DataType::Date32 | DataType::Date64 => "Date".into(),
        DataType::Timestamp(TimeUnit::Second, _) => "DateTime".into(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => "DateTime64(3)".into(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => "DateTime64(6)".into(),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => "DateTime64(9)".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("Decimal({p}, {s})"),
        DataType::FixedSizeBinary(n) => format!("FixedString({n})"),
        DataType::Binary | DataType::LargeBinary => "String".into(),
        DataType::List(f) | DataType::LargeList(f) => format!("Array({})", clickhouse_type(f)),
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!("Map({}, {})", clickhouse_type(&kv[0]), clickhouse_type(&kv[1]))
            }
            _ => "Map(String, String)".into(),
        },
        DataType::Struct(fields) => {
            format!(
                "Tuple({})",
                fields.iter().map(|f| format!("{} {}", f.name(), clickhouse_type(f))).collect::<Vec<_>>().join(", ")
            )
        }
        DataType::Null => "Nullable(Nothing)".into(),
        other => format!("{other}"),
    }
}

fn timestamp_text(v: i64, unit: TimeUnit) -> String {
    let (secs, nanos, digits) = match unit {
        TimeUnit::Second => (v, 0, 0),
        TimeUnit::Millisecond => (v.div_euclid(1000), (v.rem_euclid(1000) * 1_000_000) as u32, 3),
        TimeUnit::Microsecond => (v.div_euclid(1_000_000), (v.rem_euclid(1_000_000) * 1000) as u32, 6),
        TimeUnit::Nanosecond => (v.div_euclid(1_000_000_000), v.rem_euclid(1_000_000_000) as u32, 9),
    };
    let Some(dt) = chrono::DateTime::from_timestamp(secs, nanos) else { return v.to_string() };
    let mut s = dt.format("%Y-%m-%d %H:%M:%S").to_string();
    if digits > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(&frac[..digits]);
    }
    s
}

fn decimal_text(v: i128, scale: i8) -> String {
    if scale <= 0 {
        return v.to_string();
    }
    let neg = v < 0;
    let digits = v.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{}{int}.{frac}", if neg { "-" } else { "" })
}

/// One value as ClickHouse's JSON output writes it.
pub fn json_value(col: &ArrayRef, i: usize) -> Json {
    if col.is_null(i) {
        return Json::Null;
    }
    let num = |f: f64| Number::from_f64(f).map_or(Json::Null, Json::Number);
    match col.data_type() {
        DataType::Utf8 => Json::String(col.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Json::String(col.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Json::String(col.as_string_view().value(i).to_string()),
        DataType::Dictionary(k, _) => {
            let (keys, values): (usize, ArrayRef) = match **k {
                DataType::Int8 => {
                    let d = col.as_dictionary::<Int8Type>();
                    (d.keys().value(i) as usize, d.values().clone())
                }
                DataType::Int16 => {
                    let d = col.as_dictionary::<Int16Type>();
                    (d.keys().value(i) as usize, d.values().clone())
                }
                DataType::Int32 => {
                    let d = col.as_dictionary::<Int32Type>();
                    (d.keys().value(i) as usize, d.values().clone())
                }
                _ => {
                    let d = col.as_dictionary::<Int64Type>();
                    (d.keys().value(i) as usize, d.values().clone())
                }
            };
            json_value(&values, keys)
        }
        DataType::Int8 => Json::from(col.as_primitive::<Int8Type>().value(i)),
        DataType::Int16 => Json::from(col.as_primitive::<Int16Type>().value(i)),
        DataType::Int32 => Json::from(col.as_primitive::<Int32Type>().value(i)),
        DataType::Int64 => Json::from(col.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => Json::from(col.as_primitive::<UInt8Type>().value(i)),
        DataType::UInt16 => Json::from(col.as_primitive::<UInt16Type>().value(i)),
        DataType::UInt32 => Json::from(col.as_primitive::<UInt32Type>().value(i)),
        DataType::UInt64 => Json::from(col.as_primitive::<UInt64Type>().value(i)),
        DataType::Float32 => num(f64::from(col.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => num(col.as_primitive::<Float64Type>().value(i)),
        DataType::Boolean => Json::Bool(col.as_boolean().value(i)),
        DataType::Date32 => {
            let d = col.as_primitive::<Date32Type>().value(i);
            Json::String(
                chrono::DateTime::from_timestamp(i64::from(d) * 86_400, 0)
                    .map_or(d.to_string(), |t| t.format("%Y-%m-%d").to_string()),
            )
        }
        DataType::Timestamp(unit, _) => {
            let v = match unit {
                TimeUnit::Second => col.as_primitive::<TimestampSecondType>().value(i),
                TimeUnit::Millisecond => col.as_primitive::<TimestampMillisecondType>().value(i),
                TimeUnit::Microsecond => col.as_primitive::<TimestampMicrosecondType>().value(i),
                TimeUnit::Nanosecond => col.as_primitive::<TimestampNanosecondType>().value(i),
            };
            Json::String(timestamp_text(v, *unit))
        }
        DataType::Decimal128(_, s) => {
            let text = decimal_text(col.as_primitive::<Decimal128Type>().value(i), *s);
            if *s == 0 { Json::String(text) } else { serde_json::from_str(&text).unwrap_or(Json::String(text)) }
        }
        DataType::Decimal256(_, s) => Json::String({
            let v = col.as_primitive::<Decimal256Type>().value(i);
            let t = v.to_string();
            if *s <= 0 { t } else { t.parse::<i128>().map(|x| decimal_text(x, *s)).unwrap_or(t) }
        }),
        DataType::FixedSizeBinary(_) => {
            let b = col.as_fixed_size_binary().value(i);
            Json::String(String::from_utf8_lossy(b).trim_end_matches('\0').to_string())
        }
        DataType::Binary => Json::String(String::from_utf8_lossy(col.as_binary::<i32>().value(i)).into_owned()),
        DataType::List(_) => {
            let v = col.as_list::<i32>().value(i);
            Json::Array((0..v.len()).map(|j| json_value(&v, j)).collect())
        }
        DataType::Struct(_) => {
            let s = col.as_struct();
            Json::Array(s.columns().iter().map(|c| json_value(c, i)).collect())
        }
        DataType::Map(..) => {
            let m = col.as_map();
            let entries = m.value(i);
            let (k, v) = (entries.column(0), entries.column(1));
            let mut obj = Map::new();
            for j in 0..entries.len() {
                let key = match json_value(k, j) {
                    Json::String(s) => s,
                    other => other.to_string(),
                };
                obj.insert(key, json_value(v, j));
            }
            Json::Object(obj)
        }
        _ => Json::String(arrow_display(col, i)),
    }
}

fn arrow_display(col: &ArrayRef, i: usize) -> String {
    format!("{:?}", col.slice(i, 1))
}

/// A value as text (CSV/TSV): strings bare, NULL as `\N`, arrays as ClickHouse literals.
fn text_value(col: &ArrayRef, i: usize) -> Option<String> {
    match json_value(col, i) {
        Json::Null => None,
        Json::String(s) => Some(s),
        Json::Array(items) => Some(clickhouse_literal(&Json::Array(items))),
        other => Some(other.to_string()),
    }
}

fn clickhouse_literal(v: &Json) -> String {
    match v {
        Json::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Json::Array(items) => format!("[{}]", items.iter().map(clickhouse_literal).collect::<Vec<_>>().join(",")),
        Json::Null => "NULL".into(),
        other => other.to_string(),
    }
}

fn csv_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn tsv_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\t', "\\t").replace('\n', "\\n")
}

/// Encodes a result; `limit` says whether the query had a `LIMIT` (for
/// `rows_before_limit_at_least`).
pub fn encode(
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    stats: Statistics,
    limited: bool,
    options: Options,
) -> Result<Vec<u8>, String> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let json_value = |c: &ArrayRef, i: usize| -> Json {
        let v = json_value(c, i);
        match c.data_type() {
            DataType::Int64 | DataType::UInt64 if options.quote_64bit_integers && v.is_number() => {
                Json::String(v.to_string())
            }
            DataType::Float32 | DataType::Float64 if options.quote_denormals && v.is_null() && c.is_valid(i) => {
                let f = arrow_cast::cast(c, &DataType::Float64)
                    .map(|a| a.as_primitive::<arrow_array::types::Float64Type>().value(i))
                    .unwrap_or(f64::NAN);
                Json::String(if f.is_nan() {
                    "nan".into()
                } else if f > 0.0 {
                    "inf".into()
                } else {
                    "-inf".into()
                })
            }
            _ => v,
        }
    };
    match format {
        Format::Json => {
            let meta: Vec<Json> = schema
                .fields()
                .iter()
                .map(|f| serde_json::json!({"name": f.name(), "type": clickhouse_type(f)}))
                .collect();
            let mut data = Vec::with_capacity(rows);
            for b in batches {
                for i in 0..b.num_rows() {
                    let mut obj = Map::new();
                    for (c, name) in b.columns().iter().zip(&names) {
                        obj.insert((*name).to_string(), json_value(c, i));
                    }
                    data.push(Json::Object(obj));
                }
            }
            let mut doc = Map::new();
            doc.insert("meta".into(), Json::Array(meta));
            doc.insert("data".into(), Json::Array(data));
            doc.insert("rows".into(), Json::from(rows));
            if limited {
                doc.insert("rows_before_limit_at_least".into(), Json::from(rows));
            }
            doc.insert(
                "statistics".into(),
                serde_json::json!({"elapsed": stats.elapsed, "rows_read": stats.rows_read, "bytes_read": stats.bytes_read}),
            );
            serde_json::to_vec(&Json::Object(doc)).map_err(|e| e.to_string())
        }
        Format::JsonEachRow => {
            let mut out = Vec::new();
            for b in batches {
                for i in 0..b.num_rows() {
                    let mut obj = Map::new();
                    for (c, name) in b.columns().iter().zip(&names) {
                        obj.insert((*name).to_string(), json_value(c, i));
                    }
                    out.extend(serde_json::to_vec(&Json::Object(obj)).map_err(|e| e.to_string())?);
                    out.push(b'\n');
                }
            }
            Ok(out)
        }
        Format::Csv | Format::CsvWithNames | Format::Tsv | Format::TsvWithNames => {
            let csv = matches!(format, Format::Csv | Format::CsvWithNames);
            let sep = if csv { "," } else { "\t" };
            let mut out = String::new();
            if matches!(format, Format::CsvWithNames | Format::TsvWithNames) {
                let header: Vec<String> =
                    names.iter().map(|n| if csv { csv_quote(n) } else { tsv_escape(n) }).collect();
                out.push_str(&header.join(sep));
                out.push('\n');
            }
            for b in batches {
                for i in 0..b.num_rows() {
                    let cells: Vec<String> = b
                        .columns()
                        .iter()
                        .map(|c| match text_value(c, i) {
                            None => "\\N".to_string(),
                            Some(s) if csv => {
                                if matches!(json_value(c, i), Json::String(_) | Json::Array(_)) {
                                    csv_quote(&s)
                                } else {
                                    s
                                }
                            }
                            Some(s) => tsv_escape(&s),
                        })
                        .collect();
                    let _ = writeln!(out, "{}", cells.join(sep));
                }
            }
            Ok(out.into_bytes())
        }
        Format::Parquet => {
            // ClickHouse writes String columns as plain binary unless asked for strings.
            let to_binary = |t: &DataType| !options.parquet_string_as_string && matches!(t, DataType::Utf8);
            let fields: Vec<arrow_schema::Field> = schema
                .fields()
                .iter()
                .map(|f| {
                    let t = if to_binary(f.data_type()) { DataType::Binary } else { f.data_type().clone() };
                    f.as_ref().clone().with_data_type(t)
                })
                .collect();
            let out_schema = std::sync::Arc::new(arrow_schema::Schema::new(fields));
            let mut out = Vec::new();
            let mut w =
                parquet::arrow::ArrowWriter::try_new(&mut out, out_schema.clone(), None).map_err(|e| e.to_string())?;
            for b in batches {
                let columns = b
                    .columns()
                    .iter()
                    .zip(out_schema.fields())
                    .map(|(c, f)| arrow_cast::cast(c, f.data_type()).map_err(|e| e.to_string()))
                    .collect::<Result<Vec<_>, _>>()?;
                let b = RecordBatch::try_new(out_schema.clone(), columns).map_err(|e| e.to_string())?;
                w.write(&b).map_err(|e| e.to_string())?;
            }
            w.close().map_err(|e| e.to_string())?;
            Ok(out)
        }
        Format::Prometheus => prometheus(schema, batches),
    }
}

/// Rows `name`, `value`[, `help`, `timestamp`, `type`, `labels`] as Prometheus text: one
/// `# HELP`/`# TYPE` per metric, rows of one metric together.
fn prometheus(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>, String> {
    let index = |n: &str| schema.fields().iter().position(|f| f.name() == n);
    let (Some(name_at), Some(value_at)) = (index("name"), index("value")) else {
        return Err("Prometheus format requires the columns 'name' and 'value'".into());
    };
    let mut out = String::new();
    let mut done: Vec<String> = Vec::new();
    let mut current = String::new();
    for b in batches {
        for i in 0..b.num_rows() {
            let text = |at: Option<usize>| at.and_then(|a| text_value(b.column(a), i)).filter(|s| !s.is_empty());
            let name = text(Some(name_at)).ok_or("Prometheus format requires a name on every row")?;
            if name != current {
                if done.contains(&name) {
                    return Err("Prometheus format requires rows sorted by name".into());
                }
                if let Some(help) = text(index("help")) {
                    let _ = writeln!(out, "# HELP {name} {}", help.replace('\\', "\\\\").replace('\n', "\\n"));
                }
                if let Some(kind) = text(index("type")) {
                    let _ = writeln!(out, "# TYPE {name} {kind}");
                }
                done.push(name.clone());
                current = name.clone();
            }
            let labels = match index("labels").map(|a| json_value(b.column(a), i)) {
                Some(Json::Object(m)) if !m.is_empty() => {
                    let pairs: Vec<String> = m
                        .iter()
                        .map(|(k, v)| {
                            let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                            format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
                        })
                        .collect();
                    format!("{{{}}}", pairs.join(","))
                }
                _ => String::new(),
            };
            let value = text(Some(value_at)).unwrap_or_else(|| "NaN".into());
            match text(index("timestamp")) {
                Some(ts) => {
                    let _ = writeln!(out, "{name}{labels} {value} {ts}");
                }
                None => {
                    let _ = writeln!(out, "{name}{labels} {value}");
                }
            }
        }
    }
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_with_labels_timestamps_and_the_order_rule() {
        use arrow_array::builder::{MapBuilder, StringBuilder};
        use arrow_array::{Float64Array, Int64Array, StringArray};
        let mut labels = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for (k, v) in [("org", "acme"), ("org", "glo\"bex"), ("", "")] {
            if !k.is_empty() {
                labels.keys().append_value(k);
                labels.values().append_value(v);
            }
            labels.append(true).unwrap();
        }
        let batch = |names: Vec<&str>| {
            RecordBatch::try_from_iter(vec![
                ("name", std::sync::Arc::new(StringArray::from(names)) as ArrayRef),
                ("value", std::sync::Arc::new(Float64Array::from(vec![1.5, 2.0, 3.0])) as ArrayRef),
                ("timestamp", std::sync::Arc::new(Int64Array::from(vec![10, 20, 30])) as ArrayRef),
                ("labels", std::sync::Arc::new(labels.finish_cloned()) as ArrayRef),
            ])
            .unwrap()
        };
        let ok = batch(vec!["a", "a", "b"]);
        let out = String::from_utf8(prometheus(&ok.schema(), std::slice::from_ref(&ok)).unwrap()).unwrap();
        assert_eq!(out, "a{org=\"acme\"} 1.5 10\na{org=\"glo\\\"bex\"} 2.0 20\nb 3.0 30\n");
        let unsorted = batch(vec!["a", "b", "a"]);
        let err = prometheus(&unsorted.schema(), std::slice::from_ref(&unsorted)).unwrap_err();
        assert_eq!(err, "Prometheus format requires rows sorted by name");
    }

    #[test]
    fn texts() {
        assert_eq!(timestamp_text(1_793_527_200_500, TimeUnit::Millisecond), "2026-11-01 10:00:00.500");
        assert_eq!(timestamp_text(1_793_527_200, TimeUnit::Second), "2026-11-01 10:00:00");
        assert_eq!(decimal_text(-125, 2), "-1.25");
        assert_eq!(decimal_text(5, 2), "0.05");
    }
}
