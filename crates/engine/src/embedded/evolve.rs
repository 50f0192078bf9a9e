//! Schema evolution without rewriting data: a table may gain columns (and change its TTL). Rows
//! written before a column existed read it as the column's fill value — its `DEFAULT` literal
//! when it has one, else NULL for a nullable column, else the type's zero — the way ClickHouse
//! answers for parts older than an `ADD COLUMN`.

use std::collections::BTreeMap;

use arrow_array::{RecordBatch, UInt32Array, new_null_array};
use arrow_schema::SchemaRef;
use datafiles::ChType;
use serde_json::Value as Json;

use crate::ingest::arrow::batch;
use crate::ingest::value::{Cell, convert};
use crate::{Error, Result};

/// The zero value of a type (what ClickHouse stores for a column without a default).
pub fn zero(ty: &ChType) -> Cell {
    match ty {
        ChType::Nullable(_) => Cell::Null,
        ChType::LowCardinality(inner) | ChType::SimpleAggregateFunction { ty: inner, .. } => zero(inner),
        ChType::String | ChType::Json | ChType::AggregateFunction { .. } => Cell::Str(String::new()),
        ChType::FixedString(n) => Cell::Bytes(vec![0; *n as usize]),
        ChType::Uuid | ChType::Ipv6 => Cell::Bytes(vec![0; 16]),
        ChType::Int { bits, signed } => match (bits, signed) {
            (b, true) if *b <= 64 => Cell::Int(0),
            (b, false) if *b <= 64 => Cell::UInt(0),
            (128, _) => Cell::Wide(0),
            _ => Cell::Huge("0".into()),
        },
        ChType::Decimal { precision, .. } if *precision <= 38 => Cell::Wide(0),
        ChType::Decimal { .. } => Cell::Huge("0".into()),
        ChType::Float32 | ChType::Float64 => Cell::Float(0.0),
        ChType::Bool => Cell::Bool(false),
        ChType::Date | ChType::Date32 => Cell::Days(0),
        ChType::DateTime { .. } | ChType::DateTime64 { .. } => Cell::Time(0),
        ChType::Ipv4 => Cell::UInt(0),
        ChType::Enum { values, .. } => Cell::Str(values.first().map(|v| v.0.clone()).unwrap_or_default()),
        ChType::Array(_) => Cell::List(Vec::new()),
        ChType::Map(..) => Cell::Map(Vec::new()),
        ChType::Tuple(items) => Cell::Tuple(items.iter().map(|(_, t)| zero(t)).collect()),
    }
}

/// The value rows older than column `name` read for it.
fn fill(name: &str, ty: &ChType, fills: &BTreeMap<String, Json>) -> Result<Cell> {
    match fills.get(name) {
        Some(Json::Null) | None => Ok(zero(ty)),
        Some(v) => convert(ty, v).map_err(|e| Error::Invalid(format!("column '{name}': {e}"))),
    }
}

/// `rows` with the columns of `schema` in its order: columns it has are kept (they must have the
/// same type), the others are filled. `columns` are the table's columns, `fills` the fill
/// values of columns added after it was created.
pub fn conform(
    rows: &RecordBatch,
    schema: &SchemaRef,
    columns: &[(String, ChType)],
    fills: &BTreeMap<String, Json>,
) -> Result<RecordBatch> {
    if rows.schema().fields() == schema.fields() {
        return Ok(rows.clone());
    }
    let n = rows.num_rows();
    let arrays = schema
        .fields()
        .iter()
        .zip(columns)
        .map(|(field, (name, ty))| {
            if let Some(existing) = rows.column_by_name(name) {
                if existing.data_type() != field.data_type() {
                    return Err(Error::Invalid(format!("column '{name}' has another type in these rows")));
                }
                return Ok(existing.clone());
            }
            let cell = fill(name, ty, fills)?;
            if cell == Cell::Null {
                return Ok(new_null_array(field.data_type(), n));
            }
            let one = batch(&[(name.clone(), ty.clone())], &[vec![cell]]).map_err(Error::arrow)?;
            arrow_select::take::take(one.column(0), &UInt32Array::from(vec![0u32; n]), None).map_err(Error::arrow)
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(schema.clone(), arrays).map_err(Error::arrow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::arrow::schema;

    fn cols(spec: &[(&str, &str)]) -> Vec<(String, ChType)> {
        spec.iter().map(|(n, t)| (n.to_string(), ChType::parse(t).unwrap())).collect()
    }

    #[test]
    fn old_rows_read_new_columns_as_their_fill() {
        let old = cols(&[("a", "String")]);
        let rows = batch(&old, &[vec![Cell::Str("x".into())], vec![Cell::Str("y".into())]]).unwrap();
        let new = cols(&[
            ("a", "String"),
            ("n", "UInt32"),
            ("d", "LowCardinality(String)"),
            ("o", "Nullable(Int8)"),
            ("t", "Array(String)"),
        ]);
        let fills = BTreeMap::from([("d".to_string(), Json::String("none".into()))]);
        let out = conform(&rows, &schema(&new).unwrap(), &new, &fills).unwrap();
        let shown = arrow_cast::pretty::pretty_format_batches(&[out]).unwrap().to_string();
        assert_eq!(
            shown,
            "+---+---+------+---+----+\n| a | n | d    | o | t  |\n+---+---+------+---+----+\n| x | 0 | none |   | [] |\n| y | 0 | none |   | [] |\n+---+---+------+---+----+"
        );
    }
}
