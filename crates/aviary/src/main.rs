//! The `aviary` binary: parses flags and dispatches to the library crates.

mod append;
mod cli;
mod serve;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cli::Cli::parse().run()
}
