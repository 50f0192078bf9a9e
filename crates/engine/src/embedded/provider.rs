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
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::datasource::physical_plan::parquet::{ParquetFileMetrics, ParquetFileReaderFactory};
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
            let readers = LocalParts { store, cache };
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

/// Readers of local parts. Metadata comes from the workspace's metadata cache and always
/// includes the page index (DataFusion asks for the footer alone and loads the page index
/// outside the cache, which would decode a part's whole page index on every query). Pages are
/// read with `pread` on the calling thread: parts are local files, mostly in the page cache, and
/// a read of a few pages costs less than handing it to a blocking thread as the object store
/// does.
#[derive(Debug)]
struct LocalParts {
    store: Arc<dyn datafusion::object_store::ObjectStore>,
    cache: Arc<datafusion::execution::cache::cache_manager::FileMetadataCache>,
}

impl ParquetFileReaderFactory for LocalParts {
    fn create_reader(
        &self,
        partition_index: usize,
        partitioned_file: PartitionedFile,
        _metadata_size_hint: Option<usize>,
        metrics: &datafusion::physical_plan::metrics::ExecutionPlanMetricsSet,
    ) -> Result<Box<dyn AsyncFileReader + Send>> {
        let location = partitioned_file.object_meta.location.clone();
        let path = std::path::Path::new("/").join(location.as_ref());
        let file = std::fs::File::open(&path).map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        let metrics = ParquetFileMetrics::new(partition_index, location.as_ref(), metrics);
        Ok(Box::new(PartReader {
            file,
            metrics,
            store: self.store.clone(),
            cache: self.cache.clone(),
            object_meta: partitioned_file.object_meta,
        }))
    }
}

struct PartReader {
    file: std::fs::File,
    metrics: ParquetFileMetrics,
    store: Arc<dyn datafusion::object_store::ObjectStore>,
    cache: Arc<datafusion::execution::cache::cache_manager::FileMetadataCache>,
    object_meta: datafusion::object_store::ObjectMeta,
}

type Boxed<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = parquet::errors::Result<T>> + Send + 'a>>;

impl PartReader {
    fn read(&self, range: std::ops::Range<u64>) -> parquet::errors::Result<bytes::Bytes> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; (range.end - range.start) as usize];
        self.file
            .read_exact_at(&mut buf, range.start)
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?;
        self.metrics.bytes_scanned.add(buf.len());
        Ok(bytes::Bytes::from(buf))
    }
}

impl AsyncFileReader for PartReader {
    fn get_bytes(&mut self, range: std::ops::Range<u64>) -> Boxed<'_, bytes::Bytes> {
        let read = self.read(range);
        Box::pin(std::future::ready(read))
    }

    fn get_byte_ranges(&mut self, ranges: Vec<std::ops::Range<u64>>) -> Boxed<'_, Vec<bytes::Bytes>> {
        let read = ranges.into_iter().map(|r| self.read(r)).collect();
        Box::pin(std::future::ready(read))
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> Boxed<'a, Arc<parquet::file::metadata::ParquetMetaData>> {
        Box::pin(async move {
            DFParquetMetadata::new(self.store.as_ref(), &self.object_meta)
                .with_file_metadata_cache(Some(self.cache.clone()))
                .with_page_index_policy(Some(PageIndexPolicy::Optional))
                .fetch_metadata()
                .await
                .map_err(|e| parquet::errors::ParquetError::General(e.to_string()))
        })
    }
}
