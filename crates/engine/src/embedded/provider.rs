//! A table as DataFusion reads it: its Parquet parts through DataFusion's Parquet scan (with
//! the query's filters as a pruning predicate, so row groups and pages whose statistics cannot
//! match — another tenant's, another day's — are skipped), plus the rows held in memory.

use std::sync::Arc;

use arrow_schema::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::DFSchema;
use datafusion::datasource::TableProvider;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::{DataSourceExec, MemorySourceConfig};
use datafusion::datasource::physical_plan::parquet::{CachedParquetFileReaderFactory, ParquetFileReaderFactory};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::union::UnionExec;

use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::PageIndexPolicy;

use super::store::Snapshot;

/// One query's view of a table.
#[derive(Debug)]
pub struct PartsTable {
    snapshot: Snapshot,
}

impl PartsTable {
    /// The table as of `snapshot`.
    pub fn new(snapshot: Snapshot) -> PartsTable {
        PartsTable { snapshot }
    }
}

#[async_trait::async_trait]
impl TableProvider for PartsTable {
    fn schema(&self) -> SchemaRef {
        self.snapshot.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // Used to prune; DataFusion still filters the rows.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = self.snapshot.schema.clone();
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        if !self.snapshot.files.is_empty() {
            // Footers and page indexes are read once per part and kept in the runtime's
            // metadata cache (parts never change once written).
            let runtime = state.runtime_env();
            let store = runtime.object_store(ObjectStoreUrl::local_filesystem())?;
            let cache = runtime.cache_manager.get_file_metadata_cache();
            let readers = WithPageIndex(CachedParquetFileReaderFactory::new(store, cache));
            let mut source = ParquetSource::new(schema.clone())
                .with_enable_page_index(true)
                .with_parquet_file_reader_factory(Arc::new(readers));
            if let Some(predicate) = conjunction(filters.to_vec()) {
                let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
                source = source.with_predicate(state.create_physical_expr(predicate, &df_schema)?);
            }
            // Parts spread over as many groups as the session reads in parallel.
            let groups = state.config().target_partitions().max(1);
            let mut files: Vec<Vec<PartitionedFile>> = vec![Vec::new(); groups.min(self.snapshot.files.len())];
            for (i, (path, bytes)) in self.snapshot.files.iter().enumerate() {
                let len = files.len();
                files[i % len].push(PartitionedFile::new(path.to_string_lossy().to_string(), *bytes));
            }
            let config = FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), Arc::new(source))
                .with_file_groups(files.into_iter().map(FileGroup::new).collect())
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
            inputs.push(DataSourceExec::from_data_source(config));
        }
        if !self.snapshot.memory.is_empty() || inputs.is_empty() {
            let memory = MemorySourceConfig::try_new_exec(
                std::slice::from_ref(&self.snapshot.memory),
                schema,
                projection.cloned(),
            )?;
            inputs.push(memory);
        }
        UnionExec::try_new(inputs)
    }
}

/// Parquet readers whose metadata always includes the page index, so that the metadata cache
/// holds it: DataFusion asks for the footer alone and loads the page index afterwards, outside
/// the cache, which would decode a part's whole page index on every query.
#[derive(Debug)]
struct WithPageIndex(CachedParquetFileReaderFactory);

impl ParquetFileReaderFactory for WithPageIndex {
    fn create_reader(
        &self,
        partition_index: usize,
        partitioned_file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &datafusion::physical_plan::metrics::ExecutionPlanMetricsSet,
    ) -> Result<Box<dyn AsyncFileReader + Send>> {
        let inner = self.0.create_reader(partition_index, partitioned_file, metadata_size_hint, metrics)?;
        Ok(Box::new(PageIndexReader(inner)))
    }
}

struct PageIndexReader(Box<dyn AsyncFileReader + Send>);

type Boxed<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = parquet::errors::Result<T>> + Send + 'a>>;

impl AsyncFileReader for PageIndexReader {
    fn get_bytes(&mut self, range: std::ops::Range<u64>) -> Boxed<'_, bytes::Bytes> {
        self.0.get_bytes(range)
    }

    fn get_byte_ranges(&mut self, ranges: Vec<std::ops::Range<u64>>) -> Boxed<'_, Vec<bytes::Bytes>> {
        self.0.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> Boxed<'a, Arc<parquet::file::metadata::ParquetMetaData>> {
        let options = options.cloned().unwrap_or_default().with_page_index_policy(PageIndexPolicy::Optional);
        Box::pin(async move { self.0.get_metadata(Some(&options)).await })
    }
}
