//! ClickHouse's `uniq` (and `uniqCombined`, `uniqHLL12`, `uniqIf`) as the aggregate `ch_uniq`,
//! with ClickHouse's algorithm (adaptive sampling): a group keeps the 64-bit hashes of the
//! distinct argument values it met, up to 65,536 of them; past that it keeps only the hashes
//! whose lowest `k` bits are zero (raising `k` until the set fits again) and answers the set's
//! size times 2^k. Up to 65,536 distinct values the count is exact (but for hash collisions);
//! beyond, an estimate within about 1% — much cheaper than counting distinct values themselves:
//! a group holds at most 65,536 `u64`, never copies of strings. `uniqExact` stays an exact
//! `count(DISTINCT …)`.

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

/// Most hashes a group keeps before it samples.
const MAX_KEPT: usize = 65_536;

/// One group's sample: the distinct hashes whose lowest `skip` bits are zero.
#[derive(Debug, Default)]
struct Sample {
    hashes: Hashes,
    skip: u32,
}

impl Sample {
    fn mask(&self) -> u64 {
        (1u64 << self.skip) - 1
    }

    fn insert(&mut self, h: u64) {
        if h & self.mask() == 0 && self.hashes.insert(h) && self.hashes.len() > MAX_KEPT {
            self.shrink();
        }
    }

    fn shrink(&mut self) {
        while self.hashes.len() > MAX_KEPT {
            self.skip += 1;
            let mask = self.mask();
            self.hashes.retain(|h| h & mask == 0);
        }
    }

    fn merge(&mut self, hashes: &[u64], skip: u32) {
        if skip > self.skip {
            self.skip = skip;
            let mask = self.mask();
            self.hashes.retain(|h| h & mask == 0);
        }
        for h in hashes {
            self.insert(*h);
        }
    }

    fn count(&self) -> u64 {
        (self.hashes.len() as u64) << self.skip
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.hashes.capacity() * 9
    }
}

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

fn state_fields() -> Vec<FieldRef> {
    vec![
        Arc::new(Field::new("hashes", DataType::List(Arc::new(Field::new("item", DataType::UInt64, true))), true)),
        Arc::new(Field::new("skip", DataType::UInt32, true)),
    ]
}

/// The states' rows: each a list of hashes and its sampling degree.
fn state_rows(states: &[ArrayRef]) -> Result<(&arrow_array::ListArray, &arrow_array::UInt32Array)> {
    let bad = || DataFusionError::Internal(format!("{NAME}: state must be hashes and a sampling degree"));
    let lists = states.first().and_then(|s| s.as_list_opt::<i32>()).ok_or_else(bad)?;
    let skips = states.get(1).and_then(|s| s.as_primitive_opt::<arrow_array::types::UInt32Type>()).ok_or_else(bad)?;
    Ok((lists, skips))
}

/// Samples as states.
fn to_states<'a>(samples: impl Iterator<Item = &'a Sample>) -> Vec<ArrayRef> {
    let mut lists = ListBuilder::new(UInt64Builder::new());
    let mut skips = arrow_array::builder::UInt32Builder::new();
    for s in samples {
        lists.values().append_slice(&s.hashes.iter().copied().collect::<Vec<_>>());
        lists.append(true);
        skips.append_value(s.skip);
    }
    vec![Arc::new(lists.finish()), Arc::new(skips.finish())]
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
        Ok(state_fields())
    }

    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(One(Sample::default())))
    }

    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(Groups(Vec::new())))
    }
}

/// The sample of a query without groups.
#[derive(Debug)]
struct One(Sample);

impl Accumulator for One {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (hashes, counted) = row_hashes(values, None)?;
        for (h, c) in hashes.into_iter().zip(counted) {
            if c {
                self.0.insert(h);
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (lists, skips) = state_rows(states)?;
        for r in 0..lists.len() {
            if lists.is_valid(r) {
                self.0.merge(lists.value(r).as_primitive::<UInt64Type>().values(), skips.value(r));
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        to_states(std::iter::once(&self.0)).iter().map(|a| ScalarValue::try_from_array(a, 0)).collect()
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::UInt64(Some(self.0.count())))
    }

    fn size(&self) -> usize {
        self.0.size()
    }
}

/// Every group's sample, by group index.
struct Groups(Vec<Sample>);

impl Groups {
    fn grow(&mut self, total: usize) {
        if self.0.len() < total {
            self.0.resize_with(total, Sample::default);
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
        let (lists, skips) = state_rows(values)?;
        for (r, g) in group_indices.iter().enumerate() {
            if lists.is_valid(r) {
                self.0[*g].merge(lists.value(r).as_primitive::<UInt64Type>().values(), skips.value(r));
            }
        }
        Ok(())
    }

    /// Input rows straight to states (when partial aggregation is skipped): each row's hash,
    /// or none.
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let (hashes, counted) = row_hashes(values, opt_filter)?;
        let rows: Vec<Sample> = hashes
            .into_iter()
            .zip(counted)
            .map(|(h, c)| {
                let mut s = Sample::default();
                if c {
                    s.insert(h);
                }
                s
            })
            .collect();
        Ok(to_states(rows.iter()))
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let groups = emit_to.take_needed(&mut self.0);
        Ok(Arc::new(UInt64Array::from_iter_values(groups.iter().map(Sample::count))))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let groups = emit_to.take_needed(&mut self.0);
        Ok(to_states(groups.iter()))
    }

    fn size(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<Sample>() + self.0.iter().map(Sample::size).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(range: std::ops::Range<u64>) -> Vec<u64> {
        let values: ArrayRef = Arc::new(UInt64Array::from_iter_values(range));
        row_hashes(&[values], None).unwrap().0
    }

    #[test]
    fn exact_up_to_the_limit_then_a_close_estimate() {
        let mut s = Sample::default();
        for h in hashes(0..60_000).into_iter().chain(hashes(0..1_000)) {
            s.insert(h);
        }
        assert_eq!((s.count(), s.skip), (60_000, 0));
        let mut big = Sample::default();
        for h in hashes(0..300_000) {
            big.insert(h);
        }
        assert!(big.skip > 0 && big.hashes.len() <= MAX_KEPT);
        let error = (big.count() as f64 - 300_000.0).abs() / 300_000.0;
        assert!(error < 0.02, "estimate {} for 300,000", big.count());
        // Merging two halves sampled separately gives the same kind of answer.
        let (mut a, mut b) = (Sample::default(), Sample::default());
        hashes(0..150_000).into_iter().for_each(|h| a.insert(h));
        hashes(100_000..300_000).into_iter().for_each(|h| b.insert(h));
        let kept: Vec<u64> = b.hashes.iter().copied().collect();
        a.merge(&kept, b.skip);
        assert_eq!(a.count(), big.count(), "the merged sample keeps the same hashes");
    }
}
