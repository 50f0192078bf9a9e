//! `ENGINE_PARTITION_KEY` evaluated on a batch: which partition each row belongs to. The
//! embedded engine supports the keys Tinybird projects use — a column, or a date function of a
//! time column (`toYYYYMM`, `toYYYYMMDD`, `toDate`, `toStartOfMonth`, `toYear`, `toMonday`).

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, Datelike, Days};

/// How rows map to partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionKey {
    /// One partition for everything (no key, or `tuple()`).
    None,
    /// A date function of a time or date column.
    Date {
        /// The function.
        function: DateFn,
        /// The column it reads.
        column: String,
    },
    /// The value of a column.
    Column(String),
}

/// Supported date functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum DateFn {
    YearMonth,
    YearMonthDay,
    Date,
    StartOfMonth,
    Year,
    Monday,
}

impl PartitionKey {
    /// Parses a partition key expression; `Err` names what the embedded engine cannot do yet.
    pub fn parse(expr: Option<&str>) -> Result<Self, String> {
        let Some(e) = expr.map(str::trim).filter(|e| !e.is_empty() && *e != "tuple()") else {
            return Ok(PartitionKey::None);
        };
        let unsupported = || format!("ENGINE_PARTITION_KEY '{e}' is not supported by the embedded engine");
        if let Some((f, rest)) = e.split_once('(') {
            let arg = rest.strip_suffix(')').ok_or_else(unsupported)?.trim().trim_matches('`');
            if !arg.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Err(unsupported());
            }
            let function = match f.trim() {
                "toYYYYMM" => DateFn::YearMonth,
                "toYYYYMMDD" => DateFn::YearMonthDay,
                "toDate" => DateFn::Date,
                "toStartOfMonth" => DateFn::StartOfMonth,
                "toYear" => DateFn::Year,
                "toMonday" => DateFn::Monday,
                _ => return Err(unsupported()),
            };
            return Ok(PartitionKey::Date { function, column: arg.to_string() });
        }
        let col = e.trim_matches('`');
        if col.chars().all(|c| c.is_alphanumeric() || c == '_') {
            Ok(PartitionKey::Column(col.to_string()))
        } else {
            Err(unsupported())
        }
    }

    /// The partition of every row of `batch`, as text (`202611`, `acme`, `all`).
    pub fn values(&self, batch: &RecordBatch) -> Result<Vec<String>, String> {
        let n = batch.num_rows();
        match self {
            PartitionKey::None => Ok(vec!["all".to_string(); n]),
            PartitionKey::Column(c) => {
                let col = batch.column_by_name(c).ok_or_else(|| format!("no column '{c}'"))?;
                column_strings(col.as_ref())
            }
            PartitionKey::Date { function, column } => {
                let col = batch.column_by_name(column).ok_or_else(|| format!("no column '{column}'"))?;
                (0..n)
                    .map(|i| {
                        if col.is_null(i) {
                            return Ok("null".to_string());
                        }
                        let secs_nanos: (i64, u32) = match col.data_type() {
                            DataType::Date32 => (i64::from(col.as_primitive::<Date32Type>().value(i)) * 86_400, 0),
                            DataType::Timestamp(TimeUnit::Second, _) => {
                                (col.as_primitive::<TimestampSecondType>().value(i), 0)
                            }
                            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                                let v = col.as_primitive::<TimestampMillisecondType>().value(i);
                                (v.div_euclid(1000), 0)
                            }
                            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                                (col.as_primitive::<TimestampMicrosecondType>().value(i).div_euclid(1_000_000), 0)
                            }
                            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                                (col.as_primitive::<TimestampNanosecondType>().value(i).div_euclid(1_000_000_000), 0)
                            }
                            other => {
                                return Err(format!(
                                    "partition key needs a date or time column, '{column}' is {other}"
                                ));
                            }
                        };
                        let dt =
                            DateTime::from_timestamp(secs_nanos.0, secs_nanos.1).ok_or("timestamp out of range")?;
                        let d = dt.date_naive();
                        Ok(match function {
                            DateFn::YearMonth => format!("{:04}{:02}", d.year(), d.month()),
                            DateFn::YearMonthDay => format!("{:04}{:02}{:02}", d.year(), d.month(), d.day()),
                            DateFn::Date => d.format("%Y-%m-%d").to_string(),
                            DateFn::StartOfMonth => format!("{:04}-{:02}-01", d.year(), d.month()),
                            DateFn::Year => format!("{:04}", d.year()),
                            DateFn::Monday => {
                                let back = u64::from(d.weekday().num_days_from_monday());
                                d.checked_sub_days(Days::new(back)).unwrap_or(d).format("%Y-%m-%d").to_string()
                            }
                        })
                    })
                    .collect()
            }
        }
    }
}

/// Every value of a primitive or string column as text (`null` for NULL).
fn column_strings(col: &dyn Array) -> Result<Vec<String>, String> {
    use arrow_array::types::*;
    let n = col.len();
    let each = |f: &dyn Fn(usize) -> String| -> Vec<String> {
        (0..n).map(|i| if col.is_null(i) { "null".to_string() } else { f(i) }).collect()
    };
    macro_rules! prim {
        ($t:ty) => {{
            let a = col.as_primitive::<$t>();
            Ok(each(&|i| a.value(i).to_string()))
        }};
    }
    match col.data_type() {
        DataType::Utf8 => {
            let a = col.as_string::<i32>();
            Ok(each(&|i| a.value(i).to_string()))
        }
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
            let d = col.as_dictionary::<Int32Type>();
            let values = d.values().as_string::<i32>();
            Ok(each(&|i| values.value(d.keys().value(i) as usize).to_string()))
        }
        DataType::Int8 => prim!(Int8Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt64 => prim!(UInt64Type),
        DataType::Date32 => prim!(Date32Type),
        other => Err(format!("a partition key on a {other} column is not supported by the embedded engine")),
    }
}
