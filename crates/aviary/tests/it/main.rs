//! End-to-end tests of the `aviary` binary.

mod check_cli;
mod template_cli;
