//! End-to-end tests of the `aviary` binary.

mod check_cli;
mod clients;
mod crash;
mod process;
mod template_cli;
