//! End-to-end tests of the `aviary` binary.

mod check_cli;
mod crash;
mod template_cli;
