//! End-to-end tests of the `aviary` binary.

mod app;
mod append_cli;
mod check_cli;
mod clients;
mod crash;
mod deploy_cli;
mod identity_cli;
#[path = "../../../identity/tests/it/postgres.rs"]
mod postgres;
mod process;
mod template_cli;
mod token_cli;
