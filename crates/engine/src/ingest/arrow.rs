//! Converted rows into Arrow record batches, one builder per column type (the Arrow mapping of
//! `datafiles::ChType::arrow`).

use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Decimal256Builder,
    FixedSizeBinaryBuilder, Float32Builder, Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder,
    ListBuilder, MapBuilder, MapFieldNames, StringBuilder, StringDictionaryBuilder, StructBuilder,
    TimestampMicrosecondBuilder, TimestampMillisecondBuilder, TimestampNanosecondBuilder, TimestampSecondBuilder,
    UInt8Builder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow_array::types::{Int16Type, Int32Type};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_buffer::i256;
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, SchemaRef};
use datafiles::ChType;

use super::value::Cell;

/// The Arrow schema of `columns` (name, type).
pub fn schema(columns: &[(String, ChType)]) -> Result<SchemaRef, ArrowError> {
    let fields = columns
        .iter()
        .map(|(n, t)| Ok(Field::new(n, t.arrow().map_err(|e| ArrowError::SchemaError(e.0))?, t.is_nullable())))
        .collect::<Result<Vec<_>, ArrowError>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

/// A builder for one column of type `ty`.
pub fn builder(ty: &ChType, capacity: usize) -> Box<dyn ArrayBuilder> {
    let tz = |t: &Option<String>| Arc::<str>::from(t.as_deref().unwrap_or("UTC"));
    match ty {
        ChType::Nullable(inner) | ChType::SimpleAggregateFunction { ty: inner, .. } => builder(inner, capacity),
        ChType::LowCardinality(inner) if inner.is_string() && !matches!(inner.base(), ChType::FixedString(_)) => {
            Box::new(StringDictionaryBuilder::<Int32Type>::new())
        }
        ChType::LowCardinality(inner) => builder(inner, capacity),
        ChType::String => Box::new(StringBuilder::with_capacity(capacity, capacity * 16)),
        ChType::FixedString(n) => Box::new(FixedSizeBinaryBuilder::with_capacity(capacity, *n as i32)),
        ChType::Uuid | ChType::Ipv6 => Box::new(FixedSizeBinaryBuilder::with_capacity(capacity, 16)),
        ChType::Int { bits, signed } => match (bits, signed) {
            (8, true) => Box::new(Int8Builder::with_capacity(capacity)),
            (16, true) => Box::new(Int16Builder::with_capacity(capacity)),
            (32, true) => Box::new(Int32Builder::with_capacity(capacity)),
            (64, true) => Box::new(Int64Builder::with_capacity(capacity)),
            (8, false) => Box::new(UInt8Builder::with_capacity(capacity)),
            (16, false) => Box::new(UInt16Builder::with_capacity(capacity)),
            (32, false) => Box::new(UInt32Builder::with_capacity(capacity)),
            (64, false) => Box::new(UInt64Builder::with_capacity(capacity)),
            (128, _) => {
                Box::new(Decimal128Builder::with_capacity(capacity).with_data_type(DataType::Decimal128(38, 0)))
            }
            _ => Box::new(Decimal256Builder::with_capacity(capacity).with_data_type(DataType::Decimal256(76, 0))),
        },
        ChType::Ipv4 => Box::new(UInt32Builder::with_capacity(capacity)),
        ChType::Float32 => Box::new(Float32Builder::with_capacity(capacity)),
        ChType::Float64 => Box::new(Float64Builder::with_capacity(capacity)),
        ChType::Decimal { .. } => match ty.arrow() {
            Ok(dt @ DataType::Decimal128(..)) => {
                Box::new(Decimal128Builder::with_capacity(capacity).with_data_type(dt))
            }
            Ok(dt) => Box::new(Decimal256Builder::with_capacity(capacity).with_data_type(dt)),
            Err(_) => Box::new(Decimal256Builder::with_capacity(capacity)),
        },
        ChType::Bool => Box::new(BooleanBuilder::with_capacity(capacity)),
        ChType::Date | ChType::Date32 => Box::new(Date32Builder::with_capacity(capacity)),
        ChType::DateTime { tz: t } => Box::new(TimestampSecondBuilder::with_capacity(capacity).with_timezone(tz(t))),
        ChType::DateTime64 { precision, tz: t } => match precision {
            0 => Box::new(TimestampSecondBuilder::with_capacity(capacity).with_timezone(tz(t))),
            1..=3 => Box::new(TimestampMillisecondBuilder::with_capacity(capacity).with_timezone(tz(t))),
            4..=6 => Box::new(TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone(tz(t))),
            _ => Box::new(TimestampNanosecondBuilder::with_capacity(capacity).with_timezone(tz(t))),
        },
        ChType::Enum { .. } => Box::new(StringDictionaryBuilder::<Int16Type>::new()),
        ChType::Array(inner) => {
            let field = Field::new("item", inner.arrow().unwrap_or(DataType::Null), inner.is_nullable());
            Box::new(ListBuilder::new(builder(inner, capacity)).with_field(field))
        }
        ChType::Map(k, v) => {
            let names = MapFieldNames { entry: "entries".into(), key: "key".into(), value: "value".into() };
            let value_field = Field::new("value", v.arrow().unwrap_or(DataType::Null), v.is_nullable());
            Box::new(
                MapBuilder::new(Some(names), builder(k, capacity), builder(v, capacity)).with_values_field(value_field),
            )
        }
        ChType::Tuple(items) => {
            let fields: Fields = items
                .iter()
                .enumerate()
                .map(|(i, (n, t))| {
                    Field::new(
                        n.clone().unwrap_or_else(|| (i + 1).to_string()),
                        t.arrow().unwrap_or(DataType::Null),
                        t.is_nullable(),
                    )
                })
                .collect();
            Box::new(StructBuilder::new(fields, items.iter().map(|(_, t)| builder(t, capacity)).collect()))
        }
        ChType::AggregateFunction { .. } | ChType::Json => Box::new(BinaryBuilder::with_capacity(capacity, 0)),
    }
}

macro_rules! down {
    ($b:expr, $t:ty) => {
        $b.as_any_mut()
            .downcast_mut::<$t>()
            .ok_or_else(|| ArrowError::CastError(format!("builder is not {}", stringify!($t))))?
    };
}

/// Appends `cell` (converted for `ty`) to `b` (made by [`builder`] for `ty`).
pub fn append(b: &mut dyn ArrayBuilder, ty: &ChType, cell: &Cell) -> Result<(), ArrowError> {
    let mismatch = || ArrowError::CastError(format!("value {cell:?} does not fit {ty}"));
    if matches!(cell, Cell::Null) {
        return append_null(b, ty);
    }
    match (ty, cell) {
        (ChType::Nullable(inner) | ChType::SimpleAggregateFunction { ty: inner, .. }, c) => append(b, inner, c)?,
        (ChType::LowCardinality(inner), Cell::Str(s))
            if inner.is_string() && !matches!(inner.base(), ChType::FixedString(_)) =>
        {
            down!(b, StringDictionaryBuilder<Int32Type>).append_value(s);
        }
        (ChType::LowCardinality(inner), c) => append(b, inner, c)?,
        (ChType::String, Cell::Str(s)) => down!(b, StringBuilder).append_value(s),
        (ChType::FixedString(_) | ChType::Uuid | ChType::Ipv6, Cell::Bytes(v)) => {
            down!(b, FixedSizeBinaryBuilder).append_value(v)?
        }
        (ChType::Int { bits: 8, signed: true }, Cell::Int(v)) => down!(b, Int8Builder).append_value(*v as i8),
        (ChType::Int { bits: 16, signed: true }, Cell::Int(v)) => down!(b, Int16Builder).append_value(*v as i16),
        (ChType::Int { bits: 32, signed: true }, Cell::Int(v)) => down!(b, Int32Builder).append_value(*v as i32),
        (ChType::Int { bits: 64, signed: true }, Cell::Int(v)) => down!(b, Int64Builder).append_value(*v),
        (ChType::Int { bits: 8, signed: false }, Cell::UInt(v)) => down!(b, UInt8Builder).append_value(*v as u8),
        (ChType::Int { bits: 16, signed: false }, Cell::UInt(v)) => down!(b, UInt16Builder).append_value(*v as u16),
        (ChType::Int { bits: 32, signed: false } | ChType::Ipv4, Cell::UInt(v)) => {
            down!(b, UInt32Builder).append_value(*v as u32)
        }
        (ChType::Int { bits: 64, signed: false }, Cell::UInt(v)) => down!(b, UInt64Builder).append_value(*v),
        (ChType::Int { .. } | ChType::Decimal { .. }, Cell::Wide(v)) => {
            if let Some(d) = b.as_any_mut().downcast_mut::<Decimal128Builder>() {
                d.append_value(*v);
            } else {
                down!(b, Decimal256Builder).append_value(i256::from_i128(*v));
            }
        }
        (ChType::Int { .. } | ChType::Decimal { .. }, Cell::Huge(text)) => {
            let v = i256::from_string(text).ok_or_else(mismatch)?;
            if let Some(d) = b.as_any_mut().downcast_mut::<Decimal128Builder>() {
                d.append_value(v.to_i128().ok_or_else(mismatch)?);
            } else {
                down!(b, Decimal256Builder).append_value(v);
            }
        }
        (ChType::Float32, Cell::Float(f)) => down!(b, Float32Builder).append_value(*f as f32),
        (ChType::Float64, Cell::Float(f)) => down!(b, Float64Builder).append_value(*f),
        (ChType::Bool, Cell::Bool(v)) => down!(b, BooleanBuilder).append_value(*v),
        (ChType::Date | ChType::Date32, Cell::Days(d)) => down!(b, Date32Builder).append_value(*d),
        (ChType::DateTime { .. }, Cell::Time(t)) => down!(b, TimestampSecondBuilder).append_value(*t),
        (ChType::DateTime64 { precision, .. }, Cell::Time(t)) => match precision {
            0 => down!(b, TimestampSecondBuilder).append_value(*t),
            1..=3 => down!(b, TimestampMillisecondBuilder).append_value(*t),
            4..=6 => down!(b, TimestampMicrosecondBuilder).append_value(*t),
            _ => down!(b, TimestampNanosecondBuilder).append_value(*t),
        },
        (ChType::Enum { .. }, Cell::Str(s)) => {
            down!(b, StringDictionaryBuilder<Int16Type>).append_value(s);
        }
        (ChType::Array(inner), Cell::List(items)) => {
            let list = down!(b, ListBuilder<Box<dyn ArrayBuilder>>);
            for item in items {
                append(list.values().as_mut(), inner, item)?;
            }
            list.append(true);
        }
        (ChType::Map(k, v), Cell::Map(entries)) => {
            let map = down!(b, MapBuilder<Box<dyn ArrayBuilder>, Box<dyn ArrayBuilder>>);
            for (key, value) in entries {
                append(map.keys().as_mut(), k, key)?;
                append(map.values().as_mut(), v, value)?;
            }
            map.append(true)?;
        }
        (ChType::Tuple(items), Cell::Tuple(values)) => {
            let st = down!(b, StructBuilder);
            for (i, ((_, t), v)) in items.iter().zip(values).enumerate() {
                let field = st.field_builders_mut().get_mut(i).ok_or_else(mismatch)?;
                append(field.as_mut(), t, v)?;
            }
            st.append(true);
        }
        _ => return Err(mismatch()),
    }
    Ok(())
}

/// Appends a NULL (nested builders get a null entry of their own type).
pub fn append_null(b: &mut dyn ArrayBuilder, ty: &ChType) -> Result<(), ArrowError> {
    macro_rules! null {
        ($($t:ty),*) => {
            $(if let Some(x) = b.as_any_mut().downcast_mut::<$t>() { x.append_null(); return Ok(()); })*
        };
    }
    null!(
        StringBuilder,
        Int8Builder,
        Int16Builder,
        Int32Builder,
        Int64Builder,
        UInt8Builder,
        UInt16Builder,
        UInt32Builder,
        UInt64Builder,
        Float32Builder,
        Float64Builder,
        BooleanBuilder,
        Date32Builder,
        Decimal128Builder,
        Decimal256Builder,
        TimestampSecondBuilder,
        TimestampMillisecondBuilder,
        TimestampMicrosecondBuilder,
        TimestampNanosecondBuilder,
        FixedSizeBinaryBuilder,
        BinaryBuilder,
        StringDictionaryBuilder<Int32Type>,
        StringDictionaryBuilder<Int16Type>,
        ListBuilder<Box<dyn ArrayBuilder>>
    );
    if let Some(x) = b.as_any_mut().downcast_mut::<MapBuilder<Box<dyn ArrayBuilder>, Box<dyn ArrayBuilder>>>() {
        return x.append(false);
    }
    if let Some(x) = b.as_any_mut().downcast_mut::<StructBuilder>() {
        let ChType::Tuple(items) = ty.base() else { return Err(ArrowError::CastError("not a tuple".into())) };
        for (i, (_, t)) in items.iter().enumerate() {
            if let Some(f) = x.field_builders_mut().get_mut(i) {
                append_null(f.as_mut(), t)?;
            }
        }
        x.append_null();
        return Ok(());
    }
    Err(ArrowError::CastError(format!("cannot append NULL for {ty}")))
}

/// Builds one record batch from rows of cells.
pub fn batch(columns: &[(String, ChType)], rows: &[Vec<Cell>]) -> Result<RecordBatch, ArrowError> {
    let schema = schema(columns)?;
    let mut builders: Vec<Box<dyn ArrayBuilder>> = columns.iter().map(|(_, t)| builder(t, rows.len())).collect();
    for row in rows {
        for ((b, (_, t)), cell) in builders.iter_mut().zip(columns).zip(row) {
            append(b.as_mut(), t, cell)?;
        }
    }
    let arrays: Vec<ArrayRef> = builders.iter_mut().map(|b| b.finish()).collect();
    RecordBatch::try_new(schema, arrays)
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{TimestampMillisecondType, UInt32Type};

    use super::*;
    use crate::ingest::value::convert;

    #[test]
    fn every_kind_of_column_builds() {
        let cols: Vec<(String, ChType)> = [
            ("s", "LowCardinality(String)"),
            ("t", "DateTime64(3)"),
            ("n", "Nullable(UInt32)"),
            ("a", "Array(String)"),
            ("m", "Map(String, Int64)"),
            ("tu", "Tuple(a String, b UInt8)"),
            ("d", "Decimal(10, 2)"),
            ("big", "UInt256"),
            ("u", "UUID"),
            ("e", "Enum8('x' = 1)"),
            ("ip", "IPv4"),
            ("dt", "Date"),
        ]
        .iter()
        .map(|(n, t)| (n.to_string(), ChType::parse(t).unwrap()))
        .collect();
        let json = serde_json::json!({
            "s": "acme", "t": "2026-11-01 10:00:00.5", "n": null, "a": ["x", "y"], "m": {"k": 1},
            "tu": ["z", 2], "d": "1.25", "big": "1", "u": "123e4567-e89b-12d3-a456-426614174000",
            "e": "x", "ip": "1.2.3.4", "dt": "2026-11-01"
        });
        let row: Vec<Cell> = cols.iter().map(|(n, t)| convert(t, &json[n.as_str()]).unwrap()).collect();
        let b = batch(&cols, &[row.clone(), row]).unwrap();
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.column(1).as_primitive::<TimestampMillisecondType>().value(0), 1_793_527_200_500);
        assert!(b.column(2).is_null(0));
        assert_eq!(b.column(2).as_primitive::<UInt32Type>().len(), 2);
        assert_eq!(b.column(3).as_list::<i32>().value(0).len(), 2);
        assert_eq!(
            b.schema().field(0).data_type(),
            &DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
        );
    }
}
