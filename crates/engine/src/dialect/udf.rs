//! The ClickHouse functions whose result depends on their argument's type, written as
//! DataFusion scalar functions (`ch_*`, registered in every query session by [`register`]).

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, TimestampSecondType};
use arrow_array::{Array, ArrayRef, Date32Array, PrimitiveArray, UInt64Array};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;

type Run = fn(&[ArrayRef], usize) -> Result<ArrayRef>;
type Ret = fn(&[DataType]) -> Result<DataType>;

#[derive(Debug)]
struct Udf {
    name: &'static str,
    signature: Signature,
    ret: Ret,
    run: Run,
}

/// Functions are told apart by name (each name is registered once).
impl PartialEq for Udf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.signature == other.signature
    }
}

impl Eq for Udf {}

impl std::hash::Hash for Udf {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.signature.hash(state);
    }
}

impl ScalarUDFImpl for Udf {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        (self.ret)(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out = (self.run)(&arrays, args.number_rows)?;
        if scalar && out.len() == 1 {
            return Ok(ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

fn udf(name: &'static str, arity: Option<usize>, ret: Ret, run: Run) -> ScalarUDF {
    let signature = match arity {
        Some(n) => Signature::any(n, Volatility::Immutable),
        None => Signature::variadic_any(Volatility::Immutable),
    };
    ScalarUDF::new_from_impl(Udf { name, signature, ret, run })
}

/// Registers the `ch_*` functions in `ctx`.
pub fn register(ctx: &SessionContext) {
    let utc_seconds = |_: &[DataType]| Ok(DataType::Timestamp(TimeUnit::Second, Some("UTC".into())));
    for f in [
        udf("ch_to_string", Some(1), |_| Ok(DataType::Utf8), to_string),
        udf("ch_length", Some(1), |_| Ok(DataType::UInt64), length),
        udf("ch_zero_if_null", Some(1), |t| Ok(t[0].clone()), zero_if_null),
        udf("ch_to_date", Some(1), |_| Ok(DataType::Date32), |a, _| to_date(a, false)),
        udf("ch_to_date_or_null", Some(1), |_| Ok(DataType::Date32), |a, _| to_date(a, true)),
        udf("ch_to_datetime", Some(1), utc_seconds, to_datetime),
        udf("ch_json_extract_string", None, |_| Ok(DataType::Utf8), |a, _| json(a, Extract::String)),
        udf("ch_json_extract_raw", None, |_| Ok(DataType::Utf8), |a, _| json(a, Extract::Raw)),
        udf("ch_json_extract_int", None, |_| Ok(DataType::Int64), |a, _| json(a, Extract::Int)),
        udf("ch_json_extract_float", None, |_| Ok(DataType::Float64), |a, _| json(a, Extract::Float)),
        udf("ch_json_extract_bool", None, |_| Ok(DataType::Boolean), |a, _| json(a, Extract::Bool)),
        udf("ch_json_has", None, |_| Ok(DataType::Boolean), |a, _| json(a, Extract::Has)),
        udf("ch_top_k", Some(2), |t| Ok(t[0].clone()), top_k),
        super::lambda::udf(),
    ] {
        ctx.register_udf(f);
    }
    ctx.register_udaf(super::uniq::udaf());
    for f in super::quantile::udafs() {
        ctx.register_udaf(f);
    }
}

fn exec(msg: String) -> DataFusionError {
    DataFusionError::Execution(msg)
}

/// Text of any array as ClickHouse prints it (`YYYY-MM-DD hh:mm:ss` for times).
fn to_string(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let a = &args[0];
    if let DataType::Timestamp(unit, _) = a.data_type() {
        let fraction = match unit {
            TimeUnit::Second => "",
            TimeUnit::Millisecond => "%.3f",
            TimeUnit::Microsecond => "%.6f",
            TimeUnit::Nanosecond => "%.9f",
        };
        let format = format!("%Y-%m-%d %H:%M:%S{fraction}");
        let options = arrow_cast::display::FormatOptions::default()
            .with_timestamp_format(Some(&format))
            .with_timestamp_tz_format(Some(&format));
        let fmt = arrow_cast::display::ArrayFormatter::try_new(a.as_ref(), &options)?;
        let mut b = StringBuilder::new();
        for i in 0..a.len() {
            if a.is_null(i) { b.append_null() } else { b.append_value(fmt.value(i).to_string()) }
        }
        return Ok(Arc::new(b.finish()));
    }
    Ok(arrow_cast::cast(a, &DataType::Utf8)?)
}

/// NULLs as the zero of the argument's own type (ClickHouse's `sum` over no rows is 0, and the
/// type must not widen as `coalesce(x, 0)` would).
fn zero_if_null(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let a = &args[0];
    if a.null_count() == 0 {
        return Ok(a.clone());
    }
    let zero = arrow_cast::cast(&arrow_array::Int64Array::from(vec![0]), a.data_type())?;
    let present = arrow_array::BooleanArray::from_iter((0..a.len()).map(|i| Some(a.is_valid(i))));
    Ok(arrow_select::zip::zip(&present, a, &arrow_array::Scalar::new(zero))?)
}

/// Bytes of a string, elements of an array or map.
fn length(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let a = &args[0];
    let out: UInt64Array = match a.data_type() {
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            (0..a.len()).map(|i| (!a.is_null(i)).then(|| l.value_length(i) as u64)).collect()
        }
        DataType::Map(..) => {
            let m = a.as_map();
            (0..a.len()).map(|i| (!a.is_null(i)).then(|| m.value_length(i) as u64)).collect()
        }
        _ => {
            let s = arrow_cast::cast(a, &DataType::Utf8).map_err(|_| exec(format!("length of {}", a.data_type())))?;
            let s = s.as_string::<i32>();
            (0..s.len()).map(|i| (!s.is_null(i)).then(|| s.value(i).len() as u64)).collect()
        }
    };
    Ok(Arc::new(out))
}

/// A date or date-time text (ClickHouse's forms) as a date-time.
fn parse_time(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t);
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.naive_utc());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0))
}

/// Seconds since the epoch of every row of a time, date, text or number array.
fn seconds(a: &ArrayRef) -> Result<Vec<Option<Result<i64, String>>>> {
    Ok(match a.data_type() {
        DataType::Timestamp(..) => {
            let s = arrow_cast::cast(a, &DataType::Timestamp(TimeUnit::Second, None))?;
            let s: &PrimitiveArray<TimestampSecondType> = s.as_primitive();
            s.iter().map(|v| v.map(Ok)).collect()
        }
        DataType::Date32 => {
            a.as_primitive::<Int32Type>().iter().map(|d| d.map(|d| Ok(i64::from(d) * 86_400))).collect()
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => {
            let s = arrow_cast::cast(a, &DataType::Utf8)?;
            s.as_string::<i32>()
                .iter()
                .map(|v| {
                    v.map(|v| {
                        parse_time(v)
                            .map(|t| t.and_utc().timestamp())
                            .ok_or_else(|| format!("Cannot parse '{v}' as a date or time"))
                    })
                })
                .collect()
        }
        t if t.is_integer() => {
            let s = arrow_cast::cast(a, &DataType::Int64)?;
            s.as_primitive::<arrow_array::types::Int64Type>().iter().map(|v| v.map(Ok)).collect()
        }
        other => return Err(exec(format!("cannot convert {other} to a date or time"))),
    })
}

fn to_datetime(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    let secs = seconds(&args[0])?;
    let values = secs.into_iter().map(|v| v.transpose().map_err(exec)).collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(PrimitiveArray::<TimestampSecondType>::from(values).with_timezone("UTC")))
}

fn to_date(args: &[ArrayRef], or_null: bool) -> Result<ArrayRef> {
    let a = &args[0];
    // A number below 65536 is a day number in ClickHouse, anything larger a Unix time.
    let integer = a.data_type().is_integer();
    let secs = seconds(a)?;
    let days = secs
        .into_iter()
        .map(|v| match v {
            None => Ok(None),
            Some(Ok(n)) if integer && n < 65_536 => Ok(Some(n as i32)),
            Some(Ok(s)) => Ok(Some(s.div_euclid(86_400) as i32)),
            Some(Err(_)) if or_null => Ok(None),
            Some(Err(e)) => Err(exec(e)),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(Date32Array::from(days)))
}

#[derive(Clone, Copy)]
enum Extract {
    String,
    Raw,
    Int,
    Float,
    Bool,
    Has,
}

/// `JSONExtract*(json, key_or_index, …)`: object keys by name, array elements by 1-based index
/// (negative from the end). Missing values give ClickHouse's defaults ('', 0, false).
fn json(args: &[ArrayRef], what: Extract) -> Result<ArrayRef> {
    let Some((doc, path)) = args.split_first() else { return Err(exec("JSONExtract needs a JSON argument".into())) };
    let doc = arrow_cast::cast(doc, &DataType::Utf8)?;
    let doc = doc.as_string::<i32>();
    let path: Vec<ArrayRef> = path.iter().map(|p| Ok(arrow_cast::cast(p, &DataType::Utf8)?)).collect::<Result<_>>()?;
    let steps = |i: usize| -> Vec<Option<String>> {
        path.iter().map(|p| (!p.is_null(i)).then(|| p.as_string::<i32>().value(i).to_string())).collect()
    };
    let found = |i: usize| -> Option<serde_json::Value> {
        if doc.is_null(i) {
            return None;
        }
        let mut v: serde_json::Value = serde_json::from_str(doc.value(i)).ok()?;
        for step in steps(i) {
            let step = step?;
            v = match v {
                serde_json::Value::Object(mut m) => m.remove(&step)?,
                serde_json::Value::Array(mut items) => {
                    let n: i64 = step.parse().ok()?;
                    let at = if n > 0 { n - 1 } else { items.len() as i64 + n };
                    if at < 0 || at as usize >= items.len() {
                        return None;
                    }
                    items.swap_remove(at as usize)
                }
                _ => return None,
            };
        }
        Some(v)
    };
    let n = doc.len();
    Ok(match what {
        Extract::String | Extract::Raw => {
            let mut b = StringBuilder::new();
            for i in 0..n {
                let v = found(i);
                b.append_value(match (what, v) {
                    (Extract::String, Some(serde_json::Value::String(s))) => s,
                    (Extract::Raw, Some(v)) => v.to_string(),
                    _ => String::new(),
                });
            }
            Arc::new(b.finish())
        }
        Extract::Int => {
            let mut b = Int64Builder::new();
            for i in 0..n {
                b.append_value(found(i).and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))).unwrap_or(0));
            }
            Arc::new(b.finish())
        }
        Extract::Float => {
            let mut b = Float64Builder::new();
            for i in 0..n {
                b.append_value(found(i).and_then(|v| v.as_f64()).unwrap_or(0.0));
            }
            Arc::new(b.finish())
        }
        Extract::Bool | Extract::Has => {
            let mut b = BooleanBuilder::new();
            for i in 0..n {
                let v = found(i);
                b.append_value(match what {
                    Extract::Has => v.is_some(),
                    _ => v.and_then(|v| v.as_bool()).unwrap_or(false),
                });
            }
            Arc::new(b.finish())
        }
    })
}

/// `topK(n)(x)` over the aggregated values: the `n` most frequent, most frequent first (ties in
/// value order). ClickHouse's answer is approximate past its reservoir; this one is exact.
fn top_k(args: &[ArrayRef], _: usize) -> Result<ArrayRef> {
    use datafusion::scalar::ScalarValue;
    let lists = args[0].as_list::<i32>();
    let counts = arrow_cast::cast(&args[1], &DataType::UInt64)?;
    let counts = counts.as_primitive::<arrow_array::types::UInt64Type>();
    let element = match args[0].data_type() {
        DataType::List(f) => f.data_type().clone(),
        other => return Err(exec(format!("topK over {other}"))),
    };
    let mut rows = Vec::with_capacity(lists.len());
    for i in 0..lists.len() {
        let values = if lists.is_null(i) { arrow_array::new_empty_array(&element) } else { lists.value(i) };
        let mut seen: std::collections::HashMap<ScalarValue, u64> = std::collections::HashMap::new();
        for j in 0..values.len() {
            *seen.entry(ScalarValue::try_from_array(&values, j)?).or_default() += 1;
        }
        let mut ranked: Vec<(ScalarValue, u64)> = seen.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal)));
        let n = if counts.is_null(i) { 10 } else { counts.value(i) as usize };
        let top: Vec<ScalarValue> = ranked.into_iter().take(n).map(|(v, _)| v).collect();
        rows.push(ScalarValue::List(ScalarValue::new_list_nullable(&top, &element)));
    }
    if rows.is_empty() {
        return Ok(arrow_array::new_empty_array(args[0].data_type()));
    }
    ScalarValue::iter_to_array(rows)
}
