//! Merging sorted parts as a stream: each input part is read a batch at a time, prepared
//! (conformed to the table's current shape, expired rows dropped — both keep the order), and
//! the inputs are merged by the sorting key into row groups of the output. Memory holds one
//! batch per input and one output row group, whatever the size of the parts, so merges are
//! not bounded by memory and parts can grow as large as the table needs.

use std::fs::File;

use arrow_array::RecordBatch;
use arrow_row::{RowConverter, Rows, SortField};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::part::ROW_GROUP_ROWS;
use crate::{Error, Result};

/// Rows read from an input at a time.
const READ_ROWS: usize = 8192;

/// What a batch goes through between its part and the merge.
pub type Prepare<'a> = dyn Fn(RecordBatch) -> Result<RecordBatch> + 'a;

/// One input: its reader and the batch being consumed.
struct Cursor {
    reader: ParquetRecordBatchReader,
    /// Sort keys of the current batch (`None` when the table has no sorting key).
    keys: Option<Rows>,
    /// Next row of the current batch, and its length.
    at: usize,
    len: usize,
    /// Where the current batch is in the pool.
    slot: usize,
    done: bool,
}

/// The merged rows of some parts, as an iterator of output row groups.
pub struct Merge<'a> {
    cursors: Vec<Cursor>,
    /// Batches that rows of the output being built may come from.
    pool: Vec<RecordBatch>,
    converter: Option<RowConverter>,
    sorting_key: Vec<String>,
    prepare: &'a Prepare<'a>,
    /// Rows read from the inputs (before preparing) and rows produced.
    pub rows_in: u64,
    pub rows_out: u64,
    failed: bool,
}

impl<'a> Merge<'a> {
    /// Opens the inputs (each sorted by `sorting_key`; equal keys keep the inputs' order).
    pub fn open(files: Vec<File>, sorting_key: &[String], prepare: &'a Prepare<'a>) -> Result<Merge<'a>> {
        let mut merge = Merge {
            cursors: Vec::with_capacity(files.len()),
            pool: Vec::new(),
            converter: None,
            sorting_key: sorting_key.to_vec(),
            prepare,
            rows_in: 0,
            rows_out: 0,
            failed: false,
        };
        for file in files {
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(Error::parquet)?
                .with_batch_size(READ_ROWS)
                .build()
                .map_err(Error::parquet)?;
            merge.cursors.push(Cursor { reader, keys: None, at: 0, len: 0, slot: 0, done: false });
            let i = merge.cursors.len() - 1;
            merge.advance(i)?;
        }
        Ok(merge)
    }

    /// Moves input `i` to its next batch with rows, or marks it done.
    fn advance(&mut self, i: usize) -> Result<()> {
        loop {
            let Some(batch) = self.cursors[i].reader.next() else {
                self.cursors[i].done = true;
                return Ok(());
            };
            let batch = batch.map_err(Error::arrow)?;
            self.rows_in += batch.num_rows() as u64;
            let batch = (self.prepare)(batch)?;
            if batch.num_rows() == 0 {
                continue;
            }
            let keys = self.keys(&batch)?;
            let c = &mut self.cursors[i];
            c.keys = keys;
            c.at = 0;
            c.len = batch.num_rows();
            c.slot = self.pool.len();
            self.pool.push(batch);
            return Ok(());
        }
    }

    fn keys(&mut self, batch: &RecordBatch) -> Result<Option<Rows>> {
        if self.sorting_key.is_empty() {
            return Ok(None);
        }
        let columns = self
            .sorting_key
            .iter()
            .map(|k| batch.column_by_name(k).cloned().ok_or_else(|| Error::Invalid(format!("no column '{k}'"))))
            .collect::<Result<Vec<_>>>()?;
        if self.converter.is_none() {
            let fields = columns.iter().map(|c| SortField::new(c.data_type().clone())).collect();
            self.converter = Some(RowConverter::new(fields).map_err(Error::arrow)?);
        }
        let converter = self.converter.as_ref().ok_or_else(|| Error::Invalid("sort key".into()))?;
        Ok(Some(converter.convert_columns(&columns).map_err(Error::arrow)?))
    }

    /// The input whose next row comes first.
    fn first(&self) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, c) in self.cursors.iter().enumerate().filter(|(_, c)| !c.done) {
            best = match best {
                None => Some(i),
                Some(b) => {
                    let other = &self.cursors[b];
                    let earlier = match (&c.keys, &other.keys) {
                        (Some(k), Some(o)) => k.row(c.at) < o.row(other.at),
                        _ => false,
                    };
                    Some(if earlier { i } else { b })
                }
            };
        }
        best
    }

    fn next_group(&mut self) -> Result<Option<RecordBatch>> {
        let mut positions: Vec<(usize, usize)> = Vec::with_capacity(ROW_GROUP_ROWS);
        while positions.len() < ROW_GROUP_ROWS {
            let Some(i) = self.first() else { break };
            let single = self.cursors.iter().filter(|c| !c.done).count() == 1;
            let c = &mut self.cursors[i];
            // The last input left: the rest of its batch in one go.
            let take = if single { (c.len - c.at).min(ROW_GROUP_ROWS - positions.len()) } else { 1 };
            positions.extend((c.at..c.at + take).map(|r| (c.slot, r)));
            c.at += take;
            if c.at == c.len {
                self.advance(i)?;
            }
        }
        if positions.is_empty() {
            return Ok(None);
        }
        let refs: Vec<&RecordBatch> = self.pool.iter().collect();
        let out = arrow_select::interleave::interleave_record_batch(&refs, &positions).map_err(Error::arrow)?;
        // Only the inputs' current batches are needed from here on.
        let mut pool = Vec::with_capacity(self.cursors.len());
        for c in self.cursors.iter_mut().filter(|c| !c.done) {
            pool.push(self.pool[c.slot].clone());
            c.slot = pool.len() - 1;
        }
        self.pool = pool;
        self.rows_out += out.num_rows() as u64;
        Ok(Some(out))
    }
}

impl Iterator for Merge<'_> {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_group() {
            Ok(group) => group.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
