//! What a WAL record holds: one operation on one table, with its rows as an Arrow IPC stream.

use std::io::Cursor;

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::ArrowError;

/// A logged operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Rows appended to a table.
    Append {
        /// The table.
        table: String,
        /// The rows.
        batch: RecordBatch,
    },
    /// Every row of a table replaced by these rows, in one step.
    Replace {
        /// The table.
        table: String,
        /// The new rows.
        batch: RecordBatch,
    },
    /// Every row of a table removed.
    Truncate {
        /// The table.
        table: String,
    },
    /// A table created, with its definition (JSON of the manifest entry).
    Create {
        /// The table.
        table: String,
        /// Its definition.
        definition: Vec<u8>,
    },
    /// The table's definition changed compatibly (columns added, TTL changed): JSON of the
    /// new manifest entry.
    Alter {
        /// The table.
        table: String,
        /// Its new definition.
        definition: Vec<u8>,
    },
    /// Tables renamed, all in one step: `(from, to)` pairs. Each table's directory moves with
    /// it, and so does a file `datasources/<from>.datasource` in the data directory when there
    /// is one (the definition a workspace keeps next to its tables).
    Rename {
        /// The renames.
        renames: Vec<(String, String)>,
    },
    /// The table removed; appends logged before this are never replayed into a later table of
    /// the same name.
    Drop {
        /// The table.
        table: String,
    },
}

const APPEND: u8 = 1;
const TRUNCATE: u8 = 2;
const DROP: u8 = 3;
const CREATE: u8 = 4;
const REPLACE: u8 = 5;
const ALTER: u8 = 6;
const RENAME: u8 = 7;

/// Encodes an operation for the WAL.
pub fn encode(op: &Op) -> Result<Vec<u8>, ArrowError> {
    let (kind, table) = match op {
        Op::Append { table, .. } => (APPEND, table),
        Op::Truncate { table } => (TRUNCATE, table),
        Op::Drop { table } => (DROP, table),
        Op::Create { table, .. } => (CREATE, table),
        Op::Replace { table, .. } => (REPLACE, table),
        Op::Alter { table, .. } => (ALTER, table),
        Op::Rename { .. } => (RENAME, &String::new()),
    };
    let mut out = Vec::with_capacity(64);
    out.push(kind);
    out.extend_from_slice(&(table.len() as u16).to_le_bytes());
    out.extend_from_slice(table.as_bytes());
    if let Op::Create { definition, .. } | Op::Alter { definition, .. } = op {
        out.extend_from_slice(definition);
    }
    if let Op::Rename { renames } = op {
        out.extend(serde_json::to_vec(renames).map_err(|e| ArrowError::ExternalError(Box::new(e)))?);
    }
    if let Op::Append { batch, .. } | Op::Replace { batch, .. } = op {
        let mut w = StreamWriter::try_new(&mut out, &batch.schema())?;
        w.write(batch)?;
        w.finish()?;
    }
    Ok(out)
}

/// Decodes an operation read back from the WAL.
pub fn decode(bytes: &[u8]) -> Result<Op, ArrowError> {
    let bad = || ArrowError::ParseError("damaged WAL record".to_string());
    let kind = *bytes.first().ok_or_else(bad)?;
    let len = u16::from_le_bytes(bytes.get(1..3).ok_or_else(bad)?.try_into().map_err(|_| bad())?) as usize;
    let table = std::str::from_utf8(bytes.get(3..3 + len).ok_or_else(bad)?).map_err(|_| bad())?.to_string();
    match kind {
        APPEND | REPLACE => {
            let reader = StreamReader::try_new(Cursor::new(&bytes[3 + len..]), None)?;
            let schema = reader.schema();
            let batches = reader.collect::<Result<Vec<_>, _>>()?;
            let batch = arrow_select::concat::concat_batches(&schema, &batches)?;
            Ok(if kind == APPEND { Op::Append { table, batch } } else { Op::Replace { table, batch } })
        }
        TRUNCATE => Ok(Op::Truncate { table }),
        DROP => Ok(Op::Drop { table }),
        CREATE => Ok(Op::Create { table, definition: bytes[3 + len..].to_vec() }),
        ALTER => Ok(Op::Alter { table, definition: bytes[3 + len..].to_vec() }),
        RENAME => Ok(Op::Rename { renames: serde_json::from_slice(&bytes[3 + len..]).map_err(|_| bad())? }),
        _ => Err(bad()),
    }
}
