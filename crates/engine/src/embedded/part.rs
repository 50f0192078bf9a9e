//! Parquet parts: sorted, immutable files of one partition of one table, written durably
//! (temporary name, fsync, rename) and with row-group statistics so that a query for one
//! tenant can skip the row groups of others.

use std::fs::File;
use std::path::Path;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::Error;

/// Rows per Parquet row group: small enough that sorted data gives selective statistics.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Largest dictionary page of a column chunk before it falls back to plain encoding.
pub const DICTIONARY_BYTES: usize = 32 * 1024;

/// Rows per data page at most (pages are the unit the page index prunes by).
pub const PAGE_ROWS: usize = 1024;

/// Writes `batches` (already in order) as a Parquet file at `path`; returns its size in bytes.
pub fn write(
    path: &Path,
    schema: SchemaRef,
    batches: impl IntoIterator<Item = Result<RecordBatch, Error>>,
) -> Result<u64, Error> {
    let tmp = path.with_extension("parquet.tmp");
    let mut props = WriterProperties::builder()
        // LZ4, as ClickHouse: cheap to write on the ingest path, and decompressing is what a
        // query pays for every page it reads.
        .set_compression(Compression::LZ4_RAW)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        // Small pages with statistics: a query for one tenant reads little more than its rows.
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_write_batch_size(PAGE_ROWS)
        .set_statistics_enabled(EnabledStatistics::Page);
    // Small dictionaries: a column with few distinct values (`LowCardinality`, or a `String` of
    // a few paths) stays dictionary-encoded; one with as many values as rows (user ids) falls
    // back to plain pages early, so reading a few of its rows never decodes a big dictionary.
    props = props.set_dictionary_page_size_limit(DICTIONARY_BYTES);
    let props = props.build();
    let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let mut w = ArrowWriter::try_new(file, schema, Some(props)).map_err(Error::parquet)?;
    for batch in batches {
        w.write(&batch?).map_err(Error::parquet)?;
    }
    let file = w.into_inner().map_err(Error::parquet)?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len())
}

/// Reads every row of a part.
pub fn read(path: &Path) -> Result<Vec<RecordBatch>, Error> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    read_file(file)
}

/// Reads every row of an already opened part (an open file stays readable if the part is
/// deleted meanwhile by a compaction or a truncate).
pub fn read_file(file: File) -> Result<Vec<RecordBatch>, Error> {
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(Error::parquet)?.build().map_err(Error::parquet)?;
    reader.collect::<Result<Vec<_>, _>>().map_err(Error::arrow)
}
