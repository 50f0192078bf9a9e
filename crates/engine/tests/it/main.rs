//! Integration tests of the engine crate.

mod clickhouse;
#[path = "clickhouse_server.rs"]
mod clickhouse_server;
mod pipes;
mod sql_files;
mod store;
mod workspace;
