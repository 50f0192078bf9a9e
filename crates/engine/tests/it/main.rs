//! Integration tests of the engine crate.

mod pipes;
mod sql_files;
mod store;
mod workspace;
