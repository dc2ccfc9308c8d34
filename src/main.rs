//! The `assetgate` binary: the allocator, logging, the runtime and the exit code around the
//! command line (`assetgate::cli`).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

use assetgate::cli::{self, Cli, LogFormat};

/// jemalloc instead of glibc's malloc: measured in the load benchmark (benches/README.md),
/// a third less CPU per small request and a smaller resident set with many slow clients.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[allow(
    clippy::disallowed_methods,
    reason = "main reads RUST_LOG, the one setting outside the config"
)]
fn main() -> ExitCode {
    let cli = Cli::parse();
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    assetgate::telemetry::init_logging(&directives, matches!(cli.log_format, LogFormat::Json));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(cli::run(cli.command));
    assetgate::telemetry::finish_logging();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
