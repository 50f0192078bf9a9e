//! Ordering rows by a table's sorting key, fast: what a flush and a merge spend most of their
//! time on. Each key column becomes one `u64` per row that orders like the value (integers and
//! times with their sign bit flipped, strings as their rank among the distinct strings of the
//! rows being sorted), so sorting compares integers instead of walking Arrow arrays. Columns
//! this cannot express (floats, NULLs, nested types) fall back to Arrow's row format.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_row::{RowConverter, Rows, SortField};
use arrow_schema::DataType;

use crate::{Error, Result};

/// Where a row is: `(batch, row)`.
pub type Position = (usize, usize);

/// Sorts `positions` of `batches` by `sorting_key` (ascending, NULLs first; rows with equal
/// keys keep their order).
pub fn sort(batches: &[RecordBatch], sorting_key: &[String], positions: &mut [Position]) -> Result<()> {
    if sorting_key.is_empty() || positions.len() < 2 {
        return Ok(());
    }
    let columns = sorting_key
        .iter()
        .map(|k| {
            batches
                .iter()
                .map(|b| b.column_by_name(k).cloned().ok_or_else(|| Error::Invalid(format!("no column '{k}'"))))
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    match columns.iter().map(|parts| ordinals(parts)).collect::<Option<Vec<_>>>() {
        Some(keys) => by_ordinals(&keys, positions),
        None => by_rows(batches.len(), &columns, positions)?,
    }
    Ok(())
}

/// One column's ordinals, per batch and row.
type Ordinals = Vec<Vec<u64>>;

fn by_ordinals(keys: &[Ordinals], positions: &mut [Position]) {
    let key = |p: &Position, c: usize| keys.get(c).map_or(0, |k| k[p.0][p.1]);
    let prefix = |p: &Position| (u128::from(key(p, 0)) << 64) | u128::from(key(p, 1));
    let mut tagged: Vec<(u128, u32, Position)> =
        positions.iter().enumerate().map(|(i, p)| (prefix(p), i as u32, *p)).collect();
    if keys.len() <= 2 {
        tagged.sort_unstable_by_key(|t| (t.0, t.1));
    } else {
        tagged.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                (2..keys.len()).map(|c| key(&a.2, c).cmp(&key(&b.2, c))).find(|o| o.is_ne()).unwrap_or(a.1.cmp(&b.1))
            })
        });
    }
    for (slot, t) in positions.iter_mut().zip(tagged) {
        *slot = t.2;
    }
}

fn by_rows(batches: usize, columns: &[Vec<ArrayRef>], positions: &mut [Position]) -> Result<()> {
    let fields = columns.iter().map(|parts| SortField::new(parts[0].data_type().clone())).collect();
    let converter = RowConverter::new(fields).map_err(Error::arrow)?;
    let rows: Vec<Rows> = (0..batches)
        .map(|b| {
            let cols: Vec<ArrayRef> = columns.iter().map(|parts| parts[b].clone()).collect();
            converter.convert_columns(&cols).map_err(Error::arrow)
        })
        .collect::<Result<_>>()?;
    positions.sort_by(|a, b| rows[a.0].row(a.1).cmp(&rows[b.0].row(b.1)));
    Ok(())
}

/// Order-preserving `u64`s for one column split over batches; `None` when the column has NULLs
/// or a type without such a mapping.
fn ordinals(parts: &[ArrayRef]) -> Option<Ordinals> {
    if parts.iter().any(|a| a.null_count() > 0) {
        return None;
    }
    let flip = |v: i64| (v as u64) ^ (1 << 63);
    macro_rules! each {
        ($t:ty, $f:expr) => {
            Some(parts.iter().map(|a| a.as_primitive::<$t>().values().iter().map(|v| $f(*v)).collect()).collect())
        };
    }
    match parts.first()?.data_type() {
        DataType::Int8 => each!(Int8Type, |v: i8| flip(i64::from(v))),
        DataType::Int16 => each!(Int16Type, |v: i16| flip(i64::from(v))),
        DataType::Int32 => each!(Int32Type, |v: i32| flip(i64::from(v))),
        DataType::Int64 => each!(Int64Type, flip),
        DataType::UInt8 => each!(UInt8Type, u64::from),
        DataType::UInt16 => each!(UInt16Type, u64::from),
        DataType::UInt32 => each!(UInt32Type, u64::from),
        DataType::UInt64 => each!(UInt64Type, |v: u64| v),
        DataType::Date32 => each!(Date32Type, |v: i32| flip(i64::from(v))),
        DataType::Timestamp(unit, _) => {
            use arrow_schema::TimeUnit::*;
            match unit {
                Second => each!(TimestampSecondType, flip),
                Millisecond => each!(TimestampMillisecondType, flip),
                Microsecond => each!(TimestampMicrosecondType, flip),
                Nanosecond => each!(TimestampNanosecondType, flip),
            }
        }
        DataType::Boolean => {
            Some(parts.iter().map(|a| a.as_boolean().values().iter().map(u64::from).collect()).collect())
        }
        DataType::Utf8 => {
            let strings: Vec<_> = parts.iter().map(|a| a.as_string::<i32>()).collect();
            let ranks = ranks(strings.iter().flat_map(|s| s.iter().flatten()));
            Some(strings.iter().map(|s| s.iter().flatten().map(|v| ranks[v]).collect()).collect())
        }
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
            let dicts: Vec<_> = parts.iter().map(|a| a.as_dictionary::<Int32Type>()).collect();
            let values: Vec<_> = dicts.iter().map(|d| d.values().as_string::<i32>()).collect();
            let ranks = ranks(values.iter().flat_map(|s| s.iter().flatten()));
            let out = dicts
                .iter()
                .zip(&values)
                .map(|(d, vals)| {
                    // A dictionary value that is NULL never appears under a non-null key.
                    let by_key: Vec<u64> = vals.iter().map(|v| v.map_or(0, |v| ranks[v])).collect();
                    d.keys().values().iter().map(|k| by_key[*k as usize]).collect()
                })
                .collect();
            Some(out)
        }
        _ => None,
    }
}

/// Each distinct string's position in byte order (the order ClickHouse sorts `String`s in).
fn ranks<'a>(values: impl Iterator<Item = &'a str>) -> HashMap<&'a str, u64> {
    let mut distinct: Vec<&str> = values.collect::<std::collections::HashSet<_>>().into_iter().collect();
    distinct.sort_unstable();
    distinct.into_iter().enumerate().map(|(i, s)| (s, i as u64)).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{DictionaryArray, Float64Array, Int64Array, StringArray};
    use arrow_schema::{Field, Schema};

    use super::*;

    fn batch(orgs: &[&str], ts: &[i64], scores: &[Option<f64>], n: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("org", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), false),
            Field::new("ts", DataType::Int64, false),
            Field::new("score", DataType::Float64, true),
            Field::new("n", DataType::Int64, false),
        ]));
        let org: DictionaryArray<Int32Type> = orgs.iter().copied().collect();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(org),
                Arc::new(Int64Array::from(ts.to_vec())),
                Arc::new(Float64Array::from(scores.to_vec())),
                Arc::new(Int64Array::from(n.to_vec())),
            ],
        )
        .unwrap()
    }

    fn all(batches: &[RecordBatch]) -> Vec<Position> {
        batches.iter().enumerate().flat_map(|(b, x)| (0..x.num_rows()).map(move |r| (b, r))).collect()
    }

    #[test]
    fn both_paths_order_like_the_values_and_keep_ties_in_order() {
        let batches = [
            batch(&["b", "a", "b"], &[5, -1, 5], &[Some(1.0), None, Some(0.5)], &[3, 2, 1]),
            batch(&["a", "c", "b"], &[-7, 0, 2], &[Some(2.0), Some(-1.0), Some(1.0)], &[0, 0, 0]),
        ];
        let key = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut p = all(&batches);
        sort(&batches, &key(&["org", "ts"]), &mut p).unwrap();
        assert_eq!(p, [(1, 0), (0, 1), (1, 2), (0, 0), (0, 2), (1, 1)]);
        // Floats with a NULL take the row-format path: NULL first, then ascending; ties stable.
        let mut p = all(&batches);
        sort(&batches, &key(&["score"]), &mut p).unwrap();
        assert_eq!(p, [(0, 1), (1, 1), (0, 2), (0, 0), (1, 2), (1, 0)]);
        // Three columns: the comparison goes past the packed prefix.
        let mut p = all(&batches);
        sort(&batches, &key(&["org", "ts", "n"]), &mut p).unwrap();
        assert_eq!(p, [(1, 0), (0, 1), (1, 2), (0, 2), (0, 0), (1, 1)]);
        let strings = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, false)])),
            vec![Arc::new(StringArray::from(vec!["b", "B", "a", "ab"]))],
        )
        .unwrap();
        let mut p = all(std::slice::from_ref(&strings));
        sort(std::slice::from_ref(&strings), &key(&["s"]), &mut p).unwrap();
        assert_eq!(p, [(0, 1), (0, 2), (0, 3), (0, 0)], "byte order: B < a < ab < b");
    }
}
