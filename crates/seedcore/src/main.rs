//! The `seedcore` binary: parses the command line and hands over to [`seedcore::cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = seedcore::cli::Cli::parse();
    seedcore::cli::run(cli)
}
