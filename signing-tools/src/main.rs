//! `nightlatch-sign`: see the crate documentation (README.md).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use signing_tools::cmd::Cli;

fn main() -> ExitCode {
    // Usage errors exit with code 2 here (clap's convention); --help exits 0.
    let cli = Cli::parse();
    // Fails only if a hook is already installed, which is fine.
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(miette::MietteHandlerOpts::new().build())
    }));
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let report = miette::Report::new(err);
            let _ = writeln!(std::io::stderr(), "{report:?}");
            ExitCode::FAILURE
        }
    }
}
