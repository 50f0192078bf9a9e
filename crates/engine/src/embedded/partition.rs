//! `ENGINE_PARTITION_KEY` evaluated on a batch: which partition each row belongs to. The
//! embedded engine supports the keys Tinybird projects use — a column, or a date function of a
//! time column (`toYYYYMM`, `toYYYYMMDD`, `toDate`, `toStartOfMonth`, `toYear`, `toMonday`).

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, Datelike, Days, NaiveDate};

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

    /// The partition of every row of `batch`, as an id into `labels` (whose text is the
    /// partition's name: `202611`, `acme`, `all`). Ids are shared by every batch given the same
    /// `labels`, and each distinct value is formatted once, not once per row.
    pub fn assign(&self, batch: &RecordBatch, labels: &mut Labels) -> Result<Vec<u32>, String> {
        let n = batch.num_rows();
        match self {
            PartitionKey::None => Ok(vec![labels.id("all"); n]),
            PartitionKey::Column(c) => {
                let col = batch.column_by_name(c).ok_or_else(|| format!("no column '{c}'"))?;
                column_ids(col.as_ref(), labels)
            }
            PartitionKey::Date { function, column } => {
                let col = batch.column_by_name(column).ok_or_else(|| format!("no column '{column}'"))?;
                let (scale, read): (i64, Box<dyn Fn(usize) -> i64 + '_>) = match col.data_type() {
                    DataType::Date32 => {
                        let a = col.as_primitive::<Date32Type>();
                        (1, Box::new(move |i| i64::from(a.value(i)) * 86_400))
                    }
                    DataType::Timestamp(TimeUnit::Second, _) => {
                        let a = col.as_primitive::<TimestampSecondType>();
                        (1, Box::new(move |i| a.value(i)))
                    }
                    DataType::Timestamp(TimeUnit::Millisecond, _) => {
                        let a = col.as_primitive::<TimestampMillisecondType>();
                        (1_000, Box::new(move |i| a.value(i)))
                    }
                    DataType::Timestamp(TimeUnit::Microsecond, _) => {
                        let a = col.as_primitive::<TimestampMicrosecondType>();
                        (1_000_000, Box::new(move |i| a.value(i)))
                    }
                    DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                        let a = col.as_primitive::<TimestampNanosecondType>();
                        (1_000_000_000, Box::new(move |i| a.value(i)))
                    }
                    other => return Err(format!("partition key needs a date or time column, '{column}' is {other}")),
                };
                // Rows of one day share a partition: format each day once.
                let mut days: HashMap<i64, u32> = HashMap::new();
                (0..n)
                    .map(|i| {
                        if col.is_null(i) {
                            return Ok(labels.id("null"));
                        }
                        let day = read(i).div_euclid(scale).div_euclid(86_400);
                        if let Some(id) = days.get(&day) {
                            return Ok(*id);
                        }
                        let d = DateTime::from_timestamp(day * 86_400, 0).ok_or("timestamp out of range")?.date_naive();
                        let id = labels.id(&day_label(*function, d));
                        days.insert(day, id);
                        Ok(id)
                    })
                    .collect()
            }
        }
    }
}

/// The name of the partition a day falls in.
fn day_label(function: DateFn, d: NaiveDate) -> String {
    match function {
        DateFn::YearMonth => format!("{:04}{:02}", d.year(), d.month()),
        DateFn::YearMonthDay => format!("{:04}{:02}{:02}", d.year(), d.month(), d.day()),
        DateFn::Date => d.format("%Y-%m-%d").to_string(),
        DateFn::StartOfMonth => format!("{:04}-{:02}-01", d.year(), d.month()),
        DateFn::Year => format!("{:04}", d.year()),
        DateFn::Monday => {
            let back = u64::from(d.weekday().num_days_from_monday());
            d.checked_sub_days(Days::new(back)).unwrap_or(d).format("%Y-%m-%d").to_string()
        }
    }
}

/// Partition names and their ids.
#[derive(Debug, Default)]
pub struct Labels {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Labels {
    /// The id of `name`, added if new.
    pub fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    /// The name of `id`.
    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// How many partitions were seen.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether none was seen.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The partition id of every value of a primitive or string column (`null` for NULL).
fn column_ids(col: &dyn Array, labels: &mut Labels) -> Result<Vec<u32>, String> {
    use arrow_array::types::*;
    let n = col.len();
    let mut each = |f: &dyn Fn(usize) -> String| -> Vec<u32> {
        (0..n).map(|i| if col.is_null(i) { labels.id("null") } else { labels.id(&f(i)) }).collect()
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
            Ok((0..n).map(|i| if col.is_null(i) { labels.id("null") } else { labels.id(a.value(i)) }).collect())
        }
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
            let d = col.as_dictionary::<Int32Type>();
            let values = d.values().as_string::<i32>();
            let by_key: Vec<u32> = (0..values.len()).map(|k| labels.id(values.value(k))).collect();
            let null = labels.id("null");
            Ok((0..n).map(|i| if col.is_null(i) { null } else { by_key[d.keys().value(i) as usize] }).collect())
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
