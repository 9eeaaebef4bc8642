//! `nightlatch-sim`: see `nightlatch_system_tests::sim`.

use std::process::ExitCode;

use clap::Parser;
use nightlatch_system_tests::sim::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            ExitCode::FAILURE
        }
    }
}
