//! How many rows a query will read, guessed before it is planned: the rows of the row groups
//! that a query's equality filters (`col = 'v'`, `col IN (…)`) cannot rule out by their
//! statistics (from the cached Parquet footers), plus the rows in memory. A tenant-scoped query
//! of a small tenant reads a row group or two; planning it for one thread saves the exchange of
//! rows between threads, which costs more than such a query's reading.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::parquet::metadata::CachedParquetMetaData;
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator};
use datafusion::scalar::ScalarValue;
use parquet::file::statistics::Statistics;

/// Columns with the values a filter allows.
pub type Conditions = Vec<(String, Vec<ScalarValue>)>;

/// The equality conditions of every filter in `plan`.
pub fn conditions(plan: &LogicalPlan) -> Conditions {
    let mut out = Conditions::new();
    let _ = plan.apply(|node| {
        if let LogicalPlan::Filter(f) = node {
            for c in split_conjunction(&f.predicate) {
                match c {
                    Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) => {
                        match (left.as_ref(), right.as_ref()) {
                            (Expr::Column(col), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(col)) => {
                                out.push((col.name.clone(), vec![v.clone()]));
                            }
                            _ => {}
                        }
                    }
                    Expr::InList(l) if !l.negated => {
                        if let Expr::Column(col) = l.expr.as_ref() {
                            let values: Option<Vec<ScalarValue>> = l
                                .list
                                .iter()
                                .map(|e| if let Expr::Literal(v, _) = e { Some(v.clone()) } else { None })
                                .collect();
                            if let Some(values) = values {
                                out.push((col.name.clone(), values));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}

/// Rows of `files` in row groups that `conditions` do not rule out; `None` when a file's
/// footer is not in `cache` yet (nothing read it so far).
pub fn rows_to_read(files: &[(PathBuf, u64)], cache: &Arc<FileMetadataCache>, conditions: &Conditions) -> Option<u64> {
    let mut rows = 0u64;
    for (path, _) in files {
        let key = object_store_path(path)?;
        let entry = cache.get(&key)?;
        let metadata = entry.file_metadata.as_any().downcast_ref::<CachedParquetMetaData>()?.parquet_metadata().clone();
        let columns = metadata.file_metadata().schema_descr().columns().to_vec();
        let checked: Vec<(usize, &Vec<ScalarValue>)> = conditions
            .iter()
            .filter_map(|(name, values)| columns.iter().position(|c| c.path().string() == *name).map(|i| (i, values)))
            .collect();
        for (g, rg) in metadata.row_groups().iter().enumerate() {
            let possible = checked.iter().all(|(i, values)| match rg.column(*i).statistics() {
                Some(stats) => values.iter().any(|v| may_hold(stats, v)),
                None => true,
            });
            if possible {
                // Finer, when the page index is there: the rows of the pages that may match.
                let pages = checked.iter().filter_map(|(i, values)| page_rows(&metadata, g, *i, values));
                rows += pages.fold(rg.num_rows() as u64, u64::min);
            }
        }
    }
    Some(rows)
}

/// The key DataFusion caches a local file's metadata under.
fn object_store_path(path: &std::path::Path) -> Option<datafusion::object_store::path::Path> {
    Some(datafusion::object_store::path::Path::from(path.to_str()?))
}

/// Whether a column chunk with `stats` may hold `v` (unknown kinds of statistics: yes).
fn may_hold(stats: &Statistics, v: &ScalarValue) -> bool {
    let between = |min: Option<&[u8]>, max: Option<&[u8]>, x: &[u8]| match (min, max) {
        (Some(lo), Some(hi)) => lo <= x && x <= hi,
        _ => true,
    };
    match (stats, v) {
        (
            Statistics::ByteArray(s),
            ScalarValue::Utf8(Some(x)) | ScalarValue::LargeUtf8(Some(x)) | ScalarValue::Utf8View(Some(x)),
        ) => between(s.min_bytes_opt(), s.max_bytes_opt(), x.as_bytes()),
        (Statistics::Int64(s), _) => match v.cast_to(&arrow_schema::DataType::Int64) {
            Ok(ScalarValue::Int64(Some(x))) => {
                s.min_opt().is_none_or(|lo| *lo <= x) && s.max_opt().is_none_or(|hi| x <= *hi)
            }
            _ => true,
        },
        (Statistics::Int32(s), _) => match v.cast_to(&arrow_schema::DataType::Int32) {
            Ok(ScalarValue::Int32(Some(x))) => {
                s.min_opt().is_none_or(|lo| *lo <= x) && s.max_opt().is_none_or(|hi| x <= *hi)
            }
            _ => true,
        },
        _ => true,
    }
}

/// Rows of the pages of column `col` in row group `g` whose string bounds may hold one of
/// `values`; `None` without a string page index.
fn page_rows(
    metadata: &parquet::file::metadata::ParquetMetaData,
    g: usize,
    col: usize,
    values: &[ScalarValue],
) -> Option<u64> {
    use parquet::file::page_index::column_index::ColumnIndexMetaData;
    let ColumnIndexMetaData::BYTE_ARRAY(index) = metadata.column_index()?.get(g)?.get(col)? else { return None };
    let locations = metadata.offset_index()?.get(g)?.get(col)?.page_locations();
    let total = metadata.row_group(g).num_rows();
    let strings: Vec<&[u8]> = values
        .iter()
        .filter_map(|v| match v {
            ScalarValue::Utf8(Some(x)) | ScalarValue::LargeUtf8(Some(x)) | ScalarValue::Utf8View(Some(x)) => {
                Some(x.as_bytes())
            }
            _ => None,
        })
        .collect();
    if strings.len() != values.len() || locations.len() != index.num_pages() as usize {
        return None;
    }
    let mut rows = 0u64;
    for (p, at) in locations.iter().enumerate() {
        let end = locations.get(p + 1).map_or(total, |next| next.first_row_index);
        let hit = match (index.min_value(p), index.max_value(p)) {
            (Some(lo), Some(hi)) => strings.iter().any(|x| lo <= *x && *x <= hi),
            _ => !index.is_null_page(p),
        };
        if hit {
            rows += (end - at.first_row_index).max(0) as u64;
        }
    }
    Some(rows)
}
