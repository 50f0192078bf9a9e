//! ClickHouse's higher-order array functions — `arrayMap(x -> …, arr)`, `arrayFilter`,
//! `arrayExists`, `arrayAll`, `arrayCount` — on DataFusion, which has no lambdas. The dialect
//! turns each call into `ch_lambda('<kind>', '<params>', '<body>', arrays…, captured…)`: the
//! body is DataFusion SQL over columns named as the lambda's parameters, and over `__c0`, `__c1`…
//! for the outer columns it uses (passed as trailing arguments). At run time the arrays' elements
//! become one batch (each outer value repeated for its row's elements), the body is evaluated over
//! it as an ordinary expression, and the result is folded back per row.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use arrow_array::builder::{UInt8Builder, UInt32Builder};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, ListArray, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, FieldRef, Schema};
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::scalar::ScalarValue;

/// The name the dialect calls.
pub const NAME: &str = "ch_lambda";

/// What the lambda's results make of each row's elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The results, as an array.
    Map,
    /// The first array's elements whose result is true.
    Filter,
    /// 1 when some result is true.
    Exists,
    /// 1 when every result is true.
    All,
    /// How many results are true.
    Count,
}

impl Kind {
    /// The kind of a ClickHouse function, if it takes a lambda.
    pub fn of(function: &str) -> Option<Kind> {
        Some(match function {
            "arrayMap" => Kind::Map,
            "arrayFilter" => Kind::Filter,
            "arrayExists" => Kind::Exists,
            "arrayAll" => Kind::All,
            "arrayCount" => Kind::Count,
            _ => return None,
        })
    }

    /// The kind's tag in a `ch_lambda` call.
    pub fn tag(self) -> &'static str {
        match self {
            Kind::Map => "map",
            Kind::Filter => "filter",
            Kind::Exists => "exists",
            Kind::All => "all",
            Kind::Count => "count",
        }
    }

    fn from_tag(tag: &str) -> Result<Kind> {
        Ok(match tag {
            "map" => Kind::Map,
            "filter" => Kind::Filter,
            "exists" => Kind::Exists,
            "all" => Kind::All,
            "count" => Kind::Count,
            other => return Err(DataFusionError::Plan(format!("{NAME}: unknown kind {other}"))),
        })
    }
}

/// The `ch_lambda` function.
pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Lambda { signature: Signature::variadic_any(Volatility::Immutable) })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Lambda {
    signature: Signature,
}

/// A call's fixed arguments.
struct Call {
    kind: Kind,
    params: Vec<String>,
    body: String,
}

impl Call {
    fn read(texts: [Option<&str>; 3]) -> Result<Call> {
        let [Some(kind), Some(params), Some(body)] = texts else {
            return Err(DataFusionError::Plan(format!("{NAME} takes a kind, parameters and a body as text")));
        };
        Ok(Call {
            kind: Kind::from_tag(kind)?,
            params: params.split(',').map(str::to_string).collect(),
            body: body.to_string(),
        })
    }

    /// The batch schema the body is evaluated over, from the argument types after the first three.
    fn schema(&self, types: &[DataType]) -> Result<Schema> {
        if types.len() < self.params.len() {
            return Err(DataFusionError::Plan(format!(
                "the lambda takes {} argument(s), {} array(s) given",
                self.params.len(),
                types.len()
            )));
        }
        let mut fields = Vec::with_capacity(types.len());
        for (name, t) in self.params.iter().zip(types) {
            let element = match t {
                DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => f.data_type().clone(),
                DataType::Null => DataType::Null,
                other => {
                    return Err(DataFusionError::Plan(format!("a lambda's arguments must be arrays, not {other}")));
                }
            };
            fields.push(Field::new(name, element, true));
        }
        for (i, t) in types[self.params.len()..].iter().enumerate() {
            fields.push(Field::new(format!("__c{i}"), t.clone(), true));
        }
        Ok(Schema::new(fields))
    }
}

fn text(v: Option<&ScalarValue>) -> Option<&str> {
    match v {
        Some(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s))) => {
            Some(s.as_str())
        }
        _ => None,
    }
}

/// The planned body for a schema, shared by all queries.
fn planned(body: &str, schema: &Schema) -> Result<Arc<dyn PhysicalExpr>> {
    static SESSION: LazyLock<SessionContext> = LazyLock::new(|| {
        let mut config = SessionConfig::new();
        config.options_mut().sql_parser.enable_ident_normalization = false;
        let ctx = SessionContext::new_with_config(config);
        super::udf::register(&ctx);
        ctx
    });
    type Cache = Mutex<HashMap<(String, Schema), Arc<dyn PhysicalExpr>>>;
    static CACHE: LazyLock<Cache> = LazyLock::new(Default::default);
    let key = (body.to_string(), schema.clone());
    if let Some(e) = CACHE.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(e);
    }
    let df_schema = DFSchema::try_from(schema.clone())?;
    let expr = SESSION.parse_sql_expr(body, &df_schema)?;
    let physical = SESSION.create_physical_expr(expr, &df_schema)?;
    if let Ok(mut c) = CACHE.lock() {
        if c.len() >= 1024 {
            c.clear();
        }
        c.insert(key, physical.clone());
    }
    Ok(physical)
}

impl ScalarUDFImpl for Lambda {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Err(DataFusionError::Internal(format!("{NAME}'s type follows its arguments")))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let s = args.scalar_arguments;
        if s.len() < 4 {
            return Err(DataFusionError::Plan(format!("{NAME} takes a lambda and arrays")));
        }
        let call = Call::read([text(s[0]), text(s[1]), text(s[2])])?;
        let types: Vec<DataType> = args.arg_fields[3..].iter().map(|f| f.data_type().clone()).collect();
        let t = match call.kind {
            Kind::Map => {
                let schema = call.schema(&types)?;
                let out = planned(&call.body, &schema)?.data_type(&schema)?;
                DataType::List(Arc::new(Field::new("item", out, true)))
            }
            Kind::Filter => match &types[0] {
                DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                    DataType::List(Arc::new(Field::new("item", f.data_type().clone(), true)))
                }
                other => other.clone(),
            },
            Kind::Exists | Kind::All => DataType::UInt8,
            Kind::Count => DataType::UInt32,
        };
        Ok(Arc::new(Field::new(NAME, t, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = |i: usize| match args.args.get(i) {
            Some(ColumnarValue::Scalar(v)) => Some(v),
            _ => None,
        };
        let call = Call::read([text(scalar(0)), text(scalar(1)), text(scalar(2))])?;
        let rows = args.number_rows;
        let values: Vec<ArrayRef> = args.args[3..].iter().map(|v| v.to_array(rows)).collect::<Result<_>>()?;
        let arity = call.params.len();
        let lists: Vec<ListArray> = values[..arity]
            .iter()
            .map(|a| match a.data_type() {
                DataType::List(_) => Ok(a.as_list::<i32>().clone()),
                DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                    let t = DataType::List(Arc::new(Field::new("item", f.data_type().clone(), true)));
                    Ok(arrow_cast::cast(a, &t)?.as_list::<i32>().clone())
                }
                DataType::Null => Ok(ListArray::new_null(Arc::new(Field::new("item", DataType::Null, true)), a.len())),
                other => Err(DataFusionError::Execution(format!("a lambda's arguments must be arrays, not {other}"))),
            })
            .collect::<Result<_>>()?;
        let length = |l: &ListArray, row: usize| if l.is_null(row) { 0 } else { l.value_length(row) as usize };
        let lengths: Vec<usize> = (0..rows).map(|r| length(&lists[0], r)).collect();
        for l in &lists[1..] {
            if (0..rows).any(|r| length(l, r) != lengths[r]) {
                return Err(DataFusionError::Execution(
                    "Arrays passed to a lambda function must have equal size".to_string(),
                ));
            }
        }
        // Each element's position in its list's values, and its row.
        let total: usize = lengths.iter().sum();
        let mut owner = Vec::with_capacity(total);
        for (r, n) in lengths.iter().enumerate() {
            owner.extend(std::iter::repeat_n(r as u32, *n));
        }
        let owner = UInt32Array::from(owner);
        let mut columns = Vec::with_capacity(values.len());
        for l in &lists {
            let offsets = l.value_offsets();
            let mut at = Vec::with_capacity(total);
            for (r, n) in lengths.iter().enumerate() {
                let start = offsets[r] as u32;
                at.extend(start..start + *n as u32);
            }
            columns.push(arrow_select::take::take(l.values(), &UInt32Array::from(at), None)?);
        }
        for outer in &values[arity..] {
            columns.push(arrow_select::take::take(outer, &owner, None)?);
        }
        let types: Vec<DataType> = args.arg_fields[3..].iter().map(|f| f.data_type().clone()).collect();
        let schema = Arc::new(call.schema(&types)?);
        let columns = columns
            .into_iter()
            .zip(schema.fields())
            .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c) } else { arrow_cast::cast(&c, f.data_type()) })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let batch = RecordBatch::try_new_with_options(
            schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(total)),
        )?;
        let result = planned(&call.body, &schema)?.evaluate(&batch)?.into_array(total)?;
        let out: ArrayRef = match call.kind {
            Kind::Map => Arc::new(ListArray::new(
                Arc::new(Field::new("item", result.data_type().clone(), true)),
                OffsetBuffer::from_lengths(lengths),
                result,
                None,
            )),
            kind => {
                let truth = truth(&result)?;
                let mut at = 0;
                let per_row = lengths.iter().map(|n| {
                    let row = (at..at + n).filter(|i| truth.value(*i)).count();
                    at += n;
                    (row, *n)
                });
                match kind {
                    Kind::Filter => {
                        let counts: Vec<usize> = per_row.map(|(hits, _)| hits).collect();
                        let kept = arrow_select::filter::filter(batch.column(0), &truth)?;
                        let field = Arc::new(Field::new("item", kept.data_type().clone(), true));
                        Arc::new(ListArray::new(field, OffsetBuffer::from_lengths(counts), kept, None))
                    }
                    Kind::Count => {
                        let mut b = UInt32Builder::with_capacity(rows);
                        per_row.for_each(|(hits, _)| b.append_value(hits as u32));
                        Arc::new(b.finish())
                    }
                    _ => {
                        let mut b = UInt8Builder::with_capacity(rows);
                        per_row.for_each(|(hits, n)| {
                            let on = if kind == Kind::All { hits == n } else { hits > 0 };
                            b.append_value(u8::from(on));
                        });
                        Arc::new(b.finish())
                    }
                }
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// A lambda's results as true/false (numbers: non-zero; NULL: false).
fn truth(result: &ArrayRef) -> Result<arrow_array::BooleanArray> {
    let b = match result.data_type() {
        DataType::Boolean => result.as_boolean().clone(),
        _ => arrow_cast::cast(result, &DataType::Boolean)?.as_boolean().clone(),
    };
    // NULLs count as false: fold the validity into the values.
    Ok(arrow_array::BooleanArray::from_iter(b.iter().map(|v| Some(v.unwrap_or(false)))))
}
