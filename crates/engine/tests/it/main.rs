//! Integration tests of the engine crate.

mod store;
mod workspace;
