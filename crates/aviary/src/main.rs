//! The `aviary` binary: parses flags and dispatches to the library crates.

mod append;
mod bench;
mod bench_access;
mod bench_identity;
mod bench_query;
mod cli;
mod demo;
mod deploy;
mod identity_cli;
mod serve;
mod token;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's allocator: under sustained ingestion glibc's arenas fragment and
/// the resident size grows with the number of batches (measured by `aviary bench ingest`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cli::Cli::parse().run()
}
