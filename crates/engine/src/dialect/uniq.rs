//! ClickHouse's `uniq` (and `uniqCombined`, `uniqHLL12`, `uniqIf`) as the aggregate `ch_uniq`:
//! the number of distinct 64-bit hashes of the arguments. ClickHouse's answer is an estimate;
//! this one is exact up to hash collisions (one in about 2^32 pairs at four billion values),
//! and much cheaper than counting distinct values themselves: a group keeps a set of `u64`,
//! never copies of strings. `uniqExact` stays an exact `count(DISTINCT …)`.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, UInt64Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{Array, ArrayRef, BooleanArray, UInt64Array};
use arrow_schema::{DataType, Field, FieldRef};
use datafusion::common::hash_utils::{HLL_RANDOM_STATE, create_hashes};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use datafusion::scalar::ScalarValue;

/// The name the dialect calls.
pub const NAME: &str = "ch_uniq";

/// The `ch_uniq` aggregate.
pub fn udaf() -> AggregateUDF {
    AggregateUDF::new_from_impl(Uniq { signature: Signature::variadic_any(Volatility::Immutable) })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Uniq {
    signature: Signature,
}

/// The values are hashes already: a set of them needs no second hash.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type Hashes = HashSet<u64, BuildHasherDefault<Identity>>;

/// The hashes of the rows of `values` that count: no NULL argument, and the filter passes.
fn row_hashes(values: &[ArrayRef], filter: Option<&BooleanArray>) -> Result<(Vec<u64>, Vec<bool>)> {
    let rows = values.first().map_or(0, |v| v.len());
    let mut hashes = vec![0u64; rows];
    create_hashes(values.iter(), &HLL_RANDOM_STATE, &mut hashes)?;
    let counted = if filter.is_none() && values.iter().all(|v| v.null_count() == 0) {
        vec![true; rows]
    } else {
        let nulls: Vec<Option<arrow_buffer::NullBuffer>> = values.iter().map(|v| v.logical_nulls()).collect();
        (0..rows)
            .map(|r| {
                nulls.iter().all(|n| n.as_ref().is_none_or(|n| n.is_valid(r)))
                    && filter.is_none_or(|f| f.is_valid(r) && f.value(r))
            })
            .collect()
    };
    Ok((hashes, counted))
}

fn state_field() -> FieldRef {
    Arc::new(Field::new("hashes", DataType::List(Arc::new(Field::new("item", DataType::UInt64, true))), true))
}

/// Each state row's hashes (a list of `u64`).
fn state_rows(states: &[ArrayRef]) -> Result<&arrow_array::ListArray> {
    states
        .first()
        .and_then(|s| s.as_list_opt::<i32>())
        .ok_or_else(|| DataFusionError::Internal(format!("{NAME}: state must be a list of hashes")))
}

impl AggregateUDFImpl for Uniq {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt64)
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn default_value(&self, _: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::UInt64(Some(0)))
    }

    fn state_fields(&self, _: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![state_field()])
    }

    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(One(Hashes::default())))
    }

    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(Groups(Vec::new())))
    }
}

/// One group's hashes.
#[derive(Debug)]
struct One(Hashes);

impl Accumulator for One {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (hashes, counted) = row_hashes(values, None)?;
        self.0.reserve(hashes.len() / 4);
        self.0.extend(hashes.into_iter().zip(counted).filter(|(_, c)| *c).map(|(h, _)| h));
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = state_rows(states)?;
        for r in 0..lists.len() {
            if lists.is_valid(r) {
                self.0.extend(lists.value(r).as_primitive::<UInt64Type>().values().iter().copied());
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let hashes: Vec<ScalarValue> = self.0.iter().map(|h| ScalarValue::UInt64(Some(*h))).collect();
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(&hashes, &DataType::UInt64))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::UInt64(Some(self.0.len() as u64)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.0.capacity() * 9
    }
}

/// Every group's hashes, by group index.
struct Groups(Vec<Hashes>);

impl Groups {
    fn grow(&mut self, total: usize) {
        if self.0.len() < total {
            self.0.resize_with(total, Hashes::default);
        }
    }
}

impl GroupsAccumulator for Groups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.grow(total_num_groups);
        let (hashes, counted) = row_hashes(values, opt_filter)?;
        for ((g, h), c) in group_indices.iter().zip(hashes).zip(counted) {
            if c {
                self.0[*g].insert(h);
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.grow(total_num_groups);
        let lists = state_rows(values)?;
        for (r, g) in group_indices.iter().enumerate() {
            if lists.is_valid(r) {
                self.0[*g].extend(lists.value(r).as_primitive::<UInt64Type>().values().iter().copied());
            }
        }
        Ok(())
    }

    /// Input rows straight to states (when partial aggregation is skipped): each row's hash,
    /// or none.
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let (hashes, counted) = row_hashes(values, opt_filter)?;
        let mut b = ListBuilder::new(UInt64Builder::new());
        for (h, c) in hashes.into_iter().zip(counted) {
            if c {
                b.values().append_value(h);
            }
            b.append(true);
        }
        Ok(vec![Arc::new(b.finish())])
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let groups = emit_to.take_needed(&mut self.0);
        Ok(Arc::new(UInt64Array::from_iter_values(groups.iter().map(|s| s.len() as u64))))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let groups = emit_to.take_needed(&mut self.0);
        let mut b = ListBuilder::new(UInt64Builder::new());
        for s in groups {
            b.values().append_slice(&s.into_iter().collect::<Vec<_>>());
            b.append(true);
        }
        Ok(vec![Arc::new(b.finish())])
    }

    fn size(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<Hashes>() + self.0.iter().map(|s| s.capacity() * 9).sum::<usize>()
    }
}
