//! Integration tests of the server: the real application on a random port, driven over HTTP.
//! The analytics API's tests (`api`, `access`) are one conformance suite, run on both backends:
//! each `both!(name)` test runs as `name::embedded` and `name::clickhouse`.

/// Runs `async fn name(b: Backend)` as two tests, one per backend.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn embedded() {
                super::$name(crate::harness::Backend::Embedded).await
            }
            #[tokio::test]
            async fn clickhouse() {
                super::$name(crate::harness::Backend::ClickHouse).await
            }
        }
    };
    ($name:ident, multi_thread) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name(crate::harness::Backend::Embedded).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn clickhouse() {
                super::$name(crate::harness::Backend::ClickHouse).await
            }
        }
    };
}

mod access;
mod api;
mod app;
mod clickhouse;
#[path = "../../../engine/tests/it/clickhouse_server.rs"]
mod clickhouse_server;
mod harness;
mod identity;
#[path = "../../../identity/tests/it/postgres.rs"]
mod postgres;
