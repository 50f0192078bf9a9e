//! Integration tests of the server: the real application on a random port, driven over HTTP.

mod access;
mod api;
mod app;
mod harness;
mod identity;
#[path = "../../../identity/tests/it/postgres.rs"]
mod postgres;
