//! Arrow rows back to [`Cell`]s of their columns' ClickHouse types: what a loaded Parquet file
//! becomes before a backend that takes cells (ClickHouse) writes it.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use datafiles::ChType;

use super::value::Cell;

/// The rows of `batch` (columns in the order and types of `columns`, as the embedded store's
/// Arrow types) as cells.
pub fn rows(batch: &RecordBatch, columns: &[(String, ChType)]) -> Result<Vec<Vec<Cell>>, String> {
    let mut out = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let mut row = Vec::with_capacity(columns.len());
        for (c, (name, ty)) in columns.iter().enumerate() {
            let array = batch.column(c);
            row.push(cell(array, i, ty).map_err(|e| format!("column '{name}': {e}"))?);
        }
        out.push(row);
    }
    Ok(out)
}

fn cell(array: &ArrayRef, i: usize, ty: &ChType) -> Result<Cell, String> {
    if array.is_null(i) {
        return Ok(Cell::Null);
    }
    let ty = match ty {
        ChType::Nullable(inner) | ChType::LowCardinality(inner) => return cell(array, i, inner),
        ChType::SimpleAggregateFunction { ty, .. } => return cell(array, i, ty),
        other => other,
    };
    Ok(match array.data_type() {
        DataType::Utf8 => Cell::Str(array.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Cell::Str(array.as_string::<i64>().value(i).to_string()),
        DataType::Dictionary(_, _) => {
            let dict = array.as_any_dictionary();
            let key = dict.normalized_keys()[i];
            return cell(dict.values(), key, ty);
        }
        DataType::Int8 => Cell::Int(i64::from(array.as_primitive::<Int8Type>().value(i))),
        DataType::Int16 => Cell::Int(i64::from(array.as_primitive::<Int16Type>().value(i))),
        DataType::Int32 => Cell::Int(i64::from(array.as_primitive::<Int32Type>().value(i))),
        DataType::Int64 => Cell::Int(array.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => Cell::UInt(u64::from(array.as_primitive::<UInt8Type>().value(i))),
        DataType::UInt16 => Cell::UInt(u64::from(array.as_primitive::<UInt16Type>().value(i))),
        DataType::UInt32 => Cell::UInt(u64::from(array.as_primitive::<UInt32Type>().value(i))),
        DataType::UInt64 => Cell::UInt(array.as_primitive::<UInt64Type>().value(i)),
        DataType::Float32 => Cell::Float(f64::from(array.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => Cell::Float(array.as_primitive::<Float64Type>().value(i)),
        DataType::Decimal128(..) => Cell::Wide(array.as_primitive::<Decimal128Type>().value(i)),
        DataType::Decimal256(..) => {
            Cell::Huge(array.as_primitive::<arrow_array::types::Decimal256Type>().value(i).to_string())
        }
        DataType::Boolean => Cell::Bool(array.as_boolean().value(i)),
        DataType::Date32 => Cell::Days(array.as_primitive::<Date32Type>().value(i)),
        DataType::Timestamp(..) => {
            let casted = arrow_cast::cast(&array.slice(i, 1), &DataType::Int64).map_err(|e| e.to_string())?;
            Cell::Time(casted.as_primitive::<Int64Type>().value(0))
        }
        DataType::FixedSizeBinary(_) => Cell::Bytes(array.as_fixed_size_binary().value(i).to_vec()),
        DataType::Binary => Cell::Bytes(array.as_binary::<i32>().value(i).to_vec()),
        DataType::List(_) => {
            let inner_ty = match ty {
                ChType::Array(t) => t.as_ref(),
                other => return Err(format!("a list does not fit {other}")),
            };
            let values = array.as_list::<i32>().value(i);
            Cell::List((0..values.len()).map(|j| cell(&values, j, inner_ty)).collect::<Result<_, _>>()?)
        }
        DataType::Map(..) => {
            let (kt, vt) = match ty {
                ChType::Map(k, v) => (k.as_ref(), v.as_ref()),
                other => return Err(format!("a map does not fit {other}")),
            };
            let entries = array.as_map().value(i);
            let (keys, values) = (entries.column(0), entries.column(1));
            Cell::Map(
                (0..entries.len())
                    .map(|j| Ok((cell(keys, j, kt)?, cell(values, j, vt)?)))
                    .collect::<Result<_, String>>()?,
            )
        }
        DataType::Struct(_) => {
            let items = match ty {
                ChType::Tuple(items) => items,
                other => return Err(format!("a struct does not fit {other}")),
            };
            let s = array.as_struct();
            Cell::Tuple(items.iter().enumerate().map(|(j, (_, t))| cell(s.column(j), i, t)).collect::<Result<_, _>>()?)
        }
        other => return Err(format!("Arrow type {other} cannot be loaded")),
    })
}
