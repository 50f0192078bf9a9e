//! End-to-end tests of the `aviary` binary.

mod template_cli;
