//! End-to-end tests of the `aviary` binary.

mod app;
mod append_cli;
mod check_cli;
#[path = "../../../engine/tests/it/clickhouse_server.rs"]
mod clickhouse_server;
mod clients;
mod crash;
mod deploy_cli;
mod identity_cli;
mod multinode;
#[path = "../../../identity/tests/it/postgres.rs"]
mod postgres;
mod process;
mod redis_server;
mod template_cli;
mod token_cli;
