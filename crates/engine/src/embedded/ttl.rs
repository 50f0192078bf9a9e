//! `ENGINE_TTL`: when a row expires. The embedded engine supports the forms Tinybird projects
//! use: a time column (optionally through `toDateTime`/`toDate`) plus an interval, written
//! `toIntervalDay(90)` or `INTERVAL 90 DAY`.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{DataType, TimeUnit};

/// A parsed TTL: rows whose `column + seconds` is in the past expire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ttl {
    /// The time column.
    pub column: String,
    /// The interval, in seconds (months count as 30 days, years as 365).
    pub seconds: i64,
}

fn unit_seconds(unit: &str) -> Option<i64> {
    Some(match unit.to_ascii_uppercase().trim_end_matches('S') {
        "SECOND" => 1,
        "MINUTE" => 60,
        "HOUR" => 3_600,
        "DAY" => 86_400,
        "WEEK" => 7 * 86_400,
        "MONTH" => 30 * 86_400,
        "QUARTER" => 91 * 86_400,
        "YEAR" => 365 * 86_400,
        _ => return None,
    })
}

impl Ttl {
    /// Parses `toDateTime(timestamp) + toIntervalDay(365)` or `timestamp + INTERVAL 90 DAY`.
    pub fn parse(text: &str) -> Result<Ttl, String> {
        let unsupported = || format!("ENGINE_TTL '{text}' is not supported by the embedded engine");
        let (lhs, rhs) = text.split_once('+').ok_or_else(unsupported)?;
        let lhs = lhs.trim();
        let column = match lhs.split_once('(') {
            Some((f, rest)) if matches!(f.trim(), "toDateTime" | "toDate" | "toDateTime64") => {
                rest.split(',').next().unwrap_or("").trim_end_matches(')').trim().trim_matches('`').to_string()
            }
            Some(_) => return Err(unsupported()),
            None => lhs.trim_matches('`').to_string(),
        };
        if column.is_empty() || !column.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(unsupported());
        }
        let rhs = rhs.trim();
        let seconds = if let Some(rest) = rhs.strip_prefix("toInterval") {
            let (unit, n) = rest.split_once('(').ok_or_else(unsupported)?;
            let n: i64 = n.trim_end_matches(')').trim().parse().map_err(|_| unsupported())?;
            n * unit_seconds(unit).ok_or_else(unsupported)?
        } else if rhs.len() > 8 && rhs[..8].eq_ignore_ascii_case("INTERVAL") {
            let mut words = rhs[8..].split_whitespace();
            let n: i64 = words.next().ok_or_else(unsupported)?.trim_matches('\'').parse().map_err(|_| unsupported())?;
            n * unit_seconds(words.next().ok_or_else(unsupported)?).ok_or_else(unsupported)?
        } else {
            return Err(unsupported());
        };
        Ok(Ttl { column, seconds })
    }

    /// The rows of `batch` that have not expired at `now_secs`.
    pub fn keep(&self, batch: &RecordBatch, now_secs: i64) -> Result<RecordBatch, String> {
        let (col, secs) = self.seconds(batch)?;
        let limit = now_secs - self.seconds;
        // ClickHouse keeps rows whose TTL time is NULL.
        let mask: BooleanArray = (0..batch.num_rows()).map(|i| Some(col.is_null(i) || secs(i) >= limit)).collect();
        if mask.true_count() == batch.num_rows() {
            return Ok(batch.clone()); // nothing expired: no copy
        }
        arrow_select::filter::filter_record_batch(batch, &mask).map_err(|e| e.to_string())
    }

    /// When the first row of `batch` expires (seconds since the epoch; `i64::MAX` when none
    /// ever does), so that maintenance reads only parts with something to remove.
    pub fn first_expiry(&self, batch: &RecordBatch) -> Result<i64, String> {
        let (col, secs) = self.seconds(batch)?;
        let first = (0..batch.num_rows()).filter(|i| !col.is_null(*i)).map(secs).min();
        Ok(first.map_or(i64::MAX, |s| s.saturating_add(self.seconds)))
    }

    /// The TTL column of `batch` and a reader of its values in seconds since the epoch.
    fn seconds<'a>(&self, batch: &'a RecordBatch) -> Result<(&'a ArrayRef, impl Fn(usize) -> i64 + 'a), String> {
        let col =
            batch.column_by_name(&self.column).ok_or_else(|| format!("TTL column '{}' does not exist", self.column))?;
        if !matches!(col.data_type(), DataType::Date32 | DataType::Timestamp(..)) {
            return Err(format!("TTL column '{}' is not a date or time column", self.column));
        }
        let secs = move |i: usize| -> i64 {
            match col.data_type() {
                DataType::Date32 => i64::from(col.as_primitive::<Date32Type>().value(i)) * 86_400,
                DataType::Timestamp(TimeUnit::Second, _) => col.as_primitive::<TimestampSecondType>().value(i),
                DataType::Timestamp(TimeUnit::Millisecond, _) => {
                    col.as_primitive::<TimestampMillisecondType>().value(i).div_euclid(1_000)
                }
                DataType::Timestamp(TimeUnit::Microsecond, _) => {
                    col.as_primitive::<TimestampMicrosecondType>().value(i).div_euclid(1_000_000)
                }
                DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                    col.as_primitive::<TimestampNanosecondType>().value(i).div_euclid(1_000_000_000)
                }
                _ => i64::MAX,
            }
        };
        Ok((col, secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(
            Ttl::parse("toDateTime(timestamp) + toIntervalDay(365)").unwrap(),
            Ttl { column: "timestamp".into(), seconds: 365 * 86_400 }
        );
        assert_eq!(Ttl::parse("ts + INTERVAL 90 DAY").unwrap(), Ttl { column: "ts".into(), seconds: 90 * 86_400 });
        assert_eq!(Ttl::parse("toDate(d) + toIntervalMonth(1)").unwrap().seconds, 30 * 86_400);
        assert!(Ttl::parse("ts + 1").is_err());
        assert!(Ttl::parse("lower(ts) + INTERVAL 1 DAY").is_err());
    }
}
