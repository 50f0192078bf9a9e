//! Integration tests of the engine crate.

mod sql_files;
mod store;
mod workspace;
