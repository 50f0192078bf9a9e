//! ClickHouse's `quantile`, `quantiles` and `median` as the aggregates `ch_quantile(x, level)`
//! and `ch_quantiles(x, level, …)`, with ClickHouse's algorithm: a reservoir sample of up to
//! 8,192 values (every value while there are fewer), sorted when the result is asked for, and
//! linear interpolation between the two values around `level · (n − 1)`. Up to 8,192 values the
//! answer is exact; beyond, an estimate from a uniform sample — and memory and time no longer
//! grow with the group. The sampling is seeded, so a query over the same rows in the same order
//! answers the same. `quantileExact` and `medianExact` stay exact (see the function table).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, Field, FieldRef};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};
use datafusion::scalar::ScalarValue;

/// Values a reservoir keeps.
const RESERVOIR: usize = 8192;

/// `ch_quantile` (one level, a `Float64`) and `ch_quantiles` (levels, an array).
pub fn udafs() -> [AggregateUDF; 2] {
    let signature = Signature::variadic_any(Volatility::Immutable);
    [
        AggregateUDF::new_from_impl(Quantile { name: "ch_quantile", many: false, signature: signature.clone() }),
        AggregateUDF::new_from_impl(Quantile { name: "ch_quantiles", many: true, signature }),
    ]
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Quantile {
    name: &'static str,
    many: bool,
    signature: Signature,
}

fn list_of_f64() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Float64, true)))
}

impl AggregateUDFImpl for Quantile {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.len() < 2 {
            return Err(DataFusionError::Plan(format!("{} takes a value and a level", self.name)));
        }
        if !args[0].is_numeric() && args[0] != DataType::Null {
            return Err(DataFusionError::Plan(format!("quantile of {} is not supported", args[0])));
        }
        Ok(if self.many { list_of_f64() } else { DataType::Float64 })
    }

    fn state_fields(&self, _: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new("sample", list_of_f64(), true)),
            Arc::new(Field::new("seen", DataType::UInt64, true)),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let levels = args.exprs[1..]
            .iter()
            .map(|e| {
                // A constant: it evaluates to a scalar without any row.
                let empty = arrow_array::RecordBatch::new_empty(Arc::new(arrow_schema::Schema::empty()));
                let value = match e.evaluate(&empty) {
                    Ok(datafusion::logical_expr::ColumnarValue::Scalar(v)) => match v.cast_to(&DataType::Float64) {
                        Ok(ScalarValue::Float64(Some(f))) => Some(f),
                        _ => None,
                    },
                    _ => None,
                };
                match value {
                    Some(l) if (0.0..=1.0).contains(&l) => Ok(l),
                    _ => Err(DataFusionError::Plan("quantile levels must be numbers from 0 to 1".into())),
                }
            })
            .collect::<Result<Vec<f64>>>()?;
        Ok(Box::new(Reservoir { levels, many: self.many, sample: Vec::new(), seen: 0, rng: 0x9E37_79B9_7F4A_7C15 }))
    }
}

/// A reservoir sample of the values met, and how many were met.
#[derive(Debug)]
struct Reservoir {
    levels: Vec<f64>,
    many: bool,
    sample: Vec<f64>,
    seen: u64,
    rng: u64,
}

impl Reservoir {
    /// A random number below `n` (xorshift64*).
    fn below(&mut self, n: u64) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }

    fn insert(&mut self, v: f64) {
        self.seen += 1;
        if self.sample.len() < RESERVOIR {
            self.sample.push(v);
        } else {
            let at = self.below(self.seen) as usize;
            if at < RESERVOIR {
                self.sample[at] = v;
            }
        }
    }

    /// Adds another reservoir of `seen` values: each kept slot comes from it in proportion to
    /// the values it stands for.
    fn merge(&mut self, sample: &[f64], seen: u64) {
        if seen as usize <= RESERVOIR {
            // It kept every value it met.
            sample.iter().for_each(|v| self.insert(*v));
            return;
        }
        if self.seen as usize <= RESERVOIR {
            let mine = std::mem::replace(&mut self.sample, sample.to_vec());
            self.seen = seen;
            mine.into_iter().for_each(|v| self.insert(v));
            return;
        }
        let total = self.seen + seen;
        for (slot, v) in self.sample.iter_mut().zip(sample) {
            let r = self.rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            self.rng = r;
            if (r >> 11) % total < seen {
                *slot = *v;
            }
        }
        self.seen = total;
    }

    fn quantile(sorted: &[f64], level: f64) -> Option<f64> {
        let last = sorted.len().checked_sub(1)?;
        let at = level * last as f64;
        let left = at.floor() as usize;
        Some(match sorted.get(left + 1) {
            Some(right) => sorted[left] + (at - left as f64) * (right - sorted[left]),
            None => sorted[left.min(last)],
        })
    }
}

impl Accumulator for Reservoir {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let floats = arrow_cast::cast(&values[0], &DataType::Float64)?;
        let floats = floats.as_primitive::<Float64Type>();
        if floats.null_count() == 0 {
            floats.values().iter().for_each(|v| self.insert(*v));
        } else {
            floats.iter().flatten().for_each(|v| self.insert(v));
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let samples = states[0].as_list::<i32>();
        let seen = states[1].as_primitive::<arrow_array::types::UInt64Type>();
        for r in 0..samples.len() {
            if samples.is_valid(r) {
                let values = samples.value(r);
                self.merge(values.as_primitive::<Float64Type>().values(), seen.value(r));
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values: Vec<ScalarValue> = self.sample.iter().map(|v| ScalarValue::Float64(Some(*v))).collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Float64)),
            ScalarValue::UInt64(Some(self.seen)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut sorted = self.sample.clone();
        sorted.sort_unstable_by(f64::total_cmp);
        let answers: Vec<Option<f64>> = self.levels.iter().map(|l| Self::quantile(&sorted, *l)).collect();
        if self.many {
            let values: Vec<ScalarValue> = answers.into_iter().map(ScalarValue::Float64).collect();
            return Ok(ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Float64)));
        }
        Ok(ScalarValue::Float64(answers.first().copied().flatten()))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.sample.capacity() * 8 + self.levels.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reservoir() -> Reservoir {
        Reservoir { levels: vec![0.5], many: false, sample: Vec::new(), seen: 0, rng: 0x9E37_79B9_7F4A_7C15 }
    }

    #[test]
    fn exact_on_small_sets_and_close_on_large_ones() {
        let mut r = reservoir();
        [120.0, 340.0, 80.0, 900.0, 2000.0].into_iter().for_each(|v| r.insert(v));
        assert_eq!(r.evaluate().unwrap(), ScalarValue::Float64(Some(340.0)));
        r.levels = vec![0.9];
        assert_eq!(r.evaluate().unwrap(), ScalarValue::Float64(Some(1560.0)));
        let mut big = reservoir();
        (0..1_000_000).for_each(|v| big.insert(f64::from(v)));
        assert_eq!(big.sample.len(), RESERVOIR);
        let ScalarValue::Float64(Some(median)) = big.evaluate().unwrap() else { panic!() };
        assert!((median - 500_000.0).abs() < 25_000.0, "median {median} of 0..1,000,000");
        // Two large halves merged stand for the whole.
        let (mut a, mut b) = (reservoir(), reservoir());
        (0..500_000).for_each(|v| a.insert(f64::from(v)));
        (500_000..1_000_000).for_each(|v| b.insert(f64::from(v)));
        let (sample, seen) = (b.sample.clone(), b.seen);
        a.merge(&sample, seen);
        assert_eq!(a.seen, 1_000_000);
        let ScalarValue::Float64(Some(median)) = a.evaluate().unwrap() else { panic!() };
        assert!((median - 500_000.0).abs() < 30_000.0, "merged median {median}");
    }
}
