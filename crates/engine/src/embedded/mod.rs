//! The embedded backend's storage: a write-ahead log, in-memory buffers that queries see at
//! once, and sorted Parquet parts listed in an atomically replaced manifest.

pub mod codec;
pub mod estimate;
pub mod evolve;
mod merge;
pub mod part;
pub mod partition;
pub mod provider;
mod sortkey;
pub mod store;
pub mod ttl;
