//! Aviary's data plane: data sources, ingestion, durable storage and queries.
//!
//! This crate owns what happens to a row from the moment it arrives until a query reads it:
//! conversion from JSON to the column's ClickHouse type (or quarantine), the write-ahead log
//! with group commit, the in-memory buffer, Parquet parts and their manifest, and query
//! execution. It knows nothing of HTTP or identity; the server maps its errors to responses.

pub mod clickhouse;
pub mod deploy;
pub mod dialect;
pub mod embedded;
mod error;
pub mod ingest;
pub mod pipes;
pub mod policy;
pub mod usage;
pub mod wal;
pub mod workspace;

pub use error::{Error, Result};
