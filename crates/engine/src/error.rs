//! The engine's errors.

use std::path::{Path, PathBuf};

/// What went wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The write-ahead log failed; nothing was acknowledged.
    #[error("write-ahead log: {0}")]
    Wal(std::io::Error),
    /// Arrow could not build or read data.
    #[error("arrow: {0}")]
    Arrow(String),
    /// Parquet could not write or read a part.
    #[error("parquet: {0}")]
    Parquet(String),
    /// The table does not exist.
    #[error("Data Source '{0}' does not exist")]
    NoSuchTable(String),
    /// A definition the engine cannot store, or data that does not match its table.
    #[error("{0}")]
    Invalid(String),
    /// A query failed (parse, plan or execution).
    #[error("{0}")]
    Query(String),
    /// The grant may not read what the query reads (403), with the reason.
    #[error("{0}")]
    Forbidden(String),
    /// A pipe request failed (missing pipe or endpoint, template error).
    #[error(transparent)]
    Pipe(#[from] crate::pipes::PipeError),
    /// The backend is down or overloaded; nothing was done (503, worth a retry).
    #[error("{0}")]
    Unavailable(String),
    /// A query ran past its time limit (408).
    #[error("{0}")]
    Timeout(String),
    /// Another process has the data directory open.
    #[error("the data directory {0} is in use by another process (an aviary server?)")]
    Busy(PathBuf),
    /// The stored state is damaged.
    #[error("damaged data directory: {0}")]
    Damaged(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io { path: path.to_path_buf(), source }
    }

    pub(crate) fn arrow(e: arrow_schema::ArrowError) -> Self {
        Error::Arrow(e.to_string())
    }

    pub(crate) fn parquet(e: parquet::errors::ParquetError) -> Self {
        Error::Parquet(e.to_string())
    }
}

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
